"""kill -9 between any two statements of a transition loses nothing and
doubles nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from convergent.durable import Actor, EntityService, open_store, verify_audit

from .crash_child import chart

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[2]


def run_child(db: str, n: int, kill_after: int | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(CHILD), db, str(n)]
    if kill_after is not None:
        args.append(str(kill_after))
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


def check_exactly_once(db: str, n: int) -> None:
    store = open_store(db)
    try:
        svc = EntityService(chart(), store)
        e = svc.load("c")
        assert e.version == n + 1 and e.config.vars["n"] == n
        with store.tx() as tx:
            assert tx.one("SELECT count(*) FROM dz_outbox")[0] == n
            assert tx.one("SELECT count(*) FROM dz_requests")[0] == n + 1
            assert tx.one("SELECT count(*) FROM dz_audit")[0] == n + 1
            assert tx.one("SELECT count(*) FROM dz_timers")[0] == 1
        assert verify_audit(store) == []
        # the same request again changes nothing
        again = svc.send("c", "tick", actor=Actor.of("writer"), request_key="k0")
        assert again.replayed and svc.load("c").version == n + 1
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", range(2, 70, 5))
def test_sqlite_kill_after_each_statement(tmp_path: Path, kill_after: int) -> None:
    db = str(tmp_path / "crash.db")
    first = run_child(db, 4, kill_after)
    assert first.returncode == -signal.SIGKILL, first.stderr
    done = run_child(db, 4)
    assert done.returncode == 0, done.stderr
    check_exactly_once(db, 4)


@pytest.mark.slow
@pytest.mark.server
def test_postgres_kill_after_statements(postgres_url: str) -> None:
    from .conftest import _fresh_pg
    for kill_after in (5, 27, 31, 36):
        db = _fresh_pg(postgres_url)
        first = run_child(db, 3, kill_after)
        assert first.returncode == -signal.SIGKILL, first.stderr
        assert run_child(db, 3).returncode == 0
        check_exactly_once(db, 3)


@pytest.mark.slow
def test_sqlite_kill_at_random_moments(tmp_path: Path) -> None:
    db = str(tmp_path / "crash.db")
    rng = random.Random(7)
    n = 60
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(CHILD), db, str(n)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
        time.sleep(rng.uniform(0.3, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(60)
    assert run_child(db, n).returncode == 0
    check_exactly_once(db, n)


def to_old_heads_layout(db: str) -> None:
    """Turn a database back into the layout before step 0002 (dz_heads a
    rowid table, the step not recorded), keeping its rows."""
    con = sqlite3.connect(db)
    con.executescript("""
        BEGIN;
        CREATE TABLE dz_heads_old (
             kind TEXT NOT NULL, entity TEXT NOT NULL, version BIGINT NOT NULL,
             leaves TEXT NOT NULL, since TEXT NOT NULL, chart_version BIGINT NOT NULL,
             done INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
             PRIMARY KEY (kind, entity));
        INSERT INTO dz_heads_old SELECT * FROM dz_heads;
        DROP TABLE dz_heads;
        ALTER TABLE dz_heads_old RENAME TO dz_heads;
        DELETE FROM dz_migrations WHERE name = '0002_heads_clustered';
        COMMIT;""")
    con.close()


def heads_layout(db: str) -> str:
    con = sqlite3.connect(db)
    try:
        return str(con.execute("SELECT sql FROM sqlite_master WHERE name = 'dz_heads'")
                   .fetchone()[0])
    finally:
        con.close()


def test_the_heads_migration_keeps_every_row(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    assert run_child(db, 3).returncode == 0
    to_old_heads_layout(db)
    assert "WITHOUT ROWID" not in heads_layout(db)
    check_exactly_once(db, 3)  # opening the store migrates, then everything checks
    assert "WITHOUT ROWID" in heads_layout(db)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", range(1, 9))
def test_kill_during_the_heads_migration(tmp_path: Path, kill_after: int) -> None:
    """kill -9 at each statement of opening an old-layout database (the
    migration is one transaction): afterwards it migrates once and holds
    every event exactly once."""
    db = kill_while_migrating(tmp_path, to_old_heads_layout, kill_after)
    assert "WITHOUT ROWID" in heads_layout(db)


def kill_while_migrating(tmp_path: Path, to_old_layout: Callable[[str], None],
                         kill_after: int) -> str:
    """A database turned back into an older layout, a writer killed at its
    ``kill_after``-th statement (opening the store migrates first), then a
    writer that finishes: every event must be there exactly once."""
    db = str(tmp_path / "old.db")
    assert run_child(db, 2).returncode == 0
    to_old_layout(db)
    first = run_child(db, 4, kill_after)
    assert first.returncode == -signal.SIGKILL, first.stderr
    done = run_child(db, 4)
    assert done.returncode == 0, done.stderr
    check_exactly_once(db, 4)
    return db


def to_clustered_events_layout(db: str) -> None:
    """Turn a database back into the event-table layout before kind step
    0004 (clustered by (entity, version), WITHOUT ROWID, the transition id
    unique as tables made before step 0002 had it; the step not recorded),
    keeping its rows."""
    con = sqlite3.connect(db)
    con.executescript("""
        BEGIN;
        CREATE TABLE dz_ev_old (
              entity TEXT NOT NULL, version BIGINT NOT NULL,
              transition_id TEXT NOT NULL UNIQUE,
              event TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT NOT NULL,
              meta TEXT NOT NULL, from_leaves TEXT NOT NULL, to_leaves TEXT NOT NULL,
              chart_version BIGINT NOT NULL, recorded_at DOUBLE PRECISION NOT NULL,
              PRIMARY KEY (entity, version)) WITHOUT ROWID;
        INSERT INTO dz_ev_old SELECT entity, version, transition_id, event, payload, actor,
              meta, from_leaves, to_leaves, chart_version, recorded_at FROM dz_ev_counter;
        DROP TABLE dz_ev_counter;
        ALTER TABLE dz_ev_old RENAME TO dz_ev_counter;
        CREATE TRIGGER dz_ev_counter_no_update BEFORE UPDATE ON dz_ev_counter
              BEGIN SELECT RAISE(ABORT, 'append-only table dz_ev_counter'); END;
        CREATE TRIGGER dz_ev_counter_no_delete BEFORE DELETE ON dz_ev_counter
              BEGIN SELECT RAISE(ABORT, 'append-only table dz_ev_counter'); END;
        DELETE FROM dz_migrations WHERE name = 'kind_counter_0004';
        COMMIT;""")
    con.close()


def events_layout(db: str) -> tuple[str, list[tuple[object, ...]], set[str]]:
    """The event table's DDL, its rows in key order (without the position
    column), and the names of its triggers."""
    con = sqlite3.connect(db)
    try:
        ddl = str(con.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'dz_ev_counter'").fetchone()[0])
        rows = con.execute("SELECT entity, version, transition_id, event, payload, actor, "
                           "meta, from_leaves, to_leaves, chart_version, recorded_at FROM "
                           "dz_ev_counter ORDER BY entity, version").fetchall()
        triggers = {str(r[0]) for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
            "tbl_name = 'dz_ev_counter'")}
        return ddl, rows, triggers
    finally:
        con.close()


def test_the_events_migration_keeps_every_row_and_the_guards(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    assert run_child(db, 3).returncode == 0
    _, before, _ = events_layout(db)
    to_clustered_events_layout(db)
    ddl, rows, _ = events_layout(db)
    assert "WITHOUT ROWID" in ddl and rows == before
    check_exactly_once(db, 3)  # opening the store migrates, then everything checks
    ddl, rows, triggers = events_layout(db)
    assert "WITHOUT ROWID" not in ddl and "pos INTEGER PRIMARY KEY" in ddl
    assert rows == before and len(rows) == 4
    assert triggers == {"dz_ev_counter_no_update", "dz_ev_counter_no_delete"}
    con = sqlite3.connect(db)
    try:
        for sql in ("DELETE FROM dz_ev_counter", "UPDATE dz_ev_counter SET event = 'x'"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(sql)
        # the key still refuses a second writer's version N
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            con.execute("INSERT INTO dz_ev_counter (entity, version, transition_id, event, "
                        "payload, actor, meta, from_leaves, to_leaves, chart_version, "
                        "recorded_at) SELECT entity, version, 'other', event, payload, actor, "
                        "meta, from_leaves, to_leaves, chart_version, recorded_at FROM "
                        "dz_ev_counter WHERE version = 2")
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", range(1, 12))
def test_kill_during_the_events_migration(tmp_path: Path, kill_after: int) -> None:
    """kill -9 at each statement of opening a database whose event table
    is clustered: the rebuild is one transaction, so afterwards the table is
    either old or new, never half, and every event is there exactly once."""
    db = kill_while_migrating(tmp_path, to_clustered_events_layout, kill_after)
    assert "WITHOUT ROWID" not in events_layout(db)[0]
