"""Subscriptions: futures that resolve when the machine reaches a condition.

Each waiter is an ``asyncio.Future`` registered eagerly, at the call, so that
``when_ticks`` counts from the moment it was asked and nothing can slip between
the call and the ``await``. Cancelling the future (directly, by
``asyncio.wait_for`` or by a task group) unregisters it; closing the machine
fails every pending waiter with ``LifecycleError``.

Waiters are indexed by state, and after a transition only the waiters of the
states whose clock moved are re-checked; a machine with no waiters pays one
length check per transition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Waiters"]

ALL_ACTIVE, ALL_INACTIVE, MIN_TIME = 0, 1, 2


class _Waiter:
    __slots__ = ("future", "kind", "states", "ticks")

    def __init__(self, kind: int, states: tuple[int, ...], ticks: tuple[int, ...],
                 future: asyncio.Future[None]) -> None:
        self.kind = kind
        self.states = states
        self.ticks = ticks
        self.future = future


class _ArgsWaiter:
    __slots__ = ("args", "future", "state")

    def __init__(self, state: int, args: Mapping[str, Any], future: asyncio.Future[None]) -> None:
        self.state = state
        self.args = dict(args)
        self.future = future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Waiters:
    """The pending subscriptions of one machine."""

    def __init__(self, n_states: int, clock: list[int]) -> None:
        self._clock = clock
        self._by_state: list[list[_Waiter]] = [[] for _ in range(n_states)]
        self._args: list[list[_ArgsWaiter]] = [[] for _ in range(n_states)]
        self._queue: list[tuple[int, asyncio.Future[None]]] = []
        self._queue_end: list[asyncio.Future[None]] = []
        self.count = 0
        self.args_count = 0

    # registration ---------------------------------------------------------

    def _satisfied(self, kind: int, states: tuple[int, ...], ticks: tuple[int, ...]) -> bool:
        clock = self._clock
        if kind == ALL_ACTIVE:
            return all(clock[s] & 1 for s in states)
        if kind == ALL_INACTIVE:
            return not any(clock[s] & 1 for s in states)
        return all(clock[s] >= t for s, t in zip(states, ticks, strict=True))

    def add(self, loop: asyncio.AbstractEventLoop, kind: int, states: tuple[int, ...],
            ticks: tuple[int, ...] = ()) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        if self._satisfied(kind, states, ticks):
            future.set_result(None)
            return future
        waiter = _Waiter(kind, states, ticks, future)
        for s in set(states):
            self._by_state[s].append(waiter)
        self.count += 1
        future.add_done_callback(lambda _f: self._drop(waiter))
        return future

    def _drop(self, waiter: _Waiter) -> None:
        removed = False
        for s in set(waiter.states):
            bucket = self._by_state[s]
            if waiter in bucket:
                bucket.remove(waiter)
                removed = True
        if removed:
            self.count -= 1

    def add_args(self, loop: asyncio.AbstractEventLoop, state: int,
                 args: Mapping[str, Any]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        waiter = _ArgsWaiter(state, args, future)
        self._args[state].append(waiter)
        self.args_count += 1

        def drop(_f: asyncio.Future[None]) -> None:
            if waiter in self._args[state]:
                self._args[state].remove(waiter)
                self.args_count -= 1

        future.add_done_callback(drop)
        return future

    def add_queue(self, loop: asyncio.AbstractEventLoop, tick: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        entry = (tick, future)
        self._queue.append(entry)
        def drop(_f: asyncio.Future[None]) -> None:
            if entry in self._queue:
                self._queue.remove(entry)

        future.add_done_callback(drop)
        return future

    def add_queue_end(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()
        self._queue_end.append(future)
        def drop(f: asyncio.Future[None]) -> None:
            if f in self._queue_end:
                self._queue_end.remove(f)

        future.add_done_callback(drop)
        return future

    # processing -----------------------------------------------------------

    def on_ticks(self, changed: list[int]) -> None:
        """Re-check the waiters of states whose clock moved."""
        by_state = self._by_state
        for s in changed:
            bucket = by_state[s]
            if not bucket:
                continue
            for waiter in list(bucket):
                if self._satisfied(waiter.kind, waiter.states, waiter.ticks):
                    _resolve(waiter.future)
                    self._drop(waiter)

    def on_enter(self, state: int, args: Mapping[str, Any]) -> None:
        """A state was activated with ``args``: resolve matching ``when_args``."""
        for waiter in list(self._args[state]):
            if all(k in args and args[k] == v for k, v in waiter.args.items()):
                _resolve(waiter.future)

    def on_queue_tick(self, tick: int) -> None:
        if self._queue:
            for entry in list(self._queue):
                if tick >= entry[0]:
                    _resolve(entry[1])
                    self._queue.remove(entry)

    def on_queue_end(self) -> None:
        if self._queue_end:
            for future in self._queue_end:
                _resolve(future)
            self._queue_end.clear()

    def fail_all(self, make_error: Callable[[], BaseException]) -> None:
        """Close: every pending waiter raises ``make_error()``."""
        futures = [w.future for bucket in self._by_state for w in bucket]
        futures += [w.future for bucket in self._args for w in bucket]
        futures += [f for _t, f in self._queue] + list(self._queue_end)
        for future in futures:
            if not future.done():
                future.set_exception(make_error())
                # a waiter nobody awaits must not log "exception never retrieved"
                future.exception()
