"""Network input before the core: per-peer rate limits, then signatures checked in batches
off the event loop.

Checking an ed25519 signature costs tens of microseconds; a node receives
``O(n)`` signed messages per view, each possibly carrying a certificate or a
justification of ``O(n)`` more. Done inside the core, on the event loop, that
is the loop's main cost and a flood of junk stalls everything else (timers,
provider results). So the runtime puts an ``Ingress`` between the transport
and the core:

1. **Rate limit per peer** (on the loop, O(1)): a token bucket per sending peer
   - the authenticated identity of the connection on TCP, the sender on the
   in-process network - drops what exceeds ``RateLimit`` and counts it. A peer
   flooding the node uses up its own budget, not its neighbours'.
2. **Batched verification** (in a worker thread): the messages that arrived
   since the last batch are checked together - the outer signature against the
   signer's key for the message's epoch, and every signature inside its
   attachments - warming the shared ``Verifier`` memo. A message whose own
   signature fails is dropped there; the others go to the core, whose checks
   then hit the memo: no signature is verified on the loop.

The core still checks everything (the ingress only saves it the work), so an
ingress that lets a bad message through costs time, never safety.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from .crypto import Verifier
from .errors import ConfigError
from .messages import Aggregate, Certificate, Confirmation, Liveness, Message, Proposal, Vote
from .validators import EpochSchedule

__all__ = ["Ingress", "RateLimit"]

NodeId = str


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per peer: ``rate`` messages per second, bursts of up to ``burst``."""

    rate: float = 5000.0
    burst: int = 10000

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1:
            raise ConfigError(f"RateLimit(rate={self.rate!r}, burst={self.burst!r}) "
                              "(expected rate > 0 and burst >= 1)")


class _Bucket:
    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.last = now


def signed_parts(message: Message, chain_id: str) -> list[tuple[NodeId, int, bytes, bytes]]:
    """(signer, epoch, payload, signature) of ``message`` and of every vote or header it
    carries: everything a receiver will verify."""
    parts = [(message.signer, message.epoch, message.payload(chain_id), message.signature)]
    certs: list[Certificate] = []
    if isinstance(message, Proposal):
        parts.extend((h.signer, h.epoch, h.payload(chain_id), h.signature)
                     for h in message.justification)
        if message.lock_certificate is not None:
            certs.append(message.lock_certificate)
    elif isinstance(message, Liveness) and message.lock is not None:
        certs.append(message.lock.certificate)
    elif isinstance(message, Confirmation) and message.commit is not None:
        certs.append(message.commit)
    elif isinstance(message, Aggregate):
        certs.append(message.certificate)
    for cert in certs:
        parts.extend((v.signer, v.epoch, v.payload(chain_id), v.signature)
                     for v in cert.votes())
    return parts


class Ingress:
    """Rate-limits, batches and pre-verifies messages, then hands them to ``deliver``.

    ``offer`` is called on the loop for each message received; ``run`` is the task
    that drains the batches (the ``ConsensusNode`` owns it). ``stats`` counts what
    was delivered, dropped for its rate (``rate-limited``), for its signature
    (``bad-signature``), for a full backlog (``overflow``), and batches run.
    """

    def __init__(self, deliver: Callable[[Message], None], verifier: Verifier,
                 schedule: EpochSchedule, chain_id: str, *, limit: RateLimit | None = None,
                 batch: int = 256, backlog: int = 65536, executor: Executor | None = None,
                 clock: Callable[[], float] = time.monotonic, peers_kept: int = 4096) -> None:
        if batch < 1 or backlog < batch:
            raise ConfigError(f"batch={batch!r} backlog={backlog!r} (expected 1 <= batch <= "
                              "backlog)")
        self.deliver = deliver
        self.verifier = verifier
        self.schedule = schedule
        self.chain_id = chain_id
        self.limit = limit if limit is not None else RateLimit()
        self.batch = batch
        self.backlog = backlog
        self.executor = executor
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._buckets: OrderedDict[NodeId, _Bucket] = OrderedDict()
        self._peers_kept = peers_kept
        self._pending: deque[Message] = deque()
        self._wakeup = asyncio.Event()

    # -------------------------------------------------------------- on the loop

    def allow(self, peer: NodeId) -> bool:
        """Take one token from ``peer``'s bucket; False if it is empty."""
        now = self.clock()
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = _Bucket(float(self.limit.burst), now)
            self._buckets[peer] = bucket
            if len(self._buckets) > self._peers_kept:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(peer)
            bucket.tokens = min(float(self.limit.burst),
                                bucket.tokens + (now - bucket.last) * self.limit.rate)
            bucket.last = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def offer(self, message: Message, peer: NodeId) -> bool:
        """Queue ``message`` received from ``peer``; False if it was dropped."""
        if not self.allow(peer):
            self.stats["rate-limited"] += 1
            return False
        if len(self._pending) >= self.backlog:
            self.stats["overflow"] += 1
            return False
        self._pending.append(message)
        self._wakeup.set()
        return True

    async def run(self) -> None:
        """Drain batches until cancelled. A failing batch is delivered unchecked (the core
        checks everything anyway) and counted: this task never dies quietly."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._pending.popleft()
                     for _ in range(min(self.batch, len(self._pending)))]
            self.stats["batches"] += 1
            try:
                verdicts = await loop.run_in_executor(self.executor, self.check, batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - fall back to the core's own checks
                self.stats["ingress-error"] += 1
                verdicts = [True] * len(batch)
            for message, ok in zip(batch, verdicts, strict=True):
                if ok:
                    self.stats["delivered"] += 1
                    self.deliver(message)
                else:
                    self.stats["bad-signature"] += 1

    # -------------------------------------------------------------- in the worker

    def check(self, batch: list[Message]) -> list[bool]:
        """Verify every signature in ``batch`` (warming the memo); False for a message whose
        own signature fails. Membership and epochs are the core's business: a message
        this cannot judge (unknown signer, wrong epoch, not a message) passes."""
        verdicts = []
        for message in batch:
            if not isinstance(message, (Vote, Liveness, Proposal, Confirmation, Aggregate)):
                verdicts.append(True)
                continue
            try:
                parts = signed_parts(message, self.chain_id)
            except Exception:  # noqa: BLE001 - malformed fields: let the core reject it
                verdicts.append(True)
                continue
            ok = True
            for i, (signer, epoch, payload, signature) in enumerate(parts):
                key = self._key(signer, epoch, message.height)
                if key is None:
                    continue
                good = self.verifier.verify(key, payload, signature)
                if i == 0 and not good:
                    ok = False
                    break
            verdicts.append(ok)
        return verdicts

    def _key(self, signer: NodeId, epoch: int, height: int) -> bytes | None:
        if not isinstance(height, int) or height < 0:
            return None
        try:
            if self.schedule.epoch_of(height) != epoch:
                return None
            member = self.schedule.validators_for_epoch(epoch).get(signer)
        except Exception:  # noqa: BLE001
            return None
        return member.public_key if member is not None else None
