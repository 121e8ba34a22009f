"""The verification: tables, WFC, reachability, CC1 (both scopes), CC2, findings.

Soundness first: every pair is checked at every state of the scope. Speed
comes from where the work is done, not from skipping any: each pair (a, b) is
checked on the product of the domains of the variables that step_a and step_b
can read or write (their semantic footprints plus the invariants' variables),
which is exact because every other variable is neither read nor changed by
either order; a pair that fails there is then looked up among the reachable
states by projection. The full step tables are written once per event, with
one gather per state.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BuildError
from ..spec.model import Event, Invariant, MachineSpec
from .compile import CompiledEvent, CompiledMachine, compile_machine
from .decode import describe_state, full_to_state, local_to_state
from .delivery import commutes, delivery
from .digest import policy_digest
from .findings import compute_findings
from .normalize import Normalizer
from .report import (
    CC1Counterexample,
    CC1Result,
    CC2Counterexample,
    CC2Result,
    Findings,
    Report,
    StateCounts,
    WFCCounterexample,
    WFCResult,
)
from .space import Lifter, Space

if TYPE_CHECKING:  # pragma: no cover
    from .compose import ComposedAnalysis

__all__ = ["Analysis", "Progress", "analyze", "analyze_any", "check"]

Progress = Callable[[str, int, int], None]


@dataclass
class _EventOnSpace:
    space: Space
    step: np.ndarray       # local id -> local id of nf(raw_e(s)), for every local s


@dataclass
class Analysis:
    """Everything computed for a machine: the report and the tables a built
    Machine runs on."""

    report: Report
    compiled: CompiledMachine
    normalizer: Normalizer
    full: Space
    step: np.ndarray | None            # (E, N) full step tables, or None when WFC fails
    initial_id: int | None
    reach: np.ndarray | None = None    # reachable ids
    #: the pairs verified to commute (declared ones; in auto mode, every commuting pair)
    independent: list[tuple[str, str]] = field(default_factory=list)
    parent: np.ndarray | None = None         # BFS parent of each reachable id
    parent_event: np.ndarray | None = None   # the event that led there


class _Checker:
    def __init__(self, spec: MachineSpec, scope: str, strict: bool,
                 progress: Progress | None, independent: str = "declared") -> None:
        if scope not in ("reachable", "all"):
            raise ValueError(f"scope={scope!r} (expected 'reachable' or 'all')")
        if independent not in ("declared", "auto"):
            raise ValueError(f"independent={independent!r} (expected 'declared' or 'auto')")
        self.independent = independent
        self.delivery: dict[str, Any] | None = None
        self.spec = spec
        self.scope = scope
        self.strict = strict
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()
        self._t0 = self._t
        self.partial: Analysis | None = None
        self._ev_cache: dict[tuple[int, tuple[int, ...]], _EventOnSpace] = {}
        self._nf_cache: dict[tuple[int, ...], np.ndarray] = {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self._t, 6)
        self._t = now

    def tick(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    # ------------------------------------------------------------ spaces

    def nf_on(self, space: Space) -> np.ndarray:
        key = space.vars
        got = self._nf_cache.get(key)
        if got is None:
            d = self.norm.space
            got = (space.ids.astype(np.int64)
                   + self.norm.nf_delta(space)[space.project(d)]).astype(space.dtype)
            self._nf_cache[key] = got
        return got

    def event_on(self, e: CompiledEvent, space: Space) -> _EventOnSpace:
        key = (e.index, space.vars)
        got = self._ev_cache.get(key)
        if got is None:
            delta = e.space.restride(e.new, space)
            raw = (space.ids.astype(np.int64) + delta[space.project(e.space)]).astype(space.dtype)
            got = _EventOnSpace(space, self.nf_on(space)[raw])
            del raw
            self._ev_cache[key] = got
        return got

    def space_of(self, *vars_sets: Any) -> Space:
        """The space of these vars and the invariants' (one object per var set,
        so that projections and digits computed on it are reused)."""
        vs: set[int] = set(self.norm.space.vars)
        for s in vars_sets:
            vs |= set(s)
        key = tuple(sorted(vs))
        if len(key) == len(self.cm.radices):
            return self.full
        cache = self.__dict__.setdefault("_spaces", {})
        got = cache.get(key)
        if got is None:
            got = cache[key] = Space(self.cm.radices, key)
        return got

    def valid_on(self, space: Space) -> np.ndarray:
        return self.norm.valid[space.project(self.norm.space)]

    # ------------------------------------------------------------ run

    def run(self) -> Analysis:
        """The whole check, phase by phase. ``shard._ShardedChecker`` runs
        these same phases with its own hooks (``_refuse_size``,
        ``_compiled``, ``_step_table``, ``_run_delivery``, ``_analysis``)."""
        spec = self.spec
        self._refuse_size(spec)   # before any table: refuse what cannot fit
        self.cm = cm = compile_machine(spec)
        self.lap("compile")
        self.norm = norm = Normalizer(cm)
        self.full = full = Space(cm.radices, range(len(cm.radices)))
        self._compiled()
        n_total = full.size
        n_valid = int(norm.valid.sum()) * (full.size // norm.space.size)
        self.lap("normalize")
        warnings = list(cm.warnings)
        init_id = self._initial_id()
        if norm.wfc_failure is not None:
            return self._wfc_fails(init_id, n_total, n_valid, warnings)
        wfc = WFCResult(True, norm.max_depth)

        s0 = self._start(init_id, warnings)
        # WFC holds here: what a composed check needs of this machine when
        # another component's repairs loop (its events are then never
        # evaluated, as whole enumeration stops at the loop)
        self.partial = Analysis(self._report("fail", StateCounts(n_total, n_valid, None), wfc,
                                             None, None, None, list(warnings),
                                             full_to_state(cm, s0)),
                                cm, norm, full, None, s0)

        # per-event local steps, overflow check, full tables
        self._check_overflow()
        self.lap("events")
        step = self._step_table()
        self.lap("tables")
        reach, parent, pev, depth = self._reach(step, s0)
        self.reach_depth = depth
        self.lap("reachability")
        facts = self._all_pairs(step, reach, depth)
        pairs = self.checked_pairs = self._pairs_to_check(facts)
        cc1 = self._cc1(step, parent, pev, facts, pairs)
        self.lap("cc1")
        self.delivery = self._run_delivery(facts, reach, pairs)
        self.lap("delivery")
        cc2 = self._cc2()
        self.lap("cc2")
        findings = compute_findings(self, reach, n_valid)
        self.lap("findings")
        ok = cc1.ok
        if self.strict:
            ok = ok and cc2.ok and cc1.ok_all_valid
        report = self._report("pass" if ok else "fail",
                              StateCounts(n_total, n_valid, len(reach)), wfc, cc1, cc2,
                              findings, warnings, full_to_state(cm, s0))
        return self._analysis(report, step, s0, reach, pairs, parent, pev)

    # -- the phases a sharded check does its own way

    def _refuse_size(self, spec: MachineSpec) -> None:
        _check_spec_size(spec)

    def _compiled(self) -> None:
        """After compiling and normalizing: the full tables must fit."""
        _check_size(self.cm, self.full)

    def _step_table(self) -> np.ndarray:
        return self._full_tables()

    def _run_delivery(self, facts: Any, reach: np.ndarray,
                      pairs: list[tuple[str, str]]) -> Any:
        return delivery(self, facts, reach, pairs)

    def _analysis(self, report: Report, step: np.ndarray, s0: int, reach: np.ndarray,
                  pairs: list[tuple[str, str]], parent: np.ndarray,
                  pev: np.ndarray) -> Analysis:
        return Analysis(report, self.cm, self.norm, self.full, step, s0, reach,
                        [(a, b) for a, b in pairs], parent, pev)

    def _wfc_fails(self, init_id: int, n_total: int, n_valid: int,
                   warnings: list[str]) -> Analysis:
        """Repairs loop: the report with the loop, reached by the shortest run
        of events from the initial state when one reaches it."""
        cm, norm, full = self.cm, self.norm, self.full
        f = norm.wfc_failure
        assert f is not None
        state = local_to_state(cm, norm.space, f.state)
        before: list[int] = []
        cycle_local, repairs = f.cycle, f.repairs
        found = self._wfc_trace(init_id)
        trace = None
        if found is not None:
            trace, full_id = found
            state = full_to_state(cm, full_id)
            before, cycle_local, repairs = norm.cycle_from(
                int(full.project(norm.space, np.array([full_id]))[0]))
        dnames = {cm.m.vars[v].name for v in norm.space.vars}

        def as_full(loc: int) -> dict[str, Any]:
            st = local_to_state(cm, norm.space, loc)
            return {k: (st[k] if k in dnames else state[k]) for k in state}

        cycle = [as_full(loc) for loc in cycle_local]
        path = [as_full(loc) for loc in before]
        wfc = WFCResult(False, None, WFCCounterexample(state, cycle, repairs, trace, path))
        report = self._report("fail", StateCounts(n_total, n_valid, None), wfc, None, None,
                              None, warnings, full_to_state(cm, init_id))
        return Analysis(report, cm, norm, full, None, None)

    def _start(self, init_id: int, warnings: list[str]) -> int:
        """Where reachability starts: the initial state's normal form (with a
        warning in ``warnings`` when the initial state is invalid)."""
        cm, norm, full = self.cm, self.norm, self.full
        d_init = int(full.project(norm.space, np.array([init_id]))[0])
        if norm.valid[d_init]:
            return init_id
        inv = cm.invariants[int(norm.first_fail[d_init])].name
        s0 = int(init_id + norm.nf_delta(full)[d_init])
        warnings.append(f"the initial state breaks invariant {inv!r}; reachability starts "
                        f"from its normal form {describe_state(full_to_state(cm, s0))}")
        return s0

    def _pairs_to_check(self, facts: dict[frozenset[str], tuple[int | None,
                                                                 tuple[int, int] | None]]
                        ) -> list[tuple[str, str]]:
        """The declared pairs; in auto mode, those plus every pair that commutes."""
        pairs = list(self.spec.independent)
        if self.independent == "auto":
            declared = [] if self.spec.independent_all else pairs
            commuting = [(a.name, b.name) for i, a in enumerate(self.cm.events)
                         for b in self.cm.events[i + 1:]
                         if commutes(self, facts[frozenset((a.name, b.name))])]
            dset = {frozenset(p) for p in declared}
            pairs = list(declared) + [p for p in commuting if frozenset(p) not in dset]
        return pairs

    def _wfc_trace(self, init_id: int) -> tuple[list[str], int] | None:
        """When repairs loop: the shortest run of events from the initial state
        whose last event lands in a looping state (steps are computed on the
        fly from the events' local tables; no full table exists yet)."""
        cm, norm, full = self.cm, self.norm, self.full
        nf_delta = norm.nf_delta(full)
        d0 = int(full.project(norm.space, np.array([init_id]))[0])
        if norm.cycling[d0]:
            return [], init_id
        start = int(init_id + nf_delta[d0])
        parent: dict[int, tuple[int, int]] = {start: (-1, -1)}
        frontier = np.array([start], dtype=np.int64)
        deltas = [e.space.restride(e.new, full) for e in cm.events]
        while len(frontier) and len(parent) <= 2_000_000:
            nxt = []
            for e in cm.events:
                raw = frontier + deltas[e.index][full.project(e.space, frontier)]
                d = full.project(norm.space, raw)
                bad = norm.cycling[d]
                if bad.any():
                    k = int(np.flatnonzero(bad)[0])
                    trace = [e.name]
                    s = int(frontier[k])
                    while parent[s][0] >= 0:
                        s, ev = parent[s]
                        trace.append(cm.events[ev].name)
                    return trace[::-1], int(raw[k])
                after = raw + nf_delta[d]
                for src, dst in zip(frontier.tolist(), after.tolist()):
                    if dst not in parent:
                        parent[dst] = (src, e.index)
                        nxt.append(dst)
            frontier = np.array(nxt, dtype=np.int64)
        return None

    def _report(self, verdict: str, states: StateCounts, wfc: WFCResult, cc1: CC1Result | None,
                cc2: CC2Result | None, findings: Findings | None, warnings: list[str],
                initial: dict[str, Any]) -> Report:
        cm = self.cm
        fps = {e.name: {"reads": cm.names(e.reads), "writes": cm.names(e.writes)}
               for e in cm.events}
        ifps = {i.name: {"watches": cm.names(i.reads),
                         "repair_writes": [cm.m.vars[w].name for w in i.repair.writes]}
                for i in cm.invariants}
        digest = policy_digest(cm)
        self.seconds["total"] = round(time.perf_counter() - self._t0, 6)
        return Report(cm.spec.name, verdict, self.scope, self.strict, states, wfc, cc1, cc2,
                      fps, ifps, findings, warnings, dict(self.seconds), initial,
                      [e.name for e in cm.events], cm.spec.version, digest, self.delivery)

    def _initial_id(self) -> int:
        full_id = 0
        stride = 1
        for var in self.cm.m.vars:
            full_id += var.digit(self.spec.initial[var.name]) * stride
            stride *= var.size
        return full_id

    def _check_overflow(self) -> None:
        """Overflow under ``error`` (or an evaluation error) for an event at any
        valid state where its guard holds: a build error naming all three."""
        cm = self.cm
        for e in cm.events:
            if e.err is None:
                continue
            sp = self.space_of(e.space.vars)
            bad = self.valid_on(sp) & e.err[sp.project(e.space)]
            if bad.any():
                local = int(np.flatnonzero(bad)[0])
                state = local_to_state(cm, sp, local)
                detail = _explain_error(cm, e, state)
                raise BuildError(f"event {e.name!r} {detail} at the valid state "
                                 f"{describe_state(state)}", name=e.name, state=state)

    def _full_tables(self) -> np.ndarray:
        cm, full = self.cm, self.full
        lifter = Lifter(full)
        E = len(cm.events)
        step = np.empty((E, full.size), dtype=full.dtype)
        for e in cm.events:
            sp = self.space_of(e.space.vars)
            loc = self.event_on(e, sp)
            if sp.size == full.size:
                step[e.index] = loc.step
                loc.step = step[e.index]  # keep one copy: the table row
                self.tick("tables", e.index + 1, E)
                continue
            delta = sp.restride(loc.step, full)
            if full.dtype == np.int32 and len(delta):
                delta = delta.astype(np.int32)
            lifter.gather(sp, delta, out=step[e.index], add_ids=True)
            self.tick("tables", e.index + 1, E)
        return step

    def _reach(self, step: np.ndarray, s0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                        np.ndarray]:
        n = self.full.size
        visited = np.zeros(n, dtype=bool)
        parent = np.empty(n, dtype=self.full.dtype)
        pev = np.empty(n, dtype=np.int16 if step.shape[0] < 32767 else np.int32)
        depth = np.empty(n, dtype=np.int32)
        visited[s0] = True
        parent[s0] = -1
        pev[s0] = -1
        depth[s0] = 0
        frontier = np.array([s0], dtype=self.full.dtype)
        levels = [frontier]
        d = 0
        while len(frontier):
            d += 1
            found = []
            for e in range(step.shape[0]):
                nxt = step[e][frontier]
                new = ~visited[nxt]
                if not new.any():
                    continue
                cand = nxt[new]
                src = frontier[new]
                # first occurrence wins: deterministic parents
                cand_u, first = np.unique(cand, return_index=True)
                visited[cand_u] = True
                parent[cand_u] = src[first]
                pev[cand_u] = e
                depth[cand_u] = d
                found.append(cand_u)
            frontier = np.concatenate(found) if found else frontier[:0]
            if len(frontier):
                levels.append(frontier)
        reach = np.concatenate(levels)
        return reach, parent, pev, depth

    def _trace(self, parent: np.ndarray, pev: np.ndarray, s: int) -> list[str]:
        out: list[str] = []
        while pev[s] >= 0:
            out.append(self.cm.events[int(pev[s])].name)
            s = int(parent[s])
        return out[::-1]

    # ------------------------------------------------------------ CC1

    def _pair(self, step: np.ndarray, reach: np.ndarray, depth: np.ndarray,
              a: CompiledEvent, b: CompiledEvent) -> tuple[int | None, tuple[int, int] | None]:
        """For one pair: (smallest failing full id at any valid state, and
        (BFS depth, full id) of the shallowest failing reachable state)."""
        full = self.full
        sp = self.space_of(a.space.vars, b.space.vars)
        if sp.size == full.size:
            sa, sb = step[a.index], step[b.index]
            valid = self._full_valid()
        else:
            sa = self.event_on(a, sp).step
            sb = self.event_on(b, sp).step
            valid = self.valid_on(sp)
        bad = sb[sa] != sa[sb]
        bad &= valid
        if not bad.any():
            return None, None
        locs = np.flatnonzero(bad)
        fids = locs if sp.size == full.size else sp.embed(locs, full)
        fmin = int(fids.min())
        proj = reach if sp.size == full.size else full.project(sp, reach)
        hit = bad[proj]
        if not hit.any():
            return fmin, None
        ids = reach[hit]
        ds = depth[ids]
        dmin = int(ds.min())
        return fmin, (dmin, int(ids[ds == dmin].min()))

    def _all_pairs(self, step: np.ndarray, reach: np.ndarray, depth: np.ndarray
                   ) -> dict[frozenset[str], tuple[int | None, tuple[int, int] | None]]:
        """Commutation facts for every pair of distinct events: what CC1 reads
        for the declared pairs, and what the delivery contract reads for all."""
        evs = self.cm.events
        out = {}
        total = len(evs) * (len(evs) - 1) // 2
        k = 0
        for i in range(len(evs)):
            for j in range(i + 1, len(evs)):
                out[frozenset((evs[i].name, evs[j].name))] = self._pair(
                    step, reach, depth, evs[i], evs[j])
                k += 1
                self.tick("pairs", k, total)
        return out

    def _cc1(self, step: np.ndarray, parent: np.ndarray, pev: np.ndarray,
             facts: dict[frozenset[str], tuple[int | None, tuple[int, int] | None]],
             pairs: list[tuple[str, str]]) -> CC1Result:
        cm = self.cm
        index = {e.name: e for e in cm.events}
        best_reach: tuple[int, int, int] | None = None   # (depth, pair index, full id)
        best_all: tuple[int, int] | None = None          # (pair index, full id)
        failing_r: list[tuple[str, str]] = []
        failing_a: list[tuple[str, str]] = []
        for k, (an, bn) in enumerate(pairs):
            fmin, rbest = facts[frozenset((an, bn))]
            if fmin is None:
                continue
            failing_a.append((an, bn))
            if best_all is None or (k, fmin) < best_all:
                best_all = (k, fmin)
            if rbest is not None:
                failing_r.append((an, bn))
                key = (rbest[0], k, rbest[1])
                if best_reach is None or key < best_reach:
                    best_reach = key
        ok_r = best_reach is None
        ok_a = best_all is None

        def cex(k: int, s: int, with_trace: bool) -> CC1Counterexample:
            an, bn = pairs[k]
            a, b = index[an], index[bn]
            o1 = int(step[b.index][step[a.index][s]])
            o2 = int(step[a.index][step[b.index][s]])
            return CC1Counterexample((an, bn), full_to_state(cm, s),
                                     self._trace(parent, pev, s) if with_trace else None,
                                     full_to_state(cm, o1), full_to_state(cm, o2))

        cex_r = cex(best_reach[1], best_reach[2], True) if best_reach else None
        if best_all is None:
            cex_a = None
        elif best_reach is not None:
            cex_a = cex_r
        else:
            cex_a = cex(best_all[0], best_all[1], False)
        if self.scope == "reachable":
            return CC1Result(ok_r, "reachable", len(pairs), ok_r, ok_a, cex_r, cex_a,
                             failing_r, failing_a)
        return CC1Result(ok_a, "all", len(pairs), ok_r, ok_a, cex_a, cex_a, failing_r, failing_a)

    # ------------------------------------------------------------ delivery contract

    def _full_valid(self) -> np.ndarray:
        got = getattr(self, "_fv", None)
        if got is None:
            got = Lifter(self.full).gather(self.norm.space, self.norm.valid)
            self._fv = got
        return got

    # ------------------------------------------------------------ CC2

    def _invalid_and_rho(self, e: CompiledEvent) -> tuple[Space, np.ndarray, np.ndarray]:
        """On the event's space: which states are invalid, and one repair step."""
        norm = self.norm
        sp = self.space_of(e.space.vars)
        pd = sp.project(norm.space)
        rho = (sp.ids.astype(np.int64) + norm.rho_delta(sp)[pd]).astype(sp.dtype)
        return sp, ~norm.valid[pd], rho

    def _cc2(self) -> CC2Result:
        """CC2 evaluates every event at every invalid state s and at rho(s).
        First, for every event, an evaluation error there is a build error (as
        wherever an assignment is evaluated); then the first event in order
        that does not commute with a repair gives the counterexample, at its
        smallest state."""
        cm = self.cm
        per_event = [(e, *self._invalid_and_rho(e)) for e in cm.events]
        for e, sp, invalid, rho in per_event:
            if e.eval_err is None:
                continue
            ev = e.eval_err[sp.project(e.space)]
            broken = invalid & (ev | ev[rho])
            if broken.any():
                state = local_to_state(cm, sp, int(np.flatnonzero(broken)[0]))
                raise BuildError(f"event {e.name!r} cannot be evaluated at the invalid "
                                 f"state {describe_state(state)} (or after one repair "
                                 "of it), which CC2 needs", name=e.name, state=state)
        for e, sp, invalid, rho in per_event:
            if not invalid.any():
                continue
            step = self.event_on(e, sp).step
            bad = invalid & (step != step[rho])
            if not bad.any():
                continue
            locs = np.flatnonzero(bad)
            s = int(locs[int(np.argmin(sp.embed(locs, self.full)))])
            return CC2Result(False, CC2Counterexample(
                e.name, local_to_state(cm, sp, s), local_to_state(cm, sp, int(step[s])),
                local_to_state(cm, sp, int(step[rho[s]]))))
        return CC2Result(True, None)

MAX_STATES = 2**33


@dataclass
class SymbolicAnalysis:
    """A check done by z3 (convergent.symbolic): a report, no tables."""

    report: Report


def _symbolic(spec: MachineSpec, scope: str, strict: bool) -> SymbolicAnalysis:
    try:
        from ..symbolic import check_symbolic
    except ImportError as exc:  # pragma: no cover - z3 is in the test extra
        raise BuildError("method 'symbolic' needs z3: pip install 'convergent[symbolic]' "
                         f"({exc})") from None
    try:
        return SymbolicAnalysis(check_symbolic(spec, scope=scope, strict=strict))
    except BuildError as exc:
        raise _locate(spec, exc) from exc.__cause__


def _check_spec_size(spec: MachineSpec) -> None:
    from .budget import enforce, estimate
    size = 1
    for v in spec.vars:
        size *= v.size
    enforce(estimate(size, len(spec.events)), name=spec.name,
            sizes=[v.size for v in spec.vars], max_states=MAX_STATES)


def _check_size(cm: CompiledMachine, full: Space) -> None:
    """Refuse, with a clear message, a machine whose tables cannot fit: the
    engine enumerates every state, so size is a property of the spec (the
    estimate and its calibration are in ``budget``)."""
    from .budget import enforce, estimate
    enforce(estimate(full.size, len(cm.events)), name=cm.spec.name,
            sizes=[v.size for v in cm.m.vars], max_states=MAX_STATES)


def _explain_error(cm: CompiledMachine, e: CompiledEvent, state: dict[str, Any]) -> str:
    """Re-evaluate at one state to name the value that overflowed."""
    spec_vars = cm.m.by_name
    try:
        if e.source.guard is not None and not e.source.guard.evaluate(spec_vars, state):
            return "cannot evaluate its guard"
        values = e.source.apply.evaluate(spec_vars, state)
    except Exception as exc:  # the error itself is what we report
        return f"fails to evaluate ({type(exc).__name__}: {exc})"
    for name, value in values.items():
        var = spec_vars[name]
        if var.kind == "int" and not var.lo <= value <= var.hi and var.overflow == "error":
            return (f"assigns {name} = {value}, outside [{var.lo}, {var.hi}] "
                    "(overflow: error)")
    return "fails to evaluate"


def analyze(spec: MachineSpec, *, scope: str = "reachable", strict: bool = False,
            progress: Progress | None = None, independent: str = "declared") -> Analysis:
    """Verify ``spec`` and keep the tables (what ``Registry.build`` runs on).

    ``independent="auto"``: instead of requiring every pair of ``spec.independent``
    to commute when none was declared, find every pair that commutes, treat
    those as independent and report the rest as causal-order obligations
    (declared pairs must still commute)."""
    try:
        return _Checker(spec, scope, strict, progress, independent).run()
    except BuildError as exc:
        raise _locate(spec, exc) from exc.__cause__


def _locate(spec: MachineSpec, exc: BuildError) -> BuildError:
    """A build error about one rule points at that rule's place in its spec
    file (``bank.yaml:14:7: event 'add' assigns ...``)."""
    if exc.file is not None:
        return exc
    if exc.name is not None:
        rules: list[Event | Invariant] = [*spec.events, *spec.invariants]
        for rule in rules:
            if rule.name == exc.name and rule.where.file is not None:
                return exc.at(rule.where.file, rule.where.line, rule.where.column)
    return exc.at(spec.source, None, None) if spec.source else exc


def check(spec: MachineSpec, *, scope: str = "reachable", strict: bool = False,
          progress: Progress | None = None, independent: str = "declared",
          method: str = "auto") -> Report:
    """Verify ``spec``; never raises on a failed proof (read ``report.verdict``).

    ``method``: ``"enumerate"`` the whole state space, ``"compose"`` check the
    groups of vars that share no rule separately and prove the product
    (engine/compose.py), or ``"auto"``: compose when the machine is too big
    to enumerate whole (more than ``COMPOSE_ABOVE`` states) and splits.

    Raises BuildError when the machine cannot be tabulated (overflow under
    ``overflow: error``, a lying declared footprint, a function that fails)."""
    return analyze_any(spec, scope=scope, strict=strict, progress=progress,
                       independent=independent, method=method).report


def analyze_any(spec: MachineSpec, *, scope: str = "reachable", strict: bool = False,
                progress: Progress | None = None, independent: str = "declared",
                method: str = "auto", share: bool = True) -> Any:
    """``analyze`` or, where ``method`` says so, the composed, abstracted or
    symbolic analysis (each has ``.report``). ``share=False`` keeps
    components from sharing read-only vars (the abstraction weighs each
    component's valid states by region sizes, and multiplies them)."""
    from .compose import (
        COMPOSE_ABOVE,
        SYMBOLIC_ABOVE,
        RuleErrorUndecided,
        SharedValuesUncovered,
        prefer_z3,
        analyze_composed,
        split,
        split_spec,
        symbolic_possible,
        widest_rule,
    )
    from .tabulate import MAX_RULE_SPACE
    if method not in ("auto", "enumerate", "compose", "abstract", "symbolic"):
        raise ValueError(f"method={method!r} (expected 'auto', 'enumerate', 'compose', "
                         "'abstract' or 'symbolic')")
    if method == "symbolic":
        return _symbolic(spec, scope, strict)
    size = 1
    for v in spec.vars:
        size *= v.size
    if method == "abstract" or (method == "auto" and size > COMPOSE_ABOVE):
        from .abstract import analyze_abstracted, plan
        regions, refused = plan(spec)
        if regions:
            def run(abstract_spec: MachineSpec) -> Analysis | ComposedAnalysis:
                return analyze_any(abstract_spec, scope=scope, strict=strict,
                                   progress=progress, independent=independent, method="auto",
                                   share=False)
            return analyze_abstracted(spec, regions, refused, run)
        if method == "abstract":
            why = "; ".join(f"{k}: {w}" for k, w in refused.items()) or (
                "no int var has more than 64 values")
            raise BuildError(f"{spec.name!r}: nothing to abstract ({why})")
    undecided: RuleErrorUndecided | None = None
    z3_ok = size > SYMBOLIC_ABOVE and symbolic_possible(spec)
    too_wide = z3_ok and widest_rule(spec) > MAX_RULE_SPACE   # a rule no table holds
    wide = z3_ok and (too_wide or prefer_z3(size, len(spec.events)))
    if method != "enumerate":
        if method == "compose" or size > COMPOSE_ABOVE:
            try:
                # rules too wide to tabulate are split by their text, and the
                # components too big to enumerate go to z3
                cm = None if too_wide else compile_machine(spec)
                for sharing in ((True, False) if share else (False,)):
                    got = split(cm, share=sharing) if cm is not None else split_spec(
                        spec, share=sharing)
                    assert got is not None
                    comps, idle = got
                    if not (len(comps) >= 2 or (comps and idle)):
                        break
                    try:
                        return analyze_composed(spec, scope=scope, strict=strict,
                                                progress=progress, independent=independent,
                                                cm=cm, comps=(comps, idle))
                    except SharedValuesUncovered:
                        continue   # some value of a shared read-only var: split without it
                    except RuleErrorUndecided as exc:
                        undecided = exc
                        break      # the whole machine decides (below)
            except BuildError as exc:
                raise _locate(spec, exc) from exc.__cause__
    if method == "auto" and wide:
        # too big to enumerate: z3, where it decides; else enumeration,
        # which refuses what does not fit with the figures
        from ..symbolic.check import SymbolicUndecided
        from ..symbolic.encode import SymbolicUnsupported
        try:
            whole_z3 = _symbolic(spec, scope, strict)
        except (SymbolicUndecided, SymbolicUnsupported):
            pass
        else:
            why = (f"chosen: {size:,} states (more than {SYMBOLIC_ABOVE:,}) that enumeration "
                   "cannot afford here, and the machine does not split" if undecided is None
                   else f"chosen: {size:,} states that enumeration cannot afford here; the "
                   "components could not decide it (one reports: "
                   f"{undecided.error.message}; another has no valid state, so its repairs "
                   "may loop ahead of that rule everywhere)")
            return SymbolicAnalysis(dataclasses.replace(
                whole_z3.report, method={**(whole_z3.report.method or {}), "why": why}))
    try:
        return analyze(spec, scope=scope, strict=strict, progress=progress,
                       independent=independent)
    except BuildError as exc:
        if undecided is None or exc.name is not None:
            raise
        # refused for its size: say why the components did not decide
        raise BuildError(f"{exc.message}; checked whole because a component reports: "
                         f"{undecided.error.message}, and another component has no valid "
                         "state, so its repairs may loop ahead of that rule everywhere "
                         "(the components cannot tell whether the whole machine applies it)",
                         name=exc.name, state=exc.state) from None
