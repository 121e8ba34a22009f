"""The human-readable report: what failed, where, and how to get there."""

from __future__ import annotations

from typing import Any

from .report import CC1Counterexample, Report

__all__ = ["render_report"]


def _v(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _state(s: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={_v(v)}" for k, v in s.items()) + "}"


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = [k for k in a if a[k] != b[k]]
    return ", ".join(f"{k}: {_v(a[k])} vs {_v(b[k])}" for k in keys)


def _cc1_block(c: CC1Counterexample, indent: str) -> list[str]:
    a, b = c.events
    lines = [f"{indent}{a} and {b} do not commute",
             f"{indent}  at state      {_state(c.state)}"]
    if c.trace is None:
        lines.append(f"{indent}  reached by    (unreachable from the initial state)")
    else:
        lines.append(f"{indent}  reached by    {' -> '.join(c.trace) if c.trace else '(the initial state)'}")
    lines += [f"{indent}  {a} then {b}: {_state(c.order1)}",
              f"{indent}  {b} then {a}: {_state(c.order2)}",
              f"{indent}  they differ in {_diff(c.order1, c.order2)}"]
    return lines


def _wrap(text: str, width: int, indent: str) -> str:
    import textwrap
    return ("\n" + indent).join(textwrap.wrap(text, width - len(indent)))


def render_report(r: Report) -> str:
    out: list[str] = []
    out.append(f"{r.machine}: {r.verdict.upper()}"
               + (f"  (scope: {r.scope}{', strict' if r.strict else ''})"))
    s = r.states
    line = (f"  states    {s.total:,} total, "
            + (f"{s.valid:,} valid" if s.valid >= 0 else "valid not counted"))
    if s.reachable is not None:
        line += f", {s.reachable:,} reachable"
        if r.findings is not None and r.findings.unreachable_valid:
            line += f" ({r.findings.unreachable_valid:,} valid states unreachable)"
    out.append(line)
    method = _method(r.method)
    if method:
        out.append(f"  method    {method}")
    if r.wfc.ok:
        out.append(f"  WFC       ok: repairs terminate everywhere (max depth {r.wfc.max_depth})")
    else:
        out.append("  WFC       FAIL: repairs loop forever")
        cx = r.wfc.counterexample
        if cx is not None:
            out.append(f"            from {_state(cx.state)}")
            if cx.trace is not None:
                out.append(f"            reached by  {' -> '.join(cx.trace) or '(the initial state)'}")
            out.append(f"            repairs:    {' -> '.join(cx.repairs)} -> ... (forever)")
        out.append("  CC1, CC2  not checked (normalization is undefined while WFC fails)")
    if r.cc1 is not None:
        c = r.cc1
        if c.ok_reachable and c.ok_all_valid:
            out.append(f"  CC1       ok: all {c.pairs} pair(s) commute at every valid state")
        elif c.ok_reachable:
            word = "ok" if c.scope == "reachable" else "FAIL"
            out.append(f"  CC1       {word}: all {c.pairs} pair(s) commute at every reachable "
                       "state, but not at every valid state (--scope all)")
            if c.counterexample_all_valid is not None:
                out += _cc1_block(c.counterexample_all_valid, "            ")
        else:
            out.append(f"  CC1       FAIL: {len(c.failing_pairs)} of {c.pairs} pair(s) diverge "
                       "at reachable states: "
                       + ", ".join(f"{a}/{b}" for a, b in c.failing_pairs))
            if c.counterexample is not None:
                out += _cc1_block(c.counterexample, "            ")
    if r.cc2 is not None:
        if r.cc2.ok:
            out.append("  CC2       ok: repairs commute with events (lazy normalization is safe)")
        else:
            # a passing report must not read as a failure: CC2 only matters
            # to replicas that normalize lazily, so it is required by --strict alone
            if r.strict:
                out.append("  CC2       FAIL: repairs and events do not commute "
                           "(required by --strict)")
            else:
                out.append("  CC2       repairs and events do not commute: not required; "
                           "--strict requires it")
            cx2 = r.cc2.counterexample
            if cx2 is not None:
                lead = "" if r.strict else "for example, "
                out.append(f"            {lead}{cx2.event} at the invalid state "
                           f"{_state(cx2.state)}")
                out.append(f"              applied directly:      {_state(cx2.direct)}")
                out.append(f"              applied after repair:  {_state(cx2.after_repair)}")
    f = r.findings
    if f is not None:
        if f.never_fire:
            out.append(f"  note      events that never fire from the initial state: "
                       f"{', '.join(f.never_fire)}")
        if f.never_fail:
            out.append(f"  note      invariants never broken by a reachable step: "
                       f"{', '.join(f.never_fail)}")
        if f.saturating:
            names = [(f"{d['event'] if d.get('event') else 'repair of ' + str(d.get('repair'))}"
                      f" ({', '.join(f'{k} := {v}' for k, v in d['values'].items())}"
                      f" at {_state(d['state'])})") if d.get("values") and d.get("state")
                     else d.get("event") or f"repair of {d.get('repair')}"
                     for d in f.saturating]
            out.append(f"  note      int assignments that saturate at a bound: {', '.join(names)}")
    if r.delivery is not None:
        out.append("  contract  " + _wrap(r.delivery["contract"], 78, "            "))
    for w in r.warnings:
        out.append(f"  warning   {w}")
    out.append(f"  time      {r.seconds.get('total', 0.0):.3f} s")
    return "\n".join(out)


def _method(m: dict[str, Any] | None) -> str:
    """How the proof was done, when not by whole enumeration."""
    if not m or m.get("kind") == "enumeration":
        return ""
    if m["kind"] == "composition":
        comps = m.get("components", [])
        const = m.get("constant_vars", [])
        z3 = [c for c in comps if c.get("method") == "symbolic"]
        shared = m.get("shared_read_only") or []
        return (f"by {len(comps)} independent components (largest "
                f"{max((c['states'] for c in comps), default=0):,} states)"
                + (f", {len(z3)} of them symbolic (z3: "
                   + "; ".join(", ".join(c["vars"]) for c in z3) + ")" if z3 else "")
                + (f", sharing read-only {', '.join(shared)}" if shared else "")
                + (f", {len(const)} constant var(s)" if const else ""))
    if m["kind"] == "abstraction":
        parts = ", ".join(f"{k} in {v['regions']} regions" for k, v in m["abstracted"].items())
        inner = _method(m.get("then"))
        return f"ints abstracted: {parts}" + (f"; then {inner}" if inner else "")
    if m["kind"] == "symbolic":
        why = m.get("why")
        return (f"symbolic ({m.get('solver', 'z3')}): every state, as formulas"
                + (f" ({why})" if why else ""))
    return str(m["kind"])
