"""The plain graph every diagram is drawn from.

Builders (``states``, ``footprint``, ``schema``) turn a machine into a
``Graph``; renderers (``mermaid``, ``dot``) turn a ``Graph`` into text. Node
ids are made by the builders (``s12``, ``v0``, ...) and are always safe
identifiers; labels come from the spec and are untrusted, so only the
renderers, which escape them for their format, ever write them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Arrow", "Edge", "EdgeStyle", "Graph", "Node", "NodeKind"]

#: what a node stands for; renderers map each kind to one look
NodeKind = Literal["state", "invalid", "var", "event", "invariant", "schema_state", "start"]
EdgeStyle = Literal["solid", "dashed", "dotted", "bold"]
Arrow = Literal["normal", "tee", "none"]


@dataclass(frozen=True)
class Node:
    """One node: ``lines`` is its label, one entry per line."""

    id: str
    lines: tuple[str, ...]
    kind: NodeKind
    initial: bool = False
    #: drawn with a thicker border (a failing event, an ``auto`` state)
    emphasis: bool = False

    @property
    def label(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    style: EdgeStyle = "solid"
    color: str | None = None
    arrow: Arrow = "normal"


@dataclass(frozen=True)
class Graph:
    """A diagram's content. ``kind`` says which builder made it; ``note``
    explains a choice the reader should know of (e.g. why the footprint graph
    is shown instead of the state graph)."""

    title: str
    kind: Literal["states", "footprint", "schema"]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    note: str = ""
    direction: Literal["LR", "TB"] = "LR"

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)
