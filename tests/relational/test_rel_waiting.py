"""Subscriptions (when, when_not, when_time, when_ticks, when_args), forked tasks."""

from __future__ import annotations

import asyncio

import pytest

from convergent.relational import (
    EXCEPTION,
    Event,
    LifecycleError,
    Machine,
    Schema,
    State,
)

from .helpers import NOREL, RELS, assert_states, async_test, started


@async_test
async def test_when_waits_for_all_states() -> None:
    def A_state(e: Event) -> None:
        async def later() -> None:
            await asyncio.sleep(0.01)
            await e.machine.add("B")
            await asyncio.sleep(0.01)
            await e.machine.add("C")
        e.machine.fork(later())

    mach = await started(NOREL, handlers={"A_state": A_state})
    await mach.set("A")
    waiter = mach.when("B", "C")
    assert not waiter.done()
    await asyncio.wait_for(waiter, 1)
    assert_states(mach, "A", "B", "C")


@async_test
async def test_many_waiters_for_the_same_states() -> None:
    mach = await started()
    w1, w2 = mach.when("A", "B"), mach.when("A", "B")
    await mach.add("A")
    assert not w1.done()
    await mach.add("B")
    await asyncio.wait_for(asyncio.gather(w1, w2), 1)


@async_test
async def test_when_on_active_and_when_not_on_inactive_resolve_at_once() -> None:
    mach = await started(initial=["A"])
    assert mach.when("A").done()
    assert mach.when_not("B").done()
    assert not mach.when("A", "B").done()


@async_test
async def test_when_not_waits_for_all_inactive() -> None:
    mach = await started(initial=["A", "B"])
    w1, w2 = mach.when_not("A", "B"), mach.when_not("B")
    await mach.remove("A")
    assert not w1.done() and not w2.done()
    await mach.remove("B")
    await asyncio.wait_for(asyncio.gather(w1, w2), 1)


@async_test
async def test_when_time() -> None:
    mach = await started(initial=["A", "B"])
    w1 = mach.when_time({"A": 5, "B": 2})
    w3 = mach.when_time({"A": 9, "B": 2})
    await mach.remove("A", "B")
    await mach.add("A", "B")
    assert not w1.done()  # (A:3 B:3)
    await mach.remove("A")
    await mach.add("A")
    await asyncio.sleep(0)
    assert w1.done() and not w3.done()  # (A:5 B:3)
    for _ in range(2):
        await mach.remove("A")
        await mach.add("A")
    await asyncio.wait_for(w3, 1)
    with pytest.raises(ValueError):
        mach.when_time({})


@async_test
async def test_when_ticks_counts_from_the_call() -> None:
    mach = await started()
    w = mach.when_ticks("A", 2)
    await mach.add("A")
    assert not w.done()
    await mach.remove("A")
    await asyncio.wait_for(w, 1)
    with pytest.raises(ValueError):
        mach.when_ticks("A", 0)


@async_test
async def test_when_args_matches_the_mutation_args() -> None:
    mach = await started(RELS)
    w = mach.when_args("B", {"foo": "bar"})
    await mach.add("B", args={"foo": "foo"})
    await asyncio.sleep(0)
    assert not w.done()
    await mach.add("B", args={"foo": "bar", "other": 1})
    await asyncio.wait_for(w, 1)


@async_test
async def test_cancelled_waiter_is_unregistered() -> None:
    mach = await started()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(mach.when("A"), 0.01)
    w = mach.when_args("A", {"x": 1})
    w.cancel()
    q = mach.when_queue(99)
    q.cancel()
    await asyncio.sleep(0)
    assert mach._waiters.count == 0 and mach._waiters.args_count == 0
    assert mach._waiters._queue == []
    await mach.add("A", args={"x": 1})


@async_test
async def test_close_fails_pending_waiters() -> None:
    mach = await started()
    w = mach.when("A")
    w2 = mach.when_args("B", {})
    await mach.aclose()
    with pytest.raises(LifecycleError, match="closed"):
        await w
    with pytest.raises(LifecycleError):
        await w2


@async_test
async def test_when_err() -> None:
    mach = await started(NOREL, handlers={"A_state": lambda e: [][1]})
    w = mach.when_err()
    await mach.add("A")
    await asyncio.wait_for(w, 1)
    assert isinstance(mach.err, IndexError)


@async_test
async def test_fork_bound_to_a_state_is_cancelled_when_it_ends() -> None:
    started_ev = asyncio.Event()
    cancelled = asyncio.Event()

    async def work() -> None:
        started_ev.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def A_state(e: Event) -> None:
        e.machine.fork(work(), state="A")

    mach = await started(NOREL, handlers={"A_state": A_state})
    await mach.add("A")
    await asyncio.wait_for(started_ev.wait(), 1)
    await mach.add("B")  # A's tick does not move: the task lives on
    await asyncio.sleep(0)
    assert not cancelled.is_set()
    await mach.remove("A")
    await asyncio.wait_for(cancelled.wait(), 1)
    assert not mach.is_err


@async_test
async def test_fork_error_becomes_exception_state() -> None:
    async def boom() -> None:
        raise OSError("network down")

    mach = await started(Schema.of(Fetching=State()))
    mach.fork(boom())
    await asyncio.wait_for(mach.when(EXCEPTION), 1)
    assert isinstance(mach.err, OSError)


@async_test
async def test_close_cancels_forks() -> None:
    mach = await started()
    task = mach.fork(asyncio.sleep(10))
    await mach.aclose()
    assert task.cancelled()


def test_waiting_needs_a_started_machine() -> None:
    mach = Machine(NOREL)
    with pytest.raises(LifecycleError, match="not started"):
        mach.when("A")
