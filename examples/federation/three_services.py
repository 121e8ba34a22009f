"""Three services, one federation, over a real NATS server: order, payment and
warehouse.

* ``order`` owns the order: placed, cancelled, how many items.
* ``payment`` owns the money: authorized, captured, refunded. It must know
  whether the order is still open: ``order -> payment`` makes ``order_open``
  a shared var of the payment service.
* ``warehouse`` owns picking, packing and shipping. It must know whether the
  order is paid (``payment -> warehouse``: ``paid``) and whether it was
  cancelled (``order -> warehouse``: ``cancelled``).

No service reads another's state directly: each runs its own replicas (two
here) on the replica runtime, over NATS JetStream, and publishes
*projections* of its state to its targets, with versions; a target keeps
only the newest (docs/federation.md, "Replicas of a federation").

Run it with one command (it starts nats-server on a free loopback port if
``--nats`` is not given; Debian: ``apt-get install nats-server``)::

    python examples/federation/three_services.py
    scripts/start-nats.sh &      # or a server of your own
    python examples/federation/three_services.py --nats nats://127.0.0.1:4222

It prints every replica's federated view and its projection counters, and
checks that every view equals the ``FederatedMachine`` run of the same
events. Exit 0 when they agree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from convergent import Registry
from convergent.federation import Federation


def federation() -> Federation:
    """The three registries and the three morphisms between them."""
    order = Registry("order")
    order.bool("placed")
    order.bool("cancelled")
    order.int("items", 0, 3)
    order.event("place", apply={"placed": "true"})
    order.event("add_item", apply={"items": "min(items + 1, 3)"})
    order.event("cancel", apply={"cancelled": "true"})
    order.independent("place", "add_item")
    order.independent("add_item", "cancel")
    order.independent("place", "cancel")

    payment = Registry("payment")
    payment.bool("order_open")          # shared: decided by the order service
    payment.bool("authorized")
    payment.bool("captured")
    payment.bool("refunded")
    payment.invariant("capture_needs_auth", holds="not captured or authorized",
                      repair={"captured": "false"})
    payment.event("authorize", apply={"authorized": "true"})
    payment.event("capture", guard="authorized", apply={"captured": "true"})
    payment.event("refund", guard="captured", apply={"refunded": "true"})
    # capture waits for authorize and refund for capture (causal order on the
    # replicas); only authorize and refund commute
    payment.independent("authorize", "refund")

    warehouse = Registry("warehouse")
    warehouse.bool("paid")              # shared: decided by the payment service
    warehouse.bool("cancelled")         # shared: decided by the order service
    warehouse.bool("picked")
    warehouse.bool("packed")
    warehouse.bool("shipped")
    warehouse.invariant("pack_after_pick", holds="not packed or picked",
                        repair={"packed": "false"})
    warehouse.invariant("ship_after_pack", holds="not shipped or packed",
                        repair={"shipped": "false"})
    warehouse.event("pick", apply={"picked": "true"})
    warehouse.event("pack", guard="picked", apply={"packed": "true"})
    warehouse.event("ship", guard="packed", apply={"shipped": "true"})
    warehouse.independent("pick", "ship")

    fed = Federation("fulfilment").registry(order).registry(payment).registry(warehouse)
    fed.morphism("order", "payment", shared=["order_open"],
                 map={"order_open": "placed and not cancelled"}, name="order_status")
    fed.morphism("order", "warehouse", shared=["cancelled"], map={"cancelled": "cancelled"},
                 name="order_cancelled")
    fed.morphism("payment", "warehouse", shared=["paid"],
                 map={"paid": "captured and not refunded"}, name="payment_status")
    return fed


#: what each replica does, in order: (service, replica, event)
SCRIPT = [
    ("order", "order-1", "place"), ("order", "order-2", "add_item"),
    ("payment", "payment-1", "authorize"), ("warehouse", "warehouse-1", "pick"),
    ("order", "order-1", "add_item"), ("payment", "payment-2", "capture"),
    ("warehouse", "warehouse-2", "pack"), ("warehouse", "warehouse-1", "ship"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nats(store_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    """``nats-server -js`` on a free loopback port (as scripts/start-nats.sh)."""
    binary = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.access(
        "/usr/sbin/nats-server", os.X_OK) else None)
    if binary is None:
        raise SystemExit("nats-server not found; install it (Debian: apt-get install "
                         "nats-server) or pass --nats URL")
    port = _free_port()
    proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                             os.path.join(store_dir, "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"nats-server did not start on port {port}") from None
            time.sleep(0.05)
    return proc, f"nats://127.0.0.1:{port}"


async def run(url: str, store_dir: str, *, timeout: float = 30.0,
              prefix: str = "cvf") -> dict[str, Any]:
    """Start two replicas per service, play ``SCRIPT``, wait until every view
    equals the federation's normal form; returns what it saw."""
    from convergent.federation import FederatedReplica, NatsProjectionLink
    from convergent.runtime import NatsTransport, Replica, ReplicaService, SQLiteStore

    fm = federation().build(xu=True)
    services: dict[str, tuple[ReplicaService, FederatedReplica, NatsProjectionLink]] = {}
    for reg in fm.names:
        for k in (1, 2):
            rid = f"{reg}-{k}"
            t = NatsTransport(url, prefix=prefix, sync_interval=0.3, storage="memory")
            r = Replica(fm.machine(reg), id=rid, transport=t, autoflush=False,
                        store=SQLiteStore(os.path.join(store_dir, f"{rid}.db")))
            svc = ReplicaService(r, t)
            fr = FederatedReplica(fm, reg, r)
            link = NatsProjectionLink(fr, url, prefix=prefix, republish_interval=0.3)
            services[rid] = (svc, fr, link)
    try:
        for svc, _, link in services.values():
            await svc.start()
            await link.start()
        for _, rid, event in SCRIPT:
            services[rid][0].replica.emit(event)
            await asyncio.sleep(0.05)
        want = fm.decode(fm.run((reg, ev) for reg, _, ev in SCRIPT))
        deadline = time.monotonic() + timeout
        while True:
            views = {rid: fr.view for rid, (_, fr, _) in services.items()}
            if all(views[rid] == want[fr.registry] for rid, (_, fr, _) in services.items()):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"views did not converge in {timeout}s:\n"
                                     f"{json.dumps(views, indent=1)}\nwant {want}")
            await asyncio.sleep(0.05)
        return {"want": want, "views": views,
                "stats": {rid: fr.stats.to_dict() for rid, (_, fr, _) in services.items()},
                "links": {rid: link.counters for rid, (_, _, link) in services.items()}}
    finally:
        for svc, fr, link in services.values():
            await link.aclose()
            fr.close()
            await svc.aclose()
            svc.replica.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats", help="a NATS URL (default: start nats-server on loopback)")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cv-fed-") as d:
        proc = None
        url = args.nats
        if url is None:
            proc, url = start_nats(d)
        try:
            out = asyncio.run(run(url, d, timeout=args.timeout))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    for rid, view in out["views"].items():
        print(f"{rid:12} view {view}")
        print(f"{'':12} projections {out['stats'][rid]}")
    print("every view equals the FederatedMachine run of the same events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
