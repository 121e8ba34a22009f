"""One machine under inspection: its analysis, and every view the API serves.

Built once when the server starts (the proof runs then, as for ``convergent
check``); after that every request only reads. Views are computed on first
use and kept, except the per-state ones, which are cheap.
"""

from __future__ import annotations

import threading
from typing import Any

from ..engine.check import Analysis, analyze
from ..spec.model import MachineSpec
from ..viz.graphviz import graphviz_available
from ..viz.select import graph_for, render
from ..viz.states import DEFAULT_MAX_STATES, neighborhood_graph
from ..viz.stepper import Stepper
from .explorer import Explorer, NoReachableGraph, QueryError
from .playback import counterexamples

__all__ = ["Inspection", "inspect_spec"]

DIAGRAM_FORMATS = ("svg", "dot", "mermaid")


class Inspection:
    """The inspector's read-only view of one analyzed machine."""

    def __init__(self, index: int, source: str, analysis: Analysis, *,
                 max_states: int = DEFAULT_MAX_STATES) -> None:
        self.index = index
        self.source = source
        self.analysis = analysis
        self.report = analysis.report
        self.stepper = Stepper(analysis)
        self.max_states = max_states
        self._explorer: Explorer | None = None
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ views

    def summary(self) -> dict[str, Any]:
        return {"id": self.index, "source": self.source, "machine": self.report.machine,
                "verdict": self.report.verdict, "summary": self.report.summary()}

    def report_view(self) -> dict[str, Any]:
        out = self.report.to_dict()
        out["summary"] = self.report.summary()
        out["source"] = self.source
        out["vars"] = [v.to_dict() for v in self.stepper.vars]
        out["explorable"] = self.analysis.reach is not None
        out["graphviz"] = graphviz_available()
        return out

    def counterexamples(self) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = self._cached(
            "cex", lambda: counterexamples(self.stepper, self.report))
        return got

    def explorer(self) -> Explorer:
        if self._explorer is None:
            with self._lock:
                if self._explorer is None:
                    self._explorer = Explorer(self.analysis, self.stepper)
        return self._explorer

    def states(self, query: str, page: int, size: int) -> dict[str, Any]:
        return self.explorer().page(query, page, size)

    def state(self, sid: int) -> dict[str, Any]:
        if self.analysis.reach is None:
            raise NoReachableGraph()
        return self.explorer().state(sid)

    def diagram(self, fmt: str) -> bytes:
        """The machine's diagram (state graph if small, else footprints)."""
        if fmt not in DIAGRAM_FORMATS:
            raise QueryError(f"format={fmt!r} (expected one of {', '.join(DIAGRAM_FORMATS)})")
        graph = self._cached("graph", lambda: graph_for(self.analysis,
                                                        max_states=self.max_states))
        data: bytes = self._cached(f"diagram.{fmt}", lambda: render(graph, fmt))
        return data

    def state_diagram(self, sid: int, fmt: str) -> bytes:
        """One state and its neighbours (successors with repairs, predecessors)."""
        if fmt not in DIAGRAM_FORMATS:
            raise QueryError(f"format={fmt!r} (expected one of {', '.join(DIAGRAM_FORMATS)})")
        detail = self.state(sid)
        preds = [(p["event"], p["id"]) for p in detail["predecessors"]]
        graph = neighborhood_graph(self.stepper, sid, predecessors=preds,
                                   initial=self.analysis.initial_id)
        return render(graph, fmt)

    def _cached(self, key: str, make: Any) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]


def inspect_spec(index: int, source: str, spec: MachineSpec, *,
                 max_states: int = DEFAULT_MAX_STATES) -> Inspection:
    """Verify ``spec`` (as ``convergent check`` does) and wrap it for the inspector."""
    return Inspection(index, source, analyze(spec), max_states=max_states)
