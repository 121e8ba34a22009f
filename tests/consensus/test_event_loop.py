"""What stays off the event loop: signature checks (batched, after per-peer rate limits) and
the signing guard's fsync (one per batch, before any of the batch's signatures leaves)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from convergent.consensus import (
    ConsensusCore,
    ConsensusNode,
    CoreConfig,
    FileApplyLog,
    FileSafetyStore,
    LocalNetwork,
    Providers,
    Verifier,
)
from convergent.consensus.crypto import digest
from convergent.consensus.guard import SafetyState
from convergent.consensus.ingress import Ingress, RateLimit
from convergent.consensus.messages import Aggregate, Kind, kind_of, sign_vote

from .conftest import CHAIN, make_keys, make_schedule
from .test_runtime import SPEC, AsyncApp


class ThreadRecordingVerifier(Verifier):
    """Records the thread of every signature really checked (memo misses)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def verify(self, public_key: bytes, payload: bytes, signature: bytes) -> bool:
        if self.known(public_key, payload, signature) is None:
            self.threads.append(threading.get_ident())
        return super().verify(public_key, payload, signature)


class RecordingStore(FileSafetyStore):
    def __init__(self, path: Any, fail: bool = False) -> None:
        super().__init__(path, fsync=False)
        self.threads: list[int] = []
        self.fail = fail

    def save(self, state: SafetyState) -> None:
        self.threads.append(threading.get_ident())
        if self.fail:
            raise OSError("disk full")
        super().save(state)


class RecordingLog(FileApplyLog):
    def __init__(self, path: Any) -> None:
        super().__init__(path, fsync=False)
        self.threads: list[int] = []

    def save(self, state: Any) -> None:
        self.threads.append(threading.get_ident())
        super().save(state)


class CheckingTransport:
    """Forwards to the hub, checking first that what its node signed is already durable."""

    def __init__(self, inner: Any, node_id: str, store: RecordingStore) -> None:
        self.inner, self.node_id, self.store = inner, node_id, store
        self.own = 0
        self.early: list[Any] = []

    def send(self, message: Any, to: str | None) -> None:
        # an aggregate is a forward of other nodes' votes, not something the guard records
        if message.signer == self.node_id and not isinstance(message, Aggregate):
            self.own += 1
            record = FileSafetyStore(self.store.path).load().records.get(kind_of(message))
            covered = record is not None and (
                (record.height, record.view) > (message.height, message.view)
                or record.digest == digest(message.payload(CHAIN)))
            if not covered:
                self.early.append(message)
        self.inner.send(message, to)


class CountingKeys:
    """A validator key that counts what it signs."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.signed = inner, 0
        self.node_id, self.public_key = inner.node_id, inner.public_key

    def sign(self, payload: bytes) -> bytes:
        self.signed += 1
        return self.inner.sign(payload)


def _cluster(tmp_path, fail: int | None = None, logs: list[RecordingLog] | None = None):
    keys = make_keys(4)
    schedule = make_schedule(keys)
    hub = LocalNetwork(delay=0.001)
    nodes, verifiers, stores, transports = [], [], [], []
    for i, k in enumerate(keys):
        app = AsyncApp(k.node_id)
        verifier = ThreadRecordingVerifier()
        core = ConsensusCore(CountingKeys(k), schedule, spec=SPEC,
                             config=CoreConfig(chain_id=CHAIN), verifier=verifier)
        store = RecordingStore(tmp_path / f"{k.node_id}.guard.json", fail=i == fail)
        transport = CheckingTransport(hub.transport(k.node_id), k.node_id, store)
        log = None
        if logs is not None:
            log = RecordingLog(tmp_path / f"{k.node_id}.applies.json")
            logs.append(log)
        node = ConsensusNode(core, Providers(app, app, app, app), transport, guard=store,
                             apply_log=log)
        hub.attach(node)
        nodes.append(node)
        verifiers.append(verifier)
        stores.append(store)
        transports.append(transport)
    return nodes, verifiers, stores, transports


def test_no_signature_is_checked_and_no_guard_is_saved_on_the_loop(tmp_path):
    logs: list[RecordingLog] = []

    async def main():
        nodes, verifiers, stores, transports = _cluster(tmp_path, logs=logs)
        loop_thread = threading.get_ident()
        for node in nodes:
            await node.start()
        try:
            for node in nodes:
                await node.wait_for_height(4, 30)
        finally:
            for node in nodes:
                await node.stop(timeout=2.0)
        return nodes, verifiers, stores, transports, loop_thread

    nodes, verifiers, stores, transports, loop_thread = asyncio.run(main())
    checked = [t for v in verifiers for t in v.threads]
    assert len(checked) > 50 and loop_thread not in checked
    for node, store, transport in zip(nodes, stores, transports, strict=True):
        assert store.threads and loop_thread not in store.threads
        assert transport.early == []  # every signature was durable before it left
        # one save per batch: never more than one per signature, and fewer under load
        assert node.guard_saves == len(store.threads) <= node.core.keys.signed
        assert node.ingress is not None and node.ingress.stats["batches"] > 0
    for log in logs:  # the apply log too: written off the loop, every height acknowledged
        assert log.threads and loop_thread not in log.threads
        assert FileApplyLog(log.path).load().next_height >= 4


def test_a_guard_that_cannot_save_keeps_its_node_from_signing(tmp_path):
    async def main():
        nodes, _, stores, transports = _cluster(tmp_path, fail=3)
        faults: list[Any] = []
        nodes[3].add_listener(faults.append)
        for node in nodes:
            await node.start()
        try:
            for node in nodes[:3]:
                await node.wait_for_height(2, 30)
        finally:
            for node in nodes:
                await node.stop(timeout=2.0)
        return nodes, stores, transports, faults

    nodes, stores, transports, faults = asyncio.run(main())
    assert stores[3].threads and transports[3].own == 0  # it signed, but nothing left
    assert nodes[3].core.stats.refused.total() > 0
    assert any(getattr(f, "kind", "") == "sign-refused" for f in faults)


def _vote(k, view: int = 0):
    return sign_vote(k, CHAIN, Kind.PREVOTE, 0, 0, view, digest(b"tx:x"))


def test_rate_limits_are_per_peer():
    keys = make_keys(4)
    now = [0.0]
    got: list[Any] = []
    ingress = Ingress(got.append, Verifier(), make_schedule(keys), CHAIN,
                      limit=RateLimit(rate=10.0, burst=5), clock=lambda: now[0])
    flood = [ingress.offer(_vote(keys[1], v), "n01") for v in range(50)]
    assert flood.count(True) == 5 and ingress.stats["rate-limited"] == 45
    assert ingress.offer(_vote(keys[2]), "n02")  # a flooding neighbour costs n02 nothing
    now[0] = 0.3  # refills at 10 per second
    assert [ingress.offer(_vote(keys[1], 60 + v), "n01") for v in range(4)] == [
        True, True, True, False]
    with pytest.raises(ValueError):
        RateLimit(rate=0)


def test_batches_drop_bad_signatures_in_a_worker_thread():
    keys = make_keys(4)

    async def main():
        got: list[Any] = []
        verifier = ThreadRecordingVerifier()
        ingress = Ingress(got.append, verifier, make_schedule(keys), CHAIN, batch=8)
        task = asyncio.create_task(ingress.run())
        good = [_vote(keys[i % 4], i) for i in range(20)]
        forged = _vote(keys[1], 99).__class__(Kind.PREVOTE, 0, 0, 5, digest(b"tx:x"), "n02",
                                              good[1].signature)
        for m in [*good, forged]:
            ingress.offer(m, m.signer)
        for _ in range(200):
            if len(got) + ingress.stats["bad-signature"] == 21:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        return got, ingress, verifier, threading.get_ident()

    got, ingress, verifier, loop_thread = asyncio.run(main())
    assert got == [_vote(keys[i % 4], i) for i in range(20)]
    assert ingress.stats["bad-signature"] == 1 and ingress.stats["batches"] >= 3
    assert verifier.threads and loop_thread not in verifier.threads
