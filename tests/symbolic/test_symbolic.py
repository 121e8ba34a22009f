"""The symbolic method on its own: exact arithmetic, errors, WFC, reachable
scope by inductive invariant, and machines far too wide to enumerate."""

from __future__ import annotations

from typing import Any

import pytest
import z3  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.engine.check import check
from convergent.errors import BuildError
from convergent.spec import loads_spec
from convergent.spec.model import Assignment, Event, MachineSpec, Var
from convergent.symbolic import SymbolicUndecided, SymbolicUnsupported, check_symbolic
from convergent.symbolic.encode import Encoder
from reference import RefMachine

TOP = 2**31

ACCOUNT = f"""
machine: wide_account
vars:
  balance: {{int: [0, {TOP}]}}
  held: {{int: [0, {TOP}]}}
  approved: bool
  status: {{enum: [open, frozen, closed]}}
initial: {{status: open}}
invariants:
  - name: holds_covered
    holds: held <= balance
    repair: {{held: balance}}
  - name: closed_is_empty
    holds: status != 'closed' or (balance == 0 and held == 0)
    repair: {{status: frozen}}
events:
  deposit:
    guard: status == 'open'
    apply: {{balance: balance + 100}}
  withdraw:
    guard: status == 'open' and balance - held >= 50
    apply: {{balance: balance - 50}}
  hold:
    guard: status == 'open' and balance - held >= 30
    apply: {{held: held + 30}}
  release:
    guard: held >= 30
    apply: {{held: held - 30}}
  approve:
    apply: {{approved: true}}
  capture:
    guard: approved and held >= 30
    apply: {{held: held - 30, balance: balance - 30}}
independent:
  - [deposit, approve]
  - [withdraw, approve]
  - [hold, approve]
  - [release, approve]
  - [deposit, release]
"""


def _eval(text: str, values: dict[str, Any], spec: MachineSpec) -> tuple[Any, bool]:
    enc = Encoder(spec)
    got = enc.expr(text, enc.const_state(values), "int")
    err = got.err is not None and z3.is_true(z3.simplify(got.err))
    return (None if err else z3.simplify(got.term).as_long()), err


_XY = loads_spec("machine: m\nvars:\n  x: {int: [-100, 100]}\n  y: {int: [-9, 9]}\n"
                 "events:\n  e:\n    apply: {x: x}\n")


@settings(max_examples=300, deadline=None)
@given(st.integers(-100, 100), st.integers(-9, 9), st.sampled_from(["//", "/", "%"]))
def test_floor_division_and_modulo_are_pythons(x: int, y: int, op: str) -> None:
    value, err = _eval(f"x {op} y", {"x": x, "y": y}, _XY)
    if y == 0:
        assert err
    else:
        assert not err
        assert value == (x % y if op == "%" else x // y)


def test_short_circuit_hides_an_unreached_division_by_zero() -> None:
    assert _eval("if y == 0 then 0 else x // y", {"x": 7, "y": 0}, _XY) == (0, False)
    enc = Encoder(_XY)
    got = enc.expr("y != 0 and x // y > 1", enc.const_state({"x": 7, "y": 0}), "bool")
    assert got.err is not None and z3.is_false(z3.simplify(got.err))
    got = enc.expr("y == 0 or x % y > 1", enc.const_state({"x": 7, "y": 0}), "bool")
    assert z3.is_false(z3.simplify(got.err))


DIV = """
machine: div
vars:
  x: {{int: [0, {top}]}}
  y: {{int: [0, {top}]}}
{invariants}
events:
  split:
    apply: {{x: {value}}}
"""
NONZERO = "invariants:\n  - name: nz\n    holds: y != 0\n    repair: {y: 1}\n"


def test_division_by_zero_at_a_valid_state_is_a_build_error() -> None:
    with pytest.raises(BuildError) as info:
        check_symbolic(loads_spec(DIV.format(top=10**9, invariants="", value="x // y")))
    assert info.value.state is not None and info.value.state["y"] == 0
    assert "split" in str(info.value)
    safe = DIV.format(top=10**9, invariants=NONZERO, value="if y == 0 then x else x // y")
    assert check_symbolic(loads_spec(safe)).verdict == "pass"


@pytest.mark.parametrize("top", [6, 10**9])
def test_division_by_zero_at_an_invalid_state_is_a_build_error_as_in_enumeration(
        top: int) -> None:
    """CC2 evaluates events at invalid states: y == 0 there fails."""
    spec = loads_spec(DIV.format(top=top, invariants=NONZERO, value="x // y"))
    with pytest.raises(BuildError, match="invalid state") as info:
        check_symbolic(spec)
    assert info.value.state is not None and info.value.state["y"] == 0
    if top == 6:
        with pytest.raises(BuildError, match="invalid state"):
            check(spec, scope="all", method="enumerate")


def test_overflow_error_names_the_event_and_a_state_in_range() -> None:
    spec = loads_spec(f"machine: o\nvars:\n  b: {{int: [0, {TOP}], overflow: error}}\n"
                      "events:\n  add:\n    apply: {b: b + 7}\n")
    with pytest.raises(BuildError) as info:
        check_symbolic(spec)
    assert info.value.state is not None and TOP - 7 < info.value.state["b"] <= TOP
    assert "outside" in str(info.value)


def test_repair_cycle_is_a_concrete_wfc_counterexample() -> None:
    spec = loads_spec(f"""
machine: loop
vars:
  x: {{int: [0, {2**40}]}}
  on: bool
invariants:
  - name: low
    holds: x <= 5 or on
    repair: {{on: true}}
  - name: off
    holds: not on or x > {2**39}
    repair: {{on: false}}
events:
  bump:
    apply: {{x: x + 1}}
""")
    report = check_symbolic(spec)
    assert report.verdict == "fail" and not report.wfc.ok and report.cc1 is None
    cex = report.wfc.counterexample
    assert cex is not None and cex.cycle[0] == cex.state and len(cex.cycle) == 2
    assert 5 < cex.state["x"] <= 2**39
    m = RefMachine(spec)
    ids = [m.encode(s) for s in cex.cycle]
    names = [i.name for i in spec.invariants]
    for k, sid in enumerate(ids):   # each repair leads to the next state of the loop
        assert m.repair(names.index(cex.repairs[k]), sid) == ids[(k + 1) % len(ids)]


def test_long_repair_chain_is_undecided_never_a_pass() -> None:
    spec = loads_spec("""
machine: slow
vars:
  x: {int: [0, 1000]}
invariants:
  - name: zero
    holds: x == 0
    repair: {x: x - 1}
events:
  up:
    apply: {x: x + 1}
""")
    with pytest.raises(SymbolicUndecided, match="within 16 steps"):
        check_symbolic(spec, max_depth=16)
    # enumeration knows the answer: 1000 repairs from the top
    assert check(spec, scope="all", method="enumerate").wfc.max_depth == 1000


def test_python_rules_are_refused_with_a_reason() -> None:
    x = Var.integer("x", 0, 3)
    spec = MachineSpec("py", (x,), (), (Event("e", Assignment(fn=lambda s: s.set("x", 1))),),
                       (), {"x": 0})
    with pytest.raises(SymbolicUnsupported, match="Python function"):
        check_symbolic(spec)


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="scope"):
        check_symbolic(_XY, scope="everything")
    with pytest.raises(ValueError, match="max_depth"):
        check_symbolic(_XY, max_depth=-1)


# ---------------------------------------------------------------- wide machines


def _nf(m: RefMachine, spec: MachineSpec, sid: int) -> int:
    while True:
        bad = [i for i in range(len(spec.invariants)) if not m.holds(i, sid)]
        if not bad:
            return sid
        sid = m.repair(bad[0], sid)


@pytest.mark.parametrize("scope", ["all", "reachable"])
def test_wide_account_passes(scope: str) -> None:
    report = check_symbolic(loads_spec(ACCOUNT), scope=scope)
    assert report.method is not None and report.method["kind"] == "symbolic"
    assert report.states.total == (TOP + 1) ** 2 * 2 * 3
    # a closed account with held > balance: held repaired, then status
    assert report.wfc.ok and report.wfc.max_depth == 2
    assert report.cc1 is not None and report.cc1.ok and report.cc1.ok_all_valid
    assert report.verdict == "pass"
    assert report.to_dict()["method"]["kind"] == "symbolic"


def test_wide_account_cc2_counterexample_replays() -> None:
    """Lazy normalization is not safe here: at an invalid state a deposit can
    cover the hold, where the repair would first cut the hold."""
    spec = loads_spec(ACCOUNT)
    report = check_symbolic(spec, strict=True)
    assert report.verdict == "fail" and report.cc2 is not None and not report.cc2.ok
    cex = report.cc2.counterexample
    assert cex is not None
    m = RefMachine(spec)
    e = [ev.name for ev in spec.events].index(cex.event)
    s = m.encode(cex.state)
    bad = [i for i in range(len(spec.invariants)) if not m.holds(i, s)]
    assert bad, "a CC2 counterexample is an invalid state"
    assert m.decode(_nf(m, spec, m.raw(e, s, at_valid=False))) == cex.direct
    assert m.decode(_nf(m, spec, m.raw(e, m.repair(bad[0], s), at_valid=False))) == \
        cex.after_repair
    assert cex.direct != cex.after_repair


def test_wide_account_fails_where_the_deposit_saturates() -> None:
    spec = loads_spec(ACCOUNT + "  - [capture, deposit]\n")
    report = check_symbolic(spec)
    assert report.verdict == "fail" and report.cc1 is not None
    cex = report.cc1.counterexample
    assert cex is not None and cex.events == ("capture", "deposit")
    assert TOP - 130 < cex.state["balance"] <= TOP   # only near the top bound
    # replay both orders concretely, state by state
    m = RefMachine(spec)
    idx = {e.name: i for i, e in enumerate(spec.events)}

    def step(e: str, sid: int) -> int:
        return _nf(m, spec, m.raw(idx[e], sid, at_valid=True))

    s = m.encode(cex.state)
    assert m.decode(step("deposit", step("capture", s))) == cex.order1
    assert m.decode(step("capture", step("deposit", s))) == cex.order2
    assert cex.order1 != cex.order2
    assert report.cc1.failing_pairs_all_valid == [("capture", "deposit")]


LOCKED = """
machine: locked
vars:
  x: {{int: [0, {top}]}}
  y: {{int: [0, {top}]}}
  locked: bool
events:
  copy:
    apply: {{x: "if locked then y else x + 1"}}
  grow:
    apply: {{y: y + 1}}
independent:
  - [copy, grow]
"""


@pytest.mark.parametrize("top", [5, TOP])
def test_reachable_scope_by_an_inductive_invariant(top: int) -> None:
    spec = loads_spec(LOCKED.format(top=top))
    reach = check_symbolic(spec, scope="reachable")
    assert reach.verdict == "pass" and reach.cc1 is not None and reach.cc1.scope == "reachable"
    assert reach.method is not None and "not locked" in reach.method["inductive_invariant"]
    every = check_symbolic(spec, scope="all")
    assert every.verdict == "fail" and every.cc1 is not None
    assert every.cc1.ok_reachable and not every.cc1.ok_all_valid
    cex = every.cc1.counterexample
    assert cex is not None and cex.state["locked"] is True and cex.trace is None
    if top == 5:   # small enough to hold it to enumeration
        assert check(spec, scope="reachable", method="enumerate").verdict == "pass"
        assert check(spec, scope="all", method="enumerate").verdict == "fail"
