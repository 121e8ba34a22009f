"""The rows one transaction writes, gathered and flushed together.

A single ``send`` and a batch of a thousand take the same path: each
transition adds its rows here and ``flush`` writes them with one
``executemany`` per table just before the commit. Order matters in two
places, both handled in memory: a timer armed and cancelled within one
transaction is never written (deletes then only target timers armed by
earlier transactions, so they run before inserts), and an entity's head is
updated once, guarded by the version it had when the transaction first
read it (a concurrent writer makes that guard miss: ``ConcurrencyError``).
The audit chain's head row is read once (locked on PostgreSQL) and rows are
hashed in memory in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .audit import COLUMNS, AuditRecord, row_hash
from .errors import ConcurrencyError
from .store import Tx

__all__ = ["Writes"]


@dataclass
class Writes:
    tx: Tx
    kind: str
    table: str
    audit_key: bytes | None
    events: list[tuple[Any, ...]] = field(default_factory=list)
    heads: dict[str, tuple[int, tuple[Any, ...]]] = field(default_factory=dict)
    timer_dels: list[tuple[str, str, str]] = field(default_factory=list)
    timer_adds: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    snapshots: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    requests: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    _chain: tuple[int, str] | None = None

    def head(self, entity: str, base: int, row: tuple[Any, ...]) -> None:
        """``row`` = (version, leaves, since, chart_version, done, updated_at);
        ``base`` is the version read before this transaction changed it (0: new)."""
        first = self.heads.get(entity)
        self.heads[entity] = (base if first is None else first[0], row)

    def cancel_timers(self, entity: str, state: str) -> None:
        for tid, row in list(self.timer_adds.items()):
            if row[2] == entity and row[3] == state:
                del self.timer_adds[tid]
        self.timer_dels.append((self.kind, entity, state))

    def arm_timer(self, tid: str, entity: str, state: str, event: str, due: float) -> None:
        self.timer_adds[tid] = (tid, self.kind, entity, state, event, due)

    def append_audit(self, rec: AuditRecord, at: float) -> None:
        if self._chain is None:
            lock = " FOR UPDATE" if self.tx.dialect == "postgres" else ""
            seq0, prev0 = self.tx.one(f"SELECT seq, hash FROM dz_audit_head WHERE id = 1{lock}")
            self._chain = (int(seq0), str(prev0))
        seq, prev = self._chain
        seq += 1
        fields = (seq, datetime.fromtimestamp(at, UTC).isoformat(), rec.kind, rec.entity,
                  rec.transition_id, rec.actor, rec.event, rec.from_state, rec.to_state,
                  rec.trace_id, rec.outcome, rec.reason)
        h = row_hash(prev, fields, self.audit_key)
        self.audit.append((*fields, prev, h))
        self._chain = (seq, h)

    def flush(self) -> None:
        tx = self.tx
        tx.many(f"INSERT INTO {self.table} (entity, version, transition_id, event, payload, "
                f"actor, meta, from_leaves, to_leaves, chart_version, recorded_at) VALUES "
                f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.events)
        new = [(self.kind, e, *row) for e, (base, row) in self.heads.items() if base == 0]
        tx.many("INSERT INTO dz_heads (kind, entity, version, leaves, since, chart_version, "
                "done, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", new)
        updates = [(*row, self.kind, e, base) for e, (base, row) in self.heads.items()
                   if base != 0]
        if updates:
            # each row is guarded by the version read first; the total says
            # whether every guard held (both drivers sum rowcount over executemany)
            cur = tx.many("UPDATE dz_heads SET version = ?, leaves = ?, since = ?, "
                          "chart_version = ?, done = ?, updated_at = ? WHERE kind = ? AND "
                          "entity = ? AND version = ?", updates)
            if cur.rowcount != len(updates):
                missed = updates[0] if len(updates) == 1 else None
                raise ConcurrencyError(self.kind, missed[7] if missed else "(batch)",
                                       missed[8] if missed else -1, None)
        tx.many("DELETE FROM dz_timers WHERE kind = ? AND entity = ? AND state = ?",
                self.timer_dels)
        tx.many("INSERT INTO dz_timers (id, kind, entity, state, event, due_at) VALUES "
                "(?, ?, ?, ?, ?, ?)", list(self.timer_adds.values()))
        tx.many("INSERT INTO dz_outbox (kind, entity, key, topic, body, meta, next_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.outbox)
        if self.snapshots:
            excluded = "EXCLUDED" if tx.dialect == "postgres" else "excluded"
            tx.many(f"INSERT INTO dz_snapshots (kind, entity, version, chart_version, config) "
                    f"VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, entity) DO UPDATE SET "
                    f"version = {excluded}.version, chart_version = "
                    f"{excluded}.chart_version, config = {excluded}.config",
                    list(self.snapshots.values()))
        tx.many("INSERT INTO dz_requests (kind, key, entity, result) VALUES (?, ?, ?, ?)",
                self.requests)
        if self.audit:
            tx.many(f"INSERT INTO dz_audit ({', '.join(COLUMNS)}, prev, hash) VALUES "
                    f"({', '.join('?' * (len(COLUMNS) + 2))})", self.audit)
            assert self._chain is not None
            tx.q("UPDATE dz_audit_head SET seq = ?, hash = ? WHERE id = 1", self._chain)
