"""Event-sourced entities on SQLite and PostgreSQL (the same tests on both)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.durable import (
    Actor,
    ConcurrencyError,
    DurableError,
    DurableStoreError,
    EffectError,
    EntityService,
    EntityStore,
    NotAuthorized,
    Statechart,
    UnknownEventError,
    assign,
    call,
    emit,
    open_store,
    verify_audit,
)
from convergent.durable.store import COPY_MIN_ROWS, Tx

from .charts import order_chart

ALICE = Actor.of("alice", "customer", "clerk")


def counter_chart(version: int = 1):
    c = Statechart("counter", version=version)
    c.int("n", 0, 100_000)
    c.state("on")
    c.state("off")
    c.on("on", "tick", None, actions=[assign(n="n + 1"), emit("counter.ticked")])
    c.on("on", "boom", None, actions=[call(lambda ctx: 1 / 0, name="boom")])
    c.on("on", "stop", "off")
    c.on("off", "start", "on")
    return c.build()


def test_create_send_load_and_history(make_store: Callable[[], EntityStore]) -> None:
    svc = EntityService(order_chart(), make_store())
    assert svc.create("o1", actor=ALICE).version == 1
    r = svc.send("o1", "submit", actor=ALICE)
    assert (r.outcome, r.version, r.from_leaves, r.to_leaves) == \
        ("applied", 2, ("cart",), ("authorizing",))
    svc.send("o1", "authorized", actor=ALICE)
    e = EntityService(order_chart(), make_store()).load("o1")  # another connection
    assert e.version == 3 and e.leaves == ("captured",) and e.config.vars["paid"] is True
    assert [h["event"] for h in svc.history("o1")] == ["$create", "submit", "authorized"]
    assert svc.history("o1")[1]["actor"] == {"id": "alice", "roles": ["clerk", "customer"]}


def test_misuse_is_refused_before_anything_is_written(
        make_store: Callable[[], EntityStore]) -> None:
    svc = EntityService(counter_chart(), make_store())
    with pytest.raises(DurableError, match="no such entity"):
        svc.send("c", "tick", actor=ALICE)
    svc.create("c", actor=ALICE)
    with pytest.raises(DurableError, match="already exists"):
        svc.create("c", actor=ALICE)
    with pytest.raises(UnknownEventError):
        svc.send("c", "tock", actor=ALICE)
    with pytest.raises(UnknownEventError):
        svc.send("c", "done.on", actor=ALICE)
    with pytest.raises(DurableError, match="entity id"):
        svc.send("x" * 500, "tick", actor=ALICE)
    with pytest.raises(EffectError, match="boom"):
        svc.send("c", "boom", actor=ALICE)
    assert svc.load("c").version == 1
    with svc.store.tx() as tx:
        assert tx.one("SELECT count(*) FROM dz_outbox")[0] == 0


def test_a_false_guard_is_ignored_and_writes_nothing(
        make_store: Callable[[], EntityStore]) -> None:
    svc = EntityService(counter_chart(), make_store())
    svc.create("c", actor=ALICE)
    r = svc.send("c", "start", actor=ALICE)
    assert r.outcome == "ignored" and r.version == 1 and r.transition_id is None
    assert len(svc.history("c")) == 1


def test_expected_version_conflict_raises_concurrency_error(
        make_store: Callable[[], EntityStore]) -> None:
    a = EntityService(counter_chart(), make_store())
    b = EntityService(counter_chart(), make_store())
    a.create("c", actor=ALICE)
    assert a.send("c", "tick", actor=ALICE, expected_version=1).version == 2
    b.send("c", "tick", actor=ALICE)  # b moves on; a's cache is now stale
    with pytest.raises(ConcurrencyError) as info:
        a.send("c", "tick", actor=ALICE, expected_version=2)
    assert (info.value.expected, info.value.actual) == (2, 3)
    assert a.send("c", "tick", actor=ALICE).version == 4  # no expectation: reloads
    assert a.load("c").config.vars["n"] == 3


def test_concurrent_writers_lose_nothing_and_double_nothing(
        make_store: Callable[[], EntityStore]) -> None:
    svc0 = EntityService(counter_chart(), make_store())
    svc0.create("c", actor=ALICE)
    per, writers = 15, 3
    services = [EntityService(counter_chart(), make_store()) for _ in range(writers)]
    errors: list[BaseException] = []

    def work(svc: EntityService) -> None:
        done = lost = 0
        while done < per:
            try:
                svc.send("c", "tick", actor=ALICE)
                done += 1
            except ConcurrencyError as exc:
                lost += 1  # lost the race three times: retry
                if lost > 500:  # a writer that never gets through: a bug
                    errors.append(exc)
                    return
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=work, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    e = svc0.load("c")
    assert e.version == 1 + per * writers and e.config.vars["n"] == per * writers
    with svc0.store.tx() as tx:
        assert tx.one("SELECT count(*) FROM dz_outbox")[0] == per * writers


def head_row(svc: EntityService, entity: str) -> tuple[object, ...]:
    with svc.store.tx() as tx:
        return tuple(tx.one("SELECT version, leaves, since, chart_version, done, updated_at "
                            "FROM dz_heads WHERE kind = ? AND entity = ?", (svc.kind, entity)))


@pytest.mark.parametrize("batched", [False, True])
def test_the_head_row_is_written_only_when_what_it_holds_changes(
        make_store: Callable[[], EntityStore], batched: bool) -> None:
    """An event that moves nothing leaves the head row (and its page)
    alone; the entity's version still comes out right, from its events."""
    svc = EntityService(counter_chart(), make_store())
    svc.create("c", actor=ALICE)
    created = head_row(svc, "c")
    if batched:
        svc.send_batch([("c", "tick", None)] * 5, actor=ALICE)
    else:
        for _ in range(5):
            svc.send("c", "tick", actor=ALICE)
    assert head_row(svc, "c") == created
    fresh = EntityService(counter_chart(), make_store())  # no cache
    e = fresh.load("c")
    assert (e.version, e.config.vars["n"], e.leaves) == (6, 5, ("on",))
    if batched:
        svc.send_batch([("c", "tick", None), ("c", "stop", None)], actor=ALICE)
    else:
        svc.send("c", "tick", actor=ALICE)
        svc.send("c", "stop", actor=ALICE)
    moved = head_row(svc, "c")
    assert moved[:2] == (8, '["off"]') and moved != created
    e = fresh.load("c")
    assert (e.version, e.config.vars["n"], e.leaves) == (8, 6, ("off",))
    assert fresh.exists("c") and fresh.load_at("c", 7).leaves == ("on",)


@pytest.mark.parametrize("batched", [False, True])
def test_a_stale_cache_is_rebuilt_after_another_writer_moved_nothing(
        make_store: Callable[[], EntityStore], batched: bool) -> None:
    """``b`` appends events that leave the head row as it was; ``a``'s
    cached copy is older and must be noticed (from the events), rebuilt and
    written on, not trusted and not reported as a conflict."""
    a = EntityService(counter_chart(), make_store())
    b = EntityService(counter_chart(), make_store())
    a.send_batch([(f"c{i}", "$create", {}) for i in range(3)], actor=ALICE)
    a.send_batch([(f"c{i}", "tick", None) for i in range(3)], actor=ALICE)  # cached at 2
    b.send_batch([("c1", "tick", None)] * 4, actor=ALICE)
    if batched:
        got = a.send_batch([(f"c{i}", "tick", None) for i in range(3)], actor=ALICE)
    else:
        got = [a.send(f"c{i}", "tick", actor=ALICE) for i in range(3)]
    assert [r.version for r in got] == [3, 7, 3]
    assert [EntityService(counter_chart(), make_store()).load(f"c{i}").config.vars["n"]
            for i in range(3)] == [2, 6, 2]


def _head_reads(svc: EntityService, items: list[tuple[str, str, None]]) -> tuple[Any, int]:
    """``svc.send_batch(items)`` and how many of its statements read heads."""
    statements: list[str] = []
    q = Tx.q

    def traced(self: Tx, sql: str, params: Sequence[Any] = ()) -> Any:
        statements.append(sql)
        return q(self, sql, params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Tx, "q", traced)
        got = svc.send_batch(items, actor=ALICE)
    assert statements
    return got, len([s for s in statements if "FROM dz_heads" in s])


@pytest.mark.parametrize("shared", [False, True])
def test_cached_heads_are_trusted_only_while_no_one_else_wrote(
        make_store: Callable[[], EntityStore], shared: bool) -> None:
    """Batch after batch, ``a`` skips reading the heads of entities it
    holds; a commit by another connection (``shared=False``) or by another
    service on the same connection (``shared=True``) must end that trust."""
    store = make_store()
    a = EntityService(counter_chart(), store)
    b = EntityService(counter_chart(), store if shared else make_store())
    names = [f"c{i}" for i in range(4)]
    a.send_batch([(e, "$create", {}) for e in names], actor=ALICE)
    for _ in range(2):
        a.send_batch([(e, "tick", None) for e in names], actor=ALICE)
    a.load("c0")  # reads (here and by b) write nothing: the trust stays
    assert b.exists("c1") and len(b.history("c2")) == 3
    _, reads = _head_reads(a, [(e, "tick", None) for e in names])
    assert reads == 0  # the third batch reads no head row at all
    b.send_batch([("c2", "tick", None)] * 3 + [("c3", "stop", None)], actor=ALICE)
    got = a.send_batch([(e, "tick", None) for e in names], actor=ALICE)
    assert [(r.outcome, r.version) for r in got] == \
        [("applied", 5), ("applied", 5), ("applied", 8), ("ignored", 5)]
    a.send_batch([("c3", "start", None), ("c3", "tick", None)], actor=ALICE)
    fresh = EntityService(counter_chart(), make_store())
    assert [fresh.load(e).config.vars["n"] for e in names] == [4, 4, 7, 4]
    assert [fresh.load(e).version for e in names] == [5, 5, 8, 7]
    with fresh.store.tx() as tx:
        heads = dict(tx.all("SELECT entity, leaves FROM dz_heads WHERE kind = 'counter'"))
    assert heads == {e: '["on"]' for e in names}


@pytest.mark.parametrize("shared", [False, True])
def test_own_single_sends_keep_the_trust_until_someone_else_writes(
        make_store: Callable[[], EntityStore], shared: bool) -> None:
    """A service's own sends between its batches (one moving a head) leave
    the cached heads trusted; a send by anyone else between them ends the
    trust, even when ``a`` sends again after it."""
    store = make_store()
    a = EntityService(counter_chart(), store)
    b = EntityService(counter_chart(), store if shared else make_store())
    names = [f"c{i}" for i in range(4)]
    ticks: list[tuple[str, str, None]] = [(e, "tick", None) for e in names]
    a.send_batch([(e, "$create", {}) for e in names], actor=ALICE)
    a.send_batch(ticks, actor=ALICE)
    a.send("c0", "tick", actor=ALICE)
    a.send("c1", "stop", actor=ALICE)
    got, reads = _head_reads(a, ticks)
    assert reads == 0
    assert [(r.outcome, r.version) for r in got] == \
        [("applied", 4), ("ignored", 3), ("applied", 3), ("applied", 3)]
    b.send("c2", "stop", actor=ALICE)
    a.send("c3", "tick", actor=ALICE)
    got, reads = _head_reads(a, ticks)
    assert reads > 0
    assert [(r.outcome, r.version) for r in got] == \
        [("applied", 5), ("ignored", 3), ("ignored", 4), ("applied", 5)]
    fresh = EntityService(counter_chart(), make_store())
    assert [fresh.load(e).config.vars["n"] for e in names] == [4, 1, 2, 4]


def test_a_single_send_with_many_commands(make_store: Callable[[], EntityStore]) -> None:
    """A single send whose step emits more commands than a batch would copy
    (PostgreSQL: COPY from COPY_MIN_ROWS rows) writes them all, once per
    send, and the chain stays whole."""
    c = Statechart("fan")
    c.int("n", 0, 1000)
    c.state("on")
    c.on("on", "burst", None,
         actions=[assign(n="n + 1"), *[emit(f"fan.part{i}") for i in range(COPY_MIN_ROWS + 4)]])
    store = make_store()
    svc = EntityService(c.build(), store)
    other = EntityService(c.build(), make_store())
    svc.create("f", actor=ALICE)
    svc.send("f", "burst", actor=ALICE)
    other.send("f", "burst", actor=ALICE)
    got = svc.send("f", "burst", actor=ALICE)
    assert (got.version, len(got.commands)) == (4, COPY_MIN_ROWS + 4)
    with store.tx() as tx:
        assert tx.one("SELECT count(*) FROM dz_outbox WHERE entity = 'f'")[0] == \
            3 * (COPY_MIN_ROWS + 4)
    assert EntityService(c.build(), make_store()).load("f").config.vars["n"] == 3
    assert verify_audit(store) == []


def test_concurrent_batches_lose_nothing_and_double_nothing(
        make_store: Callable[[], EntityStore]) -> None:
    """Writers racing with batches over shared entities: each batch is
    applied whole or refused whole (ConcurrencyError, then retried)."""
    svc0 = EntityService(counter_chart(), make_store())
    names = [f"c{i}" for i in range(4)]
    svc0.send_batch([(e, "$create", {}) for e in names], actor=ALICE)
    per, writers = 8, 3
    services = [EntityService(counter_chart(), make_store()) for _ in range(writers)]
    errors: list[BaseException] = []
    conflicts = [0]

    def work(svc: EntityService, k: int) -> None:
        done = 0
        while done < per:
            try:
                svc.send_batch([(names[(k + j) % 4], "tick", None) for j in range(6)],
                               actor=ALICE)
                done += 1
            except ConcurrencyError as exc:
                conflicts[0] += 1
                if conflicts[0] > 500:  # a writer that never gets through: a bug
                    errors.append(exc)
                    return
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=work, args=(s, k)) for k, s in enumerate(services)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    total = 0
    for e in names:
        got = EntityService(counter_chart(), make_store()).load(e)
        assert got.version == 1 + got.config.vars["n"]
        total += got.config.vars["n"]
    assert total == per * writers * 6
    with svc0.store.tx() as tx:
        assert tx.one("SELECT count(*) FROM dz_outbox")[0] == total


def test_event_and_audit_tables_are_append_only(make_store: Callable[[], EntityStore]) -> None:
    svc = EntityService(counter_chart(), make_store())
    svc.create("c", actor=ALICE)
    for sql in ("UPDATE dz_ev_counter SET event = 'x'", "DELETE FROM dz_ev_counter",
                "UPDATE dz_audit SET actor = 'mallory'", "DELETE FROM dz_audit"):
        with pytest.raises(DurableStoreError, match="append-only"):
            with svc.store.tx() as tx:
                tx.q(sql)
    assert len(svc.history("c")) == 1


def test_snapshots_are_used_and_ignored_when_the_chart_version_changed(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(counter_chart(), store, snapshot_every=3, cache_size=0)
    svc.create("c", actor=ALICE)
    for _ in range(7):
        svc.send("c", "tick", actor=ALICE)
    with store.tx() as tx:
        v, cv, _ = tx.one("SELECT version, chart_version, config FROM dz_snapshots")
        assert (v, cv) == (6, 1)
        # plant a lie in the snapshot: a reader that uses it will show it
        tx.q("UPDATE dz_snapshots SET config = ?",
             ('{"extra":{},"memory":{"(root)":"on"},"vars":{"n":500}}',))
    assert svc.load("c").config.vars["n"] == 502, "the snapshot (v6) plus two events"
    v2 = EntityService(counter_chart(version=2), store, snapshot_every=3, cache_size=0)
    assert v2.load("c").config.vars["n"] == 7, "chart v2 rebuilds from the events"
    v2.send("c", "tick", actor=ALICE)  # v9: a fresh snapshot under version 2
    with store.tx() as tx:
        assert tuple(tx.one("SELECT version, chart_version FROM dz_snapshots")) == (9, 2)
    assert v2.load("c").config.vars["n"] == 8


def test_a_snapshot_that_no_longer_fits_is_ignored(make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(counter_chart(), store, snapshot_every=2, cache_size=0)
    svc.create("c", actor=ALICE)
    svc.send("c", "tick", actor=ALICE)
    with store.tx() as tx:
        tx.q("UPDATE dz_snapshots SET config = ?",
             ('{"extra":{},"memory":{"(root)":"gone"},"vars":{"n":1}}',))
    assert svc.load("c").config.vars["n"] == 1 and svc.load("c").leaves == ("on",)


def test_idempotent_requests_return_the_first_result(
        make_store: Callable[[], EntityStore]) -> None:
    svc = EntityService(counter_chart(), make_store())
    svc.create("c", actor=ALICE, request_key="create-c")
    again = svc.create("c", actor=ALICE, request_key="create-c")
    assert again.replayed and again.version == 1
    first = svc.send("c", "tick", actor=ALICE, request_key="req-1")
    restarted = EntityService(counter_chart(), make_store())
    second = restarted.send("c", "tick", actor=ALICE, request_key="req-1")
    assert second.replayed and not first.replayed
    assert (second.version, second.transition_id, second.commands) == \
        (first.version, first.transition_id, first.commands)
    assert restarted.load("c").config.vars["n"] == 1
    with svc.store.tx() as tx:
        assert tx.one("SELECT count(*) FROM dz_outbox")[0] == 1


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.sampled_from(["submit", "authorized", "declined", "hold", "release",
                                        "ship", "pack", "invoice"]), max_size=20),
       every=st.integers(1, 5))
def test_snapshot_plus_tail_equals_full_replay(make_store: Callable[[], EntityStore],
                                               events: list[str], every: int) -> None:
    import uuid
    store = make_store()
    entity = uuid.uuid4().hex
    snap = EntityService(order_chart(), store, snapshot_every=every, cache_size=0)
    snap.create(entity, actor=ALICE)
    for e in events:
        snap.send(entity, e, actor=ALICE)
    a = snap.load(entity)
    plain = EntityService(order_chart(), store, snapshot_every=0, cache_size=0)
    with store.tx() as tx:
        tx.q("DELETE FROM dz_snapshots WHERE entity = ?", (entity,))
    b = plain.load(entity)
    assert (a.version, a.config, a.leaves) == (b.version, b.config, b.leaves)


def test_a_batch_is_one_transaction(make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(counter_chart(), store, snapshot_every=4)
    results = svc.send_batch([("a", "$create", {}), ("a", "tick", None), ("b", "$create", {}),
                              ("a", "tick", None), ("b", "tick", None), ("a", "stop", None),
                              ("a", "tick", None)], actor=ALICE)
    assert [r.outcome for r in results] == ["created", "applied", "created", "applied",
                                            "applied", "applied", "ignored"]
    assert svc.load("a").version == 4 and svc.load("a").config.vars["n"] == 2
    with pytest.raises(EffectError):
        svc.send_batch([("b", "tick", None), ("c", "$create", {}), ("b", "boom", None)],
                       actor=ALICE)
    assert svc.load("b").version == 2 and not svc.exists("c")
    fresh = EntityService(counter_chart(), make_store())
    assert fresh.load("a").config == svc.load("a").config


def test_a_refused_batch_item_rolls_back_the_batch_but_is_audited(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(order_chart(), store)
    svc.create("o", actor=ALICE)
    with pytest.raises(NotAuthorized):
        svc.send_batch([("o", "submit", None), ("o", "hold", None)],
                       actor=Actor.of("c", "customer"))
    assert svc.load("o").version == 1
    with store.tx() as tx:
        assert [r[0] for r in tx.all("SELECT outcome FROM dz_audit ORDER BY seq")] == \
            ["created", "rejected"]


@pytest.mark.server
def test_a_postgres_deadlock_is_a_conflict_and_the_connection_survives(
        postgres_url: str) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts
    one. The store classes that as a conflict (the service turns it into
    ConcurrencyError or a retry), not a unique violation, and keeps the
    loser's connection usable."""
    from convergent.durable import open_store

    from .conftest import _fresh_pg
    url = _fresh_pg(postgres_url)
    a, b = open_store(url), open_store(url)
    with a.tx() as tx:
        tx.q("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)")
        tx.q("INSERT INTO t VALUES (1, 0), (2, 0)")
    both_locked = threading.Barrier(2)
    lost: list[tuple[EntityStore, DurableStoreError]] = []

    def worker(store: EntityStore, first: int, second: int) -> None:
        try:
            with store.tx() as tx:
                tx.q("UPDATE t SET v = v + 1 WHERE id = ?", (first,))
                both_locked.wait(10)
                tx.q("UPDATE t SET v = v + 1 WHERE id = ?", (second,))
        except DurableStoreError as exc:
            lost.append((store, exc))

    threads = [threading.Thread(target=worker, args=(a, 1, 2)),
               threading.Thread(target=worker, args=(b, 2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(lost) == 1
    store, exc = lost[0]
    assert store.conflict(exc) and not store.unique_violation(exc)
    with store.tx() as tx:  # the same connection, still usable
        assert tx.one("SELECT sum(v) FROM t")[0] == 2
    a.close()
    b.close()


class _FailingCommit:
    """A SQLite connection whose next COMMIT fails (as a full disk or an I/O
    error would), leaving the transaction open."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.armed = True

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def test_a_failed_commit_rolls_back_and_the_store_goes_on(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a.db"))
    svc = EntityService(counter_chart(), store)
    svc.create("c", actor=ALICE)
    real = store._d._db  # type: ignore[attr-defined]
    store._d._db = _FailingCommit(real)  # type: ignore[attr-defined]
    with pytest.raises(DurableStoreError, match="disk I/O error"):
        svc.send("c", "tick", actor=ALICE)
    assert not real.in_transaction  # rolled back, not left open
    assert svc.send("c", "tick", actor=ALICE).version == 2  # the next call begins
    store._d._db = real  # type: ignore[attr-defined]
    again = EntityService(counter_chart(), open_store(str(tmp_path / "a.db")))
    assert again.load("c").config.vars["n"] == 1
    again.store.close()
    store.close()
