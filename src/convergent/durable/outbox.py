"""The transactional outbox's dispatcher: publishes what transitions wrote.

Commands are rows written in the transition's own transaction, so a
command exists exactly when its transition committed. The dispatcher
claims due rows (pushing their ``next_at`` past a lease, committed before
publishing), publishes each, then marks it published. A crash between
publish and mark republishes the row once the lease ends: delivery is at
least once, and consumers deduplicate on ``key`` (the transition id, or
``<transition id>/<n>`` when one transition emitted several commands).
A failed publish is retried with exponential backoff (with jitter) and its
error kept in ``last_error``; after ``max_attempts`` the row is parked
(``next_at`` infinite) for an operator to look at (``dead()``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .store import EntityStore

__all__ = ["Dispatcher", "OutboxMessage", "nats_publisher"]

log = logging.getLogger("convergent.durable.outbox")
PARKED = 1e18


@dataclass(frozen=True)
class OutboxMessage:
    """One command to publish; ``key`` is its idempotency key."""

    id: int
    kind: str
    entity: str
    key: str
    topic: str
    body: dict[str, Any]
    meta: dict[str, str]
    attempts: int


Publisher = Callable[[OutboxMessage], Awaitable[None] | None]


@dataclass
class Dispatcher:
    """Publish outbox rows of ``store`` through ``publish`` (sync or async;
    raising means "not delivered, retry later").

    Args:
        batch: rows claimed per round.
        lease: seconds a claimed row stays invisible to other dispatchers.
        base_delay, max_delay: the backoff after the n-th failure is
            ``min(max_delay, base_delay * 2**(n-1))`` with up to 25 % jitter.
        max_attempts: after that many failures a row is parked (None: never).
    """

    store: EntityStore
    publish: Publisher
    batch: int = 100
    lease: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 60.0
    max_attempts: int | None = None
    clock: Callable[[], float] = time.time
    published: int = field(default=0, init=False)
    failed: int = field(default=0, init=False)

    def _claim(self, now: float) -> list[OutboxMessage]:
        skip = " FOR UPDATE SKIP LOCKED" if self.store.dialect == "postgres" else ""
        with self.store.tx() as tx:
            rows = tx.all("SELECT id, kind, entity, key, topic, body, meta, attempts FROM "
                          "dz_outbox WHERE published_at IS NULL AND next_at <= ? ORDER BY id "
                          f"LIMIT ?{skip}", (now, self.batch))
            tx.many("UPDATE dz_outbox SET next_at = ? WHERE id = ?",
                    [(now + self.lease, r[0]) for r in rows])
        return [OutboxMessage(int(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5]),
                              json.loads(r[6]), int(r[7])) for r in rows]

    def _backoff(self, attempts: int) -> float:
        d = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return d * (1 + random.random() / 4)

    async def dispatch_once(self) -> int:
        """One round: claim, publish, mark. Returns how many were published."""
        now = self.clock()
        msgs = await asyncio.to_thread(self._claim, now)
        ok: list[int] = []
        bad: list[tuple[OutboxMessage, str]] = []
        for m in msgs:
            try:
                out = self.publish(m)
                if inspect.isawaitable(out):
                    await out
                ok.append(m.id)
            except Exception as exc:  # the publisher's failure is data: retried, recorded
                bad.append((m, f"{type(exc).__name__}: {exc}"[:500]))
        await asyncio.to_thread(self._mark, ok, bad)
        self.published += len(ok)
        self.failed += len(bad)
        return len(ok)

    def _mark(self, ok: list[int], bad: list[tuple[OutboxMessage, str]]) -> None:
        now = self.clock()
        rows = []
        for m, err in bad:
            n = m.attempts + 1
            parked = self.max_attempts is not None and n >= self.max_attempts
            rows.append((n, PARKED if parked else now + self._backoff(n), err, m.id))
            if parked:
                log.error("outbox row %s (%s) parked after %d attempts: %s", m.id, m.key, n, err)
        with self.store.tx() as tx:
            tx.many("UPDATE dz_outbox SET published_at = ?, attempts = attempts + 1 "
                    "WHERE id = ?", [(now, i) for i in ok])
            tx.many("UPDATE dz_outbox SET attempts = ?, next_at = ?, last_error = ? "
                    "WHERE id = ?", rows)

    async def run(self, stop: asyncio.Event, *, interval: float = 0.2) -> None:
        """Dispatch until ``stop`` is set. A failing round (database down) is
        logged and retried after ``interval``; the loop never dies silently."""
        while not stop.is_set():
            try:
                n = await self.dispatch_once()
            except Exception:
                log.exception("outbox dispatch round failed; retrying")
                n = 0
            if n == 0:
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except TimeoutError:
                    pass

    def pending(self) -> int:
        with self.store.tx() as tx:
            return int(tx.one("SELECT count(*) FROM dz_outbox WHERE published_at IS NULL "
                              "AND next_at < ?", (PARKED,))[0])

    def dead(self) -> list[tuple[int, str, str]]:
        """Parked rows: ``(id, key, last_error)``."""
        with self.store.tx() as tx:
            return [(int(r[0]), r[1], r[2]) for r in tx.all(
                "SELECT id, key, last_error FROM dz_outbox WHERE published_at IS NULL AND "
                "next_at >= ? ORDER BY id", (PARKED,))]


def nats_publisher(nc: Any, *, prefix: str = "convergent") -> Publisher:
    """Publish to NATS (a connected ``nats.aio.client.Client``) on subject
    ``<prefix>.<topic>``, with the idempotency key in the ``Nats-Msg-Id``
    header (JetStream deduplicates on it within its window)."""
    async def publish(m: OutboxMessage) -> None:
        headers = {"Nats-Msg-Id": m.key, **{k: v for k, v in m.meta.items()
                                             if isinstance(v, str)}}
        data = json.dumps(m.body, separators=(",", ":")).encode()
        await nc.publish(f"{prefix}.{m.topic}", data, headers=headers)
        await nc.flush()
    return publish
