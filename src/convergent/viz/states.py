"""The reachable state graph: states as nodes, events as edges, repairs dashed.

Each reachable (valid, normalized) state is a node. An event that fires there
is an edge to the state its assignment produces; when that state breaks an
invariant it is drawn as an *invalid* node, followed by one dashed edge per
repair (labelled with the invariant) until the valid normal form. Events with
the same source and target share one edge. Past ``max_states`` nodes the
graph would not be readable; ``state_graph`` then returns None and callers
draw the footprint graph instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine.check import Analysis
from ..engine.decode import full_to_state
from .model import Edge, Graph, Node
from .stepper import Stepper

__all__ = ["DEFAULT_MAX_STATES", "neighborhood_graph", "state_graph", "state_label"]

DEFAULT_MAX_STATES = 200
"""The most nodes (reachable plus intermediate invalid states) a state graph
draws; past it a picture is a hairball and the footprint graph says more."""


def state_label(state: dict[str, Any]) -> tuple[str, ...]:
    """One ``var=value`` line per var (booleans as true/false, like the spec)."""
    return tuple(f"{k}={_fmt(v)}" for k, v in state.items())


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def state_graph(an: Analysis, *, max_states: int = DEFAULT_MAX_STATES) -> Graph | None:
    """The reachable graph of ``an``, or None when WFC fails (there is no
    reachable set) or when it has more than ``max_states`` nodes."""
    if an.step is None or an.reach is None or an.initial_id is None:
        return None
    if len(an.reach) > max_states:
        return None
    st = Stepper(an)
    reach = np.asarray(an.reach, dtype=np.int64)
    nodes: dict[int, bool] = {int(s): True for s in reach}    # id -> valid
    labels: dict[tuple[int, int, str], list[str]] = defaultdict(list)
    order: list[tuple[int, int, str]] = []

    def edge(src: int, dst: int, label: str, kind: str) -> None:
        key = (src, dst, kind)
        if key not in labels:
            order.append(key)
        if label not in labels[key]:
            labels[key].append(label)

    repaired: set[int] = set()
    for e, name in enumerate(st.events):
        fires, raw = st.raw_many(e, reach)
        for src, ok, dst in zip(reach.tolist(), fires.tolist(), raw.tolist()):
            if not ok:
                continue
            edge(src, dst, name, "event")
            if dst in nodes:
                continue
            # an invalid raw state: draw its repairs once
            nodes[dst] = False
            if len(nodes) > max_states:
                return None
            cur = dst
            while cur not in repaired:
                repaired.add(cur)
                r = st.repair(cur)
                if r is None:  # pragma: no cover - a raw state outside reach is invalid
                    break
                edge(cur, r.state, r.invariant, "repair")
                if r.state not in nodes:
                    nodes[r.state] = st.valid(r.state)
                    if len(nodes) > max_states:
                        return None
                cur = r.state
    cm = an.compiled
    out_nodes = [Node(f"s{sid}", state_label(full_to_state(cm, sid)),
                      "state" if valid else "invalid", initial=sid == an.initial_id)
                 for sid, valid in nodes.items()]
    out_edges = []
    for src, dst, kind in order:
        text = ", ".join(labels[(src, dst, kind)])
        if kind == "repair":
            out_edges.append(Edge(f"s{src}", f"s{dst}", f"repair {text}", "dashed", "#b03030"))
        else:
            out_edges.append(Edge(f"s{src}", f"s{dst}", text))
    n_invalid = sum(1 for v in nodes.values() if not v)
    note = (f"{len(reach)} reachable states, {n_invalid} invalid intermediate states, "
            f"{len(out_edges)} edges")
    return Graph(f"{cm.spec.name}: reachable states", "states", tuple(out_nodes),
                 tuple(out_edges), note)


def neighborhood_graph(st: Stepper, sid: int, *,
                       predecessors: Sequence[tuple[str, int]] = (),
                       initial: int | None = None) -> Graph:
    """One state, every event's way out of it (the raw state and its
    repairs), and the given predecessors: a readable piece of a state graph
    too big to draw whole. The state itself has a thick border."""
    sid = st.check_id(sid)
    nodes: dict[int, bool] = {sid: st.valid(sid)}
    labels: dict[tuple[int, int, str], list[str]] = defaultdict(list)

    def edge(src: int, dst: int, label: str, kind: str) -> None:
        if label not in labels[(src, dst, kind)]:
            labels[(src, dst, kind)].append(label)

    for name, p in predecessors:
        nodes.setdefault(p, True)
        edge(p, sid, name, "event")
    for e in range(len(st.events)):
        t = st.apply(e, sid)
        if not t.fired:
            continue
        edge(sid, t.raw, t.event, "event")
        nodes.setdefault(t.raw, st.valid(t.raw))
        prev = t.raw
        for r in t.repairs:
            edge(prev, r.state, f"repair {r.invariant}", "repair")
            nodes.setdefault(r.state, st.valid(r.state))
            prev = r.state
    out_nodes = tuple(Node(f"s{s}", state_label(st.decode(s)), "state" if ok else "invalid",
                           initial=s == initial, emphasis=s == sid)
                      for s, ok in nodes.items())
    out_edges = tuple(
        Edge(f"s{a}", f"s{b}", ", ".join(names), "dashed", "#b03030") if kind == "repair"
        else Edge(f"s{a}", f"s{b}", ", ".join(names))
        for (a, b, kind), names in labels.items())
    return Graph(f"state #{sid} and its neighbours", "states", out_nodes, out_edges)
