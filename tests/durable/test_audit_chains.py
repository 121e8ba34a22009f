"""One audit chain per entity kind: every edited, deleted, inserted or
reordered row is reported against its chain, as is a truncated tail
(including the last row, and a whole chain with its head), and rows from
before chains were per kind stay verifiable as chain ''."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from convergent.durable import Actor, EntityService, NotAuthorized, open_store, verify_audit
from convergent.durable.audit import audit_report

from .charts import order_chart, ticker

ALICE = Actor.of("alice", "customer")
CLERK = Actor.of("carol", "clerk")


def two_kinds(db: str) -> None:
    """Chain 'order': 5 rows (created, submit, rejected hold, hold,
    release); chain 'counter': 4 rows (created, 3 ticks)."""
    store = open_store(db)
    orders = EntityService(order_chart(), store)
    counters = EntityService(ticker(), store)
    orders.create("o", actor=ALICE)
    counters.create("c", actor=ALICE)
    orders.send("o", "submit", actor=ALICE)
    counters.send_batch([("c", "tick", None)] * 3, actor=ALICE)
    with pytest.raises(NotAuthorized):
        orders.send("o", "hold", actor=ALICE)
    orders.send("o", "hold", actor=CLERK)
    orders.send("o", "release", actor=CLERK)
    store.close()


def tamper(db: str, *sql: str) -> None:
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS dz_audit_no_update")
    con.execute("DROP TRIGGER IF EXISTS dz_audit_no_delete")
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()


def problems(db: str) -> list[str]:
    store = open_store(db)
    try:
        return verify_audit(store)
    finally:
        store.close()


def test_each_kind_has_its_own_intact_chain(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    two_kinds(db)
    store = open_store(db)
    report = audit_report(store)
    store.close()
    assert report.ok and report.rows == 9
    assert {c: n for c, (n, _) in report.heads.items()} == {"order": 5, "counter": 4}
    con = sqlite3.connect(db)
    seqs = con.execute("SELECT chain, seq, outcome FROM dz_audit ORDER BY chain, seq").fetchall()
    con.close()
    assert [s for c, s, _ in seqs if c == "order"] == [1, 2, 3, 4, 5]
    assert [o for c, _, o in seqs if c == "order"][2] == "rejected"
    assert [s for c, s, _ in seqs if c == "counter"] == [1, 2, 3, 4]


@pytest.mark.parametrize("edits, expect", [
    # an edited field
    (["UPDATE dz_audit SET actor = 'mallory' WHERE chain = 'order' AND seq = 2"],
     "chain 'order' row seq 2: hash does not match"),
    # a deleted row in the middle
    (["DELETE FROM dz_audit WHERE chain = 'counter' AND seq = 2"],
     "chain 'counter' row seq 3: expected seq 2"),
    # two rows swapped (reordered): the links no longer meet
    (["UPDATE dz_audit SET seq = -3 WHERE chain = 'order' AND seq = 3",
      "UPDATE dz_audit SET seq = 3 WHERE chain = 'order' AND seq = 4",
      "UPDATE dz_audit SET seq = 4 WHERE chain = 'order' AND seq = -3"],
     "chain 'order' row seq 3: prev hash does not match"),
    # the last row of a chain
    (["DELETE FROM dz_audit WHERE chain = 'order' AND seq = 5"],
     "chain 'order': the head says 5 rows ending in"),
    # every row of a chain, its head left
    (["DELETE FROM dz_audit WHERE chain = 'counter'"],
     "chain 'counter': the head says 4 rows ending in"),
    # the head of a chain
    (["DELETE FROM dz_audit_heads WHERE chain = 'order'"],
     "chain 'order': its head row is missing"),
    # a whole chain with its head: the kind's event table still names it
    (["DELETE FROM dz_audit WHERE chain = 'counter'",
      "DELETE FROM dz_audit_heads WHERE chain = 'counter'"],
     "chain 'counter': its head row is missing"),
    # a forged row appended to a chain, head untouched
    (["INSERT INTO dz_audit SELECT chain, 6, at, kind, entity, transition_id, actor, event, "
      "from_state, to_state, trace_id, outcome, reason, hash, hash FROM dz_audit "
      "WHERE chain = 'order' AND seq = 5"],
     "chain 'order' row seq 6: hash does not match"),
    # a row moved from one chain to the end of another
    (["UPDATE dz_audit SET chain = 'counter', seq = 5 WHERE chain = 'order' AND seq = 5"],
     "chain 'counter': the head says 4 rows"),
])
def test_every_tampering_is_named_with_its_chain(tmp_path: Path, edits: list[str],
                                                 expect: str) -> None:
    db = str(tmp_path / "a.db")
    two_kinds(db)
    assert problems(db) == []
    tamper(db, *edits)
    found = problems(db)
    assert any(expect in p for p in found), found


def test_a_broken_chain_does_not_implicate_the_other(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    two_kinds(db)
    tamper(db, "DELETE FROM dz_audit WHERE chain = 'order' AND seq = 5")
    found = problems(db)
    assert found and all("chain 'order'" in p for p in found)


def to_single_chain_layout(db: str) -> None:
    """The layout before step 0003: one global chain (dz_audit without a
    chain column, a one-row dz_audit_head), steps 0003 not recorded."""
    tamper(db, """CREATE TABLE dz_audit_old (
             seq BIGINT PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
             entity TEXT NOT NULL, transition_id TEXT NOT NULL, actor TEXT NOT NULL,
             event TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
             trace_id TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
             prev TEXT NOT NULL, hash TEXT NOT NULL)""",
           "INSERT INTO dz_audit_old SELECT seq, at, kind, entity, transition_id, actor, event, "
           "from_state, to_state, trace_id, outcome, reason, prev, hash FROM dz_audit",
           "DROP TABLE dz_audit",
           "ALTER TABLE dz_audit_old RENAME TO dz_audit",
           "CREATE TABLE dz_audit_head (id INTEGER PRIMARY KEY, seq BIGINT, hash TEXT)",
           "INSERT INTO dz_audit_head SELECT 1, seq, hash FROM dz_audit_heads "
           "WHERE chain = 'order'",
           "DROP TABLE dz_audit_heads",
           "DELETE FROM dz_migrations WHERE name IN ('0003_audit_chains', 'kind_order_0003')")


def test_rows_of_the_single_chain_layout_migrate_as_chain_empty(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    store = open_store(db)
    svc = EntityService(order_chart(), store)
    svc.create("o", actor=ALICE)
    svc.send("o", "submit", actor=ALICE)
    svc.send("o", "hold", actor=CLERK)
    store.close()
    to_single_chain_layout(db)
    store = open_store(db)  # migrates: the old rows become chain ''
    report = audit_report(store)
    assert report.ok, report.problems
    assert report.heads == {"": (3, report.heads[""][1]), "order": (0, "")}
    svc = EntityService(order_chart(), store)
    svc.send("o", "release", actor=CLERK)  # new rows start the kind's own chain
    report = audit_report(store)
    store.close()
    assert report.ok and report.heads["order"][0] == 1 and report.rows == 4
    tamper(db, "UPDATE dz_audit SET reason = 'x' WHERE chain = '' AND seq = 2")
    assert any("chain '' row seq 2: hash does not match" in p for p in problems(db))
