"""Map files: what they hold, and every way a bad one is refused with its
file:line:column; the CLI's exit codes and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convergent.errors import SpecError
from convergent.migration import MigrationError, classify_migration
from convergent.migration.mapfile import load_map, loads_map
from convergent.spec import load_spec

from conftest import ROOT

EX = ROOT / "examples" / "migration"
V1 = load_spec(EX / "account_v1.yaml")
V2 = load_spec(EX / "account_v2.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        loads_map(text, V1, V2, "m.yaml")
    return [str(p) for p in info.value.problems]


def test_the_example_map_loads_with_defaults() -> None:
    mig = load_map(EX / "account_map.yaml", V1, V2)
    assert mig.events == {"deposit": "deposit", "withdraw": "debit", "freeze": "freeze",
                          "unfreeze": "unfreeze"}
    assert mig.state_map.exprs is not None
    assert set(mig.state_map.exprs) == {"balance", "frozen", "tier"}
    assert mig.state_map.exprs["balance"].text == "balance"   # copied by name


def test_bad_expression_points_at_its_token() -> None:
    got = problems('state:\n  tier: "if balanse >= 4 then gold else basic"\n')
    assert got == ["m.yaml:2:13: unknown name 'balanse' in the map's value of tier "
                   "(did you mean 'balance'; known vars: balance, frozen)"]


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    got = problems("state:\n  nope: 3\n  tier: 7\nevents:\n  withdrw: debit\n"
                   "  deposit: credit\n  freeze: [a]\ncolour: red\n")
    assert [g.split(": ")[0] for g in got] == ["m.yaml:2:9", "m.yaml:3:9", "m.yaml:5:3",
                                                "m.yaml:6:3", "m.yaml:7:11", "m.yaml:8:1"]
    assert "'nope' is not a var" in got[0]
    assert "tier" in got[1] and "enum" in got[1]
    assert "did you mean 'withdraw'" in got[2]
    assert "'credit', which is not an event" in got[3]
    assert "expected a v2 event name or null" in got[4]
    assert "unknown key 'colour'" in got[5]


@pytest.mark.parametrize("text, where, words", [
    ("state: [1, 2]\n", "m.yaml:1:8", "state: must be a mapping"),
    ("state: {tier: gold}\nevents: 3\n", "m.yaml:2:9", "events: must be a mapping"),
    ("- a\n- b\n", "m.yaml:1:1", "a map must be a mapping"),
    ("state:\n  tier: [a]\n", "m.yaml:2:9", "expected an expression"),
    ("state: {tier: gold\n", "m.yaml:2:1", "not valid YAML"),
    ("state:\n  tier: gold\n  tier: basic\n", "m.yaml:3:3", "duplicate key 'tier'"),
])
def test_malformed_maps(text: str, where: str, words: str) -> None:
    got = problems(text)
    assert got[0].startswith(where + ":"), got
    assert words in got[0], got


def test_a_v2_var_with_nothing_to_copy_is_a_problem() -> None:
    got = problems("events: {withdraw: debit}\n")
    assert got == ["m.yaml:1:1: state: v2 var 'tier' has no value: 'account' has no var "
                   "of that name to copy; give one under state:"]


def test_a_map_too_big_is_refused_before_parsing() -> None:
    got = problems("#" * (1 << 20) + "x\n")
    assert "characters long" in got[0]


def test_an_unreadable_map_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the map"):
        load_map(tmp_path / "missing.yaml", V1, V2)


def test_out_of_range_at_a_reachable_state_names_the_entry_and_state() -> None:
    mig = loads_map('state:\n  tier: gold\n  balance: "balance + 1"\n', V1, V2, "m.yaml")
    with pytest.raises(MigrationError) as info:
        classify_migration(mig)
    assert str(info.value) == ("m.yaml:3: the map gives balance = 7, outside v2's [0, 6] at "
                               "the reachable v1 state {balance=6, frozen=false}")
    assert info.value.state == {"balance": 6, "frozen": False}


def test_a_failing_expression_at_a_reachable_state() -> None:
    mig = loads_map('state:\n  tier: "if 6 // (balance - 2) > 0 then gold else basic"\n',
                    V1, V2, "m.yaml")
    with pytest.raises(MigrationError, match=r"m.yaml:2: the map cannot evaluate tier .* "
                                             r"\{balance=2, frozen=false\}"):
        classify_migration(mig)


# ---------------------------------------------------------------- the CLI

def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convergent", "migrate", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_check_exit_codes_and_json() -> None:
    v1, v2 = "examples/migration/account_v1.yaml", "examples/migration/account_v2.yaml"
    ok = cli("check", v1, v2, "--map", "examples/migration/account_map.yaml",
             "--delivery", "causal")
    assert ok.returncode == 0, ok.stderr
    assert "SAFE ONLINE under causal" in ok.stdout
    bad = cli("check", v1, v2, "--map", "examples/migration/account_map.yaml", "--json")
    assert bad.returncode == 1
    data = json.loads(bad.stdout)
    assert data["version"] == 1 and data["ok"] is False
    outcomes = {v["delivery"]: v["outcome"] for v in data["verdicts"]}
    assert outcomes == {"exactly-once": "unsafe", "at-least-once": "unsafe",
                        "causal": "online"}
    w = data["verdicts"][0]["barrier_witness"]
    assert w["result_a"] != w["result_b"] and w["barrier"] is True


def test_cli_barrier_example_and_plan() -> None:
    v1 = "examples/migration/account_v1.yaml"
    v3 = "examples/migration/account_v3.yaml"
    m3 = "examples/migration/account_map_v3.yaml"
    got = cli("check", v1, v3, "--map", m3, "--delivery", "causal")
    assert got.returncode == 0, got.stderr
    assert "SAFE BEHIND A BARRIER under causal" in got.stdout
    assert "why not online (DS)" in got.stdout
    plan = cli("plan", v1, v3, "--map", m3, "--replicas", "a,b,c")
    assert plan.returncode == 0
    assert "behind a barrier" in plan.stdout and "Drain" in plan.stdout
    online = cli("plan", v1, "examples/migration/account_v2.yaml", "--map",
                 "examples/migration/account_map.yaml", "--replicas", "a,b", "--json")
    steps = json.loads(online.stdout)["plan"]["steps"]
    assert sum(s.startswith("Switch ") for s in steps) == 2


def test_cli_bad_map_is_exit_2_with_locations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("state:\n  tier: 3\n", encoding="utf-8")
    got = cli("check", "examples/migration/account_v1.yaml",
              "examples/migration/account_v2.yaml", "--map", str(bad))
    assert got.returncode == 2
    assert f"{bad}:2:9:" in got.stderr
    js = cli("check", "examples/migration/account_v1.yaml",
             "examples/migration/account_v2.yaml", "--map", str(bad), "--json")
    assert js.returncode == 2 and json.loads(js.stdout)["error"]["problems"][0]["line"] == 2


def test_cli_plan_of_an_unsafe_switch_is_exit_1(tmp_path: Path) -> None:
    (tmp_path / "v1.yaml").write_text(
        "machine: flag\nvars: {x: bool}\nevents:\n  set: {apply: {x: true}}\n",
        encoding="utf-8")
    (tmp_path / "v2.yaml").write_text(
        "machine: flag\nvars: {x: bool, y: bool}\ninitial: {x: true}\nevents:\n"
        "  set: {apply: {x: true}}\n  mark: {guard: not x, apply: {y: true}}\n"
        "independent: [[set, mark]]\n", encoding="utf-8")
    (tmp_path / "map.yaml").write_text("state: {y: false}\n", encoding="utf-8")
    got = cli("plan", str(tmp_path / "v1.yaml"), str(tmp_path / "v2.yaml"), "--map",
              str(tmp_path / "map.yaml"), "--replicas", "a,b")
    assert got.returncode == 1
    assert "do not switch" in got.stdout
    dup = cli("plan", str(tmp_path / "v1.yaml"), str(tmp_path / "v2.yaml"), "--map",
              str(tmp_path / "map.yaml"), "--replicas", "a,a")
    assert dup.returncode == 2 and "repeat" in dup.stderr


def test_cli_takes_python_registries(tmp_path: Path) -> None:
    empty = tmp_path / "map.yaml"
    empty.write_text("{}\n", encoding="utf-8")
    got = cli("check", "examples/bank_account.py:registry", "examples/bank_account.yaml",
              "--map", str(empty), "--delivery", "causal")
    assert got.returncode == 0, got.stderr
    assert "SAFE ONLINE under causal" in got.stdout
    assert "new in v2 reject" in got.stdout
