"""The order saga example: one command runs it; its outcome follows the
rules of its fake services; compensations are new transactions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def expected(n: int) -> dict[str, object]:
    declined = {i for i in range(n) if i % 4 == 3}
    missing = {i for i in range(n) if i % 5 == 4}
    failed = declined | missing
    return {
        "orders": {f"order-{i}": "cancelled" if i in failed else "completed" for i in range(n)},
        "charged": sum(100 + i for i in range(n) if i not in declined),
        "refunded": sum(100 + i for i in range(n) if i in missing and i not in declined),
        "released": len(declined - missing),
        "shipped": n - len(failed),
    }


def test_the_example_runs_with_one_command() -> None:
    p = subprocess.run([sys.executable, "-m", "examples.order_saga", "--orders", "10"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "chart verified: order: pass" in p.stdout
    result = json.loads(p.stdout[p.stdout.index("{"):])
    for k, v in expected(10).items():
        assert result[k] == v, k
    assert result["audit_problems"] == []


def test_metrics_endpoint_and_redelivery(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    import prometheus_client
    sys.path.insert(0, str(ROOT))
    try:
        from examples.order_saga.service import Saga
    finally:
        sys.path.remove(str(ROOT))
    saga = Saga(str(tmp_path / "o.db"))
    server, _ = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=saga.registry)
    try:
        result = asyncio.run(saga.run(6))
        for k, v in expected(6).items():
            assert result[k] == v, k
        # redeliver every command: consumers dedupe on the key, the orders do not move
        before = {o: saga.orders.load(o).version for o in result["orders"]}
        with saga.store.tx() as tx:
            tx.q("UPDATE dz_outbox SET published_at = NULL, next_at = 0")
        saga.ledgers.seen.clear()  # even a consumer that forgot: request keys hold
        asyncio.run(saga.dispatcher.dispatch_once())
        assert {o: saga.orders.load(o).version for o in result["orders"]} == before
        body = urllib.request.urlopen(
            f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
        assert 'convergent_durable_transitions_total{event="submit",kind="order",' \
               'outcome="applied"} 6.0' in body
        assert "convergent_durable_time_in_state_seconds_bucket" in body
        assert "4111-" not in saga.log.getvalue()      # card numbers never logged
    finally:
        server.shutdown()
        saga.close()
