"""A durable statechart as a ``Graph``: its structure, not its reachable
configurations.

- an atomic state is a node; a **final** state a node with a double border
  (mermaid: an arrow to ``[*]``);
- a **compound** state is a cluster holding its children, with a start dot
  pointing at its initial child; a **parallel** state a dashed cluster whose
  children are its regions (mermaid: separated by ``--``);
- **history** is a small ``H`` (shallow) or ``H*`` (deep) node inside the
  compound state that resumes;
- a transition is an edge labelled ``event [guard] {roles}``; a **timer** a
  dashed amber edge labelled ``after 15m``; a targetless transition (actions
  only, nothing exits) a dotted loop;
- a sensitive state has a thick border and says so, with the roles that may
  enter it; ``stuck_after`` is shown under the name.

Only the chart's data is read: its guards and actions never run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from .model import Cluster, Edge, EdgeStyle, Graph, Node, NodeKind

if TYPE_CHECKING:  # pragma: no cover
    from ..durable.chart import Chart, StateDef, Transition

__all__ = ["TIMER_COLOR", "delay_text", "statechart_graph", "transition_label"]

#: the colour of timer edges (the same amber as var nodes elsewhere)
TIMER_COLOR = "#a07800"


def delay_text(d: timedelta) -> str:
    """``15m``, ``2h``, ``1d``, ``1.5s``: the largest unit that divides it."""
    ms = round(d.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{d.total_seconds():g}s"


def transition_label(t: Transition) -> str:
    """``event [guard] {role, role}``, or ``after 15m [guard]`` for a timer."""
    label = f"after {delay_text(t.after)}" if t.after is not None else t.event
    if t.guard is not None:
        label += f" [{t.guard.text}]"
    if t.roles:
        label += " {" + ", ".join(sorted(t.roles)) + "}"
    if t.target is None:
        label += " (internal)"
    return label


def _lines(s: StateDef) -> tuple[str, ...]:
    lines = [s.name]
    if s.sensitive or s.entry_roles:
        roles = f" ({', '.join(sorted(s.entry_roles))})" if s.entry_roles else ""
        lines.append(f"sensitive{roles}")
    if s.stuck_after is not None:
        lines.append(f"stuck after {delay_text(s.stuck_after)}")
    return tuple(lines)


def statechart_graph(chart: Chart) -> Graph:
    """The diagram of ``chart``: states, nesting, regions, history, timers."""
    from ..durable.chart import ROOT
    states = [s for s in chart.states.values() if s.name != ROOT]
    ids: dict[str, str] = {}
    for i, s in enumerate(states):
        ids[s.name] = f"k{i}" if s.kind in ("compound", "parallel") else f"n{i}"

    def parent_of(s: StateDef) -> str | None:
        return None if s.parent == ROOT else ids[s.parent]

    nodes: list[Node] = []
    clusters: list[Cluster] = []
    edges: list[Edge] = []
    root = chart.states[ROOT]
    if root.initial is not None:
        nodes.append(Node("i_root", ("",), "start"))
        edges.append(Edge("i_root", ids[root.initial]))
    histories = set()
    for s in states:
        sid = ids[s.name]
        if s.kind in ("compound", "parallel"):
            clusters.append(Cluster(sid, _lines(s), s.kind, parent_of(s)))
            if s.kind == "compound" and s.initial is not None:
                nodes.append(Node(f"i{sid}", ("",), "start", parent=sid))
                edges.append(Edge(f"i{sid}", ids[s.initial]))
            if s.history != "none":
                histories.add(s.history)
                mark = "H*" if s.history == "deep" else "H"
                nodes.append(Node(f"h{sid}", (mark,), "history", parent=sid))
        else:
            kind: NodeKind = "final" if s.kind == "final" else "state"
            nodes.append(Node(sid, _lines(s), kind, parent=parent_of(s),
                              emphasis=s.sensitive or bool(s.entry_roles)))
    for t in chart.transitions:
        style: EdgeStyle = "solid"
        color = None
        if t.after is not None:
            style, color = "dashed", TIMER_COLOR
        elif t.target is None:
            style = "dotted"
        target = t.target if t.target is not None else t.source
        edges.append(Edge(ids[t.source], ids[target], transition_label(t), style, color))
    notes = []
    if histories:
        notes.append("H: resumes the last active child (shallow history); "
                     "H*: the last active configuration (deep history)")
    if any(t.after is not None for t in chart.transitions):
        notes.append("dashed amber edges are timers, armed on entry to their source")
    return Graph(f"{chart.name}: statechart v{chart.version}", "statechart", tuple(nodes),
                 tuple(edges), "\n".join(notes), "LR", tuple(clusters))
