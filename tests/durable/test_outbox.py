"""The transactional outbox, its dispatcher, and durable timers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest

from convergent.durable import (
    Actor,
    Dispatcher,
    EffectError,
    EntityService,
    EntityStore,
    OutboxMessage,
    Statechart,
    call,
    emit,
    nats_publisher,
)

from .charts import order_chart

ALICE = Actor.of("alice", "customer", "clerk")


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def emitting_chart():
    c = Statechart("mailer")
    c.state("idle")
    c.on("idle", "send", None, actions=[emit("mail.send", lambda ctx: {"to": ctx.payload["to"]}),
                                        emit("audit.note")])
    c.on("idle", "broken", None, actions=[emit("mail.send"), call(lambda ctx: [][1], name="x")])
    return c.build()


def outbox_rows(store: EntityStore) -> list[tuple]:
    with store.tx() as tx:
        return [tuple(r) for r in tx.all("SELECT key, topic, body, attempts, published_at "
                                         "FROM dz_outbox ORDER BY id")]


def test_commands_are_written_with_the_transition_or_not_at_all(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(emitting_chart(), store)
    svc.create("m", actor=ALICE)
    r = svc.send("m", "send", {"to": "bob"}, actor=ALICE)
    rows = outbox_rows(store)
    assert [(k, t, json.loads(b)) for k, t, b, _, _ in rows] == [
        (f"{r.transition_id}/0", "mail.send", {"to": "bob"}),
        (f"{r.transition_id}/1", "audit.note", {})]
    assert r.commands == (f"{r.transition_id}/0", f"{r.transition_id}/1")
    with pytest.raises(EffectError):
        svc.send("m", "broken", actor=ALICE)
    assert len(outbox_rows(store)) == 2


def test_dispatcher_retries_with_backoff_then_publishes(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    clock = Clock()
    svc = EntityService(emitting_chart(), store, clock=clock)
    svc.create("m", actor=ALICE)
    svc.send("m", "send", {"to": "bob"}, actor=ALICE)
    seen: list[OutboxMessage] = []
    fail = {"n": 2}

    def publish(m: OutboxMessage) -> None:
        if m.topic == "mail.send" and fail["n"] > 0:
            fail["n"] -= 1
            raise ConnectionError("smtp down")
        seen.append(m)

    d = Dispatcher(store, publish, clock=clock, base_delay=10, max_delay=100)
    assert asyncio.run(d.dispatch_once()) == 1          # audit.note goes, mail.send fails
    [(key, _, _, attempts, published)] = [r for r in outbox_rows(store) if r[1] == "mail.send"]
    assert attempts == 1 and published is None
    assert asyncio.run(d.dispatch_once()) == 0          # not due yet: backoff
    clock.t += 13                                       # 10 s (+ up to 25 % jitter)
    assert asyncio.run(d.dispatch_once()) == 0          # second failure, backoff 20 s
    clock.t += 26
    assert asyncio.run(d.dispatch_once()) == 1
    assert [m.topic for m in seen] == ["audit.note", "mail.send"]
    assert seen[1].key == key and seen[1].attempts == 2
    assert seen[1].meta["entity"] == "m"
    assert d.pending() == 0 and d.published == 2 and d.failed == 2


def test_a_crash_after_publishing_republishes_with_the_same_key(
        make_store: Callable[[], EntityStore]) -> None:
    """At least once: the first dispatcher claims and publishes, then dies
    before marking; after the lease another one publishes the same key."""
    store = make_store()
    clock = Clock()
    svc = EntityService(emitting_chart(), store, clock=clock)
    svc.create("m", actor=ALICE)
    svc.send("m", "send", {"to": "x"}, actor=ALICE)
    first = Dispatcher(store, lambda m: None, clock=clock, lease=30)
    claimed = first._claim(clock())                    # published, then killed: no _mark
    assert len(claimed) == 2
    got: list[str] = []
    second = Dispatcher(make_store(), lambda m: got.append(m.key), clock=clock)
    assert asyncio.run(second.dispatch_once()) == 0    # leased: invisible
    clock.t += 31
    assert asyncio.run(second.dispatch_once()) == 2
    assert sorted(got) == sorted(m.key for m in claimed)


def test_rows_failing_past_max_attempts_are_parked(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    clock = Clock()
    svc = EntityService(emitting_chart(), store, clock=clock)
    svc.create("m", actor=ALICE)
    svc.send("m", "send", {"to": "x"}, actor=ALICE)

    def publish(m: OutboxMessage) -> None:
        raise RuntimeError("poison")

    d = Dispatcher(store, publish, clock=clock, base_delay=1, max_attempts=2)
    for _ in range(4):
        asyncio.run(d.dispatch_once())
        clock.t += 100
    dead = d.dead()
    assert len(dead) == 2 and all("poison" in err for _, _, err in dead)
    assert d.pending() == 0


def test_run_loop_publishes_async_and_survives_failures(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(emitting_chart(), store)
    svc.create("m", actor=ALICE)
    svc.send("m", "send", {"to": "x"}, actor=ALICE)
    got: list[str] = []
    calls = {"n": 0}

    async def publish(m: OutboxMessage) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TimeoutError("first try fails")
        got.append(m.topic)

    async def main() -> None:
        d = Dispatcher(store, publish, base_delay=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop, interval=0.02))
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert sorted(got) == ["audit.note", "mail.send"]


def test_run_loop_logs_a_failing_round_and_keeps_going(
        caplog: pytest.LogCaptureFixture, make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    d = Dispatcher(store, lambda m: None)
    rounds = {"n": 0}
    real = d._claim

    def flaky(now: float) -> list[OutboxMessage]:
        rounds["n"] += 1
        if rounds["n"] == 1:
            raise OSError("database unreachable")
        return real(now)

    d._claim = flaky  # type: ignore[method-assign]

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop, interval=0.01))
        while rounds["n"] < 3:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(main())
    assert "outbox dispatch round failed" in caplog.text


# ---------------------------------------------------------------- timers


def test_timers_survive_a_restart_and_fire_once(make_store: Callable[[], EntityStore]) -> None:
    clock = Clock()
    store = make_store()
    svc = EntityService(order_chart(), store, clock=clock)
    svc.create("o", actor=ALICE)
    svc.send("o", "submit", actor=ALICE)
    assert svc.next_timer() == clock.t + 1800
    store.close()
    clock.t += 1801
    a = EntityService(order_chart(), make_store(), clock=clock)   # "after the restart"
    b = EntityService(order_chart(), make_store(), clock=clock)   # a second runner
    assert a.fire_due_timers() == 1
    assert b.fire_due_timers() == 0
    e = b.load("o")
    assert e.leaves == ("abandoned",) and e.done
    assert [h["event"] for h in b.history("o")][-1].startswith("after:paying")
    assert b.history("o")[-1]["actor"]["id"] == "system"
    assert a.next_timer() is None


def test_leaving_a_state_cancels_its_timer(make_store: Callable[[], EntityStore]) -> None:
    clock = Clock()
    svc = EntityService(order_chart(), make_store(), clock=clock)
    svc.create("o", actor=ALICE)
    svc.send("o", "submit", actor=ALICE)
    svc.send("o", "hold", actor=ALICE)
    assert svc.next_timer() is None
    clock.t += 10
    svc.send("o", "release", actor=ALICE)
    assert svc.next_timer() == clock.t + 1800  # re-armed from the new entry
    clock.t += 3600
    assert svc.fire_due_timers() == 1 and svc.load("o").leaves == ("abandoned",)


def test_a_timer_stays_armed_while_moving_inside_its_state(
        make_store: Callable[[], EntityStore]) -> None:
    clock = Clock()
    svc = EntityService(order_chart(), make_store(), clock=clock)
    svc.create("o", actor=ALICE)
    svc.send("o", "submit", actor=ALICE)
    svc.send("o", "authorized", actor=ALICE)  # still inside paying: timer stays armed
    clock.t += 1801
    assert svc.fire_due_timers() == 1
    assert svc.load("o").leaves == ("abandoned",)


# ---------------------------------------------------------------- NATS (optional)


@pytest.mark.server
def test_dispatch_to_nats_carries_the_idempotency_key(tmp_path) -> None:
    from runtime.servers import NatsServer, find_nats
    binary = find_nats()
    if binary is None:
        pytest.skip("nats-server not found (Debian: apt-get install nats-server)")
    nats = pytest.importorskip("nats", reason="nats-py is not installed: pip install nats-py")
    server = NatsServer(binary, str(tmp_path))
    server.start()
    try:
        from convergent.durable import open_store
        store = open_store(str(tmp_path / "n.db"))
        svc = EntityService(emitting_chart(), store)
        svc.create("m", actor=ALICE)
        r = svc.send("m", "send", {"to": "z"}, actor=ALICE)

        async def main() -> list:
            nc = await nats.connect(server.url)
            sub = await nc.subscribe("convergent.mail.send")
            d = Dispatcher(store, nats_publisher(nc))
            await d.dispatch_once()
            msg = await sub.next_msg(timeout=5)
            await nc.close()
            return [msg]

        [msg] = asyncio.run(main())
        assert json.loads(msg.data) == {"to": "z"}
        assert msg.headers["Nats-Msg-Id"] == f"{r.transition_id}/0"
        store.close()
    finally:
        server.close()


def test_run_timers_fires_due_timers_in_the_background(
        make_store: Callable[[], EntityStore]) -> None:
    clock = Clock(time.time())
    svc = EntityService(order_chart(), make_store(), clock=clock)
    svc.create("o", actor=ALICE)
    svc.send("o", "submit", actor=ALICE)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(svc.run_timers(stop, interval=0.02))
        await asyncio.sleep(0.05)
        assert svc.load("o").leaves == ("authorizing",)
        clock.t += 1801
        deadline = time.monotonic() + 10
        while svc.load("o").leaves != ("abandoned",) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert svc.load("o").leaves == ("abandoned",)
