"""Store I/O off the event loop: with a store that declares itself
``blocking``, ``aflush``/``acompact``/``ainstall_snapshot`` run the store call
in a worker thread, in order, while the loop keeps ticking."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from convergent.runtime import (
    Envelope,
    MemoryStore,
    Replica,
    Snapshot,
    StoreError,
)

from .helpers import machine

SLOW = 0.4        # seconds per store call
# the loop must never stall this long: a store call run on the loop would
# stall it for SLOW at least; below that, a gap is the scheduler of a loaded
# machine (0.29 s seen with eight test suites on two cores)
MAX_GAP = 0.75 * SLOW


class SlowStore(MemoryStore):
    """A memory store whose calls take ``delay`` seconds, like a remote
    database; it records the threads that called it."""

    blocking = True

    def __init__(self, delay: float = SLOW) -> None:
        super().__init__()
        self.delay = delay
        self.threads: set[int] = set()
        self.batches: list[list[str]] = []

    def append(self, envelopes: Sequence[Envelope]) -> None:
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        super().append(envelopes)
        self.batches.append([e.id for e in envelopes])

    def compact(self, snapshot: Snapshot) -> int:
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        return super().compact(snapshot)


class Heartbeat:
    """Ticks every 5 ms on the loop and records the longest gap."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.get_running_loop().create_task(self._run())
        while not self.ticks:  # ticking before the measured code starts
            await asyncio.sleep(0.001)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        await asyncio.sleep(0.01)  # one more tick measures the gap up to here
        self._task.cancel()


def test_commits_and_compaction_run_off_the_loop() -> None:
    m = machine("account")

    async def main() -> tuple[Replica, SlowStore, Heartbeat, list[Any]]:
        store = SlowStore()
        r = Replica(m, id="a", store=store, autoflush=False, peers=["a"])
        told: list[Any] = []
        r.subscribe(told.append)
        async with Heartbeat() as hb:
            for k in range(3):
                r.emit(m.events[k])
                flush = asyncio.create_task(r.aflush())
                while not flush.done():         # the loop goes on: more events meanwhile
                    r.emit("hit")
                    await asyncio.sleep(0.02)
                assert await flush >= 1
            assert r._unflushed                  # what came during the last commit waits
            assert await r.aflush() > 0 and not r._unflushed
            n = await r.acompact()
            assert n == r.accepted and r.log == ()
        return r, store, hb, told

    r, store, hb, told = asyncio.run(main())
    # each commit took SLOW seconds; the loop never stalled for it
    assert hb.max_gap < MAX_GAP, f"the loop stalled {hb.max_gap:.3f}s"
    assert hb.ticks > 3 * SLOW / 0.02
    assert threading.get_ident() not in store.threads
    # every event committed once, in acceptance order, and told after its commit
    committed = [i for b in store.batches for i in b]
    assert committed == [f"a:{k}" for k in range(1, r.accepted + 1)]
    assert sum(len(c.events) for c in told) == r.accepted
    assert told[-1].after == r.state
    again = Replica(m, id="a", store=store)
    assert again.state == r.state and again.accepted == r.accepted


def test_the_same_code_is_synchronous_for_a_local_store() -> None:
    m = machine("account")

    async def main() -> MemoryStore:
        store = MemoryStore()
        r = Replica(m, id="a", store=store, autoflush=False, peers=["a"])
        r.emit("deposit")
        assert await r.aflush() == 1 and store.count() == 1
        assert await r.acompact() == 1
        return store

    assert asyncio.run(main()).count() == 0


def test_a_failed_commit_is_queued_again_in_order() -> None:
    m = machine("account")

    async def main() -> tuple[Replica, SlowStore]:
        store = SlowStore(0.05)
        r = Replica(m, id="a", store=store, autoflush=False)
        r.emit("deposit")
        store.fail_next = True
        flush = asyncio.create_task(r.aflush())
        await asyncio.sleep(0.01)
        r.emit("withdraw")                       # accepted while the failing commit runs
        with pytest.raises(StoreError, match="injected"):
            await flush
        assert [e.id for e in r._unflushed] == ["a:1", "a:2"]
        assert r.missing_for({}) == []           # nothing unsent goes out
        assert await r.aflush() == 2
        return r, store

    r, store = asyncio.run(main())
    assert store.batches == [["a:1", "a:2"]] and r.missing_for({}) == list(r.log)


def test_a_cancelled_commit_still_lands_once_and_in_order() -> None:
    m = machine("account")

    async def main() -> tuple[Replica, SlowStore]:
        store = SlowStore(0.1)
        r = Replica(m, id="a", store=store, autoflush=False)
        r.emit("deposit")
        flush = asyncio.create_task(r.aflush())
        await asyncio.sleep(0.02)
        flush.cancel()                            # the thread cannot be stopped...
        with pytest.raises(asyncio.CancelledError):
            await flush
        r.emit("withdraw")
        assert await r.aflush() == 1              # ...so this waits for it, then commits
        r.emit("hit")
        flush = asyncio.create_task(r.aflush())
        await asyncio.sleep(0.02)
        r.flush()                                 # a synchronous flush waits too
        await flush
        return r, store

    r, store = asyncio.run(main())
    assert store.batches == [["a:1"], ["a:2"], ["a:3"]]
    assert r._inflight is None and not r._unflushed


def test_a_snapshot_installs_off_the_loop() -> None:
    m = machine("account")
    a = Replica(m, id="a", peers=["a"])
    for ev in ("deposit", "deposit", "freeze", "hit"):
        a.emit(ev)
    assert a.compact() == 4
    a.emit("unfreeze")
    snap, log = a.bootstrap()
    assert snap is not None

    async def main() -> tuple[Replica, Heartbeat]:
        d = Replica(m, id="d", store=SlowStore(), autoflush=False)
        async with Heartbeat() as hb:
            assert await d.ainstall_snapshot(snap) is True
            d.receive(log)
            await d.aflush()
        return d, hb

    d, hb = asyncio.run(main())
    assert hb.max_gap < MAX_GAP
    assert d.state == a.state and d.log == a.log and d.stats.installed == 1
    assert d.explain().base == snap and d.store.load()[0] == snap


@pytest.mark.server
def test_postgres_commits_run_off_the_loop(postgres_url: str) -> None:
    """A real PostgreSQL server, slowed down by ``pg_sleep`` inside each
    append: the loop keeps ticking while the server works."""
    from convergent.runtime.stores.postgres import PostgresStore

    class SlowPostgres(PostgresStore):
        def append(self, envelopes: Sequence[Envelope]) -> None:
            self._conn().execute("SELECT pg_sleep(%s)", (SLOW,))
            super().append(envelopes)

    m = machine("account")
    rid = f"pg-async-{time.monotonic_ns()}"

    async def main() -> tuple[Replica, Heartbeat]:
        r = Replica(m, id=rid, store=SlowPostgres(postgres_url), autoflush=False,
                    peers=[rid])
        async with Heartbeat() as hb:
            for _ in range(3):
                r.emit("deposit")
                flush = asyncio.create_task(r.aflush())
                while not flush.done():
                    r.emit("hit")
                    await asyncio.sleep(0.02)
                await flush
            await r.aflush()
            assert await r.acompact() > 0
        return r, hb

    r, hb = asyncio.run(main())
    assert PostgresStore.blocking is True
    assert hb.max_gap < MAX_GAP, f"the loop stalled {hb.max_gap:.3f}s"
    state, accepted = r.state, r.accepted
    r.close()
    again = Replica(m, id=rid, store=PostgresStore(postgres_url))
    assert again.state == state and again.accepted == accepted
    again.close()
