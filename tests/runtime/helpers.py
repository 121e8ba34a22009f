"""Seeded schedules over the simulated network, and the checks every
convergence test shares."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from convergent.machine import Machine
from convergent.runtime import Envelope, MemoryStore, Replica, SimNetwork

from .machines import account_registry, counters_registry, order_registry

_MACHINES: dict[str, Machine] = {}


def machine(name: str) -> Machine:
    """Built once per process: ``account``, ``counters`` or ``order``."""
    if name not in _MACHINES:
        reg = {"account": account_registry, "counters": counters_registry,
               "order": order_registry}[name]()
        _MACHINES[name] = reg.build()
    return _MACHINES[name]


def canonical(envs: Any) -> list[Envelope]:
    return sorted(envs, key=lambda e: e.key)


def canonical_state(m: Machine, envs: Any) -> Any:
    return m.run([e.event for e in canonical(envs)])


def causal_order(envs: list[Envelope], rng: random.Random) -> list[Envelope]:
    """A random linear extension of the causal order (deps plus each
    origin's previous event)."""
    by_id = {e.id: e for e in envs}
    preds: dict[str, set[str]] = {}
    for e in envs:
        p = {d for d in e.deps if d in by_id}
        if e.seq > 1:
            p.add(f"{e.origin}:{e.seq - 1}")
        preds[e.id] = p
    done: set[str] = set()
    out: list[Envelope] = []
    ready = sorted(i for i, p in preds.items() if not p)
    while ready:
        i = ready.pop(rng.randrange(len(ready)))
        done.add(i)
        out.append(by_id[i])
        for j, p in preds.items():
            if j not in done and j not in ready and i in p and p <= done:
                ready.append(j)
    assert len(out) == len(envs), "the causal graph has a cycle"
    return out


@dataclass
class Run:
    machine: Machine
    net: SimNetwork
    replicas: dict[str, Replica]
    emitted: dict[str, Envelope] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    crashes: int = 0

    @property
    def expected(self) -> list[Envelope]:
        return [e for i, e in self.emitted.items() if i not in self.lost]

    def states(self) -> set[Any]:
        return {r.state for r in self.replicas.values()}

    def diverged(self) -> bool:
        return len(self.states()) > 1


def run_schedule(m: Machine, seed: int, *, n: int | None = None, steps: int = 40,
                 resolve_conflicts: bool = True, dedup: bool = True, crashes: bool = True,
                 faults: bool = True) -> Run:
    """N (2..7) replicas, random emits, network delay/reorder/duplicates/drops
    with retry, partitions and heals, crashes that lose uncommitted work and
    restarts from the store; then everything is healed and settled."""
    rng = random.Random(seed)
    n = n or rng.randint(2, 7)
    net = SimNetwork(seed, delay=(0, rng.randint(1, 40)),
                     duplicate=rng.choice((0.0, 0.1, 0.4)) if faults else 0.0,
                     drop=rng.choice((0.0, 0.1, 0.3)) if faults else 0.0,
                     retry_after=rng.randint(5, 60))
    ids = [f"r{i}" for i in range(n)]
    skews = {i: rng.randint(-20, 20) for i in ids}
    stores = {i: MemoryStore() for i in ids}
    autoflush = {i: rng.random() < 0.6 for i in ids}

    def start(i: str) -> Replica:
        return Replica(m, id=i, store=stores[i], transport=net.transport(i),
                       clock=net.clock(i, skews[i]), autoflush=autoflush[i],
                       resolve_conflicts=resolve_conflicts, dedup=dedup)

    run = Run(m, net, {i: start(i) for i in ids})
    events = m.events
    for _ in range(steps):
        x = rng.random()
        r = run.replicas[rng.choice(ids)]
        if x < 0.55:
            for _ in range(rng.choice((1, 1, 1, 2, 4))):
                e = r.emit(rng.choice(events))
                run.emitted[e.id] = e  # an id lost in a crash is reused afterwards
                run.lost.discard(e.id)
        elif x < 0.62 and faults:
            k = rng.randint(1, n - 1) if n > 1 else 1
            shuffled = ids[:]
            rng.shuffle(shuffled)
            net.partition(shuffled[:k], shuffled[k:])
        elif x < 0.68 and faults:
            net.heal()
        elif x < 0.72 and crashes:
            # kill -9: whatever was not flushed is gone; restart from the store
            lost = [e.id for e in r._unflushed if e.origin == r.id]
            run.lost.update(lost)
            net.transport(r.id).crash()
            run.crashes += 1
            run.replicas[r.id] = start(r.id)
        elif x < 0.8:
            r.flush()
        net.run(until=net.now + rng.randint(0, 30))
    for r in run.replicas.values():
        r.flush()
    net.settle()
    return run


def check_converged(run: Run) -> None:
    """Every replica holds the canonical fold of exactly the acknowledged events."""
    m = run.machine
    expected = run.expected
    ids = sorted(e.id for e in expected)
    target = canonical_state(m, expected)
    order = [e.id for e in canonical(expected)]
    for r in run.replicas.values():
        log = [e.id for e in r.log]
        assert len(log) == len(set(log)), f"{r.id}: an event is applied twice"
        assert sorted(log) == ids, (f"{r.id}: lost {sorted(set(ids) - set(log))}, "
                                    f"extra {sorted(set(log) - set(ids))}")
        assert log == order, f"{r.id}: concurrent events resolved in another order"
        assert not r.pending, f"{r.id}: {len(r.pending)} envelopes still buffered"
        assert r.state == target, f"{r.id}: {r.state} != canonical {target}"
        # the state is the fold of the log, not an accident of arrival order
        assert m.run([e.event for e in r.log]) == r.state
