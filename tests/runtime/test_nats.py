"""Replicas over a real nats-server (JetStream), in one process and as three
OS processes with the server stopped, wiped and restarted in the middle."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from convergent import Registry
from convergent.runtime import Replica, ReplicaError, SQLiteStore, open_store

from .helpers import canonical, canonical_state, machine
from .servers import NatsServer

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]
SPEC = "tests/runtime/machines.py:account"


async def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_replicas_converge_over_nats_through_a_server_restart(
        nats_server: NatsServer, tmp_path: Path) -> None:
    from convergent.runtime import NatsTransport, ReplicaService
    m = machine("account")

    async def main() -> list[Replica]:
        services = []
        for i in ("a", "b", "c"):
            t = NatsTransport(nats_server.url, sync_interval=0.3)
            r = Replica(m, id=i, store=SQLiteStore(tmp_path / f"{i}.db"), transport=t,
                        autoflush=False)
            services.append(ReplicaService(r, t))
        for s in services:
            await s.start()
        gens = [asyncio.create_task(s.generate(600, rate=1500, seed=k))
                for k, s in enumerate(services)]
        await asyncio.sleep(0.2)
        nats_server.restart(pause=0.3)          # a partition of everyone from everyone
        await asyncio.gather(*gens)
        reps = [s.replica for s in services]
        await _wait(lambda: all(r.accepted == 1800 for r in reps), 30, "1800 events each")
        assert all(s.transport.counters["reconnects"] >= 1 for s in services)
        for s in services:
            await s.aclose()
        return reps

    reps = asyncio.run(main())
    assert len({r.state for r in reps}) == 1
    logs = [[e.id for e in r.log] for r in reps]
    assert logs[0] == logs[1] == logs[2] and len(set(logs[0])) == 1800
    assert reps[0].state == canonical_state(m, reps[0].log)


def test_another_policy_is_refused_over_nats(nats_server: NatsServer, tmp_path: Path) -> None:
    from convergent.runtime import NatsTransport, ReplicaService
    m = machine("account")
    r2 = Registry("account")            # same name, another meaning
    bal = r2.int("balance", 0, 99)
    r2.event("deposit", apply=lambda s: s.set(bal, s[bal] + 1))
    other = r2.build()

    async def main() -> tuple[Replica, Any]:
        ta, tb = NatsTransport(nats_server.url), NatsTransport(nats_server.url)
        a = Replica(m, id="a", store=SQLiteStore(tmp_path / "a.db"), transport=ta,
                    autoflush=False)
        b = Replica(other, id="b", store=SQLiteStore(tmp_path / "b.db"), transport=tb,
                    autoflush=False)
        sa, sb = ReplicaService(a, ta), ReplicaService(b, tb)
        await sa.start()
        await sb.start()
        b.emit("deposit")
        await _wait(lambda: ta.counters["refused"] > 0, 10, "a refusal")
        await sa.aclose()
        await sb.aclose()
        return a, ta

    a, ta = asyncio.run(main())
    assert a.log == () and a.state == m.initial
    assert any("policy" in msg and "refused" in msg for _, msg in ta.errors)


def test_a_slow_store_does_not_stall_the_service(nats_server: NatsServer, tmp_path: Path) -> None:
    """Replica a commits to a store that takes 0.4 s per call (as a remote
    database may): its service keeps answering, publishing and consuming in
    the meantime, and both replicas end with the same events."""
    from convergent.runtime import MemoryStore, NatsTransport, ReplicaService

    from .test_async_store import MAX_GAP, Heartbeat, SlowStore
    m = machine("account")

    async def main() -> tuple[list[Replica], Heartbeat, SlowStore]:
        store = SlowStore()
        ta, tb = NatsTransport(nats_server.url, sync_interval=0.3), \
            NatsTransport(nats_server.url, sync_interval=0.3)
        a = Replica(m, id="a", store=store, transport=ta, autoflush=False)
        tx = NatsTransport(nats_server.url)
        with pytest.raises(ReplicaError, match="autoflush=False"):
            ReplicaService(Replica(m, id="x", store=SlowStore(), transport=tx), tx)
        b = Replica(m, id="b", store=MemoryStore(), transport=tb, autoflush=False)
        sa, sb = ReplicaService(a, ta), ReplicaService(b, tb)
        await sa.start()
        await sb.start()
        async with Heartbeat() as hb:
            await asyncio.gather(sa.generate(150, rate=150, seed=1),
                                 sb.generate(150, rate=150, seed=2))
            await _wait(lambda: a.accepted == b.accepted == 300 and not a._unflushed
                        and a._inflight is None, 30, "300 events each")
        await sa.aclose()
        await sb.aclose()
        return [a, b], hb, store

    (a, b), hb, store = asyncio.run(main())
    assert hb.max_gap < MAX_GAP, f"the loop stalled {hb.max_gap:.3f}s"
    assert len(store.batches) >= 3 and store.count() == 300
    assert a.state == b.state and [e.id for e in a.log] == [e.id for e in b.log]


def test_a_new_replica_joins_over_nats_after_compaction(
        nats_server: NatsServer, tmp_path: Path) -> None:
    """a and b compact, and the stream is purged (as retention limits would);
    c starts with an empty store. Its first anti-entropy request gets their
    snapshot, then the events after it; c converges and its own events reach
    the others."""
    from convergent.runtime import NatsTransport, ReplicaService
    m = machine("account")

    def service(i: str, peers: list[str]) -> ReplicaService:
        t = NatsTransport(nats_server.url, sync_interval=0.2)
        r = Replica(m, id=i, store=SQLiteStore(tmp_path / f"{i}.db"), transport=t,
                    autoflush=False, peers=peers)
        return ReplicaService(r, t)

    async def main() -> list[Replica]:
        sa, sb = service("a", ["a", "b"]), service("b", ["a", "b"])
        await sa.start()
        await sb.start()
        await asyncio.gather(sa.generate(100, rate=2000, seed=1),
                             sb.generate(100, rate=2000, seed=2))
        a, b = sa.replica, sb.replica
        await _wait(lambda: a.accepted == b.accepted == 200, 20, "200 events each")
        compacted = {"a": 0, "b": 0}

        async def compact() -> bool:
            for s in (sa, sb):
                compacted[s.replica.id] += await s.replica.acompact()
            return all(compacted.values())
        deadline = time.monotonic() + 20
        while not await compact():
            assert time.monotonic() < deadline, f"no compaction: {compacted}"
            await asyncio.sleep(0.1)
        await sa.transport.js.purge_stream(sa.transport.stream)
        sc = service("c", ["a", "b", "c"])
        await sc.start()
        c = sc.replica
        # a and b may have compacted different prefixes: c installs the first
        # snapshot it gets, and the other one too when that covers more
        await _wait(lambda: c.accepted == 200 and c.stats.installed >= 1, 20,
                    "c to install a snapshot and catch up")
        await sc.generate(20, rate=2000, seed=3)
        await _wait(lambda: a.accepted == b.accepted == c.accepted == 220, 20, "c's events")
        assert "c" in a.peers and "c" in b.peers
        for s in (sa, sb, sc):
            await s.aclose()
        assert sa.transport.counters["snapshots_sent"] + sb.transport.counters[
            "snapshots_sent"] >= 1
        assert sc.transport.counters["snapshots_installed"] == c.stats.installed >= 1
        return [a, b, c]

    a, b, c = asyncio.run(main())
    assert a.state == b.state == c.state
    assert c.explain().base is not None and c.explain().base.events < 220
    n = min(len(r.log) for r in (a, b, c))
    assert [e.id for e in a.log][-n:] == [e.id for e in b.log][-n:] == [e.id for e in c.log][-n:]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convergent", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_run_emit_status(nats_server: NatsServer, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/r1.db"
    proc = subprocess.Popen([sys.executable, "-m", "convergent", "replica", "run", SPEC,
                             "--id", "r1", "--store", store, "--nats", nats_server.url],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert "running" in proc.stderr.readline()
        p = _cli("emit", SPEC, "deposit", "--id", "r1", "--nats", nats_server.url,
                 "--meta", '{"by": "test"}', "--json")
        assert p.returncode == 0, p.stderr
        reply = json.loads(p.stdout)
        assert reply["ok"] and reply["id"] == "r1:1" and reply["state"]["balance"] == 6
        p = _cli("emit", SPEC, "nope", "--id", "r1", "--nats", nats_server.url)
        assert p.returncode == 2 and "unknown event 'nope'" in p.stderr
        p = _cli("replica", "status", SPEC, "--id", "r1", "--nats", nats_server.url, "--json")
        assert p.returncode == 0, p.stderr
        st = json.loads(p.stdout)
        assert st["accepted"] == 1 and st["pending"] == 0 and st["log"] == 1
        assert st["transport"]["connected"] is True
        p = _cli("replica", "status", SPEC, "--id", "r1", "--nats", nats_server.url)
        assert "pending:  0" in p.stdout and "balance=6" in p.stdout
        p = _cli("replica", "status", SPEC, "--id", "zz", "--nats", nats_server.url,
                 "--timeout", "0.5")
        assert p.returncode == 2 and "no replica answered" in p.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    final = json.loads(out.strip().splitlines()[-1])
    assert final["accepted"] == 1 and final["state"]["balance"] == 6
    # stopped: read the store, append offline, read again
    p = _cli("replica", "status", SPEC, "--id", "r1", "--store", store)
    assert p.returncode == 0 and "unknown (not running)" in p.stdout, p.stderr
    p = _cli("emit", SPEC, "deposit", "--id", "r1", "--store", store, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["id"] == "r1:2", p.stderr
    p = _cli("replica", "status", SPEC, "--id", "r1", "--store", store, "--json")
    assert json.loads(p.stdout)["accepted"] == 2


@pytest.mark.slow
def test_three_processes_ten_thousand_events_with_a_partition(
        nats_server: NatsServer, tmp_path: Path) -> None:
    """Three `convergent replica run` processes each emit 3,400 events at
    ~900/s; a third of the way in, the server stops, loses every stream and
    consumer, and comes back a second later. All three end with the same 10,200 events,
    in the same order, in the same state."""
    ids = ["r1", "r2", "r3"]
    per, total = 3400, 10200
    procs = {}
    for k, rid in enumerate(ids):
        procs[rid] = subprocess.Popen(
            [sys.executable, "-m", "convergent", "replica", "run", SPEC, "--id", rid,
             "--store", f"sqlite:///{tmp_path}/{rid}.db", "--nats", nats_server.url,
             "--peers", ",".join(ids), "--generate", str(per), "--rate", "900",
             "--seed", str(k), "--sync-interval", "0.5", "--status-file",
             str(tmp_path / f"{rid}.json"), "--until-accepted", str(total),
             "--connect-timeout", "30"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180   # generous: CI machines may be loaded
        while True:  # a third of the way in, everywhere
            try:
                seen = [json.loads((tmp_path / f"{rid}.json").read_text()) for rid in ids]
            except (OSError, ValueError):
                seen = []
            if seen and all(s["generated"] >= per // 3 for s in seen):
                break
            assert time.monotonic() < deadline, "the replicas did not start"
            time.sleep(0.05)
        nats_server.restart(wipe=True, pause=1.0)
        outs = {}
        for rid, p in procs.items():
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            outs[rid] = json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    m = machine("account")
    assert {o["accepted"] for o in outs.values()} == {total}
    assert {o["pending"] for o in outs.values()} == {0}
    assert len({o["digest"] for o in outs.values()}) == 1
    status = {rid: json.loads((tmp_path / f"{rid}.json").read_text()) for rid in ids}
    assert all(s["transport"]["reconnects"] >= 1 for s in status.values())
    # anti-entropy answered for what the wiped stream had lost
    assert sum(s["transport"]["sync_sent"] for s in status.values()) > 0
    # the stores: the same 10,200 events, each once, folded in canonical order
    logs = []
    for rid in ids:
        r = Replica(m, id=rid, store=open_store(f"sqlite:///{tmp_path}/{rid}.db",
                                                readonly=True))
        logs.append([e.id for e in r.log])
        assert r.accepted == total and len(set(logs[-1])) == len(logs[-1])
        assert r.state == canonical_state(m, r.log)
        assert [e.id for e in r.log] == [e.id for e in canonical(r.log)]
        assert m.decode(r.state) == outs[rid]["state"]
        r.close()
    assert logs[0] == logs[1] == logs[2]
    assert sum(o["version"][rid] for o in outs.values() for rid in ids) == 3 * total
