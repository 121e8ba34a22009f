"""Durable entities: transitions/s and load times, beside the
``eventsourcing`` library on the same database and batch size.

    python benchmarks/bench_durable.py                       # SQLite only
    python benchmarks/bench_durable.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python benchmarks/bench_durable.py --postgres auto       # + a throwaway PostgreSQL
    python benchmarks/bench_durable.py --quick               # smaller counts
    python benchmarks/bench_durable.py --only "entities, 1000/tx" --rounds 9

Figures printed (events per second, higher is better; load in seconds):

* one entity, one event per transaction, and 1000 events per transaction;
* 10^4 entities, events spread over them, one and 1000 per transaction;
* loading one entity of 10^5 events without and with snapshots.

Both sides keep their entities in memory between events (convergent's
entity cache; eventsourcing aggregates held in a dict), so the figures
compare writing, not rebuilding. convergent writes per transition: the
event row, the head, the audit row (hash chain) and, here, no outbox row;
SQLite runs in WAL mode with synchronous=FULL unless --sync says otherwise.

The two sides run in the same process, alternating round by round (which
side goes first alternates too), and each figure is the median of its
rounds: on a shared machine, load from other work falls on both alike.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convergent.durable import Actor, EntityService, Statechart, assign, open_store

ACTOR = Actor.of("bench")


def chart() -> Any:
    c = Statechart("counter")
    c.int("n", 0, 999_999)
    c.state("on")
    c.on("on", "tick", None, actions=[assign(n="n + 1")])
    return c.build()


def _load() -> str:
    """The 1-, 5- and 15-minute load averages: the machine may be shared."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f} ev/s"



# ---------------------------------------------------------------- the two sides
#
# Each side is a set of "workloads": callables that run one round of a
# measure and return how many events they wrote. Rounds of the two sides
# alternate, so load from other work on the machine falls on both alike;
# each figure is the median over the rounds.


Workload = Callable[[], int]


class Ours:
    """convergent: one service per measure, entities created up front."""

    def __init__(self, url: Callable[[], str], sync: str, per_round: dict[str, int],
                 entities: int, long: int) -> None:
        self.stores: list[Any] = []
        self.per_round = per_round
        self.one = self._service(url, sync, snapshot_every=0)
        self.one.create("one", actor=ACTOR)
        self.many = self._service(url, sync, snapshot_every=0, cache_size=entities)
        self.ids = [f"e{i}" for i in range(entities)]
        for i in range(0, entities, 1000):
            self.many.send_batch([(e, "$create", {}) for e in self.ids[i:i + 1000]],
                                 actor=ACTOR)
        self.rng = random.Random(1)
        self.long = long
        self.loaders: dict[str, EntityService] = {}
        for every, label in ((0, "no snapshots"), (1000, "snapshot every 1000")):
            svc = self._service(url, sync, snapshot_every=every, cache_size=0)
            svc.create("long", actor=ACTOR)
            for _ in range(long // 1000):
                svc.send_batch([("long", "tick", None)] * 1000, actor=ACTOR)
            self.loaders[label] = svc

    def _service(self, url: Callable[[], str], sync: str, **kw: Any) -> EntityService:
        store = open_store(url(), synchronous=sync)
        self.stores.append(store)
        return EntityService(chart(), store, **kw)

    def workloads(self, entities: int) -> dict[str, Workload]:
        n = self.per_round

        def one_1() -> int:
            for _ in range(n["one"]):
                self.one.send("one", "tick", actor=ACTOR)
            return n["one"]

        def one_1000() -> int:
            for _ in range(n["batch"] // 1000):
                self.one.send_batch([("one", "tick", None)] * 1000, actor=ACTOR)
            return n["batch"]

        def many_1() -> int:
            for _ in range(n["spread"]):
                self.many.send(self.rng.choice(self.ids), "tick", actor=ACTOR)
            return n["spread"]

        def many_1000() -> int:
            for _ in range(n["batch"] // 1000):
                self.many.send_batch([(self.rng.choice(self.ids), "tick", None)
                                      for _ in range(1000)], actor=ACTOR)
            return n["batch"]

        out: dict[str, Workload] = {
            "one entity, 1/tx": one_1, "one entity, 1000/tx": one_1000,
            f"{entities:,} entities, 1/tx": many_1, f"{entities:,} entities, 1000/tx": many_1000}
        for label, svc in self.loaders.items():
            out[f"load {self.long:,} events, {label} (s)"] = functools.partial(
                self._load, svc)
        return out

    def _load(self, svc: EntityService) -> int:
        e = svc.load("long")
        assert e.config.vars["n"] == min(self.long, 999_999)
        return 1

    def fast_hits(self) -> int:
        return sum(svc.fast_hits for svc in (self.one, self.many, *self.loaders.values()))

    def close(self) -> None:
        for s in self.stores:
            s.close()


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


class Theirs:
    """eventsourcing: aggregates kept in memory between saves (as our cache)."""

    def __init__(self, env: Callable[[], dict[str, str]], per_round: dict[str, int],
                 entities: int, long: int) -> None:
        Counter, Counters = _es_classes()
        self.per_round = per_round
        self.app = Counters(env=env())
        self.c = Counter()
        self.app.save(self.c)
        self.aggs = [Counter() for _ in range(entities)]
        for i in range(0, entities, 1000):
            self.app.save(*self.aggs[i:i + 1000])
        self.rng = random.Random(1)
        self.long = long
        self.plain = Counters(env=env())
        self.snapped = Counters(env=env())
        self.long_ids = []
        for app in (self.plain, self.snapped):
            agg = Counter()
            app.save(agg)
            for _ in range(long // 1000):
                for _ in range(1000):
                    agg.tick()
                app.save(agg)
            self.long_ids.append(agg.id)
        self.snapped.take_snapshot(self.long_ids[1])

    def workloads(self, entities: int) -> dict[str, Workload]:
        n, app = self.per_round, self.app

        def one_1() -> int:
            for _ in range(n["one"]):
                self.c.tick()
                app.save(self.c)
            return n["one"]

        def one_1000() -> int:
            for _ in range(n["batch"] // 1000):
                for _ in range(1000):
                    self.c.tick()
                app.save(self.c)
            return n["batch"]

        def many_1() -> int:
            for _ in range(n["spread"]):
                a = self.rng.choice(self.aggs)
                a.tick()
                app.save(a)
            return n["spread"]

        def many_1000() -> int:
            for _ in range(n["batch"] // 1000):
                touched = {}
                for _ in range(1000):
                    a = self.rng.choice(self.aggs)
                    a.tick()
                    touched[a.id] = a
                app.save(*touched.values())
            return n["batch"]

        def load(app: Any, agg_id: Any) -> int:
            assert app.repository.get(agg_id).n == self.long
            return 1

        return {"one entity, 1/tx": one_1, "one entity, 1000/tx": one_1000,
                f"{entities:,} entities, 1/tx": many_1,
                f"{entities:,} entities, 1000/tx": many_1000,
                f"load {self.long:,} events, no snapshots (s)":
                    functools.partial(load, self.plain, self.long_ids[0]),
                f"load {self.long:,} events, snapshot every 1000 (s)":
                    functools.partial(load, self.snapped, self.long_ids[1])}

    def close(self) -> None:
        for app in (self.app, self.plain, self.snapped):
            app.close()


def measure(mine: dict[str, Workload], other: dict[str, Workload] | None,
            rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median per-round figures: events/s, or seconds for ``(s)`` measures.
    The sides alternate round by round (and which goes first alternates)."""
    ours: dict[str, list[float]] = {k: [] for k in mine}
    theirs: dict[str, list[float]] = {k: [] for k in mine}
    for r in range(rounds):
        for name, work in mine.items():
            sides = [("ours", work)]
            if other is not None and name in other:
                sides.append(("theirs", other[name]))
            if r % 2:
                sides.reverse()
            for side, w in sides:
                t = time.perf_counter()
                count = w()
                dt = time.perf_counter() - t
                (ours if side == "ours" else theirs)[name].append(
                    dt if name.endswith("(s)") else count / dt)
    return ({k: statistics.median(v) for k, v in ours.items()},
            {k: statistics.median(v) for k, v in theirs.items() if v})


def run(db: str, url: Callable[[], str], env: Callable[[], dict[str, str]], sync: str,
        per_round: dict[str, int], entities: int, long: int, rounds: int,
        only: str | None = None) -> None:
    mine = Ours(url, sync, per_round, entities, long)
    other: Theirs | str
    try:
        other = Theirs(env, per_round, entities, long)
    except ImportError as exc:
        other = f"eventsourcing not installed ({exc}); pip install eventsourcing"
    try:
        ours = {k: w for k, w in mine.workloads(entities).items() if not only or only in k}
        a, b = measure(ours,
                       other.workloads(entities) if isinstance(other, Theirs) else None,
                       rounds)
        report(db, a, b if isinstance(other, Theirs) else other)
        print(f"(load average after the {db} runs: {_load()}; batch items the fast path "
              f"applied: {mine.fast_hits():,})")
    finally:
        mine.close()
        if isinstance(other, Theirs):
            other.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server "
                   "(a scratch database per run is created and dropped), or 'auto' to "
                   "start a throwaway cluster (as the tests do)")
    p.add_argument("--sync", default="full", help="SQLite synchronous (default: full)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per measure")
    p.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL runs")
    p.add_argument("--only", metavar="TEXT", help="only the measures whose name contains "
                   "TEXT (e.g. 'entities, 1000/tx')")
    args = p.parse_args()
    scale = 0.2 if args.quick else 1.0
    per_round = {"one": max(20, int(400 * scale)), "spread": max(20, int(400 * scale)),
                 "batch": max(1000, int(10_000 * scale) // 1000 * 1000)}
    entities, long = 10_000, int(100_000 * scale)
    print(f"# bench_durable {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {args.rounds} rounds "
          f"(median), sides alternating, load average {_load()}")
    tmp = tempfile.mkdtemp(prefix="bench-durable-")
    cleanup: list[Callable[[], None]] = []
    try:
        def sqlite_url() -> str:
            return os.path.join(tmp, f"{uuid.uuid4().hex}.db")

        def sqlite_env() -> dict[str, str]:
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                    "SQLITE_DBNAME": os.path.join(tmp, f"es-{uuid.uuid4().hex}.db"),
                    "IS_SNAPSHOTTING_ENABLED": "y"}

        if not args.no_sqlite:
            run("SQLite", sqlite_url, sqlite_env, args.sync, per_round, entities, long,
                args.rounds, args.only)
        if args.postgres == "auto":
            args.postgres = _throwaway_postgres(cleanup)
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
                run("PostgreSQL", pg_url, pg_env, args.sync, per_round, entities, long,
                    args.rounds, args.only)
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as db:
                    for name in made:
                        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        for stop in cleanup:
            stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _throwaway_postgres(cleanup: list[Callable[[], None]]) -> str | None:
    """A PostgreSQL cluster for this run, started the way the tests start
    theirs (``tests/runtime/servers.py``); None (with a note) when it cannot
    run here."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.runtime.servers import PostgresServer, find_postgres, postgres_user
    bindir, how = find_postgres(), postgres_user()
    if bindir is None or how is None:
        print("PostgreSQL: skipped (no binaries, or no way to run them as non-root)")
        return None
    server = PostgresServer(bindir, how[0], how[1])
    server.start()
    cleanup.append(server.stop)
    return str(server.url)


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
