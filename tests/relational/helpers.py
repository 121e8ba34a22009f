"""Shared helpers for the relational tests (no pytest-asyncio: each test runs
its coroutine with ``asyncio.run``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from convergent.relational import Event, Machine, Schema, State

NOREL = Schema.of(A=State(), B=State(), C=State(), D=State())
"""Four unrelated states (the reference's ``NewNoRels``)."""

RELS = Schema.of(
    A=State(auto=True, require=("C",)),
    B=State(multi=True, add=("C",)),
    C=State(after=("D",)),
    D=State(add=("C", "B")),
)
"""The reference's ``NewRels`` relations."""


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an ``async def test_...`` on a fresh event loop, with a 10 s cap."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def bounded() -> None:
            await asyncio.wait_for(fn(*args, **kwargs), 10)

        asyncio.run(bounded())

    return wrapper


def schema_with(**changes: State) -> Schema:
    """``NOREL`` with some states replaced (the reference edits ``m.schema[...]``)."""
    return NOREL.extend(**changes)


async def started(schema: Schema = NOREL, initial: Iterable[str] = (), **kwargs: Any) -> Machine:
    mach = Machine(schema, **kwargs)
    await mach.start()
    initial = tuple(initial)
    if initial:
        await mach.set(*initial)
    return mach


def assert_states(mach: Machine, *expected: str) -> None:
    assert sorted(mach.active_states) == sorted(expected), mach.string_all()


class History:
    """Records handler calls by name, for every handler name of A..D (the
    reference's ``trackTransitions``)."""

    def __init__(self, states: Iterable[str] = ("A", "B", "C", "D")) -> None:
        self.order: list[str] = []
        self.events: list[Event] = []
        self.table: dict[str, Callable[[Event], None]] = {}
        states = list(states)
        names = ["any_enter", "any_state"]
        for s in states:
            names += [f"{s}_enter", f"{s}_exit", f"{s}_state", f"{s}_end"]
            names += [f"{s}_{o}" for o in states]
        for name in names:
            self.table[name] = self._recorder(name)

    def _recorder(self, name: str) -> Callable[[Event], None]:
        def record(event: Event) -> None:
            self.order.append(name)
            self.events.append(event)
        return record

    def count(self, name: str) -> int:
        return self.order.count(name)

    def assert_order(self, *names: str) -> None:
        positions = [self.order.index(n) for n in names]
        assert positions == sorted(positions), (names, self.order)
