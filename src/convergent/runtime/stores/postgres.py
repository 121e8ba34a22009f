"""The PostgreSQL store (psycopg 3): one transaction per append batch; the
same tables and meaning as the SQLite store.

A batch is written as **one row** (``cv_batches``, migration
``0002_batches``: its events as one JSON array, with the smallest and
largest hlc), so a commit is one INSERT in one round trip, not one row (and
one index entry) per event. Compaction deletes the batches wholly at or
below the horizon and rewrites one that straddles it, in the snapshot's
transaction. Events of the per-row format (``cv_events``, 0001) are still
read, and compacted, first. A process killed at any instant leaves every
committed batch and nothing of an uncommitted one (a transaction is atomic;
the replica acknowledges only after ``append`` returned).

Install with ``pip install 'convergent[replica]'`` (psycopg[binary]).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..envelope import Envelope, rows_of
from ..errors import StoreError
from ..model import Snapshot
from ._batches import check_fresh, drop_compacted, encode_rows, stored_log
from .base import Store, check_meta, try_advisory_lock

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the PostgreSQL store needs psycopg 3: pip install 'psycopg[binary]' "
                      "(or 'convergent[replica]')", name=exc.name) from exc

__all__ = ["PostgresStore"]

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0001_initial", [
        """CREATE TABLE IF NOT EXISTS cv_replicas (
               replica TEXT PRIMARY KEY, machine TEXT NOT NULL, policy TEXT NOT NULL,
               created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
        """CREATE TABLE IF NOT EXISTS cv_events (
               pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, replica TEXT NOT NULL,
               origin TEXT NOT NULL, seq BIGINT NOT NULL, hlc BIGINT NOT NULL,
               event TEXT NOT NULL, deps TEXT NOT NULL, meta TEXT,
               UNIQUE (replica, origin, seq))""",
        """CREATE TABLE IF NOT EXISTS cv_snapshots (
               replica TEXT PRIMARY KEY, horizon BIGINT NOT NULL, data TEXT NOT NULL)""",
    ]),
    ("0002_batches", [
        """CREATE TABLE IF NOT EXISTS cv_batches (
               pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, replica TEXT NOT NULL,
               lo BIGINT NOT NULL, hi BIGINT NOT NULL, n INTEGER NOT NULL, data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS cv_batches_replica ON cv_batches (replica, pos)",
    ]),
]


class PostgresStore(Store):
    """``PostgresStore("postgresql://user@127.0.0.1:5432/db")``; rows are keyed
    by replica id, so replicas may share a database. ``open`` takes a session
    advisory lock per replica id, so a second process cannot write the same
    replica; ``readonly=True`` takes none and never writes.

    ``blocking = True``: every call is a round trip to the server, so the
    asynchronous replica API runs ``append`` and ``compact`` in a worker
    thread (psycopg connections may be used from any thread, one call at a
    time)."""

    blocking = True

    def __init__(self, url: str, *, connect_timeout: float = 10.0,
                 readonly: bool = False, lock_timeout: float = 5.0) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self.readonly = readonly
        self.connect_timeout = connect_timeout
        self._db: Any = None
        self._policy = ""
        #: the largest stored seq of each origin (known after a load)
        self._top: dict[str, int] | None = None
        #: a call failed with the connection: its commit may have landed
        self._uncertain = False

    def _conn(self) -> Any:
        if self._db is None or self._db.closed:
            try:
                db = psycopg.connect(self.url, autocommit=True,
                                     connect_timeout=int(max(1, self.connect_timeout)))
                with db.transaction():
                    db.execute("SELECT pg_advisory_xact_lock(7406931823)")
                    db.execute("CREATE TABLE IF NOT EXISTS cv_migrations (name TEXT PRIMARY KEY, "
                               "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                    done = {r[0] for r in db.execute("SELECT name FROM cv_migrations")}
                    for name, statements in MIGRATIONS:
                        if name not in done:
                            for sql in statements:
                                db.execute(sql)
                            db.execute("INSERT INTO cv_migrations (name) VALUES (%s)", (name,))
            except psycopg.Error as exc:
                raise StoreError(f"{_safe(self.url)}: cannot open: {exc}") from None
            self._db = db
            if self.replica is not None and not self.readonly:
                self._lock(self.replica)  # a new session: take the lock again
        return self._db

    def _lock(self, replica: str) -> None:
        """Take the replica's advisory lock, waiting up to ``lock_timeout``
        seconds (the session of a killed process takes a moment to end)."""
        assert self._db is not None
        try:
            got = try_advisory_lock(self._db, 74069318, replica, self.lock_timeout)
        except psycopg.Error as exc:
            raise self._fail(f"cannot lock replica {replica!r}", exc) from None
        if not got:
            db, self._db = self._db, None
            db.close()
            raise StoreError(f"{_safe(self.url)}: replica {replica!r} is open in another "
                             "session (one writer per replica; stop it first)")

    def _writable(self) -> str:
        if self.readonly:
            raise StoreError(f"{_safe(self.url)} was opened read-only")
        return self._bound()

    def _fail(self, what: str, exc: Exception) -> StoreError:
        # a broken connection is dropped; the next call reconnects and reads
        # the stored tops again (a commit whose answer was lost may have landed)
        self._top = None
        self._uncertain = True
        try:
            if self._db is not None:
                self._db.close()
        finally:
            self._db = None
        return StoreError(f"{_safe(self.url)}: {what}: {exc}")

    def open(self, *, replica: str, machine: str, policy: str) -> None:
        db = self._conn()
        if not self.readonly:
            self._lock(replica)
        try:
            with db.transaction():
                if not self.readonly:
                    db.execute("INSERT INTO cv_replicas (replica, machine, policy) "
                               "VALUES (%s, %s, %s) ON CONFLICT (replica) DO NOTHING",
                               (replica, machine, policy))
                row = db.execute("SELECT machine, policy FROM cv_replicas WHERE replica = %s",
                                 (replica,)).fetchone()
        except psycopg.Error as exc:
            raise self._fail(f"cannot open replica {replica!r}", exc) from None
        if row is None:
            raise StoreError(f"{_safe(self.url)}: holds no replica {replica!r}")
        check_meta(_safe(self.url), replica, {"machine": row[0], "policy": row[1]}, machine,
                   policy)
        self.replica = replica
        self._policy = policy

    def load(self) -> tuple[Snapshot | None, list[Envelope]]:
        r = self._bound()
        db = self._conn()
        try:
            with db.transaction():
                snap_row = db.execute("SELECT data FROM cv_snapshots WHERE replica = %s",
                                      (r,)).fetchone()
                rows = db.execute("SELECT origin, seq, hlc, event, deps, meta FROM cv_events "
                                  "WHERE replica = %s ORDER BY pos", (r,)).fetchall()
                batches = db.execute("SELECT data FROM cv_batches WHERE replica = %s "
                                     "ORDER BY pos", (r,)).fetchall()
        except psycopg.Error as exc:
            raise self._fail(f"cannot read replica {r!r}", exc) from None
        snap = None if snap_row is None else Snapshot.from_dict(json.loads(snap_row[0]))
        out = stored_log(self._policy, rows, batches,
                         f"{_safe(self.url)}: a stored batch of replica {r!r}")
        top = dict(snap.version) if snap is not None else {}
        for e in out:
            if e[3] > top.get(e[2], 0):
                top[e[2]] = e[3]
        self._top = top
        return snap, out

    def append(self, envelopes: Sequence[Envelope]) -> None:
        r = self._writable()
        envelopes = rows_of(envelopes)
        if not envelopes:
            return
        if self._top is None:
            self.load()
        assert self._top is not None
        # no event is stored twice (the per-event unique key of the old
        # format): each origin's numbers only grow, checked before writing;
        # one writer per replica (the advisory lock) keeps _top exact
        seen = check_fresh(self._top, envelopes)
        if isinstance(seen, str) and self._uncertain and all(
                e[3] <= self._top.get(e[2], 0) for e in envelopes):
            # the retry of an append whose commit landed but whose answer was
            # lost (the connection broke): every event is stored, nothing to do
            self._uncertain = False
            return
        if isinstance(seen, str):
            raise StoreError(f"{_safe(self.url)}: append of {len(envelopes)} events failed, "
                             f"nothing written: {seen} is already stored")
        row = (r, *encode_rows(envelopes))
        db = self._conn()
        try:
            with db.transaction():
                db.execute("INSERT INTO cv_batches (replica, lo, hi, n, data) "
                           "VALUES (%s, %s, %s, %s, %s)", row)
        except psycopg.Error as exc:
            raise self._fail(f"append of {len(envelopes)} events failed, nothing written",
                             exc) from None
        self._top = seen
        self._uncertain = False

    def compact(self, snapshot: Snapshot) -> int:
        r = self._writable()
        db = self._conn()
        try:
            with db.transaction():
                db.execute("INSERT INTO cv_snapshots VALUES (%s, %s, %s) ON CONFLICT (replica) "
                           "DO UPDATE SET horizon = EXCLUDED.horizon, data = EXCLUDED.data",
                           (r, snapshot.horizon, json.dumps(snapshot.to_dict())))
                n = drop_compacted(db.execute, r, snapshot.horizon, "%s")
        except psycopg.Error as exc:
            raise self._fail("compaction failed, nothing changed", exc) from None
        return int(n)

    def count(self) -> int:
        r = self._bound()
        db = self._conn()
        try:
            n = db.execute("SELECT (SELECT count(*) FROM cv_events WHERE replica = %s) + "
                           "(SELECT coalesce(sum(n), 0) FROM cv_batches WHERE replica = %s)",
                           (r, r)).fetchone()[0]
        except psycopg.Error as exc:
            raise self._fail("count failed", exc) from None
        return int(n)

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit
    try:
        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url
