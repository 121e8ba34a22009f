"""Overload and membership: a bounded pending buffer that loses nothing, and a
new (or long-absent) replica that joins from a peer's compacted snapshot."""

from __future__ import annotations

import dataclasses
import random

import pytest

from convergent import Registry
from convergent.runtime import (
    BackpressureError,
    Envelope,
    MemoryStore,
    PolicyMismatchError,
    Replica,
    ReplicaError,
    SimNetwork,
    SQLiteStore,
)

from .helpers import canonical, canonical_state, machine


class Clock:
    def __init__(self, t: int = 1000) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def _same_everywhere(reps: list[Replica], emitted: list[Envelope]) -> None:
    """Every replica holds every emitted event once, the canonical state, and
    a log that is a suffix of the canonical order of all of them."""
    m = reps[0].machine
    order = [e.id for e in canonical(emitted)]
    target = canonical_state(m, emitted)
    for r in reps:
        log = [e.id for e in r.log]
        assert r.accepted == len(emitted), f"{r.id}: {r.accepted} of {len(emitted)} accepted"
        assert log == order[len(order) - len(log):], f"{r.id}: the log is not the canonical suffix"
        assert r.state == target, f"{r.id}: {r.state} != {target}"
        assert not r.pending, f"{r.id}: {len(r.pending)} still pending"
        assert sum(r.version.values()) == len(emitted)


# ---------------------------------------------------------------- bounded pending buffer


def test_a_full_buffer_keeps_the_nearest_envelopes_and_refuses_the_rest() -> None:
    m = machine("account")
    a = Replica(m, id="a", clock=Clock())
    sent = [a.emit(m.events[k % 5]) for k in range(300)]
    c = Replica(m, id="c", clock=Clock(), max_pending=16)
    assert c.max_pending == 16 and not c.backpressure
    with pytest.raises(BackpressureError, match="max_pending=16") as info:
        c.receive(reversed(sent[1:]))          # a:1 missing: nothing can apply
    err = info.value
    assert (err.applied, err.pending, err.limit) == (0, 16, 16)
    assert len(err.refused) == 299 - 16 and c.stats.refused == 299 - 16
    # the buffer holds the envelopes nearest to the frontier: a:2 .. a:17
    assert [e.id for e in c.pending] == [f"a:{k}" for k in range(2, 18)]
    assert c.backpressure and c.status()["pending"] == 16
    assert c.log == () and c.version == {}      # refused means not accepted
    # one at a time, in random order: the bound holds after every call
    rng = random.Random(4)
    rest = sent[17:]
    rng.shuffle(rest)
    for e in rest:
        try:
            c.receive(e)
        except BackpressureError as exc:
            assert exc.refused == (e.id,) and exc.applied == 0
        assert len(c.pending) <= 16 and len(c._far or ()) <= 2 * 16 + 1024
    # the missing dependency unlocks what waited; the rest comes again
    assert c.receive(sent[0]) == 17 and c.pending == ()
    assert not c.backpressure and len(c._waiting) == 0
    assert c.receive(a.missing_for(c.version)) == 300 - 17
    assert c.state == a.state and c.log == a.log


def test_max_pending_is_checked() -> None:
    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ReplicaError, match="max_pending"):
            Replica(machine("account"), id="a", max_pending=bad)  # type: ignore[arg-type]


def test_a_flood_over_the_network_loses_nothing() -> None:
    """Two busy replicas and one with a tiny buffer, over a network that
    reorders (up to 80 ms), duplicates and drops: the small one turns
    envelopes away again and again, its buffer never exceeds its bound, and
    once anti-entropy resent what it refused, all three hold the same events,
    the same log and the same state."""
    m = machine("account")
    net = SimNetwork(11, delay=(1, 80), duplicate=0.2, drop=0.1, retry_after=30)
    reps = {i: Replica(m, id=i, transport=net.transport(i), clock=net.clock(i, skew=k * 3),
                       max_pending=8 if i == "c" else 100_000)
            for k, i in enumerate("abc")}
    c = reps["c"]
    rng = random.Random(11)
    emitted = []
    for _ in range(400):
        r = reps[rng.choice("ab")]
        emitted.append(r.emit(rng.choice(m.events)))
        net.now += rng.randint(0, 1)
    high = 0
    while net.step():  # the flood arrives out of order
        high = max(high, len(c.pending))
        assert len(c.pending) <= 8
    assert high == 8 and c.stats.refused > 100 and net.stats.refused == c.stats.refused
    assert c.accepted < len(emitted)            # it could not take everything...
    for _ in range(200):                        # ...until anti-entropy resends the rest
        net.run()
        if not net.anti_entropy():
            break
        assert len(c.pending) <= 8
    net.run()
    _same_everywhere(list(reps.values()), emitted)
    assert [e.id for e in c.log] == [e.id for e in reps["a"].log]


# ---------------------------------------------------------------- joining from a snapshot


def _cluster(seed: int, ids: str = "abc", **kw: object) -> tuple[SimNetwork, dict[str, Replica]]:
    m = machine("account")
    net = SimNetwork(seed, delay=(1, 10), duplicate=0.1, drop=0.1, retry_after=15)
    reps = {i: Replica(m, id=i, store=MemoryStore(), transport=net.transport(i),
                       clock=net.clock(i, skew=k), peers=list(ids), **kw)  # type: ignore[arg-type]
            for k, i in enumerate(ids)}
    return net, reps


def _traffic(net: SimNetwork, reps: dict[str, Replica], n: int, rng: random.Random,
             emitted: list[Envelope], who: str | None = None) -> None:
    m = next(iter(reps.values())).machine
    for _ in range(n):
        r = reps[rng.choice(who or sorted(reps))]
        emitted.append(r.emit(rng.choice(m.events)))
        net.run(until=net.now + rng.randint(0, 4))


def test_a_new_replica_joins_after_everyone_compacted() -> None:
    m = machine("account")
    net, reps = _cluster(5)
    rng = random.Random(5)
    emitted: list[Envelope] = []
    _traffic(net, reps, 80, rng, emitted)
    net.settle()
    for r in reps.values():
        assert r.compact() > 0
    _traffic(net, reps, 12, rng, emitted)       # a retained log after the snapshots
    net.settle()
    assert all(r.explain().base is not None for r in reps.values())
    assert min(r.explain().base.events for r in reps.values()) > 40
    # a fresh replica: attaching runs anti-entropy; the peers find it behind
    # their compaction horizon and send their snapshot first
    store = MemoryStore()
    d = Replica(m, id="d", store=store, transport=net.transport("d"), clock=net.clock("d", 2),
                peers=["a", "b", "c", "d"])
    net.settle()
    assert d.stats.installed == 1 and net.stats.snapshots >= 3 and not net.errors
    assert d.explain().base is not None and d.state == reps["a"].state
    _same_everywhere([*reps.values(), d], emitted)
    # the peers took it into their replica set: its events count for compaction
    assert all("d" in r.peers for r in reps.values())
    # it goes on like any other replica: emits, receives, compacts, restarts
    reps["d"] = d
    _traffic(net, reps, 40, rng, emitted)
    net.settle()
    _same_everywhere(list(reps.values()), emitted)
    assert any(e.origin == "d" for e in emitted)
    for r in reps.values():
        r.compact()
    _traffic(net, reps, 10, rng, emitted)
    net.settle()
    _same_everywhere(list(reps.values()), emitted)
    net.transport("d").crash()
    again = Replica(m, id="d", store=store, transport=net.transport("d"),
                    clock=net.clock("d", 2), peers=["a", "b", "c", "d"])
    reps["d"] = again
    assert again.state == d.state and again.accepted == d.accepted
    _traffic(net, reps, 10, rng, emitted, who="d")
    net.settle()
    _same_everywhere(list(reps.values()), emitted)


def test_from_snapshot_starts_with_the_peers_state_and_log(tmp_path: object) -> None:
    m = machine("account")
    net, reps = _cluster(8)
    rng = random.Random(8)
    emitted: list[Envelope] = []
    _traffic(net, reps, 50, rng, emitted)
    net.settle()
    a = reps["a"]
    assert a.compact() > 0
    _traffic(net, reps, 10, rng, emitted)
    net.settle()
    snap, log = a.bootstrap()
    assert snap is a.explain().base and [e.id for e in log] == [e.id for e in a.log]
    seen = []
    d = Replica.from_snapshot(m, snap, log, id="d", store=SQLiteStore(f"{tmp_path}/d.db"),
                              transport=net.transport("d"), clock=net.clock("d"),
                              peers=["a", "b", "c", "d"])
    d.subscribe(seen.append)
    # before anything travels: the same state, the same base and log as a
    assert d.state == a.state and d.log == a.log and d.accepted == a.accepted
    assert d.version == a.version and d.explain().base == snap
    reps["d"] = d
    _traffic(net, reps, 30, rng, emitted)
    net.settle()
    _same_everywhere(list(reps.values()), emitted)
    assert seen and any(e.origin == "d" for e in emitted)
    d.close()
    # the store holds the snapshot and the events after it
    again = Replica(m, id="d", store=SQLiteStore(f"{tmp_path}/d.db"))
    assert again.state == reps["a"].state and again.accepted == reps["a"].accepted
    assert again.explain().base == snap


def test_a_snapshot_of_another_policy_or_no_base_is_refused() -> None:
    m = machine("account")
    a = Replica(m, id="a", peers=["a"], clock=Clock(5000))
    for ev in ("deposit", "freeze", "deposit"):
        a.emit(ev)
    assert a.compact() == 3
    snap, _ = a.bootstrap()
    assert snap is not None
    r2 = Registry("account")            # same name, another meaning
    bal = r2.int("balance", 0, 99)
    r2.event("deposit", apply=lambda s: s.set(bal, s[bal] + 1))
    other = r2.build()
    with pytest.raises(PolicyMismatchError, match="same verified machine") as info:
        Replica.from_snapshot(other, snap, id="x")
    assert info.value.got == m.policy_digest and info.value.expected == other.policy_digest
    forged = dataclasses.replace(snap, policy="0" * 64)
    fresh = Replica(m, id="y")
    with pytest.raises(PolicyMismatchError):
        fresh.install_snapshot(forged)
    with pytest.raises(ReplicaError, match="not a compacted base"):
        fresh.install_snapshot(a.snapshot())        # the current state is no stable prefix
    with pytest.raises(ReplicaError, match="never reused"):
        Replica.from_snapshot(m, snap, id="a")      # a's own events, a fresh store
    assert fresh.log == () and fresh.explain().base is None
    assert fresh.install_snapshot(snap) is True and fresh.state == a.state
    assert fresh.install_snapshot(snap) is False     # nothing new the second time


def test_a_replica_away_during_compaction_catches_up_and_keeps_its_events() -> None:
    """c's clock runs ahead. a, cut off, issues events; c's events reach a
    through b, but a's never reach c. Those of a now sort below a clock every
    peer has passed, so a and b compact them away. When c is back, it gets a
    snapshot instead of events nobody can send any more, keeps its own events,
    and everyone converges."""
    m = machine("account")
    net = SimNetwork(2, delay=(1, 6))
    reps = {i: Replica(m, id=i, store=MemoryStore(), transport=net.transport(i),
                       clock=net.clock(i, skew=500 if i == "c" else 0), peers=["a", "b", "c"])
            for i in "abc"}
    rng = random.Random(2)
    emitted: list[Envelope] = []
    _traffic(net, reps, 10, rng, emitted)
    net.settle()
    net.partition(["a"], ["b", "c"])
    _traffic(net, reps, 15, rng, emitted, who="a")
    _traffic(net, reps, 15, rng, emitted, who="bc")
    net.partition(["a", "b"], ["c"])
    net.anti_entropy()
    net.run()
    _traffic(net, reps, 6, rng, emitted, who="c")
    assert reps["a"].compact() > 0 and reps["b"].compact() > 0
    c = reps["c"]
    assert reps["a"].snapshot_for(c.version) is not None   # c lacks compacted events
    assert reps["b"].snapshot_for(c.version) is not None
    changes = []
    c.subscribe(changes.append)
    net.settle()
    assert c.stats.installed == 1 and not net.errors
    assert any(ch.repaired for ch in changes)               # its state was replaced
    _same_everywhere(list(reps.values()), emitted)
    assert c.version["c"] == sum(e.origin == "c" for e in emitted)


def test_a_snapshot_that_lacks_this_replicas_events_is_refused() -> None:
    """An origin missing from the sender's peers: its events below the
    horizon are not in the snapshot, and installing it would lose them."""
    m = machine("account")
    a = Replica(m, id="a", peers=["a"], clock=Clock(5000))
    x = Replica(m, id="x", clock=Clock(10))
    a.emit("deposit")
    assert a.compact() == 1
    x.emit("freeze")                               # hlc below a's horizon
    with pytest.raises(ReplicaError, match="lacks event x:1"):
        x.install_snapshot(a.bootstrap()[0])  # type: ignore[arg-type]
    assert x.explain().base is None and [e.id for e in x.log] == ["x:1"]
