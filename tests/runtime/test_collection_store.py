"""Durable collection replicas: a restart from the store gives back the same
collection (keys, totals, shares, version, log), a failed write leaves
nothing half-applied, a stored row that does not replay is named, one
process per replica, and kill -9 at any moment loses no returned event."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.runtime.collection import (
    CollectionReplica,
    MemoryCollectionStore,
    SQLiteCollectionStore,
    open_collection_store,
)
from convergent.runtime.stores.collection import PostgresCollectionStore
from convergent.runtime.errors import PolicyMismatchError, StoreError

from .test_collection_replica import (
    EVENT_MIX,
    KEYS,
    Net,
    accounts,
    converged,
    holds,
    owner_of,
    program_of,
)

ROOT = Path(__file__).resolve().parents[2]


def snapshot(r: CollectionReplica) -> tuple[Any, ...]:
    shares = tuple(r.share(a.name, o) for a in r.machine.aggregates for o in r.replicas)
    return r.state, r.version, r.log, tuple(r.totals().items()), shares


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A durable collection store's URL (PostgreSQL: the session's server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_a_restart_gives_back_the_collection(store_url: str) -> None:
    cm = accounts(capacity=3, frozen=1)
    tag = uuid.uuid4().hex[:8]     # replicas of their own in a shared database
    a_id, b_id = f"a{tag}", f"b{tag}"
    ids = [a_id, b_id]
    owner = owner_of(ids)
    a = CollectionReplica(cm, a_id, replicas=ids, owner=owner, store=store_url)
    b = CollectionReplica(cm, b_id, replicas=ids, owner=owner,
                          store=open_collection_store(store_url))
    sent = [a.emit("k0", "approve").envelope, a.emit("k0", "grant").envelope,
            a.transfer("capacity", b_id, 1)]
    b.receive(sent)
    b.emit("k1", "approve")
    b.emit("k1", "grant")
    a.receive(b.missing_for(a.version))
    before = snapshot(a), snapshot(b)
    a.close()
    b.close()
    a2 = CollectionReplica(cm, a_id, replicas=ids, owner=owner, store=store_url)
    b2 = CollectionReplica(cm, b_id, replicas=ids, owner=owner, store=store_url)
    assert (snapshot(a2), snapshot(b2)) == before
    assert a2.available("capacity") == 0 and b2.available("capacity") == 1
    assert a2.emit("k0", "grant").refused == "aggregate:capacity"   # the share was given away
    nxt = a2.emit("k0", "repay").envelope
    assert nxt is not None and nxt.seq == 4                          # numbering goes on
    assert b2.receive(nxt) == 1 and b2.state == a2.state
    if store_url.startswith("postgres"):   # (SQLite's lock is per process: a test below)
        with pytest.raises(StoreError, match="open in another session"):
            CollectionReplica(cm, a_id, replicas=ids, owner=owner,
                              store=PostgresCollectionStore(store_url, lock_timeout=0.2))
    a2.close()
    b2.close()


def test_a_failed_write_leaves_what_the_store_holds() -> None:
    cm = accounts(capacity=3, frozen=1)
    ids = ["a", "b"]
    owner = owner_of(ids)
    sa, sb = MemoryCollectionStore(), MemoryCollectionStore()
    a = CollectionReplica(cm, "a", replicas=ids, owner=owner, store=sa)
    b = CollectionReplica(cm, "b", replicas=ids, owner=owner, store=sb)
    first = a.emit("k0", "approve").envelope
    before = snapshot(a)
    sa.fail_next = True
    with pytest.raises(StoreError, match="injected"):
        a.emit("k0", "grant")
    assert snapshot(a) == before and a.available("capacity") == 2
    with pytest.raises(StoreError):
        sa.fail_next = True
        a.transfer("capacity", "b", 1)
    assert snapshot(a) == before
    again = a.emit("k0", "grant").envelope
    assert again is not None and again.seq == 2        # the failed ones were never issued
    sb.fail_next = True
    with pytest.raises(StoreError):
        b.receive([first, again])
    assert b.version == {"a": 0, "b": 0} and b.log == () and b.pending == ()
    assert b.receive(a.missing_for(b.version)) == 2 and b.state == a.state
    reopened = CollectionReplica(cm, "b", replicas=ids, owner=owner, store=sb)
    assert snapshot(reopened) == snapshot(b)


def _rows(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as c:
        return list(c.execute("SELECT pos, data FROM cv_collection_log WHERE replica = 'a' "
                              "ORDER BY pos"))


@pytest.mark.parametrize("edit, message", [
    (lambda d: {**d, "amount": 3}, "row 2 .* does not replay: it gives away more"),
    (lambda d: {**d, "seq": 5, "deps": {**d["deps"], "a": 4}}, "row 2 .* not the next envelope"),
    (lambda d: {**d, "kind": "event"}, "row 2 is not an envelope"),
    (lambda d: {**d, "policy": "0" * 64}, "row 2 is not an envelope"),
    (lambda d: [d], "row 2 is not an envelope"),
])
def test_a_stored_row_that_does_not_replay_is_named(tmp_path: Path, edit: Any,
                                                    message: str) -> None:
    cm = accounts(capacity=3, frozen=1)
    ids = ["a", "b"]
    db = tmp_path / "c.db"
    a = CollectionReplica(cm, "a", replicas=ids, owner=owner_of(ids),
                          store=SQLiteCollectionStore(db))
    a.emit("k0", "approve")
    a.emit("k0", "grant")
    a.transfer("capacity", "b", 1)
    a.close()
    pos, data = _rows(db)[2]
    with sqlite3.connect(db) as c:
        c.execute("UPDATE cv_collection_log SET data = ? WHERE replica = 'a' AND pos = ?",
                  (json.dumps(edit(json.loads(data))), pos))
    with pytest.raises(StoreError, match=message):
        CollectionReplica(cm, "a", replicas=ids, owner=owner_of(ids),
                          store=SQLiteCollectionStore(db))
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM cv_collection_log WHERE replica = 'a' AND pos = 1")
    with pytest.raises(StoreError, match="row 1 is missing"):
        CollectionReplica(cm, "a", replicas=ids, owner=owner_of(ids),
                          store=SQLiteCollectionStore(db))


def test_another_collection_or_a_second_process_cannot_open_it(tmp_path: Path) -> None:
    ids = ["a", "b"]
    db = tmp_path / "c.db"
    a = CollectionReplica(accounts(3, 1), "a", replicas=ids, store=SQLiteCollectionStore(db))
    mine = next(k for k in KEYS if a.owner(k) == "a")
    assert a.emit(mine, "approve").admitted
    a.close()
    with pytest.raises(PolicyMismatchError, match="another collection"):
        CollectionReplica(accounts(4, 1), "a", replicas=ids, store=SQLiteCollectionStore(db))
    held = CollectionReplica(accounts(3, 1), "a", replicas=ids, store=SQLiteCollectionStore(db))
    code = ("import sys; from convergent.runtime.stores.collection import "
            "SQLiteCollectionStore as S; s = S(sys.argv[1]); s.open(replica='a', "
            "policy=sys.argv[2])")
    p = subprocess.run([sys.executable, "-c", code, str(db), held.policy],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "open in another process" in p.stderr
    held.close()
    p = subprocess.run([sys.executable, "-c", code, str(db), held.policy],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), length=st.integers(20, 120),
       restarts=st.integers(1, 12), failures=st.integers(0, 6))
def test_restarts_and_failed_writes_anywhere_keep_the_model(seed: int, length: int,
                                                            restarts: int,
                                                            failures: int) -> None:
    """The simulated network of test_collection_replica with every replica
    on a store: replicas restart between any two steps (the pending buffer
    is lost, anti-entropy brings it back) and writes fail at random; every
    aggregate holds everywhere at every step, a restart gives back what was
    there, and the replicas converge."""
    cm = accounts(capacity=4, frozen=1)
    ids = ["r0", "r1", "r2"]
    owner = owner_of(ids)
    stores = {r: MemoryCollectionStore() for r in ids}
    net = Net({r: CollectionReplica(cm, r, replicas=ids, owner=owner, store=stores[r])
               for r in ids})
    rnd = random.Random(seed)
    # every run opens and grants on a few keys first, so that the limits bind
    program = [("emit", k, 0) for k in range(4)] + [("emit", k, 1) for k in range(4)]
    program += program_of(seed, length)
    length = len(program)
    restart_at = {rnd.randrange(length) for _ in range(restarts)}
    fail_at = {rnd.randrange(length) for _ in range(failures)}
    seen = {"restart": 0, "failed": 0, "emitted": 0}
    for step, op in enumerate(program):
        if step in fail_at:
            stores[rnd.choice(ids)].fail_next = True
        try:
            if op[0] == "emit":
                key = KEYS[op[1]]
                out = net.replicas[owner(key)].emit(key, EVENT_MIX[op[2] % len(EVENT_MIX)])
                net.broadcast(out.envelope)
                seen["emitted"] += out.envelope is not None
            elif op[0] == "transfer":
                src, to = ids[op[1] % 3], ids[op[3] % 3]
                agg = cm.aggregates[op[2] % len(cm.aggregates)].name
                if src != to and 1 <= op[4] <= net.replicas[src].available(agg):
                    net.broadcast(net.replicas[src].transfer(agg, to, op[4]))
            elif op[0] == "deliver":
                net.deliver(op[1])
            elif op[0] == "sync" and op[1] % 3 != op[2] % 3:
                net.sync(ids[op[1] % 3], ids[op[2] % 3])
        except StoreError:
            seen["failed"] += 1
        for r in ids:
            stores[r].fail_next = False
        if step in restart_at:
            r = rnd.choice(ids)
            old = net.replicas[r]
            new = CollectionReplica(cm, r, replicas=ids, owner=owner, store=stores[r])
            assert snapshot(new) == snapshot(old)
            net.replicas[r] = new
            seen["restart"] += 1
        for rep in net.replicas.values():
            holds(rep)
            assert snapshot(rep) == snapshot(
                CollectionReplica(cm, rep.id, replicas=ids, owner=owner, store=stores[rep.id]))
    assert seen["restart"] >= 1 and seen["emitted"] >= 1
    converged(net)


# ---------------------------------------------------------------- kill -9

CHILD = """
import random, sys
sys.path[:0] = [sys.argv[3], sys.argv[3] + "/tests"]
from tests.runtime.test_collection_replica import accounts, owner_of
from convergent.runtime.collection import CollectionReplica, SQLiteCollectionStore
ids = ["a", "b"]
owner = owner_of(ids)
rep = CollectionReplica(accounts(6, 2), "a", replicas=ids, owner=owner,
                        store=SQLiteCollectionStore(sys.argv[1]))
rnd = random.Random(int(sys.argv[2]) + rep.version["a"])
keys = [k for k in ("k0", "k2", "k4")]
print("started", rep.version["a"], flush=True)
while True:
    if rnd.random() < 0.1 and rep.available("capacity") > 0:
        env = rep.transfer("capacity", "b", 1)
    else:
        env = rep.emit(rnd.choice(keys), rnd.choice(["approve", "grant", "grant", "repay",
                                                     "freeze", "thaw"])).envelope
    if env is not None:
        print("acked", env.seq, flush=True)
"""


@pytest.mark.slow
def test_kill_9_at_any_moment_loses_no_returned_envelope(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    rnd = random.Random(7)
    acked = 0
    for round_ in range(12):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(round_), str(ROOT)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith("started"), p.stderr.read() if p.stderr else line
        assert int(line.split()[1]) >= acked      # everything acknowledged came back
        time.sleep(rnd.uniform(0.05, 0.4))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate(timeout=60)
        complete = out.split("\n")[:-1]      # a kill can cut the last line short
        seqs = [int(x.split()[1]) for x in complete if x.startswith("acked")]
        acked = max([acked, *seqs])
    ids = ["a", "b"]
    last = CollectionReplica(accounts(6, 2), "a", replicas=ids, owner=owner_of(ids),
                             store=SQLiteCollectionStore(db))
    assert acked > 20 and last.version["a"] >= acked
    holds(last)
    # a peer that receives the whole stored log agrees on everything
    peer = CollectionReplica(accounts(6, 2), "b", replicas=ids, owner=owner_of(ids))
    peer.receive(list(last.log))
    assert peer.state == last.state and peer.share("capacity") == last.share("capacity", "b")
