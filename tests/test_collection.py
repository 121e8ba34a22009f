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


def _brute(col: Collection, m: Machine, keys: int,
           same_key: tuple[tuple[str, str], ...] = ()) -> tuple[bool, int]:
    """Every collection of ``keys`` keys reachable from all-initial (events
    admitted by the aggregates); whether every two events on two different
    keys, and every pair of ``same_key`` on one key, commute at every one of
    them; and how many configurations."""
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
        for a, b in same_key:
            e, f = m.events.index(a), m.events.index(b)
            for i in range(keys):
                if apply(apply(s, i, e), i, f) != apply(apply(s, i, f), i, e):
                    return False, len(seen)
    return True, len(seen)


def _agree(col: Collection) -> Any:
    try:
        report = col.check()
    except (SpecError, BuildError):
        return None
    if not report.template.wfc.ok:
        return report
    from convergent.engine.check import analyze
    an = analyze(col.template)
    m = Machine._from_analysis(an)
    same = tuple(an.independent) if report.template.cc1.ok else ()
    for keys in ((2, 3, 4) if m.size <= 6 else (2, 3)):
        brute_ok, n = _brute(col, m, keys, same)
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


def test_an_aggregate_can_break_a_same_key_independent_pair() -> None:
    """Regression: the template's CC1 proves ``activate`` and ``upgrade``
    commute on one key, but the aggregate admits ``activate`` only after
    ``upgrade``: the two orders diverge. The check used to pass (it compared
    events on two different keys only)."""
    t = Registry("acct")
    t.enum("status", "none", "active")
    t.bool("premium")
    t.event("activate", apply={"status": "active"})
    t.event("upgrade", apply={"premium": "true"})
    t.independent("activate", "upgrade")
    col = Collection("c", t).count("no_basic", "status == active and not premium",
                                   at_most=0)
    report = col.check()
    assert report.template.ok
    assert report.verdict == "fail"
    c = report.counterexample
    assert c is not None and c.same_key and set(c.events) == {"activate", "upgrade"}
    assert c.order1 != c.order2 and c.keys_needed == 1 and c.run == []
    assert "same-key FAIL" in report.render_text()
    assert report.to_dict()["cross_key"]["counterexample"]["same_key"] is True
    m = Machine.from_spec(col.template)
    assert not _brute(col, m, 1, (("activate", "upgrade"),))[0]


@st.composite
def same_key_collections(draw: Any) -> Collection:
    """Templates of 2-3 small enum vars whose events each set one var (guarded
    on that var or not): events on different vars commute, and all such pairs
    are declared, so the template passes and the same-key check runs. Count
    limits of 0 or 1 over one or two vars: limits that bind, where an event
    can lead a key into a counted state and a commuting one lead it out."""
    n_vars = draw(st.integers(2, 3))
    t = Registry("tmpl")
    sizes = [draw(st.integers(2, 3)) for _ in range(n_vars)]
    for v, size in enumerate(sizes):
        t.enum(f"v{v}", *[f"x{i}" for i in range(size)])
    by_var: dict[int, list[str]] = {}
    for e in range(draw(st.integers(2, 5))):
        v = draw(st.integers(0, n_vars - 1))
        to = draw(st.integers(0, sizes[v] - 1))
        guard = draw(st.one_of(st.none(), st.integers(0, sizes[v] - 1)))
        name = f"e{e}"
        t.event(name, apply={f"v{v}": f"x{to}"},
                **({"guard": f"v{v} == x{guard}"} if guard is not None else {}))
        by_var.setdefault(v, []).append(name)
    pairs = [(a, b) for v, es in by_var.items() for w, fs in by_var.items() if v < w
             for a in es for b in fs]
    assume(pairs)
    for a, b in pairs:
        t.independent(a, b)
    col = Collection("col", t)
    for k in range(draw(st.integers(1, 2))):
        size = draw(st.sampled_from([1, 2, 2, 2]))
        vs = draw(st.lists(st.integers(0, n_vars - 1), min_size=size, max_size=size,
                           unique=True))
        # the first term is false at the initial state (every var at x0), so
        # a key nobody touched never counts
        first = vs[0]
        terms = [draw(st.sampled_from([f"v{first} == x{i}" for i in range(1, sizes[first])]
                                      + [f"v{first} != x0"]))]
        terms += [f"v{v} {draw(st.sampled_from(['==', '!=']))} "
                  f"x{draw(st.integers(0, sizes[v] - 1))}" for v in vs[1:]]
        col.count(f"count{k}", " and ".join(terms),
                  at_most=draw(st.sampled_from([0, 0, 0, 1])))
    return col


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(col=same_key_collections())
def test_same_key_check_agrees_with_brute_force(col: Collection) -> None:
    _agree(col)


def test_the_same_key_generator_finds_same_key_races() -> None:
    """The property above only means something if its collections include
    some where an aggregate breaks a commuting pair on one key."""
    found = {"same": 0, "n": 0}

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(col=same_key_collections())
    def sample(col: Collection) -> None:
        found["n"] += 1
        try:
            r = col.check()
        except (SpecError, BuildError):
            return
        if r.counterexample is not None and r.counterexample.same_key:
            found["same"] += 1

    sample()
    assert found["same"] >= 2, found


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(col=st.one_of(collections(), same_key_collections()))
def test_the_check_in_small_blocks_gives_the_same_report(col: Collection) -> None:
    """The check broadcasts over blocks of the other keys' totals to bound its
    memory; one row per block must give the very same report."""
    import convergent.engine.collection as engine
    try:
        whole = col.check()
    except (SpecError, BuildError):
        return
    saved = engine.BLOCK_CELLS
    engine.BLOCK_CELLS = 1
    try:
        blocked = col.check()
    finally:
        engine.BLOCK_CELLS = saved
    a, b = whole.to_dict(), blocked.to_dict()
    for d in (a, b):
        d.pop("seconds")
        d["template"].pop("seconds", None)
    assert a == b


def test_large_limits_are_checked_exactly_through_the_totals_that_matter() -> None:
    """sum(credit) <= 10,000: the totals at or below 10,000 - 2*5 behave alike
    and are merged; the race is found one unit below the limit, with a run of
    the 2,001 keys it needs."""
    t = Registry("acct")
    t.int("credit", 0, 5)
    t.event("grant", guard="credit < 5", apply={"credit": "credit + 1"})
    t.event("repay", guard="credit > 0", apply={"credit": "credit - 1"})
    t.bool("noted")
    t.event("note", apply={"noted": "true"})
    t.independent("note", "grant")
    col = Collection("c", t).sum("cap", "credit", at_most=10_000)
    report = col.check()
    c = report.counterexample
    assert c is not None and not c.same_key and c.events == ("grant", "grant")
    assert c.others["cap"] > 10_000 - 10 and c.run is not None
    from convergent.collection import CollectionMachine
    from convergent.engine.check import analyze
    cm = CollectionMachine(col, Machine._from_analysis(analyze(col.template)), report)
    s = cm.run(c.run)
    assert s.totals[0] == c.others["cap"] + sum(x["credit"] for x in (c.state_i, c.state_j))
    a = cm.apply(cm.apply(s, 0, "grant"), 1, "grant")
    b = cm.apply(cm.apply(s, 1, "grant"), 0, "grant")
    assert a != b


def test_too_many_totals_are_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import convergent.engine.collection as engine
    monkeypatch.setattr(engine, "MAX_TOTALS", 1000)
    col = Collection("c", subscription()).sum("a", "seats", at_most=100).count(
        "b", "status == active", at_most=100)
    with pytest.raises(BuildError, match="more than 1,000 total vectors"):
        col.check()


def test_escrow_does_not_need_the_race_report_and_skips_it_when_too_big(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import convergent.engine.collection as engine
    monkeypatch.setattr(engine, "MAX_TOTALS", 1000)
    col = Collection("c", subscription(), admission="escrow").sum(
        "a", "seats", at_most=10**6).count("b", "status == active", at_most=10**5)
    report = col.check()
    assert report.ok and report.skipped is not None and "total vectors" in report.skipped
    assert "cross-key races not computed" in report.render_text()
    assert report.to_dict()["cross_key"]["skipped"] == report.skipped
    assert col.build().verified
    shared = Collection("c", subscription()).sum("a", "seats", at_most=10**6)
    shared.count("b", "status == active", at_most=10**5)
    with pytest.raises(BuildError):
        shared.check()
