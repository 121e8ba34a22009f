"""The footprint graph: which variables each event and invariant really
touches, drawn from a ``Report`` (so it exists for any machine the engine can
check, however many states it has).

Vars are ellipses, events boxes, invariants hexagons. ``var -> event``: the
event reads it; ``event -> var``: writes it (bold); ``var -> invariant``: the
invariant watches it (dotted); ``invariant -> var``: its repair writes it
(dashed, red). A declared independent pair that fails CC1 is a red line
between its two events.
"""

from __future__ import annotations

from ..engine.report import Report
from .model import Edge, Graph, Node

__all__ = ["footprint_graph"]


def footprint_graph(report: Report, vars: list[str] | tuple[str, ...] | None = None,
                    *, note: str = "") -> Graph:
    """The footprint graph of ``report``; ``vars`` (the machine's var names,
    in order) adds the vars that nothing reads or writes."""
    var_ids: dict[str, str] = {}

    def var(name: str) -> str:
        if name not in var_ids:
            var_ids[name] = f"v{len(var_ids)}"
        return var_ids[name]

    for name in vars or ():
        var(name)
    nodes: list[Node] = []
    edges: list[Edge] = []
    failing: set[str] = set()
    if report.cc1 is not None:
        for a, b in report.cc1.failing_pairs + report.cc1.failing_pairs_all_valid:
            failing.update((a, b))
    ev_ids = {name: f"e{i}" for i, name in enumerate(report.footprints)}
    for name, fp in report.footprints.items():
        nodes.append(Node(ev_ids[name], (name,), "event", emphasis=name in failing))
        for r in fp.get("reads", []):
            edges.append(Edge(var(r), ev_ids[name], "", "solid", "#777777"))
        for w in fp.get("writes", []):
            edges.append(Edge(ev_ids[name], var(w), "", "bold", "#1f5fa8"))
    for i, (name, fp) in enumerate(report.invariant_footprints.items()):
        nid = f"i{i}"
        nodes.append(Node(nid, (name,), "invariant"))
        for r in fp.get("watches", []):
            edges.append(Edge(var(r), nid, "", "dotted", "#777777"))
        for w in fp.get("repair_writes", []):
            edges.append(Edge(nid, var(w), "repair", "dashed", "#b03030"))
    seen_pairs: set[frozenset[str]] = set()
    if report.cc1 is not None:
        for a, b in report.cc1.failing_pairs + report.cc1.failing_pairs_all_valid:
            key = frozenset((a, b))
            if key in seen_pairs or a not in ev_ids or b not in ev_ids:
                continue
            seen_pairs.add(key)
            edges.append(Edge(ev_ids[a], ev_ids[b], "CC1 fails", "bold", "#c00000", "none"))
    nodes = [Node(nid, (name,), "var") for name, nid in var_ids.items()] + nodes
    legend = ("arrow from a var to an event: reads it; from an event to a var (bold): "
              "writes it; to an invariant (dotted): watched; from an invariant (dashed): "
              "its repair writes it")
    return Graph(f"{report.machine}: footprints", "footprint", tuple(nodes), tuple(edges),
                 f"{note}\n{legend}" if note else legend)
