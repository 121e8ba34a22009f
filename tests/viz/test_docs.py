"""The Python examples in docs/inspector.md run, and the documented
commands exist with help."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "inspector.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_blocks_run(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), {})


@pytest.mark.parametrize("module", ["convergent.viz.cli", "convergent.web.cli"])
def test_commands_are_documented(module: str) -> None:
    import importlib
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:  # the web extra is optional
        pytest.skip(f"{module}: {exc}")
    parser = argparse.ArgumentParser(prog="convergent")
    sub = parser.add_subparsers()
    mod.register(sub)
    for name, p in sub.choices.items():
        assert p.description and "Example: convergent" in p.description
        assert f"convergent {name}" in DOC.read_text()
        for action in p._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in DOC.read_text(), (name, flag)
