"""WFC, CC1 and CC2 proved with z3, for machines too wide to enumerate.

The checks are the enumeration's (``convergent.engine.check``), asked as
satisfiability questions over one symbolic state instead of answered state
by state:

* **WFC.** ``rho`` is one repair step (first failing invariant repairs).
  The smallest ``k`` with "after ``k`` repair steps every state is valid"
  (unsat of ``not valid(rho^k(s))``) is the exact maximal repair depth, as
  enumeration reports it; then ``nf = rho^k`` exactly. While no ``k`` up to
  the bound works, a repair cycle of length ``k`` is searched
  (``rho^k(s) == s`` with ``s`` invalid): found, it is a concrete WFC
  counterexample; none up to the bound is ``SymbolicUndecided`` (an error,
  never a pass).
* **CC1** for each declared pair: ``nf(b(nf(a(s)))) != nf(a(nf(b(s))))`` for
  some valid ``s`` is unsat, or its model is the counterexample.
* **Reachable scope.** Reachable states are valid, so a pair that commutes at
  every valid state commutes where reachable. For a pair that does not, an
  inductive invariant is sought (Houdini: candidate facts true at the
  initial state, dropped until every event preserves the rest, proved by
  z3) that excludes every failing state; or a failing state is reached by a
  bounded run from the initial state (the counterexample with its trace).
  When neither settles it, the report says scope ``all`` was used.
* **CC2** for each event: ``nf(e(s)) != nf(e(rho(s)))`` at some invalid ``s``.

Evaluation failures (division by zero; overflow under ``overflow: error``)
are build errors where enumeration raises them: a ``holds`` where the
invariants before it hold, a repair where its invariant is the first to
fail, an event at a valid state, an event at an invalid state or after one
repair of it (CC2).

Every state the solver proposes is replayed concretely (``concrete.py``)
before it is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import z3  # type: ignore[import-untyped, unused-ignore]

from ..engine.decode import describe_state
from ..engine.report import (
    CC1Counterexample,
    CC1Result,
    CC2Counterexample,
    CC2Result,
    Report,
    StateCounts,
    WFCCounterexample,
    WFCResult,
)
from ..errors import BuildError, ConvergentError
from ..spec.model import Event, MachineSpec
from .concrete import Concrete
from .encode import Encoder, SymState

__all__ = ["DEFAULT_MAX_DEPTH", "SymbolicUndecided", "check_symbolic"]

DEFAULT_MAX_DEPTH = 64
"""Repair steps unrolled at most when proving termination."""
DEFAULT_RUN_DEPTH = 6
"""Events run from the initial state when a reachable counterexample is sought."""
DEFAULT_TIMEOUT_MS = 60_000
"""Per solver query; a query that times out makes the check undecided."""
COUNT_VALID_UP_TO = 2**22
"""Valid states are counted (numpy over the invariants' vars) up to this many
combinations of those vars; beyond, ``states.valid`` is -1 (not counted)."""
MAX_CANDIDATES = 600


class SymbolicUndecided(ConvergentError):
    """The solver could not decide (termination not proved within the bound
    with no repair cycle found, or a query timed out / answered unknown).
    Never a pass: fall back to another method or raise the bound."""


@dataclass(frozen=True)
class _Candidate:
    text: str
    var: str
    build: Callable[[SymState], Any]


class _Session:
    def __init__(self, spec: MachineSpec, scope: str, strict: bool, max_depth: int,
                 run_depth: int, timeout_ms: int) -> None:
        self.spec = spec
        self.scope = scope
        self.strict = strict
        self.max_k = max_depth
        self.run_depth = run_depth
        self.timeout_ms = timeout_ms
        self.enc = Encoder(spec)
        self.events = {e.name: e for e in spec.events}
        self.k = 0
        self.seconds: dict[str, float] = {}
        self.queries = 0
        self._t0 = self._t = time.perf_counter()

    # ------------------------------------------------------------ solver plumbing

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self._t, 6)
        self._t = now

    def solver(self) -> z3.Solver:
        s = z3.Solver(ctx=self.enc.ctx)
        s.set("timeout", self.timeout_ms)
        return s

    def sat(self, solver: z3.Solver, what: str) -> bool:
        self.queries += 1
        got = solver.check()
        if got == z3.sat:
            return True
        if got == z3.unsat:
            return False
        raise SymbolicUndecided(f"{self.spec.name!r}: z3 could not decide {what} "
                                f"({solver.reason_unknown()})")

    def base(self, tag: str, solver: z3.Solver) -> dict[str, Any]:
        st = self.enc.fresh_state(tag)
        solver.add(self.enc.domain(st))
        return st

    def nf(self, st: SymState, solver: z3.Solver) -> SymState:
        """``rho^k(st)``: the normal form, k being the proved repair depth."""
        cur = st
        for _ in range(self.k):
            nxt = self.enc.fresh_state("n")
            r = self.enc.rho(cur)
            solver.add(self.enc.equal(nxt, r))
            cur = nxt
        return cur

    def step(self, ev: Event, st: SymState, solver: z3.Solver) -> SymState:
        raw, _, _ = self.enc.event(ev, st)
        mid = self.enc.fresh_state("e")
        solver.add(self.enc.equal(mid, raw))
        return self.nf(mid, solver)

    # ------------------------------------------------------------ run

    def run(self) -> Report:
        spec = self.spec
        warnings: list[str] = []
        self._rule_errors()
        self.lap("errors")
        wfc = self._wfc()
        self.lap("wfc")
        total = 1
        for v in spec.vars:
            total *= v.size
        valid_count = self._count_valid(total)
        method: dict[str, Any] = {"kind": "symbolic", "solver": f"z3 {z3.get_version_string()}",
                                  "repair_depth_bound": self.max_k,
                                  "footprints": "syntactic"}
        if valid_count < 0:
            method["valid_states"] = "not counted (the invariants' vars span too many values)"
        conc = Concrete(spec, self.k if wfc.ok else 0)
        init = dict(spec.initial)
        if not wfc.ok:
            return self._report("fail", StateCounts(total, valid_count, None), wfc, None, None,
                                warnings, init, method)
        self._event_errors()
        self.lap("event_errors")
        if conc.first_failing(init) is not None:
            inv = spec.invariants[conc.first_failing(init) or 0].name
            init = conc.nf(init)
            warnings.append(f"the initial state breaks invariant {inv!r}; reachability starts "
                            f"from its normal form {describe_state(init)}")
        self.init = init
        cc1 = self._cc1(conc, method, warnings)
        self.lap("cc1")
        cc2 = self._cc2(conc)
        self.lap("cc2")
        ok = cc1.ok
        if self.strict:
            ok = ok and cc2.ok and cc1.ok_all_valid
        method["queries"] = self.queries
        return self._report("pass" if ok else "fail", StateCounts(total, valid_count, None),
                            wfc, cc1, cc2, warnings, init, method)

    def _report(self, verdict: str, states: StateCounts, wfc: WFCResult,
                cc1: CC1Result | None, cc2: CC2Result | None, warnings: list[str],
                initial: dict[str, Any], method: dict[str, Any]) -> Report:
        spec = self.spec
        fps: dict[str, dict[str, list[str]]] = {}
        for e in spec.events:
            reads: set[str] = set()
            if e.guard is not None and e.guard.expr is not None:
                reads |= e.guard.expr.free_vars
            for x in e.apply.exprs:
                reads |= x.free_vars
            fps[e.name] = {"reads": _ordered(spec, reads),
                           "writes": _ordered(spec, set(e.apply.targets))}
        ifps: dict[str, dict[str, list[str]]] = {}
        for inv in spec.invariants:
            watches = set(inv.holds.expr.free_vars) if inv.holds.expr is not None else set()
            ifps[inv.name] = {"watches": _ordered(spec, watches),
                              "repair_writes": _ordered(spec, set(inv.repair.targets))}
        self.seconds["total"] = round(time.perf_counter() - self._t0, 6)
        return Report(spec.name, verdict, self.scope if cc1 is None else cc1.scope, self.strict,
                      states, wfc, cc1, cc2, fps, ifps, None, warnings, dict(self.seconds),
                      initial, [e.name for e in spec.events], spec.version, "", None, method)

    # ------------------------------------------------------------ evaluation errors

    def _rule_errors(self) -> None:
        """A ``holds`` that cannot be evaluated where the invariants before it
        hold, a repair that fails where it is the one to repair: build errors,
        as the enumeration's normalizer raises them."""
        enc = self.enc
        invs = self.spec.invariants
        for i, inv in enumerate(invs):
            solver = self.solver()
            st = self.base("h", solver)
            h = enc.holds(inv, st)
            if h.err is None:
                continue
            solver.add(*[enc.holds(invs[j], st).term for j in range(i)], h.err)
            if self.sat(solver, f"whether the holds of {inv.name!r} can fail"):
                state = enc.read_model(solver.model(), st)
                raise BuildError(f"the holds of invariant {inv.name!r} cannot be evaluated, at "
                                 f"{describe_state(state)}", name=inv.name, state=state)
        for i, inv in enumerate(invs):
            solver = self.solver()
            st = self.base("r", solver)
            _, err, ovf = enc.assignment(inv.repair, st, f"the repair of {inv.name!r}")
            solver.add(enc.first_fails(st, i), z3.Or(err, ovf))
            if self.sat(solver, f"whether the repair of {inv.name!r} can fail"):
                state = enc.read_model(solver.model(), st)
                raise BuildError(f"the repair of invariant {inv.name!r} assigns a value outside "
                                 "an int range with overflow: error (or cannot be evaluated), "
                                 f"at {describe_state(state)}", name=inv.name, state=state)

    def _event_errors(self) -> None:
        enc = self.enc
        for ev in self.spec.events:
            solver = self.solver()
            st = self.base("v", solver)
            _, err, ovf = enc.event(ev, st)
            solver.add(enc.valid(st), z3.Or(err, ovf))
            if self.sat(solver, f"whether event {ev.name!r} can fail"):
                state = enc.read_model(solver.model(), st)
                raise BuildError(f"event {ev.name!r} {_explain(self.spec, ev, state)} at the "
                                 f"valid state {describe_state(state)}", name=ev.name,
                                 state=state)

    # ------------------------------------------------------------ WFC

    def _wfc(self) -> WFCResult:
        enc = self.enc
        solver = self.solver()
        chain = [self.base("w", solver)]
        for k in range(self.max_k + 1):
            solver.push()
            solver.add(z3.Not(enc.valid(chain[k])))
            unfinished = self.sat(solver, f"whether repairs end within {k} steps")
            solver.pop()
            if not unfinished:
                self.k = k
                return WFCResult(True, k)
            if k >= 1:
                solver.push()
                solver.add(z3.Not(enc.valid(chain[0])), enc.equal(chain[k], chain[0]))
                looping = self.sat(solver, f"whether a repair cycle of length {k} exists")
                if looping:
                    state = enc.read_model(solver.model(), chain[0])
                    solver.pop()
                    cycle, repairs = Concrete(self.spec, 0).cycle(state)
                    return WFCResult(False, None, WFCCounterexample(state, cycle, repairs,
                                                                    None, []))
                solver.pop()
            nxt = enc.fresh_state("w")
            solver.add(enc.equal(nxt, enc.rho(chain[k])))
            chain.append(nxt)
        raise SymbolicUndecided(
            f"{self.spec.name!r}: could not prove that repairs terminate within "
            f"{self.max_k} steps, and found no repair cycle of at most {self.max_k} steps "
            "(raise max_depth, or check by enumeration)")

    # ------------------------------------------------------------ CC1

    def _pair_query(self, a: Event, b: Event, extra: Callable[[SymState], Any] | None
                    ) -> tuple[z3.Solver, SymState]:
        enc = self.enc
        solver = self.solver()
        st = self.base("c", solver)
        solver.add(enc.valid(st))
        if extra is not None:
            solver.add(extra(st))
        ab = self.step(b, self.step(a, st, solver), solver)
        ba = self.step(a, self.step(b, st, solver), solver)
        solver.add(enc.differ(ab, ba))
        return solver, st

    def _cex(self, conc: Concrete, pair: tuple[str, str], state: dict[str, Any],
             trace: list[str] | None) -> CC1Counterexample:
        a, b = self.events[pair[0]], self.events[pair[1]]
        o1 = conc.step(b, conc.step(a, state))
        o2 = conc.step(a, conc.step(b, state))
        if o1 == o2:  # pragma: no cover - the translation disagrees with evaluation
            raise AssertionError(f"z3 claims {pair} do not commute at {state}, but both "
                                 f"orders give {o1}")
        return CC1Counterexample(pair, state, trace, o1, o2)

    def _cc1(self, conc: Concrete, method: dict[str, Any], warnings: list[str]) -> CC1Result:
        pairs = list(self.spec.independent)
        failing: list[tuple[str, str]] = []
        first: CC1Counterexample | None = None
        for pair in pairs:
            solver, st = self._pair_query(self.events[pair[0]], self.events[pair[1]], None)
            if self.sat(solver, f"CC1 for {pair}"):
                failing.append(pair)
                if first is None:
                    first = self._cex(conc, pair, self.enc.read_model(solver.model(), st), None)
        ok_all = not failing
        if ok_all:
            method["reachable"] = "implied: every pair commutes at every valid state"
            return CC1Result(True, self.scope, len(pairs), True, True, None, None, [], [])
        # reachable: a failing state reached by a run, or an invariant excluding them all
        try:
            found = self._reachable_failure(conc, failing)
        except SymbolicUndecided as exc:  # reachability is a refinement: fall back
            found = None
            warnings.append(f"no run to a counterexample: {exc}")
        if found is not None:
            cex, failing_r = found
            method["reachable"] = "counterexample reached by a run from the initial state"
            if self.scope == "reachable":
                return CC1Result(False, "reachable", len(pairs), False, False, cex, cex,
                                 failing_r, failing)
            return CC1Result(False, "all", len(pairs), False, False, cex, cex, failing_r,
                             failing)
        try:
            invariant = self._inductive_invariant()
            proved = self._excludes(invariant, failing)
        except SymbolicUndecided as exc:
            proved = False
            warnings.append(f"no inductive invariant: {exc}")
        if proved:
            method["reachable"] = "proved by an inductive invariant"
            method["inductive_invariant"] = [c.text for c in invariant]
            if self.scope == "reachable":
                return CC1Result(True, "reachable", len(pairs), True, False, None, first, [],
                                 failing)
            return CC1Result(False, "all", len(pairs), True, False, first, first, [], failing)
        method["reachable"] = "not decided (no inductive invariant found; scope 'all' used)"
        if self.scope == "reachable":
            warnings.append("reachability could not be decided symbolically: CC1 was checked "
                            "over every valid state (scope 'all')")
        # undecided reachable: never claimed to hold
        return CC1Result(False, "all", len(pairs), False, False, first, first, [], failing)

    def _excludes(self, invariant: list[_Candidate], failing: list[tuple[str, str]]) -> bool:
        def holds(st: SymState) -> Any:
            return z3.And([c.build(st) for c in invariant]) if invariant else self.enc.true
        for pair in failing:
            solver, _ = self._pair_query(self.events[pair[0]], self.events[pair[1]], holds)
            if self.sat(solver, f"CC1 for {pair} under the inductive invariant"):
                return False
        return True

    def _reachable_failure(self, conc: Concrete, failing: list[tuple[str, str]]
                           ) -> tuple[CC1Counterexample, list[tuple[str, str]]] | None:
        """The shallowest failing state reached from the initial state within
        ``run_depth`` events (each event chosen by the solver)."""
        enc = self.enc
        events = list(self.spec.events)
        solver = self.solver()
        cur: SymState = enc.const_state(self.init)
        selectors: list[Any] = []
        for depth in range(self.run_depth + 1):
            hits: list[tuple[tuple[str, str], dict[str, Any], list[str]]] = []
            for pair in failing:
                solver.push()
                a, b = self.events[pair[0]], self.events[pair[1]]
                ab = self.step(b, self.step(a, cur, solver), solver)
                ba = self.step(a, self.step(b, cur, solver), solver)
                solver.add(enc.differ(ab, ba))
                if self.sat(solver, f"a run of {depth} events reaching a CC1 failure"):
                    model = solver.model()
                    trace = [events[model.eval(sel, model_completion=True).as_long()].name
                             for sel in selectors]
                    hits.append((pair, enc.read_model(model, cur), trace))
                solver.pop()
            if hits:
                pair, state, trace = hits[0]
                return self._cex(conc, pair, state, trace), [h[0] for h in hits]
            if depth == self.run_depth or not events:
                return None
            sel = z3.Int(f"sel{depth}", enc.ctx)
            solver.add(sel >= 0, sel < len(events))
            nexts = [self.step(e, cur, solver) for e in events]
            nxt = enc.fresh_state("r")
            for name in enc.vars:
                value = nexts[-1][name]
                for i in range(len(events) - 2, -1, -1):
                    value = z3.If(sel == i, nexts[i][name], value)
                solver.add(nxt[name] == value)
            selectors.append(sel)
            cur = nxt
        return None

    def _candidates(self) -> list[_Candidate]:
        """Facts true at the (normalized) initial state: unit facts on each
        var and implications between facts on two vars."""
        atoms: list[_Candidate] = []
        for name, var in self.enc.vars.items():
            v0 = self.init[name]
            if var.kind == "bool":
                atoms.append(_Candidate(name, name, _bool_atom(name, True)))
                atoms.append(_Candidate(f"not {name}", name, _bool_atom(name, False)))
            elif var.kind == "enum":
                for i, value in enumerate(var.values):
                    atoms.append(_Candidate(f"{name} == '{value}'", name,
                                            _int_atom(name, "==", i)))
            else:
                for op, text in (("==", f"{name} == {v0}"), ("<=", f"{name} <= {v0}"),
                                 (">=", f"{name} >= {v0}")):
                    atoms.append(_Candidate(text, name, _int_atom(name, op, v0)))
        cands = [a for a in atoms if self._at_init(a)]
        off = [a for a in atoms if not self._at_init(a)]
        for p in off:   # p implies q holds at the initial state because p does not
            for q in off:
                if p.var != q.var:
                    cands.append(_Candidate(f"{p.text} implies {q.text}", p.var,
                                            _implies(p, q)))
                if len(cands) >= MAX_CANDIDATES:
                    return cands
        return cands

    def _at_init(self, c: _Candidate) -> bool:
        return z3.is_true(z3.simplify(c.build(self.enc.const_state(self.init))))

    def _inductive_invariant(self) -> list[_Candidate]:
        """Houdini: drop candidates until every event step preserves the rest
        at every valid state satisfying them."""
        enc = self.enc
        cands = self._candidates()
        changed = True
        while changed and cands:
            changed = False
            for ev in self.spec.events:
                while cands:
                    solver = self.solver()
                    st = self.base("i", solver)
                    solver.add(enc.valid(st), *[c.build(st) for c in cands])
                    after = self.step(ev, st, solver)
                    post = [c.build(after) for c in cands]
                    solver.add(z3.Or([z3.Not(p) for p in post]))
                    if not self.sat(solver, "whether candidate facts are inductive"):
                        break
                    model = solver.model()
                    keep = [c for c, p in zip(cands, post)
                            if z3.is_true(model.eval(p, model_completion=True))]
                    cands = keep
                    changed = True
        return cands

    # ------------------------------------------------------------ CC2

    def _cc2(self, conc: Concrete) -> CC2Result:
        enc = self.enc
        for ev in self.spec.events:
            solver = self.solver()
            st = self.base("x", solver)
            solver.add(z3.Not(enc.valid(st)))
            _, err, _ = enc.event(ev, st)
            r = enc.rho(st)
            _, err_r, _ = enc.event(ev, r)
            solver.add(z3.Or(err, err_r))
            if self.sat(solver, f"whether event {ev.name!r} fails at an invalid state"):
                state = enc.read_model(solver.model(), st)
                raise BuildError(f"event {ev.name!r} cannot be evaluated at the invalid state "
                                 f"{describe_state(state)} (or after one repair of it), which "
                                 "CC2 needs", name=ev.name, state=state)
        for ev in self.spec.events:
            solver = self.solver()
            st = self.base("x", solver)
            solver.add(z3.Not(enc.valid(st)))
            direct = self.step(ev, st, solver)
            rst = enc.fresh_state("x")
            solver.add(enc.equal(rst, enc.rho(st)))
            after = self.step(ev, rst, solver)
            solver.add(enc.differ(direct, after))
            if self.sat(solver, f"CC2 for {ev.name!r}"):
                state = enc.read_model(solver.model(), st)
                d = conc.step(ev, state)
                a = conc.step(ev, conc.rho(state))
                if d == a:  # pragma: no cover - the translation disagrees with evaluation
                    raise AssertionError(f"z3 claims CC2 fails for {ev.name} at {state}")
                return CC2Result(False, CC2Counterexample(ev.name, state, d, a))
        return CC2Result(True, None)

    # ------------------------------------------------------------ counts

    def _count_valid(self, total: int) -> int:
        """Valid states, exactly, when the invariants' vars span few enough
        combinations to evaluate them vectorized; -1 otherwise."""
        spec = self.spec
        used: set[str] = set()
        for inv in spec.invariants:
            if inv.holds.expr is None:
                return -1
            used |= inv.holds.expr.free_vars
        names = [v.name for v in spec.vars if v.name in used]
        size = 1
        for n in names:
            size *= spec.var_map[n].size
        if size > COUNT_VALID_UP_TO:
            return -1
        grids = np.meshgrid(*[np.arange(spec.var_map[n].size, dtype=np.int64) for n in names],
                            indexing="ij")
        cols: dict[str, np.ndarray] = {}
        for n, g in zip(names, grids):
            var = spec.var_map[n]
            flat = g.reshape(-1)
            cols[n] = flat.astype(bool) if var.kind == "bool" else (
                flat + var.lo if var.kind == "int" else flat)
        ok = np.ones(size, dtype=bool)
        for inv in spec.invariants:
            assert inv.holds.expr is not None
            value, _ = inv.holds.expr.eval_vec(cols, size)  # type: ignore[call-arg]
            ok &= np.broadcast_to(np.asarray(value, dtype=bool), (size,))
        return int(ok.sum()) * (total // size)


def _int_atom(name: str, op: str, value: int) -> Callable[[SymState], Any]:
    if op == "==":
        return lambda s: s[name] == value
    if op == "<=":
        return lambda s: s[name] <= value
    return lambda s: s[name] >= value


def _bool_atom(name: str, positive: bool) -> Callable[[SymState], Any]:
    if positive:
        return lambda s: s[name]
    return lambda s: z3.Not(s[name])


def _implies(p: _Candidate, q: _Candidate) -> Callable[[SymState], Any]:
    return lambda s: z3.Implies(p.build(s), q.build(s))


def _ordered(spec: MachineSpec, names: set[str] | frozenset[str]) -> list[str]:
    return [v.name for v in spec.vars if v.name in names]


def _explain(spec: MachineSpec, ev: Event, state: dict[str, Any]) -> str:
    """Re-evaluate at one state to name the value that overflowed."""
    vars = spec.var_map
    try:
        if ev.guard is not None and not ev.guard.evaluate(vars, state):
            return "cannot evaluate its guard"
        values = ev.apply.evaluate(vars, state)
    except Exception as exc:  # the failure itself is what we report
        return f"fails to evaluate ({type(exc).__name__}: {exc})"
    for name, value in values.items():
        var = vars[name]
        if var.kind == "int" and not var.lo <= value <= var.hi and var.overflow == "error":
            return (f"assigns {name} = {value}, outside [{var.lo}, {var.hi}] "
                    "(overflow: error)")
    return "fails to evaluate"


def check_symbolic(spec: MachineSpec, *, scope: str = "all", strict: bool = False,
                   max_depth: int = DEFAULT_MAX_DEPTH, run_depth: int = DEFAULT_RUN_DEPTH,
                   timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Report:
    """Verify ``spec`` with z3 (ints of any declared range, bools, enums).

    Args:
        scope: ``"all"`` (every valid state) or ``"reachable"``; reachable is
            proved through an inductive invariant or refuted by a run from
            the initial state, else the report's CC1 scope says ``"all"``.
        strict: also require CC2 and CC1 at every valid state.
        max_depth: the most repair steps unrolled to prove termination.
        run_depth: the most events run from the initial state to reach a
            counterexample.
        timeout_ms: per solver query.

    Returns:
        A Report with ``method={"kind": "symbolic", ...}``.

    Raises:
        BuildError: an evaluation failure where enumeration reports one.
        SymbolicUndecided: termination unproved within ``max_depth`` with no
            cycle found, or a query the solver could not decide.
        SymbolicUnsupported: a rule is a Python function.
    """
    if scope not in ("reachable", "all"):
        raise ValueError(f"scope={scope!r} (expected 'reachable' or 'all')")
    if max_depth < 0 or run_depth < 0 or timeout_ms <= 0:
        raise ValueError(f"max_depth={max_depth}, run_depth={run_depth}, "
                         f"timeout_ms={timeout_ms} (expected >= 0, >= 0, > 0)")
    return _Session(spec, scope, strict, max_depth, run_depth, timeout_ms).run()
