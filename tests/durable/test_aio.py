"""The asyncio facade: the same operations awaited, DB work off the event
loop, and optimistic concurrency with exactly one loser per conflict."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from convergent.durable import (
    ActionContext,
    Actor,
    AsyncEntityService,
    ConcurrencyError,
    EntityService,
    EntityStore,
    NotAuthorized,
)

from .charts import order_chart, ticker

ALICE = Actor.of("alice", "customer")
CLERK = Actor.of("carol", "clerk")


def test_the_same_operations_awaited(make_store: Callable[[], EntityStore]) -> None:
    async def main() -> None:
        async with AsyncEntityService(EntityService(order_chart(), make_store())) as svc:
            created = await svc.create("o1", actor=ALICE, request_key="c1")
            assert created.outcome == "created" and created.version == 1
            sent = await svc.send("o1", "submit", actor=ALICE, request_key="s1")
            assert sent.to_leaves == ("authorizing",)
            again = await svc.send("o1", "submit", actor=ALICE, request_key="s1")
            assert again.replayed and again.version == sent.version
            with pytest.raises(NotAuthorized):
                await svc.send("o1", "hold", actor=ALICE)     # clerks only
            assert (await svc.send("o1", "hold", actor=CLERK)).to_leaves == ("on_hold",)
            e = await svc.load("o1")
            assert e.version == 3 and e.leaves == ("on_hold",)
            assert [h["event"] for h in await svc.history("o1")] == ["$create", "submit",
                                                                        "hold"]
            assert (await svc.load_at("o1", 2)).leaves == ("authorizing",)
            assert await svc.exists("o1") and not await svc.exists("nope")
            got = await svc.send_batch([("o2", "$create", {}), ("o2", "submit", None)],
                                       actor=ALICE)
            assert [r.version for r in got] == [1, 2]
        with pytest.raises(RuntimeError, match="closed"):
            await svc.load("o1")

    asyncio.run(main())


def test_db_work_and_actions_run_off_the_event_loop(tmp_path) -> None:
    """The action waits for a coroutine to run meanwhile: were the write on
    the loop's thread, the loop could not run it and the action would time
    out (EffectError)."""
    ticked = threading.Event()
    threads: list[int] = []

    def probe(ctx: ActionContext) -> None:
        threads.append(threading.get_ident())
        if not ticked.wait(5):
            raise RuntimeError("the event loop was blocked during the write")

    async def main() -> None:
        from convergent.durable import open_store
        svc = AsyncEntityService(EntityService(ticker(probe), open_store(
            str(tmp_path / "c.db"))), close_store=True)
        await svc.create("c", actor=ALICE)

        async def tick_soon() -> None:
            await asyncio.sleep(0.05)
            ticked.set()

        task = asyncio.create_task(tick_soon())
        res = await svc.send("c", "tick", actor=ALICE)
        await task
        assert res.version == 2
        assert threads and threading.get_ident() not in threads
        await svc.aclose()
        await svc.aclose()  # idempotent

    asyncio.run(main())


def test_concurrent_writers_on_one_service_exactly_one_wins(
        make_store: Callable[[], EntityStore]) -> None:
    async def main() -> None:
        async with AsyncEntityService(EntityService(ticker(), make_store())) as svc:
            await svc.create("c", actor=ALICE)
            for round_ in range(3):
                v = (await svc.load("c")).version
                got = await asyncio.gather(
                    *(svc.send("c", "tick", actor=ALICE, expected_version=v)
                      for _ in range(8)), return_exceptions=True)
                wins = [g for g in got if not isinstance(g, BaseException)]
                losers = [g for g in got if isinstance(g, ConcurrencyError)]
                assert len(wins) == 1 and len(losers) == 7, (round_, got)
                assert all(e.expected == v and e.actual == v + 1 for e in losers)
                assert (await svc.load("c")).config.vars["n"] == round_ + 1

    asyncio.run(main())


def test_concurrent_writers_on_separate_connections_one_loser_per_conflict(
        make_store: Callable[[], EntityStore]) -> None:
    """Two facades, each with its own store (connection) on one database,
    race on the same version round after round: the database arbitrates and
    exactly one of each pair gets ConcurrencyError."""
    async def main() -> None:
        a = AsyncEntityService(EntityService(ticker(), make_store(), cache_size=0))
        b = AsyncEntityService(EntityService(ticker(), make_store(), cache_size=0))
        await a.create("c", actor=ALICE)
        rounds = 12
        for r in range(rounds):
            v = r + 1
            got = await asyncio.gather(a.send("c", "tick", actor=ALICE, expected_version=v),
                                       b.send("c", "tick", actor=ALICE, expected_version=v),
                                       return_exceptions=True)
            errors = [g for g in got if isinstance(g, BaseException)]
            assert len(errors) == 1 and isinstance(errors[0], ConcurrencyError), (r, got)
        e = await a.load("c")
        assert e.version == rounds + 1 and e.config.vars["n"] == rounds
        await a.aclose()
        await b.aclose()

    asyncio.run(main())


def test_unconditional_concurrent_sends_lose_nothing_and_double_nothing(
        make_store: Callable[[], EntityStore]) -> None:
    """Without an expected version a lost race is retried on fresh state (up
    to three times; then ConcurrencyError): every applied send counts once,
    every refused one not at all."""
    async def main() -> None:
        a = AsyncEntityService(EntityService(ticker(), make_store(), cache_size=0))
        b = AsyncEntityService(EntityService(ticker(), make_store(), cache_size=0))
        await a.create("c", actor=ALICE)
        got = await asyncio.gather(*(s.send("c", "tick", actor=ALICE)
                                     for _ in range(10) for s in (a, b)),
                                   return_exceptions=True)
        applied = [g for g in got if not isinstance(g, BaseException)]
        assert all(isinstance(g, ConcurrencyError) for g in got if g not in applied)
        assert len(applied) >= 10  # each writer's own sends never conflict with each other
        e = await a.load("c")
        assert e.config.vars["n"] == len(applied) and e.version == len(applied) + 1
        assert sorted(r.version for r in applied) == list(range(2, len(applied) + 2))
        await a.aclose()
        await b.aclose()

    asyncio.run(main())


@pytest.mark.server
@pytest.mark.parametrize("width", [3, 40])  # below and above the COPY threshold
def test_a_batch_racing_a_writer_on_postgres_fails_whole(postgres_url: str, width: int) -> None:
    """While a batch is inside its transaction, another connection commits
    an event on one of its entities: the batch raises ConcurrencyError and
    writes nothing (small batches: executemany; large ones: COPY and the
    staged head update)."""
    from convergent.durable import open_store

    from .conftest import _fresh_pg
    url = _fresh_pg(postgres_url)
    other = EntityService(ticker(), open_store(url), cache_size=0)
    fired = threading.Event()

    def interfere(ctx: ActionContext) -> None:
        if ctx.entity == "e0" and not fired.is_set():
            fired.set()
            t = threading.Thread(target=other.send, args=("e0", "tick"),
                                 kwargs={"actor": ALICE})
            t.start()
            t.join(10)

    svc = EntityService(ticker(interfere), open_store(url), cache_size=0)
    ids = [f"e{i}" for i in range(width)]
    svc.send_batch([(e, "$create", {}) for e in ids], actor=ALICE)
    with pytest.raises(ConcurrencyError):
        svc.send_batch([(e, "tick", None) for e in ids], actor=ALICE)
    assert fired.is_set()
    assert other.load("e0").version == 2                   # the other writer's event
    assert all(svc.load(e).version == 1 for e in ids[1:])  # nothing of the batch
    svc.store.close()
    other.store.close()
