"""What the report notes besides the verdict: events that never fire,
invariants that never repair, saturating assignments, unreachable states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .compile import CompiledEvent, CompiledMachine
from .decode import full_to_state
from .report import Findings

if TYPE_CHECKING:  # pragma: no cover
    from .check import _Checker

__all__ = ["compute_findings"]


def compute_findings(ck: _Checker, reach: np.ndarray, n_valid: int) -> Findings:
    cm, norm, full = ck.cm, ck.norm, ck.full
    never_fire = []
    saturating: list[dict[str, Any]] = []
    raw_d: list[np.ndarray] = []
    dsp = norm.space
    reach_d = full.project(dsp, reach).astype(np.int64)
    for e in cm.events:
        p = full.project(e.space, reach)
        fires = e.fires[p]
        if not fires.any():
            never_fire.append(e.name)
            continue
        if e.sat is not None:
            hit = e.sat[p] & fires
            if hit.any():
                saturating.append(_saturation(cm, e, int(reach[np.flatnonzero(hit)[0]])))
        raw = e.new[p].astype(np.int64)
        # the raw successor's projection on D: change only the written vars
        base = reach_d.copy()
        for w in e.writes:
            if w in dsp.stride:
                old = e.space.digits_of(p, w)
                new = e.space.digits_of(raw, w)
                base += (new - old) * dsp.stride[w]
        raw_d.append(np.unique(base[fires]))
    fails: set[int] = set()
    repair_sat = False
    if raw_d and cm.invariants:
        cur = np.unique(np.concatenate(raw_d))
        seen = np.zeros(norm.space.size, dtype=bool)
        while len(cur):
            cur = cur[~seen[cur]]
            seen[cur] = True
            cur = cur[~norm.valid[cur]]
            fails.update(int(i) for i in np.unique(norm.first_fail[cur]))
            repair_sat = repair_sat or bool(norm.repair_sat[cur].any())
            cur = np.unique(norm.rho[cur])
    never_fail = [i.name for i in cm.invariants if i.index not in fails]
    if repair_sat:
        saturating.append({"repair": "one or more invariants", "vars": [],
                           "state": None})
    return Findings(never_fire, never_fail, saturating, n_valid - len(reach))



def _saturation(cm: CompiledMachine, e: CompiledEvent, witness: int) -> dict[str, Any]:
    """Which int assignment of ``e`` saturates, and a reachable state where it does."""
    state = full_to_state(cm, witness)
    spec_vars = cm.m.by_name
    try:
        values = e.source.apply.evaluate(spec_vars, state)
    except Exception:  # pragma: no cover - the engine already evaluated it there
        values = {}
    out = {n: v for n, v in values.items()
           if spec_vars[n].kind == "int" and not spec_vars[n].lo <= v <= spec_vars[n].hi}
    return {"event": e.name, "vars": sorted(out), "state": state,
            "values": {n: int(v) for n, v in out.items()}}
