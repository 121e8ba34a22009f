"""Collections (issue 15, item 4): a template per key plus aggregates across
keys, checked once for any number of keys; held to a brute-force reference
that enumerates every collection of 2-4 keys."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from convergent import Registry
from convergent.collection import Collection
from convergent.engine.check import check
from convergent.errors import BuildError, ConvergenceError, SpecError
from convergent.machine import Machine
from strategies import constructed_machines, machines


def _brute(col: Collection, m: Machine, keys: int) -> tuple[bool, int]:
    """Every collection of ``keys`` keys reachable from all-initial (events
    admitted by the aggregates); whether every two events on two different
    keys commute at every one of them; and how many configurations."""
    from convergent.collection import contributions
    contrib = contributions(col, m)
    limits = [a.limit for a in col.aggregates]
    step = m.tables

    def admitted(ids: tuple[int, ...]) -> bool:
        return all(sum(int(c[i]) for i in ids) <= lim for c, lim in zip(contrib, limits))

    def apply(ids: tuple[int, ...], k: int, e: int) -> tuple[int, ...]:
        new = list(ids)
        new[k] = int(step[e, ids[k]])
        out = tuple(new)
        return out if admitted(out) else ids

    start = tuple(m.initial.id for _ in range(keys))
    seen = {start}
    frontier = [start]
    while frontier:
        nxt = []
        for s in frontier:
            for k in range(keys):
                for e in range(len(m.events)):
                    u = apply(s, k, e)
                    if u not in seen:
                        seen.add(u)
                        nxt.append(u)
        frontier = nxt
    for s in seen:
        for i, j in itertools.permutations(range(keys), 2):
            for e in range(len(m.events)):
                for f in range(len(m.events)):
                    if apply(apply(s, i, e), j, f) != apply(apply(s, j, f), i, e):
                        return False, len(seen)
    return True, len(seen)


def _agree(col: Collection) -> Any:
    try:
        report = col.check()
    except (SpecError, BuildError):
        return None
    if not report.template.wfc.ok:
        return report
    m = Machine.from_spec(col.template) if report.template.ok else None
    if m is None:
        from convergent.engine.check import analyze
        m = Machine._from_analysis(analyze(col.template))
    for keys in ((2, 3, 4) if m.size <= 6 else (2, 3)):
        brute_ok, n = _brute(col, m, keys)
        if report.cross_key_ok:
            assert brute_ok, f"check passed, but {keys} keys diverge"
        elif report.counterexample.run is not None and keys >= report.counterexample.keys_needed:
            assert not brute_ok, "a counterexample with a run, but brute force finds none"
        if not brute_ok:
            assert not report.cross_key_ok, "brute force diverges, the check passed"
    return report


@st.composite
def collections(draw: Any) -> Collection:
    g = draw(st.one_of(constructed_machines(min_states=4, max_states=12),
                       constructed_machines(min_states=4, max_states=12), machines()))
    assume(g.total <= 12)
    spec = g.to_spec()
    col = Collection("col", spec)
    for k in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        v = draw(st.sampled_from(spec.vars))
        limit = draw(st.integers(0, 2))
        if v.kind == "int" and v.lo >= 0 and v.lo == spec.initial[v.name] == 0 \
                and draw(st.booleans()):
            col.sum(f"sum{k}", v.name, at_most=limit + v.hi)
            continue
        # a value keys reach by an event, not the initial one (else the
        # total would depend on how many keys exist)
        choices = [x for x in v.values if x != spec.initial[v.name]]
        if not choices:
            continue
        value = draw(st.sampled_from(choices))
        lit = ("true" if value else "false") if v.kind == "bool" else (
            f"'{value}'" if v.kind == "enum" else str(value))
        col.count(f"count{k}", f"{v.name} == {lit}", at_most=limit)
    return col


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(col=collections())
def test_collection_check_agrees_with_brute_force(col: Collection) -> None:
    _agree(col)


def subscription() -> Registry:
    t = Registry("subscription")
    t.enum("status", "none", "trial", "active", "cancelled")
    t.int("seats", 0, 3)
    t.event("start_trial", guard="status == none", apply={"status": "trial"})
    t.event("activate", guard="status == trial", apply={"status": "active"})
    t.event("add_seat", guard="status == active", apply={"seats": "min(seats + 1, 3)"})
    t.bool("noted")
    t.event("note", apply={"noted": "true"})
    t.independent("note", "add_seat")      # on one key, only these two are concurrent
    return t


def test_keys_alone_always_commute_and_run_as_tables() -> None:
    col = Collection("subs", subscription())
    report = col.check()
    assert report.ok and report.cross_key_ok
    cm = col.build()
    s = cm.run([("alice", "start_trial"), ("bob", "start_trial"), ("alice", "activate")])
    assert cm.state_of(s, "alice")["status"] == "active"
    assert cm.state_of(s, "bob")["status"] == "trial"
    assert cm.state_of(s, "carol")["status"] == "none"      # never touched


def test_a_count_limit_makes_concurrent_activations_race() -> None:
    col = Collection("subs", subscription()).count("two_active", "status == active", at_most=2)
    report = col.check()
    assert report.verdict == "fail" and not report.cross_key_ok
    c = report.counterexample
    assert c.events == ("activate", "activate") and c.keys_needed == 3
    assert c.others == {"two_active": 1}
    assert c.order1 != c.order2
    # the run reaches it, and the race shows in the runtime
    from convergent.collection import CollectionMachine
    m = Machine.from_spec(col.template)
    cm = CollectionMachine(col, m, report)
    s = cm.run(c.run)
    a = cm.apply(cm.apply(s, 0, "activate"), 1, "activate")
    b = cm.apply(cm.apply(s, 1, "activate"), 0, "activate")
    assert a != b
    assert sum(1 for k in (0, 1, 2) if cm.state_of(a, k)["status"] == "active") == 2
    with pytest.raises(ConvergenceError):
        col.build()
    assert "needs 3 keys" in report.render_text()


def test_a_sum_limit_and_its_runtime() -> None:
    col = Collection("seats", subscription()).sum("cap", "seats", at_most=4)
    report = col.check()
    assert not report.cross_key_ok
    assert report.counterexample.events == ("add_seat", "add_seat")


def test_aggregate_errors() -> None:
    with pytest.raises(SpecError, match="not an int var"):
        Collection("c", subscription()).sum("cap", "status", at_most=3)
    with pytest.raises(SpecError, match="unknown name"):
        Collection("c", subscription()).count("n", "colour == red", at_most=3)
    with pytest.raises(SpecError, match="at_most"):
        Collection("c", subscription()).count("n", "status == active", at_most=-1)
    with pytest.raises(SpecError, match="initial state"):
        Collection("c", subscription()).count("n", "status == none", at_most=3).check()


def test_generated_collections_reach_what_the_property_asserts() -> None:
    stats = {"n": 0, "wfc": 0, "cross_fail": 0, "cross_ok": 0, "with_run": 0}

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(col=collections())
    def sample(col: Collection) -> None:
        stats["n"] += 1
        try:
            r = col.check()
        except (SpecError, BuildError):
            return
        if r.template.wfc.ok:
            stats["wfc"] += 1
            if r.cross_key_ok:
                stats["cross_ok"] += 1
            else:
                stats["cross_fail"] += 1
                stats["with_run"] += r.counterexample.run is not None

    sample()
    assert stats["wfc"] >= stats["n"] * 2 // 3, stats
    assert stats["cross_fail"] >= 5 and stats["cross_ok"] >= 20, stats
    assert stats["with_run"] >= stats["cross_fail"] // 2, stats
