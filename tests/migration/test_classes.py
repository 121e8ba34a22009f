"""Each class under each delivery model, on machine pairs that land in it;
every witness replayed by the reference, every safe class simulated."""

from __future__ import annotations

import pytest

from convergent.migration import DELIVERIES, Step, check_migration, classify_migration

from .helpers import check_report
from .machines import EXPECTED, NAMED, independent_sets, named, spec
from .reference import Cluster


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_pairs_land_in_their_class(name: str) -> None:
    mig = named(name)
    report = classify_migration(mig)
    assert {v.delivery: v.outcome for v in report.verdicts} == EXPECTED[name]
    i1, i2 = independent_sets(mig)
    check_report(mig, report, i1, i2)


def test_every_class_is_reached_under_every_delivery() -> None:
    for delivery in DELIVERIES:
        reached = {EXPECTED[n][delivery] for n in NAMED}
        assert reached == {"online", "barrier", "unsafe"}, delivery


@pytest.mark.parametrize("name", ["account_counting", "split"])
def test_a_barrier_class_really_diverges_online(name: str) -> None:
    """Not online under causal delivery: random rolling switches of the
    reference cluster do diverge (not only the witness)."""
    mig = named(name)
    i1, i2 = independent_sets(mig)
    diverged = 0
    for seed in range(40):
        finals = Cluster(mig, "causal", i1, i2, seed).online(40)
        diverged += any(f != finals[0] for f in finals)
    assert diverged > 0


def test_unsafe_under_causal_lands_outside_v2s_own_reachable_states() -> None:
    """flag: v2 passes its own check (set/mark commute where v2 starts) but
    the map lands where they do not: the verdict is unsafe, with a barrier
    witness that applies only v2 events after the switch."""
    report = classify_migration(named("flag"), ("causal",))
    v = report.verdicts[0]
    assert v.outcome == "unsafe"
    assert v.barrier_witness is not None and v.barrier_witness.condition == "PAIRS-V2"
    assert {"set", "mark"} == {s.event for s in v.barrier_witness.run_a if s.kind == "v2"}


def test_ds_failure_names_the_event_in_flight() -> None:
    v = classify_migration(named("account_counting"), ("causal",)).verdicts[0]
    w = v.online_witness
    assert w is not None and w.condition == "DS"
    assert w.result_a["deposits"] != w.result_b["deposits"]
    assert [s.kind for s in w.run_a][-1] == "switch"        # A: deposit, then switch
    assert [s.kind for s in w.run_b][-2:] == ["switch", "v1"]  # B: switch, deposit in flight


def test_a_removed_event_that_changes_state_is_not_online() -> None:
    """freeze removed in v2 (dropped at v2 replicas) while the map keeps
    ``frozen``: a freeze in flight is lost at a switched replica."""
    v2 = spec("""
machine: account
vars: {balance: {int: [0, 4]}, frozen: bool}
events:
  deposit: {apply: {balance: balance + 1}}
  withdraw: {guard: not frozen and balance > 0, apply: {balance: balance - 1}}
independent: []
""")
    v1 = spec(NAMED["account"][0])
    report = check_migration(v1, v2, delivery="causal")
    assert report.events["freeze"] is None
    v = report.verdicts[0]
    assert v.outcome == "barrier"
    assert v.online_witness is not None and v.online_witness.condition == "DS"
    assert "dropped" in v.online_witness.summary


def test_a_removed_event_the_map_cannot_see_is_online() -> None:
    """Dropping an event is fine when the map forgets what it changes."""
    v2 = spec("""
machine: account
vars: {balance: {int: [0, 4]}}
events:
  deposit: {apply: {balance: balance + 1}}
  withdraw: {guard: balance > 0, apply: {balance: balance - 1}}
independent: []
""")
    v1 = spec(NAMED["account"][0].replace("withdraw: {guard: not frozen and balance > 0",
                                          "withdraw: {guard: balance > 0"))
    v = check_migration(v1, v2, delivery="causal").verdicts[0]
    assert v.outcome == "online", v


def test_at_least_once_duplicate_witness_is_a_redelivery() -> None:
    v = classify_migration(named("count"), ("at-least-once",)).verdicts[0]
    assert v.outcome == "unsafe"
    w = v.barrier_witness
    assert w is not None and w.condition in ("IDEM", "V1-ORDER")
    # the same set of events, one of them delivered twice
    assert abs(len(w.run_b) - len(w.run_a)) == 1
    assert {(s.kind, s.event) for s in w.run_a} == {(s.kind, s.event) for s in w.run_b}


def test_v1_order_witness_under_exactly_once() -> None:
    """account under exactly-once: v1 itself needs causal order for
    deposit/withdraw, and the map keeps the difference."""
    v = classify_migration(named("account"), ("exactly-once",)).verdicts[0]
    conds = {(c.mode, c.code): c.ok for c in v.conditions}
    assert conds[("barrier", "V1-ORDER")] is False
    assert v.outcome == "unsafe"


def test_concurrent_v1_partners_are_checked_after_v2_events() -> None:
    """split: DS and v2's own pairs hold; only PAIRS-MIXED sees that a v1 x
    in flight and a v2 x2 issued after g diverge."""
    v = classify_migration(named("split"), ("causal",)).verdicts[0]
    failing = [c.code for c in v.conditions if not c.ok]
    assert failing == ["PAIRS-MIXED"]
    w = v.online_witness
    assert w is not None
    after = [(s.kind, s.event) for s in w.run_a[w.run_a.index(Step("switch")) + 1:]]
    assert ("v2", "g") in after and ("v1", "x") in after and ("v2", "x2") in after



@pytest.mark.parametrize("condition, caught_by", [
    ("ds", "account_counting"), ("mixed_pairs", "split"), ("v2_pairs", "flag"),
    ("all_pairs", "account"), ("idem", "count"), ("v1_order", "last_kept"),
])
def test_the_reference_catches_a_classifier_that_skips_a_condition(
        condition: str, caught_by: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference is strong enough: with any one condition reported as
    holding without being checked, the reference cluster finds a divergence
    (or a witness that no longer fits) on a named pair."""
    from convergent.migration import classify as classify_mod

    monkeypatch.setattr(classify_mod._Classifier, condition,
                        lambda self, *a, **k: (True, "not checked", None))
    mig = named(caught_by)
    report = classify_migration(mig)
    i1, i2 = independent_sets(mig)
    with pytest.raises(AssertionError):
        check_report(mig, report, i1, i2, sims=10, steps=30)
