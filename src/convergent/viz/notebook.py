"""Jupyter display of a ``Report`` and a ``Machine`` (``_repr_html_`` and
``_repr_svg_`` call these).

Everything a spec names is escaped with ``html.escape``; the diagram is
graphviz's SVG (which escapes its text too), inlined only when ``dot`` is
installed and the state graph is small (``NOTEBOOK_MAX_STATES``). A
notebook asks for every representation each time it displays an object, so
the SVG of a machine is computed once and kept while the machine lives.
"""

from __future__ import annotations

import weakref
from html import escape
from typing import TYPE_CHECKING, Any

from .graphviz import graphviz_available, render_dot
from .dot import to_dot
from .model import Edge, Graph, Node
from .states import state_graph, state_label

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.report import Report
    from ..machine import Machine

__all__ = ["NOTEBOOK_MAX_STATES", "machine_graph", "machine_html", "machine_svg",
           "report_html"]

NOTEBOOK_MAX_STATES = 60
_SVG_CACHE: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()

_BOX = "font-family:system-ui,sans-serif;font-size:13px;line-height:1.4"
_TD = "border:1px solid #d8dde6;padding:2px 8px;text-align:left;vertical-align:top"
_BAD = "background:#fde2df;color:#b42318;font-weight:600"

def _badge(ok: bool | None) -> str:
    if ok is None:
        return '<span style="color:#6b7280">skipped</span>'
    color = "#1b7f3b" if ok else "#b42318"
    return f'<b style="color:{color}">{"pass" if ok else "fail"}</b>'

def _v(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))

def _table(head: list[str], rows: list[list[str]], styles: list[list[str]] | None = None) -> str:
    out = ['<table style="border-collapse:collapse">', "<tr>"]
    out += [f'<th style="{_TD};background:#eef1f6">{escape(h)}</th>' for h in head]
    out.append("</tr>")
    for i, row in enumerate(rows):
        out.append("<tr>")
        for j, cell in enumerate(row):
            extra = styles[i][j] if styles else ""
            out.append(f'<td style="{_TD};{extra}">{cell}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)

def _states_side_by_side(names: list[str], columns: dict[str, dict[str, Any]]) -> str:
    """var | state | ... with the cells where the last two columns differ marked."""
    keys = list(columns)
    rows, styles = [], []
    for n in names:
        vals = [columns[k].get(n) for k in keys]
        bad = len(vals) >= 2 and vals[-1] != vals[-2]
        rows.append([f"<code>{escape(n)}</code>"] + [_v(v) for v in vals])
        styles.append([""] + ["" if (not bad or i < len(vals) - 2) else _BAD
                              for i in range(len(vals))])
    return _table(["var"] + keys, rows, styles)

def report_html(report: Report) -> str:
    """Verdicts, counts and the counterexample, as one HTML block."""
    parts = [f'<div style="{_BOX}">',
             f"<div><b>{escape(report.machine)}</b>: {_badge(report.ok)} "
             f"&nbsp;<span style=\"color:#6b7280\">{escape(report.summary())}</span></div>"]
    cc1, cc2 = report.cc1, report.cc2
    rows = [["WFC", _badge(report.wfc.ok),
             escape(f"repairs end within {report.wfc.max_depth} step(s)" if report.wfc.ok
                    else "repairs loop")],
            ["CC1", _badge(cc1.ok if cc1 else None),
             escape(f"{cc1.pairs} pair(s), scope {cc1.scope}" if cc1 else "")],
            ["CC2", _badge(cc2.ok if cc2 else None),
             "required" if report.strict else "required only with --strict"]]
    s = report.states
    parts.append(_table(["check", "verdict", "detail"], rows))
    parts.append(f"<div>{s.total} states, {s.valid} valid, "
                 f"{s.reachable if s.reachable is not None else '?'} reachable</div>")
    names = list(report.initial)
    wfc = report.wfc.counterexample
    if wfc is not None:
        trace = " → ".join(escape(e) for e in (wfc.trace or [])) or "(the initial state)"
        parts.append(f"<div><b>Repairs loop</b> after: {trace}</div>")
        cols = {f"{i + 1}. then repair {r}": st for i, (st, r) in
                enumerate(zip(wfc.cycle, wfc.repairs))}
        parts.append(_states_side_by_side(names, cols))
    elif cc1 is not None and (cex := cc1.counterexample or cc1.counterexample_all_valid):
        a, b = cex.events
        trace = ("initial → " + " → ".join(escape(e) for e in cex.trace)
                 if cex.trace is not None else "(not reachable; a valid state)")
        parts.append(f"<div><b>{escape(a)}</b> and <b>{escape(b)}</b> do not commute; "
                     f"reached by {trace}</div>")
        parts.append(_states_side_by_side(names, {
            "state": cex.state, f"{a} then {b}": cex.order1, f"{b} then {a}": cex.order2}))
    elif cc2 is not None and cc2.counterexample is not None:
        c = cc2.counterexample
        parts.append(f"<div>CC2: <b>{escape(c.event)}</b> does not commute with a repair</div>")
        parts.append(_states_side_by_side(names, {
            "invalid state": c.state, "event, then repairs": c.direct,
            "one repair, then event": c.after_repair}))
    parts.append("</div>")
    return "".join(parts)

def machine_graph(machine: Machine, *, max_states: int = NOTEBOOK_MAX_STATES) -> Graph | None:
    """The machine's reachable graph: with repairs when it still has its
    analysis, else from its step tables alone (edges that change the state)."""
    an = machine._analysis
    if an is not None:
        return state_graph(an, max_states=max_states)
    init = machine.initial.id
    seen = {init: None}
    frontier = [init]
    edges: dict[tuple[int, int], list[str]] = {}
    while frontier:
        nxt = []
        for sid in frontier:
            for e, name in enumerate(machine.events):
                t = int(machine.tables[e, sid])
                if t == sid:
                    continue
                edges.setdefault((sid, t), []).append(name)
                if t not in seen:
                    seen[t] = None
                    if len(seen) > max_states:
                        return None
                    nxt.append(t)
        frontier = nxt
    nodes = tuple(Node(f"s{s}", state_label(machine.decode(s)), "state", initial=s == init)
                  for s in seen)
    return Graph(f"{machine.name}: reachable states", "states", nodes,
                 tuple(Edge(f"s{a}", f"s{b}", ", ".join(n)) for (a, b), n in edges.items()),
                 "from the step tables (no repair information in a loaded machine)")

def machine_svg(machine: Machine) -> str | None:
    """The state graph as inline SVG, or None (no graphviz, or too big)."""
    if machine in _SVG_CACHE:
        return _SVG_CACHE[machine]
    svg = None
    if graphviz_available():
        graph = machine_graph(machine)
        if graph is not None:
            text = render_dot(to_dot(graph), "svg").decode("utf-8")
            svg = text[text.find("<svg"):]
    _SVG_CACHE[machine] = svg
    return svg

def machine_html(machine: Machine) -> str:
    verdict = machine.report.verdict if machine.report is not None \
        else machine.meta.get("verdict")
    parts = [f'<div style="{_BOX}">',
             f"<div><b>Machine {escape(machine.name)}</b> "
             f"{_badge(None if verdict is None else verdict == 'pass')} &nbsp;"
             f"{len(machine.vars)} vars, {len(machine.events)} events, "
             f"{machine.size} states</div>"]
    rows = [[f"<code>{escape(v.name)}</code>", escape(v.describe()),
             _v(machine.initial[v.name])] for v in machine.vars]
    parts.append(_table(["var", "domain", "initial"], rows))
    parts.append("<div>events: " + ", ".join(f"<code>{escape(e)}</code>"
                                             for e in machine.events) + "</div>")
    svg = machine_svg(machine)
    if svg is not None:
        parts.append(f'<div style="overflow:auto;max-height:480px">{svg}</div>')
    else:
        reason = ("graphviz's dot is not installed" if not graphviz_available()
                  else f"more than {NOTEBOOK_MAX_STATES} reachable states")
        parts.append(f'<div style="color:#6b7280">no diagram: {escape(reason)} '
                     "(convergent diagram draws any machine)</div>")
    parts.append("</div>")
    return "".join(parts)

