"""Monotone cycles: accepted, normalized to the least fixed point; other
cycles refused. Checked against a brute-force reference that enumerates
every assignment of the cycle's values and every pair of states."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent import Registry
from convergent.federation import Federation, FederationCheckError
from convergent.federation.lfp import components, cyclic_components

from .generate import random_cyclic_federation
from .reference import Reference


def _max_loop(back: str = "max(fb, lb)") -> Federation:
    """Two services each raise a local level; each sees the higher of its own
    and the other's: the shared level is the least value both agree on."""
    a = Registry("a")
    a.int("fa", 0, 3)
    a.int("la", 0, 3)
    a.event("up", apply={"la": "min(la + 1, 3)"})
    b = Registry("b")
    b.int("fb", 0, 3)
    b.int("lb", 0, 3)
    b.event("upb", apply={"lb": "min(lb + 1, 3)"})
    fed = Federation("loop").registry(a).registry(b)
    fed.morphism("a", "b", shared=["fb"], map={"fb": "max(fa, la)"})
    fed.morphism("b", "a", shared=["fa"], map={"fa": back})
    return fed


def test_a_monotone_cycle_is_accepted_and_normalizes_to_the_least_fixed_point() -> None:
    fed = _max_loop()
    report = fed.check(xu=True)
    assert report.ok, report.render_text()
    (acyclic,) = report.results("ACYCLIC")
    assert acyclic.details == {"cycles": [["a", "b"]]}
    assert len(report.results("MONO")) == 2
    m = fed.build()
    ref = Reference(fed.spec())
    events = [("a", "up"), ("b", "upb"), ("b", "upb"), ("a", "up")]
    got = m.decode(m.run(events))
    assert got == ref.run(events)
    assert got["a"]["fa"] == got["b"]["fb"] == 2
    rng = random.Random(3)
    for _ in range(5):
        rng.shuffle(events)
        assert m.decode(m.run(events)) == got


def test_the_least_fixed_point_is_the_least_of_several() -> None:
    """Copy back and forth: every equal pair is a fixed point; repair picks 0."""
    fed = _max_loop("fb")
    fed2 = Federation("copy")
    a = Registry("a")
    a.int("fa", 0, 2)
    a.event("noop", apply={"fa": "fa"})
    b = Registry("b")
    b.int("fb", 0, 2)
    b.event("noop", apply={"fb": "fb"})
    fed2.registry(a).registry(b)
    fed2.morphism("a", "b", shared=["fb"], map={"fb": "fa"})
    fed2.morphism("b", "a", shared=["fa"], map={"fa": "fb"})
    m = fed2.build()
    start = m.encode({"a": {"fa": 2}, "b": {"fb": 2}})
    assert m.decode(m.normalize(start)) == {"a": {"fa": 0}, "b": {"fb": 0}}
    ref = Reference(fed2.spec())
    assert ref.normalize({"a": {"fa": 2}, "b": {"fb": 2}}) == m.decode(m.normalize(start))
    assert fed.check().ok


def test_a_non_monotone_cycle_is_refused_with_the_diagnosis() -> None:
    fed = _max_loop("3 - fb")
    report = fed.check()
    (acyclic,) = report.results("ACYCLIC")
    assert acyclic.ok is False and acyclic.details is not None
    assert acyclic.details["diagnosis"] is not None
    assert acyclic.details["coordination_plan"]
    bad = [r for r in report.results("MONO") if r.ok is False]
    assert [r.subject for r in bad] == ["b_to_a"]
    cx = bad[0].counterexample
    assert cx is not None and cx.order1 is not None and cx.order2 is not None
    assert cx.order2["fa"] < cx.order1["fa"]
    with pytest.raises(FederationCheckError):
        fed.build()


def test_a_non_monotone_resolver_on_a_cycle_is_refused() -> None:
    a = Registry("a")
    a.bool("x")
    a.bool("own")
    a.event("flip", apply={"own": "not own"})
    o = Registry("o")
    o.bool("on")
    o.event("switch", apply={"on": "not on"})
    fed = Federation("res").registry(a).registry(o)
    fed.morphism("a", "a", shared=["x"], map={"x": "x or own"}, name="self")
    fed.morphism("o", "a", shared=["x"], map={"x": "on"}, name="ext")
    fed.resolver("a", vars=["x"], resolve=lambda p: {"x": p["a"]["x"] != p["o"]["x"]},
                 name="xor")
    report = fed.check()
    mono = {r.subject: r.ok for r in report.results("MONO")}
    assert mono == {"self": True, "xor": False}
    assert report.results("ACYCLIC")[0].ok is False
    fed2 = Federation("res").registry(a).registry(o)
    fed2.morphism("a", "a", shared=["x"], map={"x": "x or own"}, name="self")
    fed2.morphism("o", "a", shared=["x"], map={"x": "on"}, name="ext")
    fed2.resolver("a", vars=["x"], resolve=lambda p: {"x": p["a"]["x"] or p["o"]["x"]})
    assert fed2.check().ok, fed2.check().render_text()


def test_monotonicity_alone_is_not_enough_c1_still_applies() -> None:
    """The paper's claim that monotone processors converge is false (the
    audit's cyc_counterexample): a monotone cycle whose event reads the value
    travelling around it fails C1, and is not built."""
    a = Registry("a")
    a.int("fa", 0, 2)
    a.int("la", 0, 2)
    a.int("log", 0, 2)
    a.event("up", apply={"la": "min(la + 1, 2)"})
    a.event("record", apply={"log": "fa"})
    b = Registry("b")
    b.int("fb", 0, 2)
    b.int("lb", 0, 2)
    b.event("upb", apply={"lb": "min(lb + 1, 2)"})
    fed = Federation("loop").registry(a).registry(b)
    fed.morphism("a", "b", shared=["fb"], map={"fb": "max(fa, la)"})
    fed.morphism("b", "a", shared=["fa"], map={"fa": "max(fb, lb)"})
    report = fed.check()
    assert report.results("ACYCLIC")[0].ok is True
    assert "C1" in report.failed_codes()
    ref = Reference(fed.spec())
    assert ref.run([("b", "upb"), ("a", "record")]) != ref.run([("a", "record"), ("b", "upb")])


def test_components_are_in_source_first_order() -> None:
    fed = _max_loop()
    c = Registry("c")
    c.int("fc", 0, 3)
    c.event("noop", apply={"fc": "fc"})
    fed.registry(c)
    fed.morphism("b", "c", shared=["fc"], map={"fc": "fb"})
    spec = fed.spec()
    assert components(spec) == (("a", "b"), ("c",))
    assert cyclic_components(spec) == (("a", "b"),)
    m = fed.build()
    ref = Reference(spec)
    events = [("a", "up"), ("a", "up"), ("b", "upb")]
    assert m.decode(m.run(events)) == ref.run(events)


def _compare(seed: int) -> dict[str, bool]:
    fed = random_cyclic_federation(seed)
    spec = fed.spec()
    report = fed.check(xu=True)
    if not report.passed("REG"):
        return {}
    ref = Reference(spec)
    groups = ref.cyclic()
    assert groups, "the generator makes a cycle"
    want_mono = all(ref.monotone(g) for g in groups)
    mono = report.results("MONO")
    assert all(r.ok is not None for r in mono), report.render_text()
    assert all(r.ok for r in mono) == want_mono, report.render_text()
    assert report.results("ACYCLIC")[0].ok is want_mono
    out = {"MONO": want_mono}
    if not want_mono:
        return out
    # the checks on cycle members agree with the reference (sources on the
    # cycle range over every state)
    for t in spec.names:
        if not spec.incoming(t):
            continue
        code = "R2" if report.results("R2") and any(
            c.subject == t for c in report.results("R2")) else "M1"
        got = [c.ok for c in report.results(code) if c.subject == t]
        assert got == [ref.m1(t)], report.render_text()
        for ev in (e.name for e in spec.member(t).events):
            want = ref.c1(t, ev)
            assert [c.ok for c in report.results("C1") if c.subject == f"{t}: {ev}"] \
                == [want], report.render_text()
            out["C1"] = out.get("C1", True) and want
    rng = random.Random(seed)
    alphabet = [(m.name, e.name) for m in spec.members for e in m.events]
    events = [rng.choice(alphabet) for _ in range(5)]
    if report.ok:
        machine = fed.build(xu=True)
        want_state = ref.run(events)
        assert machine.decode(machine.initial) == ref.initial()
        for _ in range(4):
            rng.shuffle(events)
            assert ref.run(events) == want_state
            assert machine.decode(machine.run(events)) == want_state
    out["ok"] = report.ok
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6))
def test_cycles_agree_with_the_brute_force_reference(seed: int) -> None:
    _compare(seed)


def test_the_lfp_equals_the_reference_on_accepted_random_cycles() -> None:
    """The machine's normal form from arbitrary states (not only reachable
    ones) is the reference's least fixed point, on accepted random cycles."""
    accepted = 0
    for seed in range(60):
        fed = random_cyclic_federation(seed)
        report = fed.check()
        if not report.results("ACYCLIC")[0].ok or not report.passed("REG"):
            continue
        if not report.passed("M1") or not report.passed("R2"):
            continue
        accepted += 1
        spec = fed.spec()
        ref = Reference(spec)
        from convergent.federation import FederatedMachine
        from convergent.federation._tables import build_members
        from convergent.federation.check import check_federation
        members = build_members(spec)
        full = check_federation(spec, members=members)
        # normalization needs M1 and the tables, not C1/C2 (those are about
        # events): build the machine from the report without them
        kept = replace(full, checks=tuple(c for c in full.checks
                                          if c.code not in ("C1", "C2", "XU")))
        m = FederatedMachine(spec, members, kept)
        rng = random.Random(seed)
        for _ in range(5):
            raw = {n: rng.choice(ref.valid[n]) for n in spec.names}
            got = m.decode(m.normalize(m.encode(raw)))
            assert got == ref.normalize(raw), (seed, raw)
    assert accepted >= 10


@pytest.mark.slow
def test_the_cyclic_generator_reaches_every_verdict() -> None:
    seen: Counter[tuple[str, bool]] = Counter()
    for seed in range(150):
        for code, ok in _compare(seed).items():
            seen[(code, ok)] += 1
    for key in (("MONO", True), ("MONO", False), ("C1", True), ("C1", False), ("ok", True)):
        assert seen[key] > 0, seen
