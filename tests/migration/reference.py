"""A slow reference for migration safety, independent of the engine's tables.

States are ``{var: value}`` dicts; events, repairs and the map are evaluated
from the specs (``Predicate.evaluate``, ``Assignment.evaluate``), one state at
a time. ``Cluster`` simulates replicas of mixed versions: random issuing,
random delivery orders (causal, or free), duplicates (at-least-once), and
switches at random moments (online) or at one drained cut (barrier)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from convergent.migration.model import Migration, Step
from convergent.spec.model import MachineSpec, StateView

State = dict[str, Any]


def _clamp(spec: MachineSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        var = spec.var_map[name]
        if var.kind == "int":
            value = min(max(int(value), var.lo), var.hi)
        out[name] = value
    return out


def nf(spec: MachineSpec, s: State) -> State:
    vmap = spec.var_map
    for _ in range(10_000):
        for inv in spec.invariants:
            if not inv.holds.evaluate(vmap, s):
                s = {**s, **_clamp(spec, inv.repair.evaluate(vmap, s))}
                break
        else:
            return s
    raise AssertionError("repairs loop")


def apply(spec: MachineSpec, s: State, event: str) -> State:
    ev = spec.event(event)
    vmap = spec.var_map
    if ev.guard is None or ev.guard.evaluate(vmap, s):
        s = {**s, **_clamp(spec, ev.apply.evaluate(vmap, s))}
    return nf(spec, s)


def initial(spec: MachineSpec) -> State:
    return nf(spec, dict(spec.initial))


def migrate(mig: Migration, s: State) -> State:
    """M(s) = nf2(map(s)), evaluated on one state."""
    v2 = mig.v2
    out: dict[str, Any] = {}
    if mig.state_map.exprs is not None:
        for name, expr in mig.state_map.exprs.items():
            out[name] = expr.eval(s)
    else:
        assert mig.state_map.fn is not None
        got = mig.state_map.fn(StateView(mig.v1.var_map, lambda v: s[v.name]))
        given = {(k.name if hasattr(k, "name") else k): v for k, v in got.items()}
        for var in v2.vars:
            out[var.name] = given[var.name] if var.name in given else s[var.name]
    for var in v2.vars:
        if var.kind == "int":
            assert var.lo <= out[var.name] <= var.hi
        elif var.kind == "enum":
            assert out[var.name] in var.values
    return nf(v2, out)


def run(mig: Migration, steps: Sequence[Step]) -> State:
    """Replay one replica's run (v1 events before its switch, translated after)."""
    s, version = initial(mig.v1), 1
    for st in steps:
        if st.kind == "switch":
            assert version == 1
            s, version = migrate(mig, s), 2
        elif st.kind == "v1":
            if version == 1:
                s = apply(mig.v1, s, st.event)
            elif mig.events[st.event] is not None:
                s = apply(mig.v2, s, str(mig.events[st.event]))
        else:
            assert version == 2, "a v2 event before the switch"
            s = apply(mig.v2, s, st.event)
    assert version == 2
    return s


# ---------------------------------------------------------------- concurrency

def concurrent_ok(mig: Migration, i1: set[frozenset[str]], i2: set[frozenset[str]],
                  a: tuple[int, str], b: tuple[int, str]) -> bool:
    """May events a and b ((version, name)) be concurrent under causal
    delivery (the machines' declared independence, docs/migration.md)?"""
    (va, ea), (vb, eb) = a, b
    if va == vb:
        pairs = i1 if va == 1 else i2
        return ea == eb or frozenset((ea, eb)) in pairs
    if va == 2:
        (va, ea), (vb, eb) = b, a
    t = mig.events[ea]
    if t is not None and (t == eb or frozenset((t, eb)) in i2):
        return True
    return any(mig.events[y] == eb and (y == ea or frozenset((ea, y)) in i1)
               for y in mig.events)


@dataclass
class _Msg:
    id: int
    version: int
    event: str
    deps: frozenset[int]


@dataclass
class _Replica:
    version: int
    state: State
    applied: list[int] = field(default_factory=list)
    applied_set: set[int] = field(default_factory=set)


class Cluster:
    """Replicas of a migration under one delivery model, driven by a seed."""

    def __init__(self, mig: Migration, delivery: str, i1: set[frozenset[str]],
                 i2: set[frozenset[str]], seed: int, replicas: int = 3) -> None:
        self.mig, self.delivery = mig, delivery
        self.i1, self.i2 = i1, i2
        self.rng = random.Random(seed)
        s0 = initial(mig.v1)
        self.reps = [_Replica(1, dict(s0)) for _ in range(replicas)]
        self.msgs: list[_Msg] = []

    # -- actions
    def issue(self, r: int) -> bool:
        rep = self.reps[r]
        spec = self.mig.v1 if rep.version == 1 else self.mig.v2
        name = self.rng.choice([e.name for e in spec.events])
        if self.delivery == "causal":
            # the discipline: a pair that may not be concurrent is issued only
            # by a replica that has seen the other event
            for m in self.msgs:
                if m.id not in rep.applied_set and not concurrent_ok(
                        self.mig, self.i1, self.i2, (m.version, m.event),
                        (rep.version, name)):
                    return False
        msg = _Msg(len(self.msgs), rep.version, name, frozenset(rep.applied_set))
        self.msgs.append(msg)
        self._apply(r, msg)
        return True

    def _apply(self, r: int, m: _Msg) -> None:
        rep = self.reps[r]
        if rep.version == 1:
            assert m.version == 1
            rep.state = apply(self.mig.v1, rep.state, m.event)
        elif m.version == 1:
            t = self.mig.events[m.event]
            if t is not None:
                rep.state = apply(self.mig.v2, rep.state, t)
        else:
            rep.state = apply(self.mig.v2, rep.state, m.event)
        if m.id not in rep.applied_set:
            rep.applied.append(m.id)
            rep.applied_set.add(m.id)

    def deliverable(self, r: int, *, drop_v1: bool = False) -> list[_Msg]:
        rep = self.reps[r]
        out = []
        for m in self.msgs:
            if m.version == 2 and rep.version == 1:
                continue                      # a v1 replica does not accept v2 events
            if m.id in rep.applied_set:
                if self.delivery == "at-least-once" and not (drop_v1 and m.version == 1):
                    out.append(m)             # a redelivery
                continue
            if self.delivery == "causal" and not m.deps <= rep.applied_set:
                continue
            out.append(m)
        return out

    def deliver(self, r: int, *, drop_v1: bool = False) -> bool:
        cands = self.deliverable(r, drop_v1=drop_v1)
        fresh = [m for m in cands if m.id not in self.reps[r].applied_set]
        if not cands:
            return False
        pool = cands if (not fresh or self.rng.random() < 0.3) else fresh
        self._apply(r, self.rng.choice(pool))
        return True

    def switch(self, r: int) -> None:
        rep = self.reps[r]
        assert rep.version == 1
        rep.state, rep.version = migrate(self.mig, rep.state), 2

    def drain(self, *, drop_v1: bool = False) -> None:
        for _ in range(100_000):
            pending = [r for r in range(len(self.reps))
                       if any(m.id not in self.reps[r].applied_set
                              for m in self.deliverable(r, drop_v1=drop_v1))]
            if not pending:
                return
            r = self.rng.choice(pending)
            fresh = [m for m in self.deliverable(r, drop_v1=drop_v1)
                     if m.id not in self.reps[r].applied_set]
            self._apply(r, self.rng.choice(fresh))
        raise AssertionError("drain did not finish")

    # -- whole runs
    def online(self, steps: int) -> list[State]:
        n = len(self.reps)
        for _ in range(steps):
            r = self.rng.randrange(n)
            x = self.rng.random()
            if x < 0.35:
                self.issue(r)
            elif x < 0.9:
                self.deliver(r)
            elif self.reps[r].version == 1:
                self.switch(r)
        for r in range(n):
            if self.reps[r].version == 1:
                # the last replicas switch while events are still in flight
                for _ in range(self.rng.randrange(3)):
                    self.deliver(r)
                self.switch(r)
        self.drain()
        return [rep.state for rep in self.reps]

    def barrier(self, steps: int) -> list[State]:
        n = len(self.reps)
        for _ in range(steps):
            r = self.rng.randrange(n)
            if self.rng.random() < 0.4:
                self.issue(r)
            else:
                self.deliver(r)
        self.drain()
        for r in range(n):
            # at-least-once: duplicates still reach v1 replicas before the cut
            for _ in range(self.rng.randrange(3)):
                self.deliver(r)
            self.switch(r)
        for _ in range(steps):
            r = self.rng.randrange(n)
            if self.rng.random() < 0.4:
                self.issue(r)
            else:
                self.deliver(r, drop_v1=True)
        self.drain(drop_v1=True)
        return [rep.state for rep in self.reps]
