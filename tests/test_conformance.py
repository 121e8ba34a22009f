"""The spec contract's conformance suite (../shared/conformance) must pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_conformance_suite_passes(shared: Path) -> None:
    check = shared / "conformance" / "check"
    assert check.exists(), f"{check} not found"
    specs = sorted((shared / "conformance" / "specs").glob("*.yaml"))
    env = dict(os.environ)
    env["CONVERGENT"] = f"{sys.executable} -m convergent"
    env["CONVERGENT_ROOT"] = str(ROOT)
    p = subprocess.run(["bash", str(check), "-v"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(specs)} passed, 0 failed" in p.stdout, p.stdout
