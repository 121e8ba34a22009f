"""Binding handlers by the reference's naming convention, once, at construction.

For states ``Foo`` and ``Bar`` the names are::

    Foo_enter  Foo_exit     negotiation: may Foo activate / deactivate? (False cancels)
    Foo_Foo                 negotiation, self: Foo stays active through the transition
    Foo_Bar                 negotiation: Foo was active and Bar is a target
    any_enter               negotiation, last, for every transition
    Foo_state  Foo_end      final: Foo activated / deactivated
    any_state               final, last, for every accepted transition

A handler source is an object (its attributes are read with ``getattr`` here and
never again) or a mapping from those names to callables. A callable attribute
that looks like a handler but matches no state is an error, so a typo such as
``Fetchng_state`` fails at construction instead of never running.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import HandlerBindingError

__all__ = ["Bound", "HandlerTable", "bind_handlers"]

NEGOTIATION_SUFFIXES = ("enter", "exit")
FINAL_SUFFIXES = ("state", "end")
ANY_ENTER = "any_enter"
ANY_STATE = "any_state"


@dataclass(frozen=True, slots=True)
class Bound:
    """One callable bound to one handler name."""

    name: str
    fn: Callable[..., Any]
    is_async: bool


Handlers = tuple[Bound, ...]


@dataclass(frozen=True, slots=True, eq=False)
class HandlerTable:
    """Handlers per state index, so a transition looks them up by position."""

    enter: tuple[Handlers, ...]
    exit: tuple[Handlers, ...]
    state: tuple[Handlers, ...]
    end: tuple[Handlers, ...]
    self_: tuple[Handlers, ...]
    pairs: dict[tuple[int, int], Handlers]
    any_enter: Handlers
    any_state: Handlers
    names: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.names



def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects
    return call is not None and inspect.iscoroutinefunction(call)


def expected_names(states: tuple[str, ...]) -> dict[str, tuple[str, int, int]]:
    """Every handler name for ``states``: name -> (role, state, other state)."""
    table: dict[str, tuple[str, int, int]] = {}
    clashes: dict[str, list[tuple[str, int, int]]] = {}

    def put(name: str, role: tuple[str, int, int]) -> None:
        if name in table and table[name] != role:
            clashes.setdefault(name, [table[name]]).append(role)
        table[name] = role

    for i, s in enumerate(states):
        for suffix in NEGOTIATION_SUFFIXES + FINAL_SUFFIXES:
            put(f"{s}_{suffix}", (suffix, i, -1))
        for j, other in enumerate(states):
            put(f"{s}_{other}", ("self" if i == j else "pair", i, j))
    put(ANY_ENTER, ("any_enter", -1, -1))
    put(ANY_STATE, ("any_state", -1, -1))
    for name in clashes:
        table[name] = ("clash", -1, -1)
    return table


def _looks_like_handler(name: str, states: set[str]) -> bool:
    if name.startswith("any_"):
        rest = name[4:]
        return rest in NEGOTIATION_SUFFIXES + FINAL_SUFFIXES or rest[:1].isupper()
    if not name[:1].isupper() or "_" not in name:
        return False
    tail = name.rpartition("_")[2]
    if tail in NEGOTIATION_SUFFIXES + FINAL_SUFFIXES:
        return True
    first = name.split("_", 1)[0]
    return first in states or tail in states


def _source_items(source: object, expected: Mapping[str, tuple[str, int, int]],
                  states: set[str]) -> list[tuple[str, Callable[..., Any]]]:
    found: list[tuple[str, Callable[..., Any]]] = []
    if isinstance(source, Mapping):
        for key, fn in source.items():
            if not isinstance(key, str) or key not in expected:
                raise HandlerBindingError(
                    f"handler {key!r} matches no state; handler names are "
                    "Foo_enter, Foo_exit, Foo_state, Foo_end, Foo_Bar, any_enter, any_state")
            found.append((key, fn))
    else:
        for key in dir(source):
            if key.startswith("_"):
                continue
            if key in expected:
                found.append((key, getattr(source, key)))
            elif _looks_like_handler(key, states) and callable(getattr(source, key, None)):
                raise HandlerBindingError(
                    f"{type(source).__qualname__}.{key} looks like a handler but matches "
                    "no state of the schema (or no handler role)")
    for key, fn in found:
        if not callable(fn):
            raise HandlerBindingError(f"handler {key!r} is {fn!r}, not callable")
        if expected[key][0] == "clash":
            raise HandlerBindingError(
                f"handler name {key!r} is ambiguous for these state names "
                "(underscores in state names make two roles share it); rename a state")
    return found


def bind_handlers(states: tuple[str, ...], sources: object) -> HandlerTable:
    """Resolve every handler of ``sources`` (an object, a mapping, or a list of them)."""
    if sources is None:
        source_list: list[object] = []
    elif isinstance(sources, (list, tuple)):
        source_list = list(sources)
    else:
        source_list = [sources]
    expected = expected_names(states)
    state_set = set(states)
    n = len(states)
    per_role: dict[tuple[str, int, int], list[Bound]] = {}
    bound_names: list[str] = []
    for source in source_list:
        for key, fn in _source_items(source, expected, state_set):
            per_role.setdefault(expected[key], []).append(Bound(key, fn, _is_async(fn)))
            bound_names.append(key)

    def role(kind: str, i: int, j: int = -1) -> Handlers:
        return tuple(per_role.get((kind, i, j), ()))

    pairs = {(i, j): tuple(v) for (kind, i, j), v in per_role.items() if kind == "pair"}
    return HandlerTable(
        enter=tuple(role("enter", i) for i in range(n)),
        exit=tuple(role("exit", i) for i in range(n)),
        state=tuple(role("state", i) for i in range(n)),
        end=tuple(role("end", i) for i in range(n)),
        self_=tuple(role("self", i, i) for i in range(n)),
        pairs=pairs,
        any_enter=role("any_enter", -1),
        any_state=role("any_state", -1),
        names=tuple(dict.fromkeys(bound_names)),
    )
