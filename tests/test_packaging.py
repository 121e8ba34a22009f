"""Packaging: metadata, the licence, what the sdist ships, what git ignores, the
README's install command on a copy of the repository, and the test suite's own
rule about ../shared."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

import conftest
from conftest import ROOT, in_ci

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
#: what the sdist is made of (pyproject's [tool.hatch.build.targets.sdist] include)
SOURCE_PARTS = ["src", "tests", "docs", "examples", "benchmarks", "runtimes", "scripts",
                "README.md", "LICENSE", "pyproject.toml", ".gitignore"]
#: caches and local state that the docs' and tests' commands leave in the tree
JUNK = [".hypothesis/examples/x", ".pytest_cache/v/x", ".nats/jetstream/x", ".venv/bin/x",
        ".mypy_cache/x", "tests/__pycache__/x.cpython-311.pyc", "r1.db", "r1.db-wal",
        "r1.db.lock", "src/convergent/__pycache__/cli.cpython-311.pyc"]


def test_license_is_mit_everywhere() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert PROJECT["license"] == {"text": "MIT"}
    assert "License :: OSI Approved :: MIT License" in PROJECT["classifiers"]


def test_classifiers_urls_and_python_versions() -> None:
    classifiers = PROJECT["classifiers"]
    for minor in (11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert PROJECT["requires-python"] == ">=3.11"
    urls = PROJECT["urls"]
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    assert (ROOT / "src" / "convergent" / "py.typed").exists()


def test_extras() -> None:
    extras = PROJECT["optional-dependencies"]
    assert any(d.startswith("cryptography") for d in extras["replica"])   # signed events
    assert any(d.startswith("cryptography") for d in extras["consensus"])
    assert any(d.startswith("hatchling") for d in extras["test"])          # builds the sdist


def _copy_tree(dest: Path, *, with_gitignore: bool) -> Path:
    root = dest / "convergent"
    root.mkdir()
    for part in SOURCE_PARTS:
        src = ROOT / part
        if part == ".gitignore" and not with_gitignore:
            continue
        if src.is_dir():
            shutil.copytree(src, root / part, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, root / part)
    for junk in JUNK:
        path = root / junk
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("junk\n")
    return root


def _build_sdist(root: Path, out: Path) -> list[str]:
    try:
        from hatchling.builders.sdist import SdistBuilder
    except ImportError:
        if in_ci():
            pytest.fail("hatchling is not installed (it is in the 'test' extra)")
        pytest.skip("hatchling is not installed: pip install -e '.[test]'")
    built = list(SdistBuilder(str(root)).build(directory=str(out), versions=["standard"]))
    assert len(built) == 1
    with tarfile.open(built[0]) as tar:
        return [name.partition("/")[2] for name in tar.getnames()]


@pytest.mark.parametrize("with_gitignore", [True, False])
def test_sdist_ships_the_source_and_no_caches(tmp_path: Path, with_gitignore: bool) -> None:
    root = _copy_tree(tmp_path, with_gitignore=with_gitignore)
    names = _build_sdist(root, tmp_path / "dist")
    for needed in ("pyproject.toml", "README.md", "LICENSE", "src/convergent/cli.py",
                   "src/convergent/py.typed", "tests/conftest.py", "examples/gsm_order.yaml",
                   "docs/spec.md", "runtimes/js/index.js", "scripts/install-test.sh"):
        assert needed in names, needed
    for junk in JUNK:
        top = junk.split("/")[0]
        assert junk not in names and not any(n == top or n.startswith(top + "/")
                                             for n in names if top.startswith(".")), junk
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def _git_ignores(paths: list[str]) -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        if in_ci():
            pytest.fail("CI runs in a git clone with git installed")
        pytest.skip("not a git checkout")
    p = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                       input="\n".join(paths), capture_output=True, text=True, timeout=60)
    assert p.returncode in (0, 1), p.stderr
    return set(p.stdout.split())


def test_gitignore_covers_what_the_docs_commands_create() -> None:
    created = [
        ".nats/jetstream/meta.inf",         # scripts/start-nats.sh
        "r1.db", "r1.db-wal", "r1.db.lock",  # replica stores and their locks
        "r1.pid", "r1.json",                 # docs/replicas.md, three replicas
        "order.json", "order.cvm", "machine.cvm",   # docs/export.md, the README
        "n01.guard.json",                    # consensus demo --state-dir
        ".hypothesis/examples/x", ".pytest_cache/v/x", ".venv/bin/python",
        ".mypy_cache/x", "src/convergent/__pycache__/cli.cpython-311.pyc", "dist/x.tar.gz",
    ]
    ignored = _git_ignores(created)
    assert ignored == set(created), sorted(set(created) - ignored)
    kept = ["examples/gsm_order.yaml", "docs/spec.md", "tests/test_cli.py",
            "runtimes/js/package.json", "src/convergent/cli.py"]
    assert _git_ignores(kept) == set()


def test_shared_is_relative_and_required_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert conftest.SHARED == ROOT.parent / "shared"
    monkeypatch.setenv("CI", "true")
    assert conftest.in_ci()
    with pytest.raises(conftest.SharedMissing, match="CI must provide"):
        conftest.shared_path("no-such-folder-for-this-test")
    monkeypatch.setenv("CI", "")
    assert not conftest.in_ci()
    assert conftest.shared_path("no-such-folder-for-this-test") == (
        ROOT.parent / "shared" / "no-such-folder-for-this-test")


def test_no_test_reads_an_absolute_path() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        text = path.read_text()
        for marker in ('Path("/work', "'/work/", '"/work/', '"/home/', '"/root/'):
            if marker in text and path.name != "test_packaging.py":
                offenders.append(f"{path.relative_to(ROOT)}: {marker}")
    assert not offenders, offenders


@pytest.mark.slow
def test_readme_install_command_on_a_copy(tmp_path: Path) -> None:
    """The README's first command, verbatim, in a fresh copy (PyPI reachable)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "doc-test: install" in line)
    assert lines[at + 1] == "```bash"
    command = lines[at + 2]
    assert command.startswith("python3 -m venv .venv && ") and "convergent check" in command
    python3 = shutil.which("python3")
    if python3 is None:
        pytest.skip("no python3 on PATH")
    root = _copy_tree(tmp_path, with_gitignore=True)
    for junk in JUNK:
        (root / junk).unlink()
    shutil.rmtree(root / ".venv")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    p = subprocess.run(["bash", "-e", "-c", command], cwd=root, env=env, capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stdout.startswith("order_fulfillment: PASS")
    assert sys.version_info >= (3, 11)
