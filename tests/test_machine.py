"""The built Machine: O(1) transitions, state values, and clear misuse errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent import (
    BuildError,
    ConvergenceError,
    MachineUsageError,
    Registry,
    SpecError,
    State,
)


def order_registry(pairs: bool = True) -> Registry:
    r = Registry("order_fulfillment")
    status = r.enum("status", "pending", "paid", "shipped", "cancelled")
    paid = r.bool("paid")
    inventory = r.int("inventory", 0, 5)
    r.invariant("no_ship_unpaid", holds=lambda s: s[status] != "shipped" or s[paid],
                repair=lambda s: s.set(status, "pending"))
    r.event("process_payment", guard=lambda s: s[status] == "pending",
            apply=lambda s: s.set(status, "paid").set(paid, True))
    r.event("ship_item", guard=lambda s: s[status] == "paid" and s[inventory] > 0,
            apply=lambda s: s.set(status, "shipped").set(inventory, s[inventory] - 1))
    r.event("restock", apply=lambda s: s.set(inventory, s[inventory] + 1))
    r.event("cancel", guard=lambda s: s[status] == "pending",
            apply=lambda s: s.set(status, "cancelled"))
    if pairs:
        r.independent("process_payment", "restock")
    return r


@pytest.fixture(scope="module")
def machine():
    return order_registry().build()


def test_gsm_order_example_fails_with_readable_counterexample() -> None:
    r = order_registry(pairs=False)
    r.independent("process_payment", "restock")
    r.independent("ship_item", "restock")
    report = r.check()
    assert report.verdict == "fail"
    cex = report.cc1.counterexample
    assert sorted(cex.events) == ["restock", "ship_item"]
    assert cex.state == {"status": "paid", "paid": True, "inventory": 0}
    assert cex.trace == ["process_payment"]
    assert cex.order1 != cex.order2
    with pytest.raises(ConvergenceError) as info:
        r.build()
    # functions are opaque, so build() verifies afresh: the same answer
    assert info.value.report.cc1.counterexample == report.cc1.counterexample
    assert "ship_item" in str(info.value)


def test_initial_and_apply(machine) -> None:
    s = machine.initial
    assert s["status"] == "pending" and s["paid"] is False and s["inventory"] == 0
    s2 = machine.apply(s, "process_payment")
    assert machine.decode(s2) == {"status": "paid", "paid": True, "inventory": 0}
    assert s2 != s and isinstance(s2, State)
    # a false guard is a no-op
    assert machine.apply(s2, "process_payment") == s2
    assert machine.apply(s2, "ship_item") == s2
    s3 = machine.run(["restock", "ship_item"], s2)
    assert s3.to_dict() == {"status": "shipped", "paid": True, "inventory": 0}


def test_states_are_values(machine) -> None:
    a = machine.apply(machine.initial, "restock")
    b = machine.encode({"status": "pending", "paid": False, "inventory": 1})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a._id = 3  # type: ignore[misc]
    status = machine.vars[0]
    assert a[status] == a["status"] == "pending"


def test_apply_many_matches_apply(machine) -> None:
    ids = np.arange(machine.size, dtype=np.int64)
    valid = machine.valid_table
    for e in machine.events:
        out = machine.apply_many(ids, e)
        for sid in ids[valid][:50]:
            assert out[sid] == machine.apply(machine.state(int(sid)), e).id


def test_normalize_is_valid_enabled(machine) -> None:
    bad = machine.encode({"status": "shipped", "paid": False, "inventory": 2})
    assert not machine.is_valid(bad)
    fixed = machine.normalize(bad)
    assert machine.is_valid(fixed)
    assert fixed.to_dict() == {"status": "pending", "paid": False, "inventory": 2}
    assert machine.enabled(machine.initial) == ["process_payment", "restock", "cancel"]


@pytest.mark.parametrize("call, message", [
    (lambda m: m.apply(m.initial, "teleport"), "unknown event 'teleport'"),
    (lambda m: m.encode({"status": "lost", "paid": False, "inventory": 0}), "status='lost'"),
    (lambda m: m.encode({"status": "paid", "paid": False, "inventory": 9}), "inventory=9"),
    (lambda m: m.encode({"status": "paid"}), "missing var"),
    (lambda m: m.encode({"status": "paid", "paid": 1, "inventory": 0}), "expected a bool"),
    (lambda m: m.initial["color"], "unknown var 'color'"),
    (lambda m: m.state(10**9), "outside"),
    (lambda m: m.apply_many(np.array([10**9]), "restock"), "state ids"),
])
def test_misuse_is_a_clear_error(machine, call, message) -> None:
    with pytest.raises(MachineUsageError, match=message.replace("(", r"\(")):
        call(machine)


def test_state_of_another_machine_is_refused(machine) -> None:
    other = order_registry().build()
    with pytest.raises(MachineUsageError, match="not a state of machine"):
        machine.apply(other.initial, "restock")


@pytest.mark.parametrize("declare, message", [
    (lambda r: r.bool("paid"), "duplicate var name 'paid'"),
    (lambda r: r.event("restock", apply=lambda s: s), "duplicate event name 'restock'"),
    (lambda r: r.independent("restock", "restock"), "twice"),
    (lambda r: r.independent("restock", "refund"), "unknown event 'refund'"),
    (lambda r: r.enum("color"), "no values"),
    (lambda r: r.int("n", 3, 1), "empty int range"),
    (lambda r: r.initial(inventory=7), "inventory=7"),
    (lambda r: r.initial(color="red"), "unknown var 'color'"),
    (lambda r: r.event("bad name", apply=lambda s: s), "not an identifier"),
])
def test_registry_misuse(declare, message) -> None:
    with pytest.raises(SpecError, match=message):
        declare(order_registry())


def test_wrong_value_in_a_lambda_is_a_clear_error() -> None:
    r = Registry("m")
    st_ = r.enum("st", "a", "b")
    r.event("go", apply=lambda s: s.set(st_, "c"))
    # the rule and the state are named (issue 11)
    with pytest.raises(BuildError, match="apply of event 'go' at .*st='c'"):
        r.check()


def test_expression_strings_in_the_python_api() -> None:
    r = Registry("m")
    r.enum("st", "a", "b")
    r.int("n", 0, 3)
    r.event("go", guard="st == a and n < 3", apply={"st": "b", "n": "n + 1"})
    r.event("back", apply={"st": "'a'"})
    m = r.build() if r.check().ok else None
    rep = r.check()
    assert rep.footprints["go"] == {"reads": ["st", "n"], "writes": ["st", "n"]}
    assert rep.verdict == "fail"  # go/back race on st
    assert m is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["process_payment", "ship_item", "restock", "cancel"]),
                max_size=30))
def test_run_agrees_with_a_python_simulation(events) -> None:
    m = order_registry().build()
    state = {"status": "pending", "paid": False, "inventory": 0}
    for e in events:
        s = dict(state)
        if e == "process_payment" and s["status"] == "pending":
            s.update(status="paid", paid=True)
        elif e == "ship_item" and s["status"] == "paid" and s["inventory"] > 0:
            s.update(status="shipped", inventory=s["inventory"] - 1)
        elif e == "restock":
            s["inventory"] = min(5, s["inventory"] + 1)
        elif e == "cancel" and s["status"] == "pending":
            s["status"] = "cancelled"
        if s["status"] == "shipped" and not s["paid"]:
            s["status"] = "pending"
        state = s
    assert m.run(events).to_dict() == state


def test_wfc_failure_names_the_loop_and_how_to_reach_it() -> None:
    r = Registry("thermostat")
    mode = r.enum("mode", "idle", "heat", "cool")
    cold, hot = r.bool("too_cold"), r.bool("too_hot")
    r.invariant("cold_means_heat", holds=lambda s: not s[cold] or s[mode] == "heat",
                repair=lambda s: s.set(mode, "heat"))
    r.invariant("hot_means_cool", holds=lambda s: not s[hot] or s[mode] == "cool",
                repair=lambda s: s.set(mode, "cool"))
    r.event("sense_cold", apply=lambda s: s.set(cold, True))
    r.event("sense_hot", apply=lambda s: s.set(hot, True))
    report = r.check()
    assert report.verdict == "fail" and not report.wfc.ok
    cx = report.wfc.counterexample
    assert cx.state["too_cold"] and cx.state["too_hot"]
    assert sorted(cx.repairs) == ["cold_means_heat", "hot_means_cool"]
    assert sorted(cx.trace) == ["sense_cold", "sense_hot"]
    assert report.cc1 is None and report.to_dict()["cc1"]["ok"] is None
    with pytest.raises(ConvergenceError, match="WFC"):
        r.build()


def test_long_repair_chains_and_long_cycles() -> None:
    from convergent.spec.loader import loads_spec
    from convergent import check
    text = ("machine: countdown\nvars:\n  n: {int: [0, 3000]}\n  b: bool\n"
            "invariants:\n  - name: zero_when_b\n    holds: not b or n == 0\n"
            "    repair: {n: n - 1}\n"
            "events:\n  set_b: {apply: {b: true}}\n  bump: {apply: {n: n + 7}}\n")
    rep = check(loads_spec(text, "countdown.yaml"))
    assert rep.wfc.ok and rep.wfc.max_depth == 3000 and rep.verdict == "pass"
    # the same chain closing into a loop of 1,001 repairs
    looping = text.replace("events:", "  - name: never_zero_when_b\n"
                           "    holds: n != 0 or not b\n    repair: {n: 1000}\nevents:")
    rep = check(loads_spec(looping, "loop.yaml"))
    assert not rep.wfc.ok and rep.verdict == "fail"
    cx = rep.wfc.counterexample
    assert len(cx.cycle) == 1001
    assert cx.trace == ["set_b"]
