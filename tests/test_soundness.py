"""The fast engine held to the slow reference on random small machines.

Every verdict, count, ok flag and depth must be equal; every counterexample
must be genuine (recomputed by the reference) and be the one the choice rules
pick: CC1 in the reachable scope minimizes (BFS depth, pair index, state id),
CC2 minimizes (event index, state id). Build errors: both raise or neither.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from convergent.errors import BuildError
from reference import RefResult, reference_check, reference_footprints
from strategies import machines

# SOUNDNESS_EXAMPLES=5000 for a longer hunt; SOUNDNESS_SHRINK=1 to shrink a
# failing machine (minutes, with these strategies; off so a failure is quick)
EXAMPLES = int(os.environ.get("SOUNDNESS_EXAMPLES", "500"))
PHASES = tuple(Phase) if os.environ.get("SOUNDNESS_SHRINK") else tuple(
    p for p in Phase if p is not Phase.shrink)
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, phases=PHASES,
                    suppress_health_check=HEALTH)


def engine_check():
    try:
        from convergent.engine import check
    except ImportError as exc:  # the engine is written in parallel
        pytest.skip(f"convergent.engine.check is not available yet ({exc})")
    return check


def _loads_spec():
    try:
        from convergent.spec.loader import loads_spec
    except ImportError as exc:
        pytest.skip(f"convergent.spec.loader.loads_spec is not available yet ({exc})")
    return loads_spec


# --------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------


def _run_reference(spec: Any) -> tuple[RefResult | None, BuildError | None]:
    try:
        return reference_check(spec), None
    except BuildError as exc:
        return None, exc


def _variant(ref: RefResult, scope: str, strict: bool) -> RefResult:
    return dataclasses.replace(ref, scope=scope, strict=strict)


def assert_engine_matches(spec: Any, scope: str = "reachable", strict: bool = False,
                          ref: RefResult | None = None, ref_error: BuildError | None = None,
                          check: Any = None) -> dict | None:
    """Run the engine on ``spec`` and compare with the reference. Returns the
    engine's report dict (None when both raised BuildError)."""
    check = check or engine_check()
    if ref is None and ref_error is None:
        ref, ref_error = _run_reference(spec)
    try:
        report = check(spec, scope=scope, strict=strict)
    except BuildError as exc:
        if ref_error is not None:
            return None
        assert ref is not None
        if not ref.wfc_ok:
            # the engine may evaluate events before it finds the repair cycle;
            # then the error must be one the reference finds at a valid state
            try:
                reference_check(spec, events_when_wfc_fails=True)
            except BuildError:
                return None
            raise AssertionError(
                f"engine raised BuildError ({exc}); the reference finds WFC failing and "
                f"no event failing at any valid state: expected a WFC-fail report") from exc
        raise AssertionError(f"engine raised BuildError, the reference did not: {exc}") from exc
    if ref_error is not None:
        raise AssertionError(f"the reference raised BuildError, the engine did not: {ref_error}")
    assert ref is not None
    ref = _variant(ref, scope, strict)
    got = report.to_dict()
    assert_report_matches(got, ref)
    return got


def _state_id(ref: RefResult, state: dict) -> int:
    assert list(state) == [v.name for v in ref.spec.vars], state
    for v in ref.spec.vars:
        assert type(state[v.name]) is type(v.values[0]), (v.name, state[v.name])
    return ref.machine.encode(state)


def assert_report_matches(got: dict, ref: RefResult) -> None:
    want = ref.to_dict()
    spec = ref.spec
    assert got["verdict"] == want["verdict"], (got["verdict"], want["verdict"])
    assert got["states"]["total"] == ref.total
    assert got["states"]["valid"] == ref.valid_count
    assert got["wfc"]["ok"] == ref.wfc_ok

    if not ref.wfc_ok:
        _check_wfc_counterexample(got["wfc"]["counterexample"], ref)
        return

    assert got["states"]["reachable"] == ref.reachable_count
    assert got["wfc"]["max_depth"] == ref.max_depth
    assert got["wfc"]["counterexample"] is None

    # CC1
    cc1 = got["cc1"]
    assert cc1["scope"] == ref.scope
    assert cc1["pairs"] == len(spec.independent)
    assert cc1["ok"] == ref.cc1_in_scope_ok, ("cc1.ok", cc1["ok"], ref.cc1_in_scope_ok)
    assert cc1["ok_all_valid"] == ref.cc1_ok_all_valid
    if "ok_reachable" in cc1:
        assert cc1["ok_reachable"] == ref.cc1_ok
    if "failing_pairs" in cc1:
        failing = {ref.cc1_failures[i][0] for i in range(len(ref.cc1_failures))
                   if ref.cc1_failures[i][1] in ref.bfs_depth}
        assert sorted(map(tuple, cc1["failing_pairs"])) == sorted(
            spec.independent[k] for k in failing)
    if "failing_pairs_all_valid" in cc1:
        failing = {f[0] for f in ref.cc1_failures}
        assert sorted(map(tuple, cc1["failing_pairs_all_valid"])) == sorted(
            spec.independent[k] for k in failing)

    cex = cc1["counterexample"]
    if ref.cc1_in_scope_ok:
        assert cex is None, cex
    else:
        k, sid = _check_cc1_counterexample(cex, ref)
        if ref.scope == "reachable":
            choice = ref.cc1_choice()
            assert (k, sid) == (choice[0], choice[1]), (
                "CC1 counterexample is genuine but not the minimal (depth, pair, state)",
                cex, want["cc1"]["counterexample"])
    if "counterexample_all_valid" in cc1:
        cex_all = cc1["counterexample_all_valid"]
        if ref.cc1_ok_all_valid:
            assert cex_all is None, cex_all
        elif cex_all is not None:
            _check_cc1_counterexample(cex_all, ref, any_valid=True)

    # CC2
    cc2 = got["cc2"]
    assert cc2["ok"] == ref.cc2_ok
    assert cc2["counterexample"] == want["cc2"]["counterexample"]

    # findings
    findings = got.get("findings")
    if findings is not None:
        assert findings["never_fire"] == want["findings"]["never_fire"]
        assert findings["never_fail"] == want["findings"]["never_fail"]
        assert findings["unreachable_valid"] == want["findings"]["unreachable_valid"]


def _check_footprints(got: dict, ref: RefResult) -> None:
    """The reported footprints are the semantic ones (reference_footprints)."""
    if "footprints" not in got and "invariant_footprints" not in got:
        return
    want = reference_footprints(ref.spec)
    for ev in ref.spec.events:
        if ev.name in got.get("footprints", {}):
            fp = got["footprints"][ev.name]
            assert list(fp["reads"]) == want[ev.name]["reads"], ("reads", ev.name, fp)
            assert list(fp["writes"]) == want[ev.name]["writes"], ("writes", ev.name, fp)
    for inv in ref.spec.invariants:
        if inv.name in got.get("invariant_footprints", {}):
            fp = got["invariant_footprints"][inv.name]
            assert list(fp["watches"]) == want["invariant " + inv.name]["watches"], (
                "watches", inv.name, fp)


def _check_cc1_counterexample(cex: dict, ref: RefResult,
                              any_valid: bool = False) -> tuple[int, int]:
    """``cex`` is a real CC1 failure per the reference; returns (pair index, state id)."""
    assert cex is not None
    spec = ref.spec
    pair = tuple(cex["events"])
    assert pair in spec.independent, (pair, spec.independent)
    k = spec.independent.index(pair)
    sid = _state_id(ref, cex["state"])
    assert ref.valid[sid], "CC1 counterexample at an invalid state"
    names = [e.name for e in spec.events]
    ia, ib = names.index(pair[0]), names.index(pair[1])
    order1 = ref.step[ib][ref.step[ia][sid]]
    order2 = ref.step[ia][ref.step[ib][sid]]
    assert order1 != order2, "CC1 counterexample where the pair commutes"
    assert _state_id(ref, cex["order1"]) == order1
    assert _state_id(ref, cex["order2"]) == order2
    if sid in ref.bfs_depth:
        assert cex["trace"] is not None
        assert len(cex["trace"]) == ref.bfs_depth[sid], "trace is not a shortest path"
        assert ref.replay(cex["trace"]) == sid, "trace does not replay to the state"
    else:
        assert any_valid or ref.scope == "all", "CC1 counterexample at an unreachable state"
        assert cex["trace"] is None
    return k, sid


def _check_wfc_counterexample(cex: dict, ref: RefResult) -> None:
    assert cex is not None, "WFC fails but no counterexample"
    names = [inv.name for inv in ref.spec.invariants]
    if "state" in cex:
        # from the state, repairs reach a cycle
        cur = _state_id(ref, cex["state"])
        seen = []
        while cur not in seen:
            assert not ref.valid[cur], "WFC counterexample state normalizes"
            seen.append(cur)
            cur = ref.rho[cur]
    if cex.get("cycle"):
        cycle = [_state_id(ref, s) for s in cex["cycle"]]
        for i, sid in enumerate(cycle):
            assert not ref.valid[sid]
            assert ref.rho[sid] == cycle[(i + 1) % len(cycle)], "not a cycle of repairs"
        if "repairs" in cex:
            assert list(cex["repairs"]) == [names[ref.first_failing[s]] for s in cycle]


# --------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------

OTHER_MODES = st.sampled_from([("all", False), ("reachable", True), ("all", True)])


@SETTINGS
@given(g=machines(), mode=OTHER_MODES)
def test_engine_matches_reference_on_python_functions(g, mode) -> None:
    """Closures over StateView: the engine's traced-footprint path."""
    check = engine_check()
    spec = g.to_spec()
    ref, err = _run_reference(spec)
    assert_engine_matches(spec, "reachable", False, ref, err, check)
    assert_engine_matches(spec, mode[0], mode[1], ref, err, check)


@SETTINGS
@given(g=machines(), mode=OTHER_MODES)
def test_engine_matches_reference_on_loaded_yaml(g, mode) -> None:
    """The same machines as spec text: the loader and the compiled expressions."""
    check = engine_check()
    loads_spec = _loads_spec()
    text = g.to_yaml()
    spec = loads_spec(text)
    ref, err = _run_reference(spec)
    assert_engine_matches(spec, "reachable", False, ref, err, check)
    assert_engine_matches(spec, mode[0], mode[1], ref, err, check)


@settings(max_examples=max(EXAMPLES * 2 // 3, 1), deadline=None, phases=PHASES,
          suppress_health_check=HEALTH)
@given(g=machines())
def test_loaded_yaml_means_the_same_as_python_functions(g) -> None:
    """The reference on the loaded text and on the closures agree exactly:
    the loader and ``Expr.eval`` implement the contract's expression semantics
    (precedence, floor division, short-circuit, YAML 1.2 scalars)."""
    loads_spec = _loads_spec()
    text = g.to_yaml()
    loaded = loads_spec(text)
    closures = g.to_spec()
    assert [v.name for v in loaded.vars] == [v.name for v in closures.vars]
    assert [v.values for v in loaded.vars] == [v.values for v in closures.vars], text
    assert dict(loaded.initial) == dict(closures.initial), text
    assert list(loaded.independent) == list(closures.independent), text
    ref_a, err_a = _run_reference(loaded)
    ref_b, err_b = _run_reference(closures)
    assert (err_a is None) == (err_b is None), (text, err_a, err_b)
    if ref_a is not None:
        a, b = ref_a.to_dict(), ref_b.to_dict()
        a.pop("machine"), b.pop("machine")
        assert a == b, text


@settings(max_examples=max(EXAMPLES // 25, 4), deadline=None, phases=PHASES,
          suppress_health_check=HEALTH)
@given(g=machines(min_states=4097, max_states=12000), form=st.sampled_from(["python", "yaml"]))
def test_engine_matches_reference_on_larger_spaces(g, form) -> None:
    """Past 4096 states the engine writes its tables in low/high blocks."""
    check = engine_check()
    spec = g.to_spec() if form == "python" else _loads_spec()(g.to_yaml())
    assert_engine_matches(spec, "reachable", False, check=check)


@SETTINGS
@given(g=machines(), form=st.sampled_from(["python", "yaml"]))
def test_reported_footprints_are_the_semantic_ones(g, form) -> None:
    """``footprints`` / ``invariant_footprints`` in the report are what the
    functions really read and write (reference_footprints, by brute force)."""
    check = engine_check()
    spec = g.to_spec() if form == "python" else _loads_spec()(g.to_yaml())
    try:
        got = check(spec).to_dict()
    except BuildError:
        return                          # test_engine_matches_reference_* judge that
    ref, _ = _run_reference(spec)
    if ref is None:                     # WFC fails, BuildError elsewhere: not judged here
        return
    _check_footprints(got, ref)


# --------------------------------------------------------------------------
# under-declared footprints, at random
# --------------------------------------------------------------------------


def _semantic_reads(ref_machine, fn) -> set[str] | None:
    """Vars on which ``fn(state)`` really depends, by brute force over every
    state (None if fn raises somewhere: then leave it alone)."""
    m = ref_machine
    try:
        values = [fn(m.decode(sid)) for sid in range(m.total)]
    except Exception:
        return None
    out = set()
    stride = 1
    for v in m.vars:
        size = len(v.values)
        for sid in range(m.total):
            digit = (sid // stride) % size
            if digit + 1 < size and values[sid] != values[sid + stride]:
                out.add(v.name)
                break
        stride *= size
    return out


@settings(max_examples=max(EXAMPLES // 4, 10), deadline=None, phases=PHASES,
          suppress_health_check=HEALTH)
@given(g=machines(), data=st.data())
def test_under_declared_footprint_is_always_caught(g, data) -> None:
    """Declare a footprint missing one var that a guard or holds really reads:
    loading or checking must fail, naming the event/invariant and the var."""
    from hypothesis import assume

    from reference import RefMachine
    from strategies import _free_vars, evaluate

    check = engine_check()
    _, error = _run_reference(g.to_spec())
    assume(error is None)              # no other build error to get in the way
    m = RefMachine(g.to_spec())
    candidates = []
    for i, (name, guard, apply, *_) in enumerate(g.events):
        if guard is None:
            continue
        reads = _semantic_reads(m, lambda st_, t=guard: evaluate(t, st_.__getitem__))
        for v in sorted(reads or ()):
            candidates.append(("event", i, v))
    for i, (name, holds, repair, *_) in enumerate(g.invariants):
        reads = _semantic_reads(m, lambda st_, t=holds: evaluate(t, st_.__getitem__))
        for v in sorted(reads or ()):
            candidates.append(("invariant", i, v))
    assume(candidates)
    kind, index, missing = data.draw(st.sampled_from(candidates))
    names = [v.name for v in g.vars]
    if kind == "event":
        name, guard, apply, *_ = g.events[index]
        reads = tuple(n for n in names
                      if n in (_free_vars(guard) | _free_vars(apply)) and n != missing)
        writes = tuple(n for n in names if n in {t for t, _ in apply})
        events = list(g.events)
        events[index] = (name, guard, apply, reads, writes)
        g = dataclasses.replace(g, events=tuple(events))
    else:
        name, holds, repair, *_ = g.invariants[index]
        watches = tuple(n for n in names if n in _free_vars(holds) and n != missing)
        invs = list(g.invariants)
        invs[index] = (name, holds, repair, watches)
        g = dataclasses.replace(g, invariants=tuple(invs))
    form = data.draw(st.sampled_from(["python", "yaml"]))
    from convergent.errors import ConvergentError
    with pytest.raises(ConvergentError) as info:
        spec = g.to_spec() if form == "python" else _loads_spec()(g.to_yaml())
        check(spec)
    message = str(info.value)
    assert name in message and missing in message, message
