"""The order saga as a small service: orders are durable entities; the
outbox dispatcher delivers their commands to a payment and an inventory
service (in-process fakes with their own ledgers) whose answers come back
as events; compensations (refund, release) are new transactions at those
services, never undos.

Run it with one command from the repository root::

    python -m examples.order_saga                 # demo: 8 orders, summary, exit
    python -m examples.order_saga --serve --port 9464   # keep /metrics up

Metrics are served on ``http://127.0.0.1:<port>/metrics`` (Prometheus text).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from convergent.durable import (
    Actor,
    AsyncEntityService,
    Dispatcher,
    EntityService,
    JsonLog,
    OutboxMessage,
    PrometheusMetrics,
    open_store,
    verify,
    verify_audit,
)

from .chart import order_chart

CUSTOMER = Actor.of("web", "customer")
PAYMENTS = Actor.of("payments", "$service")
STOCK = Actor.of("inventory", "$service")


@dataclass
class Ledgers:
    """What the fake downstream services did, keyed by idempotency key so a
    redelivered command is applied once (as a real consumer must)."""

    charges: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, str] = field(default_factory=dict)
    releases: dict[str, str] = field(default_factory=dict)
    shipments: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


class Saga:
    """Wires the chart, the store, the dispatcher and the fake services."""

    def __init__(self, db: str, *, log_stream: Any = None) -> None:
        import prometheus_client
        self.chart = order_chart()
        self.registry = prometheus_client.CollectorRegistry()
        self.metrics = PrometheusMetrics(self.registry)
        self.log = io.StringIO() if log_stream is None else log_stream
        self.store = open_store(db)
        self.orders = EntityService(self.chart, self.store,
                                    observers=(self.metrics, JsonLog(self.chart, self.log)))
        self.ledgers = Ledgers()
        self.dispatcher = Dispatcher(self.store, self.handle, base_delay=0.05)

    # the downstream services: answer by sending events back to the order

    def handle(self, m: OutboxMessage) -> None:
        if m.key in self.ledgers.seen:
            return  # at-least-once delivery: a duplicate is acknowledged, not reapplied
        order = m.entity
        n = int(order.rsplit("-", 1)[-1])
        key = f"reply:{m.key}"
        if m.topic == "payment.authorize":
            if n % 4 == 3:   # every fourth card is declined
                self.orders.send(order, "payment.declined", actor=PAYMENTS, request_key=key)
            else:
                self.ledgers.charges[order] = int(m.body["amount"])
                self.orders.send(order, "payment.authorized", actor=PAYMENTS, request_key=key)
        elif m.topic == "inventory.reserve":
            if n % 5 == 4:   # every fifth item is out of stock
                self.orders.send(order, "inventory.unavailable", actor=STOCK, request_key=key)
            else:
                self.ledgers.reservations[order] = m.key
                self.orders.send(order, "inventory.reserved", actor=STOCK, request_key=key)
        elif m.topic == "saga.compensate":
            if m.body["refund"]:
                self.ledgers.refunds[order] = int(m.body["amount"])
            if m.body["release"]:
                self.ledgers.releases[order] = m.key
            self.orders.send(order, "compensation.done", actor=PAYMENTS, request_key=key)
        elif m.topic == "shipping.ship":
            self.ledgers.shipments[order] = m.key
            self.orders.send(order, "shipping.shipped", actor=STOCK, request_key=key)
        self.ledgers.seen.add(m.key)

    async def run(self, count: int) -> dict[str, Any]:
        # the awaited facade: the event loop stays free for the dispatcher
        async with AsyncEntityService(self.orders) as orders:
            for i in range(count):
                oid = f"order-{i}"
                if not await orders.exists(oid):
                    await orders.create(oid, actor=CUSTOMER,
                                        extra={"amount": 100 + i, "card": f"4111-{i:04d}"},
                                        request_key=f"create:{oid}")
                await orders.send(oid, "submit", actor=CUSTOMER, request_key=f"submit:{oid}")
            stop = asyncio.Event()
            task = asyncio.create_task(self.dispatcher.run(stop, interval=0.01))
            for _ in range(2000):
                states = [(await orders.load(f"order-{i}")).leaves for i in range(count)]
                if all(s[0] in ("completed", "cancelled") for s in states):
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await task
        return self.summary(count)

    def summary(self, count: int) -> dict[str, Any]:
        states = {f"order-{i}": self.orders.load(f"order-{i}").leaves[0] for i in range(count)}
        return {"orders": states,
                "completed": sum(s == "completed" for s in states.values()),
                "cancelled": sum(s == "cancelled" for s in states.values()),
                "charged": sum(self.ledgers.charges.values()),
                "refunded": sum(self.ledgers.refunds.values()),
                "released": len(self.ledgers.releases),
                "shipped": len(self.ledgers.shipments),
                "audit_problems": verify_audit(self.store)}

    def close(self) -> None:
        self.store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.order_saga",
                                description="The order saga demo (see module docstring).")
    p.add_argument("--db", help="SQLite file or postgresql:// URL (default: a temp file)")
    p.add_argument("--orders", type=int, default=8)
    p.add_argument("--port", type=int, default=0, help="/metrics port on 127.0.0.1 "
                                                       "(0: any free port)")
    p.add_argument("--serve", action="store_true", help="keep serving /metrics until ^C")
    args = p.parse_args(argv)
    tmp = None
    db = args.db
    if db is None:
        tmp = tempfile.mkdtemp(prefix="order-saga-")
        db = os.path.join(tmp, "orders.db")
    saga = Saga(db)
    report = verify(saga.chart)
    print(f"chart verified: {report.summary()}")
    import prometheus_client
    server, _ = prometheus_client.start_http_server(args.port, addr="127.0.0.1",
                                                    registry=saga.registry)
    print(f"metrics: http://127.0.0.1:{server.server_port}/metrics")
    try:
        result = asyncio.run(saga.run(args.orders))
        saga.metrics.refresh_stuck(saga.orders)
        print(json.dumps(result, indent=2))
        ok = (result["completed"] + result["cancelled"] == args.orders
              and not result["audit_problems"]
              and result["refunded"] <= result["charged"])
        if args.serve:
            print("serving /metrics; ^C to stop")
            try:
                asyncio.run(asyncio.Event().wait())
            except KeyboardInterrupt:
                pass
        return 0 if ok else 1
    finally:
        server.shutdown()
        saga.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
