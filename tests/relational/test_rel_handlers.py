"""Handlers: order, negotiation, final handlers, async handlers and errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from convergent.relational import (
    EXCEPTION,
    Event,
    HandlerBindingError,
    HandlerTimeoutError,
    LogLevel,
    Machine,
    Schema,
    State,
)

from .helpers import NOREL, History, assert_states, async_test, started


async def tracked(initial: list[str], extra: object = None, **kwargs: Any
                  ) -> tuple[Machine, History]:
    hist = History()
    sources = [hist.table] if extra is None else [extra, hist.table]
    mach = await started(NOREL, initial, handlers=sources, **kwargs)
    hist.order.clear()
    return mach, hist


@async_test
async def test_order_single_to_single() -> None:
    mach, hist = await tracked(["A", "B"])
    await mach.set("C")
    assert hist.order == ["A_exit", "B_exit", "C_enter", "A_C", "B_C", "any_enter",
                          "A_end", "B_end", "C_state", "any_state"]
    assert_states(mach, "C")


@async_test
async def test_order_single_to_multi() -> None:
    mach, hist = await tracked(["A"])
    await mach.set("B", "C")
    hist.assert_order("A_exit", "B_enter", "C_enter", "A_B", "A_C", "B_state", "C_state")
    assert all(hist.count(n) == 1 for n in hist.order)


@async_test
async def test_order_multi_to_multi() -> None:
    mach, hist = await tracked(["A", "B"])
    await mach.set("D", "C")
    hist.assert_order("A_exit", "B_exit", "D_enter", "C_enter", "A_D", "A_C", "B_D", "B_C",
                      "C_state")
    assert_states(mach, "C", "D")


@async_test
async def test_self_handler_order_exact() -> None:
    mach, hist = await tracked(["A"])
    await mach.set("A", "B")
    assert hist.order == ["B_enter", "A_A", "A_B", "any_enter", "B_state", "any_state"]


@async_test
async def test_self_handler_cancels() -> None:
    calls = []

    def A_A(e: Event) -> bool:
        calls.append(e.name)
        return False

    mach, hist = await tracked(["A"], {"A_A": A_A})
    res = await mach.set("A", "B")
    assert res.canceled and calls == ["A_A"]
    assert hist.count("any_enter") == 0
    assert_states(mach, "A")


@async_test
async def test_self_handlers_for_every_unchanged_state() -> None:
    mach, hist = await tracked(["A"])
    await mach.add("B")
    await mach.add("A")
    assert hist.count("A_A") == 2 and hist.count("B_B") == 1


@async_test
async def test_remove_runs_no_self_handlers() -> None:
    mach, hist = await tracked(["A", "B"])
    await mach.remove("B")
    assert hist.count("A_A") == 0 and hist.count("B_exit") == 1 and hist.count("B_end") == 1


@async_test
async def test_state_to_state_handler() -> None:
    mach, hist = await tracked(["A"])
    await mach.add("B")
    assert hist.count("A_B") == 1 and hist.count("B_A") == 0


@async_test
async def test_state_to_state_negotiation_cancels() -> None:
    mach, _ = await tracked(["A"], {"A_B": lambda e: False, "B_A": lambda e: True})
    assert (await mach.add("B")).canceled
    assert_states(mach, "A")


@pytest.mark.parametrize(("kind", "line"), [("set", "[cancel] (D) by D_enter"),
                                            ("add", "[cancel] (D A) by D_enter")])
@async_test
async def test_enter_negotiation_cancels(kind: str, line: str) -> None:
    lines: list[str] = []
    mach = await started(NOREL, ["A"], handlers={"D_enter": lambda e: False},
                         log_level=LogLevel.OPS, logger=lambda _l, m: lines.append(m))
    res = await getattr(mach, kind)("D")
    assert res.canceled
    assert_states(mach, "A")
    assert any(line in m for m in lines), lines


@async_test
async def test_exit_negotiation_cancels_remove() -> None:
    lines: list[str] = []
    mach = await started(NOREL, ["A"], handlers={"A_exit": lambda e: False},
                         log_level=LogLevel.OPS, logger=lambda _l, m: lines.append(m))
    assert (await mach.remove("A")).canceled
    assert_states(mach, "A")
    assert any("[cancel] () by A_exit" in m for m in lines)


@async_test
async def test_only_false_cancels() -> None:
    mach = await started(NOREL, handlers={"A_enter": lambda e: None, "B_enter": lambda e: 0,
                                          "C_enter": lambda e: "no"})
    assert (await mach.add("A")).executed
    assert (await mach.add("B")).executed
    assert (await mach.add("C")).executed


@async_test
async def test_any_enter_cancels_everything() -> None:
    mach = await started(NOREL, handlers={"any_enter": lambda e: False})
    assert (await mach.add("A")).canceled
    assert (await mach.set("B")).canceled
    assert_states(mach)


@async_test
async def test_handler_args_reach_every_handler() -> None:
    seen: list[tuple[str, Any]] = []

    def rec(e: Event) -> None:
        seen.append((e.name, e.args["foo"]))

    mach = await started(NOREL, ["A"], handlers={"B_enter": rec, "A_exit": rec, "C_state": rec})
    await mach.add("B", args={"foo": "bar"})
    await mach.remove("A", args={"foo": "bar"})
    await mach.set("C", args={"foo": "bar"})
    assert seen == [("B_enter", "bar"), ("A_exit", "bar"), ("C_state", "bar")]


@async_test
async def test_transition_info_in_handlers() -> None:
    seen: dict[str, Any] = {}

    def D_enter(e: Event) -> bool:
        tx = e.transition
        seen["enter"] = (tx.states_before, tx.target_states, tx.called_states,
                         e.machine.is_active("D"), e.machine.active_states)
        return True

    def D_state(e: Event) -> None:
        tx = e.transition
        seen["state"] = (e.machine.is_active("D"), tx.entered, tx.exited,
                         tx.clock_after["D"] - tx.clock_before["D"])

    mach = await started(NOREL, ["A"], handlers={"D_enter": D_enter, "D_state": D_state})
    await mach.set("D")
    assert seen["enter"] == (("A",), ("D",), ("D",), False, ("A",))
    assert seen["state"] == (True, ("D",), ("A",), 1)


class Handlers:
    """Handlers as methods, the usual form."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def A_enter(self, e: Event) -> bool:
        self.log.append("A_enter")
        return True

    def A_state(self, e: Event) -> None:
        self.log.append("A_state")

    def helper_not_a_handler(self) -> None:
        raise AssertionError("never called")


@async_test
async def test_methods_and_mapping_sources_run_in_binding_order() -> None:
    obj = Handlers()
    mach = await started(NOREL, handlers=[obj, {"A_state": lambda e: obj.log.append("map")}])
    await mach.add("A")
    assert obj.log == ["A_enter", "A_state", "map"]


def test_typo_in_handler_name_fails_at_construction() -> None:
    class Typo:
        def Fetchng_state(self, e: Event) -> None: ...

    schema = Schema.of(Fetching=State())
    with pytest.raises(HandlerBindingError, match="Fetchng_state"):
        Machine(schema, handlers=Typo())
    with pytest.raises(HandlerBindingError, match="Fetching_stat"):
        Machine(schema, handlers={"Fetching_stat": lambda e: None})
    with pytest.raises(HandlerBindingError, match="not callable"):
        Machine(schema, handlers={"Fetching_state": 3})


def test_ambiguous_handler_name_fails() -> None:
    schema = Schema.of(A=State(), B_C=State(), A_B=State(), C=State())
    Machine(schema)  # fine until a handler uses the clashing name
    with pytest.raises(HandlerBindingError, match="ambiguous"):
        Machine(schema, handlers={"A_B_C": lambda e: None})


@async_test
async def test_multi_state_reenters() -> None:
    order: list[str] = []
    mach = await started(Schema.of(M=State(multi=True)),
                         handlers={"M_enter": lambda e: order.append("M_enter"),
                                   "M_state": lambda e: order.append("M_state"),
                                   "M_M": lambda e: order.append("M_M")})
    await mach.add("M")
    await mach.add("M")
    assert order == ["M_enter", "M_state", "M_enter", "M_M", "M_state"]
    assert mach.tick("M") == 3


@async_test
async def test_async_handlers_are_awaited() -> None:
    log: list[str] = []

    async def A_enter(e: Event) -> bool:
        await asyncio.sleep(0)
        log.append("A_enter")
        return False

    async def B_state(e: Event) -> None:
        await asyncio.sleep(0.01)
        log.append("B_state")

    mach = await started(NOREL, handlers={"A_enter": A_enter, "B_state": B_state})
    assert (await mach.add("A")).canceled
    assert (await mach.add("B")).executed
    assert log == ["A_enter", "B_state"]
    assert_states(mach, "B")


@async_test
async def test_async_handler_timeout_goes_to_exception() -> None:
    async def A_enter(e: Event) -> bool:
        await asyncio.sleep(5)
        return True

    mach = await started(NOREL, handlers={"A_enter": A_enter}, handler_timeout=0.05)
    res = await mach.add("A")
    assert res.canceled
    assert_states(mach, EXCEPTION)
    assert isinstance(mach.err, HandlerTimeoutError) and mach.err.handler == "A_enter"


@async_test
async def test_raise_in_negotiation_cancels_and_sets_exception() -> None:
    lines: list[str] = []
    seen: list[Any] = []

    def B_enter(e: Event) -> bool:
        raise RuntimeError("B_enter broke")

    def Exception_state(e: Event) -> None:
        seen.append((e.args["err"], e.args["handler"]))

    mach = await started(NOREL, ["A"], handlers={"B_enter": B_enter,
                                                 "Exception_state": Exception_state},
                         log_level=LogLevel.OPS, logger=lambda _l, m: lines.append(m))
    res = await mach.add("B")
    assert res.canceled
    assert_states(mach, "A", EXCEPTION)
    assert isinstance(mach.err, RuntimeError) and mach.is_err
    assert seen == [(mach.err, "B_enter")]
    assert any("[cancel] (B A) by recover" in m for m in lines)


@async_test
async def test_raise_in_final_handler_reverts_unhandled_states() -> None:
    lines: list[str] = []

    def B_state(e: Event) -> None:
        raise ValueError("B_state broke")

    mach = await started(NOREL, handlers={"B_state": B_state}, log_level=LogLevel.OPS,
                         logger=lambda _l, m: lines.append(m))
    res = await mach.add("A", "B", "C")
    assert res.canceled
    assert_states(mach, "A", EXCEPTION)
    assert mach.time("A", "B", "C") == (1, 2, 2)
    assert any("[error:add] A B C (B_state" in m for m in lines)


@async_test
async def test_raise_in_end_handler_keeps_exiting_states() -> None:
    def A_end(e: Event) -> None:
        raise ValueError("A_end broke")

    mach = await started(NOREL, ["A", "B"], handlers={"A_end": A_end})
    res = await mach.set("C")
    assert res.canceled
    assert_states(mach, "A", "B", EXCEPTION)
    assert mach.tick("C") == 2


@async_test
async def test_error_in_exception_handler_does_not_loop() -> None:
    calls = []

    def Exception_state(e: Event) -> None:
        calls.append(1)
        raise RuntimeError("handler of errors broke")

    mach = await started(NOREL, handlers={"Exception_state": Exception_state,
                                          "A_state": lambda e: 1 / 0})
    await mach.add("A")
    assert len(calls) == 1
    assert mach.queue_len == 0


@async_test
async def test_add_err_activates_error_states() -> None:
    mach = await started()
    err = KeyError("k")
    res = await mach.add_err(err, "B")
    assert res.executed and mach.is_active("B") and mach.is_err and mach.err is err
    await mach.add_err(ValueError("again"))
    assert mach.tick(EXCEPTION) == 3  # multi: a new instance
    with pytest.raises(TypeError):
        await mach.add_err("not an exception")  # type: ignore[arg-type]


@async_test
async def test_handler_errors_are_logged() -> None:
    import logging

    records: list[logging.LogRecord] = []

    class Sink(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("convergent.relational")
    sink = Sink(level=logging.WARNING)
    logger.addHandler(sink)
    try:
        mach = await started(NOREL, handlers={"A_state": lambda e: 1 / 0})
        await mach.add("A")
    finally:
        logger.removeHandler(sink)
    assert len(records) == 1 and "A_state failed on [add] A" in records[0].getMessage()
    assert records[0].exc_info is not None
