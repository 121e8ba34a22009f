"""Diagrams of machines: a plain ``Graph`` model, builders, and renderers.

::

    from convergent.viz import graph_for, to_mermaid, render
    an = analyze(spec)
    print(to_mermaid(graph_for(an)))          # state graph, or footprint graph if big
    svg = render(graph_for(an), "svg")        # needs graphviz's `dot`
"""

from __future__ import annotations

from .dot import to_dot
from .errors import DiagramError, GraphvizError
from .footprint import footprint_graph
from .graphviz import graphviz_available, render_dot
from .mermaid import to_mermaid
from .model import Edge, Graph, Node
from .schema import schema_graph
from .select import FORMATS, graph_for, render
from .states import DEFAULT_MAX_STATES, state_graph
from .stepper import RepairStep, Stepper, Transition

__all__ = [
    "DEFAULT_MAX_STATES",
    "FORMATS",
    "DiagramError",
    "Edge",
    "Graph",
    "GraphvizError",
    "Node",
    "RepairStep",
    "Stepper",
    "Transition",
    "footprint_graph",
    "graph_for",
    "graphviz_available",
    "render",
    "render_dot",
    "schema_graph",
    "state_graph",
    "to_dot",
    "to_mermaid",
]
