"""Stake-weighted proposer priority instead of a fixed round robin."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.consensus import KeyPair, Validator, ValidatorSet
from convergent.consensus.leaders import PERIOD_CAP, proposer_schedule, schedule_period
from convergent.consensus.providers import round_robin
from convergent.consensus.sim import Simulation, SimConfig

from .conftest import make_core, make_keys, make_schedule

_KEYS = [KeyPair.from_seed(f"v{i:02d}", "leaders").public_key for i in range(12)]


def vset(weights: list[int]) -> ValidatorSet:
    return ValidatorSet(0, tuple(Validator(f"v{i:02d}", _KEYS[i], w)
                                 for i, w in enumerate(weights)))


@given(st.integers(1, 12), st.integers(1, 1000), st.integers(0, 10_000))
def test_equal_stakes_give_the_round_robin(n, weight, height):
    s = vset([weight] * n)
    assert proposer_schedule(height, s) == round_robin(height, s)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_each_member_leads_its_share_of_slots_spread_out(weights):
    s = vset(weights)
    period = schedule_period(s)
    from math import gcd
    g = 0
    for w in weights:
        g = gcd(g, w)
    slots = [w // g for w in weights]
    total = sum(slots)
    assert len(period) == total
    counts = Counter(period)
    assert [counts[v] for v in s.ids] == slots  # exactly its stake, per period
    # smooth: in any window of L consecutive slots (wrapping) a member leads within two
    # slots of its share (a fixed order of blocks would be off by up to its whole weight)
    doubled = period + period
    for i, node in enumerate(s.ids):
        share = slots[i] / total
        for length in (1, 3, len(weights), total // 2 or 1):
            for start in range(0, total, max(1, total // 16)):
                got = doubled[start:start + length].count(node)
                assert share * length - 2 - 1e-9 <= got <= share * length + 2 + 1e-9


def test_views_of_a_height_follow_the_schedule_and_heights_rotate_it():
    s = vset([3, 1, 1, 1, 1])
    period = schedule_period(s)
    assert Counter(period) == {"v00": 3, "v01": 1, "v02": 1, "v03": 1, "v04": 1}
    for h in range(10):
        leaders = proposer_schedule(h, s)
        assert leaders[0] == period[h % len(period)]
        assert leaders[1] == period[(h + 1) % len(period)]


def test_huge_stakes_are_quantized_to_a_cheap_period():
    s = vset([10**12 + 7, 3 * 10**12 + 1, 1])
    period = schedule_period(s)
    assert len(period) <= PERIOD_CAP + 3
    counts = Counter(period)
    assert counts["v02"] >= 1 and 2.9 < counts["v01"] / counts["v00"] < 3.1


def test_the_core_falls_back_to_the_weighted_schedule():
    keys = make_keys(4)
    schedule = make_schedule(keys, [4, 1, 1, 1])
    core = make_core(keys, schedule, 1)
    s = schedule.validators_at(0)
    for h in range(5):
        for v in range(8):
            expected = proposer_schedule(h, s)
            assert core.leader(h, v) == expected[v % len(expected)]
    assert [core.leader(0, v) for v in range(7)].count("n00") == 4


def test_a_heavy_validator_leads_more_heights():
    sim = Simulation(SimConfig(n=4, weights=(4, 1, 1, 1), heights=14, seed=3))
    r = sim.run()
    assert r.safe and r.min_finalized >= 14
    ledger = sim.ledger(r.honest[0])
    proposers = Counter(ledger[h].value.split(b":")[2].split(b"@")[0] for h in range(14))
    assert proposers[b"n00"] == 8  # 4 of every 7 slots
