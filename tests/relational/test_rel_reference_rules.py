"""Rules of asyncmachine-go (pkg/machine) the machine follows, one test per rule.

Each docstring names the reference rule and the Go function it comes from, so
a change of behaviour here is a change against the reference. The tests build
their starting states with ``Machine(active=...)`` (no relations, no handlers)
and read whole handler traces with ``HandlerTrace``.
"""

from __future__ import annotations

import asyncio

from convergent.relational import (
    EXCEPTION,
    EXECUTED,
    Event,
    HandlerTrace,
    HistoryTracer,
    Machine,
    Outcome,
    Result,
    Schema,
    State,
)

from .helpers import NOREL, assert_states, async_test

# the scenario of issue 14, item 1
IMPLIED_AUTO = Schema.of(
    B=State(remove=("D",)),
    D=State(auto=True),
    E=State(auto=True, require=("D",), add=("D",), remove=("B",)),
    X=State(),
)


@async_test
async def test_auto_state_refused_while_only_implied_is_resolved_again() -> None:
    """Rule: after the negotiation of an auto transition, the targets are
    resolved again from the called states that are still targets
    (pkg/machine/transition.go, ``Transition.emitEvents``, "recheck auto txs":
    ``calledClean`` -> ``resolver.TargetStates`` -> ``setupExitEnter``).

    D is not called (B blocks it as an auto candidate) but E implies it; D's
    enter handler refuses, which drops D from the targets, and resolving again
    from E brings it back. E's requirement holds, and D's final handler runs
    because D is entered.
    """
    trace = HandlerTrace()
    refusals: list[str] = []

    def D_enter(e: Event) -> bool:
        refusals.append(e.transition.called_states[0])
        return False

    async with Machine(IMPLIED_AUTO, active=("B",), handlers={"D_enter": D_enter},
                       tracers=[trace]) as mach:
        assert (await mach.add("X")).executed
        assert_states(mach, "X", "D", "E")
        assert refusals == ["E"]           # D_enter ran once, in the auto mutation [add] E
        assert mach.clock("B", "D", "E", "X") == {"B": 2, "D": 1, "E": 1, "X": 1}
        assert trace.names.count("D_state") == 1
        assert trace.names.count("E_state") == 1


@async_test
async def test_auto_state_refused_and_not_implied_stays_out() -> None:
    """Rule (same ``emitEvents`` recheck): a refused auto state that was
    called is left out of ``calledClean``, so resolving again does not bring it
    back unless a surviving state adds it."""
    schema = Schema.of(A=State(auto=True), B=State(auto=True), C=State())
    async with Machine(schema, handlers={"B_enter": lambda e: False}) as mach:
        await mach.add("C")
        assert_states(mach, "C", "A")


@async_test
async def test_multi_state_called_again_whose_state_handler_raises_is_deactivated() -> None:
    """Rule: when a final handler fails, every state from the failed one on in
    ``Exits + Enters`` is taken out of the active states, whether or not it was
    active before (pkg/machine/machine.go, ``Machine.recoverFinalPhase``), and
    the error adds ``Exception``. A ``multi`` state called while active is in
    ``Enters`` (transition.go, ``Transition.setupExitEnter``)."""
    schema = Schema.of(M=State(multi=True), Other=State())
    calls: list[int] = []

    def M_state(e: Event) -> None:
        calls.append(e.machine.tick("M"))
        raise RuntimeError("boom")

    async with Machine(schema, active=("M",), handlers={"M_state": M_state}) as mach:
        result = await mach.add("M")
        assert result.canceled
        assert calls == [3]                     # the new instance: 1 + 2
        assert not mach.is_active("M")
        assert mach.tick("M") == 4              # and deactivated: + 1
        assert mach.is_err and isinstance(mach.err, RuntimeError)
        assert_states(mach, EXCEPTION)


@async_test
async def test_failed_state_handler_drops_the_states_entered_after_it() -> None:
    """Rule (``Machine.recoverFinalPhase``): the states before the failed one
    keep their new activation; the failed one and those after it do not."""
    schema = Schema.of(A=State(), B=State(after=("A",)), C=State(after=("B",)))

    def B_state(e: Event) -> None:
        raise ValueError("B failed")

    async with Machine(schema, handlers={"B_state": B_state}) as mach:
        await mach.add("A", "B", "C")
        assert_states(mach, "A", EXCEPTION)
        assert mach.clock("A", "B", "C") == {"A": 1, "B": 2, "C": 2}


@async_test
async def test_remove_of_inactive_states_from_a_handler_with_empty_queue_is_skipped() -> None:
    """Rule: ``Remove`` returns ``Executed`` without queueing when the queue is
    empty, a transition is running and none of the states is active
    (pkg/machine/machine.go, ``Machine.Remove``: ``lenQueue == 0 &&
    m.Transition() != nil && !m.Any(statesAny...)``). An unconditional remove
    in ``any_enter`` therefore does not feed itself forever."""
    calls: list[Result] = []

    def any_enter(e: Event) -> bool:
        if len(calls) < 50:               # before the fix this loop never ended
            calls.append(e.machine.remove_nowait("D"))
        return True

    history = HistoryTracer()
    async with Machine(NOREL, handlers={"any_enter": any_enter},
                       tracers=[history]) as mach:
        assert (await mach.add("A")).executed
        await mach.when_queue_ends()
        assert calls == [EXECUTED]
        assert history.total == 1
        assert mach.queue_len == 0


@async_test
async def test_remove_from_a_handler_is_queued_when_a_state_is_active_or_queue_busy() -> None:
    """Rule (``Machine.Remove``): the skip needs all three conditions; an active
    state, or anything already queued, queues the removal as usual."""
    seen: list[Result] = []

    def A_state(e: Event) -> None:
        m = e.machine
        seen.append(m.remove_nowait("B"))      # B is active: queued
        seen.append(m.remove_nowait("C"))      # C inactive, but the queue is not empty

    async with Machine(NOREL, active=("B",), handlers={"A_state": A_state}) as mach:
        await mach.add("A")
        await mach.when_queue_ends()
        assert [r.outcome for r in seen] == [Outcome.QUEUED, Outcome.QUEUED]
        assert_states(mach, "A")


@async_test
async def test_remove_of_inactive_states_outside_a_transition_runs() -> None:
    """Rule (``Machine.Remove``): without a running transition the removal is
    queued and executed as a transition (it is accepted and moves nothing)."""
    history = HistoryTracer()
    async with Machine(NOREL, tracers=[history]) as mach:
        assert (await mach.remove("A")).executed
        assert history.total == 1


@async_test
async def test_duplicate_mutation_queued_from_a_handler_returns_executed() -> None:
    """Rule: a mutation without args equal to one already queued (same type,
    same called states, no ``multi`` state) is not queued and returns
    ``Executed`` (pkg/machine/machine.go, ``Machine.queueMutation`` ->
    ``detectQueueDuplicates`` returns ``uint64(Executed)``, and ``Machine.Add``
    returns ``Executed`` on it)."""
    results: list[Result] = []

    async def A_state(e: Event) -> None:
        m = e.machine
        results.append(m.add_nowait("B"))
        results.append(await m.add("B"))
        results.append(m.add_nowait("B"))
        results.append(m.add_nowait("B", args={"n": 1}))    # args: never a duplicate

    history = HistoryTracer()
    async with Machine(NOREL, handlers={"A_state": A_state}, tracers=[history]) as mach:
        await mach.add("A")
        await mach.when_queue_ends()
        assert [r.outcome for r in results] == [Outcome.QUEUED, Outcome.EXECUTED,
                                                Outcome.EXECUTED, Outcome.QUEUED]
        assert [rec.called for rec in history] == [("A",), ("B",), ("B",)]


@async_test
async def test_duplicate_from_outside_returns_executed_without_running_the_queue() -> None:
    """Rule (``Machine.Add``: ``if queueTick == uint64(Executed) { return
    Executed }``): the duplicate returns before the queue is processed."""
    async with Machine(NOREL) as mach:
        first = mach.add_nowait("C")
        assert first.queued
        assert await mach.add("C") == EXECUTED
        assert not mach.is_active("C")       # the queue has not run yet
        await mach.when_queue(first)
        assert mach.is_active("C")


# ---------------------------------------------------------------- item 5: APIs for tests


@async_test
async def test_active_starts_states_at_tick_one_without_relations_or_handlers() -> None:
    """``Machine(active=...)``: ticks 1, no relation resolved (B removes A and
    still both are active), no handler, tracer or auto mutation runs."""
    schema = Schema.of(A=State(), B=State(remove=("A",)), C=State(auto=True))
    ran: list[str] = []
    history = HistoryTracer()
    mach = Machine(schema, active=("A", "B"), tracers=[history],
                   handlers={"A_state": lambda e: ran.append("A"),
                             "B_state": lambda e: ran.append("B")})
    assert mach.active_states == ("A", "B")
    assert mach.clock() == {"A": 1, "B": 1, "C": 0, EXCEPTION: 0}
    async with mach:
        await asyncio.sleep(0)
        assert ran == [] and history.total == 0 and mach.queue_tick == 1
        assert mach.string() == "(A:1 B:1)"


def test_active_rejects_unknown_states_and_a_bare_string() -> None:
    from convergent.relational import UnknownStateError
    try:
        Machine(NOREL, active=("Nope",))
    except UnknownStateError as exc:
        assert "Nope" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("an unknown state was accepted")
    try:
        Machine(NOREL, active="A")
    except TypeError as exc:
        assert "('A',)" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a bare string was accepted")


@async_test
async def test_handler_trace_sees_every_handler_name_in_the_reference_order() -> None:
    """The names ``Machine.handle`` is called with, bound or not, in the order
    of transition.go ``emitEvents``: exits, enters, self (``emitSelfEvents``),
    state-to-state (``emitStateStateEvents``), any_enter, then ``emitFinalEvents``
    (ends, then states) and any_state."""
    trace = HandlerTrace()
    async with Machine(NOREL, active=("A", "C"), tracers=[trace]) as mach:
        await mach.set("A", "B")
        assert trace.names == [
            "C_exit", "B_enter", "A_A",
            "A_B", "C_A", "C_B",
            "any_enter", "C_end", "B_state", "any_state",
        ]
        trace.clear()
        await mach.remove("B")          # no self handlers for a removal
        assert trace.names == ["B_exit", "B_A", "any_enter", "B_end", "any_state"]


@async_test
async def test_handler_trace_stops_where_a_bound_handler_refuses() -> None:
    trace = HandlerTrace()
    started: list[str] = []

    class Spy:
        def handler_start(self, tx: object, name: str) -> None:
            started.append(name)

    async with Machine(NOREL, handlers={"B_enter": lambda e: False},
                       tracers=[trace, Spy()]) as mach:
        assert (await mach.add("A", "B")).canceled
        assert trace.names == ["A_enter", "B_enter"]
        assert started == ["B_enter"]
        assert trace.of(1) == ["A_enter", "B_enter"]
