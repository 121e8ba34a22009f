"""The queue (results, ticks, dedup, prepending) and auto states."""

from __future__ import annotations

import asyncio
from typing import Any

from convergent.relational import (
    EXCEPTION,
    EXECUTED,
    Event,
    HistoryTracer,
    LogLevel,
    Machine,
    MutationType,
    Outcome,
    Result,
    Schema,
    State,
)

from .helpers import NOREL, assert_states, async_test, schema_with, started


def log_sink() -> tuple[dict[str, Any], list[str]]:
    lines: list[str] = []
    return {"log_level": LogLevel.EVERYTHING,
            "logger": lambda _lvl, msg: lines.append(msg)}, lines


@async_test
async def test_nested_mutation_is_queued_with_its_tick() -> None:
    results: list[Result] = []

    async def B_enter(e: Event) -> bool:
        results.append(await e.machine.add("C"))
        return True

    mach = await started(NOREL, ["A"], handlers={"B_enter": B_enter})
    assert mach.queue_tick == 2
    assert (await mach.set("B")).executed
    assert results == [Result(Outcome.QUEUED, 4)]
    assert_states(mach, "B", "C")
    assert mach.queue_tick == 4


@async_test
async def test_duplicates_without_args_are_queued_once() -> None:
    seen: dict[str, Any] = {}

    def A_state(e: Event) -> None:
        m = e.machine
        first = m.add_nowait("B")
        assert first.queued
        assert m.add_nowait("B") == EXECUTED and m.add_nowait("B") == EXECUTED
        seen["after_adds"] = m.queue_len
        m.remove_nowait("B")
        seen["after_remove"] = m.queue_len
        m.remove_nowait("B")
        seen["after_remove2"] = m.queue_len
        m.add_nowait("B", args={"x": 1})
        seen["with_args"] = m.queue_len

    mach = await started(NOREL, ["B"], handlers={"A_state": A_state})
    await mach.add("A")
    assert seen == {"after_adds": 1, "after_remove": 2, "after_remove2": 2, "with_args": 3}
    assert_states(mach, "A", "B")


@async_test
async def test_multi_states_are_never_deduplicated() -> None:
    def A_state(e: Event) -> None:
        e.machine.add_nowait("M")
        e.machine.add_nowait("M")

    mach = await started(Schema.of(A=State(), M=State(multi=True)), handlers={"A_state": A_state})
    await mach.add("A")
    assert mach.tick("M") == 3


@async_test
async def test_queue_is_inspectable_from_handlers() -> None:
    checks: list[bool] = []

    def A_state(e: Event) -> None:
        m = e.machine
        for s in "BCD":
            m.add_nowait(s)
        checks.append(m.queue_len == 3)
        checks.append(m.is_queued(MutationType.ADD, "C"))
        checks.append(not m.is_queued(MutationType.ADD, "A"))
        checks.append(not m.is_queued(MutationType.REMOVE, "C"))
        checks.append(m.transition is not None and m.transition.called_states == ("A",))

    mach = await started(NOREL, handlers={"A_state": A_state})
    await mach.add("A")
    assert checks == [True] * 5
    assert_states(mach, "A", "B", "C", "D")


@async_test
async def test_when_queue_waits_for_a_queued_mutation() -> None:
    done: list[tuple[str, ...]] = []

    def A_state(e: Event) -> None:
        m = e.machine
        m.add_nowait("B")
        m.add_nowait("C")
        res = m.add_nowait("D")

        async def wait() -> None:
            await m.when_queue(res)
            done.append(m.active_states)

        m.fork(wait())

    mach = await started(NOREL, handlers={"A_state": A_state})
    await mach.add("A")
    await asyncio.sleep(0.01)
    assert [sorted(d) for d in done] == [["A", "B", "C", "D"]]


@async_test
async def test_when_queue_ends_during_transition() -> None:
    got: list[asyncio.Future[None]] = []

    def A_state(e: Event) -> None:
        got.append(e.machine.when_queue_ends())
        e.machine.add_nowait("B")

    mach = await started(NOREL, handlers={"A_state": A_state})
    assert mach.when_queue_ends().done()  # idle
    await mach.add("A")
    assert got[0].done()
    assert_states(mach, "A", "B")


@async_test
async def test_nowait_from_outside_runs_soon() -> None:
    mach = await started()
    res = mach.add_nowait("A")
    assert res.queued and res.queue_tick == 2
    assert mach.not_active("A")
    await mach.when_queue(res)
    assert_states(mach, "A")


@async_test
async def test_concurrent_add_during_async_handler_is_queued() -> None:
    gate = asyncio.Event()

    async def A_state(e: Event) -> None:
        await gate.wait()

    mach = await started(NOREL, handlers={"A_state": A_state})
    first = asyncio.ensure_future(mach.add("A"))
    await asyncio.sleep(0)
    second = await mach.add("B")
    assert second.queued
    gate.set()
    assert (await first).executed
    assert_states(mach, "A", "B")


@async_test
async def test_queue_limit_cancels_all_but_exceptions() -> None:
    results: list[Result] = []

    def A_state(e: Event) -> None:
        m = e.machine
        results.append(m.add_nowait("B"))
        results.append(m.add_nowait("C"))
        results.append(m.add_nowait("D"))
        results.append(m.add_err_nowait(RuntimeError("late")))
        results.append(m.add_err_nowait(RuntimeError("later")))

    mach = await started(NOREL, handlers={"A_state": A_state}, queue_limit=2)
    await mach.add("A")
    assert [r.outcome for r in results] == [Outcome.QUEUED, Outcome.QUEUED, Outcome.CANCELED,
                                           Outcome.QUEUED, Outcome.QUEUED]
    assert_states(mach, "A", "B", "C", EXCEPTION)


@async_test
async def test_auto_and_exception_are_prepended() -> None:
    history = HistoryTracer()
    schema = schema_with(B=State(auto=True, require=("A",)))

    def A_state(e: Event) -> None:
        e.machine.add_nowait("C")

    def C_state(e: Event) -> None:
        e.machine.add_nowait("D")
        raise RuntimeError("C broke")

    mach = await started(schema, handlers={"A_state": A_state, "C_state": C_state},
                         tracers=[history])
    await mach.add("A")
    called = [(r.called, r.is_auto) for r in history]
    assert called == [(("A",), False), (("B",), True), (("C",), False),
                      ((EXCEPTION,), False), (("D",), False)]
    assert_states(mach, "A", "B", "D", EXCEPTION)


@async_test
async def test_auto_state_follows_its_requirement() -> None:
    opts, lines = log_sink()
    mach = await started(schema_with(B=State(auto=True, require=("A",))), **opts)
    assert (await mach.add("A")).executed
    assert_states(mach, "A", "B")
    assert any("[auto] B" in m for m in lines)


@async_test
async def test_partial_auto_by_relations() -> None:
    opts, lines = log_sink()
    schema = schema_with(A=State(auto=True), B=State(auto=True, after=("A",), require=("C",)))
    mach = await started(schema, **opts)
    assert (await mach.add("D")).executed
    assert_states(mach, "A", "D")
    assert any("[auto_] +A" in m for m in lines)


@async_test
async def test_partial_auto_all_rejected() -> None:
    opts, lines = log_sink()
    schema = schema_with(C=State(auto=True, require=("B",)), D=State(auto=True, require=("B",)))
    mach = await started(schema, **opts)
    await mach.add("A")
    assert_states(mach, "A")
    assert any("[cancel:reject] C D" in m for m in lines)


@async_test
async def test_partial_auto_by_state_to_state_handler() -> None:
    schema = Schema.of(A=State(auto=True), B=State(auto=True), C=State())
    called: list[str] = []
    mach = await started(schema, handlers={"C_B": lambda e: False,
                                           "B_state": lambda e: called.append("B_state")})
    await mach.add("C")
    assert_states(mach, "C", "A")
    assert called == []


@async_test
async def test_partial_auto_by_enter_handler_drops_its_add() -> None:
    schema = Schema.of(A=State(auto=True), B=State(auto=True, add=("D",)), C=State(), D=State())
    mach = await started(schema, handlers={"B_enter": lambda e: False})
    await mach.add("C")
    assert_states(mach, "C", "A")


@async_test
async def test_self_handler_of_non_auto_state_cancels_auto() -> None:
    schema = Schema.of(A=State(auto=True), B=State(auto=True), C=State())
    mach = await started(schema, handlers={"C_C": lambda e: False})
    await mach.add("C")
    assert_states(mach, "C")


@async_test
async def test_auto_mutations_do_not_chain() -> None:
    schema = Schema.of(Q=State(remove=("Y",)), X=State(auto=True, remove=("Q",)),
                       Y=State(auto=True), Other=State())
    mach = await started(schema)
    await mach.set("Q")
    assert_states(mach, "X")  # Y was blocked by Q when the auto mutation was built
    await mach.add("Other")
    assert_states(mach, "X", "Other", "Y")


@async_test
async def test_no_auto_after_cancelled_transition() -> None:
    history = HistoryTracer()
    schema = schema_with(A=State(auto=True, require=("B",)), C=State(require=("D",)))
    mach = await started(schema, tracers=[history])
    assert (await mach.add("C")).canceled
    assert [r.is_auto for r in history] == [False]


@async_test
async def test_auto_runs_only_after_a_clock_change() -> None:
    allow = [False]
    schema = Schema.of(M=State(multi=True), N=State(), A=State(auto=True, require=("M",)))
    mach = await started(schema, handlers={"A_enter": lambda e: allow[0]})
    await mach.add("M", "N")
    assert_states(mach, "M", "N")  # the auto mutation was refused by A_enter
    allow[0] = True
    await mach.add("N")  # already active, no clock moves: no auto mutation
    assert_states(mach, "M", "N")
    await mach.add("M")  # multi: a new instance moves the clock, auto follows
    assert_states(mach, "M", "N", "A")
    assert mach.tick("M") == 3


def test_queue_results_are_values() -> None:
    assert str(Result(Outcome.QUEUED, 3)) == "queued"
    assert Result(Outcome.QUEUED, 3).queued and not Result(Outcome.QUEUED, 3).executed
    m = Machine(NOREL)
    assert m.queue == () and m.queue_len == 0


RECOMPUTE = Schema.of(
    P=State(), Q=State(),
    Y=State(auto=True, require=("Q",), remove=("P",)),
    Z=State(auto=True, remove=("Q",)),
)


@async_test
async def test_partial_auto_is_resolved_again_without_refused_states() -> None:
    # the auto mutation [Y, Z]: Z removes Q, so Y loses its requirement and is
    # refused; resolving again without Y keeps P, which Y would have removed
    mach = await started(RECOMPUTE)
    await mach.set("P", "Q")
    assert_states(mach, "P", "Z")


def test_static_model_resolves_partial_auto_again() -> None:
    from convergent.relational.static import FiniteModel

    model = FiniteModel(RECOMPUTE)
    after = model.apply(0, 2, [0, 1]).after  # set P Q
    assert model.describe(after) == "(P Z)"
