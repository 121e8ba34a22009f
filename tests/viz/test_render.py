"""Renderers: mermaid and dot text, graphviz images, and escaping of
untrusted names (a spec may name anything)."""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convergent.engine.check import analyze
from convergent.spec.loader import load_spec
from convergent.viz import GraphvizError, graph_for, render, render_dot, to_dot, to_mermaid
from convergent.viz.dot import escape_dot
from convergent.viz.mermaid import escape_mermaid
from convergent.viz.model import Edge, Graph, Node

ROOT = Path(__file__).resolve().parents[2]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's dot is not installed "
                                      "(scripts/install-browser.sh installs it)")


def _gsm_graph() -> Graph:
    return graph_for(analyze(load_spec(str(ROOT / "examples" / "gsm_order.yaml"))))


def test_mermaid_of_a_state_graph() -> None:
    text = to_mermaid(_gsm_graph())
    lines = text.splitlines()
    assert "flowchart LR" in lines
    assert "    start --> s0" in lines
    assert '    s0 -->|"process_payment"| s5' in lines
    assert 's0("status=pending<br/>paid=false<br/>inventory=0")' in text
    assert "classDef k_state" in text


def test_dot_of_a_state_graph() -> None:
    text = to_dot(_gsm_graph())
    assert text.startswith("digraph convergent {") and text.rstrip().endswith("}")
    assert 's0 [label="status=pending\\npaid=false\\ninventory=0"' in text
    assert 's0 -> s5 [label="process_payment"];' in text
    assert "peripheries=2" in text  # the initial state


@st.composite
def _hostile(draw: st.DrawFn) -> str:
    return draw(st.text(alphabet=st.sampled_from(list('<>"\'&#`|\\;{}[]()\n\tab_ -=')),
                        min_size=1, max_size=30))


@given(_hostile())
def test_mermaid_escape_leaves_no_syntax(text: str) -> None:
    out = escape_mermaid(text)
    for ch in '"<>`|\n\t':
        assert ch not in out.replace("<br/>", "")
    # every '#' starts an entity we wrote
    assert all(part.split(";")[0].isdigit() or part.split(";")[0] in ("quot", "lt", "gt", "amp")
               for part in out.split("#")[1:])


@given(_hostile())
def test_dot_escape_round_trips_through_a_quoted_string(text: str) -> None:
    out = escape_dot(text)
    # unescape as graphviz reads a quoted string: \\ -> \, \" -> ", \n -> newline
    back, i = [], 0
    while i < len(out):
        if out[i] == "\\":
            nxt = out[i + 1]
            back.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
            i += 2
        else:
            assert out[i] != '"'
            back.append(out[i])
            i += 1
    expected = "".join(c if c == "\n" or ord(c) >= 32 else " " for c in text)
    assert "".join(back) == expected


@needs_dot
def test_svg_of_hostile_names_has_no_markup() -> None:
    evil = '<script>alert("x")</script>'
    g = Graph(evil, "states", (Node("s0", (f"v={evil}", '"quoted" \\N'), "state", initial=True),
                               Node("s1", ("<img src=x onerror=alert(1)>",), "invalid")),
              (Edge("s0", "s1", evil), Edge("s1", "s0", "repair </text>", "dashed", "#b03030")))
    svg = render(g, "svg")
    root = ElementTree.fromstring(svg)  # well-formed XML
    tags = {el.tag.split("}")[-1] for el in root.iter()}
    assert "script" not in tags and "img" not in tags and "foreignObject" not in tags
    texts = [el.text or "" for el in root.iter() if el.tag.endswith("text")]
    assert evil in texts and "<img src=x onerror=alert(1)>" in texts
    assert '"quoted" \\N' in texts  # no graphviz escape was interpreted


@needs_dot
def test_png_is_a_png() -> None:
    data = render(_gsm_graph(), "png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_missing_graphviz_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphvizError, match="apt-get install graphviz"):
        render_dot("digraph {}", "svg")


@needs_dot
def test_graphviz_failure_is_reported() -> None:
    with pytest.raises(GraphvizError, match="failed"):
        render_dot("digraph { this is not dot", "svg")


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        render(_gsm_graph(), "pdf")


def test_escapes_control_characters() -> None:
    assert escape_dot("a\x00b\x7f") == "a b "
    assert escape_mermaid("a\x01") == "a#1;"


@given(_hostile())
def test_mermaid_title_stays_one_comment_line(title: str) -> None:
    g = Graph(title, "states", (Node("s0", ("x",), "state"),), (), note=title)
    lines = to_mermaid(g).splitlines()
    flow = lines.index("flowchart LR")
    assert all(line.startswith("%% ") for line in lines[:flow])
    assert not any(line.startswith("%%{") for line in lines)
