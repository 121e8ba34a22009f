"""Relations: which states a mutation activates and deactivates (the reference's
relation scenarios, rewritten)."""

from __future__ import annotations

from typing import Any

import pytest

from convergent.relational import (
    EXCEPTION,
    LogLevel,
    Machine,
    Schema,
    State,
    UnknownStateError,
)

from .helpers import NOREL, RELS, History, assert_states, async_test, schema_with, started


def logged(schema: Schema) -> tuple[Machine, list[str]]:
    lines: list[str] = []
    mach = Machine(schema, log_level=LogLevel.EVERYTHING,
                   logger=lambda _lvl, msg: lines.append(msg))
    return mach, lines


@async_test
async def test_single_state_active() -> None:
    mach = await started(initial=["A"])
    assert_states(mach, "A")
    assert mach.is_active("A") and not mach.is_active("A", "B")


@async_test
async def test_add_keeps_other_states() -> None:
    mach = await started(initial=["A"])
    assert (await mach.add("B")).executed
    assert_states(mach, "A", "B")


@async_test
async def test_set_replaces_active_states() -> None:
    mach = await started(initial=["A"])
    await mach.set("B")
    assert_states(mach, "B")


@async_test
async def test_remove_deactivates_only_called() -> None:
    mach = await started(initial=["B", "C"])
    assert (await mach.remove("C")).executed
    assert_states(mach, "B")


@async_test
async def test_state_names_include_exception() -> None:
    mach = await started()
    assert mach.state_names == ("A", "B", "C", "D", EXCEPTION)
    assert mach.schema[EXCEPTION].multi


@async_test
async def test_unknown_state_raises() -> None:
    mach = await started(initial=["A"])
    with pytest.raises(UnknownStateError, match="'E'"):
        await mach.set("E")
    with pytest.raises(UnknownStateError):
        mach.is_active("E")
    assert_states(mach, "A")


@async_test
async def test_remove_relation_deactivates() -> None:
    mach = await started(schema_with(C=State(remove=("D",))), ["D"])
    await mach.add("C")
    assert_states(mach, "C")


@async_test
async def test_remove_relation_between_called_states_cancels() -> None:
    mach, lines = logged(schema_with(C=State(remove=("D",))))
    await mach.start()
    await mach.set("D")
    res = await mach.set("C", "D")
    assert res.canceled
    assert any("[rel:remove] D by C" in line for line in lines)
    assert_states(mach, "D")


@async_test
async def test_active_state_removing_called_state_cancels() -> None:
    mach = await started(schema_with(B=State(remove=("A",))), ["B"])
    assert (await mach.add("A")).canceled
    assert_states(mach, "B")


@pytest.mark.parametrize("kind", ["set", "add"])
@async_test
async def test_cross_blocking_called_state_wins(kind: str) -> None:
    schema = schema_with(C=State(remove=("D",)), D=State(remove=("C",)))
    mach = await started(schema, ["D"])
    mutate = getattr(mach, kind)
    await mutate("C")
    assert_states(mach, "C")
    await mutate("D")
    assert_states(mach, "D")


@async_test
async def test_add_relation_and_skip_when_blocked_together() -> None:
    mach = await started(schema_with(A=State(remove=("D",)), C=State(add=("D",))))
    await mach.set("C")
    assert_states(mach, "C", "D")
    await mach.set("A", "C")
    assert_states(mach, "A", "C")


@async_test
async def test_add_relation_is_optional() -> None:
    # Foo adds Bar, but Baz (active) removes Bar: Foo still activates
    schema = Schema.of(Foo=State(add=("Bar",)), Bar=State(), Baz=State(remove=("Bar",)))
    mach = await started(schema, ["Baz"])
    assert (await mach.add("Foo")).executed
    assert_states(mach, "Baz", "Foo")


@async_test
async def test_add_relation_reaches_two_hops_only() -> None:
    schema = Schema.of(A=State(add=("B",)), B=State(add=("C",)), C=State(add=("D",)), D=State())
    mach = await started(schema)
    await mach.add("A")
    assert_states(mach, "A", "B", "C")


@async_test
async def test_add_relation_not_reapplied_for_active_state() -> None:
    schema = Schema.of(Foo=State(add=("Bar",)), Bar=State())
    mach = await started(schema)
    await mach.add("Foo")
    await mach.remove("Bar")
    await mach.add("Foo")
    assert_states(mach, "Foo")


@async_test
async def test_multi_state_reapplies_add_relation() -> None:
    mach = await started(Schema.of(B=State(multi=True, add=("C",)), C=State()))
    await mach.add("B")
    assert_states(mach, "B", "C")
    await mach.remove("C")
    assert_states(mach, "B")
    await mach.add("B")
    assert_states(mach, "B", "C")


@async_test
async def test_auto_mutation_reapplies_add_of_active_multi_state() -> None:
    # removing C drops A (it requires C); the auto mutation for A then re-applies
    # the add relation of the active multi state B, which brings C back
    mach = await started(RELS)
    await mach.add("B")
    assert_states(mach, "B", "C", "A")
    await mach.remove("C")
    assert_states(mach, "B", "C", "A")
    assert mach.time("A", "B", "C") == (3, 1, 3)


@async_test
async def test_remove_mutation_does_not_readd_through_multi() -> None:
    schema = Schema.of(M=State(multi=True, add=("X",)), X=State())
    mach = await started(schema)
    await mach.add("M")
    assert_states(mach, "M", "X")
    assert (await mach.remove("X")).executed
    assert_states(mach, "M")


@async_test
async def test_require_relation_satisfied_together() -> None:
    mach = await started(schema_with(C=State(require=("D",))), ["A"])
    await mach.set("C", "D")
    assert_states(mach, "C", "D")


@async_test
async def test_require_relation_missing_rejects() -> None:
    mach, lines = logged(schema_with(C=State(require=("D",))))
    await mach.start()
    await mach.set("A")
    res = await mach.set("C", "A")
    assert res.canceled
    assert_states(mach, "A")
    assert any("[reject] C(-D)" in line for line in lines)
    assert any("[cancel:reject] C" in line for line in lines)


@async_test
async def test_removing_required_state_removes_requirer() -> None:
    mach = await started(Schema.of(X=State(require=("Y",)), Y=State()), ["X", "Y"])
    assert (await mach.remove("Y")).executed
    assert_states(mach)


@async_test
async def test_remove_implied_by_multi() -> None:
    schema = schema_with(A=State(multi=True, add=("B",), require=("C",)),
                         B=State(require=("C",)))
    mach = await started(schema, ["A", "B", "C"])
    await mach.remove("B")
    assert_states(mach, "A", "C")


@async_test
async def test_regression_remove_cross_blocked_by_implied() -> None:
    schema = Schema.of(A=State(remove=("B",)), B=State(remove=("A",)), Z=State(add=("B",)))
    mach = await started(schema)
    await mach.set("Z")
    assert_states(mach, "Z", "B")


@async_test
async def test_regression_implied_blocked_by_being_removed() -> None:
    schema = Schema.of(Wet=State(require=("Water",)), Dry=State(remove=("Wet",)),
                       Water=State(add=("Wet",), remove=("Dry",)))
    mach = await started(schema)
    await mach.set("Dry")
    await mach.set("Water")
    assert_states(mach, "Water", "Wet")


@async_test
async def test_set_to_already_active_state_runs_no_exit() -> None:
    hist = History()
    mach = await started(NOREL, ["A", "B"], handlers=hist.table)
    hist.order.clear()
    await mach.set("A")
    assert_states(mach, "A")
    assert hist.count("A_exit") == 0 and hist.count("B_exit") == 1


@async_test
async def test_after_relation_orders_entering() -> None:
    hist = History()
    schema = schema_with(C=State(after=("D",)), A=State(after=("B",)))
    mach = await started(schema, ["A", "B"], handlers=hist.table)
    hist.order.clear()
    await mach.set("C", "D")
    assert_states(mach, "C", "D")
    hist.assert_order("D_enter", "C_enter", "B_D", "A_D", "A_C")
    hist.assert_order("D_state", "C_state")


@async_test
async def test_after_relation_orders_exiting() -> None:
    hist = History()
    schema = schema_with(C=State(after=("D",)), A=State(after=("B",)))
    mach = await started(schema, ["A", "B"], handlers=hist.table)
    hist.order.clear()
    await mach.set("C", "D")
    # active states keep the order they were resolved in: B before A (A after B)
    assert mach.transition is None
    hist.assert_order("B_exit", "A_exit", "B_D", "B_C", "A_D", "A_C")
    hist.assert_order("B_end", "A_end")


@async_test
async def test_require_orders_handlers() -> None:
    order: list[str] = []
    schema = Schema.of(
        A=State(auto=True, require=("B", "C")),
        B=State(auto=True, require=("D",)),
        C=State(auto=True),
        D=State(auto=True),
        Start=State(),
    )

    def recorder(state: str) -> Any:
        return lambda e: order.append(state)

    handlers = {f"{s}_state": recorder(s) for s in "ABCD"}
    mach = await started(schema, handlers=handlers)
    await mach.add("Start")
    assert_states(mach, "A", "B", "C", "D", "Start")
    assert order.index("D") < order.index("B") < order.index("A")
    assert order.index("C") < order.index("A")


def test_sort_states_by_require_topology() -> None:
    from convergent.relational import _resolver as R

    schema = Schema.of(A=State(require=("B", "C")), B=State(require=("D",)), C=State(),
                       D=State())
    c = R.compile_schema(schema)
    idx = c.index
    for start in (["A", "B", "C", "D"], ["C", "D", "A", "B"], ["D", "A", "C", "B"]):
        got = R.sort_states(c, [idx[s] for s in start])
        assert [c.names[i] for i in got] == ["D", "B", "C", "A"]


@async_test
async def test_can_add_checks_relations_only() -> None:
    mach = await started(RELS)
    assert not mach.can_add("A")
    assert mach.can_add("C")
    assert mach.can_remove("C")
    assert_states(mach)


@async_test
async def test_toggle() -> None:
    mach = await started()
    await mach.toggle("A")
    assert mach.is_active("A")
    await mach.toggle("A")
    assert mach.not_active("A")


@async_test
async def test_is_not_any() -> None:
    mach = await started(initial=["A", "B"])
    assert mach.is_active("A", "B") and not mach.is_active("A", "B", "C")
    assert not mach.not_active("A", "B") and not mach.not_active("A", "B", "C")
    assert mach.not_active("D")
    assert mach.any_active(["A", "B"], "C") and mach.any_active(["A", "B", "C"], "A")
    assert not mach.any_active("C")
    assert mach.has("A", "B") and not mach.has("A", "Err")
