"""The property every replica test checks: replicas that accepted the same
events hold the same state, whatever the delivery schedule.

Schedules are seeded (reproduce one with ``run_schedule(machine(name), seed)``):
2..7 replicas, random emits, delay and reordering, duplicates, drops with
retry, partitions and heals, crashes losing uncommitted work, restarts from
the store. 1,000+ schedules run per machine with conflicts.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from convergent.runtime import MemoryStore, Replica, SimNetwork

from .helpers import (
    canonical,
    canonical_state,
    causal_order,
    check_converged,
    machine,
    run_schedule,
)

SCHEDULES = 1000


@pytest.mark.parametrize("name", ["account", "order"])
def test_thousand_schedules_converge_to_the_canonical_order(name: str) -> None:
    m = machine(name)
    sizes, repairs, crashes = set(), 0, 0
    for seed in range(SCHEDULES):
        run = run_schedule(m, seed)
        try:
            check_converged(run)
        except AssertionError as exc:
            raise AssertionError(f"{name} seed {seed}: {exc}") from None
        sizes.add(len(run.replicas))
        repairs += sum(r.stats.repairs for r in run.replicas.values())
        crashes += run.crashes
    # the schedules really exercised what they claim to
    assert sizes == set(range(2, 8))
    assert repairs > 100 and crashes > 100


def test_commuting_machine_equals_any_causal_order_with_no_repair() -> None:
    m = machine("counters")
    rng = random.Random(7)
    for seed in range(500):
        run = run_schedule(m, seed)
        check_converged(run)
        events = run.expected
        for _ in range(3):
            assert m.run([e.event for e in causal_order(events, rng)]) == \
                next(iter(run.states())), f"seed {seed}"
        # every pair commutes: no rollback was ever needed
        assert all(r.stats.repairs == 0 for r in run.replicas.values()), f"seed {seed}"


def test_non_commuting_concurrent_events_are_repaired_the_same_way_everywhere() -> None:
    m = machine("account")
    net = SimNetwork(1, delay=(5, 5))
    a = Replica(m, id="a", transport=net.transport("a"), clock=net.clock("a"))
    b = Replica(m, id="b", transport=net.transport("b"), clock=net.clock("b", skew=1))
    net.now = 100
    ea = a.emit("freeze")        # hlc 100
    eb = b.emit("deposit")       # hlc 101: sorts after the freeze, so it is a no-op
    assert a.state["frozen"] and b.state["balance"] == 6
    net.run()
    assert a.state == b.state == m.run(["freeze", "deposit"])
    assert a.state["balance"] == 5  # the canonical order: freeze first
    # a received the deposit after its freeze: the end of the log, no repair;
    # b had applied its deposit first: one rollback and replay
    assert a.stats.repairs == 0 and b.stats.repairs == 1
    repair = b.explain().repairs[0]
    assert repair.inserted == (ea.id,) and repair.against == (eb.id,)
    assert repair.before["balance"] == 6 and repair.after["balance"] == 5
    assert [e.id for e in a.log] == [e.id for e in b.log] == [ea.id, eb.id]


def test_independent_pair_applies_in_arrival_order_without_repair() -> None:
    m = machine("account")
    net = SimNetwork(1, delay=(5, 5))
    a = Replica(m, id="a", transport=net.transport("a"), clock=net.clock("a"))
    b = Replica(m, id="b", transport=net.transport("b"), clock=net.clock("b", skew=1))
    a.emit("hit")
    b.emit("deposit")
    net.run()
    assert a.state == b.state
    assert b.stats.repairs == 0 and b.stats.commuted == 1


@pytest.mark.parametrize("name, flag", [("account", "resolve_conflicts"), ("account", "dedup"),
                                        ("counters", "dedup")])
def test_each_obligation_matters(name: str, flag: str) -> None:
    """Switch one obligation of the delivery contract off: seeded schedules
    that converge with it on now diverge."""
    m = machine(name)
    diverged = []
    for seed in range(60):
        on = run_schedule(m, seed)
        check_converged(on)
        off = run_schedule(m, seed, **{flag: False})
        if off.diverged():
            diverged.append(seed)
    assert diverged, f"{flag}=False never diverged"


def test_commuting_pairs_need_no_ordering() -> None:
    """With every pair verified independent, switching resolution off changes
    nothing: arrival order is as good as the canonical one."""
    m = machine("counters")
    for seed in range(100):
        run = run_schedule(m, seed, resolve_conflicts=False)
        assert not run.diverged(), f"seed {seed}"
        assert next(iter(run.states())) == canonical_state(m, run.expected)


# ---------------------------------------------------------------- stateful


class ReplicaCluster(RuleBasedStateMachine):
    """Hypothesis drives deliveries, faults, crashes and restarts; at every
    step each replica's state is the canonical fold of its log; at the end,
    after healing, all agree."""

    def __init__(self) -> None:
        super().__init__()
        self.m = machine("order")
        self.net = SimNetwork(0, delay=(0, 15), duplicate=0.2, drop=0.2, retry_after=20)
        self.ids = ["a", "b", "c", "d"]
        self.stores = {i: MemoryStore() for i in self.ids}
        self.replicas = {i: self._start(i) for i in self.ids}
        self.emitted: dict[str, object] = {}
        self.lost: set[str] = set()

    def _start(self, i: str) -> Replica:
        return Replica(self.m, id=i, store=self.stores[i], transport=self.net.transport(i),
                       clock=self.net.clock(i, skew=self.ids.index(i) * 3),
                       autoflush=i in ("a", "b"))

    @rule(i=st.sampled_from(["a", "b", "c", "d"]), e=st.integers(0, 5), k=st.integers(1, 3))
    def emit(self, i: str, e: int, k: int) -> None:
        for _ in range(k):
            env = self.replicas[i].emit(self.m.events[e])
            self.emitted[env.id] = env
            self.lost.discard(env.id)

    @rule(ms=st.integers(0, 40))
    def deliver(self, ms: int) -> None:
        self.net.run(until=self.net.now + ms)

    @rule(i=st.sampled_from(["c", "d"]))
    def flush(self, i: str) -> None:
        self.replicas[i].flush()

    @rule(k=st.integers(1, 3), seed=st.integers(0, 100))
    def partition(self, k: int, seed: int) -> None:
        ids = self.ids[:]
        random.Random(seed).shuffle(ids)
        self.net.partition(ids[:k], ids[k:])

    @rule()
    def heal(self) -> None:
        self.net.heal()

    @rule(i=st.sampled_from(["a", "b", "c", "d"]))
    def crash_and_restart(self, i: str) -> None:
        r = self.replicas[i]
        self.lost.update(e.id for e in r._unflushed if e.origin == i)
        self.net.transport(i).crash()
        self.replicas[i] = self._start(i)

    @invariant()
    def state_is_the_fold_of_the_log(self) -> None:
        for r in self.replicas.values():
            log = r.log
            assert list(log) == canonical(log)
            assert len({e.id for e in log}) == len(log)
            assert self.m.run([e.event for e in log]) == r.state

    def teardown(self) -> None:
        for r in self.replicas.values():
            r.flush()
        self.net.settle()
        expected = [e for i, e in self.emitted.items() if i not in self.lost]
        target = canonical_state(self.m, expected)
        ids = sorted(i for i in self.emitted if i not in self.lost)
        for r in self.replicas.values():
            assert sorted(e.id for e in r.log) == ids
            assert r.state == target


ReplicaCluster.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_replica_cluster = ReplicaCluster.TestCase
