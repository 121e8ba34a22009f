"""Fixtures for the inspector's tests: machines, a live server, a browser.

The live server is the real app under uvicorn on 127.0.0.1 (a free port),
in a thread of the test process. The browser is Debian's chromium driven by
playwright; nothing is downloaded. Browser tests skip, with the reason, only
when chromium or playwright is not installed (``scripts/install-browser.sh``
installs chromium).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from convergent.spec.loader import load_spec

if TYPE_CHECKING:  # pragma: no cover
    from convergent.web.inspection import Inspection

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MACHINES = Path(__file__).resolve().parent / "machines"

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def inspection_of(path: Path, index: int = 0) -> Inspection:
    from convergent.web.inspection import inspect_spec
    return inspect_spec(index, path.name, load_spec(str(path)))


@contextmanager
def live_server(inspections: list[Inspection],
                replica_status: list[str] | None = None) -> Iterator[str]:
    """Serve ``inspections`` on 127.0.0.1:<free port>; yields the base URL."""
    from convergent.web.server import serving
    with serving(inspections, replica_status=replica_status or ()) as url:
        yield url


@pytest.fixture(scope="session")
def gsm() -> Inspection:
    return inspection_of(EXAMPLES / "gsm_order.yaml")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (scripts/install-browser.sh installs it)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True,
                               args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; console errors and CSP violations fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def shots(tmp_path: Path, record_property: Any) -> Any:
    """``shots(page, name)`` saves a screenshot under the test's tmp path and
    records its path in the test report (``-rA`` / junit properties); with
    ``CONVERGENT_SCREENSHOT_DIR`` set, a copy is also kept there."""
    keep = os.environ.get("CONVERGENT_SCREENSHOT_DIR")

    def take(pg: Any, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        record_property(f"screenshot:{name}", str(path))
        print(f"screenshot: {path}")
        if keep:  # e.g. to refresh the pictures of the docs
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(keep) / path.name)
        return path
    return take
