"""The SQLite store (the default): WAL journal, one transaction per append
batch, ``synchronous=FULL`` unless told otherwise.

A batch is written as **one row** (``cv_batches``: its events as one JSON
array, with the smallest and largest hlc): a commit costs one insert and one
fsync, not one indexed insert per event, which is what lets a durable store
keep up with the in-memory replica. Compaction deletes the batches wholly at
or below the horizon and rewrites the one or two that straddle it. Events
written before this format (``cv_events``, migration 0001) are still read,
and compacted, first.

A process killed at any instant (kill -9) leaves the database with every
committed batch and nothing of an uncommitted one: SQLite's journal makes
a transaction atomic, and the replica only acknowledges a batch (tells its
transport, sends its own events) after ``append`` returned. With
``synchronous=FULL`` (the default) this holds across a power loss too;
``synchronous=NORMAL`` keeps it for process crashes only, and is faster.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from ..._sqlite import immediate
from ..envelope import Envelope, rows_of
from ..errors import StoreError
from ..model import Snapshot
from ._batches import check_fresh, drop_compacted, encode_rows, stored_log
from .base import Store, check_meta, lock_slot

__all__ = ["SQLiteStore", "immediate"]

# Named, recorded schema steps: append new ones, never edit applied ones.
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", [
        """CREATE TABLE IF NOT EXISTS cv_replicas (
               replica TEXT PRIMARY KEY, machine TEXT NOT NULL, policy TEXT NOT NULL,
               created_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS cv_events (
               pos INTEGER PRIMARY KEY, replica TEXT NOT NULL, origin TEXT NOT NULL,
               seq INTEGER NOT NULL, hlc INTEGER NOT NULL, event TEXT NOT NULL,
               deps TEXT NOT NULL, meta TEXT, UNIQUE (replica, origin, seq))""",
        """CREATE TABLE IF NOT EXISTS cv_snapshots (
               replica TEXT PRIMARY KEY, horizon INTEGER NOT NULL, data TEXT NOT NULL)""",
    ]),
    ("0002_batches", [
        """CREATE TABLE IF NOT EXISTS cv_batches (
               pos INTEGER PRIMARY KEY, replica TEXT NOT NULL, lo INTEGER NOT NULL,
               hi INTEGER NOT NULL, n INTEGER NOT NULL, data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS cv_batches_replica ON cv_batches (replica, pos)",
    ]),
]

_SYNC = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SQLiteStore(Store):
    """``SQLiteStore("r1.db")``; several replicas may share one file (rows are
    keyed by replica id). ``open`` takes a lock (``fcntl.lockf`` on
    ``<path>.lock``, one byte per replica id) so that a second process cannot
    write the same replica; ``readonly=True`` takes no lock, never writes and
    refuses to create a replica (for status readers)."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "full",
                 timeout: float = 30.0, readonly: bool = False) -> None:
        self.path = os.fspath(path)
        self.readonly = readonly
        self._lock_fd: int | None = None
        if synchronous.lower() not in _SYNC:
            raise StoreError(f"synchronous={synchronous!r} (expected one of {', '.join(_SYNC)})")
        self.synchronous = _SYNC[synchronous.lower()]
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        self._db: sqlite3.Connection | None = None
        #: the largest stored seq of each origin (known after a load)
        self._top: dict[str, int] | None = None

    # ------------------------------------------------------------ connection

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.readonly and not os.path.exists(self.path):
                raise StoreError(f"{self.url}: no such database")
            try:
                db = sqlite3.connect(self.path, isolation_level=None, timeout=self.timeout)
                if not self.readonly:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute(f"PRAGMA synchronous={self.synchronous}")
                    self._migrate(db)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: cannot open: {exc}") from None
            self._db = db
        return self._db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        with immediate(db):
            db.execute("CREATE TABLE IF NOT EXISTS cv_migrations (name TEXT PRIMARY KEY, "
                       "applied_at TEXT NOT NULL)")
            done = {r[0] for r in db.execute("SELECT name FROM cv_migrations")}
            for name, statements in MIGRATIONS:
                if name in done:
                    continue
                for sql in statements:
                    db.execute(sql)
                db.execute("INSERT INTO cv_migrations VALUES (?, ?)", (name, _now()))

    # ------------------------------------------------------------ contract

    def open(self, *, replica: str, machine: str, policy: str) -> None:
        db = self._conn()
        if self.readonly:
            try:
                row = db.execute("SELECT machine, policy FROM cv_replicas WHERE replica = ?",
                                 (replica,)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: cannot read replica {replica!r}: {exc}") from None
            if row is None:
                raise StoreError(f"{self.url}: holds no replica {replica!r}")
            check_meta(self.url, replica, {"machine": row[0], "policy": row[1]}, machine, policy)
            self.replica = replica
            self._policy = policy
            return
        self._lock(replica)
        try:
            with immediate(db):
                row = db.execute("SELECT machine, policy FROM cv_replicas WHERE replica = ?",
                                 (replica,)).fetchone()
                if row is None:
                    db.execute("INSERT INTO cv_replicas VALUES (?, ?, ?, ?)",
                               (replica, machine, policy, _now()))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: cannot open replica {replica!r}: {exc}") from None
        if row is not None:
            check_meta(self.url, replica, {"machine": row[0], "policy": row[1]}, machine, policy)
        self.replica = replica
        self._policy = policy

    def _stored_tops(self) -> dict[str, int]:
        snap, events = self.load()
        return self._top or {}

    def load(self) -> tuple[Snapshot | None, list[Envelope]]:
        snap, out = self._load()
        top = dict(snap.version) if snap is not None else {}
        for e in out:
            if e[3] > top.get(e[2], 0):
                top[e[2]] = e[3]
        self._top = top
        return snap, out

    def _load(self) -> tuple[Snapshot | None, list[Envelope]]:
        r = self._bound()
        db = self._conn()
        try:
            snap_row = db.execute("SELECT data FROM cv_snapshots WHERE replica = ?",
                                  (r,)).fetchone()
            rows = db.execute("SELECT origin, seq, hlc, event, deps, meta FROM cv_events "
                              "WHERE replica = ? ORDER BY pos", (r,)).fetchall()
            batches = db.execute("SELECT data FROM cv_batches WHERE replica = ? ORDER BY pos",
                                 (r,)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: cannot read replica {r!r}: {exc}") from None
        snap = None if snap_row is None else Snapshot.from_dict(json.loads(snap_row[0]))
        out = stored_log(self._policy, rows, batches,
                         f"{self.url}: a stored batch of replica {r!r}")
        return snap, out

    def _lock(self, replica: str) -> None:
        try:
            self._lock_fd = lock_slot(f"{self.path}.lock", self._lock_fd, replica)
        except OSError:
            raise StoreError(f"{self.url}: replica {replica!r} is open in another process "
                             "(one writer per replica; stop it first)") from None

    def _writable(self) -> str:
        if self.readonly:
            raise StoreError(f"{self.url} was opened read-only")
        return self._bound()

    def append(self, envelopes: Sequence[Envelope]) -> None:
        r = self._writable()
        envelopes = rows_of(envelopes)
        if not envelopes:
            return
        # no event is stored twice (the per-event unique key of the old
        # format): each origin's numbers only grow, checked before writing
        top = self._top if self._top is not None else self._stored_tops()
        seen = check_fresh(top, envelopes)
        if isinstance(seen, str):
            raise StoreError(f"{self.url}: append of {len(envelopes)} events failed, "
                             f"nothing written: {seen} is already stored")
        row = (r, *encode_rows(envelopes))
        db = self._conn()
        try:
            with immediate(db):
                db.execute("INSERT INTO cv_batches (replica, lo, hi, n, data) VALUES "
                           "(?, ?, ?, ?, ?)", row)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: append of {len(envelopes)} events failed, "
                             f"nothing written: {exc}") from None
        self._top = seen

    def compact(self, snapshot: Snapshot) -> int:
        r = self._writable()
        db = self._conn()
        try:
            with immediate(db):
                db.execute("INSERT OR REPLACE INTO cv_snapshots VALUES (?, ?, ?)",
                           (r, snapshot.horizon, json.dumps(snapshot.to_dict())))
                n = drop_compacted(db.execute, r, snapshot.horizon)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: compaction failed, nothing changed: {exc}") from None
        return int(n)

    def count(self) -> int:
        r = self._bound()
        try:
            return int(self._conn().execute(
                "SELECT (SELECT count(*) FROM cv_events WHERE replica = ?) + (SELECT "
                "coalesce(sum(n), 0) FROM cv_batches WHERE replica = ?)", (r, r)).fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: {exc}") from None

    def integrity_check(self) -> str:
        """SQLite's own ``PRAGMA integrity_check`` result ("ok" when sound)."""
        return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None
