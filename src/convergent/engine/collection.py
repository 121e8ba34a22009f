"""The check of a collection (see ``convergent.collection``): the template by
the engine, then cross-key commutation at every configuration the aggregates
allow, vectorized over (state of key i, state of key j, totals of the others).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpecError
from .check import analyze

if TYPE_CHECKING:  # pragma: no cover
    from ..collection import Collection, CollectionReport

__all__ = ["check_collection", "other_totals"]

MAX_CONFIGURATIONS = 50_000_000
"""(state i, state j, totals) triples per event pair checked in one block."""


def other_totals(contrib: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """Every vector of aggregate totals that some multiset of (reachable)
    template states reaches within the limits, with one such multiset each
    (as indices into the rows of ``contrib``, shape (states, aggregates))."""
    rows = {tuple(int(x) for x in r): k for k, r in enumerate(contrib)
            if any(int(x) for x in r)}
    start = tuple(0 for _ in limits)
    witness: dict[tuple[int, ...], list[int]] = {start: []}
    frontier = [start]
    while frontier:
        nxt = []
        for t in frontier:
            for r, k in rows.items():
                u = tuple(a + b for a, b in zip(t, r))
                if u in witness or any(x > lim for x, lim in zip(u, limits)):
                    continue
                witness[u] = witness[t] + [k]
                nxt.append(u)
        frontier = nxt
    keys = sorted(witness)
    return np.array(keys, dtype=np.int64).reshape(len(keys), len(limits)), \
        [witness[k] for k in keys]


def check_collection(col: Collection) -> CollectionReport:
    from ..collection import CollectionReport, CrossKeyCounterexample, contributions
    from ..machine import Machine
    t0 = time.perf_counter()
    an = analyze(col.template)
    report = an.report
    aggs = [a.describe() for a in col.aggregates]
    if not report.wfc.ok or an.step is None or an.reach is None:
        return CollectionReport(col.name, "fail", report, aggs, False, 0, 0, None,
                                round(time.perf_counter() - t0, 6))
    m = Machine._from_analysis(an)
    contrib_list = contributions(col, m)
    A = len(contrib_list)
    init = m.initial.id
    for a, c in zip(col.aggregates, contrib_list):
        if int(c[init]) > 0:
            raise SpecError(f"aggregate {a.name!r}: {a.describe()} counts keys at the "
                            "template's initial state, so its total depends on how many keys "
                            "exist; count a state keys reach by an event instead")
    step = an.step
    reach = np.asarray(an.reach, dtype=np.int64)
    C = (np.stack(contrib_list, axis=1) if A else np.zeros((m.size, 0), dtype=np.int64))
    limits = np.array([a.limit for a in col.aggregates], dtype=np.int64)
    totals, witnesses = other_totals(C[reach], limits)
    Cr = C[reach]                                    # (R, A)
    R, M = len(reach), len(totals)
    names = list(m.events)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    ok = True
    cex = None
    index_of = np.full(m.size, -1, dtype=np.int64)
    index_of[reach] = np.arange(R)

    def fits(i3: np.ndarray, j3: np.ndarray) -> np.ndarray:
        """Whether the other keys' totals plus keys i and j at (reach indices)
        i3, j3 stay within the limits, for every totals row: shape (R, R, M)."""
        if not A:
            return np.ones(np.broadcast(i3, j3).shape[:2] + (M,), dtype=bool)
        return np.all(totals[None, None] + Cr[i3] + Cr[j3] <= limits, axis=-1)

    si = np.arange(R)[:, None, None]
    sj = np.arange(R)[None, :, None]
    valid = fits(si, sj)          # the configurations the aggregates allow
    configurations = int(valid.sum())
    for e, f in pairs:
        ie, jf = names.index(e), names.index(f)
        # successors stay reachable in the template (a reachable key state)
        ei = index_of[step[ie][reach]][si]           # index of e(s_i) among reach
        fj = index_of[step[jf][reach]][sj]
        # order 1: e on i, then f on j (each refused when it would break a limit)
        si1 = np.where(fits(ei, sj), ei, si)
        sj1 = np.where(fits(si1, fj), fj, sj)
        # order 2: f on j, then e on i
        sj2 = np.where(fits(si, fj), fj, sj)
        si2 = np.where(fits(ei, sj2), ei, si)
        bad = valid & ((si1 != si2) | (sj1 != sj2))
        if bad.any():
            ok = False
            x, y, k = (int(v) for v in np.argwhere(bad)[0])
            others = {a.name: int(totals[k][q]) for q, a in enumerate(col.aggregates)}
            wit = [int(reach[w]) for w in witnesses[k]]
            run = _witness_run(col, m, an, int(reach[x]), int(reach[y]), wit)
            cex = CrossKeyCounterexample(
                (e, f), m.decode(int(reach[x])), m.decode(int(reach[y])), others,
                (m.decode(int(reach[si1[x, y, k]])), m.decode(int(reach[sj1[x, y, k]]))),
                (m.decode(int(reach[si2[x, y, k]])), m.decode(int(reach[sj2[x, y, k]]))),
                2 + len(wit), run)
            break
    verdict = "pass" if ok and report.ok else "fail"
    return CollectionReport(col.name, verdict, report, aggs, ok, len(pairs), configurations,
                            cex, round(time.perf_counter() - t0, 6))


def _trace(an: Any, sid: int) -> list[int]:
    """Template events (indices) from the normalized initial state to ``sid``."""
    out = []
    s = sid
    parent, pev = an.parent, an.parent_event
    while s != an.initial_id and parent is not None and int(parent[s]) >= 0:
        out.append(int(pev[s]))
        s = int(parent[s])
    return out[::-1]


def _witness_run(col: Collection, m: Any, an: Any, si: int, sj: int,
                 others: list[int]) -> list[tuple[int, str]] | None:
    """A schedule (key, event) from every key initial that ends with key 0 at
    ``si``, key 1 at ``sj`` and the other keys at ``others``, every event
    admitted; None when the simple schedule (others first) is refused."""
    from ..collection import CollectionMachine
    cm = CollectionMachine.__new__(CollectionMachine)
    CollectionMachine.__init__(cm, col, m, None)  # type: ignore[arg-type]
    targets = [(2 + n, s) for n, s in enumerate(others)] + [(0, si), (1, sj)]
    run: list[tuple[int, str]] = []
    state = cm.initial
    for key, target in targets:
        for ev in _trace(an, target):
            name = m.events[ev]
            nxt = cm.apply(state, key, name)
            run.append((key, name))
            state = nxt
        if state.ids.get(key, m.initial.id) != target:
            return None
    return run
