"""Which picture a machine gets, and in which format.

``diagram`` is what ``convergent diagram`` and the inspector call: the
reachable state graph when it has at most ``max_states`` nodes, else the
footprint graph (with a note saying why); a relational schema gets its
relation graph.
"""

from __future__ import annotations

from typing import Any

from ..engine.check import Analysis, analyze, check
from ..spec.model import MachineSpec
from .dot import to_dot
from .footprint import footprint_graph
from .errors import DiagramError
from .graphviz import IMAGE_FORMATS, render_dot
from .mermaid import to_mermaid
from .model import Graph
from .states import DEFAULT_MAX_STATES, state_graph

__all__ = ["ENUMERATE_UP_TO", "FORMATS", "graph_for", "graph_for_spec", "render",
           "schema_graph_for"]

FORMATS = ("mermaid", "dot", "svg", "png")

ENUMERATE_UP_TO = 1 << 22
"""Past this many states a machine is not enumerated for a picture: its
state graph could not be drawn anyway, and the footprint graph only needs
the report, which ``check`` may prove without building whole tables."""


def graph_for_spec(spec: MachineSpec, *, max_states: int = DEFAULT_MAX_STATES,
                   kind: str = "auto") -> Graph:
    """``graph_for`` from a spec: enumerated when small enough, else the
    footprint graph of its report."""
    size = 1
    for v in spec.vars:
        size *= v.size
    if size <= ENUMERATE_UP_TO:
        return graph_for(analyze(spec), max_states=max_states, kind=kind)
    why = f"the machine has {size:,} states"
    if kind == "states":
        raise DiagramError(f"no state graph: {why}; draw --kind footprint")
    report = check(spec)
    note = "" if kind == "footprint" else f"footprint graph: {why}"
    return footprint_graph(report, [v.name for v in spec.vars], note=note)


def graph_for(an: Analysis, *, max_states: int = DEFAULT_MAX_STATES,
              kind: str = "auto") -> Graph:
    """The state graph of ``an`` if it is small enough (``kind="auto"``), or
    the one ``kind`` names (``"states"``, ``"footprint"``)."""
    if kind not in ("auto", "states", "footprint"):
        raise ValueError(f"kind={kind!r} (expected 'auto', 'states' or 'footprint')")
    var_names = [v.name for v in an.compiled.m.vars]
    if kind != "footprint":
        g = state_graph(an, max_states=max_states)
        if g is not None:
            return g
        if an.step is None:
            why = "normalization does not terminate (WFC fails): there is no reachable graph"
        else:
            assert an.reach is not None
            why = (f"the reachable graph has more than {max_states} nodes "
                   f"({len(an.reach)} reachable states)")
        if kind == "states":
            raise DiagramError(f"no state graph: {why}; raise --max-states or draw "
                                "--kind footprint")
        return footprint_graph(an.report, var_names, note=f"footprint graph: {why}")
    return footprint_graph(an.report, var_names)


def schema_graph_for(schema: Any) -> Graph:
    from .schema import schema_graph
    return schema_graph(schema)


def render(graph: Graph, fmt: str) -> bytes:
    """``graph`` as ``fmt`` (mermaid and dot are UTF-8 text)."""
    if fmt == "mermaid":
        return to_mermaid(graph).encode("utf-8")
    if fmt == "dot":
        return to_dot(graph).encode("utf-8")
    if fmt in IMAGE_FORMATS:
        return render_dot(to_dot(graph), fmt)
    raise ValueError(f"format={fmt!r} (expected one of {', '.join(FORMATS)})")
