"""Replica runtime benchmark.

    python benchmarks/bench_replica.py                  # everything
    python benchmarks/bench_replica.py --events 500000  # bigger
    python benchmarks/bench_replica.py --no-nats        # skip the NATS run

Measures, on the "account" machine (5 events, 168 states):

* emit: events/s for one replica appending to SQLite, batched (one
  transaction per --batch events; synchronous=FULL and NORMAL);
* receive: events/s for remote events arriving in order, and for two origins
  whose concurrent events need repairs (rollback and replay);
* restart: events/s to reload a replica from its SQLite store;
* memory: bytes per buffered (waiting) envelope and per logged event;
* NATS: end-to-end events/s from one replica's emit to another replica's
  commit, through a local nats-server (started here on a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from convergent.machine import Machine
from convergent.runtime import Envelope, Replica, SQLiteStore, decode_batch, encode_batch


def account() -> Machine:
    """The machine the runtime tests replicate (tests/runtime/machines.py):
    benchmark what the tests prove."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "runtime"))
    from machines import account_registry
    return account_registry().build()


def row(label: str, value: float, unit: str) -> None:
    print(f"{label:<52} {value:>14,.0f} {unit}")


def bench_emit(m: Machine, d: str, n: int, batch: int, sync: str) -> Replica:
    path = os.path.join(d, f"emit-{sync}-{batch}.db")
    r = Replica(m, id="r1", store=SQLiteStore(path, synchronous=sync), autoflush=False)
    names = m.events
    t = time.perf_counter()
    for i in range(n):
        r.emit(names[i % 5])
        if i % batch == batch - 1:
            r.flush()
    r.flush()
    dt = time.perf_counter() - t
    row(f"emit, SQLite {sync}, {batch} per transaction", n / dt, "events/s")
    return r


def make_remote(m: Machine, n: int, origins: int) -> list[Envelope]:
    """``n`` events from ``origins`` replicas that never see each other
    (every pair of origins is concurrent), in hlc order."""
    reps = []
    for k in range(origins):
        t = [0]

        def clock(t: list[int] = t, k: int = k) -> int:
            t[0] += 1
            return t[0] * 2 + k   # interleaved timestamps across origins
        reps.append(Replica(m, id=f"o{k}", clock=clock, autoflush=False))
    out = []
    for i in range(n):
        out.append(reps[i % origins].emit(m.events[i % 5]))
    return out


def bench_receive(m: Machine, d: str, n: int, batch: int) -> None:
    remote = make_remote(m, n, 1)
    r = Replica(m, id="r1", store=SQLiteStore(os.path.join(d, "recv.db")), autoflush=False)
    t = time.perf_counter()
    for i in range(0, n, batch):
        r.receive(remote[i:i + batch])
        r.flush()
    row(f"receive in order, SQLite FULL, {batch} per transaction",
        n / (time.perf_counter() - t), "events/s")
    # two concurrent origins, delivered one origin's run late: repairs
    remote = make_remote(m, n, 2)
    a = [e for e in remote if e.origin == "o0"]
    b = [e for e in remote if e.origin == "o1"]
    r = Replica(m, id="r2", store=SQLiteStore(os.path.join(d, "recv2.db")), autoflush=False)
    chunk = 200
    t = time.perf_counter()
    for i in range(0, len(a), chunk):
        r.receive(a[i:i + chunk])       # o0's run first...
        r.receive(b[i:i + chunk])       # ...then o1's, which sorts in between: a repair
        if i % batch < chunk:
            r.flush()
    r.flush()
    dt = time.perf_counter() - t
    row(f"receive with repairs ({r.stats.repairs} repairs, {chunk}-event runs)", n / dt,
        "events/s")


def bench_restart(m: Machine, d: str, n: int) -> None:
    path = os.path.join(d, "emit-full-5000.db")
    if not os.path.exists(path):
        return
    t = time.perf_counter()
    r = Replica(m, id="r1", store=SQLiteStore(path))
    dt = time.perf_counter() - t
    assert r.accepted == n
    row("restart: reload from SQLite", n / dt, "events/s")
    r.close()


def bench_memory(m: Machine, n: int) -> None:
    """Bytes held per envelope, from the wire message to the replica."""
    remote = make_remote(m, n + 1, 1)
    wire = encode_batch(m.name, m.policy_digest, remote[1:])   # all but the first
    first = remote[0]
    del remote
    r = Replica(m, id="r1", autoflush=False)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _, _, envs = decode_batch(wire)
    r.receive(envs)                  # every one waits for the first
    del envs
    gc.collect()
    buffered = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(r._pending) == n
    row("memory per buffered envelope (decoded, waiting)", buffered / n, "bytes")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    r.receive(first)                 # now all are applied: logged, not pending
    r._unflushed.clear()
    r._changed.clear()
    gc.collect()
    delta = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert r.accepted == n + 1 and not r._pending
    row("memory per logged event (buffered + delta on apply)", (buffered + delta) / n, "bytes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_nats(m: Machine, d: str, n: int) -> None:
    binary = shutil.which("nats-server") or ("/usr/sbin/nats-server"
                                            if os.path.exists("/usr/sbin/nats-server") else None)
    try:
        from convergent.runtime import NatsTransport, ReplicaService
    except ImportError:
        print("NATS: skipped (pip install nats-py)")
        return
    if binary is None:
        print("NATS: skipped (nats-server not found; apt-get install nats-server)")
        return
    port = free_port()
    srv = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                            os.path.join(d, "js")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)

        async def main() -> tuple[float, Any]:
            url = f"nats://127.0.0.1:{port}"
            svcs = []
            for i in ("a", "b"):
                t = NatsTransport(url, sync_interval=5.0)
                r = Replica(m, id=i, store=SQLiteStore(os.path.join(d, f"nats-{i}.db")),
                            transport=t, autoflush=False)
                svcs.append(ReplicaService(r, t, flush_interval=0.01))
            for s in svcs:
                await s.start()
            a, b = svcs[0].replica, svcs[1].replica
            t0 = time.perf_counter()
            for i in range(n):
                a.emit(m.events[i % 5])
                if i % 2000 == 1999:
                    await asyncio.sleep(0)      # let the flusher and the transport run
            while b.accepted < n:
                await asyncio.sleep(0.005)
            dt = time.perf_counter() - t0
            for s in svcs:
                await s.aclose()
            return dt, a.state == b.state

        dt, same = asyncio.run(main())
        assert same
        row("NATS end to end: emit at A -> committed at B", n / dt, "events/s")
    finally:
        srv.terminate()
        srv.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--nats-events", type=int, default=50_000)
    ap.add_argument("--memory-events", type=int, default=100_000)
    ap.add_argument("--no-nats", action="store_true")
    args = ap.parse_args()
    m = account()
    print(f"python {sys.version.split()[0]}, machine {m.name}: {m.size} states, "
          f"{len(m.events)} events")
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as d:
        bench_emit(m, d, args.events, args.batch, "full").close()
        bench_emit(m, d, args.events, args.batch, "normal").close()
        bench_emit(m, d, args.events // 4, 1000, "full").close()
        bench_restart(m, d, args.events)
        bench_receive(m, d, args.events, args.batch)
        bench_memory(m, args.memory_events)
        if not args.no_nats:
            bench_nats(m, d, args.nats_events)


if __name__ == "__main__":
    main()
