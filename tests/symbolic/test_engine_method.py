"""method="symbolic" through the engine's entry point, the Registry and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convergent import Registry
from convergent.engine.check import check
from convergent.errors import MachineUsageError
from convergent.spec.loader import loads_spec

WIDE = """
machine: wide_account
vars:
  balance: {int: [0, 2147483647]}
  held: bool
invariants:
  - name: held_has_funds
    holds: not held or balance >= 100
    repair: {held: false}
events:
  deposit: {apply: {balance: balance + 50}}
  hold: {guard: "balance >= 100", apply: {held: true}}
  release: {apply: {held: false}}
independent:
  - [deposit, release]
"""


def test_check_routes_to_z3_and_agrees_on_a_small_range() -> None:
    report = check(loads_spec(WIDE), method="symbolic")
    assert report.to_dict()["method"]["kind"] == "symbolic"
    assert report.verdict == "pass"
    small = WIDE.replace("2147483647", "400")
    for scope in ("all", "reachable"):
        a = check(loads_spec(small), method="symbolic", scope=scope)
        b = check(loads_spec(small), method="enumerate", scope=scope)
        assert a.verdict == b.verdict and a.cc1.ok_all_valid == b.cc1.ok_all_valid


def test_a_failing_pair_has_a_concrete_counterexample_and_no_build() -> None:
    spec = loads_spec(WIDE + "  - [deposit, hold]\n")
    report = check(spec, method="symbolic")
    assert report.verdict == "fail"
    cex = report.cc1.counterexample
    assert set(cex.events) == {"deposit", "hold"} and cex.order1 != cex.order2
    r = Registry("w")
    r.int("balance", 0, 2**31 - 1)
    r.event("deposit", apply={"balance": "balance + 50"})
    with pytest.raises(MachineUsageError, match="symbolically"):
        r.build(method="symbolic")


def test_cli_method_symbolic(tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(WIDE)
    run = subprocess.run([sys.executable, "-m", "convergent", "check", str(spec), "--json",
                          "--method", "symbolic"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["method"]["kind"] == "symbolic"
