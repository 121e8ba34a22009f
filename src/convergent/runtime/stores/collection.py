"""Where a collection replica keeps the envelopes it applied.

A collection replica's state is a function of its applied log (in the order
applied, a causal order), so the log is all a store keeps: one row per
envelope, numbered by position, written by one transaction per call that
applied envelopes. A restart replays the rows through the same checks a
peer's envelopes pass (a stored row crossed a process boundary), so a
corrupted or foreign row is a ``StoreError`` naming its position, never a
silently different collection.

One process per replica: under escrow two processes writing one replica
would both spend its share. ``SQLiteCollectionStore.open`` takes the same
kind of lock as the replica stores (``fcntl.lockf`` on ``<path>.lock``).

``open_collection_store(url)``: ``memory://``, ``sqlite:///relative.db``,
``sqlite:////absolute/path.db``, ``postgresql://user@host:port/db``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..._sqlite import immediate
from ..envelope import loads_bounded
from ..errors import PolicyMismatchError, ProtocolError, StoreError
from .base import lock_slot, try_advisory_lock

__all__ = ["CollectionStore", "MemoryCollectionStore", "PostgresCollectionStore",
           "SQLiteCollectionStore", "open_collection_store"]

#: one stored envelope's JSON (a key of 256 characters, a few replica ids)
MAX_ROW_BYTES = 64 * 1024


class CollectionStore:
    """The interface: ``open`` binds a replica and its collection policy,
    ``load`` returns its rows (envelope dicts) in the order applied,
    ``append`` adds rows in one transaction (all or nothing)."""

    url = "collection-store"
    replica: str | None = None

    def open(self, *, replica: str, policy: str) -> None:
        raise NotImplementedError

    def load(self) -> list[Any]:
        raise NotImplementedError

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional, with a default
        """Release the connection and the lock."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _bound(self) -> str:
        if self.replica is None:
            raise StoreError(f"{self.url}: open() it first")
        return self.replica


def _numbered(replica: str, start: int, rows: Sequence[dict[str, Any]]
              ) -> list[tuple[str, int, str]]:
    """The stored rows of envelope dicts appended at position ``start``."""
    return [(replica, start + i, json.dumps(d, separators=(",", ":")))
            for i, d in enumerate(rows)]


class MemoryCollectionStore(CollectionStore):
    """Rows in memory: for tests, and to share a log between replica objects
    of one process. ``fail_next`` makes the next ``append`` fail."""

    url = "memory://"

    def __init__(self) -> None:
        self._rows: dict[str, list[str]] = {}
        self._policy: dict[str, str] = {}
        self.replica: str | None = None
        self.fail_next = False

    def open(self, *, replica: str, policy: str) -> None:
        known = self._policy.setdefault(replica, policy)
        if known != policy:
            raise _mismatch(self.url, replica, known, policy)
        self._rows.setdefault(replica, [])
        self.replica = replica

    def load(self) -> list[Any]:
        return [json.loads(r) for r in self._rows[self._bound()]]

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        r = self._bound()
        if self.fail_next:
            self.fail_next = False
            raise StoreError(f"{self.url}: injected failure, nothing written")
        self._rows[r].extend(json.dumps(d, separators=(",", ":")) for d in rows)


class SQLiteCollectionStore(CollectionStore):
    """``SQLiteCollectionStore("c1.db")``: WAL, ``synchronous=FULL`` (a
    returned ``emit`` survives power loss); several replicas may share a
    file. Tables ``cv_collection_replicas`` and ``cv_collection_log``
    beside (never touching) the replica stores' tables."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self.replica: str | None = None
        self._next = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                db = sqlite3.connect(self.path, isolation_level=None, timeout=self.timeout)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("CREATE TABLE IF NOT EXISTS cv_collection_replicas (replica TEXT "
                           "PRIMARY KEY, policy TEXT NOT NULL)")
                db.execute("CREATE TABLE IF NOT EXISTS cv_collection_log (replica TEXT NOT "
                           "NULL, pos INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY "
                           "(replica, pos))")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.url}: cannot open: {exc}") from None
            self._db = db
        return self._db

    def _lock(self, replica: str) -> None:
        try:
            self._lock_fd = lock_slot(f"{self.path}.lock", self._lock_fd,
                                      f"collection:{replica}")
        except OSError:
            raise StoreError(f"{self.url}: collection replica {replica!r} is open in another "
                             "process (one writer per replica; stop it first)") from None

    def open(self, *, replica: str, policy: str) -> None:
        self._lock(replica)
        db = self._conn()
        try:
            with immediate(db):
                row = db.execute("SELECT policy FROM cv_collection_replicas WHERE replica = ?",
                                 (replica,)).fetchone()
                if row is None:
                    db.execute("INSERT INTO cv_collection_replicas VALUES (?, ?)",
                               (replica, policy))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: cannot open replica {replica!r}: {exc}") from None
        if row is not None and row[0] != policy:
            raise _mismatch(self.url, replica, str(row[0]), policy)
        self.replica = replica

    def load(self) -> list[Any]:
        r = self._bound()
        try:
            rows = self._conn().execute("SELECT pos, data FROM cv_collection_log WHERE "
                                        "replica = ? ORDER BY pos", (r,)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: cannot read replica {r!r}: {exc}") from None
        out = _decoded(self.url, r, rows)
        self._next = len(out)
        return out

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        r = self._bound()
        if not rows:
            return
        db = self._conn()
        try:
            with immediate(db):
                db.executemany("INSERT INTO cv_collection_log VALUES (?, ?, ?)",
                               _numbered(r, self._next, rows))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: append of {len(rows)} envelopes failed, nothing "
                             f"written: {exc}") from None
        self._next += len(rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None


def _mismatch(url: str, replica: str, stored: str, policy: str) -> PolicyMismatchError:
    return PolicyMismatchError(
        f"store {url} holds collection replica {replica!r} of policy {stored[:16]}..., but "
        f"this process runs policy {policy[:16]}... (another collection, template, "
        "aggregates, membership or split): a changed collection cannot continue an old log",
        expected=policy, got=stored)


def open_collection_store(url: str) -> CollectionStore:
    """A collection store from its URL (see the module docstring)."""
    if not isinstance(url, str):
        raise StoreError(f"store url={url!r} (expected a string such as sqlite:///c1.db)")
    if url in ("memory://", "memory:"):
        return MemoryCollectionStore()
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return SQLiteCollectionStore(url[len("sqlite:///"):])
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresCollectionStore(url)
    raise StoreError(f"store url={url!r} (expected memory://, sqlite:///FILE or "
                     "postgresql://...)")


class PostgresCollectionStore(CollectionStore):
    """``PostgresCollectionStore("postgresql://user@127.0.0.1:5432/db")``
    (psycopg 3): the same rows as SQLite, one transaction per append; a
    session advisory lock per replica keeps one writer. A write whose
    connection broke may have committed: the replica then reloads what the
    store holds (``CollectionReplica`` does on any StoreError), and the
    message says the outcome was unknown."""

    def __init__(self, url: str, *, connect_timeout: float = 10.0,
                 lock_timeout: float = 5.0) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise StoreError("the PostgreSQL store needs psycopg 3: pip install "
                             "'psycopg[binary]' (or 'convergent[replica]')") from exc
        from .postgres import _safe
        self.url = _safe(url)
        self._dsn = url
        self.connect_timeout = connect_timeout
        self.lock_timeout = lock_timeout
        self._db: Any = None
        self.replica: str | None = None
        self._next = 0

    def _conn(self) -> Any:
        import psycopg
        if self._db is None or self._db.closed:
            try:
                db = psycopg.connect(self._dsn, autocommit=True,
                                     connect_timeout=int(max(1, self.connect_timeout)))
                with db.transaction():
                    db.execute("SELECT pg_advisory_xact_lock(7406931824)")
                    db.execute("CREATE TABLE IF NOT EXISTS cv_collection_replicas (replica "
                               "TEXT PRIMARY KEY, policy TEXT NOT NULL)")
                    db.execute("CREATE TABLE IF NOT EXISTS cv_collection_log (replica TEXT "
                               "NOT NULL, pos BIGINT NOT NULL, data TEXT NOT NULL, PRIMARY "
                               "KEY (replica, pos))")
            except psycopg.Error as exc:
                raise StoreError(f"{self.url}: cannot open: {exc}") from None
            self._db = db
            if self.replica is not None:
                self._lock(self.replica)   # a new session: take the lock again
        return self._db

    def _lock(self, replica: str) -> None:
        import psycopg
        try:
            got = try_advisory_lock(self._db, 74069319, replica, self.lock_timeout)
        except psycopg.Error as exc:
            raise self._fail(f"cannot lock collection replica {replica!r}", exc) from None
        if not got:
            db, self._db = self._db, None
            db.close()
            raise StoreError(f"{self.url}: collection replica {replica!r} is open in another "
                             "session (one writer per replica; stop it first)")

    def _fail(self, what: str, exc: Exception) -> StoreError:
        try:
            if self._db is not None:
                self._db.close()
        finally:
            self._db = None
        return StoreError(f"{self.url}: {what}: {exc}")

    def open(self, *, replica: str, policy: str) -> None:
        import psycopg
        db = self._conn()
        self._lock(replica)
        try:
            with db.transaction():
                db.execute("INSERT INTO cv_collection_replicas VALUES (%s, %s) "
                           "ON CONFLICT (replica) DO NOTHING", (replica, policy))
                row = db.execute("SELECT policy FROM cv_collection_replicas WHERE replica = %s",
                                 (replica,)).fetchone()
        except psycopg.Error as exc:
            raise self._fail(f"cannot open collection replica {replica!r}", exc) from None
        if row[0] != policy:
            raise _mismatch(self.url, replica, str(row[0]), policy)
        self.replica = replica

    def load(self) -> list[Any]:
        import psycopg
        r = self._bound()
        try:
            rows = self._conn().execute("SELECT pos, data FROM cv_collection_log WHERE "
                                        "replica = %s ORDER BY pos", (r,)).fetchall()
        except psycopg.Error as exc:
            raise self._fail(f"cannot read collection replica {r!r}", exc) from None
        out = _decoded(self.url, r, rows)
        self._next = len(out)
        return out

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        import psycopg
        r = self._bound()
        if not rows:
            return
        try:
            db = self._conn()
            with db.transaction(), db.cursor() as cur:
                cur.executemany("INSERT INTO cv_collection_log VALUES (%s, %s, %s)",
                                _numbered(r, self._next, rows))
        except psycopg.Error as exc:
            raise self._fail(f"append of {len(rows)} envelopes failed (if the connection "
                             "broke during the commit it may have landed: the replica "
                             "reloads what the store holds)", exc) from None
        self._next += len(rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()   # ends the session: releases the advisory lock
            self._db = None


def _decoded(url: str, replica: str, rows: Sequence[Any]) -> list[Any]:
    """The stored rows' JSON, checked: positions 0, 1, 2... without a gap,
    each a bounded JSON text."""
    out = []
    for n, (pos, data) in enumerate(rows):
        if pos != n:
            raise StoreError(f"{url}: replica {replica!r}: row {n} is missing "
                             f"(found position {pos})")
        if not isinstance(data, str) or len(data) > MAX_ROW_BYTES:
            raise StoreError(f"{url}: replica {replica!r}: row {n} is not a bounded JSON text")
        try:
            out.append(loads_bounded(data, what=f"row {n}"))
        except ProtocolError as exc:
            raise StoreError(f"{url}: replica {replica!r}: {exc}") from None
    return out
