"""The pluggable parts: what the application decides, and how values become bytes.

The reference design's four providers keep their names and jobs, with two
changes that safety requires:

* The *sending* halves (``SendProposal``, ``SendVote``, ``SendLiveness``,
  ``SendConfirmation``) are not provider methods any more: the core signs
  every message itself and hands it to a ``Transport``, so no provider can
  send something unsigned, or sign something the safety rules forbid.
* ``IsQuorum`` is gone: the quorum is decided by the core from the epoch's
  validator set (weight > 2/3), because a pluggable quorum rule is how votes
  from unknown identities came to count.

Every provider method may be ``async def`` or a plain function. The runtime
runs coroutines as tasks and plain functions in a worker thread, with the
phase's timeout; a result comes back to the core as an input event, so a
slow, hung or raising provider never blocks the loop. A failure is not fatal:
the core falls back (default leaders, no vote, empty result) and the phase
timeout moves the node on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .effects import CertifiedValue, Decision
from .leaders import proposer_schedule
from .validators import ValidatorSet

__all__ = [
    "BytesCodec",
    "Codec",
    "JsonCodec",
    "LeaderProvider",
    "LivenessProvider",
    "NoSync",
    "Providers",
    "RoundRobinLeaders",
    "WeightedLeaders",
    "SyncProvider",
    "Transport",
    "VotingProvider",
]

V = TypeVar("V")
C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)
C_contra = TypeVar("C_contra", contravariant=True)


class Codec(Protocol[V]):
    """Turns the application's value type into the bytes that are hashed and signed."""

    def encode(self, value: V) -> bytes: ...

    def decode(self, data: bytes) -> V: ...


class BytesCodec:
    """Values are already bytes."""

    def encode(self, value: bytes) -> bytes:
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


class JsonCodec:
    """Values are JSON documents, encoded canonically (sorted keys, no spaces)."""

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class SyncProvider(Protocol):
    """Catch up on heights finalized while this node was away.

    Returns certified values from ``height`` on, in order. The core checks
    every commit certificate before it accepts one, so a lying peer behind
    the provider can delay a node but not mislead it.
    """

    async def synchronize(self, height: int) -> Sequence[CertifiedValue]: ...


class LivenessProvider(Protocol[C_co]):
    """Gather what the next value will be made of (a mempool, a batch of operations)."""

    async def collect(self, height: int, view: int) -> C_co: ...


class LeaderProvider(Protocol[V, C_contra]):
    """Who leads, and how the leader makes the next value.

    ``next_leaders`` must answer the same on every honest node (it is part of
    what they agree on, like genesis): the leader of view ``v`` is
    ``leaders[v % len(leaders)]``. A wrong or failing answer costs liveness,
    never safety: a proposal is only safe to vote for because of its
    justification, not because of who sent it.
    """

    async def next_leaders(self, height: int, validators: ValidatorSet) -> Sequence[str]: ...

    async def prove_next_state(self, height: int, view: int, collected: C_contra | None,
                               prior: V | None) -> V: ...


class VotingProvider(Protocol[V]):
    """Application checks on a proposed value, and applying a finalized one.

    ``decide_vote`` is the application's validity predicate (the core has
    already checked signatures, membership, leadership and the lock rule).
    ``finalize_votes`` applies the decision and returns the application's
    result (e.g. a state root); confirmations of other nodes are compared
    with it.
    """

    async def decide_vote(self, height: int, view: int, value: V) -> bool: ...

    async def finalize_votes(self, decision: Decision[V]) -> bytes: ...


class Transport(Protocol):
    """Delivers signed messages. ``send`` must not block: queue and return."""

    def send(self, message: Any, to: str | None) -> None: ...


@dataclass(frozen=True)
class Providers(Generic[V, C]):
    """The four providers a node runs with."""

    sync: SyncProvider
    liveness: LivenessProvider[C]
    leader: LeaderProvider[V, C]
    voting: VotingProvider[V]


class NoSync:
    """A sync provider for a network that only catches up through confirmations."""

    async def synchronize(self, height: int) -> Sequence[CertifiedValue]:
        return ()


class WeightedLeaders:
    """Stake-weighted proposer priority (``leaders.py``): the core's own fallback schedule."""

    async def next_leaders(self, height: int, validators: ValidatorSet) -> Sequence[str]:
        return proposer_schedule(height, validators)


class RoundRobinLeaders:
    """Leaders in id order, rotated by height, whatever the stakes (the old default)."""

    async def next_leaders(self, height: int, validators: ValidatorSet) -> Sequence[str]:
        return round_robin(height, validators)


def round_robin(height: int, validators: ValidatorSet) -> tuple[str, ...]:
    """Every member once, in id order, rotated by height: equal shares whatever the stake."""
    ids = validators.ids
    k = height % len(ids)
    return ids[k:] + ids[:k]
