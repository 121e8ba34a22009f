"""Versioned charts, migrations, shadow execution, the go-live gate, and
the testing helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from convergent.durable import (
    Actor,
    DurableError,
    EntityService,
    EntityStore,
    Statechart,
    UnknownEventError,
    assign,
    open_store,
)
from convergent.durable.evolve import Shadow, check_upgrade
from convergent.durable.testing import entity_machine, reconcile

from .charts import order_chart

OPS = Actor.of("ops", "admin")


def ticket(version: int, *, reopen_to: str = "open", extra_state: bool = False,
           broken: bool = False):
    c = Statechart("ticket", version=version)
    c.int("reopened", 0, 5)
    c.state("open", stuck_after=timedelta(hours=1))
    c.state("closed")
    c.on("open", "close", "closed")
    if extra_state:
        c.state("triage")
        c.on("closed", "reopen", "triage", actions=[assign(reopened="reopened + 1")])
        c.on("triage", "accept", "open")
    else:
        c.on("closed", "reopen", reopen_to, actions=[assign(reopened="reopened + 1")])
    c.after("open", timedelta(days=1), "closed")
    if broken:
        c.parallel("p")
        c.state("r1", parent="p")
        c.state("r2", parent="p")
        c.on("closed", "split", "p")
        c.on("r1", "double", None, actions=[assign(reopened="reopened * 2")])
        c.on("r2", "inc", None, actions=[assign(reopened="reopened + 1")])
        c.independent("double", "inc")
    return c.build()


def test_entities_stay_on_their_version_until_migrated(
        make_store: Callable[[], EntityStore]) -> None:
    v1 = EntityService(ticket(1), make_store())
    v1.create("t1", actor=OPS)
    v1.send("t1", "close", actor=OPS)
    live = EntityService(ticket(2, extra_state=True), make_store(), versions={1: ticket(1)})
    live.create("t2", actor=OPS)
    live.send("t2", "close", actor=OPS)
    assert live.send("t1", "reopen", actor=OPS).to_leaves == ("open",)     # v1 rules
    assert live.send("t2", "reopen", actor=OPS).to_leaves == ("triage",)   # v2 rules
    with pytest.raises(UnknownEventError, match="version 1"):
        live.send("t1", "accept", actor=OPS)
    assert live.load("t1").chart_version == 1 and live.load("t2").chart_version == 2
    live.send("t1", "close", actor=OPS)
    r = live.migrate("t1", 2, actor=OPS)
    assert r.outcome == "migrated"
    assert live.send("t1", "reopen", actor=OPS).to_leaves == ("triage",)
    again = EntityService(ticket(2, extra_state=True), make_store(), versions={1: ticket(1)})
    t1 = again.load("t1")
    assert (t1.chart_version, t1.leaves, t1.config.vars["reopened"]) == (2, ("triage",), 2)
    assert [h["chart_version"] for h in again.history("t1")] == [1, 1, 1, 1, 2, 2]


def test_a_migration_function_moves_entities_out_of_dropped_states(
        make_store: Callable[[], EntityStore]) -> None:
    v2 = ticket(2, extra_state=True)
    svc = EntityService(ticket(3), make_store(), versions={2: v2})
    old = EntityService(v2, svc.store)
    old.create("t", actor=OPS)
    old.send("t", "close", actor=OPS)
    old.send("t", "reopen", actor=OPS)                # in triage, which v3 drops
    with pytest.raises(DurableError, match="does not fit"):
        svc.migrate("t", 3, actor=OPS)

    def move(cfg):
        d = cfg.to_dict()
        if d["memory"]["(root)"] == "triage":
            d["memory"]["(root)"] = "open"
        return d

    with pytest.raises(DurableError, match="drops states"):
        check_upgrade(v2, ticket(3))
    assert check_upgrade(v2, ticket(3), migration=move).ok
    svc.migrate("t", 3, move, actor=OPS)
    e = svc.load("t")
    assert e.leaves == ("open",) and e.config.vars["reopened"] == 1
    assert svc.next_timer() is not None              # open's timer armed by the migration


def test_a_version_that_does_not_verify_may_not_go_live(
        make_store: Callable[[], EntityStore]) -> None:
    bad = ticket(2, broken=True)
    with pytest.raises(DurableError, match="does not verify"):
        check_upgrade(ticket(1), bad)
    with pytest.raises(DurableError, match="may not go live"):
        EntityService(bad, make_store(), versions={1: ticket(1)}, require_verified=True)
    svc = EntityService(bad, make_store(), versions={1: ticket(1)})
    old = EntityService(ticket(1), svc.store)
    old.create("t", actor=OPS)
    with pytest.raises(DurableError, match="may not go live"):
        svc.migrate("t", 2, actor=OPS)
    assert svc.load("t").chart_version == 1


def test_shadow_reports_each_divergence_and_writes_nothing(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    live = EntityService(ticket(1), store)
    shadow = Shadow(live, ticket(2, reopen_to="closed"))
    live.observers = (shadow,)
    live.create("t", actor=OPS)
    live.send("t", "close", actor=OPS)
    live.send("t", "reopen", actor=OPS)              # v2 would stay closed: divergence
    live.send("t", "close", actor=OPS)
    assert shadow.compared == 4
    assert [(d.entity, d.version, d.event, d.live, d.candidate, d.detail)
            for d in shadow.divergences] == [
        ("t", 3, "reopen", ("open",), ("closed",), "the candidate ends in other states"),
        ("t", 4, "close", ("closed",), ("closed",), "no transition of the candidate is enabled")]
    with store.tx() as tx:
        assert tx.one("SELECT count(*) FROM dz_ev_ticket")[0] == 4
        assert tx.one("SELECT count(*) FROM dz_audit")[0] == 4
    agreeing = Shadow(live, ticket(2))
    live.observers = (agreeing,)
    live.send("t", "reopen", actor=OPS)
    live.send("t", "close", actor=OPS)
    assert agreeing.compared == 2 and agreeing.divergences == []


def test_shadow_with_a_migration_starts_mid_life(make_store: Callable[[], EntityStore]) -> None:
    live = EntityService(ticket(1), make_store())
    live.create("t", actor=OPS)
    live.send("t", "close", actor=OPS)
    shadow = Shadow(live, ticket(2, extra_state=True))
    live.observers = (shadow,)
    live.send("t", "reopen", actor=OPS)
    assert [(d.live, d.candidate) for d in shadow.divergences] == [(("open",), ("triage",))]


def test_hypothesis_entity_machine_finds_nothing_wrong_with_the_order_chart(
        tmp_path: Path) -> None:
    n = [0]

    def make() -> EntityService:
        n[0] += 1
        return EntityService(order_chart(), open_store(str(tmp_path / f"m{n[0]}.db")),
                             snapshot_every=3)

    machine = entity_machine(make, order_chart())
    run_state_machine_as_test(machine, settings=settings(max_examples=8,
                                                         stateful_step_count=12,
                                                         deadline=None))


def test_hypothesis_entity_machine_catches_a_broken_idempotency(tmp_path: Path) -> None:
    """The helper can fail: a service whose request records are lost is caught."""
    n = [0]

    class Forgetful(EntityService):
        def _record_request(self, w, key, entity, res):  # type: ignore[no-untyped-def]
            return None

    def make() -> EntityService:
        n[0] += 1
        return Forgetful(order_chart(), open_store(str(tmp_path / f"f{n[0]}.db")))

    machine = entity_machine(make, order_chart())
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine, settings=settings(max_examples=30,
                                                             stateful_step_count=10,
                                                             deadline=None))


def test_reconcile_finds_stuck_entities(make_store: Callable[[], EntityStore]) -> None:
    clock = [1000.0]
    svc = EntityService(ticket(1), make_store(), clock=lambda: clock[0])
    svc.create("a", actor=OPS)
    svc.create("b", actor=OPS)
    svc.send("b", "close", actor=OPS)
    clock[0] += 3601
    seen: list[str] = []
    found = reconcile(svc, lambda e, s, secs: seen.append(f"{e}:{s}:{int(secs)}"))
    assert seen == ["a:open:3601"] and len(found) == 1
