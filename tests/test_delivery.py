"""The delivery contract (idempotence, order) against the brute-force reference,
and the policy digest: the same for the same meaning, different otherwise."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from convergent.engine.check import analyze, check
from convergent.errors import BuildError
from convergent.spec.loader import loads_spec

from reference import RefMachine, reference_check
from strategies import GMachine, GVar, constructed_machines, machines

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _analyze_both(gm: GMachine, scope: str):
    spec = loads_spec(gm.to_yaml(), "random.yaml")
    try:
        ref = reference_check(spec, scope)
    except BuildError:
        ref = None
    try:
        an = analyze(spec, scope=scope)
    except BuildError:
        an = None
    assert (ref is None) == (an is None), "engine and reference disagree on a build error"
    return spec, ref, an


@SETTINGS
@given(machines(), st.sampled_from(["reachable", "all"]))
def test_idempotence_and_order_agree_with_reference(gm: GMachine, scope: str) -> None:
    spec, ref, an = _analyze_both(gm, scope)
    if an is None or not ref.wfc_ok:
        return
    rep = an.report
    scope_states = (sorted(ref.bfs_depth) if scope == "reachable"
                    else [s for s in range(ref.total) if ref.valid[s]])
    names = [e.name for e in spec.events]
    for i, name in enumerate(names):
        step = ref.step[i]
        idem = all(step[step[s]] == step[s] for s in scope_states)
        assert rep.delivery["idempotent"][name] == idem, name
        wit = [d for d in rep.delivery["not_idempotent"] if d["event"] == name]
        if not idem:
            s = RefMachine(spec).encode(wit[0]["state"])
            assert s in scope_states and step[step[s]] != step[s]
    for fact in rep.delivery["order"]:
        a, b = fact["events"]
        ia, ib = names.index(a), names.index(b)
        sa, sb = ref.step[ia], ref.step[ib]
        commutes = all(sb[sa[s]] == sa[sb[s]] for s in scope_states)
        assert fact["commutes"] == commutes, (a, b)
        declared = {frozenset(p) for p in spec.independent}
        if not commutes:
            bucket = ("errors" if frozenset((a, b)) in declared
                      else "causal_order_required")
            assert [a, b] in rep.delivery[bucket]


@SETTINGS
@given(machines())
def test_auto_mode_passes_exactly_when_declared_pairs_commute(gm: GMachine) -> None:
    spec = loads_spec(gm.to_yaml(), "random.yaml")
    try:
        rep = check(spec, independent="auto")
        ref = reference_check(spec)
    except BuildError:
        return
    if not ref.wfc_ok:
        assert rep.verdict == "fail"
        return
    declared_ok = spec.independent_all or ref.cc1_ok
    assert rep.verdict == ("pass" if declared_ok else "fail")
    # every auto-independent pair really commutes at every reachable state
    names = [e.name for e in spec.events]
    for a, b in rep.delivery["auto_independent"]:
        sa, sb = ref.step[names.index(a)], ref.step[names.index(b)]
        if spec.independent_all or [a, b] not in [list(p) for p in spec.independent]:
            assert all(sb[sa[s]] == sa[sb[s]] for s in ref.bfs_depth)


def _digest(spec) -> str | None:
    try:
        return analyze(spec).report.policy_digest
    except BuildError:
        return None


# a holds that cannot be evaluated (0 / 0) where it is never needed
_ZERO_DIV_HOLDS = GMachine(
    vars=(GVar("a", "bool"), GVar("b", "enum", ("on", "off", "yes", "no"))),
    initial=(),
    invariants=(
        ("inv_a", ("and", ("cmp", "==", ("var", "b"), ("lit", "on")), ("lit", False)),
         (("a", ("lit", False)),)),
        ("inv_b", ("or", ("cmp", "==", ("arith", "+", ("lit", 0),
                                         ("arith", "/", ("lit", 0), ("lit", 0))), ("lit", 0)),
                   ("cmp", "!=", ("var", "a"), ("lit", False))),
         (("a", ("lit", False)),))),
    events=(("go", None, (("a", ("lit", False)),)), ("stop", None, (("a", ("lit", False)),))),
    independent=(("go", "stop"),), parens=True)


@SETTINGS
@example(_ZERO_DIV_HOLDS)
@given(machines())
def test_digest_is_independent_of_representation(gm: GMachine) -> None:
    d_yaml = _digest(loads_spec(gm.to_yaml(), "a.yaml"))
    assume(d_yaml is not None)
    # the same machine with every parenthesis written out, and as Python closures
    d_parens = _digest(loads_spec(dataclasses.replace(gm, parens=not gm.parens).to_yaml(),
                                  "b.yaml"))
    d_closures = _digest(gm.to_spec())
    assert d_yaml == d_parens == d_closures


def _raw_table(spec, i: int) -> list[int]:
    m = RefMachine(spec)
    return [m.raw(i, s, at_valid=False) for s in range(m.total)]


@SETTINGS
@given(machines(), st.data())
def test_digest_changes_exactly_with_meaning(gm: GMachine, data) -> None:
    assume(len(gm.events) >= 2)
    i, j = data.draw(st.permutations(range(len(gm.events))))[:2]
    events = list(gm.events)
    # give event i the guard and assignment of event j, keeping its name
    events[i] = (events[i][0], events[j][1], events[j][2])
    other = dataclasses.replace(gm, events=tuple(events))
    a = loads_spec(gm.to_yaml(), "a.yaml")
    b = loads_spec(other.to_yaml(), "b.yaml")
    da, db = _digest(a), _digest(b)
    assume(da is not None and db is not None)
    try:
        same_meaning = _raw_table(a, i) == _raw_table(b, i)
        fires_a = [RefMachine(a).guard(i, s) for s in range(RefMachine(a).total)]
        fires_b = [RefMachine(b).guard(i, s) for s in range(RefMachine(b).total)]
    except BuildError:
        return
    assert (da == db) == (same_meaning and fires_a == fires_b)


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("machine: m", "machine: m2"),
    lambda t: t.replace("[0, 3]", "[0, 4]"),
    lambda t: t.replace("initial: {n: 1}", "initial: {n: 2}"),
    lambda t: t.replace("n + 1", "n + 2"),
    lambda t: t.replace("[inc, flip]", "[flip, dec]"),
    lambda t: t.replace("flip:", "flop:").replace("[inc, flip]", "[inc, flop]"),
])
def test_digest_changes_with_any_semantic_edit(edit) -> None:
    text = ("machine: m\nvars:\n  n: {int: [0, 3]}\n  b: bool\ninitial: {n: 1}\n"
            "events:\n  inc: {apply: {n: n + 1}}\n  dec: {apply: {n: n - 1}}\n"
            "  flip: {apply: {b: not b}}\nindependent:\n  - [inc, flip]\n")
    base = check(loads_spec(text, "m.yaml")).policy_digest
    assert check(loads_spec(edit(text), "m.yaml")).policy_digest != base
    reformatted = text.replace("{apply: {n: n + 1}}", "\n    apply:\n      n: (n) + 1")
    assert check(loads_spec(reformatted, "m.yaml")).policy_digest == base


def test_state_digest_in_report_machine_and_export(tmp_path) -> None:
    from convergent import Machine
    text = ("machine: m\nvars:\n  n: {int: [0, 3]}\n  b: bool\ninitial: {n: 1}\n"
            "events:\n  inc: {apply: {n: n + 1}}\n  flip: {apply: {b: not b}}\n")
    spec = loads_spec(text, "m.yaml")
    m = Machine.from_spec(spec)
    rep = m.report
    assert rep.to_dict()["initial_digest"] == m.state_digest(m.initial)
    assert m.state_digest(m.apply(m.initial, "inc")) != m.state_digest(m.initial)
    path = tmp_path / "m.json"
    m.export(str(path))
    loaded = Machine.load(str(path))
    assert loaded.policy_digest == m.policy_digest == rep.policy_digest
    assert loaded.state_digest(loaded.initial) == rep.initial_digest


# ---------------------------------------------------------------- the strategies

DISTRIBUTION_EXAMPLES = 200


@pytest.mark.slow
def test_machine_strategies_reach_what_the_properties_assert() -> None:
    """The random machines of every property test here and in test_soundness
    must mostly pass WFC and reach many states (else witnesses, obligations
    and counterexamples at reachable states are rarely checked), and still
    sometimes fail WFC, fail CC1 or raise a build error. Measured with the
    reference checker (not the engine under test), always derandomized."""
    seen: list[tuple[str, int, bool, bool]] = []   # (outcome, reachable, cc1 ok, repairs ran)

    @settings(max_examples=DISTRIBUTION_EXAMPLES, deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    @given(machines())
    def sample(gm: GMachine) -> None:
        spec = loads_spec(gm.to_yaml(), "random.yaml")
        try:
            ref = reference_check(spec)
        except BuildError:
            seen.append(("build_error", 0, True, False))
            return
        if not ref.wfc_ok:
            seen.append(("wfc_fail", 0, True, False))
            return
        reach = len(ref.bfs_depth)
        repairs = not all(ref.valid)
        seen.append(("ok", reach, not ref.cc1_failures, repairs))

    sample()
    n = len(seen)
    ok = [s for s in seen if s[0] == "ok"]
    many = sum(1 for s in ok if s[1] >= 10)
    assert many >= n / 2, f"only {many} of {n} machines pass WFC and reach 10+ states"
    assert sum(1 for s in ok if s[1] >= 30) >= n / 5        # and some reach far more
    assert sum(1 for s in seen if s[0] == "wfc_fail") >= n * 0.04
    assert sum(1 for s in seen if s[0] == "build_error") <= n * 0.15
    assert sum(1 for s in ok if not s[2]) >= n * 0.1        # CC1 counterexamples
    assert sum(1 for s in ok if s[2]) >= n * 0.3            # and passes
    assert sum(1 for s in ok if s[3] and s[1] >= 10) >= n * 0.25   # repairs at work


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(constructed_machines())
def test_constructed_machines_without_a_flaw_pass_wfc(gm: GMachine) -> None:
    """The stratified repairs terminate by construction (see strategies)."""
    if any(name.startswith("fight") for name, *_ in gm.invariants):
        return
    spec = loads_spec(gm.to_yaml(), "random.yaml")
    try:
        ref = reference_check(spec)
    except BuildError:
        assert any(v.overflow == "error" for v in gm.vars)   # the overflow flaw only
        return
    assert ref.wfc_ok
