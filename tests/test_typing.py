"""The package is typed (py.typed ships): mypy must accept all of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_accepts_the_package(tmp_path: Path) -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed (it is in the test extras)")
    p = subprocess.run([sys.executable, "-m", "mypy", "src/convergent",
                        "--ignore-missing-imports", "--cache-dir", str(tmp_path / "cache")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Success" in p.stdout


def test_py_typed_ships() -> None:
    assert (ROOT / "src" / "convergent" / "py.typed").exists()
