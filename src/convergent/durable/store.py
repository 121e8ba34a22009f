"""The durable entities' database: SQLite (default) and PostgreSQL through
one code path.

Everything a transition writes — its event row, the entity's head, timers,
outbox commands, the audit row, the idempotency record and a snapshot —
goes through one ``Tx`` and commits together or not at all. A process
killed between any two statements leaves the database as before the call
(the database's own atomicity); a killed process after commit has written
everything once, and a retry with the same request key returns the stored
result instead of writing again.

SQL is written once with ``?`` placeholders; the PostgreSQL dialect turns
them into ``%s``. Event tables are one per entity kind (``dz_ev_<kind>``)
and refuse UPDATE and DELETE by trigger, as does the audit table.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from .._sqlite import immediate
from .errors import DurableStoreError

__all__ = ["EntityStore", "Tx", "open_store"]

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
COPY_MIN_ROWS = 16
"""PostgreSQL inserts of at least this many rows go through COPY."""
SQLITE_ROWS_PER_INSERT = 1000
"""SQLite inserts put at most this many rows in one statement."""


def check_kind(kind: str) -> str:
    """Entity kinds name tables: lower-case identifiers of at most 40 chars."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise DurableStoreError(f"kind={kind!r} (expected a lower-case identifier of at most "
                                "40 characters: it names a table)")
    return kind


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


# Shared tables; per-kind tables come from ``_kind_ddl``. Named, recorded
# steps: append new ones, never edit applied ones.
_SHARED = [
    ("0001_shared", [
        """CREATE TABLE IF NOT EXISTS dz_heads (
             kind TEXT NOT NULL, entity TEXT NOT NULL, version BIGINT NOT NULL,
             leaves TEXT NOT NULL, since TEXT NOT NULL, chart_version BIGINT NOT NULL,
             done INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
             PRIMARY KEY (kind, entity))""",
        """CREATE TABLE IF NOT EXISTS dz_snapshots (
             kind TEXT NOT NULL, entity TEXT NOT NULL, version BIGINT NOT NULL,
             chart_version BIGINT NOT NULL, config TEXT NOT NULL,
             PRIMARY KEY (kind, entity))""",
        """CREATE TABLE IF NOT EXISTS dz_outbox (
             id {serial} PRIMARY KEY, kind TEXT NOT NULL, entity TEXT NOT NULL,
             key TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, body TEXT NOT NULL,
             meta TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
             next_at DOUBLE PRECISION NOT NULL, published_at DOUBLE PRECISION,
             last_error TEXT, created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS dz_outbox_due ON dz_outbox (published_at, next_at)",
        """CREATE TABLE IF NOT EXISTS dz_requests (
             kind TEXT NOT NULL, key TEXT NOT NULL, entity TEXT NOT NULL,
             result TEXT NOT NULL, PRIMARY KEY (kind, key))""",
        """CREATE TABLE IF NOT EXISTS dz_timers (
             id TEXT PRIMARY KEY, kind TEXT NOT NULL, entity TEXT NOT NULL,
             state TEXT NOT NULL, event TEXT NOT NULL, due_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS dz_timers_due ON dz_timers (due_at)",
        "CREATE INDEX IF NOT EXISTS dz_timers_entity ON dz_timers (kind, entity)",
        """CREATE TABLE IF NOT EXISTS dz_envelopes (
             id TEXT PRIMARY KEY, seen_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS dz_audit (
             seq BIGINT PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
             entity TEXT NOT NULL, transition_id TEXT NOT NULL, actor TEXT NOT NULL,
             event TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
             trace_id TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
             prev TEXT NOT NULL, hash TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS dz_audit_head (
             id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)""",
        "INSERT INTO dz_audit_head (id, seq, hash) VALUES (1, 0, '') ON CONFLICT DO NOTHING",
        "{audit_guard}",
    ]),
    # SQLite: the heads keyed by (kind, entity) as a clustered table (one
    # B-tree instead of rowid table + key index: half the pages a write
    # touches). PostgreSQL tables are heaps either way.
    ("0002_heads_clustered", [
        """{sqlite:CREATE TABLE dz_heads_v2 (
             kind TEXT NOT NULL, entity TEXT NOT NULL, version BIGINT NOT NULL,
             leaves TEXT NOT NULL, since TEXT NOT NULL, chart_version BIGINT NOT NULL,
             done INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
             PRIMARY KEY (kind, entity)) WITHOUT ROWID}""",
        "{sqlite:INSERT INTO dz_heads_v2 SELECT kind, entity, version, leaves, since, "
        "chart_version, done, updated_at FROM dz_heads}",
        "{sqlite:DROP TABLE dz_heads}",
        "{sqlite:ALTER TABLE dz_heads_v2 RENAME TO dz_heads}",
    ]),
    # One audit chain per entity kind instead of one per database: writers
    # of different kinds no longer queue on one head row. Rows written
    # before keep their hashes as chain '' (the fields hashed are the same).
    ("0003_audit_chains", [
        """CREATE TABLE dz_audit_v2 (
             chain TEXT NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
             entity TEXT NOT NULL, transition_id TEXT NOT NULL, actor TEXT NOT NULL,
             event TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
             trace_id TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
             prev TEXT NOT NULL, hash TEXT NOT NULL,
             PRIMARY KEY (chain, seq)){without_rowid}""",
        "INSERT INTO dz_audit_v2 SELECT '', seq, at, kind, entity, transition_id, actor, event, "
        "from_state, to_state, trace_id, outcome, reason, prev, hash FROM dz_audit",
        "DROP TABLE dz_audit",
        "ALTER TABLE dz_audit_v2 RENAME TO dz_audit",
        "{audit_guard}",
        """CREATE TABLE dz_audit_heads (
             chain TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)""",
        "INSERT INTO dz_audit_heads (chain, seq, hash) SELECT '', seq, hash FROM dz_audit_head "
        "WHERE seq > 0",
        "DROP TABLE dz_audit_head",
        # anchor the chains of the kinds that exist already (new kinds: kind step 0003)
        "INSERT INTO dz_audit_heads (chain, seq, hash) SELECT substr(name, 6, length(name) - "
        "10), 0, '' FROM dz_migrations WHERE name LIKE 'kind_%_0001' ON CONFLICT DO NOTHING",
    ]),
]


def _kind_steps(kind: str) -> list[tuple[str, list[str]]]:
    """The event table of ``kind``: one row per event, keyed (entity,
    version). The transition id is derived from that key (see
    ``service._transition_id``), so it needs no index of its own; tables
    created before step 0002 kept theirs on SQLite until step 0004 rebuilt
    the table (in arrival order, the key as a unique index); PostgreSQL drops
    it in step 0002."""
    t = f"dz_ev_{kind}"
    return [
        (f"kind_{kind}_0001", [
            f"""CREATE TABLE IF NOT EXISTS {t} (
                  entity TEXT NOT NULL, version BIGINT NOT NULL, transition_id TEXT NOT NULL,
                  event TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT NOT NULL,
                  meta TEXT NOT NULL, from_leaves TEXT NOT NULL, to_leaves TEXT NOT NULL,
                  chart_version BIGINT NOT NULL, recorded_at DOUBLE PRECISION NOT NULL,
                  PRIMARY KEY (entity, version)){{without_rowid}}""",
            "{guard:" + t + "}",
        ]),
        (f"kind_{kind}_0002", [
            "{postgres:" + f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {t}_transition_id_key"
            + "}",
        ]),
        # the kind's audit chain is anchored from the start: a head row at
        # seq 0, so deleting all of a kind's audit rows (and its head) shows
        (f"kind_{kind}_0003", [
            f"INSERT INTO dz_audit_heads (chain, seq, hash) VALUES ('{kind}', 0, '') "
            "ON CONFLICT (chain) DO NOTHING",
        ]),
        # SQLite: events stored in arrival order (a rowid table: a batch
        # appends to its last pages) with (entity, version) as a separate
        # unique index. Clustered by entity, a batch spread over many
        # entities dirtied one table page per entity, each copied whole into
        # the WAL at commit: 2.5x the pages of the append + index layout
        # (docs/durable.md, Performance). The index still arbitrates
        # concurrent writers (a second version N is a unique violation) and
        # serves replays. PostgreSQL tables are heaps already.
        (f"kind_{kind}_0004", [
            "{sqlite:" + f"""CREATE TABLE {t}_v4 (
                  pos INTEGER PRIMARY KEY,
                  entity TEXT NOT NULL, version BIGINT NOT NULL, transition_id TEXT NOT NULL,
                  event TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT NOT NULL,
                  meta TEXT NOT NULL, from_leaves TEXT NOT NULL, to_leaves TEXT NOT NULL,
                  chart_version BIGINT NOT NULL, recorded_at DOUBLE PRECISION NOT NULL,
                  UNIQUE (entity, version))""" + "}",
            "{sqlite:" + f"INSERT INTO {t}_v4 (entity, version, transition_id, event, payload, "
            "actor, meta, from_leaves, to_leaves, chart_version, recorded_at) SELECT entity, "
            "version, transition_id, event, payload, actor, meta, from_leaves, to_leaves, "
            f"chart_version, recorded_at FROM {t} ORDER BY recorded_at, entity, version" + "}",
            "{sqlite:" + f"DROP TABLE {t}" + "}",
            "{sqlite:" + f"ALTER TABLE {t}_v4 RENAME TO {t}" + "}",
            "{sqlite-guard:" + t + "}",
        ]),
    ]


class Tx:
    """One open transaction; ``q`` runs a ``?``-placeholder statement."""

    def __init__(self, cur: Any, param: str, dialect: str, *, pipelined: bool = False) -> None:
        self._cur = cur
        self._param = param
        self.dialect = dialect
        self.pipelined = pipelined
        """PostgreSQL pipeline mode: a statement whose result is not read
        goes out with the next one that is read (or the commit); no COPY."""

    def others_version(self) -> int | None:
        """SQLite's ``data_version``: it changes when any other connection
        (in this process or another) commits to the database, never for this
        connection's own commits. None on PostgreSQL (no such counter)."""
        if self.dialect != "sqlite":
            return None
        return int(self.one("PRAGMA data_version")[0])

    def own_changes(self) -> int | None:
        """Rows this connection has inserted, updated or deleted so far
        (SQLite's ``total_changes``; reads leave it alone, a rolled-back
        change still counts). None on PostgreSQL."""
        if self.dialect != "sqlite":
            return None
        return int(self._cur.connection.total_changes)

    def q(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._param != "?":
            sql = sql.replace("?", self._param)
        if params:
            self._cur.execute(sql, tuple(params))
        else:
            self._cur.execute(sql)  # no params: psycopg must not parse '%' in the text
        return self._cur

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.q(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.q(sql, params).fetchall())

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows: on PostgreSQL a ``COPY ... FROM STDIN`` once the
        batch is large enough to pay for it (one statement for the server
        instead of one per row; a unique violation aborts it all the same);
        on SQLite multi-row ``INSERT ... VALUES (...), (...)`` statements of
        up to ``SQLITE_ROWS_PER_INSERT`` rows (about a sixth cheaper per row
        than ``executemany``, which steps one statement per row)."""
        if not rows:
            return
        cols = ", ".join(columns)
        if self.dialect == "postgres" and len(rows) >= COPY_MIN_ROWS and not self.pipelined:
            with self._cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            return
        one = f"({', '.join('?' * len(columns))})"
        if self.dialect == "sqlite" and len(rows) > 1:
            per = max(1, min(SQLITE_ROWS_PER_INSERT, self._max_params() // len(columns)))
            for i in range(0, len(rows), per):
                chunk = rows[i:i + per]
                self.q(f"INSERT INTO {table} ({cols}) VALUES {', '.join([one] * len(chunk))}",
                       list(itertools.chain.from_iterable(chunk)))
            return
        self.many(f"INSERT INTO {table} ({cols}) VALUES {one}", rows)

    def _max_params(self) -> int:
        """SQLite's limit on a statement's parameters (999 before 3.32)."""
        try:
            return int(self._cur.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        except (AttributeError, sqlite3.Error):  # Python < 3.11
            return 999

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        """``executemany``; returns the cursor (``rowcount`` is the total)."""
        if not rows:
            return self._cur
        if self._param != "?":
            sql = sql.replace("?", self._param)
        self._cur.executemany(sql, rows)
        return self._cur


class _Dialect(Protocol):
    name: str
    url: str

    def transaction(self, pipeline: bool = False) -> Any: ...

    def unique_violation(self, exc: BaseException) -> bool: ...

    def conflict(self, exc: BaseException) -> bool: ...

    def close(self) -> None: ...


class EntityStore:
    """The store of every entity kind in one database. Thread-safe: calls are
    serialized on one connection (open several stores for parallel writers;
    the database arbitrates between them)."""

    def __init__(self, dialect: _Dialect) -> None:
        self._d = dialect
        self._lock = threading.RLock()
        self._kinds: set[str] = set()
        self.url = dialect.url
        self.dialect = dialect.name
        with self.tx() as tx:
            self._migrate(tx, _SHARED)

    # ------------------------------------------------------------ schema

    def _render(self, sql: str) -> list[str]:
        """A migration statement for this dialect: ``{guard:T}`` (append-only
        triggers; ``{sqlite-guard:T}`` on SQLite only), ``{sqlite:...}`` /
        ``{postgres:...}`` (one dialect only),
        ``{serial}`` and ``{without_rowid}`` placeholders."""
        pg = self.dialect == "postgres"
        if sql == "{audit_guard}":
            return self._guard("dz_audit")
        if sql.startswith("{guard:"):
            return self._guard(sql[7:-1])
        if sql.startswith("{sqlite-guard:"):
            return self._guard(sql[14:-1]) if not pg else []
        for dialect in ("sqlite", "postgres"):
            if sql.startswith("{" + dialect + ":"):
                return [sql[len(dialect) + 2:-1]] if dialect == self.dialect else []
        return [sql.replace("{serial}", "BIGINT GENERATED ALWAYS AS IDENTITY" if pg
                            else "INTEGER")
                   .replace("{without_rowid}", "" if pg else " WITHOUT ROWID")]

    def _guard(self, table: str) -> list[str]:
        """Triggers that make ``table`` append-only (the audit chain also
        detects edits made with the triggers dropped)."""
        if self.dialect == "postgres":
            return [
                """CREATE OR REPLACE FUNCTION dz_append_only() RETURNS trigger AS $$
                   BEGIN RAISE EXCEPTION 'append-only table %', TG_TABLE_NAME; END;
                   $$ LANGUAGE plpgsql""",
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION dz_append_only()""",
            ]
        return [f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
                    BEGIN SELECT RAISE(ABORT, 'append-only table {table}'); END""",
                f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
                    BEGIN SELECT RAISE(ABORT, 'append-only table {table}'); END"""]

    def _migrate(self, tx: Tx, steps: list[tuple[str, list[str]]]) -> None:
        if tx.dialect == "postgres":
            tx.q("SELECT pg_advisory_xact_lock(7406931824)")
        tx.q("CREATE TABLE IF NOT EXISTS dz_migrations (name TEXT PRIMARY KEY, "
             "applied_at TEXT NOT NULL)")
        done = {r[0] for r in tx.all("SELECT name FROM dz_migrations")}
        for name, statements in steps:
            if name in done:
                continue
            for sql in statements:
                for s in self._render(sql):
                    tx.q(s)
            tx.q("INSERT INTO dz_migrations (name, applied_at) VALUES (?, ?)",
                 (name, _now_iso()))

    def ensure_kind(self, kind: str) -> str:
        """Create the event table of ``kind`` (once; recorded as a migration)."""
        check_kind(kind)
        if kind not in self._kinds:
            with self.tx() as tx:
                self._migrate(tx, _kind_steps(kind))
            self._kinds.add(kind)
        return f"dz_ev_{kind}"

    # ------------------------------------------------------------ transactions

    @contextmanager
    def tx(self, *, pipeline: bool = False) -> Iterator[Tx]:
        """A transaction: commits when the block ends, rolls back on any
        exception (re-raised; database errors become ``DurableStoreError``).

        ``pipeline`` (PostgreSQL; for blocks of a few statements): a
        statement whose result the block does not read is sent with the next
        one it reads, the last ones with the COMMIT. A single send's BEGIN,
        head read, event insert, chain head read, chain append and COMMIT
        then take three round trips, not six. An error still ends the whole
        transaction; it surfaces at the next read or at the commit instead
        of at its own statement."""
        with self._lock:
            try:
                with self._d.transaction(pipeline) as tx:
                    yield tx
            except DurableStoreError:
                raise
            except (sqlite3.Error, _pg_error()) as exc:
                raise DurableStoreError(f"{self.url}: {exc}; nothing of this call was "
                                        "written") from exc

    def unique_violation(self, exc: BaseException) -> bool:
        cause = exc.__cause__ if isinstance(exc, DurableStoreError) else exc
        return cause is not None and self._d.unique_violation(cause)

    def conflict(self, exc: BaseException) -> bool:
        """Did ``exc`` come from losing a race with another writer (a unique
        violation; on PostgreSQL also a deadlock or serialization failure,
        which roll back just as whole)? The caller may retry on fresh state."""
        cause = exc.__cause__ if isinstance(exc, DurableStoreError) else exc
        return cause is not None and self._d.conflict(cause)

    def close(self) -> None:
        with self._lock:
            self._d.close()

    def __enter__(self) -> EntityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pg_error() -> type[BaseException]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the environment
        return sqlite3.Error
    return psycopg.Error


SQLITE_CACHE_KIB = 64 * 1024
"""Page cache per connection (SQLite's default is 2 MiB): a batch spread
over many entities dirties a page per entity, and a cache that holds them
all neither spills them to the WAL before the commit nor reads them back.
(A larger ``wal_autocheckpoint`` helped such batches a little too, but made
every single-event commit slower while the WAL file was still growing: left
at SQLite's default.)"""


class _SQLite:
    """SQLite in WAL mode, ``synchronous=FULL`` (survives power loss), one
    ``BEGIN IMMEDIATE`` transaction per call (writers queue on the file lock
    for up to ``timeout`` seconds)."""

    name = "sqlite"

    def __init__(self, path: str, synchronous: str, timeout: float) -> None:
        self.url = f"sqlite:///{path}"
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise DurableStoreError(f"synchronous={synchronous!r}")
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=timeout,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        except sqlite3.Error as exc:
            raise DurableStoreError(f"{self.url}: cannot open: {exc}") from None

    @contextmanager
    def transaction(self, pipeline: bool = False) -> Iterator[Tx]:
        with immediate(self._db):
            yield Tx(self._db.cursor(), "?", "sqlite")

    def unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc).upper()

    def conflict(self, exc: BaseException) -> bool:
        return self.unique_violation(exc)  # BEGIN IMMEDIATE: writers never interleave

    def close(self) -> None:
        self._db.close()


class _Postgres:
    """PostgreSQL through psycopg 3, one transaction per call (read
    committed; conflicts surface as unique violations on the event table's
    primary key, which the service turns into ``ConcurrencyError``)."""

    name = "postgres"

    def __init__(self, url: str, connect_timeout: float) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the PostgreSQL store needs psycopg 3: pip install "
                              "'psycopg[binary]'", name=exc.name) from exc
        self._psycopg = psycopg
        self.url = _safe(url)
        self._raw_url = url
        self._timeout = connect_timeout
        self._db: Any = None

    def _conn(self) -> Any:
        if self._db is None or self._db.closed:
            try:
                self._db = self._psycopg.connect(self._raw_url, autocommit=True,
                                                 connect_timeout=int(max(1, self._timeout)))
            except self._psycopg.Error as exc:
                raise DurableStoreError(f"{self.url}: cannot connect: {exc}") from None
        return self._db

    @contextmanager
    def transaction(self, pipeline: bool = False) -> Iterator[Tx]:
        db = self._conn()
        try:
            if pipeline and self._psycopg.Pipeline.is_supported():
                with self._pipelined(db) as tx:
                    yield tx
            else:
                with db.transaction():
                    with db.cursor() as cur:
                        yield Tx(cur, "%s", "postgres")
        except self._psycopg.OperationalError:
            # a broken connection is dropped (the next call reconnects); a
            # deadlock or serialization failure only rolled this one back
            if db.broken or db.closed:
                try:
                    db.close()
                finally:
                    self._db = None
            raise

    @contextmanager
    def _pipelined(self, db: Any) -> Iterator[Tx]:
        """BEGIN and COMMIT as statements of the pipeline (psycopg's own
        transaction block waits for each); anything that stops the block,
        there or at the final sync, is followed by a rollback."""
        committed = False
        try:
            with db.pipeline():
                with db.cursor() as cur:
                    cur.execute("BEGIN")
                    yield Tx(cur, "%s", "postgres", pipelined=True)
                    cur.execute("COMMIT")
            committed = True
        finally:
            if not committed:
                # psycopg's rollback also forgets the statements it prepared:
                # a Parse queued behind the failed statement was skipped by
                # the server, and reusing its name would fail later
                try:
                    if not (db.broken or db.closed):
                        db.rollback()
                except self._psycopg.Error:  # the connection is unusable: reconnect next time
                    db.close()
                    self._db = None

    def unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, self._psycopg.errors.UniqueViolation)

    def conflict(self, exc: BaseException) -> bool:
        errors = self._psycopg.errors
        return isinstance(exc, (errors.UniqueViolation, errors.DeadlockDetected,
                                errors.SerializationFailure, errors.TransactionRollback))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit
    try:
        parts = urlsplit(url)
        if parts.password:
            return urlunsplit(parts._replace(
                netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    except ValueError:
        pass
    return url


def open_store(target: str | os.PathLike[str], *, synchronous: str = "full",
               timeout: float = 30.0) -> EntityStore:
    """``open_store("orders.db")`` (SQLite) or ``open_store("postgresql://...")``."""
    t = os.fspath(target)
    if t.startswith(("postgresql://", "postgres://")):
        return EntityStore(_Postgres(t, timeout))
    if t.startswith("sqlite:///"):
        t = t[len("sqlite:///"):]
    return EntityStore(_SQLite(t, synchronous, timeout))


def dumps(value: Any) -> str:
    """Canonical compact JSON (sorted keys): what is stored and hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
