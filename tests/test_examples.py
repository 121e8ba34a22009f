"""Every example runs, and says what its comments promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

EXPECTED = {
    "order_fulfillment.yaml": "pass",
    "gsm_order.yaml": "fail",
    "bank_account.yaml": "pass",
    "permissions.yaml": "pass",
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convergent", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name, verdict", sorted(EXPECTED.items()))
def test_yaml_examples(name: str, verdict: str) -> None:
    p = run_cli("check", str(EXAMPLES / name), "--json")
    assert p.returncode == {"pass": 0, "fail": 1}[verdict], p.stderr
    report = json.loads(p.stdout)
    assert report["verdict"] == verdict
    assert report["wfc"]["ok"] is True


def test_gsm_example_counterexample_is_the_documented_one() -> None:
    report = json.loads(run_cli("check", str(EXAMPLES / "gsm_order.yaml"), "--json").stdout)
    cex = report["cc1"]["counterexample"]
    assert sorted(cex["events"]) == ["restock", "ship_item"]
    assert cex["state"] == {"status": "paid", "paid": True, "inventory": 0}
    assert cex["trace"] == ["process_payment"]


@pytest.mark.parametrize("script", ["order_fulfillment.py", "bank_account.py", "permissions.py"])
def test_python_examples_run(script: str) -> None:
    p = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PASS" in p.stdout or "pass" in p.stdout or p.stdout.strip(), p.stdout


def test_python_declared_machine_from_the_cli() -> None:
    p = run_cli("check", "examples/order_fulfillment.py:registry", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["verdict"] == "pass"


def test_findings_name_the_saturating_assignment() -> None:
    report = json.loads(run_cli("check", str(EXAMPLES / "gsm_order.yaml"), "--json").stdout)
    sat = report["findings"]["saturating"]
    assert [d["event"] for d in sat] == ["restock"]
    assert sat[0]["vars"] == ["inventory"] and sat[0]["values"] == {"inventory": 6}
    assert sat[0]["state"]["inventory"] == 5
    assert report["findings"]["never_fail"] == ["no_ship_unpaid"]
    assert report["findings"]["unreachable_valid"] == 42 - 18
