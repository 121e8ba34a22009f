"""``verify(chart)``: hand the finite part of a chart to the core engine.

The finite part is the configuration (for each compound state with more
than one child, an enum var holding the child it is in or will resume) and
the chart's declared vars. Each event becomes one engine event whose apply
is the chart's own step function (``_semantics.step``), so the engine checks
exactly what runs. Opaque (callable) guards cannot be evaluated on a finite
state: an event guarded by ``k`` of them becomes ``k + 1`` engine events
(``<event>__0`` .. ``<event>__k``: the i-th opaque guard holds, or none),
an over-approximation that keeps every real behaviour. ``emit`` and ``call``
actions are side effects outside the finite part and are not run.

The engine then proves its usual properties: WFC (trivial here: charts
declare no invariants), and CC1 for every pair the chart declared
``independent`` — typically events of different parallel regions, which
must commute for the regions to be truly orthogonal. The returned
``Report`` also counts the reachable configurations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..engine.report import Report
from ..spec.model import StateView
from ..spec.registry import Registry
from ._semantics import Config, initial_config, step
from .chart import ROOT, Chart, Transition

__all__ = ["to_registry", "verify"]


def _config_vars(chart: Chart) -> dict[str, str]:
    """compound state -> engine var name, for compounds with a choice."""
    taken = {v.name for v in chart.vars}
    out: dict[str, str] = {}
    for s in chart.states.values():
        if s.kind != "compound" or len(s.children) < 2:
            continue
        base = "in_root" if s.name == ROOT else f"in_{s.name}"
        name = base
        while name in taken:
            name += "_"
        taken.add(name)
        out[s.name] = name
    return out


def _engine_name(event: str, taken: set[str]) -> str:
    base = event.replace(".", "_").replace(":", "_").replace("-", "_")
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def to_registry(chart: Chart) -> tuple[Registry, dict[str, list[str]]]:
    """The engine model of the chart's finite part, and for each chart event
    the engine events standing for it."""
    cvars = _config_vars(chart)
    r = Registry(chart.name, version=chart.version)
    for comp, name in cvars.items():
        r.enum(name, *chart.states[comp].children)
    for v in chart.vars:
        if v.kind == "bool":
            r.bool(v.name)
        elif v.kind == "enum":
            r.enum(v.name, *v.values)
        else:
            r.int(v.name, v.lo, v.hi)
    init = initial_config(chart)
    r.initial({**{cvars[c]: init.memory[c] for c in cvars}, **chart.initial_vars})
    singles = {c: ch for c, ch in init.memory.items() if c not in cvars}

    def decode(s: StateView) -> Config:
        memory = dict(singles)
        for comp, name in cvars.items():
            memory[comp] = s[name]
        return Config(memory, {v.name: s[v.name] for v in chart.vars}, {})

    def make_apply(event: str, oracle: Callable[[Transition], bool]) -> Callable[[StateView],
                                                                                 StateView]:
        def apply(s: StateView) -> StateView:
            cfg = decode(s)
            out = step(chart, cfg, event, oracle=oracle).config
            for comp, name in cvars.items():
                if out.memory[comp] != cfg.memory[comp]:
                    s = s.set(name, out.memory[comp])
            for v in chart.vars:
                if out.vars[v.name] != cfg.vars[v.name]:
                    s = s.set(v.name, out.vars[v.name])
            return s
        return apply

    taken: set[str] = set()
    names: dict[str, list[str]] = {}
    for event in sorted(chart.events):
        if event.startswith("done."):
            continue  # raised and handled inside a step
        opaque = [t for t in chart.transitions_on(event)
                  if t.guard is not None and t.guard.fn is not None]
        if not opaque:
            n = _engine_name(event, taken)
            r.event(n, apply=make_apply(event, lambda t: True))
            names[event] = [n]
            continue
        variants = []
        for k in range(len(opaque) + 1):
            chosen = opaque[k] if k < len(opaque) else None
            n = _engine_name(f"{event}__{k}", taken)
            r.event(n, apply=make_apply(event, _oracle(chosen)))
            variants.append(n)
        names[event] = variants
    return r, names


def _oracle(chosen: Transition | None) -> Callable[[Transition], bool]:
    def holds(t: Transition) -> bool:
        return t is chosen
    return holds


def verify(chart: Chart, *, scope: str = "reachable") -> Report:
    """Verify the finite part through the core engine; never raises on a
    failed proof (read ``report.verdict``; ``report.cc1`` has the
    counterexample of a declared independent pair that does not commute)."""
    from ..engine.check import check
    registry, names = to_registry(chart)
    spec = registry.spec()
    pairs: list[tuple[str, str]] = []
    for a, b in chart.independent:
        for x in names.get(a, []):
            for y in names.get(b, []):
                if x != y and (x, y) not in pairs and (y, x) not in pairs:
                    pairs.append((x, y))
    spec = dataclasses.replace(spec, independent=tuple(pairs), independent_all=False)
    report: Any = check(spec, scope=scope)
    assert isinstance(report, Report)
    return report
