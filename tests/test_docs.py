"""Every runnable snippet of the README and docs/ runs, as a reader would run it.

A fenced block is classified by an HTML comment on the line above it (invisible
once rendered):

* ``<!-- doc-test: run -->``: run it; ``run, exit N`` expects exit status N
  (for a YAML spec: the verdict's exit code, 0 pass, 1 fail);
* ``<!-- doc-test: output of convergent ARGS -->``: the block shows the output
  of that command; its lines up to a ``  ...`` line must be the real output's
  first lines;
* ``<!-- doc-test: install -->``: an install command (tests/test_packaging.py
  runs the README's on a copy of the repository);
* ``<!-- doc-test: skip, REASON -->``: not runnable here (a server, a long run).

The runnable blocks of a page run in order in one scratch folder (where
``examples/`` and ``runtimes/`` of the repository are visible), python blocks
in one namespace, so a page reads as a session. ``convergent`` and
``.venv/bin/convergent`` in shell blocks mean this interpreter's package. On
the pages this suite owns, every python/yaml/bash/sh/js block must carry a
classification, so a new snippet cannot go untested by omission.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, in_ci

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: pages whose every code block must be classified (the others' owners mark theirs)
CLASSIFIED = ["README.md", "docs/index.md", "docs/spec.md", "docs/concepts.md",
              "docs/api.md", "docs/export.md"]
RUNNABLE_LANGS = {"python", "yaml", "bash", "sh", "js"}
DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(?P<body>.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    page: str          # relative to ROOT
    line: int          # of the opening fence, 1-based
    lang: str
    text: str
    directive: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str | None:
        if self.directive is None:
            return None
        return self.directive.split(",")[0].split()[0]

    @property
    def expected_exit(self) -> int:
        m = re.search(r"exit (\d+)", self.directive or "")
        return int(m.group(1)) if m else 0


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the directive above each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(```+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        above = lines[i - 1] if i > 0 else ""
        d = DIRECTIVE.search(above)
        out.append(Block(str(path.relative_to(ROOT)), i + 1, lang, "\n".join(lines[i + 1:j]) + "\n",
                         d.group("body") if d else None))
        i = j + 1
    return out


ALL = {str(p.relative_to(ROOT)): blocks(p) for p in PAGES}


# ---------------------------------------------------------------- the checks

def test_the_block_parser_sees_directives() -> None:
    readme = ALL["README.md"]
    assert readme[0].kind == "install" and readme[0].lang == "bash"
    kinds = {b.kind for b in readme}
    assert {"install", "output", "run", "skip"} <= kinds
    assert any(b.kind == "run" and b.expected_exit == 1 for b in readme)


@pytest.mark.parametrize("page", CLASSIFIED)
def test_every_code_block_of_owned_pages_is_classified(page: str) -> None:
    unclassified = [b.where for b in ALL[page] if b.lang in RUNNABLE_LANGS and b.kind is None]
    assert not unclassified, f"add a <!-- doc-test: ... --> line above: {unclassified}"
    for b in ALL[page]:
        if b.kind == "skip":
            assert "," in (b.directive or ""), f"{b.where}: a skip needs a reason"
        assert b.kind in (None, "run", "output", "install", "skip"), b.where


def test_readme_starts_with_a_pass_then_a_counterexample() -> None:
    readme = ALL["README.md"]
    first_cmd = readme[0].text
    assert "examples/order_fulfillment.yaml" in first_cmd and "pip install" in first_cmd
    assert "scripts/install-test.sh" in readme[1].text
    outputs = [b for b in readme if b.kind == "output"]
    assert "PASS" in outputs[0].text.splitlines()[0]
    assert "FAIL" in outputs[1].text.splitlines()[0] and "do not commute" in outputs[1].text
    assert "CC2 fail" not in Path(ROOT / "README.md").read_text()


def _sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A scratch folder that sees the repository's examples and runtimes, and
    an environment whose ``convergent`` is this interpreter's package."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("examples", "runtimes", "benchmarks", "scripts"):
        (work / name).symlink_to(ROOT / name, target_is_directory=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "convergent"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m convergent "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH", "")]))
    return work, env


def _shell(text: str) -> str:
    return (text.replace(".venv/bin/convergent", "convergent")
            .replace(".venv/bin/python", f'"{sys.executable}"'))


def _run_python(b: Block, ns: dict[str, object]) -> None:
    code = compile(b.text, b.where, "exec")
    exec(code, ns)  # noqa: S102 - the documentation's own code


def _run_yaml(b: Block) -> None:
    from convergent.engine.check import check
    from convergent.spec.loader import loads_spec
    spec = loads_spec(b.text, b.where)
    report = check(spec)
    want = b.expected_exit
    assert (0 if report.ok else 1) == want, f"{b.where}: {report.summary()}"


def _run_shell(b: Block, work: Path, env: dict[str, str]) -> None:
    p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", _shell(b.text)], cwd=work,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == b.expected_exit, (
        f"{b.where}: exit {p.returncode}, expected {b.expected_exit}\n{p.stdout}\n{p.stderr}")
    assert "Traceback" not in p.stderr, f"{b.where}: {p.stderr}"


def _run_js(b: Block, work: Path, n: int) -> None:
    node = shutil.which("node")
    if node is None:
        if in_ci():
            pytest.fail(f"{b.where}: node is not installed (apt-get install nodejs)")
        pytest.skip("node is not installed")
    script = work / f"snippet_{n}.mjs"
    script.write_text(b.text)
    p = subprocess.run([node, str(script)], cwd=work, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == b.expected_exit, f"{b.where}:\n{p.stdout}\n{p.stderr}"


def _check_output(b: Block, work: Path, env: dict[str, str]) -> None:
    command = (b.directive or "").removeprefix("output of").strip()
    assert command.startswith("convergent "), b.where
    p = subprocess.run(["bash", "-c", _shell(command)], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    shown = b.text.splitlines()
    if "  ..." in shown:
        shown = shown[:shown.index("  ...")]
    real = p.stdout.splitlines()
    assert real[:len(shown)] == shown, (
        f"{b.where}: the page shows\n" + "\n".join(shown) + "\nbut the command prints\n"
        + "\n".join(real[:len(shown)]))


PAGES_WITH_RUNNABLE = [page for page, bs in ALL.items()
                       if any(b.kind in ("run", "output") for b in bs)]


@pytest.mark.parametrize("page", PAGES_WITH_RUNNABLE)
def test_page_snippets_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, env = _sandbox(tmp_path)
    monkeypatch.chdir(work)
    ns: dict[str, object] = {"__name__": "__doc_snippet__"}
    ran = 0
    for n, b in enumerate(ALL[page]):
        if b.kind == "output":
            _check_output(b, work, env)
        elif b.kind != "run":
            continue
        elif b.lang == "python":
            _run_python(b, ns)
        elif b.lang == "yaml":
            _run_yaml(b)
        elif b.lang in ("bash", "sh"):
            _run_shell(b, work, env)
        elif b.lang == "js":
            _run_js(b, work, n)
        else:
            pytest.fail(f"{b.where}: cannot run a {b.lang or 'plain'} block")
        ran += 1
    assert ran > 0
