"""The rows one transaction writes, gathered and flushed together.

A single ``send`` and a batch of a thousand take the same path: each
transition adds its rows here and ``flush`` writes them with one
``executemany`` per table just before the commit. Order matters in two
places, both handled in memory: a timer armed and cancelled within one
transaction is never written (deletes then only target timers armed by
earlier transactions, so they run before inserts), and an entity's head is
written at most once, and only if what it holds changed (a concurrent
writer is refused by the event table's (entity, version) key).
The audit rows join their kind's chain at flush: its head row is read
(locked on PostgreSQL) and the rows are numbered and hashed in memory, in
order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .audit import COLUMNS, AuditRecord, hash_rows
from .store import COPY_MIN_ROWS, Tx, dumps

__all__ = ["Writes"]

_EVENT_COLUMNS = ("entity", "version", "transition_id", "event", "payload", "actor", "meta",
                  "from_leaves", "to_leaves", "chart_version", "recorded_at")

# PostgreSQL: a batch's changed heads are copied into a session-private
# staging table (emptied at commit) and applied by one UPDATE
_HEAD_IN_COLUMNS = ("version", "leaves", "since", "cv", "done", "at", "kind", "entity")
_PG_HEADS_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS dz_heads_in (version BIGINT, leaves TEXT, since TEXT, "
    "cv BIGINT, done INTEGER, at DOUBLE PRECISION, kind TEXT, entity TEXT) "
    "ON COMMIT DELETE ROWS")
_PG_HEADS_UPDATE = (
    "UPDATE dz_heads AS h SET version = u.version, leaves = u.leaves, since = u.since, "
    "chart_version = u.cv, done = u.done, updated_at = u.at FROM dz_heads_in AS u "
    "WHERE h.kind = u.kind AND h.entity = u.entity AND (h.leaves, h.since, h.chart_version, "
    "h.done) IS DISTINCT FROM (u.leaves, u.since, u.cv, u.done)")


@dataclass
class Writes:
    tx: Tx
    kind: str
    table: str
    audit_key: bytes | None
    events: list[tuple[Any, ...]] = field(default_factory=list)
    heads: dict[str, tuple[int, tuple[Any, ...]]] = field(default_factory=dict)
    known: dict[str, tuple[str, str, int, int]] = field(default_factory=dict)
    final: dict[str, tuple[str, str, int, int]] = field(default_factory=dict)
    """After ``flush``: what each head row this transaction wrote (or left,
    being equal) holds."""
    timer_dels: list[tuple[str, str, str]] = field(default_factory=list)
    timer_adds: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    snapshots: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    requests: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    audit_seq: int | None = None
    """After ``flush``: the kind's audit chain length with this transaction's
    rows (None: it appended none); ``audit_base``: the length it found."""
    audit_base: int | None = None
    _at: float = -1.0
    _at_iso: str = ""

    def head(self, entity: str, base: int, row: tuple[Any, ...]) -> None:
        """``row`` = (version, leaves, since (a dict, serialized on flush: an
        entity's head is written once per transaction; or that dict's JSON
        text already), chart_version, done, updated_at);
        ``base`` is the version read before this transaction changed it (0: new).

        The head row is written only when its leaves, since map, chart
        version or done flag change: an event that moves nothing (an
        internal transition, an assignment) leaves it, and with it a page
        per entity, untouched. Its ``version`` column is therefore the
        version of the last event that changed it; readers take the
        entity's version from its events (``service._current``)."""
        first = self.heads.get(entity)
        self.heads[entity] = (base if first is None else first[0], row)

    def read_head(self, entity: str, leaves: str, since: str, chart_version: int,
                  done: int) -> tuple[str, str, int, int]:
        """What ``entity``'s head row held when this transaction read it (or
        a cache entry known to match it): a flush that would write the same
        leaves it alone without a statement."""
        got = self.known[entity] = (leaves, since, chart_version, done)
        return got

    def cancel_timers(self, entity: str, state: str) -> None:
        for tid, row in list(self.timer_adds.items()):
            if row[2] == entity and row[3] == state:
                del self.timer_adds[tid]
        self.timer_dels.append((self.kind, entity, state))

    def arm_timer(self, tid: str, entity: str, state: str, event: str, due: float) -> None:
        self.timer_adds[tid] = (tid, self.kind, entity, state, event, due)

    def append_audit(self, rec: AuditRecord, at: float) -> None:
        self.audit_row(rec.entity, rec.transition_id, rec.actor, rec.event, rec.from_state,
                       rec.to_state, rec.trace_id, rec.outcome, rec.reason, at,
                       kind=rec.kind)

    def audit_row(self, entity: str, transition_id: str, actor: str, event: str,
                  from_state: str, to_state: str, trace_id: str, outcome: str, reason: str,
                  at: float, *, kind: str | None = None) -> None:
        """Queue one audit row of this kind's chain; ``flush`` numbers and
        hashes the queue in order (the chain head is locked only then)."""
        self.audit.append((self.at_iso(at), self.kind if kind is None else kind, entity,
                           transition_id, actor, event, from_state, to_state, trace_id,
                           outcome, reason))

    def at_iso(self, at: float) -> str:
        """The audit rows' ``at`` text of ``at`` (computed once per instant:
        a batch has one)."""
        if at != self._at:
            self._at, self._at_iso = at, datetime.fromtimestamp(at, UTC).isoformat()
        return self._at_iso

    def flush(self) -> None:
        tx = self.tx
        pg = tx.dialect == "postgres"
        # PostgreSQL: rows locked in (entity, version) order, the same in every
        # writer, so two batches over the same entities queue instead of
        # deadlocking (SQLite writers never interleave: BEGIN IMMEDIATE)
        tx.insert(self.table, _EVENT_COLUMNS, sorted(self.events) if pg else self.events)
        known = self.known
        new: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for e, (base, row) in (sorted(self.heads.items()) if pg else self.heads.items()):
            since = row[2] if isinstance(row[2], str) else dumps(row[2])
            content = self.final[e] = (row[1], since, row[3], row[4])
            if base == 0:
                new.append((self.kind, e, row[0], row[1], since, *row[3:]))
            elif known.get(e) != content:
                updates.append((row[0], row[1], since, row[3], row[4], row[5], self.kind, e))
        tx.many("INSERT INTO dz_heads (kind, entity, version, leaves, since, chart_version, "
                "done, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", new)
        if updates:
            # a row whose contents stay is left alone (no page to rewrite);
            # the event key, not the head, refuses a concurrent writer
            if pg and len(updates) >= COPY_MIN_ROWS:
                tx.q(_PG_HEADS_STAGE)
                tx.insert("dz_heads_in", _HEAD_IN_COLUMNS, updates)
                tx.q(_PG_HEADS_UPDATE)
            else:
                tx.many("UPDATE dz_heads SET version = ?, leaves = ?, since = ?, "
                        "chart_version = ?, done = ?, updated_at = ? WHERE kind = ? AND "
                        "entity = ? AND (leaves <> ? OR since <> ? OR chart_version <> ? OR "
                        "done <> ?)", [(*u, u[1], u[2], u[3], u[4]) for u in updates])
        tx.many("DELETE FROM dz_timers WHERE kind = ? AND entity = ? AND state = ?",
                self.timer_dels)
        tx.many("INSERT INTO dz_timers (id, kind, entity, state, event, due_at) VALUES "
                "(?, ?, ?, ?, ?, ?)", list(self.timer_adds.values()))
        tx.insert("dz_outbox", ("kind", "entity", "key", "topic", "body", "meta", "next_at",
                                "created_at"), self.outbox)
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
            self._flush_audit()

    def _flush_audit(self) -> None:
        """The kind's chain: read (and on PostgreSQL lock) its head, number
        and hash the queued rows in order, append them, move the head. Last
        in the transaction, so writers of one kind hold the head's lock only
        from here to the commit; writers of other kinds never wait for it."""
        tx, chain, key = self.tx, self.kind, self.audit_key
        lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
        got = tx.one(f"SELECT seq, hash FROM dz_audit_heads WHERE chain = ?{lock}", (chain,))
        seq, prev = (0, "") if got is None else (int(got[0]), str(got[1]))
        self.audit_base = seq
        rows, seq, prev = hash_rows(prev, seq, self.audit, chain, key)
        self.audit_seq = seq
        columns = ("chain", *COLUMNS, "prev", "hash")
        if got is not None and tx.dialect == "postgres" and len(rows) < COPY_MIN_ROWS:
            # a few rows (a single send): appended and the head moved in one
            # statement, one round trip fewer per transition
            one = f"({', '.join('?' * len(columns))})"
            tx.q(f"WITH added AS (INSERT INTO dz_audit ({', '.join(columns)}) VALUES "
                 f"{', '.join([one] * len(rows))}) UPDATE dz_audit_heads SET seq = ?, "
                 "hash = ? WHERE chain = ?",
                 [*itertools.chain.from_iterable(rows), seq, prev, chain])
            return
        tx.insert("dz_audit", columns, rows)
        if got is None:
            tx.q("INSERT INTO dz_audit_heads (chain, seq, hash) VALUES (?, ?, ?)",
                 (chain, seq, prev))
        else:
            tx.q("UPDATE dz_audit_heads SET seq = ?, hash = ? WHERE chain = ?",
                 (seq, prev, chain))
