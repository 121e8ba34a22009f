"""The signed messages of the protocol and what exactly each signature covers.

Every payload starts with a domain tag and the chain id, then the message kind,
epoch, height and view: a signature made for one chain, kind, height or view
never verifies as another, so replaying an old-round message can only ever
count for the round it was made for.

Unsigned attachments are self-authenticating: a ``LockProof`` or a commit
``Certificate`` is a bundle of signed votes, and a proposal's justification is
a tuple of signed liveness headers. Nothing unsigned is trusted on its own.
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
    "Certificate",
    "Confirmation",
    "Kind",
    "Liveness",
    "LockProof",
    "Message",
    "Proposal",
    "Signer",
    "Vote",
    "sign_confirmation",
    "sign_liveness",
    "sign_proposal",
    "sign_vote",
]

NodeId = str
DOMAIN = b"convergent/consensus/v1"
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

    def payload(self, chain_id: str) -> bytes:
        return (_head(chain_id, Kind.LIVENESS, self.epoch, self.height, self.view)
                + _I64.pack(self.lock_view) + _text(self.signer))

    def header(self) -> Liveness:
        return self if self.lock is None else replace(self, lock=None)


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
                + _blob(self.digest) + _text(self.signer))


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
        return (_head(chain_id, Kind.CONFIRMATION, self.epoch, self.height, -1)
                + _blob(self.digest) + _blob(self.result) + _text(self.signer))


Message = Liveness | Proposal | Vote | Confirmation


def kind_of(message: Message) -> Kind:
    if isinstance(message, Vote):
        return message.kind
    if isinstance(message, Liveness):
        return Kind.LIVENESS
    if isinstance(message, Proposal):
        return Kind.PROPOSAL
    return Kind.CONFIRMATION


def sign_vote(signer: Signer, chain_id: str, kind: Kind, epoch: int, height: int, view: int,
              value_digest: bytes) -> Vote:
    vote = Vote(kind, epoch, height, view, value_digest, signer.node_id)
    return Vote(kind, epoch, height, view, value_digest, signer.node_id,
                signer.sign(vote.payload(chain_id)))


def sign_liveness(signer: Signer, chain_id: str, epoch: int, height: int, view: int,
                  lock: tuple[int, LockProof] | None = None) -> Liveness:
    lock_view, proof = lock if lock is not None else (NO_LOCK, None)
    msg = Liveness(epoch, height, view, lock_view, signer.node_id)
    return Liveness(epoch, height, view, lock_view, signer.node_id,
                    signer.sign(msg.payload(chain_id)), proof)


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
