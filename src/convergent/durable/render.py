"""A chart as mermaid ``stateDiagram-v2`` text (paste into any Markdown
viewer that renders mermaid) or as a graphviz ``digraph`` (``dot -Tsvg``).

The drawing itself is ``convergent.viz``'s (one picture of a statechart for
the ``diagram`` command, the inspector and this function): composite states
nest, parallel regions are separated by ``--``, history is an ``H``/``H*``
node, timers are ``after <delay>`` edges, and every name a chart file brings
(states, events, guards, roles) is escaped, since a chart is untrusted input.
"""

from __future__ import annotations

from .chart import Chart

__all__ = ["to_dot", "to_mermaid"]


def to_mermaid(chart: Chart) -> str:
    """The chart as mermaid text (``convergent.viz.statechart_graph``)."""
    from ..viz.mermaid import to_mermaid as graph_to_mermaid
    from ..viz.statechart import statechart_graph
    return graph_to_mermaid(statechart_graph(chart))


def to_dot(chart: Chart) -> str:
    """The chart as graphviz text: composite states and parallel regions as
    nested clusters (``convergent.viz.dot``)."""
    from ..viz.dot import to_dot as graph_to_dot
    from ..viz.statechart import statechart_graph
    return graph_to_dot(statechart_graph(chart))
