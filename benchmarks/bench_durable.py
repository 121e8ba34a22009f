"""Durable entities: transitions/s and load times, beside the
``eventsourcing`` library on the same database and batch size.

    python benchmarks/bench_durable.py                       # SQLite only
    python benchmarks/bench_durable.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/bench_durable.py --quick               # smaller counts

Figures printed (events per second, higher is better; load in seconds):

* one entity, one event per transaction, and 1000 events per transaction;
* 10^4 entities, events spread over them, one and 1000 per transaction;
* loading one entity of 10^5 events without and with snapshots.

Both sides keep their entities in memory between events (convergent's
entity cache; eventsourcing aggregates held in a dict), so the figures
compare writing, not rebuilding. convergent writes per transition: the
event row, the head, the audit row (hash chain) and, here, no outbox row;
SQLite runs in WAL mode with synchronous=FULL unless --sync says otherwise.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from convergent.durable import Actor, EntityService, Statechart, assign, open_store

ACTOR = Actor.of("bench")


def chart() -> Any:
    c = Statechart("counter")
    c.int("n", 0, 999_999)
    c.state("on")
    c.on("on", "tick", None, actions=[assign(n="n + 1")])
    return c.build()


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f} ev/s"


# ---------------------------------------------------------------- convergent


def ours(url: Callable[[], str], sync: str, n_one: int, n_batch: int, entities: int,
         spread: int, long: int) -> dict[str, float]:
    out: dict[str, float] = {}

    def service(**kw: Any) -> EntityService:
        return EntityService(chart(), open_store(url(), synchronous=sync), **kw)

    svc = service(snapshot_every=0)
    svc.create("one", actor=ACTOR)
    t = time.perf_counter()
    for _ in range(n_one):
        svc.send("one", "tick", actor=ACTOR)
    out["one entity, 1/tx"] = n_one / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(n_batch // 1000):
        svc.send_batch([("one", "tick", None)] * 1000, actor=ACTOR)
    out["one entity, 1000/tx"] = n_batch / (time.perf_counter() - t)
    svc.store.close()

    svc = service(snapshot_every=0, cache_size=entities)
    ids = [f"e{i}" for i in range(entities)]
    for i in range(0, entities, 1000):
        svc.send_batch([(e, "$create", {}) for e in ids[i:i + 1000]], actor=ACTOR)
    rng = random.Random(1)
    t = time.perf_counter()
    for _ in range(spread):
        svc.send(rng.choice(ids), "tick", actor=ACTOR)
    out[f"{entities:,} entities, 1/tx"] = spread / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(spread * 10 // 1000):
        svc.send_batch([(rng.choice(ids), "tick", None) for _ in range(1000)], actor=ACTOR)
    out[f"{entities:,} entities, 1000/tx"] = spread * 10 / (time.perf_counter() - t)
    svc.store.close()

    for every, label in ((0, "no snapshots"), (1000, "snapshot every 1000")):
        svc = service(snapshot_every=every, cache_size=0)
        name = f"long{every}"
        svc.create(name, actor=ACTOR)
        for _ in range(long // 1000):
            svc.send_batch([(name, "tick", None)] * 1000, actor=ACTOR)
        t = time.perf_counter()
        e = svc.load(name)
        out[f"load {long:,} events, {label} (s)"] = time.perf_counter() - t
        assert e.config.vars["n"] == min(long, 999_999)
        svc.store.close()
    return out


# ---------------------------------------------------------------- eventsourcing


@functools.lru_cache(maxsize=1)
def _es_classes() -> tuple[Any, Any]:
    """The eventsourcing aggregate and application, defined once (the
    library refuses a second class under the same topic)."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Counter(Aggregate):
        def __init__(self) -> None:
            self.n = 0

        @event("Ticked")
        def tick(self) -> None:
            self.n += 1

    class Counters(Application[uuid.UUID]):
        pass

    return Counter, Counters


def theirs(env: Callable[[], dict[str, str]], n_one: int, n_batch: int, entities: int,
           spread: int, long: int) -> dict[str, float]:
    Counter, Counters = _es_classes()
    out: dict[str, float] = {}
    app = Counters(env=env())
    c = Counter()
    app.save(c)
    t = time.perf_counter()
    for _ in range(n_one):
        c.tick()
        app.save(c)
    out["one entity, 1/tx"] = n_one / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(n_batch // 1000):
        for _ in range(1000):
            c.tick()
        app.save(c)
    out["one entity, 1000/tx"] = n_batch / (time.perf_counter() - t)

    aggs = [Counter() for _ in range(entities)]
    for i in range(0, entities, 1000):
        app.save(*aggs[i:i + 1000])
    rng = random.Random(1)
    t = time.perf_counter()
    for _ in range(spread):
        a = rng.choice(aggs)
        a.tick()
        app.save(a)
    out[f"{entities:,} entities, 1/tx"] = spread / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(spread * 10 // 1000):
        touched = {}
        for _ in range(1000):
            a = rng.choice(aggs)
            a.tick()
            touched[a.id] = a
        app.save(*touched.values())
    out[f"{entities:,} entities, 1000/tx"] = spread * 10 / (time.perf_counter() - t)

    long_agg = Counter()
    app.save(long_agg)
    for _ in range(long // 1000):
        for _ in range(1000):
            long_agg.tick()
        app.save(long_agg)
    t = time.perf_counter()
    got = app.repository.get(long_agg.id)
    out[f"load {long:,} events, no snapshots (s)"] = time.perf_counter() - t
    assert got.n == long
    app.take_snapshot(long_agg.id)
    t = time.perf_counter()
    app.repository.get(long_agg.id)
    out[f"load {long:,} events, snapshot every 1000 (s)"] = time.perf_counter() - t
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server "
                   "(a scratch database per run is created and dropped)")
    p.add_argument("--sync", default="full", help="SQLite synchronous (default: full)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL runs")
    args = p.parse_args()
    scale = 0.2 if args.quick else 1.0
    n_one, n_batch = int(2000 * scale), int(20_000 * scale) // 1000 * 1000
    entities, spread, long = 10_000, int(2000 * scale), int(100_000 * scale)
    print(f"# bench_durable {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    tmp = tempfile.mkdtemp(prefix="bench-durable-")
    try:
        def sqlite_url() -> str:
            return os.path.join(tmp, f"{uuid.uuid4().hex}.db")

        def sqlite_env() -> dict[str, str]:
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                    "SQLITE_DBNAME": os.path.join(tmp, f"es-{uuid.uuid4().hex}.db"),
                    "IS_SNAPSHOTTING_ENABLED": "y"}

        if not args.no_sqlite:
            report("SQLite", ours(sqlite_url, args.sync, n_one, n_batch, entities, spread, long),
                   _try(lambda: theirs(sqlite_env, n_one, n_batch, entities, spread, long)))
        if args.postgres:
            from urllib.parse import urlsplit

            import psycopg
            made: list[str] = []

            def pg_db() -> str:
                name = "bench_" + uuid.uuid4().hex[:10]
                with psycopg.connect(args.postgres, autocommit=True) as db:
                    db.execute(f"CREATE DATABASE {name}")
                made.append(name)
                return name

            def pg_url() -> str:
                return args.postgres.rsplit("/", 1)[0] + "/" + pg_db()

            def pg_env() -> dict[str, str]:
                u = urlsplit(args.postgres)
                return {"PERSISTENCE_MODULE": "eventsourcing.postgres",
                        "POSTGRES_DBNAME": pg_db(), "POSTGRES_HOST": u.hostname or "127.0.0.1",
                        "POSTGRES_PORT": str(u.port or 5432),
                        "POSTGRES_USER": u.username or "postgres",
                        "POSTGRES_PASSWORD": u.password or "", "IS_SNAPSHOTTING_ENABLED": "y"}

            try:
                report("PostgreSQL", ours(pg_url, args.sync, n_one, n_batch, entities, spread,
                                          long),
                       _try(lambda: theirs(pg_env, n_one, n_batch, entities, spread, long)))
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as db:
                    for name in made:
                        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _try(f: Callable[[], dict[str, float]]) -> dict[str, float] | str:
    try:
        return f()
    except ImportError as exc:
        return f"eventsourcing not installed ({exc}); pip install eventsourcing"


def report(db: str, mine: dict[str, float], other: dict[str, float] | str) -> None:
    print(f"\n## {db}")
    print(f"{'measure':44} {'convergent':>16} {'eventsourcing':>16} {'ratio':>7}")
    for k, v in mine.items():
        o = other.get(k) if isinstance(other, dict) else None
        if k.endswith("(s)"):
            ratio = f"{o / v:6.2f}x" if o else ""
            print(f"{k:44} {v:>15.3f}s {'' if o is None else f'{o:15.3f}s':>16} {ratio:>7}")
        else:
            ratio = f"{v / o:6.2f}x" if o else ""
            print(f"{k:44} {rate(1, 1 / v):>16} "
                  f"{'' if o is None else rate(1, 1 / o):>16} {ratio:>7}")
    if isinstance(other, str):
        print(other)


if __name__ == "__main__":
    sys.exit(main())
