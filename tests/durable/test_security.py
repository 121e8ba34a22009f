"""Authorization of events, sensitive states, the audit chain, envelopes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from convergent.durable import (
    NEUTRAL,
    Actor,
    EntityService,
    EntityStore,
    Envelope,
    EnvelopePolicy,
    EnvelopeRejected,
    NotAuthorized,
    Statechart,
    open_store,
    verify_audit,
)
from convergent.durable.cli import main as cli_main

from .charts import order_chart

ALICE = Actor.of("alice", "customer")
CLERK = Actor.of("carl", "clerk")
FRAUD = Actor.of("fiona", "fraud")


def audit_rows(store: EntityStore) -> list[tuple]:
    with store.tx() as tx:
        return [tuple(r) for r in tx.all("SELECT actor, event, outcome, reason, from_state, "
                                         "to_state FROM dz_audit ORDER BY seq")]


def test_roles_are_checked_per_event_and_rejections_recorded(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(order_chart(), store)
    svc.create("o", actor=ALICE)
    with pytest.raises(NotAuthorized, match="needs one of the roles customer"):
        svc.send("o", "submit", actor=CLERK)
    svc.send("o", "submit", actor=ALICE)
    with pytest.raises(NotAuthorized):
        svc.send("o", "hold", actor=ALICE)
    svc.send("o", "hold", actor=CLERK)
    rows = audit_rows(store)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("alice", "$create", "created"), ("carl", "submit", "rejected"),
        ("alice", "submit", "applied"), ("alice", "hold", "rejected"),
        ("carl", "hold", "applied")]
    assert "customer" in rows[1][3] and rows[1][4] == rows[1][5] == "cart"
    assert svc.load("o").version == 3  # rejected attempts write no event


def test_actor_guards_refine_roles(make_store: Callable[[], EntityStore]) -> None:
    c = Statechart("doc")
    c.state("draft")
    c.state("approved")
    c.on("draft", "approve", "approved", roles={"editor"},
         actor_guard=lambda actor, payload: actor.id != payload.get("author"))
    svc = EntityService(c.build(), make_store())
    svc.create("d", actor=Actor.of("ann"))
    editor = Actor.of("ann", "editor")
    with pytest.raises(NotAuthorized, match="actor guard"):
        svc.send("d", "approve", {"author": "ann"}, actor=editor)
    assert svc.send("d", "approve", {"author": "bob"}, actor=editor).outcome == "applied"


def test_sensitive_state_entry_needs_roles_and_reads_neutral(
        make_store: Callable[[], EntityStore]) -> None:
    svc = EntityService(order_chart(), make_store())
    svc.create("o", actor=ALICE, extra={"card": "4111-1111", "note": "hi"})
    svc.send("o", "submit", actor=ALICE)
    with pytest.raises(NotAuthorized, match="entering 'review' needs one of the roles fraud"):
        svc.send("o", "flag", actor=ALICE)
    svc.send("o", "flag", actor=FRAUD)
    assert svc.view("o", ALICE)["state"] == [NEUTRAL]
    assert svc.view("o", None)["state"] == [NEUTRAL]
    assert svc.view("o", FRAUD)["state"] == ["review"]
    assert svc.view("o", FRAUD)["extra"] == {"card": "***", "note": "hi"}


def test_a_repeated_rejected_request_is_rejected_again_without_a_second_row(
        make_store: Callable[[], EntityStore]) -> None:
    store = make_store()
    svc = EntityService(order_chart(), store)
    svc.create("o", actor=ALICE)
    for _ in range(2):
        with pytest.raises(NotAuthorized):
            svc.send("o", "submit", actor=CLERK, request_key="r1")
    assert [r[2] for r in audit_rows(store)] == ["created", "rejected"]


# ---------------------------------------------------------------- audit chain


def _sqlite_service(tmp_path: Path, key: bytes | None = None) -> tuple[str, EntityService]:
    db = str(tmp_path / "audit.db")
    svc = EntityService(order_chart(), open_store(db), audit_key=key)
    svc.create("o", actor=ALICE)
    svc.send("o", "submit", actor=ALICE)
    with pytest.raises(NotAuthorized):
        svc.send("o", "hold", actor=ALICE)
    svc.send("o", "hold", actor=CLERK)
    svc.send("o", "release", actor=CLERK)
    svc.store.close()
    return db, svc


def _tamper(db: str, *sql: str) -> None:
    """What an attacker with file access does: drop the guards, then edit."""
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER dz_audit_no_update")
    con.execute("DROP TRIGGER dz_audit_no_delete")
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()


@pytest.mark.parametrize("edit, expect", [
    ("UPDATE dz_audit SET actor = 'mallory' WHERE seq = 2", "row seq 2: hash does not match"),
    ("UPDATE dz_audit SET outcome = 'applied' WHERE seq = 3", "row seq 3: hash does not match"),
    ("DELETE FROM dz_audit WHERE seq = 3", "row seq 4: expected seq 3"),
    ("DELETE FROM dz_audit WHERE seq = 5", "rows deleted at the end"),
    ("UPDATE dz_audit SET seq = seq + 10 WHERE seq = 1", "expected seq 1"),
])
def test_audit_verify_detects_every_edit_and_deletion(tmp_path: Path, edit: str,
                                                      expect: str) -> None:
    db, _ = _sqlite_service(tmp_path)
    store = open_store(db)
    assert verify_audit(store) == []
    store.close()
    _tamper(db, edit)
    store = open_store(db)
    problems = verify_audit(store)
    store.close()
    assert any(expect in p for p in problems), problems


def test_a_keyed_chain_detects_a_recomputed_forgery(tmp_path: Path) -> None:
    from convergent.durable.audit import row_hash
    db, _ = _sqlite_service(tmp_path, key=b"k" * 32)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT * FROM dz_audit ORDER BY seq").fetchall()
    con.close()
    # the forger rewrites row 2 and recomputes the whole chain without the key
    prev = ""
    stmts = []
    for r in rows:
        fields = list(r[1:13])  # after the chain column
        if fields[0] == 2:
            fields[5] = "mallory"
        h = row_hash(prev, tuple(fields), None)
        stmts.append(f"UPDATE dz_audit SET actor = '{fields[5]}', prev = '{prev}', "
                     f"hash = '{h}' WHERE seq = {fields[0]}")
        prev = h
    stmts.append(f"UPDATE dz_audit_heads SET hash = '{prev}' WHERE chain = 'order'")
    _tamper(db, *stmts)
    store = open_store(db)
    assert verify_audit(store) == []          # unkeyed: the forgery is consistent
    assert verify_audit(store, key=b"k" * 32)  # keyed: every row fails
    store.close()


def test_cli_audit_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = _sqlite_service(tmp_path, key=b"secret")
    monkeypatch.setenv("DZ_KEY", "secret")
    assert cli_main(["audit", "verify", db, "--key-env", "DZ_KEY"]) == 0
    assert "intact: 5 rows" in capsys.readouterr().out
    assert cli_main(["audit", "verify", db]) == 1     # wrong (no) key: every hash differs
    capsys.readouterr()
    _tamper(db, "DELETE FROM dz_audit WHERE seq = 2")
    assert cli_main(["audit", "verify", db, "--key-env", "DZ_KEY", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["rows"] == 4
    assert cli_main(["audit", "verify", str(tmp_path / "missing.db")]) == 2
    assert cli_main(["audit", "verify", db, "--key-env", "UNSET_VAR_X"]) == 2


def test_audit_verify_on_postgres_detects_a_deleted_row(make_store) -> None:
    store = make_store()
    svc = EntityService(order_chart(), store)
    svc.create("o", actor=ALICE)
    svc.send("o", "submit", actor=ALICE)
    assert verify_audit(store) == []
    with store.tx() as tx:
        if tx.dialect == "postgres":
            tx.q("ALTER TABLE dz_audit DISABLE TRIGGER dz_audit_append_only")
        else:
            tx.q("DROP TRIGGER dz_audit_no_delete")
        tx.q("DELETE FROM dz_audit WHERE seq = 1")
    assert any("expected seq 1" in p for p in verify_audit(store))


# ---------------------------------------------------------------- envelopes


class Clock:
    t = 2_000_000.0

    def __call__(self) -> float:
        return self.t


def _env(**over: object) -> dict:
    d = {"id": "env-1", "entity": "o", "event": "submit", "payload": {}, "actor": "alice",
         "roles": [], "issued_at": Clock.t - 5}
    d.update(over)
    return d


def test_envelopes_stale_future_duplicate_and_malformed_are_rejected(
        make_store: Callable[[], EntityStore]) -> None:
    svc = EntityService(order_chart(), make_store(), clock=Clock(),
                        envelopes=EnvelopePolicy(max_age=60, max_skew=5))
    svc.create("o", actor=ALICE)
    reasons = []
    for bad in (_env(issued_at=Clock.t - 61), _env(issued_at=Clock.t + 10),
                _env(id="bad id!"), _env(payload=[1]), _env(extra=1),
                _env(roles=["customer"]), _env(payload={"x": "y" * 70_000}), "junk"):
        with pytest.raises(EnvelopeRejected) as info:
            svc.accept(bad)
        reasons.append(info.value.reason)
    assert reasons == ["stale", "future", "malformed", "malformed", "malformed",
                       "unsigned-roles", "malformed", "malformed"]
    assert svc.accept(_env(), actor=ALICE).outcome == "applied"
    with pytest.raises(EnvelopeRejected) as info:
        svc.accept(_env(), actor=ALICE)
    assert info.value.reason == "duplicate"
    assert svc.load("o").version == 2


def test_signed_envelopes_carry_roles_and_forgeries_fail(
        make_store: Callable[[], EntityStore]) -> None:
    key = b"0" * 32
    svc = EntityService(order_chart(), make_store(), clock=Clock(),
                        envelopes=EnvelopePolicy(key=key))
    svc.create("o", actor=ALICE)
    env = Envelope.from_dict(_env(roles=["customer"])).signed(key)
    forged = Envelope.from_dict({**env.to_dict(), "roles": ["customer", "fraud"]})
    with pytest.raises(EnvelopeRejected, match="signature"):
        svc.accept(forged)
    unsigned = _env(id="env-2")
    with pytest.raises(EnvelopeRejected, match="signature"):
        svc.accept(unsigned)
    assert svc.accept(env.to_dict()).to_leaves == ("authorizing",)
