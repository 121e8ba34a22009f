"""The plain graph every diagram is drawn from.

Builders (``states``, ``footprint``, ``schema``, ``statechart``) turn a
machine into a ``Graph``; renderers (``mermaid``, ``dot``) turn a ``Graph`` into text. Node
ids are made by the builders (``s12``, ``v0``, ...) and are always safe
identifiers; labels come from the spec and are untrusted, so only the
renderers, which escape them for their format, ever write them out.

A statechart's composite states are ``Cluster``s: a node (or a cluster)
names the cluster it sits in with ``parent``, and an edge may start or end
at a cluster (a transition out of, or into, a composite state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Arrow", "Cluster", "ClusterKind", "Edge", "EdgeStyle", "Graph", "Node", "NodeKind"]

#: what a node stands for; renderers map each kind to one look
NodeKind = Literal["state", "invalid", "var", "event", "invariant", "schema_state", "start",
                   "final", "history"]
#: ``compound``: one child active at a time; ``parallel``: all children (its
#: regions) active together
ClusterKind = Literal["compound", "parallel"]
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
    #: the id of the ``Cluster`` it is drawn in (None: the top level)
    parent: str | None = None

    @property
    def label(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Cluster:
    """A box drawn around nodes and smaller clusters (a composite state)."""

    id: str
    lines: tuple[str, ...]
    kind: ClusterKind
    parent: str | None = None

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
    kind: Literal["states", "footprint", "schema", "statechart"]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    note: str = ""
    direction: Literal["LR", "TB"] = "LR"
    clusters: tuple[Cluster, ...] = ()

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def cluster(self, cluster_id: str) -> Cluster:
        for c in self.clusters:
            if c.id == cluster_id:
                return c
        raise KeyError(cluster_id)

    def within(self, item_id: str, cluster_id: str) -> bool:
        """Whether the node or cluster ``item_id`` is ``cluster_id`` or lies
        inside it (at any depth)."""
        parents = {n.id: n.parent for n in self.nodes}
        parents.update({c.id: c.parent for c in self.clusters})
        current: str | None = item_id
        seen = 0
        while current is not None and seen <= len(parents):
            if current == cluster_id:
                return True
            current = parents.get(current)
            seen += 1
        return False
