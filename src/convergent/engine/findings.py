"""What the report notes besides the verdict: events that never fire,
invariants that never repair, saturating assignments, unreachable states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .compile import CompiledEvent, CompiledMachine
from .decode import full_to_state, local_to_state
from .report import Findings

if TYPE_CHECKING:  # pragma: no cover
    from .check import _Checker

__all__ = ["compute_findings"]


def compute_findings(ck: _Checker, reach: np.ndarray, n_valid: int) -> Findings:
    cm, norm, full = ck.cm, ck.norm, ck.full
    never_fire = []
    saturating: list[dict[str, Any]] = []
    raw_d: list[np.ndarray] = []
    origin: list[np.ndarray] = []
    dsp = norm.space
    reach_d = full.project(dsp, reach).astype(np.int64)
    for e in cm.events:
        p = full.project(e.space, reach)
        fires = e.fires[p]
        if not fires.any():
            never_fire.append(e.name)
            continue
        if e.sat is not None:
            hit = e.sat[full.project(e.sat_on, reach)] & fires
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
        raw_d.append(base[fires])
        origin.append(reach[fires])
    fails: set[int] = set()
    witness: tuple[int, int] | None = None  # (D id being repaired, reachable origin)
    if raw_d and cm.invariants:
        cur, first = np.unique(np.concatenate(raw_d), return_index=True)
        org = np.concatenate(origin)[first]
        seen = np.zeros(norm.space.size, dtype=bool)
        while len(cur):
            fresh = ~seen[cur]
            cur, org = cur[fresh], org[fresh]
            seen[cur] = True
            bad = ~norm.valid[cur]
            cur, org = cur[bad], org[bad]
            fails.update(int(i) for i in np.unique(norm.first_fail[cur]))
            if witness is None:
                sat = norm.repair_sat[cur]
                if sat.any():
                    k = int(np.flatnonzero(sat)[0])
                    witness = (int(cur[k]), int(org[k]))
            cur, first = np.unique(norm.rho[cur], return_index=True)
            org = org[first]
    never_fail = [i.name for i in cm.invariants if i.index not in fails]
    if witness is not None:
        saturating.append(_repair_saturation(ck, *witness))
    return Findings(never_fire, never_fail, saturating, n_valid - len(reach))


def _repair_saturation(ck: _Checker, local: int, origin: int) -> dict[str, Any]:
    """A repair that saturates, on a run from a reachable state: the state
    being repaired is the origin's vars outside D with D's vars of ``local``
    (normalization touches D only), so it is a state a replica really meets."""
    cm, norm = ck.cm, ck.norm
    state = full_to_state(cm, origin)
    local_state = local_to_state(cm, norm.space, local)
    dnames = {cm.m.vars[v].name for v in norm.space.vars}
    state = {k: (local_state[k] if k in dnames else v) for k, v in state.items()}
    inv = cm.invariants[int(norm.first_fail[local])]
    out = _outside(cm, inv.source.repair, state)
    return {"repair": inv.name, "vars": sorted(out), "state": state,
            "values": {n: int(v) for n, v in out.items()}}


def _outside(cm: CompiledMachine, assignment: Any, state: dict[str, Any]) -> dict[str, Any]:
    spec_vars = cm.m.by_name
    try:
        values = assignment.evaluate(spec_vars, state)
    except Exception:  # pragma: no cover - the engine already evaluated it there
        values = {}
    return {n: v for n, v in values.items()
            if spec_vars[n].kind == "int" and not spec_vars[n].lo <= v <= spec_vars[n].hi}


def _saturation(cm: CompiledMachine, e: CompiledEvent, witness: int) -> dict[str, Any]:
    """Which int assignment of ``e`` saturates, and a reachable state where it does."""
    state = full_to_state(cm, witness)
    out = _outside(cm, e.source.apply, state)
    return {"event": e.name, "vars": sorted(out), "state": state,
            "values": {n: int(v) for n, v in out.items()}}
