"""The public names of convergent.viz and convergent.web are pinned."""

from __future__ import annotations

import pytest

import convergent.viz as viz


def test_viz_exports() -> None:
    assert viz.__all__ == sorted(viz.__all__, key=lambda n: (not n.isupper(), n))
    assert set(viz.__all__) == {
        "DEFAULT_MAX_STATES", "FORMATS", "Cluster", "DiagramError", "Edge", "Graph", "GraphvizError",
        "Node", "RepairStep", "Stepper", "Transition", "footprint_graph", "graph_for",
        "graphviz_available", "load_chart_file", "render", "render_dot", "schema_graph",
        "state_graph", "statechart_graph", "to_dot", "to_mermaid"}
    for name in viz.__all__:
        assert hasattr(viz, name)


def test_web_exports() -> None:
    pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
    import convergent.web as web
    assert web.__all__ == sorted(web.__all__, key=lambda n: (n[0].islower(), n))
    assert set(web.__all__) == {"Explorer", "Inspection", "NoReachableGraph", "QueryError",
                                "counterexamples", "create_app", "inspect_spec"}
    for name in web.__all__:
        assert hasattr(web, name)


def test_errors_are_convergent_errors() -> None:
    from convergent.errors import ConvergentError
    assert issubclass(viz.GraphvizError, viz.DiagramError)
    assert issubclass(viz.DiagramError, ConvergentError)
