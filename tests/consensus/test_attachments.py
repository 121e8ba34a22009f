"""Every byte a receiver acts on is signed: doctored attachments never shadow the real message.

The attack these tests reproduce (issue 13): a proposal's justification and lock
certificate, and a confirmation's value and commit certificate, were outside the
signature, and the core kept the first validly signed copy per signer. A byzantine
relay that forwards a stripped copy first made the honest nodes drop the real one:
with one byzantine node of four, no height finalized after view 0.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.consensus.crypto import Verifier, digest
from convergent.consensus.messages import (
    Confirmation,
    Kind,
    Liveness,
    LockProof,
    Proposal,
    Vote,
    sign_confirmation,
    sign_liveness,
    sign_proposal,
)
from convergent.consensus.sim import NetworkConfig, Simulation, SimConfig, simulate

from .conftest import CHAIN
from .test_core import VALUE, _locked_in_view_1, cert, liveness, vote
from .test_simulator import height_bound

ATTACKS = ("strip", "swap", "replay-attachments")


def _view_1_proposal(keys):
    """n01's justified view-1 proposal re-proposing the value n02 reports locked in view 0."""
    lock_cert = cert([keys[0], keys[1], keys[2]], Kind.PREVOTE)
    headers = (liveness(keys[0], view=1), liveness(keys[3], view=1),
               liveness(keys[2], view=1, lock=(0, LockProof(VALUE, lock_cert))))
    p = sign_proposal(keys[1], CHAIN, 0, 0, 1, VALUE, headers, lock_cert)
    return p, headers, lock_cert


@pytest.mark.parametrize("doctor", [
    lambda p, other: replace(p, justification=(), lock_certificate=None),
    lambda p, other: replace(p, lock_certificate=None),
    lambda p, other: replace(p, justification=p.justification[:-1]),
    lambda p, other: replace(p, justification=other.justification),
    lambda p, other: replace(p, lock_certificate=other.lock_certificate),
], ids=["stripped", "no-certificate", "thinned", "swapped-justification", "swapped-certificate"])
def test_a_doctored_proposal_copy_never_shadows_the_real_one(keys, schedule, doctor):
    drv = _locked_in_view_1(keys, schedule)
    real, headers, _ = _view_1_proposal(keys)
    # another justified-looking proposal of the same leader, from another view, to swap from
    other_cert = cert([keys[0], keys[2], keys[3]], Kind.PREVOTE, view=0)
    other = sign_proposal(keys[1], CHAIN, 0, 0, 2, VALUE,
                          tuple(liveness(k, view=2) for k in keys[:3]), other_cert)
    drv.deliver(*(h for h in headers if h.signer != "n02"))
    fake = doctor(real, other)
    assert fake != real and fake.signature == real.signature
    drv.deliver(fake)  # the adversary's copy arrives first...
    assert drv.core.stats.rejected["bad-signature"] == 1
    assert drv.core.stats.rejected["duplicate"] == 0
    drv.deliver(real)  # ...and the real one is still accepted and voted for
    assert drv.core.stats.rejected["bad-justification"] == 0
    assert drv.core.stats.rejected["duplicate"] == 0
    assert [v.digest for v in drv.sent_of(Vote) if v.view == 1] == [real.digest]


def test_a_proposal_the_leader_signed_badly_does_not_shadow_its_good_one(keys, schedule):
    """Stored only after it validates: even a validly signed but unjustified copy of the
    same value leaves room for the leader's justified one."""
    drv = _locked_in_view_1(keys, schedule)
    real, headers, _ = _view_1_proposal(keys)
    drv.deliver(*(h for h in headers if h.signer != "n02"))
    bad = sign_proposal(keys[1], CHAIN, 0, 0, 1, VALUE, headers[:2])  # no quorum
    drv.deliver(bad)
    assert drv.core.stats.rejected["bad-justification"] == 1
    drv.deliver(real)
    assert drv.core.stats.rejected["bad-justification"] == 1
    assert [v.digest for v in drv.sent_of(Vote) if v.view == 1] == [real.digest]
    assert drv.evidence() == []  # same value: not an equivocation


def test_a_doctored_lock_proof_never_shadows_the_real_liveness(driver, keys):
    driver.boot()
    driver.fire()  # view 1
    lock_cert = cert([keys[0], keys[2], keys[3]], Kind.PREVOTE)
    real = liveness(keys[0], view=1, lock=(0, LockProof(VALUE, lock_cert)))
    other_cert = cert([keys[0], keys[1], keys[2]], Kind.PREVOTE)  # valid too, other signers
    for fake in (replace(real, lock=None), replace(real, lock=LockProof(VALUE, other_cert))):
        driver.deliver(fake)
    assert driver.core.stats.rejected["bad-lock-proof"] == 2
    driver.deliver(real)
    assert driver.core.stats.accepted["Liveness"] == 1
    assert driver.core.stats.rejected["duplicate"] == 0


def test_a_doctored_confirmation_never_shadows_the_real_one(driver, keys):
    """A lagging node finalizes from the real confirmation even after stripped copies."""
    driver.boot()
    commit = cert([keys[0], keys[2], keys[3]], Kind.PRECOMMIT)
    other = cert([keys[0], keys[1], keys[2]], Kind.PRECOMMIT)
    real = sign_confirmation(keys[0], CHAIN, 0, 0, VALUE, b"", commit)
    fakes = [replace(real, commit=None), replace(real, value=b"", commit=None),
             replace(real, commit=other), replace(real, value=b"tx:else")]
    driver.deliver(*fakes)
    assert driver.decisions() == []
    assert driver.core.stats.rejected["bad-signature"] == 2
    assert driver.core.stats.rejected["bad-digest"] == 2
    driver.deliver(real)
    [d] = driver.decisions()
    assert d.value == VALUE and d.certificate == commit


def _intact(message, key: bytes) -> bool:
    """What a receiver checks before it acts on a message's bytes."""
    if not Verifier().verify(key, message.payload(CHAIN), message.signature):
        return False
    if isinstance(message, Liveness):
        lock = message.lock
        return message.lock_view < 0 or (message.lock_matches() and lock is not None
                                         and digest(lock.value) == lock.certificate.digest)
    if isinstance(message, (Proposal, Confirmation)):
        return digest(message.value) == message.digest
    return True


def _samples(keys):
    lock_cert = cert([keys[0], keys[1], keys[2]], Kind.PREVOTE)
    p, _, _ = _view_1_proposal(keys)
    return [
        p,
        liveness(keys[2], view=1, lock=(0, LockProof(VALUE, lock_cert))),
        sign_confirmation(keys[3], CHAIN, 0, 0, VALUE, b"\x07" * 32,
                          cert(keys[:3], Kind.PRECOMMIT)),
        vote(keys[0], Kind.PREVOTE),
    ]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_byte_a_receiver_acts_on_is_signed(data):
    """Change any byte of any message (attachments included): it is the same message, or it
    no longer passes the receiver's checks. There is no unsigned byte left to tamper with."""
    from convergent.consensus.errors import WireError
    from convergent.consensus.wire import decode, encode

    from .conftest import make_keys
    keys = make_keys(4)
    message = data.draw(st.sampled_from(_samples(keys)))
    raw = bytearray(encode(message))
    pos = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    raw[pos] = byte
    try:
        other = decode(bytes(raw))
    except WireError:
        return
    key = {k.node_id: k.public_key for k in keys}.get(other.signer)
    assert other == message or key is None or not _intact(other, key)


def test_payloads_bind_the_attachments(keys):
    p, headers, lock_cert = _view_1_proposal(keys)
    assert p.payload(CHAIN) != replace(p, justification=()).payload(CHAIN)
    assert p.payload(CHAIN) != replace(p, lock_certificate=None).payload(CHAIN)
    c = sign_confirmation(keys[0], CHAIN, 0, 0, VALUE, b"", cert(keys[:3], Kind.PRECOMMIT))
    assert c.payload(CHAIN) != replace(c, commit=None).payload(CHAIN)
    locked = headers[2]
    assert locked.lock_digest and locked.header().payload(CHAIN) == locked.payload(CHAIN)
    assert sign_liveness(keys[0], CHAIN, 0, 0, 1).lock_digest == b""


# ---------------------------------------------------------------- in the simulator

def test_the_rushing_network_serves_the_adversary_first():
    sim = Simulation(SimConfig(n=4, byzantine=("strip",), byzantine_nodes=(3,),
                               network=NetworkConfig(rushing=True, min_delay=0.001,
                                                     max_delay=0.05)))
    net = sim.network
    assert net.delay("n00", "n01", 0.0) == 0.05  # honest to honest: the full Delta
    assert net.delay("n00", "n03", 0.0) == 0.001  # to the adversary: at once
    assert net.delay("n03", "n01", 0.0) == 0.001  # from it: at once


@pytest.mark.parametrize("attack", ATTACKS)
def test_one_byzantine_of_four_doctoring_attachments_cannot_stall_view_changes(attack):
    """The issue's reproduction: before, no height needing view 1 ever finalized."""
    network = NetworkConfig(rushing=True, max_delay=0.05)
    sim = Simulation(SimConfig(n=4, heights=8, seed=1, byzantine=(attack,),
                               byzantine_nodes=(2,), network=network, max_time=300))
    r = sim.run()
    assert r.safe and r.min_finalized == 8, {n: r.finalized(n) for n in r.honest}
    views = [d.view for d in sim.ledger(r.honest[0]).values()]
    assert max(views) >= 1  # the byzantine node led some heights: view changes happened
    bound = height_bound(sim.config.spec, 1, network.max_delay)
    assert max(r.decide_gaps_after(0.0)) <= bound
    assert r.rejected["bad-signature"] + r.rejected["bad-digest"] > 0  # its copies were seen


@pytest.mark.parametrize("seed", range(12))
def test_attachment_attacks_are_safe_and_live_within_the_bound(seed):
    """f byzantine nodes of n = 4 and 7, every attachment attack, a rushing adversary, a
    lossy network before GST: safe, every height, and the post-GST bound on every seed."""
    n = 4 if seed % 2 else 7
    f = (n - 1) // 3
    attacks = tuple(ATTACKS[(seed + i) % 3] for i in range(f))
    network = NetworkConfig(rushing=True, gst=0.5 * (seed % 3), drop_rate=0.1 * (seed % 3),
                            random_partitions=seed % 2)
    r = simulate(n=n, heights=4, seed=seed, byzantine=attacks, network=network, max_time=600)
    assert r.safe and r.min_finalized >= 4, (seed, {k: r.finalized(k) for k in r.honest})
    bound = height_bound(SimConfig().spec, f, network.max_delay)
    assert max(r.decide_gaps_after(network.gst), default=0.0) <= bound
