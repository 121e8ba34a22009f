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
from typing import Any

from .crypto import KeyPair
from .messages import (
    NO_LOCK,
    Aggregate,
    Certificate,
    Confirmation,
    Kind,
    Liveness,
    LockProof,
    Message,
    Proposal,
    Vote,
    sign_aggregate,
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
    board: dict[Any, dict[NodeId, bytes]] = field(default_factory=dict)
    """Shared by the whole coalition (the adversary is one mind): twin votes each member
    signed, by (kind, height, view, digest), for an accomplice collector to use."""

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
    """Shows G1 the real message and G2 a conflicting one; records each split it makes.

    With linear communication votes go to one collector. Every member posts its twin votes
    on the coalition's board; an accomplice collector records the votes it receives, and
    when its core forwards a certificate for the real value it also builds one for the
    shadow value (from G2's votes and the board) and shows that to G2.
    """

    name = "equivocate"

    def __init__(self, ctx: AdversaryContext) -> None:
        super().__init__(ctx)
        self.votes: dict[tuple[Kind, int, int, bytes], dict[NodeId, bytes]] = {}

    def incoming(self, message: Message) -> None:
        super().incoming(message)
        if isinstance(message, Vote):
            key = (message.kind, message.height, message.view, message.digest)
            if key not in self.votes and len(self.votes) > 512:
                self.votes.clear()
            self.votes.setdefault(key, {})[message.signer] = message.signature

    def _twin_certificate(self, message: Aggregate) -> Aggregate | None:
        ctx = self.ctx
        cert = message.certificate
        value = self.values.get(cert.digest)
        twin_value = shadow(value) if value is not None else None
        twin_digest = (hashlib.sha256(twin_value).digest() if twin_value is not None
                       else hashlib.sha256(b"shadow" + cert.digest).digest())
        own = sign_vote(ctx.keys, ctx.chain_id, cert.kind, cert.epoch, cert.height, cert.view,
                        twin_digest)
        key = (cert.kind, cert.height, cert.view, twin_digest)
        sigs = dict(self.votes.get(key, {}))
        sigs.update(self.ctx.board.get(key, {}))
        sigs[own.signer] = own.signature
        if ctx.schedule is not None:
            vset = ctx.schedule.validators_at(cert.height)
            if not vset.is_quorum(vset.weight(sigs)):
                return None
        twin = Certificate(cert.kind, cert.epoch, cert.height, cert.view, twin_digest,
                           tuple(sorted(sigs.items())))
        carried = twin_value if message.value and twin_value is not None else b""
        return sign_aggregate(ctx.keys, ctx.chain_id, twin, carried)

    def _twin(self, message: Message) -> Message | None:
        ctx = self.ctx
        if isinstance(message, Aggregate):
            return self._twin_certificate(message)
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
        if isinstance(twin, Vote):
            board = self.ctx.board
            if len(board) > 1024:
                board.clear()
            board.setdefault((twin.kind, twin.height, twin.view, twin.digest), {})[
                twin.signer] = twin.signature
        if isinstance(message, Aggregate):
            return out  # not a signed conflict: its votes are (the twin votes are recorded)
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
    """Proposes in every view it takes part in (on its first liveness or vote there), leader
    or not, to every peer."""

    name = "wrong-leader"

    def __init__(self, ctx: AdversaryContext) -> None:
        super().__init__(ctx)
        self._usurped: set[tuple[int, int]] = set()

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        out = [(message, r) for r in recipients]
        if (isinstance(message, (Liveness, Vote)) and message.signer == self.ctx.keys.node_id
                and (message.height, message.view) not in self._usurped):
            if len(self._usurped) > 1024:
                self._usurped.clear()
            self._usurped.add((message.height, message.view))
            ctx = self.ctx
            peers = [x for x in (*ctx.honest, *ctx.coalition) if x != ctx.keys.node_id]
            value = b"tx:usurper:" + ctx.keys.node_id.encode() + b":" + str(
                (message.height, message.view)).encode()
            usurp = sign_proposal(ctx.keys, ctx.chain_id, message.epoch, message.height,
                                  message.view, value)
            out.extend((usurp, r) for r in peers)
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


class _Tamper(Strategy):
    """Base of the attachment attacks: forward a doctored copy of every honest message that
    carries attachments, at once, to every other node; never propose itself (so the heights
    it leads need a view change, where justifications and locks matter).

    Meant to run with ``NetworkConfig(rushing=True)``: the doctored copy then reaches the
    honest nodes before the real message does. Each copy keeps the signer's signature, so a
    receiver that did not sign its attachments, or stored a copy before checking them, would
    keep the bad copy and drop the real one as a duplicate.
    """

    def __init__(self, ctx: AdversaryContext) -> None:
        super().__init__(ctx)
        self.justifications: list[tuple[Liveness, ...]] = []
        self.certificates: list[Certificate] = []
        self.locks: list[LockProof] = []
        self.confirmations: list[tuple[bytes, Certificate | None]] = []
        self._doctored: set[bytes] = set()
        """Signatures already doctored: each original is attacked once (its copies carry the
        same signature, so accomplices do not amplify each other's copies forever)."""

    def _keep(self, pool: list[Any], item: Any) -> None:
        if item not in pool:
            pool.append(item)
            if len(pool) > 64:
                del pool[0]

    def incoming(self, message: Message) -> None:
        super().incoming(message)
        if isinstance(message, Proposal):
            if message.justification:
                self._keep(self.justifications, message.justification)
            if message.lock_certificate is not None:
                self._keep(self.certificates, message.lock_certificate)
        elif isinstance(message, Liveness) and message.lock is not None:
            self._keep(self.locks, message.lock)
            self._keep(self.certificates, message.lock.certificate)
        elif isinstance(message, Confirmation) and message.commit is not None:
            self._keep(self.confirmations, (message.value, message.commit))
            self._keep(self.certificates, message.commit)

    def outgoing(self, message: Message, recipients: Sequence[NodeId]) -> Routed:
        if isinstance(message, Proposal) and message.signer == self.ctx.keys.node_id:
            return []
        return [(message, r) for r in recipients]

    def doctor(self, message: Message) -> list[Message]:
        """Doctored copies of ``message`` (same signature, other attachments)."""
        raise NotImplementedError

    def react(self, message: Message) -> Routed:
        if (message.signer == self.ctx.keys.node_id or isinstance(message, Vote)
                or message.signature in self._doctored):
            return []
        if len(self._doctored) > 4096:
            self._doctored.clear()
        self._doctored.add(message.signature)
        peers = [p for p in (*self.ctx.honest, *self.ctx.coalition)
                 if p not in (self.ctx.keys.node_id, message.signer)]
        return [(copy, p) for copy in self.doctor(message) if copy != message for p in peers]

    def _other(self, pool: list[Any], current: Any) -> Any:
        """An entry of ``pool`` other than ``current`` (the newest, or a random old one)."""
        choices = [x for x in pool if x != current]
        if not choices:
            return None
        return self._pick(choices)

    def _pick(self, choices: list[Any]) -> Any:
        return choices[-1]


class Strip(_Tamper):
    """Forwards copies without the justification, lock certificate, lock proof, value or
    commit certificate: the liveness attack on receivers that keep the first signed copy."""

    name = "strip"

    def doctor(self, message: Message) -> list[Message]:
        if isinstance(message, Proposal):
            return [replace(message, justification=(), lock_certificate=None),
                    replace(message, lock_certificate=None)]
        if isinstance(message, Liveness):
            return [replace(message, lock=None)] if message.lock is not None else []
        if isinstance(message, Confirmation):
            return [replace(message, commit=None), replace(message, value=b"", commit=None)]
        return []


class Swap(_Tamper):
    """Forwards copies whose attachments come from another message of the same run (the
    newest other justification, certificate, lock proof or confirmed value)."""

    name = "swap"

    def doctor(self, message: Message) -> list[Message]:
        out: list[Message] = []
        if isinstance(message, Proposal):
            just = self._other(self.justifications, message.justification)
            cert = self._other(self.certificates, message.lock_certificate)
            if just is not None:
                out.append(replace(message, justification=just))
            if cert is not None:
                out.append(replace(message, lock_certificate=cert))
            if message.justification:  # a quorum of its own headers, reordered or thinned
                out.append(replace(message, justification=message.justification[::-1]))
                out.append(replace(message, justification=message.justification[:-1]))
        elif isinstance(message, Liveness):
            lock = self._other(self.locks, message.lock)
            if lock is not None:
                out.append(replace(message, lock=lock))
        elif isinstance(message, Confirmation):
            other = self._other(self.confirmations, (message.value, message.commit))
            if other is not None:
                out.append(replace(message, commit=other[1]))
                out.append(replace(message, value=other[0], commit=other[1]))
        return out


class ReplayAttachments(Swap):
    """Like ``swap``, with attachments replayed from any earlier height or view at random."""

    name = "replay-attachments"

    def _pick(self, choices: list[Any]) -> Any:
        return self.ctx.rng.choice(choices)


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
                              WrongLeader, Replay, Zombie, Strip, Swap, ReplayAttachments,
                              Chaos)
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
