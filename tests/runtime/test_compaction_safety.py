"""Compaction never refuses a committed event (issue 12, bug 1).

Anti-entropy used to report a replica's version and clock including events it
had accepted but not committed. A peer took that clock as a lower bound for
the reporter's future events and compacted past it; the reporter crashed
before committing, restarted with a lower clock (a peer's clock ran seconds
ahead) and its next event was refused for good. The stability bound is now
built from durable facts only (``Replica.report``)."""

from __future__ import annotations

import random

from convergent.runtime import Envelope, MemoryStore, ProtocolError, Replica, SimNetwork
from convergent.runtime.errors import ReplicaError
from convergent.runtime.model import Snapshot

from .helpers import canonical, canonical_state, machine


def test_a_crash_between_report_and_commit_does_not_get_an_event_refused() -> None:
    m = machine("account")
    net = SimNetwork(5, delay=(1, 2))
    stores = {i: MemoryStore() for i in "abc"}
    skew = {"a": 0, "b": 0, "c": 5_000}            # c's clock runs five seconds ahead

    def start(i: str, autoflush: bool) -> Replica:
        return Replica(m, id=i, store=stores[i], transport=net.transport(i),
                       clock=net.clock(i, skew[i]), peers="abc", autoflush=autoflush)

    a, b, c = start("a", False), start("b", True), start("c", True)
    net.now = 100
    a.emit("deposit")
    a.flush()
    b.emit("hit")
    net.run()
    a.flush()
    c.emit("freeze")                                 # hlc five seconds ahead
    net.run()
    assert a._unflushed                              # a holds c:1, not yet committed
    net.anti_entropy()                               # a reports to b...
    assert b.compact() > 0                           # ...b compacts on that report
    net.transport("a").crash()                       # a dies before its commit
    a = start("a", True)                             # and restarts from its store
    late = a.emit("withdraw")                        # with a clock behind c's
    assert late.hlc < c.log[-1].hlc if c.log else True
    net.settle()
    assert b.stats.rejected == 0, b.explain().rejected
    assert b.version.get("a") == 2 and c.version.get("a") == 2
    assert a.state == b.state == c.state


def test_the_report_holds_only_committed_facts() -> None:
    m = machine("account")
    clock = [1000]
    r = Replica(m, id="r", autoflush=False, clock=lambda: clock[0])
    r.emit("deposit")
    r.flush()
    committed = r.report()
    other = Replica(m, id="o", clock=lambda: clock[0] + 60_000)
    far = other.emit("hit")
    r.receive(far)                                   # accepted, not committed
    r.emit("deposit")
    rep = r.report()
    assert rep.version == {"r": 1} and rep.clock == committed.clock < far.hlc
    r.flush()
    rep = r.report()
    assert rep.version == {"r": 2, "o": 1} and rep.clock > far.hlc


def test_observe_peer_ignores_malformed_and_far_future_reports() -> None:
    m = machine("account")
    r = Replica(m, id="r", peers=["r", "p"], clock=lambda: 1000)
    r.emit("hit")
    r.observe_peer("p", {"p": 0}, (1000 + 10 * 60_000) << 16)   # ten minutes ahead
    r.observe_peer("p", {"p": "x"}, 5)                          # type: ignore[dict-item]
    r.observe_peer("p", [], 5)                                  # type: ignore[arg-type]
    r.observe_peer("bad id", {}, 5)
    assert r._peer_views == {} and r.stable_horizon() == -1
    r.observe_peer("p", {"p": 0}, 900 << 16)
    assert r.stable_horizon() == 900 << 16


def _hostile(rng: random.Random, target: Replica, seen: list[Envelope]) -> int:
    """One message from a hostile peer: malformed, equivocating, forged as the
    target's own, or a forged snapshot. Returns how many were refused."""
    m = target.machine
    kind = rng.randrange(4)
    if kind == 0:                                    # a malformed envelope: nothing changes
        before = (target.version, target.state, len(target.log))
        bad = Envelope("p0", 1, 5, "deposit", ["not-an-id"], None, m.policy_digest)
        try:
            target.receive([bad])
        except ProtocolError:
            assert (target.version, target.state, len(target.log)) == before
            return 1
        raise AssertionError("a malformed envelope was accepted")
    if kind == 1 and seen:                           # equivocation on an accepted id
        e = rng.choice(seen)
        if e.seq <= target.version.get(e.origin, 0):
            other = "freeze" if e.event != "freeze" else "unfreeze"
            target.receive(Envelope(e.origin, e.seq, e.hlc, other, e.deps, None, e.policy))
            return 1
        return 0
    if kind == 2:                                    # an event claiming the target's id
        n = target.version.get(target.id, 0) + 1
        target.receive(Envelope(target.id, n, 1, "withdraw", (), None, m.policy_digest))
        return 1
    forged = Snapshot(replica="p1", machine=m.name, policy=m.policy_digest,
                      state=m.decode(m.initial), digest="0" * 64, version={"p1": 10**6},
                      events=10**6, horizon=1, heads=(), clocks={}, hlc=1)
    try:
        target.install_snapshot(forged)
    except ReplicaError:
        return 1
    raise AssertionError("a forged snapshot was installed")


def test_seeded_schedules_with_compaction_crashes_skew_and_a_hostile_peer() -> None:
    m = machine("account")
    refusals = crashes = compacted = evidence = 0
    for seed in range(300):
        rng = random.Random(seed)
        n = rng.randint(2, 5)
        ids = [f"p{i}" for i in range(n)]
        net = SimNetwork(seed, delay=(0, rng.randint(1, 30)), duplicate=0.1, drop=0.1,
                         retry_after=rng.randint(5, 40))
        skews = {i: rng.randint(-3_000, 3_000) for i in ids}   # seconds apart
        stores = {i: MemoryStore() for i in ids}
        auto = {i: rng.random() < 0.5 for i in ids}

        def start(i: str) -> Replica:
            return Replica(m, id=i, store=stores[i], transport=net.transport(i),
                           clock=net.clock(i, skews[i]), peers=ids, autoflush=auto[i])

        reps = {i: start(i) for i in ids}
        emitted: dict[str, Envelope] = {}
        for _ in range(50):
            x = rng.random()
            r = reps[rng.choice(ids)]
            if x < 0.45:
                e = r.emit(rng.choice(m.events))
                emitted[e.id] = e
            elif x < 0.55:
                net.anti_entropy()
            elif x < 0.65:                            # a crash right after reporting
                net.anti_entropy()
                for e in r._unflushed:
                    if e.origin == r.id:
                        emitted.pop(e.id, None)       # lost before it was committed
                net.transport(r.id).crash()
                reps[r.id] = start(r.id)
                crashes += 1
            elif x < 0.8:
                compacted += r.compact()
            elif x < 0.87:
                refusals += _hostile(rng, r, list(emitted.values()))
            else:
                r.flush()
            net.run(until=net.now + rng.randint(0, 25))
        for r in reps.values():
            r.flush()
        net.settle()
        expected = list(emitted.values())
        target = canonical_state(m, expected)
        order = [e.id for e in canonical(expected)]
        for r in reps.values():
            assert r.stats.rejected == 0, f"seed {seed}: {r.id} {r.explain().rejected}"
            assert sum(r.version.values()) == len(expected), f"seed {seed}: {r.id} lost events"
            assert r.state == target, f"seed {seed}: {r.id}"
            log = [e.id for e in r.log]
            assert log == order[len(order) - len(log):], f"seed {seed}: {r.id} log order"
            evidence += r.stats.equivocations
    assert crashes > 50 and compacted > 200 and refusals > 50 and evidence > 10
