"""The safety rules of the core, one at a time, on a single node driven by hand."""

from __future__ import annotations

from dataclasses import replace

from convergent.consensus.crypto import KeyPair, Verifier, digest
from convergent.consensus.effects import CertifiedValue, Deliver, ProviderDone, SetTimer, Start
from convergent.consensus.evidence import Equivocation
from convergent.consensus.machine import Event, Phase
from convergent.consensus.messages import (
    Certificate,
    Confirmation,
    Kind,
    Liveness,
    LockProof,
    Proposal,
    Vote,
    sign_confirmation,
    sign_liveness,
    sign_proposal,
    sign_vote,
)
from convergent.consensus.sim.app import SimApp

from .conftest import CHAIN, Driver, make_core, make_keys, make_schedule

VALUE = b"tx:hello"
D = digest(VALUE)


def liveness(k: KeyPair, height: int = 0, view: int = 0, lock=None) -> Liveness:
    return sign_liveness(k, CHAIN, 0, height, view, lock)


def vote(k: KeyPair, kind: Kind, d: bytes = D, height: int = 0, view: int = 0) -> Vote:
    return sign_vote(k, CHAIN, kind, 0, height, view, d)


def cert(keys: list[KeyPair], kind: Kind, d: bytes = D, height: int = 0,
         view: int = 0) -> Certificate:
    sigs = tuple(sorted((k.node_id, vote(k, kind, d, height, view).signature) for k in keys))
    return Certificate(kind, 0, height, view, d, sigs)


def peers(drv: Driver, keys: list[KeyPair]) -> list[KeyPair]:
    """The two honest peers of the driven node among n00..n02 (n03 plays the adversary)."""
    return [k for k in keys[:3] if k.node_id != drv.core.node_id]


def to_voting(drv: Driver, keys: list[KeyPair], value: bytes = VALUE) -> Proposal:
    drv.boot()
    drv.deliver(*(liveness(k) for k in peers(drv, keys)))
    assert drv.core.phase is Phase.PROVING
    p = sign_proposal(keys[0], CHAIN, 0, 0, 0, value)
    drv.deliver(p)
    return p


def test_happy_path_finalizes_and_confirms(driver, keys):
    to_voting(driver, keys)
    assert driver.core.phase is Phase.VOTING
    [pv] = driver.sent_of(Vote)
    assert pv.kind is Kind.PREVOTE and pv.digest == D
    driver.deliver(vote(keys[0], Kind.PREVOTE), vote(keys[2], Kind.PREVOTE))
    assert driver.core.phase is Phase.FINALIZING
    assert driver.core.locked == (0, D)
    driver.deliver(vote(keys[0], Kind.PRECOMMIT), vote(keys[2], Kind.PRECOMMIT))
    [d] = driver.decisions()
    assert (d.height, d.value, d.digest) == (0, VALUE, D)
    [conf] = driver.sent_of(Confirmation)
    assert conf.digest == D and conf.result == driver.app.root
    assert driver.core.height == 1 and driver.core.phase is Phase.LIVENESS_CHECK
    events = [t.event for t in driver.transitions() if not t.internal]
    assert events[:4] == [Event.START, Event.INIT_COMPLETE, Event.SYNC_COMPLETE,
                          Event.COLLECTION_DONE]
    assert Event.QUORUM_REACHED in events and Event.AGGREGATION_DONE in events


def test_votes_from_unknown_identities_never_count(driver, keys):
    to_voting(driver, keys)
    sybils = make_keys(6, seed="sybil")
    sybils = [KeyPair.from_seed(f"sybil-{i}", "s") for i in range(6)]
    for s in sybils:
        driver.deliver(vote(s, Kind.PREVOTE), vote(s, Kind.PRECOMMIT))
    # and a member's name with a key that is not the member's
    driver.deliver(replace(vote(sybils[0], Kind.PRECOMMIT), signer="n02"))
    assert driver.core.phase is Phase.VOTING
    assert driver.decisions() == []
    assert driver.core.stats.rejected["unknown-signer"] == 12
    assert driver.core.stats.rejected["bad-signature"] == 1


def test_tampered_and_cross_chain_signatures_are_rejected(driver, keys):
    to_voting(driver, keys)
    good = vote(keys[0], Kind.PREVOTE)
    driver.deliver(replace(good, digest=digest(b"tx:other")))
    other_chain = sign_vote(keys[2], "another-chain", Kind.PREVOTE, 0, 0, 0, D)
    driver.deliver(other_chain)
    assert driver.core.stats.rejected["bad-signature"] == 2
    assert driver.core.phase is Phase.VOTING


def test_replayed_old_round_messages_do_not_count(keys, schedule):
    drv = Driver(make_core(keys, schedule, 1), SimApp("n01"))
    to_voting(drv, keys)
    old = [vote(keys[0], Kind.PRECOMMIT), vote(keys[2], Kind.PRECOMMIT),
           vote(keys[0], Kind.PREVOTE), vote(keys[2], Kind.PREVOTE)]
    drv.deliver(*old)
    assert drv.core.height == 1
    before = len(drv.decisions())
    # replay every height-0 message again, and height-0 votes re-labelled as height 1
    drv.deliver(*old)
    drv.deliver(*(replace(v, height=1) for v in old))
    assert len(drv.decisions()) == before == 1
    assert drv.core.stats.rejected["duplicate"] >= 4
    assert drv.core.stats.rejected["bad-signature"] >= 4


def test_proposal_from_wrong_leader_is_rejected(driver, keys):
    driver.boot()
    driver.deliver(liveness(keys[0]), liveness(keys[2]))
    driver.deliver(sign_proposal(keys[3], CHAIN, 0, 0, 0, b"tx:usurper"))
    assert driver.core.stats.rejected["wrong-leader"] == 1
    assert driver.core.phase is Phase.PROVING


def test_equivocating_votes_give_verifiable_evidence(driver, keys, schedule):
    to_voting(driver, keys)
    a = vote(keys[3], Kind.PREVOTE, D)
    b = vote(keys[3], Kind.PREVOTE, digest(b"tx:twin"))
    driver.deliver(a, b)
    [ev] = driver.evidence()
    assert ev.validator == "n03" and ev.kind is Kind.PREVOTE
    assert ev.verify(schedule, CHAIN)
    assert list(driver.core.evidence) == [ev]
    # the second vote did not count
    assert driver.core.phase is Phase.VOTING
    # tampered evidence does not verify: same content, or a forged second signature
    assert not Equivocation.of(a, a).verify(schedule, CHAIN)
    forged = replace(b, signature=bytes(64))
    assert not Equivocation.of(a, forged).verify(schedule, CHAIN, Verifier())
    # an honest pair of different views is no equivocation
    c = vote(keys[3], Kind.PREVOTE, digest(b"tx:twin"), view=1)
    assert not Equivocation(a.signer, a.kind, 0, 0, 0, a, c).verify(schedule, CHAIN)


def test_equivocating_proposals_give_evidence(driver, keys):
    driver.boot()
    driver.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, b"tx:a"),
                   sign_proposal(keys[0], CHAIN, 0, 0, 0, b"tx:b"))
    [ev] = driver.evidence()
    assert ev.kind is Kind.PROPOSAL and ev.validator == "n00"


def _locked_in_view_1(keys, schedule) -> Driver:
    """n02, locked on VALUE in view 0 (n00 and n01 prevoted it), now in view 1 (n01 leads)."""
    drv = Driver(make_core(keys, schedule, 2), SimApp("n02"))
    to_voting(drv, keys)
    drv.deliver(vote(keys[0], Kind.PREVOTE), vote(keys[1], Kind.PREVOTE))
    assert drv.core.phase is Phase.FINALIZING and drv.core.locked == (0, D)
    drv.fire()  # aggregation_timeout -> view 1
    assert drv.core.view == 1
    return drv


def test_view_change_proposals_must_be_justified(keys, schedule):
    """Rule 5, case by case: each proposal goes to a fresh node so none is an equivocation."""
    lock_cert = cert([keys[0], keys[1], keys[2]], Kind.PREVOTE)
    free = [liveness(keys[i], view=1) for i in (0, 1, 3)]
    reporting = liveness(keys[2], view=1, lock=(0, LockProof(VALUE, lock_cert)))
    other = b"tx:other"

    def outcome(value: bytes, headers, certificate=None) -> bool:
        drv = _locked_in_view_1(keys, schedule)
        drv.deliver(*(h for h in headers if h.signer != "n02"))
        drv.deliver(sign_proposal(keys[1], CHAIN, 0, 0, 1, value, tuple(headers), certificate))
        return drv.core.stats.rejected["bad-justification"] == 0

    # no quorum of liveness headers
    assert not outcome(other, free[:2])
    # a quorum that reports no lock at all: nothing can have been finalized, any value goes
    assert outcome(other, free)
    # a quorum reporting a lock in view 0: another value is refused...
    assert not outcome(other, [free[0], free[1], reporting], lock_cert)
    # ...so is the locked value without its certificate...
    assert not outcome(VALUE, [free[0], free[1], reporting])
    # ...and the locked value with the certificate is accepted, and voted for
    assert outcome(VALUE, [free[0], free[1], reporting], lock_cert)


def test_a_leader_reproposes_the_reported_lock(keys, schedule):
    """The view-1 leader must propose what the highest liveness lock says, not its own value."""
    drv = Driver(make_core(keys, schedule, 1), SimApp("n01"))  # n01 leads view 1
    drv.boot()
    drv.fire()  # liveness_timeout -> view 1
    assert drv.core.view == 1 and drv.core.phase is Phase.LIVENESS_CHECK
    lock_cert = cert([keys[0], keys[2], keys[3]], Kind.PREVOTE)
    drv.deliver(liveness(keys[0], view=1),
                liveness(keys[2], view=1, lock=(0, LockProof(VALUE, lock_cert))))
    [p] = drv.sent_of(Proposal)
    assert p.view == 1 and p.value == VALUE and p.lock_certificate == lock_cert
    assert len(p.justification) == 3


def test_lock_proof_must_verify(driver, keys):
    driver.boot()
    driver.fire()
    fake = cert([keys[0], keys[2]], Kind.PREVOTE)  # two signers: not a quorum
    msg = liveness(keys[0], view=1, lock=(0, LockProof(VALUE, fake)))
    driver.deliver(msg)
    assert driver.core.stats.rejected["bad-lock-proof"] == 1


def test_confirmation_mismatch_is_reported(driver, keys):
    to_voting(driver, keys)
    driver.deliver(vote(keys[0], Kind.PREVOTE), vote(keys[2], Kind.PREVOTE),
                   vote(keys[0], Kind.PRECOMMIT), vote(keys[2], Kind.PRECOMMIT))
    commit = cert([keys[0], keys[1], keys[2]], Kind.PRECOMMIT)
    # same value, different application result
    driver.deliver(sign_confirmation(keys[0], CHAIN, 0, 0, VALUE, b"\x01" * 32, commit))
    # another value, with no valid certificate
    driver.deliver(sign_confirmation(keys[2], CHAIN, 0, 0, b"tx:else", b"", None))
    kinds = {(f.kind, f.peer) for f in driver.faults()}
    assert ("result-mismatch", "n00") in kinds
    assert ("decision-mismatch", "n02") in kinds


def test_a_lagging_node_finalizes_from_a_confirmation(driver, keys):
    driver.boot()
    commit = cert([keys[0], keys[2], keys[3]], Kind.PRECOMMIT)
    forged = Certificate(Kind.PRECOMMIT, 0, 0, 0, D, commit.signatures[:2])
    driver.deliver(sign_confirmation(keys[0], CHAIN, 0, 0, VALUE, b"", forged))
    assert driver.decisions() == []
    driver.deliver(sign_confirmation(keys[0], CHAIN, 0, 0, b"tx:wrong", b"", commit))
    assert driver.decisions() == []
    driver.deliver(sign_confirmation(keys[2], CHAIN, 0, 0, VALUE, b"", commit))
    [d] = driver.decisions()
    assert d.value == VALUE and driver.core.height == 1


def test_sync_answers_are_verified(keys, schedule):
    commit = cert([keys[0], keys[2], keys[3]], Kind.PRECOMMIT)
    good = CertifiedValue(0, VALUE, commit)
    lie = CertifiedValue(1, b"tx:lie", Certificate(Kind.PRECOMMIT, 0, 1, 0,
                                                   digest(b"tx:lie"), commit.signatures))
    drv = Driver(make_core(keys, schedule, 1), SimApp("n01"), auto=False)
    drv.feed(Start())
    drv.fire()  # -> loading, the sync call is held
    [call] = drv.held
    assert call.method == "synchronize"
    drv.auto = True
    drv.feed(ProviderDone(call.token, [good, lie]))
    assert [d.height for d in drv.decisions()] == [0]
    assert drv.core.height == 1
    assert drv.core.stats.rejected["bad-sync-certificate"] == 1


def test_memory_is_bounded_under_a_flood(keys, schedule):
    drv = Driver(make_core(keys, schedule, 1, view_window=4, future_heights=2),
                 SimApp("n01"))
    drv.boot()
    adversary = keys[3]
    for view in range(120):
        for h in range(0, 30, 3):
            for salt in range(2):
                drv.deliver(vote(adversary, Kind.PREVOTE, digest(bytes([view, salt])), h, view),
                            vote(adversary, Kind.PRECOMMIT, digest(bytes([view, salt])), h, view),
                            liveness(adversary, h, view))
    # one adversary, three kinds, at most (2 x view_window + 1) views, 1 + future heights
    assert drv.core.memory_footprint() <= 3 * (2 * 4 + 1) * 3 + 10
    assert len(drv.core.evidence) <= drv.core.config.evidence_limit
    assert drv.core.stats.rejected["view-out-of-window"] > 0
    assert drv.core.stats.rejected["future-height"] > 0


def test_internal_transitions_do_not_restart_the_phase_timer(driver, keys):
    to_voting(driver, keys)
    timer = driver.timer
    assert isinstance(timer, SetTimer) and timer.event is Event.VOTING_TIMEOUT
    driver.deliver(vote(keys[3], Kind.PREVOTE, digest(b"tx:noise")))
    assert driver.timer is timer  # no new timer: the vote was an internal transition
    assert any(t.internal and t.event is Event.VOTE_RECEIVED for t in driver.transitions())


def test_stale_timers_and_results_are_ignored(driver, keys):
    driver.boot()
    stale = driver.core._entry - 1
    from convergent.consensus.effects import TimerFired
    driver.feed(TimerFired(stale, Event.LIVENESS_TIMEOUT))
    driver.feed(ProviderDone(10_000, b"nothing"))
    assert driver.core.phase is Phase.LIVENESS_CHECK and driver.core.view == 0


def test_stop_and_resync_from_a_running_phase(driver, keys):
    from convergent.consensus.effects import ForceResync, Stop
    to_voting(driver, keys)
    driver.feed(ForceResync())
    trs = [(t.source, t.event, t.target) for t in driver.transitions()]
    assert (Phase.VOTING, Event.INDUCE_SYNC, Phase.LOADING) in trs
    # back through loading and collecting to the same view: it must not vote twice
    assert driver.core.phase is Phase.VOTING and driver.core.view == 0
    assert len(driver.sent_of(Vote)) == 1
    driver.feed(Stop())
    assert driver.core.phase is Phase.STOPPED
    driver.deliver(vote(keys[0], Kind.PREVOTE))
    assert driver.core.phase is Phase.STOPPED


def test_weighted_quorum(keys):
    schedule = make_schedule(keys, [5, 1, 1, 1])  # n00 alone holds 5/8 < 2/3
    drv = Driver(make_core(keys, schedule, 1), SimApp("n01"))
    to_voting(drv, keys)
    drv.deliver(vote(keys[0], Kind.PREVOTE))  # 5 + own 1 = 6 of 8 > 2/3
    assert drv.core.phase is Phase.FINALIZING
    drv.deliver(vote(keys[2], Kind.PRECOMMIT), vote(keys[3], Kind.PRECOMMIT))
    assert drv.decisions() == []  # 1 + 1 + own 1 = 3 of 8
    drv.deliver(vote(keys[0], Kind.PRECOMMIT))
    assert len(drv.decisions()) == 1


def test_a_core_only_trusts_signed_messages(driver, keys):
    driver.boot()
    driver.feed(Deliver("not a message"))  # type: ignore[arg-type]
    driver.deliver(replace(liveness(keys[0]), epoch=3))
    assert driver.core.stats.rejected["not-a-message"] == 1
    assert driver.core.stats.rejected["bad-epoch"] == 1
    p = sign_proposal(keys[0], CHAIN, 0, 0, 0, VALUE)
    driver.deliver(replace(p, value=b"tx:swapped"))
    assert driver.core.stats.rejected["bad-digest"] == 1


def test_values_of_a_long_stuck_height_are_forgotten(keys, schedule):
    """Proposals of views left behind are dropped with their views (bounded memory)."""
    drv = Driver(make_core(keys, schedule, 1, view_window=2), SimApp("n01"))
    drv.boot()
    book = drv.core._heights[0]
    for _ in range(12):
        view = drv.core.view
        leader = drv.core.leader(0, view)
        if leader != "n01":
            k = next(k for k in keys if k.node_id == leader)
            headers = tuple(liveness(x, view=view) for x in keys if x.node_id != "n01")
            drv.deliver(sign_proposal(k, CHAIN, 0, 0, view, f"tx:{view}".encode(), headers))
        while drv.core.view == view:
            drv.fire()
    assert drv.core.view >= 12
    assert len(book.values) <= 2 * 2 + 2
    assert all(v >= drv.core.view - 2 for v in book.views)
