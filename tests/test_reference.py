"""The reference checker against the contract: the conformance specs' expected
reports, and hand-built machines (Python functions) whose answers the
contract states or that are small enough to work out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from convergent.errors import BuildError, ConvergentError
from convergent.spec.model import Var
from conftest import shared_path
from reference import reference_check, reference_footprints
from strategies import machines, make_spec

CONFORMANCE = shared_path("conformance", "specs")
GOOD = sorted(p for p in CONFORMANCE.glob("*.yaml") if "_error_" not in p.name)


def _load_spec():
    try:
        from convergent.spec.loader import load_spec
    except ImportError as exc:  # the loader is written in parallel
        pytest.skip(f"convergent.spec.loader.load_spec is not available yet ({exc})")
    return load_spec


def _expected(path: Path) -> dict:
    return json.loads(path.with_name(path.name.replace(".yaml", ".expected.json")).read_text())


def assert_matches_expected(got: dict, want: dict) -> None:
    """Every field the expected file names must match (a subset check)."""
    assert got["verdict"] == want["verdict"]
    for key, value in want["states"].items():
        assert got["states"][key] == value, ("states", key)
    for key, value in want["wfc"].items():
        assert got["wfc"][key] == value, ("wfc", key)
    if "cc1" in want:
        for key, value in want["cc1"].items():
            assert got["cc1"][key] == value, ("cc1", key)
    if "cc2" in want:
        for key, value in want["cc2"].items():
            assert got["cc2"][key] == value, ("cc2", key)
    if want.get("cc1_counterexample_any"):
        assert got["cc1"]["counterexample"] is not None
    if "cc1_counterexample" in want:
        cex = got["cc1"]["counterexample"]
        assert cex is not None
        # compared as a pair: 06's expected file names [add_copy, cancel] while
        # the spec declares [cancel, add_copy] (the contract's own example keeps
        # the declared order, which is what the reference reports)
        assert sorted(cex["events"]) == sorted(want["cc1_counterexample"]["events"])
        assert cex["state"] == want["cc1_counterexample"]["state"]


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_reference_on_conformance_spec(path: Path) -> None:
    load_spec = _load_spec()
    spec = load_spec(path)
    assert_matches_expected(reference_check(spec).to_dict(), _expected(path))


def test_reference_overflow_at_unreachable_valid_state_is_a_build_error(shared: Path) -> None:  # needs ../shared
    load_spec = _load_spec()
    path = CONFORMANCE / "25_error_overflow_unreachable.yaml"
    spec = load_spec(path)
    with pytest.raises(BuildError, match="bonus"):
        reference_check(spec)


# --------------------------------------------------------------------------
# hand-built machines, no loader needed
# --------------------------------------------------------------------------


def order_machine():
    """gsm's README order machine, the contract's worked example."""
    return make_spec(
        [Var.enum("status", "pending", "paid", "shipped", "cancelled"), Var.boolean("paid"),
         Var.integer("inventory", 0, 5), Var.integer("credit", 0, 3, "error")],
        invariants=[
            ("no_ship_unpaid", lambda s: s["status"] != "shipped" or s["paid"],
             lambda s: s.set("status", "pending")),
            ("stock_non_negative", lambda s: s["inventory"] >= 0,
             lambda s: s.set("inventory", 0)),
        ],
        events=[
            ("process_payment", lambda s: s["status"] == "pending",
             lambda s: s.set("status", "paid").set("paid", True)),
            ("ship_item", lambda s: s["status"] == "paid" and s["inventory"] > 0,
             lambda s: s.set("status", "shipped").set("inventory", s["inventory"] - 1)),
            ("restock", None, lambda s: s.set("inventory", s["inventory"] + 1)),
        ],
        independent=[("process_payment", "restock"), ("ship_item", "restock")],
        initial={"status": "pending", "paid": False},
        name="order_fulfillment")


def test_reference_on_the_contract_example() -> None:
    got = reference_check(order_machine()).to_dict()
    assert got["verdict"] == "fail"
    assert got["states"] == {"total": 192, "valid": 168, "reachable": 18}
    assert got["wfc"] == {"ok": True, "max_depth": 1, "counterexample": None}
    cc1 = got["cc1"]
    assert (cc1["ok"], cc1["scope"], cc1["pairs"], cc1["ok_all_valid"]) == (
        False, "reachable", 2, False)
    assert cc1["counterexample"] == {
        "events": ["ship_item", "restock"],
        "state": {"status": "paid", "paid": True, "inventory": 0, "credit": 0},
        "trace": ["process_payment"],
        "order1": {"status": "paid", "paid": True, "inventory": 1, "credit": 0},
        "order2": {"status": "shipped", "paid": True, "inventory": 0, "credit": 0}}
    assert got["cc2"] == {"ok": False, "counterexample": {
        "event": "process_payment",
        "state": {"status": "shipped", "paid": False, "inventory": 0, "credit": 0},
        "direct": {"status": "pending", "paid": False, "inventory": 0, "credit": 0},
        "after_repair": {"status": "paid", "paid": True, "inventory": 0, "credit": 0}}}


def test_reference_footprints_of_the_contract_example() -> None:
    fp = reference_footprints(order_machine())
    assert fp["ship_item"] == {"reads": ["status", "inventory"],
                               "writes": ["status", "inventory"]}   # the contract's
    assert fp["process_payment"] == {"reads": ["status"], "writes": ["status", "paid"]}
    assert fp["restock"] == {"reads": ["inventory"], "writes": ["inventory"]}
    assert fp["invariant no_ship_unpaid"] == {"watches": ["status", "paid"]}
    assert fp["invariant stock_non_negative"] == {"watches": []}    # always true on [0, 5]


def test_reference_footprints_are_semantic() -> None:
    spec = make_spec(
        [Var.boolean("u"), Var.integer("x", 0, 3), Var.integer("y", 0, 3)],
        events=[("keep", None, lambda s: s.set("x", s["x"])),                    # no change
                ("cancel_out", None, lambda s: s.set("y", s["x"] - s["x"] + 1)),  # y := 1
                ("branch", None, lambda s: s.set("x", 0) if s["u"] else s),       # x := u ? 0 : x
                ("saturate", None, lambda s: s.set("x", s["y"] + 10))],           # x := 3
        independent=[])
    fp = reference_footprints(spec)
    assert fp["keep"] == {"reads": [], "writes": []}
    assert fp["cancel_out"] == {"reads": [], "writes": ["y"]}
    assert fp["branch"] == {"reads": ["u", "x"], "writes": ["x"]}
    assert fp["saturate"] == {"reads": [], "writes": ["x"]}


def test_reference_print_queue_guard_noop(shared: Path) -> None:  # needs ../shared
    """Conformance spec 06, by hand: a false guard is a no-op."""
    spec = make_spec(
        [Var.enum("job", "queued", "paused", "cancelled"), Var.integer("copies", 1, 2)],
        events=[
            ("pause", lambda s: s["job"] == "queued", lambda s: s.set("job", "paused")),
            ("resume", lambda s: s["job"] == "paused", lambda s: s.set("job", "queued")),
            ("cancel", None, lambda s: s.set("job", "cancelled")),
            ("add_copy", lambda s: s["job"] == "queued",
             lambda s: s.set("copies", s["copies"] + 1)),
        ],
        independent=[("pause", "cancel"), ("resume", "cancel"), ("cancel", "add_copy")])
    got = reference_check(spec).to_dict()
    assert_matches_expected(got, _expected(CONFORMANCE / "06_print_queue_guard_noop.yaml"))
    assert got["cc1"]["counterexample"]["trace"] == []


def test_reference_two_phase_approval(shared: Path) -> None:  # needs ../shared
    """Conformance spec 17, by hand."""
    pending = lambda s: s["phase"] == "pending"  # noqa: E731
    spec = make_spec(
        [Var.enum("phase", "draft", "pending", "approved", "rejected"),
         Var.boolean("legal_ok"), Var.boolean("finance_ok")],
        invariants=[("approved_needs_both",
                     lambda s: s["phase"] != "approved" or (s["legal_ok"] and s["finance_ok"]),
                     lambda s: s.set("phase", "pending"))],
        events=[
            ("submit", lambda s: s["phase"] == "draft", lambda s: s.set("phase", "pending")),
            ("sign_legal", pending, lambda s: s.set("legal_ok", True)),
            ("sign_finance", pending, lambda s: s.set("finance_ok", True)),
            ("revoke_legal", None, lambda s: s.set("legal_ok", False)),
            ("approve", lambda s: pending(s) and s["legal_ok"] and s["finance_ok"],
             lambda s: s.set("phase", "approved")),
            ("reject", pending, lambda s: s.set("phase", "rejected")),
        ],
        independent=[("sign_legal", "sign_finance"), ("revoke_legal", "sign_finance"),
                     ("approve", "reject")])
    got = reference_check(spec).to_dict()
    assert_matches_expected(got, _expected(CONFORMANCE / "17_two_phase_approval.yaml"))
    cex = got["cc1"]["counterexample"]
    assert len(cex["trace"]) == 3        # submit, then both signatures in either order
    # order1 = approve then reject (reject's guard is then false): approved
    assert cex["order1"]["phase"] == "approved" and cex["order2"]["phase"] == "rejected"


def test_reference_thermostat_wfc_cycle(shared: Path) -> None:  # needs ../shared
    """Conformance spec 11, by hand: two repairs fight forever."""
    spec = make_spec(
        [Var.enum("mode", "idle", "heat", "cool"), Var.boolean("too_cold"),
         Var.boolean("too_hot")],
        invariants=[
            ("cold_means_heat", lambda s: not s["too_cold"] or s["mode"] == "heat",
             lambda s: s.set("mode", "heat")),
            ("hot_means_cool", lambda s: not s["too_hot"] or s["mode"] == "cool",
             lambda s: s.set("mode", "cool")),
        ],
        events=[("sense_cold", None, lambda s: s.set("too_cold", True)),
                ("sense_hot", None, lambda s: s.set("too_hot", True)),
                ("settle", None, lambda s: s.set("too_cold", False).set("too_hot", False)
                 .set("mode", "idle"))],
        independent=[("sense_cold", "settle")])
    result = reference_check(spec)
    got = result.to_dict()
    assert_matches_expected(got, _expected(CONFORMANCE / "11_thermostat_wfc_cycle.yaml"))
    assert "cc1" not in got and "cc2" not in got
    cex = got["wfc"]["counterexample"]
    assert cex["state"]["too_cold"] and cex["state"]["too_hot"]
    assert sorted(cex["repairs"]) == ["cold_means_heat", "hot_means_cool"]


def test_reference_incident_paging_depth_three(shared: Path) -> None:  # needs ../shared
    """Conformance spec 12, by hand: a chain of three repairs."""
    spec = make_spec(
        [Var.integer("sev", 0, 3), Var.boolean("oncall"), Var.boolean("manager"),
         Var.boolean("exec")],
        invariants=[
            ("exec_implies_manager", lambda s: not s["exec"] or s["manager"],
             lambda s: s.set("manager", True)),
            ("manager_implies_oncall", lambda s: not s["manager"] or s["oncall"],
             lambda s: s.set("oncall", True)),
            ("sev3_pages_exec", lambda s: s["sev"] < 3 or s["exec"],
             lambda s: s.set("exec", True)),
        ],
        events=[("escalate", None, lambda s: s.set("sev", s["sev"] + 1)),
                ("page_exec", None, lambda s: s.set("exec", True)),
                ("page_oncall", None, lambda s: s.set("oncall", True))])
    assert_matches_expected(reference_check(spec).to_dict(),
                            _expected(CONFORMANCE / "12_incident_paging_depth.yaml"))


def test_reference_clamp_saturates() -> None:
    """Conformance spec 08's point: clamp saturates (4 + 3 -> 5), so the two
    arrivals commute."""
    spec = make_spec(
        [Var.integer("cars", 0, 5)],
        events=[("car", None, lambda s: s.set("cars", s["cars"] + 1)),
                ("bus", None, lambda s: s.set("cars", s["cars"] + 3))])
    result = reference_check(spec)
    assert result.verdict == "pass"
    assert result.step[1][result.machine.encode({"cars": 4})] == result.machine.encode(
        {"cars": 5})


def test_reference_overflow_error_behind_false_guard_is_fine() -> None:
    """A false guard evaluates nothing, so no overflow (spec 07's point)."""
    spec = make_spec(
        [Var.integer("days", 0, 3, "error")],
        events=[("tick", lambda s: s["days"] > 0, lambda s: s.set("days", s["days"] - 1)),
                ("reset", None, lambda s: s.set("days", 3))],
        independent=[])
    assert reference_check(spec).verdict == "pass"


def test_reference_division_by_zero_in_repair_is_a_build_error() -> None:
    spec = make_spec(
        [Var.integer("x", 0, 2)],
        invariants=[("x_positive", lambda s: s["x"] > 0,
                     lambda s: s.set("x", 2 // s["x"]))],
        events=[("noop", None, lambda s: s.set("x", s["x"]))])
    with pytest.raises(BuildError, match="x_positive"):
        reference_check(spec)


def test_reference_initial_is_normalized() -> None:
    """An invalid initial state is normalized before reachability (spec 04)."""
    spec = make_spec(
        [Var.integer("items", 0, 3), Var.enum("coupon", "none", "pct10")],
        invariants=[("empty_cart_no_coupon",
                     lambda s: s["items"] > 0 or s["coupon"] == "none",
                     lambda s: s.set("coupon", "none"))],
        events=[("add", None, lambda s: s.set("items", s["items"] + 1))],
        initial={"coupon": "pct10"})
    result = reference_check(spec)
    assert result.state(result.s0) == {"items": 0, "coupon": "none"}
    assert result.reachable_count == 4


def test_reference_scope_all_and_strict() -> None:
    """Spec 09's shape: a divergence only at an unreachable valid state."""
    spec = make_spec(
        [Var.enum("status", "draft", "archived"), Var.boolean("hold")],
        events=[("release", None, lambda s: s.set("hold", False)),
                ("purge", lambda s: s["status"] == "archived" and not s["hold"],
                 lambda s: s.set("status", "draft"))],
        initial={"status": "draft"})
    assert reference_check(spec).verdict == "pass"
    assert reference_check(spec, scope="all").verdict == "fail"
    assert reference_check(spec, strict=True).verdict == "fail"
    assert reference_check(spec, scope="all").to_dict()["cc1"]["counterexample"]["trace"] is None


# --------------------------------------------------------------------------
# the reference is internally consistent on random machines
# --------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machines())
def test_reference_is_self_consistent(g) -> None:
    try:
        r = reference_check(g.to_spec())
    except ConvergentError:
        return
    assert r.valid_count == sum(r.valid)
    if not r.wfc_ok:
        return
    m = r.machine
    for sid in range(r.total):
        assert r.valid[r.nf[sid]]
        assert r.nf[r.nf[sid]] == r.nf[sid]
        if r.valid[sid]:
            assert r.depth_nf[sid] == 0
        else:
            assert r.nf[r.rho[sid]] == r.nf[sid]
            assert r.depth_nf[sid] == 1 + r.depth_nf[r.rho[sid]]
        assert m.encode(m.decode(sid)) == sid
    for sid, d in r.bfs_depth.items():
        assert r.valid[sid]
        trace = r.trace_to(sid)
        assert len(trace) == d and r.replay(trace) == sid
        for e in range(len(g.events)):
            assert r.step[e][sid] in r.bfs_depth
            assert r.bfs_depth[r.step[e][sid]] <= d + 1
