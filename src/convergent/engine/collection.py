"""The check of a collection (see ``convergent.collection``): the template by
the engine, then cross-key commutation at every configuration the aggregates
allow, vectorized over (state of key i, state of key j, totals of the others).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BuildError, SpecError
from .check import analyze

if TYPE_CHECKING:  # pragma: no cover
    from ..collection import Collection, CollectionReport, CrossKeyCounterexample

__all__ = ["BLOCK_CELLS", "MAX_TOTALS", "check_collection", "other_totals"]

MAX_TOTALS = 200_000
"""Total vectors of the other keys the closure may enumerate before the check
refuses (with the reason) instead of exhausting memory."""
BLOCK_CELLS = 1 << 21
"""(state i, state j, totals row) cells broadcast at once: bounds the memory
of one step of the check (a few tens of MB) whatever the limits."""


def other_totals(contrib: np.ndarray, limits: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Every vector of aggregate totals that some multiset of (reachable)
    template states reaches within the limits, up to what the check can tell
    apart, with one such multiset each (indices into the rows of ``contrib``,
    shape (states, aggregates)).

    Two totals the check cannot tell apart are merged: the check only asks
    whether ``total + c_i + c_j <= limit`` for two keys' contributions, each at
    most the largest contribution ``c``, so every total at or below
    ``limit - 2c`` passes every such test, like ``limit - 2c`` itself. Each
    total is therefore clamped to at least ``limit - 2c`` (the "rows"), and
    the first (fewest keys) total behind each row is kept as its witness
    ("reached", the totals a counterexample reports).

    Raises:
        BuildError: the limits allow more than ``MAX_TOTALS`` total vectors.
    """
    A = len(limits)
    rows = {tuple(int(x) for x in r): k for k, r in enumerate(contrib)
            if any(int(x) for x in r)}
    start = tuple(0 for _ in limits)
    parent: dict[tuple[int, ...], tuple[tuple[int, ...], int] | None] = {start: None}
    order = [start]
    frontier = [start]
    while frontier:
        nxt = []
        for t in frontier:
            for r, k in rows.items():
                u = tuple(a + b for a, b in zip(t, r))
                if u in parent or any(x > lim for x, lim in zip(u, limits)):
                    continue
                parent[u] = (t, k)
                order.append(u)
                nxt.append(u)
                if len(parent) > MAX_TOTALS:
                    raise BuildError(
                        f"the aggregates' limits ({', '.join(map(str, limits.tolist()))}) "
                        f"let the other keys reach more than {MAX_TOTALS:,} total vectors; "
                        "the check enumerates them: lower the limits, or scale the "
                        "contributions (count in units of 10, say)")
        frontier = nxt
    peak = contrib.max(axis=0) if len(contrib) and A else np.zeros(A, dtype=np.int64)
    floor = [int(lim) - 2 * int(c) for lim, c in zip(limits, peak)]
    kept: dict[tuple[int, ...], tuple[int, ...]] = {}
    for t in order:                      # BFS order: fewest keys first
        row = tuple(max(x, f) for x, f in zip(t, floor))
        kept.setdefault(row, t)
    keys = sorted(kept)

    def witness(t: tuple[int, ...]) -> list[int]:
        out = []
        p = parent[t]
        while p is not None:
            out.append(p[1])
            p = parent[p[0]]
        return out[::-1]

    shape = (len(keys), A)
    return (np.array(keys, dtype=np.int64).reshape(shape),
            np.array([kept[k] for k in keys], dtype=np.int64).reshape(shape),
            [witness(kept[k]) for k in keys])


def _blocks(R: int, M: int) -> list[slice]:
    """Row ranges of the totals so that one block has at most BLOCK_CELLS cells."""
    step = max(1, BLOCK_CELLS // max(1, R * R))
    return [slice(a, min(M, a + step)) for a in range(0, M, step)]


def check_collection(col: Collection) -> CollectionReport:
    from ..collection import CollectionReport, CrossKeyCounterexample, contributions
    from ..machine import Machine
    t0 = time.perf_counter()
    an = analyze(col.template)
    report = an.report
    aggs = [a.describe() for a in col.aggregates]
    if not report.wfc.ok or an.step is None or an.reach is None:
        return CollectionReport(col.name, "fail", report, aggs, False, 0, 0, None,
                                round(time.perf_counter() - t0, 6), col.admission, col.key)
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
    Cr = C[reach]                                    # (R, A)
    try:
        totals, reached, witnesses = other_totals(Cr, limits)
    except BuildError as exc:
        if col.admission != "escrow":
            raise
        # escrow needs the template only: say why the race report is missing
        return CollectionReport(col.name, "pass" if report.ok else "fail", report, aggs,
                                False, 0, 0, None, round(time.perf_counter() - t0, 6),
                                col.admission, col.key, skipped=str(exc))
    R, M = len(reach), len(totals)
    names = list(m.events)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i:]]
    ok = True
    cex = None
    index_of = np.full(m.size, -1, dtype=np.int64)
    index_of[reach] = np.arange(R)
    si = np.arange(R)[:, None, None]
    sj = np.arange(R)[None, :, None]
    blocks = _blocks(R, M)

    def fits(rows: np.ndarray, i3: np.ndarray, j3: np.ndarray) -> np.ndarray:
        """Whether the other keys' totals (``rows``) plus keys i and j at
        (reach indices) i3, j3 stay within the limits: shape (R, R, rows)."""
        if not A:
            return np.ones(np.broadcast(i3, j3).shape[:2] + (len(rows),), dtype=bool)
        return np.all(rows[None, None] + Cr[i3] + Cr[j3] <= limits, axis=-1)

    # the configurations the aggregates allow
    configurations = sum(int(fits(totals[b], si, sj).sum()) for b in blocks)
    for e, f in pairs:
        ie, jf = names.index(e), names.index(f)
        # successors stay reachable in the template (a reachable key state)
        ei = index_of[step[ie][reach]][si]           # index of e(s_i) among reach
        fj = index_of[step[jf][reach]][sj]
        for blk in blocks:
            rows = totals[blk]
            n = len(rows)
            bi = np.broadcast_to(si, (R, R, n))
            bj = np.broadcast_to(sj, (R, R, n))
            # order 1: e on i, then f on j (each refused when it would break a limit)
            si1 = np.where(fits(rows, ei, sj), ei, bi)
            sj1 = np.where(fits(rows, si1, fj), fj, bj)
            # order 2: f on j, then e on i
            sj2 = np.where(fits(rows, si, fj), fj, bj)
            si2 = np.where(fits(rows, ei, sj2), ei, bi)
            bad = fits(rows, si, sj) & ((si1 != si2) | (sj1 != sj2))
            if not bad.any():
                continue
            ok = False
            # the smallest totals row first (then key states): the same
            # counterexample whatever the blocks
            k, x, y = (int(v) for v in np.argwhere(bad.transpose(2, 0, 1))[0])
            row = blk.start + k
            others = {a.name: int(reached[row][q]) for q, a in enumerate(col.aggregates)}
            wit = [int(reach[w]) for w in witnesses[row]]
            run = _witness_run(col, m, an, int(reach[x]), int(reach[y]), wit)
            cex = CrossKeyCounterexample(
                (e, f), m.decode(int(reach[x])), m.decode(int(reach[y])), others,
                (m.decode(int(reach[si1[x, y, k]])), m.decode(int(reach[sj1[x, y, k]]))),
                (m.decode(int(reach[si2[x, y, k]])), m.decode(int(reach[sj2[x, y, k]]))),
                2 + len(wit), run)
            break
        if not ok:
            break
    if ok and report.cc1 is not None and report.cc1.ok:
        # (when the template's own CC1 fails, the report already fails on it)
        cex = _same_key(col, m, an, Cr, totals, reached, witnesses, limits, reach, index_of)
        ok = cex is None
    # under escrow admission no two replicas admit against the same share, so
    # the runtime needs the template only; the cross-key result is reported
    # as what admission against the whole collection would do
    needs_cross = col.admission != "escrow"
    verdict = "pass" if (ok or not needs_cross) and report.ok else "fail"
    return CollectionReport(col.name, verdict, report, aggs, ok, len(pairs), configurations,
                            cex, round(time.perf_counter() - t0, 6), col.admission, col.key)


def _same_key(col: Collection, m: Any, an: Any, Cr: np.ndarray, totals: np.ndarray,
              reached: np.ndarray, witnesses: list[list[int]], limits: np.ndarray,
              reach: np.ndarray, index_of: np.ndarray) -> CrossKeyCounterexample | None:
    """Two events of a declared independent pair on the *same* key, at every
    (state of the key, totals of the others) the aggregates allow.

    The template's CC1 proves such a pair commutes without the aggregates;
    with them, the intermediate states differ between the two orders, and an
    aggregate may admit one order's first step and refuse the other's (an
    upgrade that makes an activation admissible, say). So the pair is
    checked again under admission; the result is a counterexample or None.
    """
    from ..collection import CrossKeyCounterexample
    if not len(limits):
        return None        # no admission: the template's CC1 is the whole story
    R = len(reach)
    s = np.arange(R)[:, None]                                   # (R, 1)
    step = an.step
    names = list(m.events)
    per_block = max(1, BLOCK_CELLS // max(1, R))
    for e, f in an.independent:
        ie, jf = names.index(e), names.index(f)
        te = index_of[step[ie][reach]]
        tf = index_of[step[jf][reach]]
        for lo in range(0, len(totals), per_block):
            rows = totals[lo:lo + per_block]

            def fits(x: np.ndarray, rows: np.ndarray = rows) -> np.ndarray:
                """Whether the key at (reach indices) ``x``, shape (R, rows),
                plus the other keys' totals of each row stays within the limits."""
                return np.all(rows[None] + Cr[x] <= limits, axis=-1)

            here_ = np.broadcast_to(s, (R, len(rows)))

            def run(first: np.ndarray, second: np.ndarray) -> np.ndarray:
                x = np.where(fits(first[here_]), first[here_], here_)
                return np.where(fits(second[x]), second[x], x)

            one, two = run(te, tf), run(tf, te)
            bad = fits(here_) & (one != two)
            if not bad.any():
                continue
            k, x = (int(v) for v in np.argwhere(bad.T)[0])
            row = lo + k
            others = {a.name: int(reached[row][q]) for q, a in enumerate(col.aggregates)}
            wit = [int(reach[w]) for w in witnesses[row]]
            sid = int(reach[x])
            r = _witness_run(col, m, an, sid, None, wit)
            here = m.decode(sid)
            o1, o2 = m.decode(int(reach[one[x, k]])), m.decode(int(reach[two[x, k]]))
            return CrossKeyCounterexample((e, f), here, here, others, (o1, o1), (o2, o2),
                                          1 + len(wit), r, same_key=True)
    return None


def _trace(an: Any, sid: int) -> list[int]:
    """Template events (indices) from the normalized initial state to ``sid``."""
    out = []
    s = sid
    parent, pev = an.parent, an.parent_event
    while s != an.initial_id and parent is not None and int(parent[s]) >= 0:
        out.append(int(pev[s]))
        s = int(parent[s])
    return out[::-1]


def _witness_run(col: Collection, m: Any, an: Any, si: int, sj: int | None,
                 others: list[int]) -> list[tuple[int, str]] | None:
    """A schedule (key, event) from every key initial that ends with key 0 at
    ``si``, key 1 at ``sj`` (when not None) and the other keys at ``others``,
    every event admitted; None when the simple schedule (others first) is
    refused."""
    from ..collection import contributions
    contrib = [c.tolist() for c in contributions(col, m)]
    limits = [a.limit for a in col.aggregates]
    step = an.step
    totals = [0] * len(limits)
    init = m.initial.id
    first = 1 if sj is None else 2
    targets = [(first + n, s) for n, s in enumerate(others)] + [(0, si)]
    if sj is not None:
        targets.append((1, sj))
    traces: dict[int, list[int]] = {}
    run: list[tuple[int, str]] = []
    for key, target in targets:
        # the same admission rule as CollectionMachine.apply, on one key at a
        # time (the others stay where they are), in O(1) per step
        cur = init
        if target not in traces:
            traces[target] = _trace(an, target)
        for ev in traces[target]:
            new = int(step[ev][cur])
            after = [t - c[cur] + c[new] for t, c in zip(totals, contrib)]
            if new != cur and all(t <= lim for t, lim in zip(after, limits)):
                totals, cur = after, new
            run.append((key, m.events[ev]))
        if cur != target:
            return None
    return run
