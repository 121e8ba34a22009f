"""Replicas of a collection (issue 15, item 4): events carry their key, the
owner of a key issues its events, aggregates are admission rules. Random
delivery over a simulated network (late, duplicated, dropped, reordered;
anti-entropy repairs losses): replicas converge, and every aggregate holds at
every replica at every moment, as docs/collections.md claims."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent import Registry
from convergent.collection import Collection, CollectionMachine
from convergent.errors import BuildError, SpecError
from convergent.machine import Machine
from convergent.runtime.collection import (
    CollectionEnvelope,
    CollectionReplica,
    Shares,
    hash_owner,
)
from convergent.runtime.errors import (
    BackpressureError,
    PolicyMismatchError,
    ProtocolError,
    ReplicaError,
)


def account() -> Registry:
    t = Registry("account")
    t.enum("status", "applied", "open", "frozen", "closed")
    t.int("credit", 0, 3)
    t.event("approve", guard="status == applied", apply={"status": "open"})
    t.event("grant", guard="status == open and credit < 3", apply={"credit": "credit + 1"})
    t.event("repay", guard="credit > 0", apply={"credit": "credit - 1"})
    t.event("freeze", guard="status == open", apply={"status": "frozen"})
    t.event("thaw", guard="status == frozen", apply={"status": "open"})
    t.event("close", guard="status != applied and credit == 0", apply={"status": "closed"})
    t.bool("flagged")
    t.event("flag", apply={"flagged": "true"})
    t.independent("flag", "grant")       # the only pair two events on one key may race in
    return t


def accounts(capacity: int, frozen: int, admission: str = "escrow") -> CollectionMachine:
    col = Collection("accounts", account(), key="customer", admission=admission)
    col.sum("capacity", "credit", at_most=capacity)
    col.count("frozen", "status == frozen", at_most=frozen)
    return col.build()


KEYS = [f"k{i}" for i in range(6)]


def owner_of(replicas: list[str]) -> Any:
    return lambda key: replicas[int(str(key)[1:]) % len(replicas)]


class Net:
    """In flight: (destination, envelope) messages, delivered in an order
    the test chooses; a dropped one is gone (anti-entropy repairs it)."""

    def __init__(self, replicas: dict[str, CollectionReplica]) -> None:
        self.replicas = replicas
        self.flight: list[tuple[str, CollectionEnvelope]] = []

    def broadcast(self, env: CollectionEnvelope | None) -> None:
        if env is not None:
            self.flight += [(r, env) for r in self.replicas if r != env.origin]

    def deliver(self, i: int) -> None:
        if self.flight:
            dst, env = self.flight.pop(i % len(self.flight))
            self.replicas[dst].receive(env)

    def sync(self, a: str, b: str) -> None:
        """Anti-entropy from a to b."""
        self.replicas[b].receive(self.replicas[a].missing_for(self.replicas[b].version))

    def settle(self) -> None:
        ids = list(self.replicas)
        for _ in range(len(ids) + 1):
            for a in ids:
                for b in ids:
                    if a != b:
                        self.sync(a, b)


def holds(r: CollectionReplica) -> None:
    """Every aggregate holds here, the totals are the keys' contributions,
    and (escrow) every origin uses at most its share as seen here."""
    cm = r.machine
    recount = [0] * len(cm.aggregates)
    for sid in r.state.ids.values():
        for i, c in enumerate(cm.contribution(sid)):
            recount[i] += c
    assert tuple(recount) == r.state.totals
    for a, total in zip(cm.aggregates, r.state.totals):
        assert total <= a.limit, (a.name, total, a.limit)
    if r.escrow:
        for a in cm.aggregates:
            shares = [r.share(a.name, o) for o in r.replicas]
            assert sum(shares) == sum(r.shares.table[a.name].values())
            used = {o: 0 for o in r.replicas}
            for key, sid in r.state.ids.items():
                used[r.owner(key)] += cm.contribution(sid)[[x.name for x in cm.aggregates]
                                                           .index(a.name)]
            for o in r.replicas:
                assert used[o] <= r.share(a.name, o), (a.name, o, used[o])


# events of the account template by index, grants most often (the limits bind)
EVENT_MIX = ["approve", "grant", "grant", "grant", "repay", "freeze", "thaw", "close", "flag",
             "approve", "grant", "freeze"]

def program_of(seed: int, length: int) -> list[tuple[Any, ...]]:
    """A random schedule: emits (grants most often), deliveries in random
    order, duplicates, drops, anti-entropy between two replicas, share
    transfers. Drawn from a seed so that runs are long enough to bind the
    limits; hypothesis still shrinks the length."""
    rnd = random.Random(seed)
    out: list[tuple[Any, ...]] = []
    for _ in range(length):
        x = rnd.random()
        if x < 0.45:
            out.append(("emit", rnd.randrange(4), rnd.randrange(len(EVENT_MIX))))
        elif x < 0.75:
            out.append(("deliver", rnd.randrange(10**6)))
        elif x < 0.80:
            out.append(("duplicate", rnd.randrange(10**6)))
        elif x < 0.85:
            out.append(("drop", rnd.randrange(10**6)))
        elif x < 0.90:
            out.append(("sync", rnd.randrange(4), rnd.randrange(4)))
        else:
            out.append(("transfer", rnd.randrange(4), rnd.randrange(2), rnd.randrange(4),
                        rnd.randrange(1, 4)))
    return out


ops = st.builds(program_of, st.integers(0, 2**32 - 1), st.integers(0, 150))


def run(cm: CollectionMachine, n: int, program: list[tuple[Any, ...]],
        stats: dict[str, int] | None = None) -> Net:
    ids = [f"r{i}" for i in range(n)]
    owner = owner_of(ids)
    net = Net({r: CollectionReplica(cm, r, replicas=ids, owner=owner) for r in ids})
    events = cm.template.events
    mix = EVENT_MIX if set(EVENT_MIX) <= set(events) else list(events)
    stats = {} if stats is None else stats
    for op in program:
        kind = op[0]
        if kind == "emit":
            key = KEYS[op[1]]
            out = net.replicas[owner(key)].emit(key, mix[op[2] % len(mix)])
            net.broadcast(out.envelope)
            if out.refused is not None and out.refused.startswith("aggregate:"):
                stats["refused"] = stats.get("refused", 0) + 1
        elif kind == "transfer" and cm.aggregates and cm.admission == "escrow":
            src, to = ids[op[1] % n], ids[op[3] % n]
            agg = cm.aggregates[op[2] % len(cm.aggregates)].name
            rep = net.replicas[src]
            if src != to and 1 <= op[4] <= rep.available(agg):
                net.broadcast(rep.transfer(agg, to, op[4]))
                stats["transfers"] = stats.get("transfers", 0) + 1
        elif kind == "deliver":
            net.deliver(op[1])
        elif kind == "duplicate" and net.flight:
            net.flight.append(net.flight[op[1] % len(net.flight)])
        elif kind == "drop" and net.flight:
            net.flight.pop(op[1] % len(net.flight))
        elif kind == "sync":
            a, b = ids[op[1] % n], ids[op[2] % n]
            if a != b:
                net.sync(a, b)
        for r in net.replicas.values():
            holds(r)
            if r.pending:
                stats["buffered"] = stats.get("buffered", 0) + 1
    return net


def converged(net: Net) -> None:
    net.settle()
    reps = list(net.replicas.values())
    first = reps[0]
    for r in reps:
        holds(r)
        assert r.version == first.version
        assert r.state == first.state
        assert r.totals() == first.totals()
        if r.escrow:
            for a in r.machine.aggregates:
                assert [r.share(a.name, o) for o in r.replicas] == \
                    [first.share(a.name, o) for o in r.replicas]
        assert not r.pending


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(capacity=st.integers(0, 7), frozen=st.integers(0, 2), n=st.integers(2, 4),
       program=ops, seed=st.integers(0, 2**32 - 1))
def test_escrow_replicas_converge_and_keep_every_limit(capacity: int, frozen: int, n: int,
                                                       program: list[tuple[Any, ...]],
                                                       seed: int) -> None:
    cm = accounts(capacity, frozen)
    net = run(cm, n, program)
    converged(net)
    # the converged log, replayed with admission against the whole collection
    # (CollectionMachine semantics, one process), admits every event: escrow
    # never admits what a single, global admission would refuse
    first = next(iter(net.replicas.values()))
    state = cm.initial
    for env in first.log:
        if env.kind == "event":
            before = cm.state_of(state, env.key).id
            expected = cm.template.apply_id(before, str(env.event))
            state = cm.apply(state, env.key, str(env.event))
            assert cm.state_of(state, env.key).id == expected
    assert state == first.state
    # a newcomer that gets every envelope in a random order catches up
    ids = list(net.replicas)
    late = CollectionReplica(cm, ids[0], replicas=ids, owner=first.owner)
    envs = list(first.log)
    random.Random(seed).shuffle(envs)
    for env in envs:
        late.receive(env)
        holds(late)
    assert late.state == first.state and late.version == first.version


def shared_collections() -> Any:
    from test_collection import collections
    return collections()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(col=shared_collections(), n=st.integers(2, 3), program=ops)
def test_shared_admission_runs_only_verified_collections_and_then_converges(
        col: Collection, n: int, program: list[tuple[Any, ...]]) -> None:
    try:
        report = col.check()
    except (SpecError, BuildError):
        return
    if not report.template.wfc.ok or not report.template.ok:
        return
    from convergent.engine.check import analyze
    cm = CollectionMachine(col, Machine._from_analysis(analyze(col.template)), report)
    ids = [f"r{i}" for i in range(n)]
    if not report.ok:
        with pytest.raises(ReplicaError, match="check did not pass"):
            CollectionReplica(cm, "r0", replicas=ids)
        return
    if not cm.template.events:
        return
    converged(run(cm, n, program))


def test_escrow_refuses_beyond_the_share_and_transfers_rebalance() -> None:
    cm = accounts(capacity=3, frozen=1)
    ids = ["a", "b"]
    owner = owner_of(ids)                # k0, k2, k4 -> a; k1, k3, k5 -> b
    a = CollectionReplica(cm, "a", replicas=ids, owner=owner)
    b = CollectionReplica(cm, "b", replicas=ids, owner=owner)
    assert (a.share("capacity"), a.share("capacity", "b")) == (2, 1)
    sent = [a.emit("k0", "approve"), a.emit("k0", "grant"), a.emit("k0", "grant")]
    assert all(x.admitted for x in sent)
    refused = a.emit("k0", "grant")
    assert refused.envelope is None and refused.refused == "aggregate:capacity"
    sent += [b.emit("k1", "approve"), b.emit("k1", "grant")]
    assert b.emit("k1", "grant").refused == "aggregate:capacity"
    assert b.emit("k1", "thaw").refused == "guard"
    # a repays, and hands the freed unit to b
    sent.append(a.emit("k0", "repay"))
    t = a.transfer("capacity", "b", 1)
    with pytest.raises(ReplicaError, match="unused share"):
        a.transfer("capacity", "b", 1)
    assert b.emit("k1", "grant").refused == "aggregate:capacity"   # not received yet
    b.receive([x.envelope for x in sent if x.envelope and x.envelope.origin == "a"] + [t])
    assert b.share("capacity") == 2
    g = b.emit("k1", "grant")
    assert g.admitted
    a.receive(b.missing_for(a.version))
    assert a.state == b.state and a.totals() == {"capacity": 3, "frozen": 0}
    with pytest.raises(ReplicaError, match="owned by replica 'b'"):
        a.emit("k1", "grant")


def test_shares_must_fit_the_limit() -> None:
    cm = accounts(capacity=3, frozen=1)
    with pytest.raises(ReplicaError, match="above its limit"):
        CollectionReplica(cm, "a", replicas=["a", "b"],
                          shares=Shares({"capacity": {"a": 2, "b": 2},
                                         "frozen": {"a": 1, "b": 0}}))
    with pytest.raises(ReplicaError, match="name replicas"):
        CollectionReplica(cm, "a", replicas=["a", "b"],
                          shares=Shares({"capacity": {"a": 3}, "frozen": {"a": 1}}))
    assert Shares.split(cm, ["c", "a", "b"]).table["capacity"] == {"a": 1, "b": 1, "c": 1}


def _pair() -> tuple[CollectionReplica, CollectionReplica, CollectionEnvelope]:
    cm = accounts(capacity=2, frozen=1)
    ids = ["a", "b"]
    a = CollectionReplica(cm, "a", replicas=ids, owner=owner_of(ids))
    b = CollectionReplica(cm, "b", replicas=ids, owner=owner_of(ids))
    env = a.emit("k0", "approve").envelope
    assert env is not None
    return a, b, env


@pytest.mark.parametrize("edit, error", [
    (dict(policy="0" * 64), PolicyMismatchError),
    (dict(origin="z"), ProtocolError),
    (dict(seq=0), ProtocolError),
    (dict(seq=True), ProtocolError),
    (dict(deps={"a": 5}), ProtocolError),
    (dict(deps={"a": 0, "zz": 1}), ProtocolError),
    (dict(key="k1"), ProtocolError),                 # owned by b, sent by a
    (dict(key=3), ProtocolError),                    # not a str key
    (dict(key="k" * 300), ProtocolError),
    (dict(event="launch"), ProtocolError),
    (dict(kind="gift"), ProtocolError),
])
def test_a_bad_envelope_changes_nothing(edit: dict[str, Any], error: type[Exception]) -> None:
    a, b, env = _pair()
    bad = replace(env, **edit)
    before = (b.state, b.version, b.pending)
    with pytest.raises(error):
        b.receive([env, bad])                        # the good one is not applied either
    assert (b.state, b.version, b.pending) == before
    assert b.receive(env) == 1


def test_an_origin_exceeding_its_share_is_caught() -> None:
    a, b, env = _pair()                              # capacity 2: a 1, b 1
    b.receive(env)
    forged = [env]
    g1 = a.emit("k0", "grant").envelope
    assert g1 is not None and a.emit("k0", "grant").refused == "aggregate:capacity"
    # a lies: a second grant beyond its share, correctly numbered and signed off
    lie = replace(g1, seq=g1.seq + 1, deps={**g1.deps, "a": g1.seq})
    forged += [g1, lie]
    with pytest.raises(ProtocolError, match="exceeds its share of 'capacity'"):
        b.receive(forged[1:])
    assert b.totals()["capacity"] == 1 and b.version["a"] == g1.seq
    assert b.evidence and b.stats.evidence == 1
    holds(b)


def test_equivocation_is_evidence_and_the_first_content_stays() -> None:
    a, b, env = _pair()
    b.receive(env)
    other = replace(env, event="thaw")
    b.receive(other)
    assert b.evidence and b.log == (env,)


def test_envelopes_cross_the_wire_as_checked_dicts() -> None:
    a, b, env = _pair()
    t = a.transfer("capacity", "b", 1)
    for x in (env, t):
        assert CollectionEnvelope.from_dict(x.to_dict()) == x
    with pytest.raises(ProtocolError):
        CollectionEnvelope.from_dict({**env.to_dict(), "extra": 1})
    with pytest.raises(ProtocolError):
        CollectionEnvelope.from_dict([1, 2])
    b.receive([CollectionEnvelope.from_dict(env.to_dict()),
               CollectionEnvelope.from_dict(t.to_dict())])
    assert b.share("capacity") == 2


def test_backpressure_refuses_and_anti_entropy_recovers() -> None:
    cm = accounts(capacity=4, frozen=1)
    ids = ["a", "b"]
    a = CollectionReplica(cm, "a", replicas=ids, owner=owner_of(ids))
    b = CollectionReplica(cm, "b", replicas=ids, owner=owner_of(ids), max_pending=2)
    envs = [x.envelope for x in (a.emit("k0", "approve"), a.emit("k2", "approve"),
                                 a.emit("k4", "approve"), a.emit("k0", "grant"))]
    assert all(envs)
    with pytest.raises(BackpressureError) as info:
        b.receive(list(reversed([e for e in envs if e])))
    # a:4 and a:3 fill the buffer, a:2 is refused, a:1 is ready: applied anyway
    assert info.value.refused == ("a:2",) and b.version["a"] == 1
    assert len(b.pending) == 2
    b.receive(a.missing_for(b.version))
    assert b.state == a.state and not b.pending


def test_hash_owner_is_stable_and_spreads() -> None:
    own = hash_owner(["b", "a", "c"])
    assert own("alice") == hash_owner(["c", "a", "b"])("alice")
    assert {own(f"user{i}") for i in range(60)} == {"a", "b", "c"}


def test_the_generated_runs_reach_what_the_property_asserts() -> None:
    """The escrow property is only as strong as its runs: they must hit
    refusals at the limit, transfers, buffered (out of order) envelopes and
    converged collections at their limit."""
    stats: dict[str, int] = {}

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(capacity=st.integers(0, 7), frozen=st.integers(0, 2), n=st.integers(2, 4),
           program=ops)
    def sample(capacity: int, frozen: int, n: int, program: list[tuple[Any, ...]]) -> None:
        net = run(accounts(capacity, frozen), n, program, stats)
        net.settle()
        r = next(iter(net.replicas.values()))
        if capacity and r.totals()["capacity"] == capacity:
            stats["at_limit"] = stats.get("at_limit", 0) + 1

    sample()
    assert all(stats.get(k, 0) >= 3 for k in ("refused", "transfers", "buffered",
                                              "at_limit")), stats


def test_a_hostile_version_vector_is_refused() -> None:
    a, b, env = _pair()
    for bad in ({"a": -1}, {"a": "1"}, {1: 1}, [("a", 1)], {f"x{i}": 0 for i in range(100)}):
        with pytest.raises(ProtocolError):
            a.missing_for(bad)  # type: ignore[arg-type]
    assert a.missing_for({"a": 0}) == [env]
    with pytest.raises(ReplicaError, match="unknown replica"):
        a.share("capacity", "zz")
    with pytest.raises(ReplicaError, match="unknown aggregate"):
        a.available("nope")
