"""The signing guard: what a validator signed survives a restart, so it cannot sign twice."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

from convergent.consensus import (
    ConsensusCore,
    ConsensusError,
    ConsensusNode,
    CoreConfig,
    FaultObserved,
    FileSafetyStore,
    LocalNetwork,
    MemorySafetyStore,
    Providers,
    SafetyState,
    SigningGuard,
)
from convergent.consensus.crypto import digest
from convergent.consensus.effects import Send
from convergent.consensus.evidence import Equivocation
from convergent.consensus.guard import SafetyStore
from convergent.consensus.machine import Phase
from convergent.consensus.messages import (
    NO_LOCK,
    Confirmation,
    Kind,
    Liveness,
    LockProof,
    Vote,
    kind_of,
    sign_confirmation,
    sign_liveness,
    sign_proposal,
    sign_vote,
)
from convergent.consensus.sim import SIM_SPEC
from convergent.consensus.sim.app import SimApp

from .conftest import CHAIN, Driver, make_keys, make_schedule
from .test_core import VALUE, D, cert, liveness, vote
from .test_runtime import AsyncApp

OTHER = b"tx:other"


def node(keys, schedule, store: SafetyStore | None, index: int = 1) -> Driver:
    core: ConsensusCore[bytes] = ConsensusCore(keys[index], schedule, spec=SIM_SPEC,
                         config=CoreConfig(chain_id=CHAIN, linear=False), guard=store)
    return Driver(core, SimApp(keys[index].node_id))


def prevote_then_crash(keys, schedule, store: SafetyStore) -> Vote:
    """n01 prevotes VALUE in (0, 0), then its process dies (the Driver is dropped)."""
    drv = node(keys, schedule, store)
    drv.boot()
    drv.deliver(liveness(keys[0]), liveness(keys[2]))
    drv.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, VALUE))
    [pv] = drv.sent_of(Vote)
    assert pv.kind is Kind.PREVOTE and pv.digest == D
    return pv


def restart_and_show(keys, schedule, store: SafetyStore | None, value: bytes) -> Driver:
    """A new process for n01 on ``store``; the (byzantine) leader n00 shows it ``value``."""
    drv = node(keys, schedule, store)
    drv.boot()
    drv.deliver(liveness(keys[0]), liveness(keys[2]))
    drv.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, value))
    return drv


# ------------------------------------------------------------------ the point of it all

def test_without_the_guard_a_restart_double_signs(keys, schedule):
    """The bug the guard fixes: nothing persisted, the restarted node prevotes a second value
    in the same (height, view), and anyone can prove it equivocated."""
    first = prevote_then_crash(keys, schedule, MemorySafetyStore())
    drv = restart_and_show(keys, schedule, MemorySafetyStore(), OTHER)  # a blank guard
    [second] = drv.sent_of(Vote)
    assert (second.kind, second.height, second.view) == (Kind.PREVOTE, 0, 0)
    assert second.digest == digest(OTHER) != first.digest
    assert Equivocation.of(first, second).verify(schedule, CHAIN)


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_with_the_guard_a_restart_cannot_double_sign(keys, schedule, tmp_path, kind):
    memory = MemorySafetyStore()

    def disk() -> SafetyStore:
        """What the new process finds: the same memory object, or the file reopened."""
        return memory if kind == "memory" else FileSafetyStore(tmp_path / "n01.guard.json")

    first = prevote_then_crash(keys, schedule, disk())
    drv = restart_and_show(keys, schedule, disk(), OTHER)
    assert drv.sent_of(Vote) == []
    assert drv.core.stats.refused["PREVOTE"] == 1
    [fault] = [f for f in drv.faults() if f.kind == "sign-refused"]
    assert "PREVOTE" in fault.detail and "already signed" in fault.detail
    # the same proposal again: the very same prevote (same signature) may go out again
    again = restart_and_show(keys, schedule, disk(), VALUE)
    [pv] = again.sent_of(Vote)
    assert pv == first


def test_a_restart_resumes_with_its_lock(keys, schedule):
    """Rule 4 across a restart: the liveness of the next view still reports the lock."""
    def lock_then_crash(store: MemorySafetyStore) -> None:
        drv = node(keys, schedule, store, index=2)
        drv.boot()
        drv.deliver(liveness(keys[0]), liveness(keys[1]))
        drv.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, VALUE))
        drv.deliver(vote(keys[0], Kind.PREVOTE), vote(keys[1], Kind.PREVOTE))
        assert drv.core.phase is Phase.FINALIZING and drv.core.locked == (0, D)

    def next_view_liveness(store: MemorySafetyStore) -> Liveness:
        drv = node(keys, schedule, store, index=2)
        drv.boot()
        drv.fire()  # liveness_timeout -> view 1
        assert drv.core.view == 1
        [msg] = [m for m in drv.sent_of(Liveness) if m.view == 1]
        return msg

    durable = MemorySafetyStore()
    lock_then_crash(durable)
    restarted = node(keys, schedule, durable, index=2)
    assert restarted.core.locked == (0, D)
    assert (restarted.core.height, restarted.core.view) == (0, 0)
    kept = next_view_liveness(durable)
    assert kept.lock_view == 0 and kept.lock is not None and kept.lock.value == VALUE
    # without the guard the lock is forgotten: a liveness reporting no lock after a
    # precommit is what lets a later view finalize something else (the safety proof's step)
    lock_then_crash(MemorySafetyStore())
    lost = next_view_liveness(MemorySafetyStore())
    assert lost.lock_view == NO_LOCK


# ------------------------------------------------------------------ the rule itself

def test_guard_rules(keys):
    k = keys[0]
    guard = SigningGuard(MemorySafetyStore())
    pv = sign_vote(k, CHAIN, Kind.PREVOTE, 0, 3, 2, D)
    assert guard.permit(pv, CHAIN) is None
    assert guard.permit(pv, CHAIN) is None  # the identical message: allowed
    assert "already signed" in guard.permit(
        sign_vote(k, CHAIN, Kind.PREVOTE, 0, 3, 2, digest(OTHER)), CHAIN)
    assert "below" in guard.permit(sign_vote(k, CHAIN, Kind.PREVOTE, 0, 3, 1, D), CHAIN)
    assert "below" in guard.permit(sign_vote(k, CHAIN, Kind.PREVOTE, 0, 2, 9, D), CHAIN)
    assert guard.permit(sign_vote(k, CHAIN, Kind.PREVOTE, 0, 3, 3, digest(OTHER)), CHAIN) is None
    # kinds are independent: a precommit in view 2 after a prevote in view 3 is fine
    assert guard.permit(sign_vote(k, CHAIN, Kind.PRECOMMIT, 0, 3, 2, D), CHAIN) is None
    assert guard.refused == 3
    # a liveness may not report less than the lock recorded for its height
    proof = LockProof(VALUE, cert(keys[:3], Kind.PREVOTE, height=3, view=2))
    pc = sign_vote(k, CHAIN, Kind.PRECOMMIT, 0, 3, 3, D)
    assert guard.permit(pc, CHAIN, lock=(3, 2, proof)) is None
    assert "lock" in guard.permit(sign_liveness(k, CHAIN, 0, 3, 4, None), CHAIN)
    assert guard.permit(sign_liveness(k, CHAIN, 0, 3, 4, (2, proof)), CHAIN) is None
    # a lower lock never replaces a higher one
    assert guard.permit(sign_vote(k, CHAIN, Kind.PREVOTE, 0, 3, 4, D), CHAIN,
                        lock=(3, 1, proof)) is None
    assert guard.state.lock_at(3) == (2, proof) and guard.state.lock_at(4) is None
    assert guard.resume_point() == (3, 4)
    # a confirmation finishes its height: resume at the next one
    conf = sign_confirmation(k, CHAIN, 0, 3, VALUE, b"r", None)
    assert guard.permit(conf, CHAIN) is None
    assert guard.resume_point() == (4, 0)
    assert "CONFIRMATION" in guard.permit(
        sign_confirmation(k, CHAIN, 0, 3, VALUE, b"other result", None), CHAIN)
    assert SafetyState().resume_point() is None


class OrderCheckingStore(MemorySafetyStore):
    """Checks, at every save, that the message being recorded has not been emitted yet."""

    core: ConsensusCore[bytes] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0

    def save(self, state: SafetyState) -> None:
        assert self.core is not None
        emitted = {(kind_of(e.message), e.message.height, e.message.view)
                   for e in self.core._out if isinstance(e, Send)
                   and e.message.signer == self.core.node_id}
        for kind, rec in state.records.items():
            if self.state.records.get(kind) != rec:
                assert (kind, rec.height, rec.view) not in emitted
                self.checked += 1
        super().save(state)


def test_the_record_is_durable_before_the_message_leaves(keys, schedule):
    store = OrderCheckingStore()
    drv = node(keys, schedule, store)
    store.core = drv.core
    drv.boot()
    drv.deliver(liveness(keys[0]), liveness(keys[2]))
    drv.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, VALUE))
    drv.deliver(vote(keys[0], Kind.PREVOTE), vote(keys[2], Kind.PREVOTE))
    drv.deliver(vote(keys[0], Kind.PRECOMMIT), vote(keys[2], Kind.PRECOMMIT))
    assert drv.core.height == 1
    kinds = {type(m) for m in (s.message for s in drv.sent)}
    assert {Liveness, Vote, Confirmation} <= kinds
    assert store.checked >= 5  # liveness, prevote, precommit, confirmation, next liveness
    assert {r.kind for r in store.state.records.values()} >= {
        Kind.LIVENESS, Kind.PREVOTE, Kind.PRECOMMIT, Kind.CONFIRMATION}


class BrokenStore(MemorySafetyStore):
    def save(self, state: SafetyState) -> None:
        raise OSError(28, "No space left on device")


def test_no_durable_record_no_signature(keys, schedule):
    drv = node(keys, schedule, BrokenStore())
    drv.boot()
    drv.deliver(liveness(keys[0]), liveness(keys[2]))
    drv.deliver(sign_proposal(keys[0], CHAIN, 0, 0, 0, VALUE))
    assert [s for s in drv.sent if s.message.signer == "n01"] == []
    assert drv.core.stats.refused["LIVENESS"] == 1
    faults = [f for f in drv.faults() if f.kind == "sign-refused"]
    assert faults and "No space left" in faults[0].detail


# ------------------------------------------------------------------ the file store

def test_file_store_round_trip_fsync_and_refusal_to_start_blank(keys, tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    path = tmp_path / "state" / "n00.guard.json"
    store = FileSafetyStore(path)
    assert store.load().empty  # first start: nothing signed yet
    guard = SigningGuard(store)
    proof = LockProof(VALUE, cert(keys[:3], Kind.PREVOTE, height=5, view=1))
    p = sign_proposal(keys[0], CHAIN, 0, 5, 1, VALUE)
    assert guard.permit(p, CHAIN, lock=(5, 1, proof)) is None
    assert len(synced) >= 2  # the file and its directory
    assert sorted(os.listdir(path.parent)) == ["n00.guard.json"]  # no temporary left behind
    loaded = FileSafetyStore(path).load()
    assert loaded == guard.state
    assert loaded.lock_at(5) == (1, proof)
    assert "a different PROPOSAL" in SigningGuard(FileSafetyStore(path)).permit(
        sign_proposal(keys[0], CHAIN, 0, 5, 1, OTHER), CHAIN)
    doc = json.loads(path.read_text())
    assert doc["records"][0]["kind"] == int(Kind.PROPOSAL)
    path.write_text(path.read_text()[:40])  # a torn or corrupted file
    with pytest.raises(ConsensusError, match="refusing to start"):
        FileSafetyStore(path).load()
    with pytest.raises(ConsensusError, match="refusing to start"):
        ConsensusCore(keys[0], make_schedule(keys), guard=FileSafetyStore(path))


def test_a_store_belongs_to_one_key(keys, schedule, tmp_path):
    path = tmp_path / "n01.guard.json"
    prevote_then_crash(keys, schedule, FileSafetyStore(path))
    assert FileSafetyStore(path).load().owner == f"{CHAIN}/n01/{keys[1].public_key.hex()}"
    node(keys, schedule, FileSafetyStore(path))  # the same key: fine
    with pytest.raises(ConsensusError, match="belongs to"):
        node(keys, schedule, FileSafetyStore(path), index=2)  # another validator's file
    with pytest.raises(ConsensusError, match="belongs to"):
        ConsensusCore(keys[1], schedule, config=CoreConfig(chain_id="another-chain"),
                      guard=FileSafetyStore(path))


def test_guard_can_only_be_set_before_running(keys, schedule):
    drv = node(keys, schedule, None)
    drv.boot()
    with pytest.raises(ConsensusError, match="before the node runs"):
        drv.core.use_guard(MemorySafetyStore())
    assert isinstance(MemorySafetyStore(), SafetyStore)
    assert isinstance(FileSafetyStore("x"), SafetyStore)


def test_start_height_and_guard_resume(keys, schedule):
    assert node(keys, schedule, None).core.height == 0
    core = ConsensusCore(keys[1], schedule, spec=SIM_SPEC,
                         config=CoreConfig(chain_id=CHAIN, linear=False), start_height=7)
    assert (core.height, core.view) == (7, 0)
    store = MemorySafetyStore()
    g = SigningGuard(store)
    assert g.permit(sign_vote(keys[1], CHAIN, Kind.PREVOTE, 0, 9, 3, D), CHAIN) is None
    config = CoreConfig(chain_id=CHAIN, linear=False)
    core = ConsensusCore(keys[1], schedule, spec=SIM_SPEC, config=config, guard=store,
                         start_height=7)
    assert (core.height, core.view) == (9, 3)
    core = ConsensusCore(keys[1], schedule, spec=SIM_SPEC, config=config, guard=store,
                         start_height=12)  # the application is further along
    assert (core.height, core.view) == (12, 0)
    with pytest.raises(ValueError):
        ConsensusCore(keys[1], schedule, start_height=-1)


# ------------------------------------------------------------------ the runtime

def test_runtime_node_restarts_on_its_guard_file(tmp_path):
    """Four nodes over the in-process network, each with a guard file; one is stopped
    mid-run and replaced by a new process on the same file; nobody ever equivocates."""
    keys = make_keys(4)
    schedule = make_schedule(keys)
    apps = {k.node_id: AsyncApp(k.node_id) for k in keys}
    notes: list[Any] = []

    def make(hub: LocalNetwork, k) -> ConsensusNode[Any, Any]:
        core: ConsensusCore[bytes] = ConsensusCore(k, schedule, spec=SIM_SPEC.scaled(0.5),
                             config=CoreConfig(chain_id=CHAIN, linear=False))
        app = apps[k.node_id]
        n = ConsensusNode(core, Providers(app, app, app, app), hub.transport(k.node_id),
                          listeners=[notes.append],
                          guard=FileSafetyStore(tmp_path / f"{k.node_id}.guard.json"))
        hub.attach(n)
        return n

    async def main() -> None:
        hub = LocalNetwork(delay=0.001)
        nodes = [make(hub, k) for k in keys]
        for n in nodes:
            await n.start()
        await nodes[1].wait_for_height(2, 30)
        await nodes[1].stop()
        left_at = nodes[1].core.height
        nodes[1] = make(hub, keys[1])  # the new process, same guard file
        assert nodes[1].core.height >= left_at - 1
        await nodes[1].start()
        target = left_at + 3
        for n in nodes:
            await n.wait_for_height(target, 30)
        for n in nodes:
            await n.stop()
        for h in range(left_at + 1, target + 1):
            assert len({n.core.decisions[h].digest for n in nodes}) == 1
        assert all(len(n.core.evidence) == 0 for n in nodes)

    asyncio.run(main())
    assert not [n for n in notes if isinstance(n, FaultObserved) and n.kind == "sign-refused"
                and "could not record" in n.detail]
    for k in keys:
        state = FileSafetyStore(tmp_path / f"{k.node_id}.guard.json").load()
        assert state.records and state.resume_point()[0] >= 3
