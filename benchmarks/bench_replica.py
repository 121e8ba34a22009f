"""Replica runtime benchmark: every figure of the speed section of issue 12.

    python benchmarks/bench_replica.py                   # everything
    python benchmarks/bench_replica.py --quick           # smaller counts
    python benchmarks/bench_replica.py --no-nats         # skip the NATS runs
    python benchmarks/bench_replica.py --postgres auto   # + PostgreSQL (a throwaway
                                                         #   cluster, or give a URL)
    python benchmarks/bench_replica.py --before none     # skip the "before" runs

Measures, on the "account" machine (5 events, 168 states), and prints with
the machine, the date and the load average:

* memory: events/s to emit and to receive with no store (one by one, and
  through the batched ``emit_many``/``receive`` of a whole list); the
  batched ones also **before and after** (``--memory-before``, default the
  commit before ``emit_many`` kept rows), alternating as below;
* the lagging-origin cliff: 4 origins at 1 and at 10 events per ms each,
  one of them delivered 100 ms late (its events sort before applied ones:
  repairs), in calls of 1 ms of traffic and of one envelope (receive from
  "one origin lagging 100 ms"); **before and after**: the
  "before" figures run the same code against the library of ``--before``
  (a git revision, default the commit before the batched replays), unpacked
  with ``git archive`` into a temporary directory (the work tree and git
  state are left alone), in alternation with the current one;
* durable: ``emit_many`` into SQLite with synchronous=FULL at 1,000 and
  5,000 events per transaction, beside the ``eventsourcing`` library (an
  aggregate of the same kind, 1,000 and 5,000 events per ``save``, its
  SQLite module: WAL, synchronous FULL by default) **in the same run**, with
  the ratio; also synchronous=NORMAL, one ``emit`` per event, receive in
  order, receive with repairs, and the reload at restart;
* PostgreSQL (with ``--postgres``): ``emit_many`` at 1,000 per transaction,
  before and after;
* memory per buffered envelope and per logged event;
* NATS: end-to-end events/s from one replica's emit to another replica's
  commit, through a local nats-server (started here on a free port), and an
  anti-entropy catch-up of 20,000 events (one batched receive per answer).

The machine is shared: each rate is the best of ``--runs`` runs (the least
disturbed one); take the figures as lower bounds and the ratios as the
information.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: the library the "before" figures run against: the commit before the
#: batched replays, answers and PostgreSQL batch rows
BEFORE = "f1b8f83"
#: the in-memory figures' "before": the commit before emit_many kept rows
MEMORY_BEFORE = "eac71df"

Row = tuple[str, float, str]


def account() -> Any:
    """The machine the runtime tests replicate (tests/runtime/machines.py):
    benchmark what the tests prove."""
    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from machines import account_registry
    return account_registry().build()


def row(label: str, value: float, unit: str = "events/s") -> None:
    print(f"{label:<70} {value:>14,.0f} {unit}", flush=True)


CPU: dict[str, float] = {}
"""The shortest CPU time (``process_time``) of the last ``best_of`` call, by
label: on a loaded machine, what the CPU allows when the process runs."""


def best_of(runs: int, fn: Callable[[], Any]) -> float:
    """The shortest of ``runs`` timings of ``fn()`` (the machine is shared:
    the shortest run is the one least disturbed by other work)."""
    best = cpu = float("inf")
    for _ in range(runs):
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    CPU["last"] = cpu
    return best


def cpu_row(label: str, n: int) -> None:
    """The same figure by CPU time (in memory only: no I/O waits in it)."""
    row(f"  {label}, by CPU time", n / CPU["last"])


# ---------------------------------------------------------------- in memory


def make_remote(m: Any, n: int, origins: int) -> list[Any]:
    """``n`` events from ``origins`` replicas that never see each other
    (every pair of origins is concurrent), in hlc order."""
    from convergent.runtime import Replica
    reps = []
    for k in range(origins):
        t = [0]

        def clock(t: list[int] = t, k: int = k) -> int:
            t[0] += 1
            return t[0] * 2 + k   # interleaved timestamps across origins
        reps.append(Replica(m, id=f"o{k}", clock=clock, autoflush=False))
    return [reps[i % origins].emit(m.events[i % 5]) for i in range(n)]


def memory_rates(m: Any, n: int, runs: int) -> None:
    """No store: the replica's own cost (what the CPU allows)."""
    from convergent.runtime import Replica
    names = m.events
    evs = [names[i % 5] for i in range(n)]

    def emit_one() -> None:
        r = Replica(m, id="r1", autoflush=False)
        for e in evs[:n // 4]:
            r.emit(e)
    row("emit in memory, one call per event", n // 4 / best_of(runs, emit_one))
    cpu_row("emit in memory, one call per event", n // 4)

    def emit_bulk() -> None:
        r = Replica(m, id="r1", autoflush=False)
        for i in range(0, n, 10_000):
            r.emit_many(evs[i:i + 10_000])
    row("emit in memory, emit_many of 10,000", n / best_of(runs, emit_bulk))
    cpu_row("emit in memory, emit_many of 10,000", n)

    def emit_bulk_committed() -> None:
        # what autoflush does: each call also commits into the memory store
        # and would broadcast (no transport here)
        r = Replica(m, id="r1")
        for i in range(0, n, 10_000):
            r.emit_many(evs[i:i + 10_000])
    row("emit in memory, emit_many of 10,000, committed to a MemoryStore",
        n / best_of(runs, emit_bulk_committed))
    remote = make_remote(m, n, 1)

    def receive_one() -> None:
        r = Replica(m, id="r2", autoflush=False)
        for e in remote[:n // 10]:
            r.receive(e)
    row("receive in memory, one call per envelope", n // 10 / best_of(runs, receive_one))
    cpu_row("receive in memory, one call per envelope", n // 10)

    def receive_bulk() -> None:
        r = Replica(m, id="r2", autoflush=False)
        for i in range(0, n, 10_000):
            r.receive(remote[i:i + 10_000])
    row("receive in memory, batches of 10,000", n / best_of(runs, receive_bulk))
    cpu_row("receive in memory, batches of 10,000", n)


def memory_bulk(m: Any, n: int) -> dict[str, float]:
    """One run of the batched in-memory paths (the measure the "before"
    library runs too): ``emit_many`` and ``receive`` of lists of 10,000."""
    from convergent.runtime import Replica
    names = m.events
    evs = [names[i % 5] for i in range(n)]
    remote = make_remote(m, n, 1)

    def emit_bulk() -> None:
        r = Replica(m, id="r1", autoflush=False)
        for i in range(0, n, 10_000):
            r.emit_many(evs[i:i + 10_000])

    def receive_bulk() -> None:
        r = Replica(m, id="r2", autoflush=False)
        for i in range(0, n, 10_000):
            r.receive(remote[i:i + 10_000])
    return {"emit": n / best_of(1, emit_bulk), "receive": n / best_of(1, receive_bulk)}


def lagging(m: Any, ms: int, runs: int, one_by_one: bool, per_ms: int = 1) -> float:
    """The lagging-origin cliff: 4 origins at ``per_ms`` events per ms each,
    the first delivered 100 ms late, handed over in calls of 1 ms of traffic
    (or one envelope per call); events/s, best of ``runs``, the state read
    at the end (a deferred replay is paid for)."""
    from convergent.runtime import Replica
    origins, lag = 4, 100
    names = m.events
    now = [0]
    reps = [Replica(m, id=f"o{k}", clock=lambda: now[0], autoflush=False)
            for k in range(origins)]
    events: list[list[Any]] = [[] for _ in range(ms + lag + 1)]
    for t_ms in range(ms):
        now[0] = t_ms
        for k, rep in enumerate(reps):
            for j in range(per_ms):
                events[t_ms + (lag if k == 0 else 0)].append(
                    rep.emit(names[(t_ms + k + j) % 5]))
    total = sum(len(b) for b in events)

    def run() -> None:
        r = Replica(m, id="lag", autoflush=False)
        for b in events:
            if one_by_one:
                for e in b:
                    r.receive(e)
            elif b:
                r.receive(b)
        r.state  # noqa: B018 - reading the state pays for any deferred replay
        assert r.accepted == total
    return total / best_of(runs, run)


# ---------------------------------------------------------------- durable


def sqlite_emit(m: Any, d: str, n: int, batch: int, sync: str = "full",
                bulk: bool = True) -> float:
    from convergent.runtime import Replica, SQLiteStore
    path = os.path.join(d, f"emit-{sync}-{batch}-{bulk}-{uuid.uuid4().hex[:6]}.db")
    r = Replica(m, id="r1", store=SQLiteStore(path, synchronous=sync), autoflush=False)
    names = m.events
    evs = [names[i % 5] for i in range(batch)]
    t = time.perf_counter()
    if bulk:
        for _ in range(n // batch):
            r.emit_many(evs)
            r.flush()
    else:
        for i in range(n):
            r.emit(names[i % 5])
            if i % batch == batch - 1:
                r.flush()
    r.flush()
    dt = time.perf_counter() - t
    r.close()
    return n / dt


def _es_classes() -> tuple[Any, Any]:
    """The eventsourcing counter of benchmarks/bench_durable.py (the library
    refuses a second class under the same topic, so both scripts drive one)."""
    from bench_durable import _es_classes as classes
    return classes()


def eventsourcing_save(d: str, n: int, per_save: int) -> float | None:
    """The ``eventsourcing`` library: one aggregate, ``per_save`` events per
    ``save`` into its SQLite module (WAL; synchronous is SQLite's default,
    FULL), the way benchmarks/bench_durable.py drives it. None when the
    library is not installed."""
    try:
        counter_cls, app_cls = _es_classes()
    except ImportError:
        return None
    app = app_cls(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                       "SQLITE_DBNAME": os.path.join(d, f"es-{uuid.uuid4().hex}.db")})
    c = counter_cls()
    app.save(c)
    t = time.perf_counter()
    for _ in range(n // per_save):
        for _ in range(per_save):
            c.tick()
        app.save(c)
    return n // per_save * per_save / (time.perf_counter() - t)


def durable_vs_eventsourcing(m: Any, d: str, n: int, runs: int) -> None:
    """convergent and eventsourcing alternately, best of ``runs`` each."""
    for batch in (1000, 5000):
        ours = theirs = 0.0
        for _ in range(runs):
            ours = max(ours, sqlite_emit(m, d, n, batch))
            es = eventsourcing_save(d, n // 2, batch)
            theirs = max(theirs, es or 0.0)
        row(f"emit_many, SQLite FULL, {batch:,} per transaction", ours)
        if theirs:
            row(f"eventsourcing 9.x, SQLite, {batch:,} events per save", theirs)
            goal = "goal 2x, and >= 130,000 events/s" if batch == 1000 else "goal 2x"
            print(f"{'  ratio convergent / eventsourcing':<70} {ours / theirs:>14.1f} x "
                  f"({goal})", flush=True)
        else:
            print("  eventsourcing: not installed (pip install eventsourcing)")


def durable_others(m: Any, d: str, n: int) -> None:
    from convergent.runtime import Replica, SQLiteStore
    row("emit_many, SQLite NORMAL, 5,000 per transaction", sqlite_emit(m, d, n, 5000, "normal"))
    row("emit, SQLite FULL, 5,000 per transaction", sqlite_emit(m, d, n // 2, 5000, bulk=False))
    remote = make_remote(m, n, 1)
    path = os.path.join(d, "recv.db")
    r = Replica(m, id="r1", store=SQLiteStore(path), autoflush=False)
    t = time.perf_counter()
    for i in range(0, n, 5000):
        r.receive(remote[i:i + 5000])
        r.flush()
    row("receive in order, SQLite FULL, 5,000 per transaction", n / (time.perf_counter() - t))
    r.close()
    t = time.perf_counter()
    r = Replica(m, id="r1", store=SQLiteStore(path))
    dt = time.perf_counter() - t
    assert r.accepted == n
    row("restart: reload from SQLite", n / dt)
    r.close()
    # two concurrent origins, delivered one origin's run late: repairs
    remote = make_remote(m, n // 2, 2)
    a = [e for e in remote if e.origin == "o0"]
    b = [e for e in remote if e.origin == "o1"]
    r = Replica(m, id="r2", store=SQLiteStore(os.path.join(d, "recv2.db")), autoflush=False)
    chunk = 200
    t = time.perf_counter()
    for i in range(0, len(a), chunk):
        r.receive(a[i:i + chunk])       # o0's run first...
        r.receive(b[i:i + chunk])       # ...then o1's, which sorts in between: a repair
        if i % 5000 < chunk:
            r.flush()
    r.flush()
    r.state  # noqa: B018 - pay for the deferred replay
    row(f"receive with repairs ({r.stats.repairs} repairs, {chunk}-event runs)",
        n // 2 / (time.perf_counter() - t))
    r.close()


def postgres_emit(m: Any, url: str, n: int, batch: int) -> float:
    from convergent.runtime import Replica
    from convergent.runtime.stores.postgres import PostgresStore
    r = Replica(m, id=f"b{uuid.uuid4().hex[:8]}", store=PostgresStore(url), autoflush=False)
    evs = [m.events[i % 5] for i in range(batch)]
    t = time.perf_counter()
    for _ in range(n // batch):
        r.emit_many(evs)
        r.flush()
    dt = time.perf_counter() - t
    r.close()
    return n // batch * batch / dt


# ---------------------------------------------------------------- memory per event


def memory_per_event(m: Any, n: int) -> None:
    """Bytes held per envelope, from the wire message to the replica."""
    from convergent.runtime import Replica, decode_batch, encode_batch
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
    row("memory per logged event (buffered + delta on apply)", (buffered + delta) / n, "bytes")


# ---------------------------------------------------------------- NATS


def _nats_binary() -> str | None:
    for cand in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats(m: Any, d: str, n: int) -> None:
    try:
        from convergent.runtime import NatsTransport, Replica, ReplicaService, SQLiteStore
    except ImportError:
        print("NATS: skipped (pip install nats-py)")
        return
    binary = _nats_binary()
    if binary is None:
        print("NATS: skipped (nats-server not found; apt-get install nats-server)")
        return
    port = _free_port()
    srv = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                            os.path.join(d, "js")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)

        async def end_to_end(tag: str, bulk: bool) -> float:
            svcs = []
            for i in ("a", "b"):
                t = NatsTransport(url, sync_interval=5.0, prefix=f"cv{tag}")
                r = Replica(m, id=i, store=SQLiteStore(os.path.join(d, f"nats-{tag}-{i}.db")),
                            transport=t, autoflush=False)
                svcs.append(ReplicaService(r, t, flush_interval=0.01))
            for s in svcs:
                await s.start()
            a, b = svcs[0].replica, svcs[1].replica
            t0 = time.perf_counter()
            if bulk:
                evs = [m.events[i % 5] for i in range(2000)]
                for i in range(0, n, 2000):
                    a.emit_many(evs[:min(2000, n - i)])
                    await asyncio.sleep(0)      # let the flusher and the transport run
            else:
                for i in range(n):
                    a.emit(m.events[i % 5])
                    if i % 2000 == 1999:
                        await asyncio.sleep(0)
            while b.accepted < n:
                await asyncio.sleep(0.005)
            dt = time.perf_counter() - t0
            for s in svcs:
                await s.aclose()
            assert a.state == b.state
            return n / dt

        async def catch_up(k: int) -> tuple[float, int]:
            """b starts empty while a holds ``k`` events the stream never
            carried: anti-entropy alone brings them (one answer)."""
            path = os.path.join(d, "catchup-a.db")
            with Replica(m, id="a", store=SQLiteStore(path)) as offline:
                offline.emit_many([m.events[i % 5] for i in range(k)])
            ta = NatsTransport(url, sync_interval=60, inflight_grace=0.0, prefix="cvc")
            tb = NatsTransport(url, sync_interval=60, inflight_grace=0.0, prefix="cvc")
            a = Replica(m, id="a", store=SQLiteStore(path), transport=ta, autoflush=False)
            b = Replica(m, id="b", store=SQLiteStore(os.path.join(d, "catchup-b.db")),
                        transport=tb, autoflush=False)
            sa, sb = ReplicaService(a, ta), ReplicaService(b, tb)
            await sa.start()
            t0 = time.perf_counter()
            await sb.start()
            while b.accepted < k:
                await asyncio.sleep(0.005)
            dt = time.perf_counter() - t0
            receives = tb.counters.get("answers_received", -1)
            await sb.aclose()
            await sa.aclose()
            return k / dt, receives

        row("NATS end to end: emit at A -> committed at B", asyncio.run(end_to_end("e", False)))
        row("NATS end to end: emit_many at A -> committed at B",
            asyncio.run(end_to_end("m", True)))
        rate, answers = asyncio.run(catch_up(20_000))
        row(f"NATS anti-entropy catch-up of 20,000 ({answers} batched receive(s))", rate)
    finally:
        srv.terminate()
        srv.wait()


# ---------------------------------------------------------------- before / after


def _only(name: str, args: argparse.Namespace) -> dict[str, float]:
    """One measure, for a run against another library (``--only``)."""
    m = account()
    if name == "memory":
        return memory_bulk(m, args.events)
    if name == "lagging":
        return {"batches": lagging(m, args.lag_ms, 1, False),
                "one": lagging(m, args.lag_ms // 4, 1, True),
                "batches10": lagging(m, args.lag_ms // 5, 1, False, 10),
                "one10": lagging(m, args.lag_ms // 20, 1, True, 10)}
    if name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="cv-bench-") as d:
            return {"1000": sqlite_emit(m, d, args.durable_events, 1000)}
    if name == "postgres":
        return {"1000": postgres_emit(m, args.postgres, args.pg_events, 1000)}
    raise SystemExit(f"--only {name!r}: unknown measure")


class Before:
    """Runs a measure against the library of a git revision: ``git archive``
    of its ``src`` into a temporary directory (git state is not touched),
    this script in a subprocess with that directory first on the path."""

    def __init__(self, rev: str, tmp: str) -> None:
        self.rev = rev
        self.src = os.path.join(tmp, "before")
        os.makedirs(self.src)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", self.src], input=archive, check=True)

    def run(self, name: str, args: argparse.Namespace) -> dict[str, float]:
        cmd = [sys.executable, __file__, "--only", name, "--lag-ms", str(args.lag_ms),
               "--events", str(args.events),
               "--pg-events", str(args.pg_events), "--durable-events", str(args.durable_events)]
        if args.postgres:
            cmd += ["--postgres", args.postgres]
        env = dict(os.environ, PYTHONPATH=os.path.join(self.src, "src"))
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))


def before_after(name: str, args: argparse.Namespace, before: Before | None,
                 labels: dict[str, str]) -> None:
    """Best of ``args.runs`` of the current library and of ``before``,
    alternately (so both see the same load)."""
    now: dict[str, float] = {}
    old: dict[str, float] = {}
    for _ in range(args.runs):
        for k, v in _only(name, args).items():
            now[k] = max(now.get(k, 0.0), v)
        if before is not None:
            for k, v in before.run(name, args).items():
                old[k] = max(old.get(k, 0.0), v)
    for k, label in labels.items():
        if before is not None:
            row(f"{label} (before, {before.rev})", old[k])
        row(f"{label} (now)", now[k])
        if before is not None:
            print(f"{'  now / before':<70} {now[k] / old[k]:>14.1f} x", flush=True)


# ---------------------------------------------------------------- main


def _postgres(arg: str | None, cleanup: list[Callable[[], None]]) -> str | None:
    if arg != "auto":
        return arg
    from bench_durable import _throwaway_postgres
    return _throwaway_postgres(cleanup)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--durable-events", type=int, default=100_000)
    ap.add_argument("--nats-events", type=int, default=50_000)
    ap.add_argument("--memory-events", type=int, default=100_000)
    ap.add_argument("--lag-ms", type=int, default=5_000)
    ap.add_argument("--pg-events", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a quarter of the counts, 2 runs")
    ap.add_argument("--no-nats", action="store_true")
    ap.add_argument("--postgres", default=None,
                    help="a PostgreSQL URL, or 'auto' to start a throwaway cluster")
    ap.add_argument("--before", default=BEFORE,
                    help=f"git revision for the 'before' figures (default {BEFORE}; 'none')")
    ap.add_argument("--memory-before", default=MEMORY_BEFORE,
                    help=f"git revision for the in-memory 'before' figures (default "
                         f"{MEMORY_BEFORE}; 'none')")
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        print(json.dumps(_only(args.only, args)))
        return
    if args.quick:
        args.events //= 4
        args.durable_events //= 4
        args.nats_events //= 4
        args.memory_events //= 4
        args.lag_ms //= 4
        args.pg_events //= 4
        args.runs = 2
    m = account()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {platform.node()}: "
          f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} "
          f"{platform.release()}; load average {load}")
    print(f"python {sys.version.split()[0]}, machine {m.name}: {m.size} states, "
          f"{len(m.events)} events; best of {args.runs} runs\n")
    servers: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as d:
        try:
            before = None if args.before == "none" else Before(args.before, d)
            mem_before = (None if args.memory_before == "none"
                          else Before(args.memory_before, os.path.join(d, "memory")))
            args.postgres = _postgres(args.postgres, servers)
            memory_rates(m, args.events, args.runs)
            before_after("memory", args, mem_before, {
                "emit": "emit in memory, emit_many of 10,000",
                "receive": "receive in memory, batches of 10,000"})
            before_after("lagging", args, before, {
                "batches": "lag 100 ms, 4 x 1 event/ms, calls of 1 ms",
                "one": "lag 100 ms, 4 x 1 event/ms, one call per envelope",
                "batches10": "lag 100 ms, 4 x 10 events/ms, calls of 1 ms",
                "one10": "lag 100 ms, 4 x 10 events/ms, one call per envelope"})
            durable_vs_eventsourcing(m, d, args.durable_events, args.runs)
            before_after("sqlite", args, before,
                         {"1000": "emit_many, SQLite FULL, 1,000 per transaction"})
            durable_others(m, d, args.durable_events)
            if args.postgres:
                before_after("postgres", args, before,
                             {"1000": "emit_many, PostgreSQL, 1,000 per transaction"})
            memory_per_event(m, args.memory_events)
            if not args.no_nats:
                nats(m, d, args.nats_events)
        finally:
            for stop in servers:
                stop()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}")


if __name__ == "__main__":
    main()
