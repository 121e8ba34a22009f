"""``Graph`` to graphviz ``digraph`` text.

Labels are untrusted: they are always written as double-quoted DOT strings
with backslashes and quotes escaped (so ``\\N``-style escapes and HTML-like
labels cannot be smuggled in), and graphviz itself escapes them again when it
writes SVG.
"""

from __future__ import annotations

from .model import Edge, Graph, Node

__all__ = ["escape_dot", "to_dot"]

_NODE_ATTRS = {
    "state": 'shape=box, style="rounded,filled", fillcolor="#eef5ff", color="#1f5fa8"',
    "invalid": 'shape=box, style="dashed,filled", fillcolor="#ffecec", color="#c00000", '
               'fontcolor="#800000"',
    "var": 'shape=ellipse, style=filled, fillcolor="#fff8e0", color="#a07800"',
    "event": 'shape=box, style="filled", fillcolor="#eef5ff", color="#1f5fa8"',
    "invariant": 'shape=hexagon, style=filled, fillcolor="#f4ecff", color="#6a3fa0"',
    "schema_state": 'shape=box, style="rounded,filled", fillcolor="#eef5ff", color="#1f5fa8"',
    "start": 'shape=point, width=0.15',
}


def escape_dot(text: str) -> str:
    """``text`` as the inside of a double-quoted DOT string (lines centred)."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _node(n: Node) -> str:
    attrs = _NODE_ATTRS[n.kind]
    if n.initial:
        attrs += ", peripheries=2"
    if n.emphasis:
        attrs += ", penwidth=3"
    return f'    {n.id} [label="{escape_dot(n.label)}", {attrs}];'


def _edge(e: Edge) -> str:
    attrs = []
    if e.label:
        attrs.append(f'label="{escape_dot(e.label)}"')
    if e.style != "solid":
        attrs.append(f"style={e.style}")
    if e.color:
        attrs.append(f'color="{escape_dot(e.color)}", fontcolor="{escape_dot(e.color)}"')
    if e.arrow == "tee":
        attrs.append("arrowhead=tee")
    elif e.arrow == "none":
        attrs.append("dir=none")
    tail = f" [{', '.join(attrs)}]" if attrs else ""
    return f"    {e.source} -> {e.target}{tail};"


def _caption(graph: Graph) -> str:
    return f"{graph.title}\n{graph.note}" if graph.note else graph.title


def to_dot(graph: Graph) -> str:
    lines = [
        "digraph convergent {",
        f'    label="{escape_dot(_caption(graph))}"; labelloc=t; fontname="Helvetica";',
        f"    rankdir={graph.direction};",
        '    node [fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    initial = [n for n in graph.nodes if n.initial]
    if initial:
        lines.append(f"    start [label=\"\", {_NODE_ATTRS['start']}];")
    lines += [_node(n) for n in graph.nodes]
    for n in initial:
        lines.append(f"    start -> {n.id};")
    lines += [_edge(e) for e in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
