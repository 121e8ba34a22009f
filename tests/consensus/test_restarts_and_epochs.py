"""Crash-restart faults and validator-set changes, in the simulator and on one core."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from convergent.consensus import ConsensusCore, CoreConfig, Phase
from convergent.consensus.crypto import KeyPair, digest
from convergent.consensus.messages import (
    Kind,
    Liveness,
    Vote,
    sign_liveness,
    sign_proposal,
    sign_vote,
)
from convergent.consensus.sim import SIM_SPEC, Crash, NetworkConfig, SimConfig, Simulation
from convergent.consensus.sim.app import SimApp
from convergent.consensus.validators import EpochSchedule, Validator, ValidatorSet

from .conftest import CHAIN, Driver
from .test_simulator import STRATEGIES, _map, height_bound

HEIGHTS = 6


# ------------------------------------------------------------------ crash-restart

def crash_case(seed: int, guard: bool = True) -> SimConfig:
    """2-6 crashes of honest nodes in the first 2 s (downtime 10-500 ms), on a lossy,
    partitioned network before GST, with f byzantine nodes or fewer; 30 % of the runs
    also change the validator set (n00 leaves, n04 joins) after height 1."""
    rng = random.Random(seed)
    epochs: tuple[tuple[int, ...], ...] | None = None
    length = None
    if rng.random() < 0.3:
        n, epochs, length = 5, ((0, 1, 2, 3), (1, 2, 3, 4)), 2
        byz: tuple[int, ...] = rng.choice([(), (2,)])  # a member of both epochs
    else:
        n = 4 if seed % 3 else 7
        byz = tuple(sorted(rng.sample(range(n), rng.randint(0, (n - 1) // 3))))
    strategies = tuple(rng.choice(("equivocate", "equivocate", *STRATEGIES)) for _ in byz)
    network = NetworkConfig(gst=rng.uniform(0, 2), drop_rate=rng.choice((0.0, 0.1, 0.3)),
                            random_partitions=rng.randint(0, 1))
    return SimConfig(n=n, heights=HEIGHTS, seed=seed, byzantine=strategies,
                     byzantine_nodes=byz, network=network, epochs=epochs, epoch_length=length,
                     random_crashes=rng.randint(2, 6), crash_window=2.0, downtime=(0.01, 0.5),
                     guard=guard, max_time=600)


def run_crash_case(args: tuple[int, bool]) -> tuple[int, bool, int, list, list, int, Counter]:
    seed, guard = args
    r = Simulation(crash_case(seed, guard)).run()
    return (seed, r.safe, r.min_finalized, sorted(r.blamed_honest),
            [e.key for e in r.double_signed], r.restarts, r.refused)


@pytest.mark.slow
def test_crash_restarts_with_the_guard_never_double_sign_over_300_seeds():
    """Honest nodes crash and come back on their guard: no honest node ever signs two
    conflicting messages (checked at the sender, and by the evidence every honest node
    collects), no two honest nodes finalize different values, every run finalizes."""
    results = _map(run_crash_case, [(seed, True) for seed in range(300)])
    assert [r[0] for r in results if not r[1]] == [], "safety violated"
    assert [(r[0], r[2]) for r in results if r[2] < HEIGHTS] == []
    assert [(r[0], r[3][:2]) for r in results if r[3]] == [], "evidence against honest nodes"
    assert [(r[0], r[4][:2]) for r in results if r[4]] == [], "an honest node double-signed"
    assert sum(r[5] for r in results) > 800  # restarts actually happened...
    refused = sum((r[6] for r in results), Counter())
    assert refused["PROPOSAL"] > 0  # ...and some came back into a view they had signed in


def test_crash_restarts_without_the_guard_double_sign():
    """The same runs with restarted nodes coming back on a blank guard (at the height their
    application reached): honest nodes do double-sign, and peers prove it. This is what
    makes the test above able to fail."""
    results = [run_crash_case((seed, False)) for seed in range(30)]
    blamed = [r for r in results if r[3]]
    double = [r for r in results if r[4]]
    assert blamed and double, "no double-signing found without the guard"
    assert {k for r in blamed for k in r[3]} <= {k for r in double for k in r[4]}
    # one of them, replayed: the evidence verifies against the restarted honest node
    seed = blamed[0][0]
    sim = Simulation(crash_case(seed, False))
    r = sim.run()
    ev = r.double_signed[0]
    assert ev.validator in r.honest and ev.verify(sim.schedule, "sim")
    assert r.restarts > 0


def test_a_crash_in_the_middle_of_a_view_resumes_in_it():
    """A scripted crash: the restarted core starts at the (height, view) it last signed in,
    with no evidence against it, and the network finalizes past it."""
    cfg = SimConfig(n=4, heights=8, seed=1, crashes=(Crash(1, 0.1, 0.02), Crash(2, 0.5, 0.3)),
                    max_time=120)
    sim = Simulation(cfg)
    r = sim.run()
    assert r.safe and r.min_finalized >= 8 and r.restarts == 2
    assert not r.blamed_honest and not r.double_signed
    trace = sim.trace("n01")  # it had locked (and precommitted) when it crashed
    assert "CRASH" in trace
    assert "resuming at h=0 v=0 from the signing guard, locked in view 0" in trace


# ------------------------------------------------------------------ validator-set changes

EPOCHS = ((0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5, 6))
"""n00 leaves after epoch 0, n04 joins; n01 leaves after epoch 1, n05 and n06 join."""
LENGTH = 3


def epoch_case(seed: int) -> SimConfig:
    rng = random.Random(seed)
    network = NetworkConfig(gst=rng.uniform(0, 2), drop_rate=rng.choice((0.0, 0.1, 0.3)),
                            random_partitions=rng.randint(0, 2))
    # n03 is a member of every epoch and byzantine throughout: f = 1 in each
    return SimConfig(n=7, heights=3 * LENGTH, seed=seed, epochs=EPOCHS, epoch_length=LENGTH,
                     byzantine=(rng.choice(("equivocate", "equivocate", *STRATEGIES)),),
                     byzantine_nodes=(3,), network=network, max_time=600)


def run_epoch_case(seed: int) -> tuple[int, bool, int, float, list[str]]:
    cfg = epoch_case(seed)
    sim = Simulation(cfg)
    r = sim.run()
    problems = []
    ids = [f"n{i:02d}" for i in range(cfg.n)]
    for node in r.honest:
        for h, d in sim.ledger(node).items():
            epoch = h // LENGTH  # past the last declared epoch, its set stays
            members = {ids[i] for i in EPOCHS[min(epoch, len(EPOCHS) - 1)]}
            vset = sim.schedule.validators_at(h)
            signers = set(d.certificate.signers)
            assert {v.node_id for v in vset.validators} == members
            if (not signers <= members or d.certificate.epoch != epoch
                    or not vset.is_quorum(vset.weight(signers))):
                problems.append(f"{node} h={h}: signers {sorted(signers)}")
    gaps = r.decide_gaps_after(cfg.network.gst)
    return seed, r.safe, r.min_finalized, max(gaps, default=0.0), problems


def test_safety_and_liveness_across_validator_set_changes():
    """Two changes of the set (a removal and an addition each, then a growth to five),
    a byzantine member throughout, a bad network before GST: agreement, every height
    finalized by every honest node (members and observers), post-GST bound held, and
    every commit certificate signed by a quorum of its own epoch's set only."""
    results = _map(run_epoch_case, range(60))
    assert [r[0] for r in results if not r[1]] == []
    assert [(r[0], r[2]) for r in results if r[2] < 3 * LENGTH] == []
    bound = height_bound(SIM_SPEC, 1, 0.05)
    assert [(r[0], r[3]) for r in results if r[3] > bound] == []
    assert [(r[0], r[4][:2]) for r in results if r[4]] == []


def test_votes_of_a_removed_validator_do_not_count():
    """n00 leaves after epoch 0 but keeps voting (``zombie``) for whatever is proposed and
    for the shadow value its accomplice n04 (a member of epoch 1) shows half of the honest
    nodes. Counted, those votes would complete the shadow's quorum (a counting bug that
    keeps removed members makes more than half of these seeds unsafe); dropped, nothing
    conflicts."""
    rejected: Counter[str] = Counter()
    for seed in range(20):
        cfg = SimConfig(n=5, heights=8, seed=seed, epochs=((0, 1, 2, 3), (1, 2, 3, 4)),
                        epoch_length=2, byzantine=("zombie", "equivocate"),
                        byzantine_nodes=(0, 4), max_time=120)
        sim = Simulation(cfg)
        r = sim.run()
        assert r.safe and r.min_finalized >= 8, seed
        rejected.update(r.rejected)
        for node in r.honest:
            for h, d in sim.ledger(node).items():
                if h >= 2:
                    assert "n00" not in d.certificate.signers
        assert r.equivocations  # the accomplice did split the honest nodes
    assert rejected["unknown-signer"] > 0 and rejected["bad-epoch"] > 0


def boundary_node() -> tuple[Driver, list[KeyPair]]:
    """n01 at height 2, the first height of epoch 1 ({n01..n04}; n00 has left), view 0."""
    keys = [KeyPair.from_seed(f"n{i:02d}", "epochs") for i in range(5)]
    sets = {e: ValidatorSet(e, tuple(Validator(keys[i].node_id, keys[i].public_key)
                                     for i in members))
            for e, members in enumerate(((0, 1, 2, 3), (1, 2, 3, 4)))}
    schedule = EpochSchedule(sets, epoch_length=2)
    core: ConsensusCore[bytes] = ConsensusCore(keys[1], schedule, spec=SIM_SPEC,
                         config=CoreConfig(chain_id=CHAIN, linear=False), start_height=2)
    drv = Driver(core, SimApp("n01"))
    drv.boot()
    return drv, keys


def test_at_the_boundary_the_new_set_alone_makes_a_quorum():
    drv, keys = boundary_node()
    assert drv.core.height == 2 and drv.core.leader(2, 0) == "n03"
    [mine] = drv.sent_of(Liveness)
    assert mine.epoch == 1
    # the removed validator's liveness does not help reach the liveness quorum
    drv.deliver(sign_liveness(keys[0], CHAIN, 1, 2, 0), sign_liveness(keys[2], CHAIN, 1, 2, 0))
    assert drv.core.phase is Phase.LIVENESS_CHECK
    drv.deliver(sign_liveness(keys[4], CHAIN, 1, 2, 0))  # the new member's does
    assert drv.core.phase is Phase.PROVING
    value = b"tx:epoch-1"
    drv.deliver(sign_proposal(keys[3], CHAIN, 1, 2, 0, value))
    assert drv.core.phase is Phase.VOTING
    d = digest(value)
    # prevotes: n00 (removed) under the new epoch and under its old one, and n02
    drv.deliver(sign_vote(keys[0], CHAIN, Kind.PREVOTE, 1, 2, 0, d),
                sign_vote(keys[0], CHAIN, Kind.PREVOTE, 0, 2, 0, d),
                sign_vote(keys[2], CHAIN, Kind.PREVOTE, 1, 2, 0, d))
    assert drv.core.phase is Phase.VOTING  # n01 + n02: 2 of 4, no quorum
    assert drv.core.stats.rejected["unknown-signer"] == 2  # its liveness and its prevote
    assert drv.core.stats.rejected["bad-epoch"] == 1
    drv.deliver(sign_vote(keys[4], CHAIN, Kind.PREVOTE, 1, 2, 0, d))
    assert drv.core.phase is Phase.FINALIZING
    drv.deliver(sign_vote(keys[0], CHAIN, Kind.PRECOMMIT, 1, 2, 0, d),
                sign_vote(keys[2], CHAIN, Kind.PRECOMMIT, 1, 2, 0, d))
    assert drv.decisions() == []  # n00's precommit is not the third one
    drv.deliver(sign_vote(keys[4], CHAIN, Kind.PRECOMMIT, 1, 2, 0, d))
    [decision] = drv.decisions()
    assert set(decision.certificate.signers) == {"n01", "n02", "n04"}
    assert decision.certificate.epoch == 1
    sent = [m for m in drv.sent_of(Vote) if m.signer == "n01"]
    assert {m.epoch for m in sent} == {1}


def test_a_node_outside_the_set_follows_without_signing():
    """n04 before it joins (height 0, epoch 0): it finalizes from the members' votes and
    signs nothing; its own votes would be unknown to the members."""
    keys = [KeyPair.from_seed(f"n{i:02d}", "epochs") for i in range(5)]
    sets = {e: ValidatorSet(e, tuple(Validator(keys[i].node_id, keys[i].public_key)
                                     for i in members))
            for e, members in enumerate(((0, 1, 2, 3), (1, 2, 3, 4)))}
    schedule = EpochSchedule(sets, epoch_length=2)
    core = ConsensusCore(keys[4], schedule, spec=SIM_SPEC,
                         config=CoreConfig(chain_id=CHAIN, linear=False))
    drv = Driver(core, SimApp("n04"))
    drv.boot()
    value = b"tx:epoch-0"
    d = digest(value)
    drv.deliver(*(sign_liveness(keys[i], CHAIN, 0, 0, 0) for i in (0, 1, 2)))
    drv.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, value))
    drv.deliver(*(sign_vote(keys[i], CHAIN, Kind.PREVOTE, 0, 0, 0, d) for i in (0, 1, 2)))
    drv.deliver(*(sign_vote(keys[i], CHAIN, Kind.PRECOMMIT, 0, 0, 0, d) for i in (0, 1, 2)))
    [decision] = drv.decisions()
    assert decision.digest == d and drv.core.height == 1
    assert drv.sent == []
    # ... and a member's core drops what n04 would sign for an epoch-0 height
    member = Driver(ConsensusCore(keys[1], schedule, spec=SIM_SPEC,
                                  config=CoreConfig(chain_id=CHAIN, linear=False)), SimApp("n01"))
    member.boot()
    member.deliver(sign_vote(keys[4], CHAIN, Kind.PREVOTE, 0, 0, 0, d))
    assert member.core.stats.rejected["unknown-signer"] == 1
