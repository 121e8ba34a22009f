"""Schemas: the states of a relational machine and the rules between them.

A schema is a plain value. It is validated once, when built, and every problem
is reported together (``SchemaError.problems``), so a typo in one relation does
not hide a typo in another. It is normalized the way the reference normalizes
its schemas, so that the runtime and the static checks read the same rules:

* a state listed in its own ``remove``, ``after`` or ``require`` loses that
  entry (a group like ``Remove: [Connecting, Connected]`` may include itself);
* a state both in ``add`` and ``remove`` of one state keeps only ``add``;
* the built-in ``Exception`` state (``multi``) is appended when not declared.

Requiring a state that the same state removes is a contradiction and an error.

State names may be plain strings or members of a ``StateNames`` enum, which
gives constants a type checker knows, so ``S.Fetchng`` is an error before the
program runs (``Schema.from_dict({...}, names=S)`` also checks that the schema
declares exactly the enum's states).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import Problem
from .errors import SchemaError

__all__ = ["EXCEPTION", "RELATIONS", "Schema", "State", "StateNames"]

EXCEPTION = "Exception"
"""Name of the built-in error state; it is ``multi`` so every error is recorded."""

ANY = "Any"
RELATIONS = ("require", "remove", "add", "after")


class StateNames(str, enum.Enum):
    """Base of an enum of state names: the constants a type checker knows.

    ::

        class S(StateNames):
            Start = enum.auto()          # the value is the member's name: "Start"
            Fetching = enum.auto()

        schema = Schema.from_dict({S.Start: State(add=(S.Fetching,)),
                                   S.Fetching: State(require=(S.Start,))}, names=S)
        await machine.add(S.Start)       # S.Strat fails at type-check time

    Members are ``str``, so every API taking a state name takes them; schemas
    store the plain strings.
    """

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int,
                              last_values: list[Any]) -> str:
        return name

    def __str__(self) -> str:
        return str(self.value)


def _plain(name: object) -> object:
    """A state name as a plain ``str`` (an enum member gives its value)."""
    if isinstance(name, enum.Enum):
        name = name.value
    return str(name) if isinstance(name, str) else name


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, (str, enum.Enum)):
        raise SchemaError(f"{what}={value!r} (expected a sequence of state names, "
                          f"e.g. ({str(_plain(value))!r},))")
    try:
        out = tuple(_plain(v) for v in value)
    except TypeError:
        raise SchemaError(f"{what}={value!r} (expected a sequence of state names)") from None
    for item in out:
        if not isinstance(item, str):
            raise SchemaError(f"{what} contains {item!r} (expected a state name str)")
    return out  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class State:
    """One state and its relations to others.

    Attributes:
        require: states that must be active (or activated together) for this one.
        remove: states this one deactivates, and that block it while active.
        add: states activated along with this one (optional: they may be refused).
        after: states whose handlers run before this one's.
        auto: try to activate after every transition that changed a clock.
        multi: re-activating an active state is a new instance (clock +2, handlers run).
    """

    require: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    auto: bool = False
    multi: bool = False

    def __post_init__(self) -> None:
        for name in RELATIONS:
            object.__setattr__(self, name, _names(getattr(self, name), name))
        for name in ("auto", "multi"):
            if not isinstance(getattr(self, name), bool):
                raise SchemaError(f"{name}={getattr(self, name)!r} (expected a bool)")

    def to_dict(self) -> dict[str, Any]:
        """The non-default fields, in the reference's vocabulary."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _valid_name(name: object) -> str | None:
    if not isinstance(name, str) or not name.isidentifier():
        return f"state name {name!r} is not an identifier"
    if not name[0].isupper():
        return (f"state name {name!r} must start with an upper-case letter "
                "(CamelCase keeps handler names such as Foo_enter unambiguous)")
    if name == ANY:
        return f"state name {ANY!r} is reserved for the any_enter / any_state handlers"
    return None


@dataclass(frozen=True)
class Schema:
    """An ordered, validated set of states.

    Build one with ``Schema.of(Foo=State(...), Bar=State())`` or
    ``Schema.from_dict({...})``. Declaration order is the state order used by
    clocks, string formats and exports.
    """

    states: tuple[tuple[str, State], ...]
    name: str = "schema"
    _index: dict[str, State] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(cls, *, name: str = "schema", **states: State) -> Schema:
        """``Schema.of(Foo=State(add=("Bar",)), Bar=State(), name="example")``.

        ``name`` cannot clash with a state: state names start upper-case."""
        return cls(tuple(states.items()), name)

    @classmethod
    def from_dict(cls, states: Mapping[str, State | Mapping[str, Any]], *,
                  name: str = "schema", names: type[StateNames] | None = None) -> Schema:
        """From ``{name: State}`` or ``{name: {"require": [...], ...}}``.

        ``names``: a ``StateNames`` enum the schema must match, member for state
        (``Exception`` may be left out of either); a missing or extra state is a
        ``SchemaError``.
        """
        items: list[tuple[str, State]] = []
        for key, value in states.items():
            if isinstance(value, Mapping):
                try:
                    value = State(**value)
                except TypeError as exc:
                    raise SchemaError(f"state {key!r}: {exc}") from None
            items.append((key, value))
        schema = cls(tuple(items), name)
        if names is not None:
            schema._match_names(names)
        return schema

    def _match_names(self, names: type[StateNames]) -> None:
        if not (isinstance(names, type) and issubclass(names, StateNames)):
            raise SchemaError(f"names={names!r} (expected a StateNames enum)")
        declared = {str(m.value) for m in names}
        problems = [Problem(f"{names.__qualname__}.{n} is not a state of schema "
                            f"{self.name!r}") for n in sorted(declared - set(self._index))]
        problems += [Problem(f"state {n!r} is not a member of {names.__qualname__}")
                     for n in self._index if n not in declared and n != EXCEPTION]
        if problems:
            raise SchemaError(problems)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        raw: dict[str, State] = {}
        for item in self.states:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise SchemaError(f"states entry {item!r} (expected a (name, State) pair)")
            key, state = _plain(item[0]), item[1]
            bad = _valid_name(key)
            if bad or not isinstance(key, str):
                problems.append(Problem(bad or f"state name {key!r} is not a str"))
                continue
            if not isinstance(state, State):
                problems.append(Problem(f"state {key!r}: {state!r} (expected a State)"))
                continue
            if key in raw:
                problems.append(Problem(f"duplicate state {key!r}"))
            raw[key] = state
        if EXCEPTION not in raw and not problems:
            raw[EXCEPTION] = State(multi=True)
        for key, state in raw.items():
            for rel in RELATIONS:
                for target in getattr(state, rel):
                    if target not in raw:
                        problems.append(Problem(f"state {key!r}: {rel} names unknown "
                                                f"state {target!r}"))
            for target in state.require:
                if target in state.remove and target != key:
                    problems.append(Problem(f"state {key!r} both requires and removes "
                                            f"{target!r}"))
        if problems:
            raise SchemaError(problems)
        normalized = {key: _normalize(key, state) for key, state in raw.items()}
        object.__setattr__(self, "states", tuple(normalized.items()))
        object.__setattr__(self, "_index", normalized)
        if not isinstance(self.name, str):
            raise SchemaError(f"name={self.name!r} (expected a str)")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._index)

    def __getitem__(self, name: str) -> State:
        return self._index[name]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def items(self) -> Iterable[tuple[str, State]]:
        return self._index.items()

    def merge(self, other: Schema, *, name: str | None = None) -> Schema:
        """A new schema with ``other``'s states added (and overriding same names)."""
        merged = dict(self._index)
        merged.update(other._index)
        return Schema(tuple(merged.items()), name or self.name)

    def extend(self, **states: State) -> Schema:
        """A new schema with ``states`` added or replaced; they may refer to this
        schema's states (validation happens on the combined set)."""
        merged = dict(self._index)
        merged.update(states)
        return Schema(tuple(merged.items()), self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "states": {key: state.to_dict() for key, state in self._index.items()}}


def _normalize(key: str, state: State) -> State:
    add = _uniq(state.add)
    remove = tuple(s for s in _uniq(state.remove) if s != key and s not in add)
    after = tuple(s for s in _uniq(state.after) if s != key)
    require = tuple(s for s in _uniq(state.require) if s != key)
    return State(require=require, remove=remove, add=add, after=after,
                 auto=state.auto, multi=state.multi)


def _uniq(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
