"""Notebook display: ``Report._repr_html_``, ``Machine._repr_html_`` and
``Machine._repr_svg_``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from convergent.engine.check import analyze, check
from convergent.machine import Machine
from convergent.spec.loader import load_spec
from convergent.viz.notebook import NOTEBOOK_MAX_STATES, machine_graph

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's dot is not installed")


def test_report_html_shows_the_counterexample() -> None:
    report = check(load_spec(str(EXAMPLES / "gsm_order.yaml")))
    html = report._repr_html_()
    cex = report.cc1.counterexample  # type: ignore[union-attr]
    assert "order_fulfillment" in html and ">fail<" in html
    assert "initial → process_payment" in html
    assert "ship_item then restock" in html and "restock then ship_item" in html
    differ = [k for k in cex.order1 if cex.order1[k] != cex.order2[k]]
    assert html.count("background:#fde2df") == 2 * len(differ)


def test_report_html_of_a_repair_loop() -> None:
    from web.machines import looping
    html = check(looping())._repr_html_()
    assert "Repairs loop" in html and "then repair a" in html and "then repair b" in html


def test_report_html_escapes_names() -> None:
    from web.hostile import MACHINE, hostile_spec
    html = check(hostile_spec())._repr_html_()
    assert "<script" not in html and "<img" not in html and "<svg" not in html
    assert "&lt;script&gt;" in html and MACHINE not in html


def test_machine_html_and_svg() -> None:
    spec = load_spec(str(EXAMPLES / "permissions.yaml"))
    m = Machine.from_spec(spec)
    html = m._repr_html_()
    assert f"Machine {m.name}" in html and ">pass<" in html
    for v in m.vars:
        assert f"<code>{v.name}</code>" in html
    svg = m._repr_svg_()
    if shutil.which("dot") is None:
        assert svg is None and "graphviz" in html
    else:
        assert svg is not None and svg.startswith("<svg") and svg in html
        assert m._repr_svg_() is svg  # computed once per machine


def test_big_machine_has_no_inline_diagram() -> None:
    m = Machine.from_spec(load_spec(str(EXAMPLES / "bank_account.yaml")))
    assert m.report is not None
    assert (m.report.states.reachable or 0) > NOTEBOOK_MAX_STATES
    assert m._repr_svg_() is None
    assert "no diagram" in m._repr_html_()


@needs_dot
def test_loaded_machine_draws_from_its_tables(tmp_path: Path) -> None:
    spec = load_spec(str(EXAMPLES / "permissions.yaml"))
    an = analyze(spec)
    m = Machine.from_spec(spec)
    path = tmp_path / "m.json"
    m.export(str(path))
    loaded = Machine.load(str(path))
    g = machine_graph(loaded)
    assert g is not None
    assert an.reach is not None and an.step is not None
    assert {n.id for n in g.nodes} == {f"s{s}" for s in an.reach.tolist()}
    for e in g.edges:
        a, b = int(e.source[1:]), int(e.target[1:])
        assert a != b
        for name in e.label.split(", "):
            assert int(an.step[an.report.events.index(name)][a]) == b
    assert re.search(r"<svg", loaded._repr_svg_() or "")
