"""Equivocation: two signed, conflicting messages from one validator in one round.

An ``Equivocation`` carries both messages, so anyone holding the validator set
can check it without trusting the node that reported it (``verify``): both
signatures must check under the same member's key, and the signed contents
must differ for the same (kind, epoch, height, view). It is the input a
slashing rule or an operator needs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from .crypto import Verifier
from .messages import Aggregate, Confirmation, Kind, Liveness, Message, Proposal, Vote, kind_of
from .validators import EpochSchedule

__all__ = ["Equivocation", "EvidencePool", "conflict_key", "signed_content"]

ConflictKey = tuple[Kind, int, int, int, str]


def conflict_key(message: Message) -> ConflictKey:
    """Messages with the same key must have the same signed content, or someone equivocated."""
    return (kind_of(message), message.epoch, message.height, message.view, message.signer)


def signed_content(message: Message) -> object:
    """The part of the signed payload that an equivocator changes."""
    if isinstance(message, (Vote, Proposal)):
        return message.digest
    if isinstance(message, Liveness):
        return message.lock_view
    if isinstance(message, Aggregate):
        return (message.certificate.kind, message.certificate.digest)
    assert isinstance(message, Confirmation)
    return (message.digest, message.result)


@dataclass(frozen=True)
class Equivocation:
    """Verifiable evidence that ``validator`` signed ``first`` and ``second``."""

    validator: str
    kind: Kind
    epoch: int
    height: int
    view: int
    first: Message
    second: Message

    @classmethod
    def of(cls, first: Message, second: Message) -> Equivocation:
        k = conflict_key(first)
        return cls(first.signer, k[0], k[1], k[2], k[3], first, second)

    @property
    def key(self) -> ConflictKey:
        return (self.kind, self.epoch, self.height, self.view, self.validator)

    def verify(self, schedule: EpochSchedule, chain_id: str,
               verifier: Verifier | None = None) -> bool:
        """True iff both messages are validly signed by the same member and conflict."""
        verifier = verifier or Verifier()
        a, b = self.first, self.second
        if conflict_key(a) != self.key or conflict_key(b) != self.key:
            return False
        if signed_content(a) == signed_content(b):
            return False
        if schedule.epoch_of(self.height) != self.epoch:
            return False
        member = schedule.validators_for_epoch(self.epoch).get(self.validator)
        if member is None:
            return False
        return (verifier.verify(member.public_key, a.payload(chain_id), a.signature)
                and verifier.verify(member.public_key, b.payload(chain_id), b.signature))


class EvidencePool:
    """Evidence found by one node: one item per (kind, epoch, height, view, validator), bounded."""

    def __init__(self, limit: int = 1024) -> None:
        self._items: OrderedDict[ConflictKey, Equivocation] = OrderedDict()
        self._limit = limit

    def add(self, evidence: Equivocation) -> bool:
        """Keep ``evidence``; False if this equivocation was already known."""
        if evidence.key in self._items:
            return False
        self._items[evidence.key] = evidence
        while len(self._items) > self._limit:
            self._items.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Equivocation]:
        return iter(list(self._items.values()))

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def against(self, validator: str) -> list[Equivocation]:
        return [e for e in self._items.values() if e.validator == validator]
