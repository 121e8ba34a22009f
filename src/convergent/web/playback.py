"""Counterexamples as something to play: every step from the initial state,
each repair shown, then the two orders side by side.

The report says *what* went wrong (two final states, a repair cycle); the
player shows *how*, by replaying the report's trace with the machine's own
tables (``viz.Stepper``). A replay that does not land where the report says
is flagged in ``problems`` instead of being shown as if it did.
"""

from __future__ import annotations

from typing import Any

from ..engine.report import CC1Counterexample, CC2Counterexample, Report, WFCCounterexample
from ..viz.stepper import Stepper
from .views import repair_json, state_json, transition_json

__all__ = ["counterexamples"]


def counterexamples(st: Stepper, report: Report) -> list[dict[str, Any]]:
    """Every counterexample of ``report``, those that fail the verdict first.
    ``blocking`` says whether it is one: a CC2 failure without ``strict``, or
    a CC1 failure only at unreachable states under the reachable scope, is
    shown for information."""
    out: list[dict[str, Any]] = []
    if report.wfc.counterexample is not None:
        out.append({**_wfc(st, report, report.wfc.counterexample), "blocking": True})
    cc1 = report.cc1
    if cc1 is not None:
        seen = set()
        for cex, scope, blocking in (
                (cc1.counterexample, cc1.scope, not cc1.ok),
                (cc1.counterexample_all_valid, "all", report.strict or cc1.scope == "all")):
            if cex is None or id(cex) in seen:
                continue
            seen.add(id(cex))
            out.append({**_cc1(st, report, cex, scope), "blocking": blocking})
    if report.cc2 is not None and report.cc2.counterexample is not None:
        out.append({**_cc2(st, report.cc2.counterexample), "blocking": report.strict})
    out.sort(key=lambda c: not c["blocking"])  # stable: blocking ones first
    return out


def _replay(st: Stepper, start: int, events: list[str]) -> tuple[list[dict[str, Any]], int]:
    steps = []
    cur = start
    for name in events:
        t = st.apply(name, cur)
        steps.append(transition_json(st, t))
        cur = t.after
    return steps, cur


def _cc1(st: Stepper, report: Report, cex: CC1Counterexample, scope: str) -> dict[str, Any]:
    a, b = cex.events
    at = st.encode(cex.state)
    problems: list[str] = []
    trace: list[dict[str, Any]] = []
    start = at
    if cex.trace is not None:
        start = st.encode(report.initial)
        trace, end = _replay(st, start, cex.trace)
        if end != at:
            problems.append("replaying the trace from the initial state does not reach the "
                            "counterexample's state")
    orders = []
    finals = []
    for first, second, expected in ((a, b, cex.order1), (b, a, cex.order2)):
        steps, end = _replay(st, at, [first, second])
        finals.append(end)
        if end != st.encode(expected):
            problems.append(f"{first} then {second} does not end where the report says")
        orders.append({"label": f"{first} then {second}", "events": [first, second],
                       "steps": steps, "final": state_json(st, end)})
    where = "reachable" if cex.trace is not None else "valid but not reachable"
    return {
        "kind": "CC1",
        "scope": scope,
        "title": f"{a} and {b} do not commute",
        "explanation": (f"At this {where} state, applying {a} then {b} and {b} then {a} "
                        "ends in different states, so two replicas that receive them in "
                        "different orders diverge."),
        "events": [a, b],
        "reachable": cex.trace is not None,
        "start": state_json(st, start),
        "trace": trace,
        "at": state_json(st, at),
        "orders": orders,
        "differs": st.changed(finals[0], finals[1]),
        "problems": problems,
    }


def _wfc(st: Stepper, report: Report, cex: WFCCounterexample) -> dict[str, Any]:
    at = st.encode(cex.state)
    problems: list[str] = []
    trace: list[dict[str, Any]] = []
    start = st.encode(report.initial)
    if cex.trace:
        first, cur, _ = st.normalize(start)
        if first:
            trace.append(repair_json(st, start))
        trace_steps, end = _replay(st, cur, cex.trace[:-1])
        trace += trace_steps
        last = st.apply(cex.trace[-1], end)
        trace.append(transition_json(st, last))
        if last.raw != at:
            problems.append("replaying the trace does not reach the looping state")
    n = len(cex.cycle)
    cycle = [{"invariant": cex.repairs[i], "state": state_json(st, st.encode(cex.cycle[i])),
              "next": state_json(st, st.encode(cex.cycle[(i + 1) % n]))} for i in range(n)]
    return {
        "kind": "WFC",
        "scope": "all",
        "title": "repairs loop: normalization does not terminate",
        "explanation": ("From this state, repairing the first failing invariant again and "
                        "again comes back to a state already seen, so it has no normal form."),
        "reachable": cex.trace is not None,
        "start": state_json(st, start),
        "trace": trace,
        "at": state_json(st, at),
        "path": [state_json(st, st.encode(s)) for s in (cex.path or [])],
        "cycle": cycle,
        "problems": problems,
    }


def _cc2(st: Stepper, cex: CC2Counterexample) -> dict[str, Any]:
    at = st.encode(cex.state)
    direct = transition_json(st, st.apply(cex.event, at))
    rep = repair_json(st, at)
    after_rep = transition_json(st, st.apply(cex.event, rep["after"]["id"]))
    finals = [direct["after"]["id"], after_rep["after"]["id"]]
    problems = []
    if finals[0] != st.encode(cex.direct) or finals[1] != st.encode(cex.after_repair):
        problems.append("the replay does not end where the report says")
    return {
        "kind": "CC2",
        "scope": "all",
        "title": f"{cex.event} does not commute with a repair",
        "explanation": (f"At this invalid state, {cex.event} then normalizing differs from "
                        f"one repair, then {cex.event}, then normalizing; replicas that "
                        "normalize lazily would diverge (only required with --strict)."),
        "reachable": False,
        "start": state_json(st, at),
        "trace": [],
        "at": state_json(st, at),
        "orders": [
            {"label": f"{cex.event}, then repairs", "events": [cex.event],
             "steps": [direct], "final": direct["after"]},
            {"label": f"one repair, then {cex.event}", "events": [cex.event],
             "steps": [rep, after_rep], "final": after_rep["after"]},
        ],
        "differs": st.changed(finals[0], finals[1]),
        "problems": problems,
    }
