"""The signed messages of the protocol and what exactly each signature covers.

Every payload starts with a domain tag and the chain id, then the message kind,
epoch, height and view: a signature made for one chain, kind, height or view
never verifies as another, so replaying an old-round message can only ever
count for the round it was made for.

Every byte a receiver acts on is covered by the sender's signature, directly
or through a digest inside the signed body: a proposal signs the digest of its
value and of its attachments (the justification headers, signatures included,
and the lock certificate); a liveness signs the digest of its lock proof
(``lock_digest``, kept in the header that goes into a justification); a
confirmation signs the digest of its value and of its commit certificate. A
relay that strips, swaps or replays an attachment therefore produces a copy
whose signature does not verify: it can never pass for, or shadow, the real
message. (The attachments are also self-authenticating bundles of signed votes,
which is what makes them *valid*; the outer signature is what makes them *the
sender's*.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from enum import IntEnum
from functools import lru_cache
from typing import Protocol

from ._codec import Writer
from .crypto import digest as sha256

__all__ = [
    "Aggregate",
    "Certificate",
    "Confirmation",
    "Kind",
    "Liveness",
    "LockProof",
    "Message",
    "Proposal",
    "Signer",
    "Vote",
    "attachments_digest",
    "certificate_digest",
    "sign_aggregate",
    "sign_confirmation",
    "sign_liveness",
    "sign_proposal",
    "sign_vote",
]

NodeId = str
DOMAIN = b"convergent/consensus/v2"
"""v2: attachments are signed through their digests (v1 signatures never verify as v2)."""
NO_LOCK = -1


class Signer(Protocol):
    """Anything that signs as one validator (``crypto.KeyPair`` is one)."""

    @property
    def node_id(self) -> str: ...

    def sign(self, payload: bytes) -> bytes: ...


class Kind(IntEnum):
    LIVENESS = 1
    PROPOSAL = 2
    PREVOTE = 3
    PRECOMMIT = 4
    CONFIRMATION = 5
    AGGREGATE = 6


@lru_cache(maxsize=64)
def _prefix(chain_id: str) -> bytes:
    return Writer().blob(DOMAIN).text(chain_id).getvalue()


_HEAD = struct.Struct(">Bqqq")
_I64 = struct.Struct(">q")
_LEN32 = struct.Struct(">I")
_LEN16 = struct.Struct(">H")


def _head(chain_id: str, kind: Kind, epoch: int, height: int, view: int) -> bytes:
    """Domain, chain, kind, epoch, height, view: the start of every signed payload.

    Byte-for-byte what ``_codec.Writer`` would write for the same fields (tested).
    """
    return _prefix(chain_id) + _HEAD.pack(kind, epoch, height, view)


def _blob(data: bytes) -> bytes:
    return _LEN32.pack(len(data)) + data


def _text(value: str) -> bytes:
    raw = value.encode()
    return _LEN16.pack(len(raw)) + raw


@dataclass(frozen=True, slots=True)
class Vote:
    """A prevote or precommit for a value digest in one (height, view)."""

    kind: Kind
    epoch: int
    height: int
    view: int
    digest: bytes
    signer: NodeId
    signature: bytes = b""

    def payload(self, chain_id: str) -> bytes:
        return (_head(chain_id, self.kind, self.epoch, self.height, self.view)
                + _blob(self.digest) + _text(self.signer))


@dataclass(frozen=True, slots=True)
class Certificate:
    """Votes of one kind for one (height, view, digest), as (signer, signature) pairs.

    A prevote certificate is a *lock*; a precommit certificate is a *commit*.
    It is valid when every signature checks and the signers weigh a quorum.
    """

    kind: Kind
    epoch: int
    height: int
    view: int
    digest: bytes
    signatures: tuple[tuple[NodeId, bytes], ...]

    def votes(self) -> tuple[Vote, ...]:
        return tuple(Vote(self.kind, self.epoch, self.height, self.view, self.digest, s, sig)
                     for s, sig in self.signatures)

    @property
    def signers(self) -> tuple[NodeId, ...]:
        return tuple(s for s, _ in self.signatures)


def _write_certificate(w: Writer, cert: Certificate) -> None:
    w.u8(cert.kind).i64(cert.epoch).i64(cert.height).i64(cert.view).blob(cert.digest)
    w.u16(len(cert.signatures))
    for signer, sig in cert.signatures:
        w.text(signer).blob(sig)


def certificate_digest(cert: Certificate | None) -> bytes:
    """SHA-256 of a certificate's canonical encoding (signatures included); ``b""`` for none.

    What a signer puts in its signed body to make a certificate it attaches its own.
    Memoized: one certificate travels in many messages (aggregates, confirmations, locks).
    """
    if cert is None:
        return b""
    return _certificate_digest(cert)


@lru_cache(maxsize=4096)
def _certificate_digest(cert: Certificate) -> bytes:
    w = Writer()
    _write_certificate(w, cert)
    return sha256(w.getvalue())


@dataclass(frozen=True, slots=True)
class LockProof:
    """The value a node is locked on and the prevote certificate that locked it."""

    value: bytes
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class Liveness:
    """"I am in (height, view), and the highest view I hold a lock for is ``lock_view``".

    Sent once on entering a view. The leader of the view needs a quorum of them
    to propose, and puts their signed headers in the proposal as its
    justification: that is how a locked value survives a change of leader.
    """

    epoch: int
    height: int
    view: int
    lock_view: int
    signer: NodeId
    signature: bytes = b""
    lock: LockProof | None = None
    lock_digest: bytes = b""
    """``certificate_digest`` of the lock's prevote certificate (signed; ``b""`` without a
    lock). The certificate names the value's digest, so the value is bound too."""

    def payload(self, chain_id: str) -> bytes:
        return (_head(chain_id, Kind.LIVENESS, self.epoch, self.height, self.view)
                + _I64.pack(self.lock_view) + _blob(self.lock_digest) + _text(self.signer))

    def header(self) -> Liveness:
        """The signed part without the lock proof (what a justification holds)."""
        return self if self.lock is None else replace(self, lock=None)

    def lock_matches(self) -> bool:
        """True iff the attached lock proof is the one the signer signed (or none is due)."""
        if self.lock is None:
            return self.lock_view == NO_LOCK and self.lock_digest == b""
        return certificate_digest(self.lock.certificate) == self.lock_digest


@dataclass(frozen=True, slots=True)
class Proposal:
    """The leader's value for (height, view), with what makes it safe to vote for.

    For a view above 0 the justification holds a quorum of liveness headers of
    that view; if any reports a lock, ``lock_certificate`` is the prevote
    certificate of the highest reported lock view and the value must be its value.
    """

    epoch: int
    height: int
    view: int
    value: bytes
    digest: bytes
    signer: NodeId
    signature: bytes = b""
    justification: tuple[Liveness, ...] = ()
    lock_certificate: Certificate | None = None

    def payload(self, chain_id: str) -> bytes:
        return (_head(chain_id, Kind.PROPOSAL, self.epoch, self.height, self.view)
                + _blob(self.digest) + _text(self.signer)
                + _blob(attachments_digest(self.justification, self.lock_certificate)))


@dataclass(frozen=True, slots=True)
class Confirmation:
    """"Height h finalized ``digest`` and applying it gave ``result``".

    Carries the value and the commit certificate, so a node that missed the
    round can finalize from it after checking the certificate. ``result`` is
    empty when the application did not answer in time.
    """

    epoch: int
    height: int
    digest: bytes
    result: bytes
    signer: NodeId
    signature: bytes = b""
    value: bytes = b""
    commit: Certificate | None = None

    @property
    def view(self) -> int:
        return -1

    def payload(self, chain_id: str) -> bytes:
        """Signs the value (through ``digest``, which must be its SHA-256) and the commit."""
        return (_head(chain_id, Kind.CONFIRMATION, self.epoch, self.height, -1)
                + _blob(self.digest) + _blob(self.result) + _text(self.signer)
                + _blob(certificate_digest(self.commit)))


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A collector's forward of a quorum certificate: linear communication.

    With ``CoreConfig(linear=True)`` prevotes and precommits go to the view's leader
    only; once it holds a quorum for one value it sends everyone this one message
    instead of everyone sending everyone their vote. The certificate is a bundle of
    signed votes (it proves itself); the collector's signature covers its digest and
    the value's (``value`` is carried with a commit certificate, so a node that missed
    the proposal can still finalize; it is empty with a prevote certificate).
    """

    epoch: int
    height: int
    view: int
    certificate: Certificate
    signer: NodeId
    signature: bytes = b""
    value: bytes = b""

    def payload(self, chain_id: str) -> bytes:
        return (_head(chain_id, Kind.AGGREGATE, self.epoch, self.height, self.view)
                + _blob(certificate_digest(self.certificate))
                + _blob(sha256(self.value) if self.value else b"") + _text(self.signer))


Message = Liveness | Proposal | Vote | Confirmation | Aggregate


def attachments_digest(justification: tuple[Liveness, ...],
                       lock_certificate: Certificate | None) -> bytes:
    """SHA-256 over a proposal's justification headers (signatures included) and its lock
    certificate: what the leader signs so that nobody can strip, swap or replay them."""
    w = Writer().u16(len(justification))
    for h in justification:
        w.i64(h.epoch).i64(h.height).i64(h.view).i64(h.lock_view).blob(h.lock_digest)
        w.text(h.signer).blob(h.signature)
    if lock_certificate is None:
        w.u8(0)
    else:
        w.u8(1)
        _write_certificate(w, lock_certificate)
    return sha256(w.getvalue())


def kind_of(message: Message) -> Kind:
    if isinstance(message, Vote):
        return message.kind
    if isinstance(message, Liveness):
        return Kind.LIVENESS
    if isinstance(message, Proposal):
        return Kind.PROPOSAL
    if isinstance(message, Aggregate):
        return Kind.AGGREGATE
    return Kind.CONFIRMATION


def sign_vote(signer: Signer, chain_id: str, kind: Kind, epoch: int, height: int, view: int,
              value_digest: bytes) -> Vote:
    vote = Vote(kind, epoch, height, view, value_digest, signer.node_id)
    return Vote(kind, epoch, height, view, value_digest, signer.node_id,
                signer.sign(vote.payload(chain_id)))


def sign_liveness(signer: Signer, chain_id: str, epoch: int, height: int, view: int,
                  lock: tuple[int, LockProof] | None = None) -> Liveness:
    lock_view, proof = lock if lock is not None else (NO_LOCK, None)
    lock_digest = certificate_digest(proof.certificate) if proof is not None else b""
    msg = Liveness(epoch, height, view, lock_view, signer.node_id, lock=proof,
                   lock_digest=lock_digest)
    return replace(msg, signature=signer.sign(msg.payload(chain_id)))


def sign_proposal(signer: Signer, chain_id: str, epoch: int, height: int, view: int,
                  value: bytes, justification: tuple[Liveness, ...] = (),
                  lock_certificate: Certificate | None = None) -> Proposal:
    msg = Proposal(epoch, height, view, value, sha256(value), signer.node_id,
                   justification=tuple(j.header() for j in justification),
                   lock_certificate=lock_certificate)
    return replace(msg, signature=signer.sign(msg.payload(chain_id)))


def sign_confirmation(signer: Signer, chain_id: str, epoch: int, height: int, value: bytes,
                      result: bytes, commit: Certificate | None) -> Confirmation:
    msg = Confirmation(epoch, height, sha256(value), result, signer.node_id,
                       value=value, commit=commit)
    return replace(msg, signature=signer.sign(msg.payload(chain_id)))


def sign_aggregate(signer: Signer, chain_id: str, certificate: Certificate,
                   value: bytes = b"") -> Aggregate:
    msg = Aggregate(certificate.epoch, certificate.height, certificate.view, certificate,
                    signer.node_id, value=value)
    return replace(msg, signature=signer.sign(msg.payload(chain_id)))
