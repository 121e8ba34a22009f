"""No single message can break a replica (issue 12, bugs 2, 3, 4, 6, 7):
every field is checked at the boundary, before anything changes."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.runtime import (
    Envelope,
    MemoryStore,
    ProtocolError,
    Replica,
    ReplicaError,
    SQLiteStore,
    decode_batch,
    encode_batch,
)
from convergent.runtime.envelope import Limits, check_envelope

from .helpers import machine


class Clock:
    def __init__(self, t: int = 10_000) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def _frozen(r: Replica) -> tuple[Any, ...]:
    return (r.version, r.state, r.log, r.pending, r.heads, r._hlc.last, len(r._unflushed))


# ---------------------------------------------------------------- bug 2: bounded clocks

def test_a_clock_at_the_top_of_the_range_is_refused_and_the_replica_keeps_working(
        tmp_path: Path) -> None:
    m = machine("account")
    r = Replica(m, id="r", store=SQLiteStore(tmp_path / "r.db"), clock=Clock())
    r.emit("deposit")
    poison = Envelope("p", 1, 2**63 - 1, "hit", (), None, m.policy_digest)
    before = _frozen(r)
    with pytest.raises(ProtocolError, match="hlc"):
        r.receive(poison)
    assert _frozen(r) == before
    r.emit("deposit")                                # the next emit and flush still work
    r.close()
    again = Replica(m, id="r", store=SQLiteStore(tmp_path / "r.db"), clock=Clock())
    again.emit("withdraw")
    assert again.accepted == 3


def test_an_envelope_further_ahead_than_max_drift_waits_for_the_clock(tmp_path: Path) -> None:
    m = machine("account")
    clock = Clock(10_000)
    r = Replica(m, id="r", store=SQLiteStore(tmp_path / "r.db"), clock=clock,
                limits=Limits(max_drift_ms=60_000))
    ahead = Envelope("p", 1, (10_000 + 120_000) << 16, "hit", (), None, m.policy_digest)
    assert r.receive(ahead) == 0
    assert r.stats.ahead == 1 and r.version == {} and r._hlc.last == 0
    assert "max_drift_ms=60000" in r.explain().rejected[-1][1]
    r.emit("deposit")                                # the clock was not dragged forward
    assert r.log[-1].hlc < ahead.hlc
    clock.t += 90_000                                # an anti-entropy round later
    assert r.receive(ahead) == 1 and r.version["p"] == 1


def test_limits_are_checked() -> None:
    for bad in ({"max_drift_ms": 0}, {"max_meta_bytes": -1}, {"max_deps": True}):
        with pytest.raises(ProtocolError, match="Limits"):
            Limits(**bad)
    with pytest.raises(ReplicaError, match="limits"):
        Replica(machine("account"), id="a", limits={"max_drift_ms": 1})  # type: ignore[arg-type]


# ---------------------------------------------------------------- bug 6: validate in-process

BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"deps": ("x",)}, "not 'origin:seq'"),
    ({"deps": ("p:0",)}, "not an event id"),
    ({"deps": ("p:2",)}, "own or a later"),
    ({"meta": {"k": object()}}, "JSON"),
    ({"meta": {"k": float("nan")}}, "JSON"),
    ({"meta": {1: "x"}}, "JSON|key"),
    ({"meta": {"k": "x" * 20_000}}, "max_meta_bytes"),
    ({"seq": 0}, "seq"),
    ({"seq": True}, "seq"),
    ({"hlc": -1}, "hlc"),
    ({"hlc": 1.5}, "hlc"),
    ({"origin": "a:b"}, "origin"),
    ({"event": ""}, "event"),
]


@pytest.mark.parametrize("change, message", BAD_FIELDS)
def test_a_bad_envelope_in_a_batch_changes_nothing(change: dict[str, Any], message: str) -> None:
    m = machine("account")
    r = Replica(m, id="r", clock=Clock())
    r.emit("deposit")
    fields = {"origin": "p", "seq": 1, "hlc": 5 << 16, "event": "hit", "deps": (),
              "meta": None, "policy": m.policy_digest}
    good = Envelope(**{**fields, "seq": 1})
    bad = Envelope(**{**fields, "seq": 2, "deps": ("p:1",), **change})
    before = _frozen(r)
    with pytest.raises(ProtocolError, match=message):
        r.receive([good, bad])
    assert _frozen(r) == before                      # not even the good one
    r.emit("deposit")
    assert r.flush() == 0 and r.accepted == 2        # later flushes are fine


def test_deeply_nested_meta_is_refused_without_recursion() -> None:
    m = machine("account")
    deep: Any = {}
    for _ in range(100_000):
        deep = {"k": deep}
    r = Replica(m, id="r", clock=Clock())
    with pytest.raises(ProtocolError, match="max_meta_depth"):
        r.receive(Envelope("p", 1, 5, "hit", (), deep, m.policy_digest))
    with pytest.raises(ReplicaError, match="max_meta_depth"):
        r.emit("hit", meta=deep)
    assert r.accepted == 0


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({
    "origin": st.one_of(st.just("p"), st.text(max_size=70), st.integers()),
    "seq": st.one_of(st.integers(-2, 2**64), st.floats(), st.booleans()),
    "hlc": st.one_of(st.integers(-2, 2**64), st.floats(), st.none()),
    "event": st.one_of(st.just("hit"), st.text(max_size=5), st.integers()),
    "deps": st.lists(st.one_of(st.text(max_size=8), st.integers(), st.just("p:1")), max_size=3),
    "meta": st.one_of(st.none(), st.dictionaries(st.text(max_size=3),
                                                 st.recursive(st.integers(), st.lists)),
                      st.integers()),
}))
def test_receive_either_accepts_a_well_formed_envelope_or_changes_nothing(
        fields: dict[str, Any]) -> None:
    m = machine("account")
    r = Replica(m, id="r", clock=Clock(), store=MemoryStore())
    r.emit("deposit")
    env = Envelope(fields["origin"], fields["seq"], fields["hlc"], fields["event"],
                   fields["deps"], fields["meta"], m.policy_digest)
    before = _frozen(r)
    try:
        r.receive(env)
    except ProtocolError:
        assert _frozen(r) == before
    else:
        check_envelope(env)                          # only a valid one got through
    r.emit("deposit")                                # the replica goes on either way
    assert r.flush() == 0


# ---------------------------------------------------------------- bug 3: decoding

def test_wire_decoding_failures_are_protocol_errors() -> None:
    m = machine("account")
    env = Envelope("p", 1, 5, "hit", (), None, m.policy_digest)
    good = encode_batch(m.name, m.policy_digest, [env])
    assert decode_batch(good)[2] == [env]
    bombs = [b"[" * 200_000, b'{"format":' * 100_000, b"\xff\xfe", b"{}", b"null",
             json.dumps({"format": "convergent-envelopes/1", "machine": m.name,
                         "policy": m.policy_digest,
                         "events": [["p", 1, 2**63 - 1, "hit", [], None]]}).encode(),
             json.dumps({"format": "convergent-envelopes/1", "machine": m.name,
                         "policy": m.policy_digest,
                         "events": [["p", 1, 5, "hit", [{"a": 1}], None]]}).encode()]
    for data in bombs:
        with pytest.raises(ProtocolError):
            decode_batch(data)
    with pytest.raises(ProtocolError, match="max_message_bytes"):
        decode_batch(good, Limits(max_message_bytes=10))


# ---------------------------------------------------------------- bug 7: equivocation

def test_a_duplicate_id_with_other_content_is_recorded_as_evidence(
        caplog: pytest.LogCaptureFixture) -> None:
    m = machine("account")
    r = Replica(m, id="r", clock=Clock())
    real = Envelope("p", 1, 5 << 16, "deposit", (), {"by": "p"}, m.policy_digest)
    r.receive(real)
    state = r.state
    with caplog.at_level(logging.WARNING, logger="convergent.runtime"):
        r.receive(real)                                           # a plain duplicate
        assert r.stats.equivocations == 0
        r.receive(Envelope("p", 1, 5 << 16, "freeze", (), None, m.policy_digest))
        r.receive(Envelope("p", 1, 6 << 16, "deposit", (), {"by": "p"}, m.policy_digest))
    assert r.stats.equivocations == 2 and r.stats.duplicates == 3
    assert r.state == state and r.log == (real,)                  # the first one wins
    assert [eid for eid, _ in r.status()["evidence"]] == ["p:1", "p:1"]
    assert "other content" in r.status()["evidence"][0][1]
    assert sum("equivocation" in rec.getMessage() for rec in caplog.records) == 2
    # a pending one too: two contents for an id that waits for a dependency
    r.receive(Envelope("p", 3, 9 << 16, "hit", (), None, m.policy_digest))
    r.receive(Envelope("p", 3, 9 << 16, "freeze", (), None, m.policy_digest))
    assert r.stats.equivocations == 3


def test_an_envelope_claiming_the_replicas_own_id_is_refused() -> None:
    m = machine("account")
    r = Replica(m, id="r", clock=Clock())
    r.emit("deposit")
    assert r.receive(Envelope("r", 2, 1, "withdraw", (), None, m.policy_digest)) == 0
    assert r.version == {"r": 1} and r.stats.equivocations == 1
    assert r.emit("hit").seq == 2                                  # its numbers stay its own


# ---------------------------------------------------------------- bug 4: forged snapshots

def test_forged_snapshots_are_refused() -> None:
    m = machine("account")
    a = Replica(m, id="a", peers=["a", "b"], clock=Clock(5000))
    for ev in ("deposit", "freeze", "deposit"):
        a.emit(ev)
    a.observe_peer("b", {}, 6000 << 16)
    assert a.compact() == 3
    snap, _ = a.bootstrap()
    assert snap is not None
    b = Replica(m, id="b", peers=["a", "b"], clock=Clock(5000))
    forgeries = {
        "digest": dataclasses.replace(snap, state={**snap.state, "balance": 19}),
        "covers": dataclasses.replace(snap, version={"a": 3, "z": 10**6}),
        "peers": dataclasses.replace(snap, replica="mallory"),
        "ahead": dataclasses.replace(snap, hlc=(5000 + 3_600_000) << 16,
                                     horizon=(5000 + 3_600_000) << 16),
        "heads": dataclasses.replace(snap, heads=("a:9",)),
        "types": dataclasses.replace(snap, version={"a": "3"}),   # type: ignore[dict-item]
    }
    for what, forged in forgeries.items():
        with pytest.raises(ReplicaError):
            b.install_snapshot(forged)
        assert b.accepted == 0 and b.explain().base is None, what
    assert b.install_snapshot(snap) and b.state == a.state


def _nested(depth: int) -> Any:
    return [_nested(depth - 1)] if depth else 1


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[1].__setitem__(2, "soon"), "stored event 1 .* hlc="),
    (lambda rows: rows[1].__setitem__(4, ["x"]), "stored event 1 .* not .origin:seq."),
    (lambda rows: rows[2].__setitem__(5, {"x": _nested(20)}), "stored event 2 .* meta"),
    (lambda rows: rows.pop(1), "a:2 are missing|a:2..2 are missing"),
])
def test_a_stored_row_is_checked_before_it_changes_state(tmp_path: Path, edit: Any,
                                                         message: str) -> None:
    """A store is read like a peer: a row edited on disk (a type, a
    dependency, a meta nested too deeply, a missing event) is a StoreError
    naming it, and nothing of the log is used."""
    import sqlite3

    from convergent.runtime import SQLiteStore, StoreError
    m = machine("account")
    db = tmp_path / "r.db"
    a = Replica(m, id="a", store=SQLiteStore(db))
    a.emit_many(["deposit", "deposit", "withdraw", "freeze"])
    a.close()
    with sqlite3.connect(db) as c:
        pos, data = c.execute("SELECT pos, data FROM cv_batches").fetchone()
        rows = json.loads(data)
        edit(rows)
        c.execute("UPDATE cv_batches SET data = ? WHERE pos = ?", (json.dumps(rows), pos))
    with pytest.raises(StoreError, match=message):
        Replica(m, id="a", store=SQLiteStore(db))
