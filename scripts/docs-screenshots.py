#!/usr/bin/env python3
"""Refresh the pictures of docs/inspector.md: the inspector's pages in
headless Chromium, and a statechart diagram through graphviz.

    .venv/bin/python scripts/docs-screenshots.py            # writes docs/img/
    .venv/bin/python scripts/docs-screenshots.py --out DIR  # somewhere else

Needs what the browser tests need (tests/web/conftest.py sets up the same
driver): Debian's chromium on PATH (scripts/install-browser.sh), the
playwright package (its driver only: no browser is downloaded), the web
extra, and graphviz's ``dot``. The inspector runs in this process on
127.0.0.1 at a free port; three real replicas of examples/bank_account.yaml
(in-process, simulated network) write the status files the Replicas tab
reads. Exit 0 when every picture was written, 2 when something it needs is
missing (the message says what).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: the same flags as tests/web/conftest.py: headless, no network beyond loopback
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000

#: file name -> what it shows (docs/inspector.md embeds each one)
PICTURES = {
    "inspector-report.png": "the Report tab of examples/gsm_order.yaml",
    "inspector-player-step.png": "the counterexample player, mid-trace (step 1 of 3)",
    "inspector-player-orders.png": "the player's last step: both orders side by side",
    "inspector-explorer.png": "the Explorer, searching status=paid inventory!=0",
    "inspector-state.png": "one state in the Explorer, with its neighbourhood",
    "inspector-replicas.png": "the Replicas tab: three live replicas, converged",
    "statechart-order.svg": "convergent diagram examples/order_saga/order.yaml",
}


class Missing(Exception):
    """Something the pictures need is not installed."""


def _need() -> tuple[str, Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise Missing("Debian's chromium is not on PATH (scripts/install-browser.sh)")
    if shutil.which("dot") is None:
        raise Missing("graphviz's dot is not installed (apt-get install graphviz)")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
        from playwright import sync_api
    except ImportError as exc:
        raise Missing(f"{exc.name} is not installed (pip install -e '.[web,test]')") from None
    return chromium, sync_api


class _Replicas:
    """Three replicas of the bank account that exchanged events and settled,
    and the status files `convergent replica run --status-file` would write
    for them (``write`` rewrites them, so they are fresh, not stale)."""

    def __init__(self, folder: Path) -> None:
        from convergent import Machine, load_spec
        from convergent.runtime import Replica, SimNetwork
        machine = Machine.from_spec(load_spec(str(EXAMPLES / "bank_account.yaml")))
        net = SimNetwork(seed=7)
        self.replicas = [Replica(machine, id=name, transport=net.transport(name))
                         for name in ("berlin", "lisbon", "oslo")]
        self.replicas[0].emit("deposit")
        self.replicas[1].emit("deposit")
        self.replicas[2].emit("place_hold")
        net.settle()
        self.paths = [folder / f"{r.id}.json" for r in self.replicas]
        self.write()

    def write(self) -> None:
        for r, path in zip(self.replicas, self.paths):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(r.status()), encoding="utf-8")
            tmp.replace(path)  # atomically, as the replica service does


@contextmanager
def _inspector(status_files: list[str]) -> Iterator[str]:
    from convergent import load_spec
    from convergent.web.inspection import inspect_spec
    from convergent.web.server import serving
    inspections = [inspect_spec(0, "gsm_order.yaml", load_spec(str(EXAMPLES / "gsm_order.yaml"))),
                   inspect_spec(1, "bank_account.yaml",
                                load_spec(str(EXAMPLES / "bank_account.yaml")))]
    with serving(inspections, replica_status=status_files) as url:
        yield url


def _wait_until(page: Any, js_function: str) -> None:
    """Poll ``js_function`` in the page (``wait_for_function`` would need
    ``eval``, which the inspector's CSP forbids)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(js_function):
        if time.monotonic() > deadline:
            raise RuntimeError(f"still false after {TIMEOUT_MS} ms: {js_function}")
        time.sleep(0.05)


def _shoot(page: Any, out: Path, name: str, *, full_page: bool = False) -> Path:
    path = out / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def _browser_pictures(out: Path, base: str, chromium: str, sync_api: Any,
                      replicas: _Replicas) -> list[Path]:
    written = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def visit(hash_path: str, ready: str) -> None:
                page.goto(f"{base}/{hash_path}")
                page.wait_for_selector(ready, timeout=TIMEOUT_MS)

            visit("#/m/0/report", "#verdict")
            written.append(_shoot(page, out, "inspector-report.png"))
            visit("#/m/0/player/0/1", "#frame-title")
            page.wait_for_selector("text=Step 1 of 3", timeout=TIMEOUT_MS)
            written.append(_shoot(page, out, "inspector-player-step.png"))
            visit("#/m/0/player/0/3", "#order-2")
            written.append(_shoot(page, out, "inspector-player-orders.png", full_page=True))
            visit("#/m/0/explorer?q=status%3Dpaid%20inventory!%3D0&page=0", "#states")
            page.wait_for_selector("text=5 matching", timeout=TIMEOUT_MS)
            written.append(_shoot(page, out, "inspector-explorer.png"))
            page.locator("#states tbody tr").first.locator("a").click()
            page.wait_for_selector("#successors", timeout=TIMEOUT_MS)
            _wait_until(page, "() => document.getElementById('neighbourhood')"
                              ".naturalWidth > 0")
            written.append(_shoot(page, out, "inspector-state.png", full_page=True))
            replicas.write()
            visit("#/m/1/replicas", "#replicas")
            _wait_until(page, "() => document.getElementById('groups')"
                              ".innerText.toLowerCase().includes('converged')")
            written.append(_shoot(page, out, "inspector-replicas.png"))
            if errors:
                raise RuntimeError(f"the page reported errors: {errors}")
        finally:
            browser.close()
    return written


def _statechart_picture(out: Path) -> Path:
    from convergent.viz import load_chart_file, render, statechart_graph
    chart = load_chart_file(EXAMPLES / "order_saga" / "order.yaml")
    path = out / "statechart-order.svg"
    path.write_bytes(render(statechart_graph(chart), "svg"))
    return path


def take(out: Path) -> list[Path]:
    """Write every picture of ``PICTURES`` into ``out``; returns their paths."""
    chromium, sync_api = _need()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="convergent-shots-") as tmp:
        replicas = _Replicas(Path(tmp))
        with _inspector([str(p) for p in replicas.paths]) as base:
            written = _browser_pictures(out, base, chromium, sync_api, replicas)
    written.append(_statechart_picture(out))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                        help="the folder to write into (default: docs/img)")
    args = parser.parse_args(argv)
    try:
        written = take(args.out)
    except Missing as exc:
        print(f"docs-screenshots: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
