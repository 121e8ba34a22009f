"""Diagrams of machines: a plain ``Graph`` model, builders, and renderers.

::

    from convergent.viz import graph_for, to_mermaid, render
    an = analyze(spec)
    print(to_mermaid(graph_for(an)))          # state graph, or footprint graph if big
    svg = render(graph_for(an), "svg")        # needs graphviz's `dot`
    chart = load_chart_file("order.yaml")     # a durable statechart
    print(to_mermaid(statechart_graph(chart)))  # stateDiagram-v2
"""

from __future__ import annotations

from .chartfile import load_chart_file
from .dot import to_dot
from .errors import DiagramError, GraphvizError
from .footprint import footprint_graph
from .graphviz import graphviz_available, render_dot
from .mermaid import to_mermaid
from .model import Cluster, Edge, Graph, Node
from .schema import schema_graph
from .select import FORMATS, graph_for, render
from .statechart import statechart_graph
from .states import DEFAULT_MAX_STATES, state_graph
from .stepper import RepairStep, Stepper, Transition

__all__ = [
    "DEFAULT_MAX_STATES",
    "FORMATS",
    "Cluster",
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
    "load_chart_file",
    "render",
    "render_dot",
    "schema_graph",
    "state_graph",
    "statechart_graph",
    "to_dot",
    "to_mermaid",
]
