"""One suite for every store (memory, SQLite, PostgreSQL), then kill -9
crash recovery with SQLite and with a real PostgreSQL server."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from convergent import Registry
from convergent.runtime import (
    Envelope,
    MemoryStore,
    PolicyMismatchError,
    Replica,
    SQLiteStore,
    Store,
    StoreError,
    open_store,
)

from .helpers import canonical_state, machine

ROOT = Path(__file__).resolve().parents[2]


def envs(policy: str, origin: str = "o", n: int = 3) -> list[Envelope]:
    return [Envelope(origin, i, 1000 + i, "deposit", (f"{origin}:{i - 1}",) if i > 1 else (),
                     {"i": i} if i % 2 else None, policy) for i in range(1, n + 1)]


# ---------------------------------------------------------------- the shared suite


def test_append_and_load_round_trip(store_factory: Callable[[], Store],
                                    rid: Callable[[str], str]) -> None:
    m = machine("account")
    s = store_factory()
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    batch1, batch2 = envs(m.policy_digest, n=3), envs(m.policy_digest, origin="x", n=2)
    s.append(batch1)
    s.append(batch2)
    s.append([])
    s.close()
    again = store_factory()
    again.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    snap, got = again.load()
    assert snap is None and got == batch1 + batch2 and again.count() == 5
    # another replica in the same store sees nothing of it
    other = store_factory()
    other.open(replica=rid("b"), machine=m.name, policy=m.policy_digest)
    assert other.load() == (None, [])
    again.close()
    other.close()


def test_a_store_refuses_another_policy(store_factory: Callable[[], Store],
                                        rid: Callable[[str], str]) -> None:
    m = machine("account")
    s = store_factory()
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    s.close()
    other = machine("counters")
    with pytest.raises(PolicyMismatchError, match="cannot continue an old log"):
        store_factory().open(replica=rid("a"), machine=other.name, policy=other.policy_digest)


def test_compaction_is_atomic_snapshot_plus_delete(store_factory: Callable[[], Store],
                                                   rid: Callable[[str], str]) -> None:
    m = machine("account")
    net_ids = [rid("a"), rid("b")]
    a = Replica(m, id=net_ids[0], store=store_factory(), peers=net_ids, clock=lambda: 100)
    for ev in ("deposit", "freeze", "hit", "unfreeze", "withdraw"):
        a.emit(ev)
    a.observe_peer(net_ids[1], {}, a._hlc.last - 2)   # b is idle and behind: 3 are stable
    assert a.compact() == 3
    state = a.state
    a.close()
    again = Replica(m, id=net_ids[0], store=store_factory(), peers=net_ids)
    assert again.state == state and again.accepted == 5 and len(again.log) == 2
    assert again.store.count() == 2
    assert again.emit("hit").seq == 6
    again.close()


def test_a_replica_restarts_with_its_state(store_factory: Callable[[], Store],
                                           rid: Callable[[str], str]) -> None:
    m = machine("order")
    a = Replica(m, id=rid("a"), store=store_factory())
    b = Replica(m, id=rid("b"))
    rng = random.Random(3)
    for _ in range(60):
        (a.emit if rng.random() < 0.5 else lambda e: a.receive(b.emit(e)))(
            rng.choice(m.events))
    state, log = a.state, a.log
    a.close()
    again = Replica(m, id=a.id, store=store_factory())
    assert again.state == state and again.log == log
    again.close()


def test_a_failed_batch_writes_nothing(durable_factory: Callable[[], Store],
                                       rid: Callable[[str], str]) -> None:
    m = machine("account")
    s = durable_factory()
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    first = envs(m.policy_digest, n=2)
    s.append(first)
    clash = envs(m.policy_digest, origin="z", n=2) + [first[1]]   # o:2 again: a unique key
    with pytest.raises(StoreError, match="nothing written"):
        s.append(clash)
    assert s.load()[1] == first
    s.close()


def test_one_writer_per_replica(durable_factory: Callable[[], Store],
                                rid: Callable[[str], str]) -> None:
    m = machine("account")
    s = durable_factory()
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    s.append(envs(m.policy_digest, n=1))
    url = s.url
    code = ("import sys; from convergent.runtime import open_store; s = open_store(sys.argv[1]);"
            "s.open(replica=sys.argv[2], machine=sys.argv[3], policy=sys.argv[4])")
    if "postgres" in url:
        code = code.replace("open_store(sys.argv[1])",
                            "__import__('convergent.runtime.stores.postgres', fromlist=['x'])"
                            ".PostgresStore(sys.argv[1], lock_timeout=0.5)")
    p = subprocess.run([sys.executable, "-c", code, url, rid("a"), m.name, m.policy_digest],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode != 0 and "open in another" in p.stderr, p.stderr
    # a reader is welcome
    ro = open_store(url, readonly=True)
    ro.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    assert ro.count() == 1
    with pytest.raises(StoreError, match="read-only"):
        ro.append(envs(m.policy_digest, origin="q", n=1))
    with pytest.raises(StoreError, match="no replica"):
        open_store(url, readonly=True).open(replica=rid("nobody"), machine=m.name,
                                            policy=m.policy_digest)
    ro.close()
    s.close()


def test_store_urls() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    s = open_store("sqlite:///rel/path.db?synchronous=normal")
    assert isinstance(s, SQLiteStore) and s.path == "rel/path.db" and s.synchronous == "NORMAL"
    assert open_store("sqlite:////abs/p.db").path == "/abs/p.db"  # type: ignore[attr-defined]
    for bad, msg in [("sqlite://x.db", "expected sqlite:///"), ("mysql://h/db", "expected"),
                     ("sqlite:///a.db?cache=1", "unknown option"), (3, "expected a string")]:
        with pytest.raises(StoreError, match=msg):
            open_store(bad)  # type: ignore[arg-type]


def test_sqlite_uses_wal_and_full_sync(tmp_path: Path) -> None:
    m = machine("account")
    s = SQLiteStore(tmp_path / "x.db")
    s.open(replica="a", machine=m.name, policy=m.policy_digest)
    db = s._conn()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert [r[0] for r in db.execute("SELECT name FROM cv_migrations")] == [
        "0001_initial", "0002_batches"]
    s.close()


def test_events_of_the_per_row_format_are_read_and_compacted(
        durable_factory: Callable[[], Store], rid: Callable[[str], str]) -> None:
    """Stores written before batches were one row each keep working (SQLite
    and PostgreSQL): their cv_events rows load first, new batches after
    them, and compaction removes both (a straddling batch is rewritten)."""
    import dataclasses
    import json
    m = machine("account")
    s = durable_factory()
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    old = envs(m.policy_digest, n=4)
    rows = [(rid("a"), e.origin, e.seq, e.hlc, e.event, ",".join(e.deps),
             None if e.meta is None else json.dumps(e.meta)) for e in old]
    sql = ("INSERT INTO cv_events (replica, origin, seq, hlc, event, deps, meta) VALUES "
           "(?, ?, ?, ?, ?, ?, ?)")
    if isinstance(s, SQLiteStore):
        s._conn().executemany(sql, rows)
    else:
        with s._conn().cursor() as cur:  # type: ignore[attr-defined]
            cur.executemany(sql.replace("?", "%s"), rows)
    s.close()
    s = durable_factory()
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    assert s.load()[1] == old
    more = envs(m.policy_digest, n=8)[4:]
    s.append(more[:2])
    s.append(more[2:])
    assert s.load()[1] == old + more and s.count() == 8
    with pytest.raises(StoreError, match="already stored"):
        s.append(more[:1])
    snap = Replica(m, id="a", store=MemoryStore()).snapshot()
    cut = dataclasses.replace(snap, horizon=more[2].hlc, version={"o": 7}, events=7)
    assert s.compact(cut) == 7
    assert s.load()[1] == more[3:] and s.count() == 1
    s.close()


def test_a_changed_machine_cannot_reopen_an_old_sqlite_log(tmp_path: Path) -> None:
    r = Registry("account")
    n = r.int("n", 0, 3)
    r.event("inc", apply=lambda s: s.set(n, s[n] + 1))
    old = r.build()
    Replica(old, id="a", store=f"sqlite:///{tmp_path}/a.db").close()
    r2 = Registry("account")
    n2 = r2.int("n", 0, 4)  # a wider domain: another policy
    r2.event("inc", apply=lambda s: s.set(n2, s[n2] + 1))
    with pytest.raises(PolicyMismatchError) as info:
        Replica(r2.build(), id="a", store=f"sqlite:///{tmp_path}/a.db")
    assert info.value.got == old.policy_digest


# ---------------------------------------------------------------- kill -9


def _crash_rounds(url: str, rid: str, rounds: int, check: Callable[[Replica], None],
                  compact: bool = False) -> int:
    m = machine("account")
    rng = random.Random(rid)
    recovered = 0
    total_kills = 0
    for k in range(rounds):
        proc = subprocess.Popen([sys.executable, "-m", "tests.runtime.crash_child", url, rid,
                                 str(k), *(["compact"] if compact else [])], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[0] == "started", first
        assert int(first[1]) == recovered, "the child did not start from the recovered log"
        acked = 0
        for _ in range(rng.randint(3, 25)):
            line = proc.stdout.readline().split()
            assert line and line[0] == "acked", line
            acked = int(line[1])
        time.sleep(rng.random() * 0.02)
        proc.kill()                       # kill -9, in the middle of appends
        proc.wait()
        total_kills += 1
        replica = Replica(m, id=rid, store=open_store(url))
        try:
            assert replica.accepted >= acked, "an acknowledged event was lost"
            base = replica.explain().base
            done = base.version if base is not None else {}
            own = [e for e in replica.log if e.origin == rid]
            first = done.get(rid, 0) + 1
            assert sorted(e.seq for e in own) == list(range(first, first + len(own)))
            sizes = Counter(e.meta["batch"] for e in own)
            # (the oldest batch left may have been cut by compaction)
            cut = own[0].meta["batch"] if base is not None and own else None
            for e in own:  # every committed batch is whole: nothing half-written
                if e.meta["batch"] != cut:
                    assert sizes[e.meta["batch"]] == e.meta["size"], e
            peer = sorted(e.seq for e in replica.log if e.origin == "p")
            first = done.get("p", 0) + 1
            assert peer == list(range(first, first + len(peer)))
            assert len({e.id for e in replica.log}) == len(replica.log)
            assert replica.accepted == sum(replica.version.values())
            if base is None:
                assert replica.state == canonical_state(m, replica.log)
            check(replica)
            recovered = replica.accepted
        finally:
            replica.close()
    return total_kills


def test_sqlite_crash_recovery(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crash.db"

    def check(replica: Replica) -> None:
        assert isinstance(replica.store, SQLiteStore)
        assert replica.store.integrity_check() == "ok"

    assert _crash_rounds(url, "r1", 4, check) == 4


@pytest.mark.server
def test_postgres_crash_recovery(postgres_url: str, rid: Callable[[str], str]) -> None:
    assert _crash_rounds(postgres_url, rid("r1"), 3, lambda r: None) == 3


def _compacted(replica: Replica) -> None:
    assert replica.explain().base is not None or replica.accepted < 400


@pytest.mark.slow
def test_sqlite_crash_recovery_while_compacting(tmp_path: Path) -> None:
    """The batch layout's compaction (snapshot, deleted batches, a batch
    that straddles the horizon rewritten) is one transaction too: killed
    at any point, nothing acknowledged is lost and nothing doubles."""
    assert _crash_rounds(f"sqlite:///{tmp_path}/crash.db", "r1", 4, _compacted,
                         compact=True) == 4


@pytest.mark.server
def test_postgres_crash_recovery_while_compacting(postgres_url: str,
                                                  rid: Callable[[str], str]) -> None:
    assert _crash_rounds(postgres_url, rid("r1"), 3, _compacted, compact=True) == 3


# ---------------------------------------------------------------- the batch layout


def test_a_batch_is_one_row(durable_factory: Callable[[], Store],
                            rid: Callable[[str], str]) -> None:
    """SQLite and PostgreSQL write a batch as one row (one insert per
    commit, whatever its size), and read it back exactly."""
    m = machine("account")
    s = durable_factory()
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    batch = envs(m.policy_digest, n=500)
    s.append(batch[:100])
    s.append(batch[100:])
    db = s._conn()  # type: ignore[attr-defined]
    q = "SELECT count(*), sum(n) FROM cv_batches WHERE replica = " + (
        "?" if isinstance(s, SQLiteStore) else "%s")
    assert tuple(db.execute(q, (rid("a"),)).fetchone()) == (2, 500)
    assert s.load()[1] == batch and s.count() == 500
    s.close()


@pytest.mark.server
def test_postgres_retry_of_a_commit_whose_answer_was_lost(postgres_url: str,
                                                          rid: Callable[[str], str]) -> None:
    """The connection breaks after the server committed: the replica queues
    the batch again and retries. The retry must neither store it twice nor
    fail for good; a batch partly stored is still refused."""
    from convergent.runtime.stores.postgres import PostgresStore
    m = machine("account")
    s = PostgresStore(postgres_url)
    s.open(replica=rid("a"), machine=m.name, policy=m.policy_digest)
    batch = envs(m.policy_digest, n=5)
    s.append(batch)                               # committed...
    # ...but the answer was lost: the store drops the connection as on any
    # failed call (the next call reconnects)
    s._fail("commit answer", ConnectionResetError("connection reset"))
    s.append(batch)                               # the retry: a no-op
    assert s.count() == 5 and s.load()[1] == batch
    with pytest.raises(StoreError, match="already stored"):
        s.append(batch[3:] + envs(m.policy_digest, origin="z", n=1))
    s.close()
