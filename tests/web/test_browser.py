"""End to end in headless Chromium: the inspector as a person uses it.

Debian's chromium, driven by playwright (never a downloaded browser). Each
test asserts what the page shows, that no script error or CSP violation
happened, and saves screenshots under its tmp path (their paths are printed
and recorded as the test's properties).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")

from .conftest import EXAMPLES, inspection_of, live_server  # noqa: E402
from .hostile import EVENT, INVARIANT, MACHINE, MARKERS, Q, VAR, hostile_spec  # noqa: E402
from .machines import looping  # noqa: E402

pytestmark = pytest.mark.slow

TIMEOUT = 15_000  # ms for any one thing to appear


@pytest.fixture(scope="module")
def inspections() -> list[Any]:
    from convergent.web.inspection import inspect_spec
    return [inspection_of(EXAMPLES / "gsm_order.yaml", 0),
            inspection_of(EXAMPLES / "bank_account.yaml", 1),
            inspect_spec(2, "loops", looping()),
            inspect_spec(3, "hostile", hostile_spec())]


@pytest.fixture(scope="module")
def base(inspections: list[Any]) -> Iterator[str]:
    with live_server(inspections) as url:
        yield url


def _open(page: Any, url: str, ready: str) -> None:
    page.goto(url)
    page.wait_for_selector(ready, timeout=TIMEOUT)


def _wait_until(page: Any, js_function: str, timeout: float = TIMEOUT / 1000) -> None:
    """Poll ``js_function`` (an arrow function) until it returns true.
    ``page.wait_for_function`` evaluates strings with ``eval`` inside the
    page, which the inspector's CSP forbids, as it should."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(js_function):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {js_function}")
        time.sleep(0.05)


def _no_errors(page: Any) -> None:
    assert page.errors == [], page.errors


def _rows(card: Any) -> dict[str, str]:
    """``{var: value}`` of a state card (a locator)."""
    out = {}
    for row in card.locator("tr").all():
        cells = row.locator("td").all_inner_texts()
        out[cells[0]] = cells[1]
    return out


def test_report_page(page: Any, base: str, shots: Any, inspections: list[Any]) -> None:
    report = inspections[0].report
    _open(page, f"{base}/", "#verdict")
    assert page.inner_text("#verdict").lower() == "fail"
    assert page.inner_text("#machine-name") == "order_fulfillment"
    assert page.inner_text("#summary") == report.summary()
    assert page.inner_text("#reachable-count") == str(report.states.reachable)
    footprints = page.locator("#footprints tbody tr").all_inner_texts()
    assert len(footprints) == len(report.footprints)
    assert any(row.startswith("ship_item") and "inventory" in row for row in footprints)
    checks = page.locator("#checks tbody tr").all_inner_texts()
    assert checks[0].split()[:2] == ["WFC", "PASS"]
    assert checks[1].split()[:2] == ["CC1", "FAIL"] and "[ship_item, restock]" in checks[1]
    assert checks[2].split()[:2] == ["CC2", "FAILS"] and "NOT REQUIRED" in checks[2]
    assert page.locator("#informational a").all_inner_texts() == [
        f"CC2: {report.cc2.counterexample.event} does not commute with a repair"]
    assert page.locator("#timing tbody tr").count() == len(report.seconds)
    shots(page, "report")
    _no_errors(page)


def test_play_the_gsm_counterexample(page: Any, base: str, shots: Any,
                                     inspections: list[Any]) -> None:
    cex = inspections[0].report.cc1.counterexample
    _open(page, f"{base}/#/m/0/report", "#play")
    page.click("#play")
    page.wait_for_selector("#cex-title", timeout=TIMEOUT)
    assert page.inner_text("#cex-title") == "ship_item and restock do not commute"
    assert page.inner_text("#step-label") == "Step 0 of 3"
    assert page.inner_text("#cex-picker") == (
        "Counterexamples: CC1: ship_item and restock do not commute · CC2 (not required): "
        f"{inspections[0].report.cc2.counterexample.event} does not commute with a repair")
    assert page.is_disabled("#prev") and not page.is_disabled("#next")
    assert _rows(page.locator("#frame .card")) == {"status": "pending", "paid": "false",
                                           "inventory": "0"}
    shots(page, "player-0-initial")

    page.click("#next")
    page.wait_for_selector("text=Step 1 of 3", timeout=TIMEOUT)
    assert page.inner_text("#frame-title") == "1. process_payment"
    cards = page.locator("#frame .card")
    assert cards.count() == 2
    assert page.inner_text("#frame .arrow") .startswith("process_payment")
    changed = page.locator("#frame .card").nth(1).locator("tr.changed").all()
    assert sorted(r.get_attribute("data-var") for r in changed) == ["paid", "status"]
    shots(page, "player-1-step")

    page.keyboard.press("ArrowRight")
    page.wait_for_selector("text=Step 2 of 3", timeout=TIMEOUT)
    assert page.inner_text("#frame-title") == "Where the orders split"
    assert _rows(page.locator("#frame .card")) == {k: str(v).lower() for k, v in cex.state.items()}

    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#order-1", timeout=TIMEOUT)
    assert page.inner_text("#step-label") == "Step 3 of 3" and page.is_disabled("#next")
    assert page.inner_text("#order-1 h4") == "Order 1: ship_item then restock"
    assert page.inner_text("#order-2 h4") == "Order 2: restock then ship_item"
    finals = [_rows(page.locator(f"#order-{k} .card").last) for k in (1, 2)]
    expect = [{k: str(v).lower() for k, v in o.items()} for o in (cex.order1, cex.order2)]
    assert finals == expect
    differ = [k for k in cex.order1 if cex.order1[k] != cex.order2[k]]  # var order
    assert page.inner_text("#differs") == ("The two orders end in different states: they "
                                           f"differ in {', '.join(differ)}.")
    marked = page.locator("#order-2 .card").last.locator("tr.differs").all()
    assert [r.get_attribute("data-var") for r in marked] == differ
    # ship_item cannot fire first at inventory 0: the page says so
    assert "guard false" in page.inner_text("#order-1")
    shot = shots(page, "player-3-orders")
    assert shot.stat().st_size > 10_000

    page.click("#timeline li[data-frame='0']")
    page.wait_for_selector("text=Step 0 of 3", timeout=TIMEOUT)
    page.keyboard.press("ArrowLeft")  # stays at the first frame
    assert page.inner_text("#step-label") == "Step 0 of 3"
    _no_errors(page)


def test_explorer_search_and_state(page: Any, base: str, shots: Any,
                                   inspections: list[Any]) -> None:
    insp = inspections[0]
    _open(page, f"{base}/#/m/0/explorer", "#states")
    assert page.locator("#states tbody tr").count() == insp.report.states.reachable
    page.fill("#query", "status=paid inventory!=0")
    page.click("#search button")
    page.wait_for_selector("text=5 matching", timeout=TIMEOUT)
    rows = page.locator("#states tbody tr").all_inner_texts()
    assert len(rows) == 5 and all("paid" in r for r in rows)
    shots(page, "explorer-search")
    page.locator("#states tbody tr").first.locator("a").click()
    page.wait_for_selector("#successors", timeout=TIMEOUT)
    sid = int(page.inner_text("#state-id"))
    assert page.url.endswith(f"/state/{sid}")
    assert page.locator("#enabled li").all_inner_texts() == insp.stepper.enabled(sid)
    path = page.locator("#path li").all_inner_texts()
    assert path[0] == "initial" and len(path) >= 2
    if shutil.which("dot") is not None:
        _wait_until(page, "() => document.getElementById('neighbourhood').naturalWidth > 0")
    shots(page, "state")
    _no_errors(page)
    page.goto(f"{base}/#/m/0/explorer?q=status%3Dlost")
    page.wait_for_selector("#error", timeout=TIMEOUT)
    assert "expected one of" in page.inner_text("#error")
    # the browser logs the refused request, and nothing else
    assert [e for e in page.errors if "400 (Bad Request)" not in e] == []


def test_repair_cycle(page: Any, base: str, shots: Any) -> None:
    _open(page, f"{base}/#/m/2/player/0/0", "#cex-title")
    assert "repairs loop" in page.inner_text("#cex-title")
    page.click("#last")
    page.wait_for_selector("#cycle", timeout=TIMEOUT)
    text = page.inner_text("#cycle")
    assert "repair a" in text and "repair b" in text and "back to the first state" in text
    shots(page, "wfc-cycle")
    _no_errors(page)


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_diagram_tab(page: Any, base: str, shots: Any) -> None:
    _open(page, f"{base}/#/m/0/diagram", "#diagram")
    _wait_until(page, "() => document.getElementById('diagram').naturalWidth > 0")
    assert "flowchart LR" in page.inner_text("#mermaid")
    page.click("#zoom-in")
    shots(page, "diagram")
    _no_errors(page)


def test_hostile_names_stay_text(page: Any, base: str, shots: Any) -> None:
    """Every view of a machine whose names are markup: nothing runs, the
    names are shown verbatim as text."""
    views = ["report", "player/0/0", "player/0/3", "explorer", "diagram"]
    for view in views:
        page.goto(f"{base}/#/m/3/{view}")
        page.wait_for_selector("main h2", timeout=TIMEOUT)
        page.wait_for_timeout(150)
        if view == "report":
            assert page.inner_text("#machine-name") == MACHINE
        if view == "player/0/0":
            assert page.inner_text("#cex-title") == f"{EVENT} and set_flag do not commute"
        if view == "player/0/3":
            page.wait_for_selector("#order-1", timeout=TIMEOUT)
            assert Q in page.inner_text("#frame")
            # set_flag after the hostile event breaks the invariant: its repair is shown,
            # after the invalid state it produced
            assert f"repair {INVARIANT}" in page.inner_text("#order-1")
            assert page.locator("#order-1 .card.invalid").count() == 1
            assert page.locator("#order-2 .card.invalid").count() == 0
        if view == "explorer":
            assert VAR in page.inner_text("#states thead")
        shots(page, "hostile-" + view.replace("/", "-"))
        for marker in MARKERS:
            assert page.evaluate(f"window.{marker} === undefined"), (view, marker)
        assert page.evaluate("document.scripts.length") == 1
        assert page.evaluate("document.querySelectorAll('main img:not(#diagram), "
                             "main svg, main iframe, main b').length") == 0
    _no_errors(page)


def test_bad_addresses_are_handled(page: Any, base: str) -> None:
    _open(page, f"{base}/#/m/0/player/abc/99", "#cex-title")  # clamped: the first
    assert page.inner_text("#cex-title") == "ship_item and restock do not commute"
    assert page.inner_text("#step-label") == "Step 3 of 3"  # counterexample, last step
    _no_errors(page)
    page.goto(f"{base}/#/m/9/report")
    page.wait_for_selector("#error", timeout=TIMEOUT)
    assert page.inner_text("#error") == "no such machine"
    page.goto(f"{base}/#/m/0/nowhere")
    page.wait_for_selector("main .error", timeout=TIMEOUT)
    assert "unknown view" in page.inner_text("main")


def test_csp_blocks_inline_script(page: Any, base: str) -> None:
    """Defence in depth: even a script element that reached the page would
    not run (the policy has no 'unsafe-inline'; test_api checks the header)."""
    _open(page, f"{base}/", "#verdict")
    page.evaluate("() => { const s = document.createElement('script'); "
                  "s.textContent = 'window.__inline_ran = 1'; document.body.append(s); }")
    page.wait_for_timeout(100)
    assert page.evaluate("() => window.__inline_ran === undefined")
    assert any("Content Security Policy" in e for e in page.errors), page.errors
    page.errors.clear()  # the refusal is the point


def test_screenshot_dir_is_per_test(tmp_path: Path) -> None:
    """Screenshots land under pytest's tmp path, never in the source tree."""
    assert tmp_path.is_dir() and "pytest" in str(tmp_path).lower()


def test_live_replicas(page: Any, shots: Any, tmp_path: Path) -> None:
    """The Replicas tab shows each replica and the convergence verdict, and
    follows the status files as they change."""
    import json

    def write(name: str, version: dict[str, int], digest: str, balance: int) -> str:
        path = tmp_path / f"{name}.json"
        tmp = tmp_path / f"{name}.json.tmp"
        tmp.write_text(json.dumps({
            "replica": name, "machine": "bank_account", "digest": digest,
            "state": {"balance": balance, "hold": False, "approval": "none"},
            "accepted": sum(version.values()), "log": sum(version.values()), "pending": 0,
            "version": version}))
        tmp.replace(path)  # as the replica service writes it: atomically
        return str(path)

    files = [write("a", {"a": 2, "b": 1}, "d1" * 32, 5), write("b", {"a": 1, "b": 1}, "d2" * 32, 4)]
    with live_server([inspection_of(EXAMPLES / "bank_account.yaml")], files) as url:
        _open(page, f"{url}/#/m/0/replicas", "#replicas")
        assert page.locator("#tab-replicas").count() == 1
        assert "syncing" in page.inner_text("#groups").lower()
        rows = page.locator("#replicas tbody tr").all_inner_texts()
        assert len(rows) == 2 and "balance=5" in rows[0] and "balance=4" in rows[1]
        shots(page, "replicas-syncing")
        write("b", {"a": 2, "b": 1}, "d1" * 32, 5)  # b catches up
        _wait_until(page, "() => document.getElementById('groups')"
                          ".innerText.toLowerCase().includes('converged')")
        assert "balance=5" in page.locator("#replicas tbody tr").nth(1).inner_text()
        shots(page, "replicas-converged")
        _no_errors(page)
