"""The CLI contract: exit codes, located errors, JSON, scopes, strict, targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convergent.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convergent", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


LEGAL_HOLD = """\
machine: legal_hold
vars:
  status: {enum: [draft, published, archived, purged]}
  hold: bool
invariants:
  - name: purged_never_held
    holds: status != 'purged' or not hold
    repair: {status: archived}
events:
  publish: {guard: status == 'draft', apply: {status: published}}
  place_hold: {guard: status == 'draft' or status == 'published', apply: {hold: true}}
  release_hold: {apply: {hold: false}}
  archive: {guard: status == 'published' and not hold, apply: {status: archived}}
  purge: {guard: status == 'archived' and not hold, apply: {status: purged}}
independent:
  - [release_hold, purge]
"""


def test_scope_all_fails_where_reachable_passes(tmp_path: Path) -> None:
    spec = tmp_path / "legal.yaml"
    spec.write_text(LEGAL_HOLD)
    p = cli("check", str(spec), "--json")
    assert p.returncode == 0
    rep = json.loads(p.stdout)
    assert rep["cc1"]["ok"] is True and rep["cc1"]["ok_all_valid"] is False
    p = cli("check", str(spec), "--json", "--scope", "all")
    assert p.returncode == 1
    rep = json.loads(p.stdout)
    assert rep["cc1"]["scope"] == "all"
    cex = rep["cc1"]["counterexample"]
    assert cex["state"] == {"status": "archived", "hold": True}
    assert cex["trace"] is None          # unreachable: no trace
    p = cli("check", str(spec), "--strict")
    assert p.returncode == 1
    assert "FAIL" in p.stdout


def test_bad_spec_names_file_line_and_problem(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(LEGAL_HOLD.replace("guard: status == 'draft', apply",
                                       "guard: staus == 'draft', apply"))
    p = cli("check", str(spec))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    line = LEGAL_HOLD.splitlines().index(
        "  publish: {guard: status == 'draft', apply: {status: published}}") + 1
    assert f"{spec}:{line}" in p.stderr
    assert "staus" in p.stderr


def test_missing_file_and_bad_target() -> None:
    p = cli("check", "no/such/spec.yaml")
    assert p.returncode == 2 and "no such file" in p.stderr
    p = cli("check", "examples/order_fulfillment.py:nothing_here")
    assert p.returncode == 2 and "nothing_here" in p.stderr
    p = cli("check", "convergent_no_such_module:registry")
    assert p.returncode == 2 and "cannot import" in p.stderr


def test_overflow_error_is_exit_2_naming_event_state_value(tmp_path: Path) -> None:
    spec = tmp_path / "o.yaml"
    spec.write_text("machine: o\nvars:\n  n: {int: [0, 2], overflow: error}\n"
                    "events:\n  bump: {apply: {n: n + 1}}\n")
    p = cli("check", str(spec))
    assert p.returncode == 2
    assert "bump" in p.stderr and "n = 3" in p.stderr and "n=2" in p.stderr


def test_lying_footprint_is_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "f.yaml"
    spec.write_text("machine: f\nvars:\n  a: bool\n  b: bool\n"
                    "events:\n  e: {guard: a, apply: {b: true}, reads: [b]}\n")
    p = cli("check", str(spec))
    assert p.returncode == 2
    assert "'e'" in p.stderr and "reads a" in p.stderr


def test_explain_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "cc1"]) == 0
    assert "Commutation" in capsys.readouterr().out
    assert main(["explain", "XYZ"]) == 2
    assert main([]) == 2


def test_json_is_silent_on_stderr_and_has_contract_keys() -> None:
    p = cli("check", "examples/gsm_order.yaml", "--json")
    assert p.returncode == 1 and p.stderr == ""
    rep = json.loads(p.stdout)
    for key in ("machine", "verdict", "states", "wfc", "cc1", "cc2", "footprints", "seconds"):
        assert key in rep
    assert rep["footprints"]["ship_item"] == {"reads": ["status", "inventory"],
                                              "writes": ["status", "inventory"]}
    assert rep["states"] == {"total": 48, "valid": 42, "reachable": 18}


def test_relational_schema_target() -> None:
    p = cli("check", "examples/relational_agent.py:CRAWLER")
    assert p.returncode == 0, p.stderr
    assert "relational schema 'crawler'" in p.stdout
    p = cli("check", "examples/relational_agent.py:CRAWLER", "--json")
    assert p.returncode == 0
    rep = json.loads(p.stdout)
    assert rep["kind"] == "relational" and rep["verdict"] == "pass"
    assert rep["schema"] == "crawler" and isinstance(rep["findings"], list)


def test_consensus_subcommands() -> None:
    p = cli("consensus", "render", "--format", "table")
    assert p.returncode == 0 and "| stopped | start | starting |" in p.stdout
    p = cli("consensus", "demo", "--rounds", "2", "--timeout", "60")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "round 1 finalized" in p.stdout and "agree" in p.stdout
    p = cli("check", "--bogus", "x")
    assert p.returncode == 2 and "unrecognized arguments" in p.stderr


def test_python_target_that_raises_is_located(tmp_path: Path) -> None:
    mod = tmp_path / "broken.py"
    mod.write_text("from convergent import Registry\nr = Registry('x')\nr.bool('a')\n"
                   "undefined_name\n")
    p = cli("check", f"{mod}:r")
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert f"{mod}:4:" in p.stderr and "NameError" in p.stderr


def test_a_machine_too_big_to_enumerate_is_a_clear_error(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text("machine: huge\nvars:\n  a: {int: [0, 100000]}\n  b: {int: [0, 100000]}\n"
                    "events:\n  e: {apply: {a: 1}}\n")
    p = cli("check", str(spec))
    assert p.returncode == 2 and "10,000,200,001 states" in p.stderr


def test_progress_shows_only_after_a_second(capsys: pytest.CaptureFixture[str]) -> None:
    from convergent.cli import _Progress
    from convergent.engine.check import check as engine_check
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_engine import bools_registry

    quick = _Progress(enabled=True)
    engine_check(bools_registry(15).spec(), progress=quick)
    quick.close()
    assert capsys.readouterr().err == ""          # fast builds stay silent
    slow = _Progress(enabled=True)
    slow.start -= 5.0                              # as if the build began 5 s ago
    engine_check(bools_registry(15).spec(), progress=slow)
    slow.close()
    err = capsys.readouterr().err
    assert "tables" in err and "10/10" in err and "pairs" in err and "45/45" in err
    silent = _Progress(enabled=False)
    silent.start -= 5.0
    engine_check(bools_registry(15).spec(), progress=silent)
    assert capsys.readouterr().err == ""
