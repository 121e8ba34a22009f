"""A relational schema as a graph: its states and the relations between them.

``require``: solid arrow; ``remove``: red arrow ending in a bar; ``add``:
dashed green arrow; ``after``: dotted grey arrow. ``auto`` states have a
thick border; ``multi`` states are marked in their label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import Arrow, Edge, EdgeStyle, Graph, Node

if TYPE_CHECKING:  # pragma: no cover
    from ..relational.schema import Schema

__all__ = ["schema_graph"]

_STYLE: dict[str, tuple[EdgeStyle, str | None, Arrow]] = {
    "require": ("solid", None, "normal"),
    "remove": ("solid", "#c00000", "tee"),
    "add": ("dashed", "#2a7a2a", "normal"),
    "after": ("dotted", "#777777", "normal"),
}


def schema_graph(schema: Schema) -> Graph:
    ids = {name: f"r{i}" for i, name in enumerate(schema.names)}
    nodes = []
    edges = []
    for name, state in schema.items():
        lines = (name, "(multi)") if state.multi else (name,)
        nodes.append(Node(ids[name], lines, "schema_state", emphasis=state.auto))
        for rel, (style, color, arrow) in _STYLE.items():
            for target in getattr(state, rel):
                edges.append(Edge(ids[name], ids[target], rel, style, color, arrow))
    return Graph(f"{schema.name}: relations", "schema", tuple(nodes), tuple(edges),
                 "auto states have a thick border")
