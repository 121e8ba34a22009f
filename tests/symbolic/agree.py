"""One machine, two methods: the symbolic report must say what enumeration
says, and every counterexample it gives must replay on the enumerated
machine (its step tables) and on the plain reference checker."""

from __future__ import annotations

from typing import Any

from convergent.engine.check import analyze, check
from convergent.errors import BuildError
from convergent.spec.model import MachineSpec
from convergent.symbolic import DEFAULT_MAX_DEPTH, SymbolicUndecided, check_symbolic
from reference import RefMachine

__all__ = ["agree"]


def _full_id(spec: MachineSpec, state: dict[str, Any]) -> int:
    fid, stride = 0, 1
    for var in spec.vars:
        fid += var.digit(state[var.name]) * stride
        stride *= var.size
    return fid


def _decode(spec: MachineSpec, fid: int) -> dict[str, Any]:
    out = {}
    for var in spec.vars:
        fid, d = divmod(int(fid), var.size)
        value = var.values[d]
        out[var.name] = bool(value) if var.kind == "bool" else value
    return out


def _ref_nf(m: RefMachine, sid: int) -> int:
    for _ in range(m.total + 1):
        bad = [i for i in range(len(m.spec.invariants)) if not m.holds(i, sid)]
        if not bad:
            return sid
        sid = m.repair(bad[0], sid)
    raise AssertionError("no normal form")


def _first_failing(m: RefMachine, sid: int) -> int | None:
    for i in range(len(m.spec.invariants)):
        if not m.holds(i, sid):
            return i
    return None


def agree(spec: MachineSpec) -> str:
    """Check ``spec`` both ways (scope all); assert agreement; return the
    outcome: "pass", "fail", "wfc", "build_error" or "undecided"."""
    try:
        an = analyze(spec, scope="all")
    except BuildError:
        try:
            check_symbolic(spec)
        except BuildError:
            return "build_error"
        except SymbolicUndecided:
            return "undecided"  # the error lies past the unproved termination
        raise AssertionError("enumeration raises a BuildError, the symbolic method does not")
    want = an.report
    try:
        got = check_symbolic(spec)
    except SymbolicUndecided:
        depth = want.wfc.max_depth
        assert depth is None or depth > DEFAULT_MAX_DEPTH, (
            f"undecided although repairs end within {depth} steps")
        if depth is None:
            loop = want.wfc.counterexample
            assert loop is not None and len(loop.cycle) > DEFAULT_MAX_DEPTH
        return "undecided"
    assert got.method is not None and got.method["kind"] == "symbolic"
    assert got.verdict == want.verdict, (got.summary(), want.summary())
    assert got.wfc.ok == want.wfc.ok
    assert got.states.total == want.states.total
    assert got.states.valid in (want.states.valid, -1)
    ref = RefMachine(spec)
    if not want.wfc.ok:
        wcex = got.wfc.counterexample
        assert wcex is not None and wcex.cycle and wcex.cycle[0] == wcex.state
        ids = [ref.encode(s) for s in wcex.cycle]
        for i, sid in enumerate(ids):
            first = _first_failing(ref, sid)
            assert first is not None
            assert spec.invariants[first].name == wcex.repairs[i]
            assert ref.repair(first, sid) == ids[(i + 1) % len(ids)]
        return "wfc"
    assert got.wfc.max_depth == want.wfc.max_depth
    assert got.cc1 is not None and want.cc1 is not None
    assert got.cc1.ok_all_valid == want.cc1.ok_all_valid
    assert set(got.cc1.failing_pairs_all_valid) == set(want.cc1.failing_pairs_all_valid)
    assert got.initial == want.initial
    decided = got.method.get("reachable", "")
    if not decided.startswith("not decided"):
        assert got.cc1.ok_reachable == want.cc1.ok_reachable, decided
    step = an.step
    assert step is not None
    index = {e.name: i for i, e in enumerate(spec.events)}
    for c1 in {id(c): c for c in (got.cc1.counterexample, got.cc1.counterexample_all_valid)
                if c is not None}.values():
        sid = _full_id(spec, c1.state)
        assert _first_failing(ref, sid) is None  # a valid state
        a, b = index[c1.events[0]], index[c1.events[1]]
        assert _decode(spec, step[b][step[a][sid]]) == c1.order1
        assert _decode(spec, step[a][step[b][sid]]) == c1.order2
        assert c1.order1 != c1.order2
        if c1.trace is not None:  # a run from the initial state that reaches it
            cur = _full_id(spec, got.initial)
            for name in c1.trace:
                cur = int(step[index[name]][cur])
            assert cur == sid
    assert got.cc2 is not None and want.cc2 is not None
    assert got.cc2.ok == want.cc2.ok
    if got.cc2.counterexample is not None:
        c2 = got.cc2.counterexample
        sid = ref.encode(c2.state)
        first = _first_failing(ref, sid)
        assert first is not None
        e = index[c2.event]
        direct = _ref_nf(ref, ref.raw(e, sid, at_valid=False))
        after = _ref_nf(ref, ref.raw(e, ref.repair(first, sid), at_valid=False))
        assert ref.decode(direct) == c2.direct
        assert ref.decode(after) == c2.after_repair
        assert direct != after
    # scope reachable: decided as enumeration decides it, or said to be scope all
    reach = check_symbolic(spec, scope="reachable")
    assert reach.cc1 is not None
    if reach.cc1.scope == "reachable":
        assert reach.verdict == check(spec, scope="reachable", method="enumerate").verdict
    else:
        assert reach.verdict == "fail" and not want.cc1.ok_all_valid
        assert any("scope 'all'" in w for w in reach.warnings)
    return want.verdict
