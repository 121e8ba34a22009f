"""The three-service example over a real nats-server, and projections that
arrive from the network hostile: refused, counted, harmless."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import find_nats
from .test_replicas import EXAMPLE

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]


async def _until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_three_services_converge_over_nats(nats_url: str, tmp_path: Path) -> None:
    out = asyncio.run(EXAMPLE.run(nats_url, str(tmp_path), timeout=30))
    want = out["want"]
    assert want["warehouse"] == {"paid": True, "cancelled": False, "picked": True,
                                 "packed": True, "shipped": True}
    for rid, view in out["views"].items():
        assert view == want[rid.split("-")[0]]
    assert all(out["stats"][f"warehouse-{k}"]["accepted"] >= 2 for k in (1, 2))
    assert all(s["refused"] == 0 and s["conflict"] == 0 for s in out["stats"].values())
    assert all(c["sent"] > 0 for rid, c in out["links"].items() if not rid.startswith("ware"))


def test_the_example_runs_with_one_command() -> None:
    if find_nats() is None:
        pytest.skip("nats-server not found (Debian: apt-get install nats-server)")
    proc = subprocess.run([sys.executable, str(ROOT / "examples/federation/three_services.py")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every view equals the FederatedMachine run" in proc.stdout
    assert "warehouse-2" in proc.stdout


def test_hostile_projections_over_nats_are_refused_and_counted(nats_url: str) -> None:
    import nats

    from convergent.federation import FederatedReplica, NatsProjectionLink
    from convergent.runtime import Keyring, Replica

    fm = EXAMPLE.federation().build(xu=True)
    order = FederatedReplica(fm, "order", Replica(fm.machine("order"), id="order-1"))
    order_keys = Keyring.generate("order-1")
    other_keys = Keyring.generate("order-9")
    pay_keys = Keyring.generate("payment-1").with_peers(
        {"order-1": order_keys.public_key, "order-9": other_keys.public_key})
    pay = FederatedReplica(fm, "payment", Replica(fm.machine("payment"), id="payment-1"))

    async def main() -> None:
        link = NatsProjectionLink(pay, nats_url, keys=pay_keys, republish_interval=0.2)
        await link.start()
        raw = await nats.connect(nats_url)
        subject = link.subject("order_status")
        order.replica.emit("place")
        (good,) = [p for p in order.projections() if p.morphism == "order_status"]
        body = good.to_wire()
        forged = json.dumps({**good.to_dict(), "digest": "0" * 64}).encode()
        for data in (b"garbage", body,                       # unsigned
                     other_keys.seal(body),                  # signed, not by the origin
                     order_keys.seal(forged),                # another federation
                     order_keys.seal(b"{" * 100_000),        # oversized
                     order_keys.seal(b"[]")):
            await raw.publish(subject, data)
        await raw.flush()
        await _until(lambda: link.counters["refused"] >= 6, 10, "six refusals")
        assert pay.view["order_open"] is False and pay.stats.accepted == 0
        await raw.publish(subject, order_keys.seal(body))
        await raw.flush()
        await _until(lambda: pay.stats.accepted == 1, 10, "the signed projection")
        assert pay.view["order_open"] is True
        assert any("signed by 'order-9'" in m for _, m in link.errors)
        await raw.close()
        await link.aclose()

    asyncio.run(main())


def test_a_lost_projection_is_sent_again_and_a_failed_task_restarts(nats_url: str) -> None:
    """Core NATS drops what nobody listens to: the target starts after the
    source published, and still gets the projection from the periodic
    re-send. A publisher task that fails is restarted, not lost."""
    from convergent.federation import FederatedReplica, NatsProjectionLink
    from convergent.runtime import Replica

    fm = EXAMPLE.federation().build(xu=True)
    order = FederatedReplica(fm, "order", Replica(fm.machine("order"), id="order-1"))
    pay = FederatedReplica(fm, "payment", Replica(fm.machine("payment"), id="payment-1"))

    async def main() -> None:
        src = NatsProjectionLink(order, nats_url, republish_interval=0.1)
        await src.start()
        order.replica.emit("place")
        await _until(lambda: src.counters["sent"] >= 3, 10, "three sends")
        dst = NatsProjectionLink(pay, nats_url, republish_interval=0.1)
        await dst.start()
        await _until(lambda: pay.view["order_open"] is True, 10, "the re-sent projection")
        assert pay.stats.accepted == 1

        class Broken:
            morphism = "order_status"

            def to_wire(self) -> bytes:
                raise RuntimeError("boom")

        good = dict(src._latest)
        src._latest["order_status"] = Broken()  # type: ignore[assignment]
        src._wake.set()
        await _until(lambda: src.counters["task_restarts"] >= 1, 10, "a restart")
        assert any("boom" in m for _, m in src.errors)
        src._latest.clear()
        src._latest.update(good)
        order.replica.emit("cancel")
        await _until(lambda: pay.view["order_open"] is False, 10, "the next projection")
        await dst.aclose()
        await src.aclose()

    asyncio.run(main())


def test_the_example_runs_against_scripts_start_nats(tmp_path: Path) -> None:
    """The documented way: scripts/start-nats.sh, then the example with --nats."""
    import os
    import signal
    import socket

    if find_nats() is None:
        pytest.skip("nats-server not found (Debian: apt-get install nats-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "DIR": str(tmp_path / "js")}
    server = subprocess.Popen(["bash", str(ROOT / "scripts/start-nats.sh")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, \
                    "scripts/start-nats.sh did not start a server"
                time.sleep(0.05)
        proc = subprocess.run([sys.executable, str(ROOT / "examples/federation/three_services.py"),
                               "--nats", f"nats://127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "every view equals the FederatedMachine run" in proc.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
