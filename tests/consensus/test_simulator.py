"""Seeded simulations: safety for every seed, liveness after GST, the 1/3 bound, evidence."""

from __future__ import annotations

import multiprocessing
import os
import random
from collections import Counter
from dataclasses import replace

import pytest

from convergent.consensus import CoreConfig, MachineSpec, Phase, SafetyViolation
from convergent.consensus.sim import (
    SIM_SPEC,
    NetworkConfig,
    ProviderFaults,
    SimConfig,
    Simulation,
    simulate,
)

STRATEGIES = ("silent", "withhold", "equivocate", "garbage", "sybil", "wrong-leader",
              "replay", "chaos", "strip", "swap", "replay-attachments")
HEIGHTS = 3


def view_budget(spec: MachineSpec, view: int) -> float:
    """Longest a view can last when every phase of it runs into its timeout."""
    phases = (Phase.COLLECTING, Phase.LIVENESS_CHECK, Phase.PROVING, Phase.PUBLISHING,
              Phase.VOTING, Phase.FINALIZING, Phase.VERIFYING)
    return sum(spec.timeout(p, view) or 0.0 for p in phases)


def height_bound(spec: MachineSpec, f: int, delta: float) -> float:
    """After GST a height needs at most f + 1 views (leaders rotate; at most f are byzantine)."""
    return sum(view_budget(spec, v) for v in range(f + 1)) + 20 * delta


def random_case(seed: int) -> SimConfig:
    rng = random.Random(seed)
    n = 4 if seed % 5 < 3 else 7
    f = (n - 1) // 3
    b = f if rng.random() < 0.7 else rng.randint(0, f)
    gst = rng.uniform(0.0, 2.0)
    network = NetworkConfig(
        max_delay=0.05, gst=gst, drop_rate=rng.choice((0.0, 0.1, 0.3)),
        pre_gst_max_delay=rng.choice((0.2, 1.0)), random_partitions=rng.randint(0, 2))
    faults = ProviderFaults()
    if rng.random() < 0.2:
        faults = ProviderFaults(raise_rate=0.05, hang_rate=0.05)
    if rng.random() < 0.4:  # the coordinated attack: the whole coalition equivocates
        byzantine = ("equivocate",) * b
    else:
        byzantine = tuple(rng.choice(STRATEGIES) for _ in range(b))
    if rng.random() < 0.3:  # the adversary's best schedule: its messages first, ours at Delta
        network = replace(network, rushing=True)
    return SimConfig(n=n, heights=HEIGHTS, seed=seed, network=network, faults=faults,
                     byzantine=byzantine, max_time=600.0)


def run_case(seed: int) -> tuple[int, bool, int, float, float, list[str], int, int, int, bool]:
    """(seed, safe, min finalized, max post-GST gap, bound, strategies, messages,
    conflicting pairs signed by honest nodes, signatures their guards refused, rushing).

    The bound assumes honest providers answer: a run with injected provider faults must
    still finalize, but its honest nodes may lose views of their own, so it gets no bound.
    """
    cfg = random_case(seed)
    r = Simulation(cfg).run()
    gaps = r.decide_gaps_after(cfg.network.gst)
    f = (cfg.n - 1) // 3
    bound = height_bound(cfg.spec, f, cfg.network.max_delay)
    if cfg.faults.raise_rate or cfg.faults.hang_rate:
        bound = float("inf")
    return (seed, r.safe, r.min_finalized, max(gaps, default=0.0), bound,
            list(cfg.byzantine), r.messages_sent, len(r.double_signed) + len(r.blamed_honest),
            r.refused.total(), cfg.network.rushing)


def _map(func, items):
    workers = min(2, os.cpu_count() or 1)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(func, items, chunksize=25)
    return [func(i) for i in items]


def test_same_seed_same_run():
    cfg = {"n": 4, "heights": 4, "byzantine": ("chaos",),
           "network": NetworkConfig(gst=1.0, drop_rate=0.2, random_partitions=1)}
    a, b = simulate(seed=11, **cfg), simulate(seed=11, **cfg)
    assert a.decisions == b.decisions
    assert (a.events, a.messages_sent, a.virtual_time) == (b.events, b.messages_sent,
                                                            b.virtual_time)
    assert a.rejected == b.rejected
    c = simulate(seed=12, **cfg)
    assert (c.events, c.messages_sent) != (a.events, a.messages_sent)


@pytest.mark.slow
def test_safety_and_liveness_over_1000_seeded_runs():
    """f < n/3 byzantine nodes of every kind, a lossy partitioned network before GST."""
    results = _map(run_case, range(1000))
    unsafe = [r[0] for r in results if not r[1]]
    assert unsafe == [], f"safety violated for seeds {unsafe}"
    assert [r[0] for r in results if r[7]] == [], "an honest node signed conflicting messages"
    # and, never restarted, no honest node ever ran into its own signing guard
    assert [r[0] for r in results if r[8]] == [], "the guard refused a node that never restarted"
    stuck = [(r[0], r[2], r[5]) for r in results if r[2] < HEIGHTS]
    assert stuck == [], f"runs that did not finalize {HEIGHTS} heights: {stuck[:10]}"
    slow = [(r[0], round(r[3], 2), round(r[4], 2)) for r in results if r[3] > r[4]]
    assert slow == [], f"heights slower than the post-GST bound: {slow[:10]}"
    bounded = [r for r in results if r[4] != float("inf")]
    assert len(bounded) > 700 and max(r[3] for r in bounded) > 0
    kinds = Counter(s for r in results for s in r[5])
    assert set(kinds) == set(STRATEGIES)  # every strategy was exercised
    assert sum(1 for r in results if r[5]) > 500
    assert sum(1 for r in results if r[9]) > 200  # runs under the rushing schedule


@pytest.mark.parametrize("n,b", [(4, 2), (7, 3)])
def test_the_one_third_bound_is_tight(n, b):
    """With byzantine weight >= 1/3 the simulator finds two honest nodes finalizing
    different values for one height; with one node fewer it never does."""
    found = None
    for seed in range(20):
        r = simulate(n=n, heights=4, seed=seed, byzantine=("equivocate",) * b, max_time=60)
        if not r.safe:
            found = r
            break
    assert found is not None, "no safety violation found with f >= n/3"
    with pytest.raises(SafetyViolation, match=f"seed {found.config.seed}"):
        found.check()
    _, node_a, digest_a, node_b, digest_b = found.violations[0]
    assert node_a != node_b and digest_a != digest_b
    assert {node_a, node_b} <= set(found.honest)
    for seed in range(20):
        r = simulate(n=n, heights=4, seed=seed, byzantine=("equivocate",) * (b - 1),
                     max_time=60)
        assert r.safe, seed


@pytest.mark.parametrize("linear", [True, False], ids=["linear", "all-to-all"])
@pytest.mark.parametrize("n,b", [(4, 1), (7, 2)])
def test_every_equivocation_yields_verifiable_evidence(n, b, linear):
    """Linear mode splits fewer messages (a vote goes to one collector, so there is nobody
    to show a second version to); every split it does make is still proven everywhere."""
    total = 0
    for seed in range(15):
        cfg = SimConfig(n=n, heights=4, seed=seed, drain=0.2, max_time=60,
                        byzantine=("equivocate",) * (b - seed % 2) + ("chaos",) * (seed % 2),
                        core=CoreConfig(chain_id="sim", relay=True, linear=linear),
                        network=NetworkConfig(max_delay=0.05))
        sim = Simulation(cfg)
        r = sim.run()
        assert r.safe and r.min_finalized >= 4
        made = {k for k in r.equivocations if k[2] < 4}
        total += len(made)
        for node in r.honest:
            missing = made - r.evidence[node]
            assert not missing, (seed, node, sorted(missing)[:3])
        for node in sim.nodes:
            if node.node_id in r.honest:
                for ev in node.core.evidence:
                    assert ev.validator in r.byzantine  # never blames an honest node
                    assert ev.verify(sim.schedule, cfg.core.chain_id)
    assert total > (5 if linear else 40)


@pytest.mark.parametrize("method", ["synchronize", "collect", "next_leaders",
                                    "prove_next_state", "decide_vote", "finalize_votes"])
@pytest.mark.parametrize("failure", ["raise", "hang"])
def test_a_failing_provider_never_stalls_the_machine(method, failure):
    faults = ProviderFaults(raise_rate=1.0 if failure == "raise" else 0.0,
                            hang_rate=1.0 if failure == "hang" else 0.0,
                            methods=frozenset({method}), nodes=frozenset({0}))
    sim = Simulation(SimConfig(n=4, heights=6, seed=3, faults=faults, max_time=120))
    r = sim.run()
    assert r.safe
    assert r.min_finalized >= 6, {k: r.finalized(k) for k in r.honest}
    failures = [f for f in r.faults[r.honest[0]] if f.kind == "provider-failed"]
    if failure == "raise":
        assert failures and all(method in f.detail for f in failures)


def test_flaky_providers_everywhere():
    for seed in range(10):
        r = simulate(n=4 if seed % 2 else 7, heights=4, seed=seed, byzantine=("garbage",),
                     faults=ProviderFaults(raise_rate=0.1, hang_rate=0.1),
                     network=NetworkConfig(gst=0.5, drop_rate=0.1), max_time=600)
        assert r.safe and r.min_finalized >= 4, seed


def test_weighted_stake():
    # a heavy node (3 of 7) cannot finalize alone, and a byzantine light node cannot block
    for seed in range(10):
        r = simulate(n=5, weights=(3, 1, 1, 1, 1), heights=4, seed=seed,
                     byzantine=("equivocate",), byzantine_nodes=(4,), max_time=120)
        assert r.safe and r.min_finalized >= 4, seed


def test_memory_stays_bounded_over_many_heights():
    short = simulate(n=4, heights=5, seed=5, byzantine=("replay",))
    long = simulate(n=4, heights=60, seed=5, byzantine=("replay",))
    assert long.safe and long.min_finalized >= 60
    cfg = CoreConfig()
    per_height = 4 * (2 * cfg.view_window + 1) * 6 + 16
    assert long.max_memory <= (cfg.retain_heights + cfg.future_heights + 1) * per_height
    assert long.max_memory < 3 * max(short.max_memory, 50)


def test_sybils_and_usurpers_are_rejected_not_counted():
    r = simulate(n=4, heights=4, seed=2, byzantine=("sybil",), byzantine_nodes=(3,))
    assert r.safe and r.min_finalized >= 4
    assert r.rejected["unknown-signer"] > 0
    r = simulate(n=4, heights=4, seed=2, byzantine=("wrong-leader",), byzantine_nodes=(3,))
    assert r.safe and r.min_finalized >= 4
    assert r.rejected["wrong-leader"] > 0


def test_post_gst_bound_formula():
    assert view_budget(SIM_SPEC, 0) == pytest.approx(6.5)
    assert height_bound(SIM_SPEC, 1, 0.05) == pytest.approx(6.5 + 11.5 + 1.0)
