"""Compositional checking (issue 15, item 2): on every machine small enough
to enumerate, checking by components gives the report whole enumeration
gives (every verdict, count and fact), with genuine counterexamples; and
machines far too big to enumerate are checked and run by components."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from convergent import Registry
from convergent.composed import ComposedMachine
from convergent.engine.check import check
from convergent.engine.compile import compile_machine
from convergent.engine.compose import split
from convergent.errors import BuildError, MachineUsageError
from convergent.spec.loader import loads_spec
from reference import reference_check
from strategies import GMachine, constructed_machines, machines
from test_soundness import _check_cc1_counterexample, _check_wfc_counterexample, _state_id


def _rename(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, tuple):
        if len(node) == 2 and node[0] == "var" and isinstance(node[1], str):
            return ("var", names[node[1]])
        return tuple(_rename(x, names) for x in node)
    return node


def _prefixed(g: GMachine, p: str) -> GMachine:
    names = {v.name: p + v.name for v in g.vars}
    ev = {e[0]: p + e[0] for e in g.events}
    vars_ = tuple(dataclasses.replace(v, name=names[v.name]) for v in g.vars)
    invs = tuple((p + name, _rename(h, names), tuple((names[t], _rename(x, names)) for t, x in r),
                  *[tuple(names[w] for w in ws) for ws in rest])
                 for name, h, r, *rest in g.invariants)
    events = tuple((ev[name], _rename(gd, names) if gd is not None else None,
                    tuple((names[t], _rename(x, names)) for t, x in a),
                    *[tuple(names[w] for w in ws) for ws in rest])
                   for name, gd, a, *rest in g.events)
    pairs = (None if g.independent is None
             else tuple((ev[a], ev[b]) for a, b in g.independent))
    return dataclasses.replace(g, vars=vars_, initial=tuple((names[n], x) for n, x in g.initial),
                               invariants=invs, events=events, independent=pairs)


@st.composite
def composite(draw: Any) -> GMachine:
    """2-3 machines side by side, sharing no var; their invariants and events
    interleaved (list order is repair priority across components too)."""
    k = draw(st.integers(2, 3))
    parts = [_prefixed(draw(st.one_of(constructed_machines(), machines())), f"p{i}_")
             for i in range(k)]
    total = 1
    for g in parts:
        total *= g.total
    assume(total <= 4000)

    def interleave(lists: list[tuple]) -> tuple:
        pools = [list(x) for x in lists]
        out = []
        while any(pools):
            i = draw(st.sampled_from([j for j, p in enumerate(pools) if p]))
            out.append(pools[i].pop(0))
        return tuple(out)

    events = interleave([g.events for g in parts])
    names = [e[0] for e in events]
    if draw(st.booleans()):
        pairs = None
    else:
        own = [p for g in parts for p in g.pairs]
        cross = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                 if a[:3] != b[:3]]
        pairs = tuple(own) + tuple(draw(st.lists(st.sampled_from(cross), unique=True,
                                                 max_size=3)) if cross else ())
    return GMachine(vars=tuple(v for g in parts for v in g.vars),
                    initial=tuple(x for g in parts for x in g.initial),
                    invariants=interleave([g.invariants for g in parts]),
                    events=events, independent=pairs)


SAME = ["verdict", "states", "scope", "strict", "footprints", "invariant_footprints",
        "policy_digest", "initial", "initial_digest"]


SHARED = "shr"


def _cond(draw: Any, top: int) -> tuple:
    op = draw(st.sampled_from(["==", "!=", "<=", ">="]))
    return ("cmp", op, ("var", SHARED), ("lit", draw(st.integers(0, top))))


@st.composite
def shared_composite(draw: Any) -> GMachine:
    """A composite whose components also read one var no rule writes: guards,
    holds and applies conditioned on it. Invariants may get weaker (a valid
    state at every value: the split shares the var) or stronger (a value
    where a component has no valid state, or repairs that never fix it: the
    split falls back, or WFC fails)."""
    from strategies import GVar
    g = draw(composite())
    top = draw(st.integers(1, 2))
    var = GVar(SHARED, "int", lo=0, hi=top)
    assume(g.total * (top + 1) <= 6000)

    def guard(gd: Any) -> Any:
        how = draw(st.sampled_from(["keep", "and", "or"]))
        if how == "keep":
            return gd
        base = gd if gd is not None else ("lit", True)
        return (how, base, _cond(draw, top))

    def apply(items: tuple) -> tuple:
        out = []
        for t, x in items:
            if draw(st.integers(0, 3)) == 0:
                x = ("if", _cond(draw, top), x, ("var", t))
            out.append((t, x))
        return tuple(out)

    events = []
    for name, gd, a, *_declared in g.events:    # declared footprints would now lie
        events.append((name, guard(gd), apply(a)))
    invariants = []
    for name, holds, repair, *_watches in g.invariants:
        how = draw(st.sampled_from(["keep", "keep", "or", "or", "and"]))
        if how != "keep":
            holds = (how, holds, _cond(draw, top))
        invariants.append((name, holds, repair))
    initial = g.initial + ((SHARED, draw(st.integers(0, top))),)
    return dataclasses.replace(g, vars=g.vars + (var,), initial=initial,
                               invariants=tuple(invariants), events=tuple(events))


def _compare(spec: Any, scope: str, strict: bool) -> dict:
    try:
        whole = check(spec, scope=scope, strict=strict, method="enumerate").to_dict()
    except BuildError as exc:
        with pytest.raises(BuildError) as info:
            check(spec, scope=scope, strict=strict, method="compose")
        assert info.value.name == exc.name or str(info.value).split(" ")[:2] == str(
            exc).split(" ")[:2], (str(info.value), str(exc))
        return {}
    parts = check(spec, scope=scope, strict=strict, method="compose").to_dict()
    if parts["method"]["kind"] != "composition":
        # only a split that shared a read-only var may fall back to one component
        assert any(c.shared for c in split(compile_machine(spec))[0])
        assert len(split(compile_machine(spec), share=False)[0]) < 2
        parts["method"] = whole["method"]
        assert parts == {**whole, "seconds": parts["seconds"]}
        return parts
    for key in SAME:
        assert parts[key] == whole[key], key
    assert parts["wfc"]["ok"] == whole["wfc"]["ok"]
    ref = reference_check(spec, scope=scope, strict=strict)
    if not whole["wfc"]["ok"]:
        _check_wfc_counterexample(parts["wfc"]["counterexample"], ref)
        return parts
    assert parts["wfc"]["max_depth"] == whole["wfc"]["max_depth"]
    for key in ("ok", "ok_reachable", "ok_all_valid", "pairs", "scope"):
        assert parts["cc1"][key] == whole["cc1"][key], key
    for key in ("failing_pairs", "failing_pairs_all_valid"):
        assert parts["cc1"][key] == whole["cc1"][key], key
    if whole["cc1"]["counterexample"] is not None:
        _check_cc1_counterexample(parts["cc1"]["counterexample"], ref)
        # the same choice as enumeration: shortest trace, first pair, smallest state
        assert parts["cc1"]["counterexample"] == whole["cc1"]["counterexample"]
    else:
        assert parts["cc1"]["counterexample"] is None
    if whole["cc1"]["counterexample_all_valid"] is not None:
        _check_cc1_counterexample(parts["cc1"]["counterexample_all_valid"], ref, any_valid=True)
    assert parts["cc2"]["ok"] == whole["cc2"]["ok"]
    if not whole["cc2"]["ok"]:
        c = parts["cc2"]["counterexample"]
        sid = _state_id(ref, c["state"])
        ev = [e.name for e in spec.events].index(c["event"])
        assert any(f[0] == ev and f[1] == sid for f in ref.cc2_failures), c
    for key in ("never_fire", "never_fail", "unreachable_valid"):
        assert parts["findings"][key] == whole["findings"][key], key
    assert {(d.get("event") or d.get("repair")) for d in parts["findings"]["saturating"]} == {
        (d.get("event") or d.get("repair")) for d in whole["findings"]["saturating"]}
    pd, wd = parts["delivery"], whole["delivery"]
    for key in ("idempotent", "order", "causal_order_required", "errors", "contract", "mode"):
        assert pd[key] == wd[key], key
    return parts


MODES = st.sampled_from([("reachable", False), ("all", False), ("reachable", True)])
SETTINGS = settings(max_examples=int(os.environ.get("COMPOSE_EXAMPLES", "70")), deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


@pytest.mark.slow
@SETTINGS
@given(g=composite(), mode=MODES)
def test_composition_agrees_with_enumeration_python(g: GMachine, mode) -> None:
    spec = g.to_spec()
    assume(len(split(compile_machine(spec))[0]) >= 2)
    _compare(spec, *mode)


@pytest.mark.slow
@SETTINGS
@given(g=composite(), mode=MODES)
def test_composition_agrees_with_enumeration_yaml(g: GMachine, mode) -> None:
    spec = loads_spec(g.to_yaml())
    assume(len(split(compile_machine(spec))[0]) >= 2)
    _compare(spec, *mode)


SHARED_SETTINGS = settings(SETTINGS, max_examples=int(os.environ.get("COMPOSE_EXAMPLES", "40")))


@pytest.mark.slow
@SHARED_SETTINGS
@given(g=shared_composite(), mode=MODES)
def test_shared_read_only_vars_agree_with_enumeration_python(g: GMachine, mode) -> None:
    """Components that hold copies of a read-only var: the same verdicts,
    counts (valid states summed over its values), depth, facts and contract
    as whole enumeration, genuine counterexamples (the reachable one the
    same as enumeration's), or a fallback to the split without sharing."""
    spec = g.to_spec()
    assume(any(c.shared for c in split(compile_machine(spec))[0]))
    _compare(spec, *mode)


@pytest.mark.slow
@SHARED_SETTINGS
@given(g=shared_composite(), mode=MODES)
def test_shared_read_only_vars_agree_with_enumeration_yaml(g: GMachine, mode) -> None:
    spec = loads_spec(g.to_yaml())
    assume(any(c.shared for c in split(compile_machine(spec))[0]))
    _compare(spec, *mode)


def test_shared_composites_reach_what_the_properties_assert() -> None:
    """The shared generator must give splits that share the var and pass
    or fail CC1, and splits the check refuses to share (a value where some
    component has no valid state)."""
    stats = {"n": 0, "shared": 0, "fallback": 0, "cc1_pass": 0, "cc1_fail": 0,
             "values": 0}

    @settings(max_examples=110, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(g=shared_composite())
    def sample(g: GMachine) -> None:
        spec = g.to_spec()
        if not any(c.shared for c in split(compile_machine(spec))[0]):
            return
        stats["n"] += 1
        try:
            r = check(spec, method="compose", scope="all")
        except BuildError:
            return
        method = r.to_dict()["method"]
        if method.get("shared_read_only"):
            stats["shared"] += 1
            if r.wfc.ok:
                assert r.cc1 is not None
                stats["cc1_pass" if r.cc1.ok else "cc1_fail"] += 1
                cex = r.cc1.counterexample
                # a counterexample away from the initial value of the shared var
                stats["values"] += cex is not None and cex.state[SHARED] != spec.initial[SHARED]
        else:
            stats["fallback"] += 1

    sample()
    assert stats["n"] >= 50, stats
    assert stats["shared"] >= stats["n"] // 3 and stats["fallback"] >= 5, stats
    assert stats["cc1_pass"] >= 8 and stats["cc1_fail"] >= 8, stats
    assert stats["values"] >= 3, stats


def test_a_read_only_flag_shared_by_three_groups() -> None:
    """A region flag read by three otherwise independent counters: three
    components (not one), the valid count summed over the flag's values,
    and a machine that runs on them."""
    r = Registry("region")
    r.bool("eu")
    for k in range(3):
        r.int(f"n{k}", 0, 7)
        r.invariant(f"cap{k}", holds=f"not eu or n{k} <= 5", repair={f"n{k}": 5})
        r.event(f"add{k}", guard=f"n{k} < 7", apply={f"n{k}": f"n{k} + 1"})
    whole = check(r.spec(), method="enumerate")
    parts = check(r.spec(), method="compose")
    d = parts.to_dict()["method"]
    assert d["kind"] == "composition" and d["shared_read_only"] == ["eu"]
    assert [c["vars"] for c in d["components"]] == [["eu", "n0"], ["eu", "n1"], ["eu", "n2"]]
    assert parts.states == whole.states
    assert parts.states.valid == 8**3 + 6**3
    assert parts.wfc.max_depth == whole.wfc.max_depth == 3
    assert parts.verdict == whole.verdict == "pass"
    m = r.build(method="compose")
    assert isinstance(m, ComposedMachine)
    s = m.run(["add0", "add1", "add1"])
    assert (s["eu"], s["n0"], s["n1"], s["n2"]) == (False, 1, 2, 0)
    assert m.encode(m.decode(s)) == s


def test_a_shared_value_without_valid_states_falls_back() -> None:
    """At eu=true one group has no valid state: sharing would count and
    report states that are never valid, so the check splits without it."""
    r = Registry("region")
    r.bool("eu")
    r.int("a", 0, 3)
    r.int("b", 0, 3)
    r.invariant("only_outside", holds="not eu or a > 9", repair={"a": 0})
    r.event("inc_a", guard="not eu", apply={"a": "min(a + 1, 3)"})
    r.event("inc_b", guard="not eu", apply={"b": "min(b + 1, 3)"})
    assert any(c.shared for c in split(compile_machine(r.spec()))[0])
    whole = check(r.spec(), method="enumerate", scope="all")
    got = check(r.spec(), method="compose", scope="all")
    assert "shared_read_only" not in (got.to_dict()["method"] or {})
    assert got.states == whole.states and got.verdict == whole.verdict


def test_generated_composites_reach_what_the_properties_assert() -> None:
    """The generator must give WFC-passing machines with several components,
    CC1 both passing and failing, and many reachable states."""
    stats = {"n": 0, "wfc": 0, "cc1_fail": 0, "cc1_pass": 0, "reach10": 0}

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(g=composite())
    def sample(g: GMachine) -> None:
        spec = g.to_spec()
        if len(split(compile_machine(spec))[0]) < 2:
            return
        stats["n"] += 1
        try:
            r = check(spec, method="compose")
        except BuildError:
            return
        if r.wfc.ok:
            stats["wfc"] += 1
            assert r.cc1 is not None
            stats["cc1_pass" if r.cc1.ok else "cc1_fail"] += 1
            stats["reach10"] += (r.states.reachable or 0) >= 10

    sample()
    assert stats["n"] >= 40, stats
    assert stats["wfc"] >= stats["n"] // 2, stats
    assert stats["cc1_pass"] >= 8 and stats["cc1_fail"] >= 8, stats
    assert stats["reach10"] >= stats["wfc"] // 2, stats


def counters(n: int, size: int = 4) -> Registry:
    r = Registry("counters")
    for i in range(n):
        r.int(f"c{i}", 0, size - 1)
        r.event(f"inc{i}", apply={f"c{i}": f"min(c{i} + 1, {size - 1})"})
    return r


def test_two_to_the_64_states_by_components() -> None:
    r = counters(32)
    report = r.check()
    assert report.to_dict()["method"]["kind"] == "composition"
    assert report.verdict == "pass"
    assert report.states.total == 2**64 and report.states.reachable == 2**64
    assert report.wfc.max_depth == 0
    m = r.build()
    assert isinstance(m, ComposedMachine)
    s = m.run(["inc3", "inc3", "inc31", "inc3", "inc3"])
    assert s["c3"] == 3 and s["c31"] == 1 and s["c0"] == 0
    assert s.id == 3 * 4**3 + 1 * 4**31
    assert m.encode(m.decode(s)) == s
    assert m.commutes("inc0", "inc31")
    with pytest.raises(MachineUsageError, match="unknown event"):
        m.apply(s, "inc32")


def test_bools_in_components_with_invariants_and_a_counterexample() -> None:
    """64 bools in 8 components of 8; each component has an invariant whose
    repair links its bools; one component has a pair that fails CC1, and
    the counterexample is given in whole-machine terms."""
    r = Registry("bools")
    for c in range(8):
        for i in range(8):
            r.bool(f"b{c}_{i}")
        r.invariant(f"link{c}", holds=f"not b{c}_0 or b{c}_1", repair={f"b{c}_1": "true"})
        for i in range(8):
            r.event(f"set{c}_{i}", apply={f"b{c}_{i}": "true"})
        # one event that reads every bool of the group ties the group together
        r.event(f"all{c}", guard=" and ".join(f"b{c}_{i}" for i in range(8)),
                apply={f"b{c}_7": "true"})
    r.event("clear7", apply={"b7_1": "false", "b7_0": "false"})
    report = r.check()
    assert report.to_dict()["method"]["kind"] == "composition"
    assert len(report.to_dict()["method"]["components"]) == 8
    assert report.verdict == "fail"
    cex = report.cc1.counterexample
    assert cex is not None and set(cex.events) <= {f"set7_{i}" for i in range(8)} | {
        "clear7", "all7"}
    assert len(cex.state) == 64
    m_whole_ok = Registry("small")  # the same failure in a machine small enough to enumerate
    for i in range(8):
        m_whole_ok.bool(f"b7_{i}")
    m_whole_ok.invariant("link7", holds="not b7_0 or b7_1", repair={"b7_1": "true"})
    for i in range(8):
        m_whole_ok.event(f"set7_{i}", apply={f"b7_{i}": "true"})
    m_whole_ok.event("all7", guard=" and ".join(f"b7_{i}" for i in range(8)),
                     apply={"b7_7": "true"})
    m_whole_ok.event("clear7", apply={"b7_1": "false", "b7_0": "false"})
    small = m_whole_ok.check()
    assert small.cc1.counterexample.events == cex.events
    assert {k: v for k, v in cex.state.items() if k.startswith("b7_")} == small.cc1.counterexample.state


# ---------------------------------------------------------------- a failing rule and a loop

_LOOP_AND_ERROR = """
machine: loop_and_error
vars:
  a: {{int: [1, 2]}}
  z: {{int: [-2, -1], overflow: error}}
  level: {{enum: [green, red]}}
invariants:
{invariants}
events:
  bump: {{apply: {{a: "3 - a"}}}}
  flip: {{apply: {{level: "if level == 'green' then 'red' else 'green'"}}}}
"""
_FIGHT = """  - name: fight_a
    holds: "level != 'green'"
    repair: {level: "'red'"}
  - name: fight_b
    holds: "level != 'red'"
    repair: {level: "'green'"}
"""
_CALM = """  - name: calm
    holds: "level == 'green'"
    repair: {level: "'green'"}
"""
_BAD = """  - name: bad
    holds: "false"
    repair: {z: "a"}
"""


@pytest.mark.parametrize("invariants, outcome", [
    # the repairs of level loop ahead of 'bad' everywhere: the whole machine
    # never applies bad's repair and fails WFC (a found regression: the
    # components raised bad's error)
    (_FIGHT + _BAD, "wfc"),
    # 'bad' comes first: the whole machine raises its error
    (_BAD + _FIGHT, "error"),
    # level's component has valid states: the components prove the error
    (_CALM + _BAD, "error"),
    (_BAD + _CALM, "error"),
])
@pytest.mark.parametrize("scope", ["all", "reachable"])
def test_a_failing_repair_is_an_error_only_where_the_whole_applies_it(
        invariants: str, outcome: str, scope: str) -> None:
    spec = loads_spec(_LOOP_AND_ERROR.format(invariants=invariants))
    for method in ("enumerate", "compose"):
        if outcome == "error":
            with pytest.raises(BuildError, match="repair of invariant 'bad'"):
                check(spec, scope=scope, method=method)
        else:
            r = check(spec, scope=scope, method=method)
            assert r.verdict == "fail" and not r.wfc.ok, method
            assert r.states.valid == 0
