"""Applies go through a durable queue in height order, never cancelled by phase timers.

The bug (issue 13): the verifying timeout cancelled the pending ``finalize_votes``
call, so a node whose application was slower than that timeout finalized every
height and applied none of them.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.consensus import ConsensusError
from convergent.consensus.applies import (
    ApplyQueue,
    ApplyState,
    FileApplyLog,
    MemoryApplyLog,
    PendingApply,
)
from convergent.consensus.effects import (
    CancelCall,
    Call,
    ProviderDone,
    ProviderFailed,
    Send,
    TimerFired,
)
from convergent.consensus.machine import Phase
from convergent.consensus.messages import Confirmation, Kind
from convergent.consensus.sim import SIM_SPEC, Crash, ProviderFaults, SimConfig, Simulation

from convergent.consensus.sim.app import SimApp

from .conftest import Driver, make_core, make_keys, make_schedule
from .test_core import D, VALUE, to_voting, vote

SLOW = 1.2  # seconds per apply; the simulator's verifying timeout is 0.5 s


def _certificate(height: int):
    from convergent.consensus.messages import Certificate
    return Certificate(Kind.PRECOMMIT, 0, height, 0, bytes(32), (("n00", bytes(64)),))


# ---------------------------------------------------------------- the queue on its own

def test_the_queue_hands_out_heights_in_order_one_at_a_time():
    log = MemoryApplyLog()
    q = ApplyQueue(log)
    assert q.add(2, b"c", _certificate(2)) and q.add(0, b"a", _certificate(0))
    assert not q.add(0, b"a", _certificate(0))  # logged once
    assert q.next() == PendingApply(0, b"a", _certificate(0))
    q.in_flight = 0
    assert q.next() is None  # one call at a time
    q.done(0)
    assert q.next() is None  # height 1 is missing: 2 waits for it
    q.add(1, b"b", _certificate(1))
    assert q.next().height == 1
    q.done(1)
    assert q.next().height == 2 and q.backlog == 1
    assert not q.add(1, b"b", _certificate(1))  # already applied
    assert log.state.next_height == 2 and [p.height for p in log.state.pending] == [2]


def test_the_queue_starts_where_the_application_or_the_log_says():
    log = MemoryApplyLog(ApplyState(3, (PendingApply(3, b"d", _certificate(3)),
                                        PendingApply(4, b"e", _certificate(4)))))
    assert ApplyQueue(log).next().height == 3
    ahead = ApplyQueue(log, start_height=4)  # the application already has height 3
    assert ahead.next().height == 4 and ahead.backlog == 1
    synced = ApplyQueue(log)
    synced.skip_to(5)
    assert synced.next() is None and synced.backlog == 0 and log.state.next_height == 5


@settings(max_examples=50, deadline=None)
@given(st.permutations(range(8)))
def test_whatever_order_heights_finalize_in_they_apply_in_height_order(order):
    q = ApplyQueue(MemoryApplyLog())
    applied = []
    for h in order:
        q.add(h, bytes([h]), _certificate(h))
        while (entry := q.next()) is not None:
            applied.append(entry.height)
            q.done(entry.height)
    assert applied == list(range(8))


def test_the_file_log_round_trips_and_refuses_to_start_blank(tmp_path):
    path = tmp_path / "n01.applies.json"
    log = FileApplyLog(path)
    q = ApplyQueue(log)
    q.add(0, b"tx:a", _certificate(0))
    q.add(1, b"tx:b", _certificate(1))
    q.done(0)
    again = ApplyQueue(FileApplyLog(path))  # a new process on the same file
    assert again.next_height == 1 and again.next() == PendingApply(1, b"tx:b", _certificate(1))
    assert json.loads(path.read_text())["next_height"] == 1
    path.write_text("{not json")
    with pytest.raises(ConsensusError, match="unreadable"):
        FileApplyLog(path).load()


# ---------------------------------------------------------------- on one core

def _decided_with_the_apply_held() -> tuple[Driver, Call]:
    keys = make_keys(4)
    drv = Driver(make_core(keys, make_schedule(keys), 1), SimApp("n01"))
    to_voting(drv, keys)
    drv.auto = False
    drv.deliver(vote(keys[0], Kind.PREVOTE), vote(keys[2], Kind.PREVOTE),
                vote(keys[0], Kind.PRECOMMIT), vote(keys[2], Kind.PRECOMMIT))
    [d] = drv.decisions()
    assert d.digest == D and drv.core.phase is Phase.VERIFYING
    [apply] = [c for c in drv.held if c.method == "finalize_votes"]
    assert apply.timeout is None  # no phase timeout on it
    return drv, apply


def test_the_verifying_timeout_never_cancels_the_apply():
    drv, apply = _decided_with_the_apply_held()
    assert drv.timer is not None
    effects = drv.core.handle(TimerFired(drv.timer.token, drv.timer.event), drv.now)
    assert drv.core.height == 1  # consensus moved on...
    assert not [e for e in effects if isinstance(e, CancelCall) and e.token == apply.token]
    [conf] = [e.message for e in effects
              if isinstance(e, Send) and isinstance(e.message, Confirmation)]
    assert conf.result == b""  # ...confirming without a result
    drv.auto = True
    drv.feed(ProviderDone(apply.token, drv.app.finalize_votes(*apply.args)))
    assert drv.app.applied == [VALUE]  # ...and the apply still completed
    assert drv.core.applies.next_height == 1


def test_a_failed_apply_is_retried_never_skipped():
    drv, apply = _decided_with_the_apply_held()
    drv.feed(ProviderFailed(apply.token, "RuntimeError('disk full')"))
    assert drv.core.applies.next_height == 0
    drv.fire()  # the verifying timeout: a phase change retries the apply
    retries = [c for c in drv.held if c.method == "finalize_votes" and c.token != apply.token]
    assert retries and retries[0].args[0].height == 0 and retries[0].args[0].raw == VALUE


# ---------------------------------------------------------------- in the simulator

def _check_applied_in_order(sim: Simulation, result) -> None:
    for node_id in result.honest:
        node = sim.nodes[int(node_id[1:])]
        ledger = sim.ledger(node_id)
        finalized = max(ledger) + 1
        assert finalized >= sim.config.heights
        expected = [ledger[h].raw for h in range(finalized)]
        assert node.app.applied == expected, node_id  # each height once, in height order


def test_a_slow_application_applies_every_finalized_height():
    heights = 8
    cfg = SimConfig(n=4, heights=heights, seed=4, faults=ProviderFaults(
        slow=(("finalize_votes", SLOW),)), max_time=200)
    assert SLOW > SIM_SPEC.timeout(Phase.VERIFYING)
    sim = Simulation(cfg)
    r = sim.run()
    assert r.safe
    assert all(len(n.app.applied) < heights for n in sim.nodes)  # far behind consensus
    sim.quiesce(heights * SLOW + 1.0)
    _check_applied_in_order(sim, r)
    # consensus did not wait for the application: the heights finalized faster than it applies
    last = max(t for _, t in r.decisions[r.honest[0]].values())
    assert last < heights * SLOW / 2
    assert any(f.kind == "finalize-timeout" for fs in r.faults.values() for f in fs)


def test_a_slow_application_applies_every_finalized_height_across_a_restart():
    heights = 8
    crash = Crash(1, 1.2, 0.3)
    cfg = SimConfig(n=4, heights=heights, seed=2, byzantine=(), crashes=(crash,),
                    faults=ProviderFaults(slow=(("finalize_votes", SLOW),)), max_time=300)
    sim = Simulation(cfg)
    r = sim.run()
    sim.quiesce(2 * heights * SLOW)
    assert r.safe and r.restarts == 1
    node = sim.nodes[1]
    # the crash came with finalized heights not yet applied: the old process's queue had them
    [old] = node.retired
    assert old.applies.backlog > 0 or old.applies.in_flight is not None
    _check_applied_in_order(sim, r)


def test_applies_follow_the_guard_across_restarts_under_a_bad_network():
    from convergent.consensus.sim import NetworkConfig
    for seed in range(6):
        cfg = SimConfig(n=4, heights=5, seed=seed, random_crashes=3, crash_window=3.0,
                        network=NetworkConfig(gst=1.0, drop_rate=0.2),
                        faults=ProviderFaults(slow=(("finalize_votes", 0.8),)), max_time=400)
        sim = Simulation(cfg)
        r = sim.run()
        sim.quiesce(12.0)
        assert r.safe, seed
        _check_applied_in_order(sim, r)


def test_confirmations_carry_the_result_when_the_apply_is_in_time():
    sim = Simulation(SimConfig(n=4, heights=3, seed=1))
    r = sim.run()
    assert r.safe and not any(f.kind == "finalize-timeout" for fs in r.faults.values()
                              for f in fs)
    node = sim.nodes[0]
    book = node.core._heights[0]
    assert book.my_confirmation is not None and book.my_confirmation.result == node.app.results[0]
