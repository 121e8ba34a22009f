"""Lifecycle, tracers and breakpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from convergent.relational import (
    Event,
    HistoryTracer,
    LifecycleError,
    Machine,
    MachineState,
    Mutation,
    MutationType,
    Transition,
)

from .helpers import NOREL, assert_states, async_test, started


def test_mutating_before_start_is_an_error() -> None:
    mach = Machine(NOREL)

    async def main() -> None:
        with pytest.raises(LifecycleError, match="not started"):
            await mach.add("A")
        with pytest.raises(LifecycleError, match="not started"):
            mach.add_nowait("A")

    asyncio.run(main())
    assert mach.lifecycle is MachineState.NEW


@async_test
async def test_mutating_after_close_is_an_error() -> None:
    mach = Machine(NOREL)
    async with mach:
        assert mach.lifecycle is MachineState.RUNNING
        await mach.add("A")
    assert mach.lifecycle is MachineState.CLOSED
    with pytest.raises(LifecycleError, match="closed"):
        await mach.add("B")
    with pytest.raises(LifecycleError, match="closed"):
        await mach.start()
    await mach.aclose()  # idempotent
    assert_states(mach, "A")


@async_test
async def test_close_from_a_handler_stops_the_queue() -> None:
    async def A_state(e: Event) -> None:
        e.machine.add_nowait("B")
        await e.machine.aclose()

    mach = await started(NOREL, handlers={"A_state": A_state})
    await mach.add("A")
    assert_states(mach, "A")
    assert mach.lifecycle is MachineState.CLOSED


def test_constructor_validates_arguments() -> None:
    with pytest.raises(TypeError):
        Machine({"A": {}})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="handler_timeout"):
        Machine(NOREL, handler_timeout=0)
    with pytest.raises(ValueError, match="queue_limit"):
        Machine(NOREL, queue_limit=0)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def mutation_queued(self, machine: Machine, mutation: Mutation) -> None:
        self.calls.append(f"queued {mutation.describe(machine.state_names)}")

    def transition_start(self, tx: Transition) -> None:
        self.calls.append(f"start {tx.called_states}")

    def handler_start(self, tx: Transition, name: str) -> None:
        self.calls.append(f"handler {name}")

    def transition_end(self, tx: Transition) -> None:
        self.calls.append(f"end {tx.accepted}")

    def queue_end(self, machine: Machine) -> None:
        self.calls.append("queue end")


@async_test
async def test_tracer_hooks_in_order() -> None:
    rec = Recorder()
    mach = await started(NOREL, handlers={"A_state": lambda e: None}, tracers=[rec])
    await mach.add("A")
    assert rec.calls == ["queued [add] A", "start ('A',)", "handler A_state", "end True",
                         "queue end"]
    mach.detach_tracer(rec)
    await mach.add("B")
    assert len(rec.calls) == 5
    with pytest.raises(ValueError):
        mach.detach_tracer(rec)


@async_test
async def test_broken_tracer_does_not_change_the_machine() -> None:
    class Broken:
        def transition_end(self, tx: Transition) -> None:
            raise RuntimeError("tracer bug")

    mach = await started(NOREL, tracers=[Broken()])
    assert (await mach.add("A")).executed
    assert_states(mach, "A")
    assert not mach.is_err


def test_bind_tracer_validation() -> None:
    mach = Machine(NOREL)
    with pytest.raises(TypeError, match="no tracer hook"):
        mach.bind_tracer(object())
    history = HistoryTracer()
    mach.bind_tracer(history)
    with pytest.raises(ValueError, match="already bound"):
        mach.bind_tracer(history)
    assert mach.tracers == (history,)
    with pytest.raises(ValueError):
        HistoryTracer(0)


@async_test
async def test_history_tracer_records_transitions() -> None:
    history = HistoryTracer(maxlen=3)
    mach = await started(NOREL, handlers={"C_enter": lambda e: False}, tracers=[history])
    await mach.add("A")
    await mach.set("B")
    await mach.add("C")
    last = history.last()
    assert last is not None and not last.accepted and last.called == ("C",)
    recs = history.records
    assert [(r.type, r.before, r.after) for r in recs] == [
        (MutationType.ADD, (), ("A",)),
        (MutationType.SET, ("A",), ("B",)),
        (MutationType.ADD, ("B",), ("B",)),
    ]
    assert recs[1].activated == ("B",) and recs[1].deactivated == ("A",)
    assert history.activated_recently("B") and not history.activated_recently("C")
    await mach.add("D")
    assert len(history) == 3 and history.total == 4
    history.clear()
    assert history.last() is None


@async_test
async def test_breakpoints_call_back_on_matching_mutations() -> None:
    hits: list[Any] = []
    mach = await started()
    mach.add_breakpoint(added=["A"], callback=hits.append)
    mach.add_breakpoint(removed=["B"], strict=True, callback=hits.append)
    await mach.add("A")
    await mach.add("A", "B")
    await mach.remove("B")
    await mach.remove("B")  # strict: B is already inactive
    assert [m.describe(mach.state_names) for m in hits] == ["[add] A", "[remove] B"]
    with pytest.raises(ValueError):
        mach.add_breakpoint()
