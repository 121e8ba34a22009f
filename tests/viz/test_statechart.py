"""Statechart diagrams: composite states as clusters, parallel regions,
history, initial and final states, timers and guards; mermaid text, DOT
text, and real graphviz output."""

from __future__ import annotations

import re
import shutil
import struct
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.durable.chart import Chart, Statechart
from convergent.viz import render, to_dot, to_mermaid
from convergent.viz.chartfile import load_chart_file
from convergent.viz.model import Graph
from convergent.viz.state_diagram import escape_state_label
from convergent.viz.statechart import delay_text, statechart_graph

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "examples" / "order_saga" / "order.yaml"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's dot is not installed "
                                      "(apt-get install graphviz)")
SVG = "{http://www.w3.org/2000/svg}"


def _order() -> Graph:
    return statechart_graph(load_chart_file(ORDER))


def _ticket() -> Chart:
    """History (shallow and deep), a guarded timer, a targetless transition."""
    c = Statechart("ticket")
    c.int("attempts", 0, 3)
    c.state("open", history="deep")
    c.state("triage", parent="open")
    c.state("work", parent="open", history="shallow")
    c.state("coding", parent="work")
    c.state("review", parent="work")
    c.state("paused")
    c.state("closed", final=True)
    c.on("triage", "accept", "work")
    c.on("coding", "submit", "review")
    c.on("open", "pause", "paused")
    c.on("paused", "resume", "open")
    c.on("open", "close", "closed", guard="attempts < 3", roles={"manager"})
    c.on("open", "ping", None)
    c.after("review", timedelta(hours=2), "coding", guard="attempts > 0")
    return c.build()


# ------------------------------------------------------------------ the model

def test_composite_states_are_clusters() -> None:
    g = _order()
    clusters = {c.lines[0]: c for c in g.clusters}
    assert set(clusters) == {"processing", "payment", "stock"}
    assert clusters["processing"].kind == "parallel"
    assert clusters["payment"].kind == "compound"
    assert clusters["payment"].parent == clusters["processing"].id
    by_name = {n.lines[0]: n for n in g.nodes if n.kind != "start"}
    assert by_name["pay_pending"].parent == clusters["payment"].id
    assert by_name["placed"].parent is None
    assert {n for n, node in by_name.items() if node.kind == "final"} == {
        "pay_ok", "pay_failed", "stock_ok", "stock_failed", "completed", "cancelled"}
    assert g.within(by_name["pay_ok"].id, clusters["processing"].id)
    assert not g.within(by_name["placed"].id, clusters["processing"].id)


def test_initial_states_have_a_start_dot_in_their_cluster() -> None:
    g = _order()
    starts = {n.id: n for n in g.nodes if n.kind == "start"}
    targets = {starts[e.source].parent: g.node(e.target).lines[0]
               for e in g.edges if e.source in starts}
    ids = {c.lines[0]: c.id for c in g.clusters}
    assert targets == {None: "placed", ids["payment"]: "pay_pending",
                       ids["stock"]: "stock_pending"}


def test_transitions_are_labelled_with_event_guard_roles_and_timers() -> None:
    g = _order()
    labels = {e.label: e for e in g.edges if e.label}
    assert "done.processing [paid and reserved]" in labels
    assert "cancel {customer, support}" in labels
    timer = labels["after 15m"]
    assert timer.style == "dashed" and timer.color is not None
    processing = next(c.id for c in g.clusters if c.lines[0] == "processing")
    assert timer.source == processing  # a transition out of a composite state


def test_history_and_targetless_transitions() -> None:
    g = statechart_graph(_ticket())
    clusters = {c.lines[0]: c.id for c in g.clusters}
    history = {n.parent: n.lines[0] for n in g.nodes if n.kind == "history"}
    assert history == {clusters["open"]: "H*", clusters["work"]: "H"}
    loop = next(e for e in g.edges if e.label.startswith("ping"))
    assert loop.source == loop.target == clusters["open"] and loop.style == "dotted"
    assert loop.label == "ping (internal)"
    assert any(e.label == "after 2h [attempts > 0]" for e in g.edges)
    assert any(e.label == "close [attempts < 3] {manager}" for e in g.edges)
    assert "H*" in g.note


@pytest.mark.parametrize("delta, text", [
    (timedelta(minutes=15), "15m"), (timedelta(hours=2), "2h"), (timedelta(days=1), "1d"),
    (timedelta(seconds=90), "90s"), (timedelta(milliseconds=500), "500ms"),
])
def test_delay_text(delta: timedelta, text: str) -> None:
    assert delay_text(delta) == text


# ------------------------------------------------------------------ mermaid

def _block(lines: list[str], cluster_id: str) -> list[str]:
    """The lines of ``state <id> { ... }`` (without the braces)."""
    start = next(i for i, line in enumerate(lines) if line.strip() == f"state {cluster_id} {{")
    indent = lines[start][:len(lines[start]) - len(lines[start].lstrip())]
    end = lines.index(f"{indent}}}", start)
    return lines[start + 1:end]


def test_mermaid_state_diagram_of_the_order_saga() -> None:
    g = _order()
    text = to_mermaid(g)
    lines = text.splitlines()
    assert lines[0] == "%% order: statechart v1"
    assert "stateDiagram-v2" in lines
    ids = {c.lines[0]: c.id for c in g.clusters}
    names = {n.lines[0]: n.id for n in g.nodes}
    # a named composite: declared with its label, then filled
    assert f'    state "processing" as {ids["processing"]}' in lines
    processing = _block(lines, ids["processing"])
    # the two regions of the parallel state, separated by --
    assert processing[0] == f'        state "payment" as {ids["payment"]}'
    assert "        --" in processing
    assert processing.index("        --") < processing.index(
        f'        state "stock" as {ids["stock"]}')
    # inside a region: its states, its initial state, its own transitions
    payment = [line.strip() for line in _block(lines, ids["payment"])]
    assert f"[*] --> {names['pay_pending']}" in payment
    assert f"{names['pay_ok']} --> [*]" in payment  # a final state
    assert f"{names['pay_pending']} --> {names['pay_ok']} : payment.authorized" in payment
    assert not any("inventory" in line for line in payment)
    # transitions out of the composite are written at the top level
    assert f"    {ids['processing']} --> {names['compensating']} : after 15m" in lines
    assert ": done.processing [paid and reserved]" in text
    assert ": cancel #123;customer, support#125;" in text


def test_mermaid_history_nodes() -> None:
    text = to_mermaid(statechart_graph(_ticket()))
    assert 'state "H*" as h' in text and 'state "H" as h' in text
    assert "classDef k_history" in text


def test_mermaid_writes_each_transition_in_the_innermost_common_block() -> None:
    g = statechart_graph(_ticket())
    lines = to_mermaid(g).splitlines()
    ids = {c.lines[0]: c.id for c in g.clusters}
    names = {n.lines[0]: n.id for n in g.nodes}
    open_block = [line.strip() for line in _block(lines, ids["open"])]
    work_block = [line.strip() for line in _block(lines, ids["work"])]
    accept = f"{names['triage']} --> {ids['work']} : accept"
    submit = f"{names['coding']} --> {names['review']} : submit"
    assert accept in open_block and submit in work_block
    assert f"    {names['paused']} --> {ids['open']} : resume" in lines  # top level
    assert f"    {ids['open']} --> {ids['open']} : ping (internal)" in lines


def test_hostile_names_cannot_break_the_state_diagram() -> None:
    c = Statechart("evil")
    c.state("a")
    c.state("b")
    c.on("a", "go", "b", roles={'x"y\n  state end {', "r: s; t"})
    text = to_mermaid(statechart_graph(c.build()))
    edge = next(line for line in text.splitlines() if " --> " in line and "go" in line)
    assert edge.count(" : ") == 1
    label = edge.split(" : ", 1)[1]
    for ch in '":;{}\n<>':
        assert ch not in label.replace("#58;", "").replace("#59;", "").replace(
            "#123;", "").replace("#125;", "").replace("#quot;", "").replace("<br/>", "")
    assert "state end" not in "\n".join(l for l in text.splitlines() if " : " not in l)


@given(st.text(alphabet=st.sampled_from(list('<>"\'&#`|\\;:{}[]()\n\tab -=%')), max_size=40))
def test_state_label_escape_leaves_no_syntax(text: str) -> None:
    out = escape_state_label(text)
    # every '#' starts an entity we wrote, every '<' a line break we wrote
    assert re.fullmatch(r"(?:[^#<]|#\d+;|#[a-z]+;|<br/>)*", out), out
    bare = re.sub(r"#\d+;|#[a-z]+;|<br/>", "", out)
    for ch in '":;{}<>\n\t`|':
        assert ch not in bare


# ------------------------------------------------------------------ dot and graphviz

def test_dot_nests_clusters_and_clips_edges() -> None:
    g = _order()
    text = to_dot(g)
    ids = {c.lines[0]: c.id for c in g.clusters}
    assert "compound=true;" in text
    outer = text.index(f"subgraph cluster_{ids['processing']} {{")
    inner = text.index(f"subgraph cluster_{ids['payment']} {{")
    assert outer < inner
    assert 'style="rounded,dashed"' in text[outer:inner]  # parallel
    assert f"ltail=cluster_{ids['processing']}" in text
    assert f"lhead=cluster_{ids['processing']}" in text


def test_dot_does_not_clip_an_edge_inside_its_own_cluster() -> None:
    g = statechart_graph(_ticket())
    text = to_dot(g)
    loop_line = next(line for line in text.splitlines() if "ping (internal)" in line)
    assert "ltail" not in loop_line and "lhead" not in loop_line


def _svg_texts(svg: bytes) -> tuple[set[str], set[str]]:
    root = ElementTree.fromstring(svg)
    texts = {"".join(t.itertext()) for t in root.iter(f"{SVG}text")}
    clusters = {"".join(g.find(f"{SVG}title").itertext())  # type: ignore[union-attr]
                for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"}
    return texts, clusters


@needs_dot
def test_graphviz_svg_of_the_order_saga() -> None:
    g = _order()
    svg = render(g, "svg")
    texts, clusters = _svg_texts(svg)
    assert clusters == {f"cluster_{c.id}" for c in g.clusters}
    assert {"processing", "payment", "stock", "pay_pending", "after 15m",
            "done.processing [paid and reserved]", "cancel {customer, support}"} <= texts


@needs_dot
def test_graphviz_png_of_a_chart_with_history() -> None:
    png = render(statechart_graph(_ticket()), "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 200 and height > 100


@needs_dot
def test_graphviz_escapes_hostile_names_in_svg() -> None:
    c = Statechart("evil")
    c.state("a")
    c.state("b")
    c.on("a", "go", "b", roles={'<script>alert(1)</script>"\\N'})
    svg = render(statechart_graph(c.build()), "svg")
    assert b"<script>" not in svg
    texts, _ = _svg_texts(svg)
    assert any('<script>alert(1)</script>"\\N' in t for t in texts)


# ------------------------------------------------------------------ properties

@st.composite
def _charts(draw: st.DrawFn) -> Chart:
    """Random nestings: each state's parent is an earlier non-final state (or
    the top level); states with two or more children may be parallel; the
    first state reaches every other one by its own event."""
    n = draw(st.integers(2, 9))
    parents: list[int | None] = [None]
    for i in range(1, n):
        parents.append(draw(st.one_of(st.none(), st.integers(0, i - 1))))
    children = {i: [j for j in range(n) if parents[j] == i] for i in range(n)}
    c = Statechart("random")
    for i in range(n):
        kids = children[i]
        parent = None if parents[i] is None else f"s{parents[i]}"
        if len(kids) >= 2 and draw(st.booleans()):
            c.parallel(f"s{i}", parent=parent)
        else:
            final = not kids and i > 0 and draw(st.booleans())
            history = draw(st.sampled_from(["none", "shallow", "deep"])) if kids else "none"
            c.state(f"s{i}", parent=parent, final=final, history=history)  # type: ignore[arg-type]
    for i in range(1, n):
        c.on("s0", f"e{i}", f"s{i}")
    return c.build()


@given(_charts())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_state_and_transition_is_drawn_once(chart: Chart) -> None:
    from convergent.durable.chart import ROOT as CHART_ROOT
    g = statechart_graph(chart)
    drawn = [n.lines[0] for n in g.nodes if n.kind not in ("start", "history")]
    drawn += [c.lines[0] for c in g.clusters]
    assert sorted(drawn) == sorted(s for s in chart.states if s != CHART_ROOT)
    ids = {n.id for n in g.nodes} | {c.id for c in g.clusters}
    assert len(ids) == len(g.nodes) + len(g.clusters)
    labelled = [e for e in g.edges if e.label]
    assert len(labelled) == len(chart.transitions)
    assert all(e.source in ids and e.target in ids for e in g.edges)
    # nesting in the picture is nesting in the chart
    name_of = {n.id: n.lines[0] for n in g.nodes} | {c.id: c.lines[0] for c in g.clusters}
    for c in g.clusters:
        for item in ids:
            if item in name_of and g.within(item, c.id) and name_of[item] in chart.states:
                assert chart.is_descendant(name_of[item], name_of[c.id])
    text = to_dot(g)
    assert text.count("subgraph cluster_") == len(g.clusters)
    mermaid = to_mermaid(g)
    assert mermaid.count("{\n") == mermaid.count("}\n") == len(g.clusters)
