"""Linear communication: votes to the view's leader, one forwarded certificate per phase."""

from __future__ import annotations

from dataclasses import replace

import pytest

from convergent.consensus import CoreConfig
from convergent.consensus.effects import Start
from convergent.consensus.machine import Phase
from convergent.consensus.messages import (
    Aggregate,
    Certificate,
    Confirmation,
    Kind,
    Liveness,
    Proposal,
    Vote,
    sign_aggregate,
    sign_proposal,
)
from convergent.consensus.sim import NetworkConfig, SimConfig, Simulation, simulate
from convergent.consensus.sim.app import SimApp

from .conftest import CHAIN, Driver, make_core
from .test_core import D, VALUE, cert, vote


def linear_driver(keys, schedule, index: int = 1) -> Driver:
    drv = Driver(make_core(keys, schedule, index, linear=True), SimApp(keys[index].node_id))
    drv.feed(Start())
    drv.fire()  # starting -> ... -> liveness_check, and on at once: view 0 needs no quorum
    assert drv.core.phase in (Phase.PROVING, Phase.VOTING), drv.core.phase
    return drv


def test_view_0_sends_no_liveness_and_votes_go_to_the_leader(keys, schedule):
    drv = linear_driver(keys, schedule, 2)  # n02; n00 leads view 0 of height 0
    assert drv.sent_of(Liveness) == []  # signed (for hints), not broadcast
    drv.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, VALUE))
    [pv] = [s for s in drv.sent if isinstance(s.message, Vote)]
    assert pv.message.kind is Kind.PREVOTE and pv.to == "n00"
    # the leader's prevote certificate is what moves the node on: lock, precommit to n00
    qc = cert([keys[0], keys[1], keys[2]], Kind.PREVOTE)
    drv.deliver(sign_aggregate(keys[0], CHAIN, qc))
    assert drv.core.locked == (0, D)
    [pc] = [s for s in drv.sent if isinstance(s.message, Vote) and s.message.kind
            is Kind.PRECOMMIT]
    assert pc.to == "n00"
    # the commit certificate finalizes; the confirmation goes to the next height's leader
    drv.deliver(sign_aggregate(keys[0], CHAIN, cert(keys[:3], Kind.PRECOMMIT), VALUE))
    [d] = drv.decisions()
    assert d.value == VALUE and d.certificate.signers == ("n00", "n01", "n02")
    [conf] = [s for s in drv.sent if isinstance(s.message, Confirmation)]
    assert conf.to == drv.core.leader(1, 0) == "n01"


def test_the_leader_collects_and_forwards_one_certificate_per_phase(keys, schedule):
    drv = linear_driver(keys, schedule, 0)  # n00 leads view 0: it proposes and collects
    [p] = drv.sent_of(Proposal)
    drv.deliver(*(vote(k, Kind.PREVOTE, p.digest) for k in keys[1:4]))
    prevote_qcs = [a for a in drv.sent_of(Aggregate) if a.certificate.kind is Kind.PREVOTE]
    assert len(prevote_qcs) == 1 and prevote_qcs[0].value == b""
    assert len(prevote_qcs[0].certificate.signatures) == 3  # the quorum, no more
    drv.deliver(*(vote(k, Kind.PRECOMMIT, p.digest) for k in keys[1:4]))
    commits = [a for a in drv.sent_of(Aggregate) if a.certificate.kind is Kind.PRECOMMIT]
    assert len(commits) == 1 and commits[0].value == p.value  # laggards can finalize from it
    assert drv.decisions()[0].digest == p.digest
    assert all(s.to is None for s in drv.sent if isinstance(s.message, Aggregate))


def test_a_node_that_missed_the_proposal_finalizes_from_the_commit_certificate(keys, schedule):
    drv = linear_driver(keys, schedule, 3)
    drv.deliver(sign_aggregate(keys[0], CHAIN, cert(keys[:3], Kind.PRECOMMIT), VALUE))
    [d] = drv.decisions()
    assert d.value == VALUE


@pytest.mark.parametrize("doctor", [
    lambda a, other: replace(a, value=b""),
    lambda a, other: replace(a, certificate=other),
    lambda a, other: replace(a, certificate=Certificate(
        a.certificate.kind, 0, 0, 0, a.certificate.digest, a.certificate.signatures[:2])),
], ids=["stripped-value", "swapped-certificate", "thinned-certificate"])
def test_a_doctored_aggregate_never_shadows_the_real_one(keys, schedule, doctor):
    drv = linear_driver(keys, schedule, 3)
    real = sign_aggregate(keys[0], CHAIN, cert(keys[:3], Kind.PRECOMMIT), VALUE)
    other = cert([keys[0], keys[1], keys[3]], Kind.PRECOMMIT)
    drv.deliver(doctor(real, other))
    assert drv.decisions() == [] and drv.core.stats.rejected["bad-signature"] == 1
    drv.deliver(real)
    assert [d.value for d in drv.decisions()] == [VALUE]


def test_an_invalid_certificate_is_refused_and_a_valid_one_still_counts(keys, schedule):
    drv = linear_driver(keys, schedule, 3)
    short = Certificate(Kind.PRECOMMIT, 0, 0, 0, D, cert(keys[:3], Kind.PRECOMMIT)
                        .signatures[:2])
    drv.deliver(sign_aggregate(keys[0], CHAIN, short, VALUE))  # signed, but no quorum
    assert drv.core.stats.rejected["bad-certificate"] == 1 and drv.decisions() == []
    drv.deliver(sign_aggregate(keys[1], CHAIN, cert(keys[:3], Kind.PRECOMMIT), VALUE))
    assert [d.value for d in drv.decisions()] == [VALUE]


def _per_height(n: int, linear: bool, heights: int = 4, seed: int = 1) -> float:
    r = simulate(n=n, heights=heights, seed=seed, network=NetworkConfig(max_delay=0.02),
                 core=CoreConfig(chain_id="sim", report_internal=False, linear=linear))
    assert r.safe and r.min_finalized >= heights
    return r.messages_delivered / r.min_finalized


def test_messages_per_height_grow_linearly():
    linear = {n: _per_height(n, True) for n in (4, 8, 16)}
    quadratic = {n: _per_height(n, False) for n in (4, 8, 16)}
    for n in (4, 8, 16):
        # proposal, 2 votes, 2 certificates, 1 confirmation: 6(n - 1) per height, plus the
        # next height's first messages already in flight when the run stops
        assert linear[n] <= 7 * n
        assert quadratic[n] >= 3 * n * (n - 1)
    # doubling n doubles the linear count (about), quadruples the other
    assert linear[16] / linear[8] < 2.3 and quadratic[16] / quadratic[8] > 3.5


def test_a_silent_or_withholding_collector_costs_one_view():
    for strategy in ("silent", "withhold"):
        sim = Simulation(SimConfig(n=4, heights=8, seed=2, byzantine=(strategy,),
                                   byzantine_nodes=(1,), max_time=120))
        r = sim.run()
        assert r.safe and r.min_finalized >= 8
        views = [d.view for d in sim.ledger(r.honest[0]).values()]
        assert max(views) == 1  # the heights it led finished in the next view
