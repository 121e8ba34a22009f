"""Byzantine behaviours, as filters on what an otherwise ordinary node sends.

A byzantine node runs the normal core (so it stays plausible: it knows the
height, the leader, the values) and a ``Strategy`` rewrites every message it
is about to send: dropping it, splitting it into conflicting signed versions,
adding forged or replayed ones. The same strategies run in the simulator and
in the real-network demo.

The coalition shares one plan: honest nodes are split in two groups (``G1``,
``G2``); an equivocator shows ``G1`` (and its accomplices) the real message
and ``G2`` a conflicting one about a *shadow* value that every accomplice
derives the same way. With byzantine weight >= 1/3 that splits the honest
nodes into two finalizing camps; below 1/3 it must not.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .crypto import KeyPair
from .messages import (
    NO_LOCK,
    Certificate,
    Confirmation,
    Kind,
    Liveness,
    Message,
    Proposal,
    Vote,
    sign_confirmation,
    sign_liveness,
    sign_proposal,
    sign_vote,
)
from .validators import EpochSchedule

__all__ = ["STRATEGIES", "AdversaryContext", "FilteredTransport", "Strategy", "make_strategy",
           "shadow"]

NodeId = str
Routed = list[tuple[Message, NodeId]]


def shadow(value: bytes) -> bytes:
    """The conflicting twin of ``value`` that every accomplice computes alike (still app-valid)."""
    return b"tx:shadow:" + hashlib.sha256(value).hexdigest()[:16].encode() + b":" + value[:48]


@dataclass
class AdversaryContext:
    """What a byzantine node knows: its key, the plan, and where to record what it did."""

    keys: KeyPair
    chain_id: str
    honest: tuple[NodeId, ...]
    coalition: tuple[NodeId, ...]
    rng: random.Random
    record: Callable[[tuple[Kind, int, int, int, str]], None] | None = None
    sybils: tuple[KeyPair, ...] = field(default_factory=tuple)
    schedule: EpochSchedule | None = None
    """The validator sets, for strategies that depend on membership (``zombie``)."""

    @property
    def groups(self) -> tuple[frozenset[NodeId], frozenset[NodeId]]:
        honest = sorted(self.honest)
        half = (len(honest) + 1) // 2
        return frozenset(honest[:half]), frozenset(honest[half:])


class Strategy:
    """Pass-through base: subclasses override ``outgoing`` (and maybe ``incoming``)."""

    name = "honest"

    def __init__(self, ctx: AdversaryContext) -> None:
        self.ctx = ctx
        self.values: dict[bytes, bytes] = {}

    def incoming(self, message: Message) -> None:
        if isinstance(message, Proposal):
            self._remember(message.digest, message.value)

    def _remember(self, dig: bytes, value: bytes) -> None:
        if len(self.values) > 256:
            self.values.clear()
        self.values[dig] = value

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        return [(message, r) for r in recipients]

    def react(self, message: Message) -> Routed:
        """Messages to send of its own accord on receiving ``message`` (none by default)."""
        return []


class Silent(Strategy):
    """Crashed from the start: sends nothing."""

    name = "silent"

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        return []


class Withhold(Strategy):
    """Never proposes or precommits; sends the rest to a random half of its peers."""

    name = "withhold"

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        if isinstance(message, Proposal) or (
                isinstance(message, Vote) and message.kind is Kind.PRECOMMIT):
            return []
        return [(message, r) for r in recipients if self.ctx.rng.random() < 0.5]


class Equivocate(Strategy):
    """Shows G1 the real message and G2 a conflicting one; records each split it makes."""

    name = "equivocate"

    def _twin(self, message: Message) -> Message | None:
        ctx = self.ctx
        if isinstance(message, Vote):
            value = self.values.get(message.digest)
            twin_digest = (hashlib.sha256(shadow(value)).digest() if value is not None
                           else hashlib.sha256(b"shadow" + message.digest).digest())
            return sign_vote(ctx.keys, ctx.chain_id, message.kind, message.epoch,
                             message.height, message.view, twin_digest)
        if isinstance(message, Proposal):
            self._remember(message.digest, message.value)
            twin = shadow(message.value)
            self._remember(hashlib.sha256(twin).digest(), twin)
            return sign_proposal(ctx.keys, ctx.chain_id, message.epoch, message.height,
                                 message.view, twin, message.justification,
                                 message.lock_certificate)
        if isinstance(message, Liveness):
            if message.lock_view == NO_LOCK:
                return None  # nothing to hide, and a fake lock would need a certificate
            return sign_liveness(ctx.keys, ctx.chain_id, message.epoch, message.height,
                                 message.view, None)
        assert isinstance(message, Confirmation)
        return replace(
            sign_confirmation(ctx.keys, ctx.chain_id, message.epoch, message.height,
                              message.value, b"\x00" * 32, message.commit))

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        g1, g2 = self.ctx.groups
        if message.signer != self.ctx.keys.node_id:  # relaying someone else's message
            return [(message, r) for r in recipients]
        twin = self._twin(message)
        if twin is None:
            return [(message, r) for r in recipients]
        out: Routed = []
        to_g1 = to_g2 = False
        for r in recipients:
            if r in g2:
                out.append((twin, r))
                to_g2 = True
            else:
                out.append((message, r))
                to_g1 = to_g1 or r in g1
        if to_g1 and to_g2 and self.ctx.record is not None:
            kind = Kind.CONFIRMATION if isinstance(message, Confirmation) else (
                message.kind if isinstance(message, Vote) else
                Kind.PROPOSAL if isinstance(message, Proposal) else Kind.LIVENESS)
            self.ctx.record((kind, message.epoch, message.height, message.view, message.signer))
        return out


class Garbage(Strategy):
    """Votes for random digests, proposes invalid values, corrupts some signatures."""

    name = "garbage"

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        ctx, rng = self.ctx, self.ctx.rng
        if message.signer != ctx.keys.node_id:
            return [(message, r) for r in recipients]
        if isinstance(message, Vote):
            message = sign_vote(ctx.keys, ctx.chain_id, message.kind, message.epoch,
                                message.height, message.view, rng.randbytes(32))
        elif isinstance(message, Proposal):
            message = sign_proposal(ctx.keys, ctx.chain_id, message.epoch, message.height,
                                    message.view, b"garbage:" + rng.randbytes(16),
                                    message.justification, message.lock_certificate)
        if rng.random() < 0.25:
            message = replace(message, signature=rng.randbytes(64))
        return [(message, r) for r in recipients]


class Sybil(Strategy):
    """Adds votes, proposals and confirmations signed by identities outside the validator set,
    and by a member's name with the wrong key."""

    name = "sybil"

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        ctx = self.ctx
        out = [(message, r) for r in recipients]
        if not isinstance(message, (Vote, Liveness)):
            return out
        fake_value = b"tx:sybil:" + str(message.height).encode()
        fake = hashlib.sha256(fake_value).digest()
        forged: list[Message] = []
        for sybil in ctx.sybils:
            for kind in (Kind.PREVOTE, Kind.PRECOMMIT):
                forged.append(sign_vote(sybil, ctx.chain_id, kind, message.epoch,
                                        message.height, message.view, fake))
        if ctx.sybils:
            impostor = ctx.honest[0] if ctx.honest else ctx.keys.node_id
            v = sign_vote(ctx.sybils[0], ctx.chain_id, Kind.PRECOMMIT, message.epoch,
                          message.height, message.view, fake)
            forged.append(replace(v, signer=impostor))
            sigs = tuple(sorted((s.node_id, sign_vote(s, ctx.chain_id, Kind.PRECOMMIT,
                                                      message.epoch, message.height,
                                                      message.view, fake).signature)
                                for s in ctx.sybils))
            commit = Certificate(Kind.PRECOMMIT, message.epoch, message.height, message.view,
                                 fake, sigs)
            forged.append(sign_confirmation(ctx.keys, ctx.chain_id, message.epoch,
                                            message.height, fake_value, b"", commit))
        for f in forged:
            out.extend((f, r) for r in recipients)
        return out


class WrongLeader(Strategy):
    """Proposes in every view it enters, leader or not."""

    name = "wrong-leader"

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        out = [(message, r) for r in recipients]
        if isinstance(message, Liveness):
            ctx = self.ctx
            value = b"tx:usurper:" + ctx.keys.node_id.encode() + b":" + str(
                (message.height, message.view)).encode()
            p = sign_proposal(ctx.keys, ctx.chain_id, message.epoch, message.height,
                              message.view, value)
            out.extend((p, r) for r in recipients)
        return out


class Replay(Strategy):
    """Records what it receives and re-sends old messages to random peers."""

    name = "replay"

    def __init__(self, ctx: AdversaryContext) -> None:
        super().__init__(ctx)
        self.seen: list[Message] = []

    def incoming(self, message: Message) -> None:
        super().incoming(message)
        if len(self.seen) < 512:
            self.seen.append(message)
        else:
            self.seen[self.ctx.rng.randrange(512)] = message

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        out = [(message, r) for r in recipients]
        rng = self.ctx.rng
        if self.seen and recipients:
            for _ in range(2):
                out.append((rng.choice(self.seen), rng.choice(list(recipients))))
        return out


class Zombie(Strategy):
    """A validator removed from the set that keeps voting as if it were still a member.

    While it is a member it behaves (given ``ctx.schedule``; without one it acts at
    every height, i.e. it equivocates). For every proposal of a height whose set no
    longer contains it, it signs prevotes and precommits for the proposed value and
    for its shadow (what an equivocating accomplice shows the other half), labelled
    with the height's epoch and with the previous one, and sends them to everyone.
    Were those votes counted, a removed validator could complete an accomplice's
    conflicting quorum; they must be dropped as ``unknown-signer`` / ``bad-epoch``.
    """

    name = "zombie"

    def react(self, message: Message) -> Routed:
        ctx = self.ctx
        if not isinstance(message, Proposal) or message.signer == ctx.keys.node_id:
            return []
        schedule = ctx.schedule
        if schedule is not None and ctx.keys.node_id in schedule.validators_at(message.height):
            return []
        digests = (message.digest, hashlib.sha256(shadow(message.value)).digest())
        epochs = sorted({message.epoch, max(0, message.epoch - 1)})
        votes = [sign_vote(ctx.keys, ctx.chain_id, kind, epoch, message.height, message.view, d)
                 for epoch in epochs for d in digests for kind in (Kind.PREVOTE, Kind.PRECOMMIT)]
        peers = [p for p in (*ctx.honest, *ctx.coalition) if p != ctx.keys.node_id]
        return [(v, p) for v in votes for p in peers]


class Chaos(Strategy):
    """Each message handled by a randomly chosen one of the other strategies."""

    name = "chaos"

    def __init__(self, ctx: AdversaryContext) -> None:
        super().__init__(ctx)
        self.parts: list[Strategy] = [cls(ctx) for cls in (
            Strategy, Equivocate, Garbage, Sybil, WrongLeader, Replay, Withhold)]

    def incoming(self, message: Message) -> None:
        for part in self.parts:
            part.incoming(message)

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        return self.ctx.rng.choice(self.parts).outgoing(message, recipients)


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Strategy, Silent, Withhold, Equivocate, Garbage, Sybil,
                              WrongLeader, Replay, Zombie, Chaos)
}


def make_strategy(name: str, ctx: AdversaryContext) -> Strategy:
    try:
        return STRATEGIES[name](ctx)
    except KeyError:
        from .errors import ConfigError
        raise ConfigError(
            f"unknown byzantine strategy {name!r} (expected one of {sorted(STRATEGIES)})"
        ) from None


class FilteredTransport:
    """Wraps a transport so that everything a byzantine node sends goes through its strategy."""

    def __init__(self, inner: object, strategy: Strategy, peers: Sequence[NodeId]) -> None:
        self.inner = inner
        self.strategy = strategy
        self.peers = list(peers)

    def send(self, message: Message, to: NodeId | None) -> None:
        recipients = [to] if to is not None else self.peers
        for msg, dst in self.strategy.outgoing(message, recipients):
            self.inner.send(msg, dst)  # type: ignore[attr-defined]
