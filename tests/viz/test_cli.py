"""``convergent diagram``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from convergent.viz.cli import register

from .cli_harness import run

ROOT = Path(__file__).resolve().parents[2]
GSM = str(ROOT / "examples" / "gsm_order.yaml")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's dot is not installed")


def test_mermaid_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert run(register, ["diagram", GSM]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "flowchart LR" in out and "reachable states" in out


def test_dot_file_by_suffix(tmp_path: Path) -> None:
    out = tmp_path / "g.gv"
    assert run(register, ["diagram", GSM, "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph convergent {")


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_images(tmp_path: Path, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"g.{fmt}"
    assert run(register, ["diagram", GSM, "--format", fmt, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


def test_footprint_kind_and_cap(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert run(register, ["diagram", GSM, "--max-states", "3", "--format", "dot"]) == 0
    assert "footprints" in capsysbinary.readouterr().out.decode()
    assert run(register, ["diagram", GSM, "--kind", "states", "--max-states", "3"]) == 2
    assert "raise --max-states" in capsysbinary.readouterr().err.decode()


def test_bad_input_is_exit_2(capsysbinary: pytest.CaptureFixture[bytes],
                             tmp_path: Path) -> None:
    assert run(register, ["diagram", str(tmp_path / "missing.yaml")]) == 2
    assert run(register, ["diagram"]) == 2
    assert "required" in capsysbinary.readouterr().err.decode()
    assert run(register, ["diagram", GSM, "--max-states", "0"]) == 2


def test_missing_graphviz(monkeypatch: pytest.MonkeyPatch,
                          capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert run(register, ["diagram", GSM, "-o", str(tmp_path / "g.svg")]) == 2
    assert "apt-get install graphviz" in capsysbinary.readouterr().err.decode()
    assert not (tmp_path / "g.svg").exists()


def test_relational_schema(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    target = str(ROOT / "examples" / "relational_agent.py") + ":CRAWLER"
    assert run(register, ["diagram", target, "--format", "mermaid"]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "relations" in out and "Exception" in out


def test_consensus_reuses_its_renderer(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    pytest.importorskip("cryptography")
    from convergent.consensus.machine import MachineSpec
    from convergent.consensus.render import to_mermaid
    assert run(register, ["diagram", "--consensus", "default"]) == 0
    assert capsysbinary.readouterr().out.decode() == to_mermaid(MachineSpec.default())
    assert run(register, ["diagram", GSM, "--consensus", "default"]) == 2
