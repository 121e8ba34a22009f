"""The spec contract's conformance suite (../shared/conformance) must pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT.parent / "shared" / "conformance" / "check"


@pytest.mark.skipif(not CHECK.exists(), reason=f"{CHECK} not found (CI provides ../shared)")
def test_conformance_suite_passes() -> None:
    env = dict(os.environ)
    env["CONVERGENT"] = f"{sys.executable} -m convergent"
    env["CONVERGENT_ROOT"] = str(ROOT)
    p = subprocess.run(["bash", str(CHECK), "-v"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "26 passed, 0 failed" in p.stdout, p.stdout
