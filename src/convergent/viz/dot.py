"""``Graph`` to graphviz ``digraph`` text.

Labels are untrusted: they are always written as double-quoted DOT strings
with backslashes and quotes escaped (so ``\\N``-style escapes and HTML-like
labels cannot be smuggled in), and graphviz itself escapes them again when it
writes SVG.

Clusters (a statechart's composite states) become nested ``subgraph
cluster_<id>`` blocks. graphviz draws edges between nodes only, so an edge
that starts or ends at a cluster is drawn from or to the first node inside
it and clipped at the cluster's border (``compound=true`` with
``ltail``/``lhead``), unless its other end lies inside that same cluster.
"""

from __future__ import annotations

from .model import Cluster, Edge, Graph, Node

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
    "final": 'shape=box, style="rounded,filled", fillcolor="#eef5ff", color="#1f5fa8", '
             'peripheries=2',
    "history": 'shape=circle, width=0.3, fixedsize=true, fontsize=9',
}

_CLUSTER_ATTRS = {
    "compound": 'style="rounded"; color="#1f5fa8"',
    "parallel": 'style="rounded,dashed"; color="#6a3fa0"',
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


def _edge(e: Edge, graph: Graph | None = None) -> str:
    attrs = []
    source, target = e.source, e.target
    if graph is not None and graph.clusters:
        source, target, clip = _clip(graph, e)
        attrs += clip
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
    return f"    {source} -> {target}{tail};"


def _anchor(graph: Graph, cluster_id: str) -> str:
    """The node an edge at ``cluster_id`` is drawn from or to: the first
    node inside it, depth first (a composite state always holds one)."""
    for n in graph.nodes:
        if n.parent == cluster_id:
            return n.id
    for c in graph.clusters:
        if c.parent == cluster_id:
            return _anchor(graph, c.id)
    raise ValueError(f"cluster {cluster_id!r} is empty: an edge cannot be drawn at it")


def _clip(graph: Graph, e: Edge) -> tuple[str, str, list[str]]:
    ids = {c.id for c in graph.clusters}
    source, target, attrs = e.source, e.target, []
    if e.source in ids:
        source = _anchor(graph, e.source)
        if not graph.within(e.target, e.source):
            attrs.append(f"ltail=cluster_{e.source}")
    if e.target in ids:
        target = _anchor(graph, e.target)
        if not graph.within(e.source, e.target):
            attrs.append(f"lhead=cluster_{e.target}")
    return source, target, attrs


def _cluster(graph: Graph, c: Cluster, indent: str) -> list[str]:
    lines = [f"{indent}subgraph cluster_{c.id} {{",
             f'{indent}    label="{escape_dot(c.label)}"; {_CLUSTER_ATTRS[c.kind]};']
    lines += [indent + _node(n) for n in graph.nodes if n.parent == c.id]
    for child in graph.clusters:
        if child.parent == c.id:
            lines += _cluster(graph, child, indent + "    ")
    lines.append(f"{indent}}}")
    return lines


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
    if graph.clusters:
        lines.append("    compound=true;")
    initial = [n for n in graph.nodes if n.initial]
    if initial:
        lines.append(f"    start [label=\"\", {_NODE_ATTRS['start']}];")
    lines += [_node(n) for n in graph.nodes if n.parent is None]
    for c in graph.clusters:
        if c.parent is None:
            lines += _cluster(graph, c, "    ")
    for n in initial:
        lines.append(f"    start -> {n.id};")
    lines += [_edge(e, graph) for e in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
