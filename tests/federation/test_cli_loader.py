"""The YAML form, the ``federation check`` command and the examples."""

from __future__ import annotations

import argparse
import json
import runpy
from pathlib import Path

import pytest

from convergent.federation import FederationError
from convergent.federation.cli import register
from convergent.federation.loader import load_federation, loads_federation

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "federation"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["federation", "check", *argv])
    return int(args.func(args))


def test_yaml_examples_pass_and_fail_as_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(str(EXAMPLES / "supply.yaml"), "--xu") == 0
    assert "PASS" in capsys.readouterr().out
    assert _run(str(EXAMPLES / "recall_race.yaml"), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] == ["C1"]
    (c1,) = [c for c in data["checks"] if c["code"] == "C1" and not c["ok"]]
    assert c1["counterexample"]["order1"]["sold"] != c1["counterexample"]["order2"]["sold"]


def test_python_federation_by_module_attribute(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(f"{EXAMPLES / 'services.py'}:federation") == 0
    assert "fulfilment: pass" in capsys.readouterr().out


def test_services_example_runs() -> None:
    runpy.run_path(str(EXAMPLES / "services.py"), run_name="__main__")


def test_loader_rejects_bad_input(tmp_path: Path) -> None:
    (tmp_path / "maker.yaml").write_text((EXAMPLES / "maker.yaml").read_text())
    (tmp_path / "shop.yaml").write_text((EXAMPLES / "shop.yaml").read_text())
    good = (EXAMPLES / "supply.yaml").read_text()
    (tmp_path / "fed.yaml").write_text(good)
    assert load_federation(tmp_path / "fed.yaml").names == ("maker", "shop")
    cases = {
        "escape": good.replace("maker: maker.yaml", "maker: ../maker.yaml"),
        "absolute": good.replace("maker: maker.yaml", "maker: /etc/maker.yaml"),
        "unknown key": good + "extra: 1\n",
        "renamed": good.replace("maker: maker.yaml", "mkr: maker.yaml"),
        "bad expr": good.replace("not recalled", "recalled +"),
        "unknown var": good.replace("{listed: not recalled}", "{price: 1}"),
        "not a mapping": "- 1\n- 2\n",
    }
    for label, text in cases.items():
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(FederationError):
            load_federation(tmp_path / "bad.yaml")
        assert label
    with pytest.raises(FederationError, match="base folder"):
        loads_federation(good)


def test_resolver_policies_in_yaml(tmp_path: Path) -> None:
    for name, text in {
        "hr.yaml": "machine: hr\nvars: {employed: bool}\n"
                   "events:\n  hire: {apply: {employed: true}}\n",
        "sec.yaml": "machine: sec\nvars: {cleared: bool}\n"
                    "events:\n  clear: {apply: {cleared: true}}\n",
        "door.yaml": "machine: door\nvars: {access: bool, note: bool}\n"
                     "events:\n  jot: {apply: {note: not note}}\n",
    }.items():
        (tmp_path / name).write_text(text)
    fed = ("federation: door\nregistries: {hr: hr.yaml, sec: sec.yaml, door: door.yaml}\n"
           "morphisms:\n"
           "  - {source: hr, target: door, map: {access: employed}}\n"
           "  - {source: sec, target: door, map: {access: cleared}}\n")
    (tmp_path / "none.yaml").write_text(fed)
    assert _run(str(tmp_path / "none.yaml")) == 1           # two sources, no resolver: R1
    (tmp_path / "all.yaml").write_text(
        fed + "resolvers:\n  - {target: door, vars: [access], policy: all}\n")
    assert _run(str(tmp_path / "all.yaml")) == 0
    (tmp_path / "prio.yaml").write_text(
        fed + "resolvers:\n  - {target: door, vars: [access], policy: priority, "
              "order: [sec, hr]}\n")
    assert _run(str(tmp_path / "prio.yaml")) == 0
    (tmp_path / "bad.yaml").write_text(
        fed + "resolvers:\n  - {target: door, vars: [access], policy: vote}\n")
    with pytest.raises(FederationError, match="policy"):
        _run(str(tmp_path / "bad.yaml"))


def test_the_monotone_cycle_example_passes_and_its_negation_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(str(EXAMPLES / "levels.yaml"), "--xu") == 0
    assert "1 cycle(s) accepted (east, west)" in capsys.readouterr().out
    for name in ("region_east.yaml", "region_west.yaml"):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    text = (EXAMPLES / "levels.yaml").read_text()
    flipped = text.replace("map: {seen: 'max(seen, own)'}", "map: {seen: '3 - seen'}", 1)
    assert flipped != text
    (tmp_path / "levels.yaml").write_text(flipped)
    assert _run(str(tmp_path / "levels.yaml"), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] == ["ACYCLIC", "MONO"]
    (mono,) = [c for c in data["checks"] if c["code"] == "MONO" and c["ok"] is False]
    assert mono["subject"] == "east_to_west"
    (acyclic,) = [c for c in data["checks"] if c["code"] == "ACYCLIC"]
    assert acyclic["details"]["coordination_plan"]
