"""The batch fast path (``send_batch`` applying plan-proven steps in one
loop) writes exactly what the one-by-one full path writes: the same event,
audit, outbox, head, timer and snapshot rows, the same results and
exceptions, the same entity states and the same observer calls, on random
batches that mix plannable steps with ones that are not (``call`` actions,
opaque guards, completion events, failing guards), refused actors, ignored
events and several entities. The generator is checked to reach the fast
path often and the full path too. Also: audit chain version 2 (the cheaper
row encoding) keeps verifying version-1 rows and mixed chains, and detects
edits in both."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import sqlite3
import tempfile
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.durable import (
    ActionContext,
    Actor,
    Chart,
    ConcurrencyError,
    EntityService,
    Statechart,
    assign,
    call,
    emit,
    open_store,
    verify_audit,
)
from convergent.durable._writes import Writes
from convergent.durable.audit import CHAIN_VERSION, _mac, row_hash
from convergent.durable.observe import Observer, TransitionRecord

from .charts import ticker


def _poke(ctx: ActionContext) -> None:
    ctx.extra["pokes"] = int(ctx.extra.get("pokes", 0)) + 1
    ctx.emit("pump.poked", {"pokes": ctx.extra["pokes"]})


def pump() -> Chart:
    """Plannable steps (predicate guards, assigns, constant emits, history,
    a timer, a top-level final state) beside steps that never are: a ``call``
    action, an opaque guard, a completion event (``done.running``), a guard
    that fails at n = 3, an actor guard on the payload, roles, and a state
    whose entry needs the ``fraud`` role."""
    c = Statechart("pump")
    c.int("n", 0, 6)
    c.bool("alarm")
    c.state("idle", entry=[assign(alarm="false")])
    c.state("running", initial="slow", history="deep",
            exit=[emit("pump.stopped", {"why": "exit"})])
    c.state("slow", parent="running", entry=[assign(n="n + 1")])
    c.state("fast", parent="running")
    c.state("tail", parent="running", final=True)
    c.state("review", sensitive=True, entry_roles={"fraud"})
    c.state("broken", final=True)
    c.on("idle", "start", "running", guard="n < 5", actions=[emit("pump.started")])
    c.on("idle", "start", "broken", guard="n >= 5", actions=[assign(alarm="true")])
    c.on("running", "fill", None, actions=[assign(n="n + 1")])
    c.on("idle", "fill", None, actions=[assign(n="n + 1")])
    c.on("running", "drain", None, guard="n > 0", actions=[assign(n="n - 1")])
    c.on("slow", "faster", "fast", actions=[emit("pump.speed", {"to": "fast"}),
                                            emit("pump.log", {"n": 1})])
    c.on("fast", "slower", "slow")
    c.on("running", "stop", "idle", roles={"op"})
    c.on("running", "poke", None, actions=[call(_poke, name="poke")])
    c.on("idle", "poke", "running", guard=lambda g: int(g.extra.get("pokes", 0)) < 2)
    c.on("slow", "finish", "tail")
    c.on("running", "done.running", "idle", actions=[assign(n="0")])
    c.on("running", "flag", "review")
    c.on("review", "clear", "idle", roles={"fraud"})
    c.on("running", "boost", None, actions=[assign(n="n + 2")],
         actor_guard=lambda actor, payload: payload.get("ok", True) is True)
    c.on("idle", "risky", None, guard="6 / (n - 3) > 1", actions=[assign(n="n - 1")])
    # simultaneous: alarm reads n before this assignment's n + 1
    c.on("running", "swap", None, actions=[assign(n="n + 1", alarm="n >= 2"),
                                            assign(n="n - 1")])
    c.after("fast", timedelta(minutes=5), "slow")
    return c.build()


# weighted towards the steps that do not abort a batch, so most batches commit
EVENTS = ["fill"] * 5 + ["drain"] * 3 + ["start", "faster", "slower", "boost", "swap"] * 2 + \
    ["stop", "poke", "finish", "flag", "clear", "risky", "$create"]
ENTITIES = ["a", "b", "c", "d", "e"]  # d and e are never created up front
PAYLOADS: list[dict[str, Any] | None] = [None, {}, {"ok": False}, {"note": "x"}]
ACTORS = [Actor.of("ann", "op"), Actor.of("bob"), Actor.of("fay", "op", "fraud")]


class Recorder(Observer):
    """Every observer call, with the timing (which differs run to run) zeroed."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def transition(self, rec: TransitionRecord) -> None:
        self.calls.append(("transition", {**rec.__dict__, "seconds": 0.0}))

    def rejected(self, rec: TransitionRecord) -> None:
        self.calls.append(("rejected", {**rec.__dict__, "seconds": 0.0}))

    def ignored(self, kind: str, entity: str, event: str) -> None:
        self.calls.append(("ignored", kind, entity, event))


TABLES = ["dz_ev_pump", "dz_heads", "dz_audit", "dz_audit_heads", "dz_outbox", "dz_timers",
          "dz_snapshots", "dz_requests"]


def dump(path: str) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(path)
    try:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for t in TABLES}
    finally:
        con.close()


# one chart per side for the whole run, as a long-lived service has: the
# plans it learns carry over from example to example (each side its own)
CHARTS = {True: pump(), False: pump()}


class Side:
    """One service (fast path on or off) on its own database, with a
    deterministic clock and deterministic ids for refused attempts."""

    def __init__(self, folder: str, fast: bool, url: str | None = None,
                 cache_size: int = 1000) -> None:
        self.path = url or str(Path(folder) / ("fast.db" if fast else "slow.db"))
        self.ticks = itertools.count()
        self.ids = itertools.count(1)
        self.observer = Recorder()
        self.svc = EntityService(CHARTS[fast], open_store(self.path, synchronous="off"),
                                 clock=lambda: 1_000_000.0 + next(self.ticks),
                                 observers=(self.observer,), snapshot_every=3,
                                 fast_batches=fast, cache_size=cache_size)

    def run(self, batch: list[tuple[str, str, Any]], actor: Actor,
            monkeypatch: pytest.MonkeyPatch) -> Any:
        monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(self.ids)))
        try:
            return ("ok", self.svc.send_batch(batch, actor=actor))
        except Exception as exc:  # every refusal and error must match too
            return ("raised", type(exc).__name__, str(exc))

    def state(self) -> dict[str, Any]:
        out = {}
        for e in ENTITIES:
            try:
                got = self.svc.load(e)
                out[e] = (got.version, dict(got.config.memory), dict(got.config.vars),
                          dict(got.config.extra), got.leaves, dict(got.since), got.done)
            except Exception as exc:
                out[e] = type(exc).__name__
        return out


batch_items = st.tuples(st.sampled_from(["a", "b", "c"] * 3 + ["d"]), st.sampled_from(EVENTS),
                        st.sampled_from(PAYLOADS))
batches = st.lists(st.tuples(st.lists(batch_items, min_size=1, max_size=30),
                             st.sampled_from(ACTORS)), min_size=1, max_size=8)

TOTALS = {"items": 0, "fast": 0, "full": 0, "batches": 0, "committed": 0}


def check_same(plan: list[tuple[list[tuple[str, str, Any]], Actor]],
               cache_size: int = 1000) -> None:
    """``cache_size`` (the fast side's): 1 or 2 evict entries mid-batch,
    entries the fast path may be moving in place."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        fast, slow = Side(folder, True, cache_size=cache_size), Side(folder, False)
        first = [(e, "$create", {"k": e}) for e in ENTITIES[:3]]
        runs = [(first, ACTORS[0]), *plan]
        for batch, actor in runs:
            got_fast = fast.run(batch, actor, mp)
            got_slow = slow.run(batch, actor, mp)
            assert got_fast == got_slow, (batch, actor)
            TOTALS["items"] += len(batch)
            TOTALS["batches"] += 1
            TOTALS["committed"] += got_fast[0] == "ok"
        assert slow.svc.fast_hits == 0
        TOTALS["fast"] += fast.svc.fast_hits
        TOTALS["full"] += sum(len(b) for b, _ in runs) - fast.svc.fast_hits
        assert fast.state() == slow.state()
        assert fast.observer.calls == slow.observer.calls
        # every stored row agrees, table by table, and both chains verify
        for side in (fast, slow):
            side.svc.store.close()
        assert dump(fast.path) == dump(slow.path)
        for side in (fast, slow):
            store = open_store(side.path)
            try:
                assert verify_audit(store) == []
            finally:
                store.close()


@settings(max_examples=int(os.environ.get("BATCH_FAST_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.sampled_from([1, 2, 1000]))
def fast_equals_full(plan: list[tuple[list[tuple[str, str, Any]], Actor]],
                     cache_size: int) -> None:
    check_same(plan, cache_size)


def test_fast_batches_write_what_the_full_path_writes() -> None:
    TOTALS.update(items=0, fast=0, full=0, batches=0, committed=0)
    fast_equals_full()
    # the generator reaches both paths, the fast one for a good share of
    # items (20-30% of all generated, including those after an abort, which
    # never run), and both committed and aborted batches
    assert TOTALS["fast"] >= max(100, TOTALS["items"] // 8), TOTALS
    assert TOTALS["full"] >= TOTALS["items"] // 10, TOTALS
    assert TOTALS["batches"] // 4 <= TOTALS["committed"] < TOTALS["batches"], TOTALS


def test_a_batch_mixing_every_kind_of_step_matches_item_by_item() -> None:
    """A fixed batch through every branch: plannable steps (learnt on first
    use, then fast), a call action, an opaque guard, a completion event, an
    ignored event, a snapshot, a timer armed and cancelled, commands."""
    plan = [
        ([("a", "start", None), ("a", "fill", None), ("a", "fill", {"note": "x"}),
          ("b", "start", None), ("b", "faster", None), ("b", "slower", None),
          ("a", "drain", None), ("a", "poke", None), ("a", "fill", None),
          ("c", "faster", None), ("c", "poke", None), ("c", "fill", None),
          ("a", "faster", None), ("a", "slower", None), ("a", "finish", None),
          ("a", "fill", None), ("b", "fill", None), ("b", "boost", None)], ACTORS[0]),
        ([("a", "start", None), ("a", "fill", None), ("b", "fill", None),
          ("b", "drain", None), ("b", "faster", None), ("b", "boost", {"ok": True}),
          ("a", "fill", None), ("b", "swap", None), ("b", "drain", None)] * 3, ACTORS[0]),
        ([("b", "fill", None), ("b", "boost", {"ok": False})], ACTORS[0]),  # refused
        # allowed, then refused by the actor guard on the same (fast) move
        ([("b", "boost", None), ("b", "drain", None), ("b", "boost", {"ok": False})],
         ACTORS[0]),
        ([("b", "fill", None), ("b", "flag", None)], ACTORS[1]),  # entry role: refused
        ([("b", "stop", None)], ACTORS[1]),  # transition role: refused
        ([("c", "risky", None), ("c", "fill", None)], ACTORS[2]),
        # two entities into the top-level final state: learnt, then fast
        ([("d", "$create", {})] + [("d", "fill", None)] * 5 + [("d", "start", None)]
         + [("e", "$create", {})] + [("e", "fill", None)] * 5
         + [("e", "start", None), ("e", "fill", None)], ACTORS[2]),
    ]
    TOTALS.update(items=0, fast=0, full=0, batches=0, committed=0)
    check_same(plan)
    assert TOTALS["fast"] >= 15, TOTALS


def pg_dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    import psycopg
    with psycopg.connect(url) as db:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for t in TABLES}


@pytest.mark.server
def test_fast_and_full_batches_agree_on_postgres(postgres_url: str) -> None:
    """The fixed mixed batches on PostgreSQL (COPY, the staged head update):
    the same rows, results and states from both paths."""
    from .conftest import _fresh_pg
    plan = [
        ([("a", "start", None), ("b", "start", None)] + [("a", "fill", None),
          ("b", "faster", None), ("b", "slower", None), ("a", "poke", None),
          ("b", "swap", None), ("c", "fill", None)] * 6, ACTORS[0]),
        ([("a", "fill", None), ("b", "drain", None), ("a", "boost", {"ok": False})],
         ACTORS[0]),  # refused by the actor guard
        ([("a", "fill", None), ("b", "drain", None), ("c", "fill", None)] * 10, ACTORS[2]),
    ]
    with pytest.MonkeyPatch.context() as mp:
        fast = Side("", True, _fresh_pg(postgres_url))
        slow = Side("", False, _fresh_pg(postgres_url))
        for batch, actor in [([(e, "$create", {"k": e}) for e in "abc"], ACTORS[0]), *plan]:
            assert fast.run(batch, actor, mp) == slow.run(batch, actor, mp)
        assert fast.svc.fast_hits >= 40 and slow.svc.fast_hits == 0
        assert fast.state() == slow.state()
        assert fast.observer.calls == slow.observer.calls
        for side in (fast, slow):
            side.svc.store.close()
            store = open_store(side.path)
            try:
                assert verify_audit(store) == []
            finally:
                store.close()
        assert pg_dump(fast.path) == pg_dump(slow.path)


class Interloper(Observer):
    """Commits an event on ``entity`` through another connection while the
    batch is inside its transaction (``carry`` runs there), once."""

    def __init__(self, other: EntityService, entity: str) -> None:
        self.other, self.entity, self.armed = other, entity, False

    def carry(self, meta: dict[str, str]) -> dict[str, str]:
        if self.armed:
            self.armed = False
            self.other.send(self.entity, "tick", actor=ACTORS[0])
        return meta


@pytest.mark.server
def test_a_fast_batch_racing_a_writer_on_postgres_fails_whole(postgres_url: str) -> None:
    """A concurrent writer commits an event on one of the batch's entities
    while a fast batch is inside its transaction: ConcurrencyError, and the
    batch wrote nothing."""
    from .conftest import _fresh_pg
    url = _fresh_pg(postgres_url)
    other = EntityService(ticker(), open_store(url), cache_size=0)
    spy = Interloper(other, "t1")
    svc = EntityService(ticker(), open_store(url), observers=(spy,))
    svc.send_batch([(f"t{i}", "$create", {}) for i in range(3)], actor=ACTORS[0])
    svc.send_batch([(f"t{i}", "tick", None) for i in range(3)] * 2, actor=ACTORS[0])  # learn
    before = svc.fast_hits
    spy.armed = True
    with pytest.raises(ConcurrencyError):
        svc.send_batch([(f"t{i % 3}", "tick", None) for i in range(60)], actor=ACTORS[0])
    assert svc.fast_hits > before  # the items ran on the fast path
    assert [svc.load(f"t{i}").version for i in range(3)] == [3, 4, 3]  # + the interloper's
    assert svc.load("t0").config.vars["n"] == 2
    svc.store.close()
    other.store.close()


def test_a_single_send_losing_a_race_is_retried_whole(postgres_url: str) -> None:
    """On PostgreSQL a writer may commit between a single send's head read
    and its event insert (read committed): the insert collides on the
    event key, the send rolls back whole and is retried on fresh state;
    nothing of the failed attempt stays (the audit chain holds one row per
    committed step)."""
    from .conftest import _fresh_pg
    url = _fresh_pg(postgres_url)
    other = EntityService(ticker(), open_store(url), cache_size=0)
    fired = threading.Event()

    def interfere(ctx: ActionContext) -> None:
        if not fired.is_set():
            fired.set()
            t = threading.Thread(target=other.send, args=("e", "tick"),
                                 kwargs={"actor": ACTORS[0]})
            t.start()
            t.join(10)

    svc = EntityService(ticker(interfere), open_store(url))
    svc.create("e", actor=ACTORS[0])
    got = svc.send("e", "tick", actor=ACTORS[0])
    assert fired.is_set() and got.version == 3
    assert svc.load("e").config.vars["n"] == 2
    assert len(svc.history("e")) == 3
    with svc.store.tx() as tx:
        assert tx.one("SELECT count(*) FROM dz_audit WHERE entity = 'e'")[0] == 3
    assert verify_audit(svc.store) == []
    svc.store.close()
    other.store.close()


def test_fast_hits_count_items_the_fast_path_applied(tmp_path: Path) -> None:
    svc = EntityService(ticker(), open_store(str(tmp_path / "t.db"), synchronous="off"))
    svc.create("t", actor=ACTORS[0])
    svc.send_batch([("t", "tick", None)] * 10, actor=ACTORS[0])
    # the first tick ran in full (and taught the chart its plan), the rest were fast
    assert svc.fast_hits == 9
    assert svc.load("t").config.vars["n"] == 10
    svc.store.close()


def _tick_tock() -> Chart:
    c = Statechart("counter")
    c.int("n", 0, 1000)
    c.state("on")
    c.on("on", "tick", None, actions=[assign(n="n + 1")])
    c.on("on", "tock", None, actions=[assign(n="n + 2")])
    return c.build()


@pytest.mark.parametrize("failure", [RuntimeError("a bug"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_a_batch_failing_after_the_fast_path_moved_entries_leaves_no_trace_in_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> None:
    """The fast path moves cache entries in place; a batch that does not
    commit, whatever stops it, must not leave them moved. Another writer
    then reaches the same version by other steps: a moved entry would pass
    the version check and show the batch's state, never written."""
    db = str(tmp_path / "t.db")
    svc = EntityService(_tick_tock(), open_store(db, synchronous="off"))
    other = EntityService(_tick_tock(), open_store(db, synchronous="off"))
    svc.create("t", actor=ACTORS[0])
    svc.send_batch([("t", "tick", None)] * 3, actor=ACTORS[0])  # plans learnt; t cached

    def fail(self: Writes) -> None:
        raise failure

    hits = svc.fast_hits
    with monkeypatch.context() as m:
        m.setattr(Writes, "flush", fail)
        with pytest.raises(type(failure)):
            svc.send_batch([("t", "tick", None)] * 5, actor=ACTORS[0])
    assert svc.fast_hits == hits + 5  # the failed batch did run on the fast path
    other.send_batch([("t", "tock", None)] * 5, actor=ACTORS[0])
    e = svc.load("t")
    assert (e.version, e.config.vars["n"]) == (9, 3 + 10)  # the other writer's, not 3 + 5
    svc.send_batch([("t", "tick", None)], actor=ACTORS[0])
    assert svc.load("t").config.vars["n"] == 14
    svc.store.close()
    other.store.close()


# ---------------------------------------------------------------- audit chain versions


def _fields(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[1:13]  # after the chain column: seq .. reason


def _rehash_as_v1(db: str, upto: int | None = None, key: bytes | None = None) -> None:
    """Rewrite chain 'pump' (rows up to seq ``upto``) as version-1 rows, as
    a database written before chain version 2 holds them."""
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS dz_audit_no_update")
    rows = con.execute("SELECT * FROM dz_audit WHERE chain = 'pump' ORDER BY seq").fetchall()
    prev = ""
    for r in rows:
        seq = r[1]
        version = 1 if upto is None or seq <= upto else 2
        h = row_hash(prev, _fields(r), key, version)
        con.execute("UPDATE dz_audit SET prev = ?, hash = ? WHERE chain = 'pump' AND seq = ?",
                    (prev, h, seq))
        prev = h
    con.execute("UPDATE dz_audit_heads SET hash = ? WHERE chain = 'pump'", (prev,))
    con.commit()
    con.close()


def _audit_db(tmp_path: Path, key: bytes | None = None) -> str:
    db = str(tmp_path / "chain.db")
    svc = EntityService(pump(), open_store(db), audit_key=key)
    svc.send_batch([(e, "$create", {}) for e in "abcd"], actor=ACTORS[0])
    svc.send_batch([("a", "start", None), ("a", "fill", None), ("b", "fill", None),
                    ("a", "faster", None)], actor=ACTORS[0])
    svc.store.close()
    return db


def _problems(db: str, key: bytes | None = None) -> list[str]:
    store = open_store(db)
    try:
        return verify_audit(store, key=key)
    finally:
        store.close()


def _tamper(db: str, sql: str) -> None:
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS dz_audit_no_update")
    con.execute("DROP TRIGGER IF EXISTS dz_audit_no_delete")
    con.execute(sql)
    con.commit()
    con.close()


def test_new_rows_are_chain_version_2(tmp_path: Path) -> None:
    assert CHAIN_VERSION == 2
    db = _audit_db(tmp_path)
    con = sqlite3.connect(db)
    hashes = [h for (h,) in con.execute("SELECT hash FROM dz_audit")]
    con.close()
    assert hashes and all(h.startswith("2:") and len(h) == 66 for h in hashes)
    assert _problems(db) == []


@pytest.mark.parametrize("key", [None, b"secret-key"])
@pytest.mark.parametrize("upto", [None, 4])  # all version 1; versions 1 then 2
@pytest.mark.parametrize("edit, expect", [
    ("UPDATE dz_audit SET actor = 'mallory' WHERE chain = 'pump' AND seq = 2",
     "row seq 2: hash does not match"),
    ("UPDATE dz_audit SET to_state = 'idle' WHERE chain = 'pump' AND seq = 6",
     "row seq 6: hash does not match"),
    ("DELETE FROM dz_audit WHERE chain = 'pump' AND seq = 3", "row seq 4: expected seq 3"),
    ("DELETE FROM dz_audit WHERE chain = 'pump' AND seq = 8", "rows deleted at the end"),
    ("INSERT INTO dz_audit SELECT chain, 9, at, kind, entity, transition_id, actor, event, "
     "from_state, to_state, trace_id, outcome, reason, hash, hash FROM dz_audit "
     "WHERE chain = 'pump' AND seq = 8", "row seq 9: hash does not match"),
    ("UPDATE dz_audit SET seq = -5 WHERE chain = 'pump' AND seq = 5", "expected seq"),
])
def test_version_1_and_mixed_chains_verify_and_detect_edits(
        tmp_path: Path, key: bytes | None, upto: int | None, edit: str, expect: str) -> None:
    db = _audit_db(tmp_path, key)
    _rehash_as_v1(db, upto, key)
    con = sqlite3.connect(db)
    hashes = [h for (h,) in con.execute(
        "SELECT hash FROM dz_audit WHERE chain = 'pump' ORDER BY seq")]
    con.close()
    assert len(hashes) == 8
    assert [h.startswith("2:") for h in hashes] == [upto is not None and i + 1 > upto
                                                    for i in range(8)]
    assert _problems(db, key) == []
    _tamper(db, edit)
    found = _problems(db, key)
    assert any(expect in p for p in found), found


def test_a_row_cannot_be_passed_off_under_the_other_version(tmp_path: Path) -> None:
    """Relabelling a version-2 hash as version 1 (or back) breaks the row."""
    db = _audit_db(tmp_path)
    _tamper(db, "UPDATE dz_audit SET hash = substr(hash, 3) WHERE chain = 'pump' AND seq = 3")
    assert any("row seq 3: hash does not match" in p for p in _problems(db))
    (tmp_path / "v1").mkdir()
    db = _audit_db(tmp_path / "v1")
    _rehash_as_v1(db)
    _tamper(db, "UPDATE dz_audit SET hash = '2:' || hash WHERE chain = 'pump' AND seq = 3")
    assert any("row seq 3: hash does not match" in p for p in _problems(db))


def test_a_field_holding_the_separator_is_still_unambiguous(tmp_path: Path) -> None:
    """Version 2 joins fields with U+001F; a field containing it makes the
    row fall back to JSON, so two different rows never hash alike."""
    a = (1, "t", "k", "e", "id", "x\x1fy", "ev", "s", "s", "", "applied", "")
    b = (1, "t", "k", "e", "id", "x", "y\x1fev", "s", "s", "", "applied", "")
    assert row_hash("", a, None) != row_hash("", b, None)
    db = str(tmp_path / "sep.db")
    svc = EntityService(pump(), open_store(db))
    svc.create("a", actor=Actor.of("odd\x1factor", "op"))
    svc.send_batch([("a", "start", None), ("a", "fill", None)],
                   actor=Actor.of("odd\x1factor", "op"))
    svc.store.close()
    assert _problems(db) == []
    _tamper(db, "UPDATE dz_audit SET actor = 'odd' WHERE chain = 'pump' AND seq = 2")
    assert any("row seq 2: hash does not match" in p for p in _problems(db))


def test_nulls_and_types_are_part_of_a_row_text(tmp_path: Path) -> None:
    """A NULL is not the text 'None', a record separator in a field is not a
    NULL, and a blob written over a text field is an edit, not a crash (a
    row's text must be injective, types included)."""
    base = (1, "t", "k", "e", "id", "actor", "ev", "s", "s", "", "applied", "")
    texts = {row_hash("", (*base[:9], x, *base[10:]), None)
             for x in (None, "None", "\x1e", "", "[]", "null")}
    assert len(texts) == 6
    db = str(tmp_path / "null.db")
    svc = EntityService(pump(), open_store(db))
    svc.create("a", actor=Actor.of("ann", "op"))
    svc.send_batch([("a", "start", None), ("a", "fill", None)], actor=Actor.of("ann", "op"))
    svc.store.close()
    assert _problems(db) == []
    # (the columns are NOT NULL; a blob still fits a text column in SQLite)
    _tamper(db, "UPDATE dz_audit SET reason = X'00ff' WHERE chain = 'pump' AND seq = 3")
    assert any("row seq 3: hash does not match" in p for p in _problems(db))


@pytest.mark.parametrize("key", [b"", b"k", b"k" * 64, b"k" * 65, bytes(range(200))])
def test_the_precomputed_hmac_is_hmac_sha256(key: bytes) -> None:
    for data in (b"", b"row", bytes(range(256)) * 3):
        assert _mac(key)(data) == hmac.new(key, data, hashlib.sha256).hexdigest()
