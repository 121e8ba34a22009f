"""The documentation site: ``mkdocs build --strict`` over docs/ succeeds and
the site has every page and picture.

Two pages are being written in parallel (``OPTIONAL_PAGES`` of
scripts/mkdocs_hooks.py: migration.md, cluster.md): while absent they are
left out of the nav; any other page missing, any page left out of the nav,
a broken link or a missing picture fails the build or these tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS = ROOT / "scripts" / "mkdocs_hooks.py"
REPO = "https://github.com/convergent-dev/convergent"

pytest.importorskip("mkdocs", reason="the docs extra (mkdocs) is not installed")
pytest.importorskip("material", reason="the docs extra (mkdocs-material) is not installed")


def _hooks() -> object:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", HOOKS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OPTIONAL_PAGES: frozenset[str] = _hooks().OPTIONAL_PAGES  # type: ignore[attr-defined]


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--config-file", str(config), "--site-dir", str(site)],
                          capture_output=True, text=True, timeout=300, env=env,
                          cwd=config.parent)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = _mkdocs(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "WARNING" not in done.stderr, done.stderr[-4000:]
    return out


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _built(site: Path, page: Path) -> Path:
    return site / "index.html" if page.stem == "index" else site / page.stem / "index.html"


def _nav_files(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [f for v in nav.values() for f in _nav_files(v)]
    if isinstance(nav, list):
        return [f for v in nav for f in _nav_files(v)]
    return []


def test_every_page_is_built(site: Path) -> None:
    for page in _pages():
        assert _built(site, page).is_file(), f"docs/{page.name} has no page in the site"
    for name in OPTIONAL_PAGES:
        built = (site / Path(name).stem / "index.html").is_file()
        assert built == (DOCS / name).is_file(), name


def test_every_page_is_in_the_nav() -> None:
    from ruamel.yaml import YAML
    config = YAML(typ="safe", pure=True).load((ROOT / "mkdocs.yml").read_text())
    listed = _nav_files(config["nav"])
    assert len(listed) == len(set(listed)), "a page is listed twice in the nav"
    on_disk = {p.name for p in _pages()}
    missing = set(listed) - on_disk
    assert missing <= OPTIONAL_PAGES, f"the nav lists pages that do not exist: {missing}"
    assert on_disk <= set(listed), (f"pages not in mkdocs.yml's nav: {on_disk - set(listed)} "
                                    "(add them to the nav)")


def test_pictures_are_in_the_site_and_on_the_page(site: Path) -> None:
    pictures = sorted((DOCS / "img").iterdir())
    assert {p.name for p in pictures} >= {
        "inspector-report.png", "inspector-player-step.png", "inspector-player-orders.png",
        "inspector-explorer.png", "inspector-state.png", "inspector-replicas.png",
        "statechart-order.svg"}
    for p in pictures:
        copied = site / "img" / p.name
        assert copied.is_file() and copied.read_bytes() == p.read_bytes(), p.name
    html = (site / "inspector" / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]*\ssrc="([^"]+)"', html)
    assert {Path(s).name for s in sources} == {p.name for p in pictures}
    for src in sources:
        assert (site / "inspector" / src).resolve().is_file(), src
    for p in pictures:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_links_to_repository_files_point_to_the_repository(site: Path) -> None:
    html = (site / "coverage" / "index.html").read_text(encoding="utf-8")
    assert f'href="{REPO}/blob/main/examples/coverage/' in html
    for page in site.rglob("index.html"):
        assert 'href="../examples/' not in page.read_text(encoding="utf-8"), page


def test_doc_test_directives_stay_invisible_comments(site: Path) -> None:
    """tests/test_docs.py reads ``<!-- doc-test: ... -->`` lines above code
    blocks; in the site they must stay HTML comments, one per directive."""
    directive = re.compile(r"^<!--\s*doc-test:", re.M)
    for page in _pages():
        source = page.read_text(encoding="utf-8")
        html = _built(site, page).read_text(encoding="utf-8")
        assert len(directive.findall(source)) == html.count("<!-- doc-test:"), page.name
        shown = re.sub(r"<!--.*?-->", "", html, flags=re.S)
        assert not re.search(r"(?<!&lt;)!-- doc-test:", shown), page.name


# ------------------------------------------------------------------ the hooks, on small sites

def _tiny(tmp_path: Path, nav: str, body: str, files: dict[str, str]) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(body)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\nrepo_url: {REPO}\ndocs_dir: docs\n"
                      f"hooks:\n  - {HOOKS.as_posix()}\nnav:\n{nav}")
    return config


def test_a_link_to_an_existing_repository_file_is_rewritten(tmp_path: Path) -> None:
    config = _tiny(tmp_path, "  - index.md\n",
                   "See [the spec](../examples/a.yaml#top) and [code](../src/).\n"
                   "```\n[kept](../examples/a.yaml)\n```\n",
                   {"examples/a.yaml": "machine: a\n", "src/x.py": ""})
    done = _mkdocs(config, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "site" / "index.html").read_text()
    assert f'href="{REPO}/blob/main/examples/a.yaml#top"' in html
    assert f'href="{REPO}/tree/main/src/"' in html or f'href="{REPO}/tree/main/src"' in html
    assert "[kept](../examples/a.yaml)" in html  # code is left alone


def test_a_link_to_a_missing_file_still_fails_the_strict_build(tmp_path: Path) -> None:
    config = _tiny(tmp_path, "  - index.md\n", "See [gone](../examples/gone.yaml).\n", {})
    done = _mkdocs(config, tmp_path / "site")
    assert done.returncode != 0
    assert "gone.yaml" in done.stderr


def test_only_the_optional_pages_may_be_missing(tmp_path: Path) -> None:
    nav = "".join(f"  - {name}\n" for name in ["index.md", *sorted(OPTIONAL_PAGES)])
    (tmp_path / "a").mkdir()
    ok = _tiny(tmp_path / "a", nav, "# home\n", {})
    done = _mkdocs(ok, tmp_path / "a" / "site")
    assert done.returncode == 0, done.stderr
    assert "not written yet" in done.stderr
    (tmp_path / "b").mkdir()
    bad = _tiny(tmp_path / "b", nav + "  - elsewhere.md\n", "# home\n", {})
    done = _mkdocs(bad, tmp_path / "b" / "site")
    assert done.returncode != 0 and "elsewhere.md" in done.stderr
