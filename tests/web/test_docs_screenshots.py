"""scripts/docs-screenshots.py takes every picture docs/inspector.md shows,
in headless Chromium (the same driver as test_browser), into any folder."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "docs-screenshots.py"

pytestmark = pytest.mark.slow


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_screenshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_picture_is_embedded_in_the_docs() -> None:
    text = (ROOT / "docs" / "inspector.md").read_text(encoding="utf-8")
    embedded = set(re.findall(r"!\[[^\]]+\]\(img/([^)]+)\)", text))
    assert embedded == set(_script().PICTURES)


def test_the_script_takes_every_picture(tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/install-browser.sh)")
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
    # in its own process, as a person runs it (and because playwright's sync API
    # cannot start a second time beside the browser fixture of test_browser)
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    module = _script()
    assert len(done.stdout.splitlines()) == len(module.PICTURES)
    for name in module.PICTURES:
        data = (tmp_path / name).read_bytes()
        if name.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
        else:
            assert b"<svg" in data and b"processing" in data, name


def test_missing_chromium_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    module = _script()
    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    assert module.main(["--out", str(tmp_path / "pictures")]) == 2
    assert "chromium" in capsys.readouterr().err
    assert not (tmp_path / "pictures").exists()
