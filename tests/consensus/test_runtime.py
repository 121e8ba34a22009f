"""The asyncio runtime: providers as tasks, timers, listeners, the in-process network."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from convergent.consensus import (
    ConsensusCore,
    ConsensusNode,
    CoreConfig,
    Finalized,
    LocalNetwork,
    Phase,
    Providers,
    TransitionRecord,
)
from convergent.consensus.sim import SIM_SPEC
from convergent.consensus.sim.app import SimApp

from .conftest import CHAIN, make_keys, make_schedule

SPEC = SIM_SPEC.scaled(0.5)


class AsyncApp:
    """SimApp behind async methods; ``overrides`` replaces some of them."""

    def __init__(self, node_id: str, **overrides: Any) -> None:
        self.inner = SimApp(node_id)
        self.overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        target = getattr(self.inner, name)

        async def call(*args: Any) -> Any:
            await asyncio.sleep(0)
            return target(*args)
        return call


def cluster(n: int = 4, apps: dict[int, AsyncApp] | None = None, listeners=()):
    keys = make_keys(n)
    schedule = make_schedule(keys)
    hub = LocalNetwork(delay=0.001)
    nodes = []
    for i, k in enumerate(keys):
        app = (apps or {}).get(i) or AsyncApp(k.node_id)
        core = ConsensusCore(k, schedule, spec=SPEC, config=CoreConfig(chain_id=CHAIN))
        node = ConsensusNode(core, Providers(app, app, app, app), hub.transport(k.node_id),
                             listeners=list(listeners))
        hub.attach(node)
        nodes.append(node)
    return nodes, hub


async def run_until(nodes, height: int, timeout: float = 30.0):
    for node in nodes:
        await node.start()
    try:
        return [await node.wait_for_height(height, timeout) for node in nodes]
    finally:
        for node in nodes:
            await node.stop(timeout=2.0)


def test_nodes_finalize_and_agree_over_the_local_network():
    seen: list[Any] = []

    async def main():
        nodes, hub = cluster(listeners=[seen.append])
        decisions = await run_until(nodes, 4)
        assert len({d.digest for d in decisions}) == 1
        for h in range(5):
            assert len({n.core.decisions[h].digest for n in nodes}) == 1
        assert all(n.phase is Phase.STOPPED for n in nodes)
        assert hub.sent > 0

    asyncio.run(main())
    transitions = [n for n in seen if isinstance(n, TransitionRecord)]
    assert {t.target for t in transitions} >= {Phase.LOADING, Phase.COLLECTING, Phase.VOTING,
                                              Phase.FINALIZING, Phase.VERIFYING, Phase.STOPPED}
    assert sum(isinstance(n, Finalized) for n in seen) >= 4 * 5


def test_hanging_raising_and_blocking_providers_never_block_the_loop():
    async def hang(*args: Any) -> bool:
        await asyncio.sleep(3600)
        return True

    async def boom(*args: Any) -> Any:
        raise RuntimeError("provider down")

    def blocking_finalize(decision: Any) -> bytes:  # a plain function: runs in a thread
        time.sleep(0.05)
        return b"\x01" * 32

    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def main():
        apps = {0: AsyncApp("n00", decide_vote=hang, prove_next_state=hang),
                1: AsyncApp("n01", collect=boom, next_leaders=boom),
                2: AsyncApp("n02", finalize_votes=blocking_finalize)}
        nodes, _ = cluster(apps=apps)
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        decisions = await run_until(nodes, 3, timeout=60)
        stop.set()
        await tick
        assert len({d.digest for d in decisions}) == 1
        failed = [f for f in nodes[1].core.faults if f.kind == "provider-failed"]
        assert failed and "provider down" in failed[0].detail
        assert nodes[2].core.decisions[3].height == 3

    asyncio.run(main())
    assert max(gaps) < 0.5, max(gaps)  # the loop kept turning while providers hung


def test_a_raising_listener_does_not_stop_consensus():
    def bad(note: Any) -> None:
        raise ValueError("listener bug")

    async def main():
        nodes, _ = cluster(listeners=[bad])
        await run_until(nodes, 2)
        assert all(n.listener_errors > 0 for n in nodes)

    asyncio.run(main())


def test_resync_returns_through_loading_and_keeps_going():
    async def main():
        nodes, _ = cluster()
        for node in nodes:
            await node.start()
        await nodes[0].wait_for_height(1, 30)
        loading: list[Any] = []
        nodes[0].add_listener(
            lambda n: loading.append(n) if isinstance(n, TransitionRecord)
            and n.target is Phase.LOADING else None)
        nodes[0].resync()
        await nodes[0].wait_for_height(4, 30)
        for node in nodes:
            await node.stop()
        assert loading

    asyncio.run(main())
