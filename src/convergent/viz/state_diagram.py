"""``Graph`` with clusters to mermaid ``stateDiagram-v2`` text.

Mermaid's flowchart has no notion of a composite state entered at its
initial child or of concurrent regions; its state diagram has both
(``state X { ... }``, regions separated by ``--``, ``[*]`` for the start
and end pseudo-states), so statecharts are written in it.

Every state is declared as ``state "label" as id`` with a builder-made id,
so a state named like a mermaid keyword (``end``, ``note``, ``state``)
cannot be read as syntax. Labels are untrusted: besides what
``escape_mermaid`` codes, ``:``, ``;``, ``{`` and ``}`` (which end or open
a statement here) are written as entity codes too.
"""

from __future__ import annotations

from .mermaid import comment, escape_mermaid
from .model import Edge, Graph, Node

__all__ = ["escape_state_label", "to_state_diagram"]

_EXTRA = {":": "#58;", ";": "#59;", "{": "#123;", "}": "#125;"}

_CLASSES = {
    "final": "stroke-width:3px",
    "history": "fill:#fff,stroke:#333,font-size:10px",
}


def escape_state_label(text: str) -> str:
    """``text`` safe inside a quoted state description or after ``:``."""
    return "".join(_EXTRA[ch] if ch in _EXTRA else escape_mermaid(ch) for ch in text)


def _edge_line(e: Edge, source: str, indent: str) -> str:
    label = f" : {escape_state_label(e.label)}" if e.label else ""
    return f"{indent}{source} --> {e.target}{label}"


def _scopes(graph: Graph) -> dict[str | None, list[Edge]]:
    """Each edge keyed by the block it is written in: the innermost cluster
    holding both ends (mermaid places a state in the last block that names
    it, so an edge written at the top level could pull a nested state out of
    its composite). A parallel cluster's own body is its regions, so an edge
    between regions goes one level up."""
    parent: dict[str, str | None] = {n.id: n.parent for n in graph.nodes}
    parent.update({c.id: c.parent for c in graph.clusters})
    kinds = {c.id: c.kind for c in graph.clusters}

    def chain(item: str) -> list[str | None]:
        out: list[str | None] = []
        current = parent.get(item)
        while current is not None and current not in out:
            out.append(current)
            current = parent.get(current)
        return out + [None]

    scopes: dict[str | None, list[Edge]] = {}
    for e in graph.edges:
        target_chain = chain(e.target)
        scope = next(c for c in chain(e.source) if c in target_chain)
        while scope is not None and kinds.get(scope) == "parallel":
            scope = parent.get(scope)
        scopes.setdefault(scope, []).append(e)
    return scopes


def to_state_diagram(graph: Graph) -> str:
    """The graph as a ``stateDiagram-v2`` block; title and note are ``%%``
    comments. Start nodes become ``[*]`` inside their cluster; a final node
    gets an arrow to ``[*]``; a composite state is declared with its label
    (``state "name" as id``) and then filled (``state id { ... }``), the form
    mermaid's own documentation uses for named composites."""
    starts = {n.id for n in graph.nodes if n.kind == "start"}
    scopes = _scopes(graph)
    lines = [comment(graph.title)] + [comment(line) for line in graph.note.splitlines()]
    lines += ["stateDiagram-v2", f"    direction {graph.direction}"]

    def state(n: Node, indent: str) -> list[str]:
        out = [f'{indent}state "{escape_state_label(n.label)}" as {n.id}']
        if n.kind == "final":
            out.append(f"{indent}{n.id} --> [*]")
        return out

    def block(parent: str | None, indent: str) -> list[str]:
        members = [n for n in graph.nodes if n.parent == parent and n.id not in starts]
        children = [c for c in graph.clusters if c.parent == parent]
        parallel = parent is not None and graph.cluster(parent).kind == "parallel"
        parts: list[list[str]] = [state(n, indent) for n in members]
        for c in children:
            parts.append([f'{indent}state "{escape_state_label(c.label)}" as {c.id}',
                          f"{indent}state {c.id} {{", *block(c.id, indent + "    "),
                          f"{indent}}}"])
        out: list[str] = []
        for i, part in enumerate(parts):
            if parallel and i > 0:
                out.append(f"{indent}--")
            out.extend(part)
        for e in scopes.get(parent, []):
            out.append(_edge_line(e, "[*]" if e.source in starts else e.source, indent))
        return out

    lines += block(None, "    ")
    for kind, style in _CLASSES.items():
        members = [n.id for n in graph.nodes if n.kind == kind]
        if members:
            lines.append(f"    classDef k_{kind} {style}")
            lines.append(f"    class {','.join(members)} k_{kind}")
    return "\n".join(lines) + "\n"
