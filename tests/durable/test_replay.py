"""Rebuilding an entity checks every replayed event against the state stored
with it: an edited chart without a version bump, or an edited event row,
is a clear ``ReplayError`` naming the entity, the event number and both
states, never a silently different entity."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from convergent.durable import (
    Actor,
    Chart,
    EntityService,
    EntityStore,
    ReplayError,
    Statechart,
    open_store,
)

BOB = Actor.of("bob", "clerk")


def door(open_to: str = "open") -> Chart:
    """closed -(open)-> ``open_to``; the edited variant sends it elsewhere
    under the same name and version."""
    c = Statechart("door")
    c.state("closed")
    c.state("open")
    c.state("ajar")
    c.on("closed", "open", open_to)
    c.on("open", "close", "closed")
    c.on("ajar", "close", "closed")
    c.on("closed", "nudge", "ajar")
    c.on("ajar", "push", "open")
    return c.build()


def _write_history(svc: EntityService) -> None:
    svc.create("d1", actor=BOB)
    svc.send("d1", "open", actor=BOB)      # version 2: closed -> open
    svc.send("d1", "close", actor=BOB)     # version 3
    svc.send("d1", "open", actor=BOB)      # version 4


def test_an_edited_chart_without_a_version_bump_is_named(
        make_store: Callable[[], EntityStore]) -> None:
    _write_history(EntityService(door(), make_store(), snapshot_every=0))
    edited = EntityService(door(open_to="ajar"), make_store(), snapshot_every=0)
    with pytest.raises(ReplayError) as err:
        edited.load("d1")
    e = err.value
    assert (e.kind, e.entity, e.version, e.event) == ("door", "d1", 2, "open")
    assert e.stored == ["open"] and e.replayed == ["ajar"]
    assert "door/d1: event 2 ('open')" in str(e) and "['open']" in str(e) \
        and "['ajar']" in str(e)
    # the unedited definition still rebuilds the entity
    assert EntityService(door(), make_store()).load("d1").leaves == ("open",)


def test_a_write_refuses_to_continue_from_a_mismatched_history(
        make_store: Callable[[], EntityStore]) -> None:
    _write_history(EntityService(door(), make_store(), snapshot_every=0))
    edited = EntityService(door(open_to="ajar"), make_store(), snapshot_every=0)
    with pytest.raises(ReplayError):
        edited.send("d1", "close", actor=BOB)
    assert EntityService(door(), make_store()).load("d1").version == 4  # nothing written


def _tamper(db: str, sql: str) -> None:
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER dz_ev_door_no_update")
    con.execute(sql)
    con.commit()
    con.close()


def test_a_tampered_event_name_is_named(tmp_path: Path) -> None:
    db = str(tmp_path / "door.db")
    _write_history(EntityService(door(), open_store(db), snapshot_every=0))
    # version 3 was 'close' (open -> closed); as 'nudge' it enables nothing from 'open'
    _tamper(db, "UPDATE dz_ev_door SET event = 'nudge' WHERE entity = 'd1' AND version = 3")
    with pytest.raises(ReplayError) as err:
        EntityService(door(), open_store(db), cache_size=0).load("d1")
    assert (err.value.version, err.value.event) == (3, "nudge")
    assert err.value.stored == ["closed"]
    assert err.value.replayed == ["(no transition enabled)"]


def test_a_tampered_stored_state_is_named(tmp_path: Path) -> None:
    db = str(tmp_path / "door.db")
    _write_history(EntityService(door(), open_store(db), snapshot_every=0))
    _tamper(db, "UPDATE dz_ev_door SET to_leaves = '[\"ajar\"]' WHERE entity = 'd1' "
                "AND version = 4")
    with pytest.raises(ReplayError) as err:
        EntityService(door(), open_store(db), cache_size=0).load("d1")
    assert (err.value.version, err.value.stored, err.value.replayed) == (4, ["ajar"], ["open"])


def test_a_version_bump_replays_old_events_under_their_own_chart(
        make_store: Callable[[], EntityStore]) -> None:
    _write_history(EntityService(door(), make_store(), snapshot_every=0))
    c = Statechart("door", version=2)
    c.state("closed")
    c.state("open")
    c.state("ajar")
    c.on("closed", "open", "ajar")
    c.on("open", "close", "closed")
    c.on("ajar", "close", "closed")
    c.on("closed", "nudge", "ajar")
    c.on("ajar", "push", "open")
    svc = EntityService(c.build(), make_store(), versions={1: door()})
    assert svc.load("d1").leaves == ("open",)
