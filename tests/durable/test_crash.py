"""kill -9 between any two statements of a transition loses nothing and
doubles nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
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
