"""``Graph`` to mermaid ``flowchart`` text.

Labels are untrusted (they come from a spec): every character mermaid could
read as syntax or markup is written as a mermaid entity code (``#quot;``,
``#lt;``, ...), inside a quoted label, so a name can neither end the label
nor inject HTML into a page that renders the diagram.
"""

from __future__ import annotations

from .model import Edge, Graph, Node

__all__ = ["comment", "escape_mermaid", "to_mermaid"]

_ENTITIES = {
    "#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;",
    "|": "#124;",
}

_CLASSES = {
    "state": "fill:#eef5ff,stroke:#1f5fa8",
    "invalid": "fill:#ffecec,stroke:#c00000,stroke-dasharray:4 3",
    "var": "fill:#fff8e0,stroke:#a07800",
    "event": "fill:#eef5ff,stroke:#1f5fa8",
    "invariant": "fill:#f4ecff,stroke:#6a3fa0",
    "schema_state": "fill:#eef5ff,stroke:#1f5fa8",
    "start": "fill:#000,stroke:#000",
    "final": "fill:#eef5ff,stroke:#1f5fa8,stroke-width:3px",
    "history": "fill:#fff,stroke:#333",
}

_SHAPES = {
    "var": ("([", "])"), "event": ("[", "]"), "invariant": ("{{", "}}"),
    "state": ("(", ")"), "invalid": ("[", "]"), "schema_state": ("(", ")"),
    "start": ("((", "))"), "final": ("(((", ")))"), "history": ("((", "))"),
}


def escape_mermaid(text: str) -> str:
    """``text`` as the inside of a quoted mermaid label (newlines become breaks)."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("<br/>")
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def comment(text: str) -> str:
    """A ``%%`` comment line: it ends at a line break, so none may be inside;
    the space after ``%%`` keeps it from being read as a ``%%{...}%%``
    directive, and markup characters are entity-coded as in labels."""
    flat = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text)
    return "%% " + escape_mermaid(flat)  # no markup in the text, even in a comment


def _node(n: Node) -> str:
    left, right = _SHAPES[n.kind]
    return f'    {n.id}{left}"{escape_mermaid(n.label)}"{right}'


def _edge(e: Edge) -> str:
    if e.arrow == "tee":
        link = "--x"
    elif e.arrow == "none":
        link = "==="
    elif e.style == "dashed" or e.style == "dotted":
        link = "-.->"
    elif e.style == "bold":
        link = "==>"
    else:
        link = "-->"
    label = f'|"{escape_mermaid(e.label)}"|' if e.label else ""
    return f"    {e.source} {link}{label} {e.target}"


def to_mermaid(graph: Graph) -> str:
    """A ``flowchart`` block; the title and note are ``%%`` comments. A
    statechart (a graph with clusters) is a ``stateDiagram-v2`` instead,
    mermaid's own notation for nested and parallel states."""
    if graph.kind == "statechart" or graph.clusters:
        from .state_diagram import to_state_diagram
        return to_state_diagram(graph)
    lines = [comment(graph.title)] + [comment(line) for line in graph.note.splitlines()]
    lines.append(f"flowchart {graph.direction}")
    initial = [n for n in graph.nodes if n.initial]
    if initial:
        lines.append('    start(("start"))')
    lines += [_node(n) for n in graph.nodes]
    for n in initial:
        lines.append(f"    start --> {n.id}")
    lines += [_edge(e) for e in graph.edges]
    used = sorted({n.kind for n in graph.nodes})
    for kind in used:
        lines.append(f"    classDef k_{kind} {_CLASSES[kind]}")
        members = ",".join(n.id for n in graph.nodes if n.kind == kind)
        lines.append(f"    class {members} k_{kind}")
    strong = [n.id for n in graph.nodes if n.emphasis]
    if strong:
        lines.append("    classDef k_strong stroke-width:3px")
        lines.append(f"    class {','.join(strong)} k_strong")
    return "\n".join(lines) + "\n"
