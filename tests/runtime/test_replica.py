"""The Replica API, one behaviour per test."""

from __future__ import annotations

import pickle

import pytest

from convergent.errors import MachineUsageError
from convergent.runtime import (
    Change,
    Envelope,
    HybridClock,
    MemoryStore,
    PolicyMismatchError,
    ProtocolError,
    Replica,
    ReplicaError,
    SimNetwork,
    StoreError,
    decode_batch,
    encode_batch,
)

from .helpers import machine


class Clock:
    def __init__(self, t: int = 1000) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def pair(name: str = "account") -> tuple[Replica, Replica]:
    m = machine(name)
    return (Replica(m, id="a", clock=Clock(1000)), Replica(m, id="b", clock=Clock(1000)))


# ---------------------------------------------------------------- emit / receive


def test_emit_applies_logs_and_chains_dependencies() -> None:
    a, _ = pair()
    e1 = a.emit("deposit", {"by": "alice"})
    e2 = a.emit("withdraw")
    assert (e1.id, e1.origin, e1.seq, e1.event, e1.deps) == ("a:1", "a", 1, "deposit", ())
    assert e2.deps == ("a:1",) and e2.hlc > e1.hlc
    assert e1.meta == {"by": "alice"} and e1.policy == a.machine.policy_digest
    assert a.state["balance"] == 5 and a.log == (e1, e2) and a.version == {"a": 2}
    assert a.heads == ("a:2",)


def test_a_false_guard_is_logged_as_a_no_op() -> None:
    a, _ = pair()
    a.emit("freeze")
    before = a.state
    e = a.emit("deposit")
    assert a.state == before and e in a.log


def test_emit_rejects_unknown_events_and_bad_meta() -> None:
    a, _ = pair()
    with pytest.raises(MachineUsageError, match="unknown event 'nope'"):
        a.emit("nope")
    with pytest.raises(ReplicaError, match="JSON object"):
        a.emit("deposit", meta=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ReplicaError, match="JSON-serializable"):
        a.emit("deposit", meta={"x": object()})
    assert a.log == ()


def test_out_of_order_envelopes_wait_for_their_dependencies() -> None:
    a, b = pair()
    e1, e2, e3 = a.emit("deposit"), a.emit("deposit"), a.emit("withdraw")
    assert b.receive([e3, e2]) == 0
    assert [e.id for e in b.pending] == ["a:2", "a:3"] and b.stats.buffered == 2
    assert b.state == b.machine.initial
    assert b.receive(e1) == 3
    assert b.pending == () and b.state == a.state and b.log == a.log


def test_cross_origin_dependencies_wait() -> None:
    a, b = pair()
    c = Replica(a.machine, id="c", clock=Clock(1000))
    ea = a.emit("deposit")
    b.receive(ea)
    eb = b.emit("withdraw")          # depends on a:1
    assert eb.deps == ("a:1",)
    assert c.receive(eb) == 0 and len(c.pending) == 1
    assert c.receive(ea) == 2 and c.state == b.state


def test_duplicates_are_dropped_by_id() -> None:
    a, b = pair()
    e = a.emit("deposit")
    assert b.receive([e, e]) == 1
    assert b.receive(e) == 0
    assert b.stats.duplicates == 2 and b.state["balance"] == 6 and len(b.log) == 1


def test_dedup_off_applies_duplicates_again() -> None:
    m = machine("account")
    a = Replica(m, id="a")
    b = Replica(m, id="b", dedup=False)
    e = a.emit("deposit")
    b.receive(e)
    b.receive(e)
    assert b.state["balance"] == 7 and len(b.log) == 2


def test_receive_refuses_another_policy_with_a_clear_error() -> None:
    a, b = pair()
    good = a.emit("deposit")
    forged = Envelope("a", 2, good.hlc + 1, "deposit", ("a:1",), None, "0" * 64)
    with pytest.raises(PolicyMismatchError, match="same verified machine") as info:
        b.receive([good, forged])
    assert info.value.got == "0" * 64 and info.value.expected == b.machine.policy_digest
    assert b.log == ()  # nothing of the call was accepted


def test_receive_refuses_unknown_events_and_non_envelopes() -> None:
    a, b = pair()
    bad = Envelope("a", 1, 5, "launch", (), None, a.machine.policy_digest)
    with pytest.raises(ProtocolError, match="unknown event 'launch'"):
        b.receive(bad)
    with pytest.raises(ProtocolError, match="not an Envelope"):
        b.receive([("a", 1)])  # type: ignore[list-item]


def test_replica_ids_are_checked() -> None:
    m = machine("account")
    for bad in ("", "a:b", "a,b", "x" * 65, 3):
        with pytest.raises(ReplicaError, match="id="):
            Replica(m, id=bad)  # type: ignore[arg-type]
    with pytest.raises(ReplicaError, match="not a replica id"):
        Replica(m, id="a", peers=["b:1"])
    with pytest.raises(ReplicaError, match="built Machine"):
        Replica("account", id="a")  # type: ignore[arg-type]


# ---------------------------------------------------------------- commits


def test_subscribers_hear_committed_batches() -> None:
    a, b = pair()
    seen: list[Change] = []
    stop = b.subscribe(seen.append)
    e1 = a.emit("deposit")
    e2 = a.emit("freeze")
    with b.batch():
        b.receive(e1)
        b.receive(e2)
        assert seen == []  # nothing is told before the commit
    assert len(seen) == 1
    c = seen[0]
    assert c.events == (e1, e2) and c.before == b.machine.initial and c.after == b.state
    assert c.changed and not c.repaired
    stop()
    b.emit("hit")
    assert len(seen) == 1


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    a, _ = pair()
    seen = []

    def bad(change: Change) -> None:
        raise RuntimeError("boom")

    a.subscribe(bad)
    a.subscribe(seen.append)
    with pytest.raises(RuntimeError, match="boom"):
        a.emit("deposit")
    assert len(seen) == 1 and a.store.count() == 1  # committed before the callbacks
    with pytest.raises(ReplicaError, match="not callable"):
        a.subscribe(42)  # type: ignore[arg-type]


def test_a_failed_commit_keeps_the_events_queued_and_unsent() -> None:
    m = machine("account")
    net = SimNetwork(0)
    store = MemoryStore()
    a = Replica(m, id="a", store=store, transport=net.transport("a"), autoflush=False)
    b = Replica(m, id="b", transport=net.transport("b"))
    a.emit("deposit")
    store.fail_next = True
    with pytest.raises(StoreError, match="injected"):
        a.flush()
    net.run()
    assert b.log == () and store.count() == 0 and a.missing_for({}) == []
    assert a.flush() == 1
    net.run()
    assert b.state == a.state and store.count() == 1


def test_restart_from_the_store_continues_numbering() -> None:
    m = machine("account")
    store = MemoryStore()
    a = Replica(m, id="a", store=store)
    b = Replica(m, id="b")
    for ev in ("deposit", "freeze", "unfreeze"):
        a.receive(b.emit(ev))
        a.emit("withdraw")
    again = Replica(m, id="a", store=store)
    assert again.state == a.state and again.log == a.log and again.version == a.version
    assert again.heads == a.heads
    assert again.emit("hit").id == "a:4"


def test_emit_after_close_is_refused() -> None:
    a, _ = pair()
    a.close()
    with pytest.raises(ReplicaError, match="closed"):
        a.emit("deposit")
    a.close()  # idempotent


def test_missing_for_serves_only_committed_local_events() -> None:
    m = machine("account")
    a = Replica(m, id="a", autoflush=False)
    b = Replica(m, id="b")
    a.receive(b.emit("deposit"))
    a.emit("hit")
    assert [e.id for e in a.missing_for({})] == ["b:1"]
    a.flush()
    assert [e.id for e in a.missing_for({})] == ["b:1", "a:1"]
    assert [e.id for e in a.missing_for({"b": 1})] == ["a:1"]


# ---------------------------------------------------------------- forensics


def test_explain_lists_steps_and_repairs() -> None:
    m = machine("account")
    a = Replica(m, id="a", clock=Clock(2000))
    b = Replica(m, id="b", clock=Clock(1000))
    eb = b.emit("freeze")      # earlier clock: sorts first
    a.emit("deposit")
    a.receive(eb)
    ex = a.explain()
    assert [s.envelope.id for s in ex.steps] == ["b:1", "a:1"]
    assert ex.steps[0].changed == {"frozen": (False, True)}
    assert ex.steps[1].changed == {}
    assert len(ex.repairs) == 1 and ex.repairs[0].inserted == ("b:1",)
    assert ex.state == m.decode(a.state) and ex.stats.repairs == 1
    text = ex.render()
    assert "repair: b:1 sorted before a:1" in text and "frozen False->True" in text
    d = ex.to_dict()
    assert d["steps"][0]["id"] == "b:1" and d["repairs"][0]["replayed"] == 2
    assert len(a.explain(limit=1).steps) == 1


def test_snapshot_describes_the_current_state() -> None:
    a, b = pair()
    a.receive(b.emit("deposit"))
    a.emit("deposit")
    snap = a.snapshot()
    assert snap.state == {"balance": 7, "frozen": False, "hits": 0}
    assert snap.version == {"a": 1, "b": 1} and snap.events == 2
    assert snap.digest == a.machine.state_digest(a.state)
    assert type(snap).from_dict(snap.to_dict()) == snap


# ---------------------------------------------------------------- compaction


def test_compaction_needs_the_replica_set() -> None:
    a, _ = pair()
    with pytest.raises(ReplicaError, match="peers"):
        a.compact()


def test_compaction_drops_the_stable_prefix_and_survives_restart() -> None:
    m = machine("account")
    net = SimNetwork(3, delay=(1, 5))
    stores = {i: MemoryStore() for i in "ab"}
    reps = {i: Replica(m, id=i, store=stores[i], transport=net.transport(i),
                       clock=net.clock(i), peers=["a", "b"]) for i in "ab"}
    for k in range(30):
        reps["ab"[k % 2]].emit(m.events[k % 5])
        net.run(until=net.now + 2)
    net.settle()
    a = reps["a"]
    before = a.state
    n = a.compact()
    assert 0 < n <= 30 and len(a.log) == 30 - n and a.accepted == 30
    assert a.state == before and stores["a"].count() == 30 - n
    snap, rest = stores["a"].load()
    assert snap is not None and snap.events == n and snap.state == a.explain().base.state
    assert all(e.hlc > snap.horizon for e in rest) and len(rest) == 30 - n
    # nothing stable is left to compact
    assert a.compact() == 0
    # restart from snapshot + rest of the log
    again = Replica(m, id="a", store=stores["a"], peers=["a", "b"], clock=net.clock("a"))
    assert again.state == before and again.accepted == 30 and again.version == a.version
    # it keeps converging afterwards
    net.transport("a").crash()
    net.transport("a").attach(again)
    reps["b"].emit("deposit")
    again.emit("withdraw")
    net.settle()
    assert again.state == reps["b"].state
    assert again.explain().base is not None


def test_an_event_below_the_compaction_horizon_is_rejected() -> None:
    m = machine("account")
    a = Replica(m, id="a", peers=["a"], clock=Clock(5000))
    a.emit("deposit")
    assert a.compact() == 1
    stranger = Replica(m, id="x", clock=Clock(10))   # not in peers, and far behind
    late = stranger.emit("freeze")
    assert a.receive(late) == 0
    assert a.stats.rejected == 1 and "compaction horizon" in a.explain().rejected[0][1]


def test_idle_peers_do_not_block_compaction_once_observed() -> None:
    m = machine("account")
    a = Replica(m, id="a", peers=["a", "b"], clock=Clock(5000))
    b = Replica(m, id="b", peers=["a", "b"], clock=Clock(6000))
    a.emit("deposit")
    assert a.compact() == 0          # b never spoke
    assert not a.peers_have_mine()
    b.receive(a.missing_for(b.version))
    a.observe_peer("b", b.version, b._hlc.last)
    assert a.peers_have_mine()
    assert a.compact() == 1


# ---------------------------------------------------------------- values


def test_hybrid_clock_is_monotonic_and_follows_observations() -> None:
    wall = Clock(10)
    c = HybridClock(wall)
    t1, t2 = c.tick(), c.tick()
    assert t1 == 10 << 16 and t2 == t1 + 1
    c.observe(50 << 16)
    assert c.tick() == (50 << 16) + 1
    wall.t = 100
    assert c.tick() == 100 << 16


def test_envelopes_round_trip() -> None:
    a, _ = pair()
    e = a.emit("deposit", {"by": "alice", "n": [1, 2]})
    assert Envelope.from_dict(e.to_dict()) == e
    assert Envelope.from_json(e.to_json()) == e
    assert pickle.loads(pickle.dumps(e)) == e and hash(e) == hash(e.id)
    machine_name, policy, envs = decode_batch(encode_batch("account", e.policy, [e, e]))
    assert (machine_name, policy, envs) == ("account", e.policy, [e, e])


@pytest.mark.parametrize("data, message", [
    (b"not json", "not JSON"),
    (b'{"format": "other"}', "format='other'"),
    (b'{"format": "convergent-envelopes/1", "machine": "m", "policy": "p", "events": [[1]]}',
     "is not \\[origin"),
    (b'{"format": "convergent-envelopes/1", "machine": "m", "policy": "p", '
     b'"events": [["a", 0, 1, "e", [], null]]}', "seq=0"),
    (b'{"format": "convergent-envelopes/1", "machine": "m", "policy": "p", '
     b'"events": [["a:b", 1, 1, "e", [], null]]}', "origin='a:b'"),
    (b'{"format": "convergent-envelopes/1", "machine": "m", "policy": "p", '
     b'"events": [["a", 1, 1, "e", ["zzz"], null]]}', "not 'origin:seq'"),
    (b'{"format": "convergent-envelopes/1", "machine": "m", "policy": "p", '
     b'"events": [["a", 1, 1, "e", "a:1", null]]}', "deps must be a list"),
    (b'{"format": "convergent-envelopes/1", "machine": "m", "policy": "p", '
     b'"events": [["a", 1, -4, "e", [], null]]}', "hlc=-4"),
])
def test_malformed_wire_messages_are_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_batch(data)


def test_a_batch_has_one_policy() -> None:
    a, _ = pair()
    e = a.emit("deposit")
    with pytest.raises(PolicyMismatchError):
        encode_batch("account", "f" * 64, [e])
    with pytest.raises(ProtocolError, match="lacks field 'seq'"):
        Envelope.from_dict({"origin": "a", "hlc": 1, "event": "x"})
