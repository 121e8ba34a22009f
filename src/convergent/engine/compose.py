"""Compositional checking: a machine whose rules fall into groups that share
no variable is checked group by group, and the product is proved from them.

Why this is exact (docs/composition.md gives the argument in full). Split the
vars into components: two vars are in one component when some event or
invariant touches both (its code reads or assigns them on some path; these
are the *syntactic* footprints, a superset of the semantic ones, so every
rule runs unchanged on its component alone). Then, for states
s = (s_1, ..., s_k):

* valid(s) = valid_1(s_1) and ... and valid_k(s_k), and a repair of one
  component changes only its vars, so repairs of different components
  commute and nf(s) = (nf_1(s_1), ..., nf_k(s_k)); normalization terminates
  iff it does in every component, and takes the sum of their depths;
* an event of component i changes s_i only, as in its component machine, so
  the reachable states are the product of the components' reachable sets;
* two events of different components commute at every state (neither reads
  nor writes what the other does); a pair inside one component commutes at
  a product state iff it commutes at its component state, in either scope;
* CC2 at an invalid s repairs the first failing invariant; if it is in
  another component than the event's, both orders end in the same normal
  form, and otherwise it is the component's own CC2 (the other components
  then at valid states, which exist once WFC holds).

So each verdict is the conjunction of the components' verdicts, every count
is a product, and every counterexample of a component is one of the whole
machine once the other components sit at their normalized initial states.
Vars that no rule touches are constants: they are never enumerated.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BuildError
from ..spec.model import MachineSpec
from .compile import CompiledMachine, compile_machine
from .decode import local_to_state
from .delivery import contract_words
from .digest import policy_digest
from .space import Space
from .tabulate import MAX_RULE_SPACE
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

if TYPE_CHECKING:  # pragma: no cover
    from .check import Analysis, Progress, SymbolicAnalysis

__all__ = ["COMPOSE_ABOVE", "Component", "ComposedAnalysis", "SharedValuesUncovered",
           "analyze_composed", "read_only", "split"]

COMPOSE_ABOVE = 1 << 22
"""With ``method="auto"``, a machine bigger than this is checked by
components when it splits (smaller ones get full tables, which exports and
the replica runtime use)."""


@dataclass(frozen=True)
class Component:
    """One group of vars with the rules that touch them."""

    vars: tuple[int, ...]              # global var indices, in spec order
    events: tuple[int, ...]            # global event indices
    invariants: tuple[int, ...]        # global invariant indices
    #: read-only vars (no event or repair ever changes them) this component
    #: holds together with another one; also in ``vars``
    shared: tuple[int, ...] = ()

    def size(self, spec: MachineSpec) -> int:
        return prod(spec.vars[v].size for v in self.vars)


MAX_SHARED_SPACE = 1 << 20
"""Read-only vars are shared between components only while the product of
their domains stays below this: the valid count and the repair depth are
combined over every assignment of them."""


def read_only(cm: CompiledMachine) -> frozenset[int]:
    """The vars some rule touches and no event or repair ever changes. The
    write sets are the engine's semantic ones, exact over the whole space
    (a var assigned its own value is not written), so such a var keeps its
    value on every transition the machine can take."""
    written: set[int] = set()
    touched: set[int] = set()
    for e in cm.events:
        written |= e.writes
        touched |= e.syntactic
    for i in cm.invariants:
        written |= set(i.repair.writes)
        touched |= i.syntactic
    return frozenset(touched - written)


def split(cm: CompiledMachine, *, share: bool = True) -> tuple[list[Component], list[int]]:
    """The components of ``cm`` (those with at least one rule, in the order of
    their first var) and the vars no rule touches.

    With ``share``, a read-only var does not join the groups of the rules
    that read it: each such group holds a copy (``Component.shared``). That
    is exact because the var never changes: for each of its values the
    machine is the product of the groups at that value (the combination
    below adds the condition that makes the product's counts and
    counterexamples whole-machine ones, and ``analyze_any`` falls back to
    ``share=False`` where it does not hold)."""
    rules = [(e.syntactic, e.index, True) for e in cm.events] + [
        (i.syntactic, i.index, False) for i in cm.invariants]
    fixed = read_only(cm) if share else frozenset()
    return _components(list(cm.m.radices), rules, fixed)


def split_spec(spec: MachineSpec, *, share: bool = True
               ) -> tuple[list[Component], list[int]] | None:
    """``split`` from the rules' text alone, without tabulating them: for
    machines whose rules span more values than a table holds (the parts too
    big to enumerate are then checked by z3). A var is read-only when no
    apply or repair names it as a target (a superset of what the engine's
    semantic write sets would show, so sharing is never assumed wrongly).
    None when a rule is a Python function (its reads are known only by
    running it)."""
    index = {v.name: i for i, v in enumerate(spec.vars)}
    rules: list[tuple[frozenset[int], int, bool]] = []
    targets: set[int] = set()
    for k, e in enumerate(spec.events):
        if e.apply.fn is not None or (e.guard is not None and e.guard.expr is None):
            return None
        names = set(e.apply.targets)
        for x in e.apply.exprs:
            names |= x.free_vars
        if e.guard is not None and e.guard.expr is not None:
            names |= e.guard.expr.free_vars
        rules.append((frozenset(index[n] for n in names), k, True))
        targets |= {index[t] for t in e.apply.targets}
    for k, inv in enumerate(spec.invariants):
        if inv.holds.expr is None or inv.repair.fn is not None:
            return None
        names = set(inv.holds.expr.free_vars) | set(inv.repair.targets)
        for x in inv.repair.exprs:
            names |= x.free_vars
        rules.append((frozenset(index[n] for n in names), k, False))
        targets |= {index[t] for t in inv.repair.targets}
    touched = frozenset().union(*(r[0] for r in rules)) if rules else frozenset()
    fixed = frozenset(touched - targets) if share else frozenset()
    return _components([v.size for v in spec.vars], rules, fixed)


def _components(radices: list[int], rules: list[tuple[frozenset[int], int, bool]],
                fixed: frozenset[int]) -> tuple[list[Component], list[int]]:
    """Group the vars by the rules that touch them (read-only ``fixed`` vars
    excepted: they are copied into every group that reads them)."""
    n = len(radices)
    if fixed and prod(radices[v] for v in fixed) > MAX_SHARED_SPACE:
        fixed = frozenset()
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(vs: frozenset[int]) -> None:
        it = iter(sorted(vs))
        first = next(it, None)
        if first is None:
            return
        root = find(first)
        for v in it:
            r = find(v)
            if r != root:
                parent[r] = root

    touched: set[int] = set()
    for syn, _, _ in rules:
        union(syn - fixed)
        touched |= syn
    groups: dict[int, list[int]] = {}
    for v in range(n):
        if v in touched and v not in fixed:
            groups.setdefault(find(v), []).append(v)
    if fixed and not groups:
        return _components(radices, rules, frozenset())
    roots = [find(vs[0]) for vs in sorted(groups.values(), key=lambda g: g[0])]
    at = {r: k for k, r in enumerate(roots)}
    own_vars: list[set[int]] = [set(groups[r]) for r in roots]
    evs: list[list[int]] = [[] for _ in roots]
    invs: list[list[int]] = [[] for _ in roots]
    # rules that move a group first: then every read-only var is in the
    # groups that read it when the rules over read-only vars alone are placed
    for syn, index, is_event in sorted(rules, key=lambda r: not (r[0] - fixed)):
        moving = syn - fixed
        if moving:
            k = at[find(next(iter(moving)))]
        elif own_vars:
            # a rule over read-only vars alone (or over none): it changes
            # nothing, so any group may hold it; the first that already
            # reads one of its vars keeps the copies few
            k = next((j for j, vs in enumerate(own_vars) if vs & syn), 0)
        else:
            continue
        (evs if is_event else invs)[k].append(index)
        own_vars[k] |= syn
    holders: dict[int, int] = {}
    for vs in own_vars:
        for v in vs & fixed:
            holders[v] = holders.get(v, 0) + 1
    comps = [Component(tuple(sorted(vs)), tuple(sorted(e)), tuple(sorted(i)),
                       tuple(sorted(v for v in vs & fixed if holders[v] > 1)))
             for vs, e, i in zip(own_vars, evs, invs)]
    idle = [v for v in range(n) if v not in touched]
    return comps, idle


class SharedValuesUncovered(Exception):
    """A component has no valid state at some value of a read-only var it
    shares: the product of the components then counts and reports states
    that are never valid as a whole, so the split is not used."""


@dataclass
class ComposedAnalysis:
    """The report of a composed check and the analyses of its components
    (each with the full tables of its own, much smaller, state space, or a
    z3 report for a component too big to enumerate)."""

    report: Report
    spec: MachineSpec
    components: list[Component]
    parts: list[Analysis | SymbolicAnalysis]
    idle: list[int]
    compiled: CompiledMachine | None

    @property
    def tabulated(self) -> bool:
        """Whether every component has tables (a machine can be built)."""
        return all(hasattr(p, "step") for p in self.parts)


def _pairs_by_component(spec: MachineSpec, comps: list[Component]
                        ) -> list[tuple[tuple[str, str], ...]]:
    """The declared pairs of each component (both events in it), in one pass
    over the pairs: a machine of many components may declare every pair."""
    where = {spec.events[e].name: k for k, c in enumerate(comps) for e in c.events}
    out: list[list[tuple[str, str]]] = [[] for _ in comps]
    for a, b in spec.independent:
        ka = where.get(a)
        if ka is not None and ka == where.get(b):
            out[ka].append((a, b))
    return [tuple(p) for p in out]


def _sub_spec(spec: MachineSpec, comp: Component,
              pairs: tuple[tuple[str, str], ...]) -> MachineSpec:
    # declared footprints were checked on the whole machine (compile_machine);
    # they may name vars of other components (a warning there), so they are
    # not carried into the component
    events = [dataclasses.replace(spec.events[i], reads=None, writes=None)
              for i in comp.events]
    vars_ = tuple(spec.vars[v] for v in comp.vars)
    initial = {v.name: spec.initial[v.name] for v in vars_}
    invariants = tuple(dataclasses.replace(spec.invariants[i], watches=None)
                       for i in comp.invariants)
    return MachineSpec(spec.name, vars_, invariants,
                       tuple(events), pairs, initial, spec.version,
                       independent_all=spec.independent_all, source=spec.source)


def analyze_composed(spec: MachineSpec, *, scope: str, strict: bool,
                     progress: Progress | None, independent: str,
                     cm: CompiledMachine | None = None,
                     comps: tuple[list[Component], list[int]] | None = None,
                     ) -> ComposedAnalysis:
    """Check ``spec`` component by component (see the module docstring).

    A component enumeration cannot afford (``prefer_z3``) is checked by z3
    (convergent.symbolic) when its rules are spec text and z3 is installed;
    the report's ``method.components[k].method`` says which. Without ``cm``
    (rules too wide to tabulate; ``comps`` then come from ``split_spec``)
    there is no policy digest."""
    from .check import SymbolicAnalysis, _Checker
    t0 = time.perf_counter()
    if comps is None:
        cm = cm if cm is not None else compile_machine(spec)
        comps = split(cm)
    components, idle = comps
    t_compile = time.perf_counter() - t0
    parts: list[Analysis | SymbolicAnalysis] = []
    pairs = _pairs_by_component(spec, components)
    deferred: list[BuildError] = []
    # a holds or repair that fails in a component is an error of the whole
    # machine only where the invariants before it (in the spec's order) can
    # hold in every other component at once: decided after all ran
    rule_errors: list[tuple[BuildError, int]] = []
    inv_names = {i.name for i in spec.invariants}
    for k, comp in enumerate(components):
        if progress is not None:
            progress("components", k, len(components))
        sub = _sub_spec(spec, comp, pairs[k])
        if prefer_z3(comp.size(spec), len(comp.events)) or (
                cm is None and widest_rule(sub) > MAX_RULE_SPACE):
            try:
                got = _symbolic_part(sub, scope, strict)
            except BuildError as exc:
                if exc.name in inv_names:
                    rule_errors.append((exc, k))
                    parts.append(None)   # type: ignore[arg-type]  # (decided below)
                    continue
                if exc.name not in {e.name for e in sub.events}:
                    raise
                # an event fails to evaluate, found after z3 proved WFC: an
                # error of the whole machine only if no component's repairs
                # loop (as for an enumerated component below)
                deferred.append(exc)
                parts.append(_wfc_only(sub, scope, strict))
                continue
            if got is not None:
                parts.append(got)
                continue
        checker = _Checker(sub, scope, strict, progress, independent)
        try:
            parts.append(checker.run())
        except BuildError as exc:
            if checker.partial is None and exc.name in inv_names:
                rule_errors.append((exc, k))
                parts.append(None)   # type: ignore[arg-type]  # (decided below)
                continue
            if checker.partial is None:
                raise            # compiling fails: so does the whole
            # an event fails to evaluate: an error of the whole machine only
            # if no component's repairs loop (enumeration reports that first)
            deferred.append(exc)
            parts.append(checker.partial)
    if rule_errors:
        _raise_rule_error(spec, components, parts, rule_errors)
    if any(isinstance(p, SymbolicAnalysis) for p in parts) and any(
            c.shared for c in components):
        raise SharedValuesUncovered(None)   # valid states per shared value need tables
    if deferred and all(p.report.wfc.ok for p in parts):
        # the one whole enumeration raises: events at valid states are checked
        # (in event order) before any is evaluated at an invalid one (CC2)
        order = {e.name: i for i, e in enumerate(spec.events)}
        raise min(deferred, key=lambda x: ("at the invalid state" in x.message,
                                           order.get(x.name or "", len(order))))
    if progress is not None:
        progress("components", len(components), len(components))
    shared = _SharedView.of(spec, components, parts)  # type: ignore[arg-type]
    report = _combine(spec, cm, components, parts, idle, scope, strict, independent, shared,
                      {"compile": round(t_compile, 6),
                       "components": round(time.perf_counter() - t0 - t_compile, 6),
                       "total": round(time.perf_counter() - t0, 6)})
    return ComposedAnalysis(report, spec, components, parts, idle, cm)


def _raise_rule_error(spec: MachineSpec, components: list[Component],
                      parts: Sequence[Analysis | SymbolicAnalysis | None],
                      errors: list[tuple[BuildError, int]]) -> None:
    """Raise the error the whole machine's normalizer raises, where the
    components prove it does: a holds or repair of invariant I that fails at
    a state of its component fails at a whole state exactly when every other
    component has a state where its invariants before I hold, and a
    component with a valid state (an exact count, or WFC, whose normal forms
    are valid) has one. Otherwise (a component with no valid state, or one
    that failed too, or shared read-only vars) the whole machine may never
    reach that repair: its own repairs can loop first, ahead of I in the
    spec's order. ``RuleErrorUndecided`` then sends the caller to a whole
    analysis. Among errors it proves, the whole raises a failing holds
    before a failing repair, each in the spec's order."""
    def has_valid(p: Analysis | SymbolicAnalysis | None) -> bool:
        if p is None:
            return False
        r = p.report
        return (r.states.valid or 0) > 0 or bool(r.wfc is not None and r.wfc.ok)
    proved = []
    if not any(c.shared for c in components):
        for exc, k in errors:
            if all(has_valid(p) for j, p in enumerate(parts) if j != k):
                proved.append(exc)
    if not proved:
        raise RuleErrorUndecided(errors[0][0])
    order = {i.name: n for n, i in enumerate(spec.invariants)}
    raise min(proved, key=lambda x: ("the holds of" not in x.message,
                                     order.get(x.name or "", len(order))))


class RuleErrorUndecided(Exception):
    """A component's holds or repair fails, and the components cannot tell
    whether the whole machine ever applies it there (another component's
    repairs may loop first): the caller analyses the whole machine."""

    def __init__(self, error: BuildError) -> None:
        super().__init__(str(error))
        self.error = error


SYMBOLIC_ABOVE = 1 << 26
"""Below this many states a part is always enumerated (exact counts, full
tables); above, it goes to z3 where enumeration does not fit (``prefer_z3``)."""
ENUMERATE_SECONDS = 60.0
"""Enumeration estimated (``budget``, its fast end) to take longer than this
is not chosen by ``auto`` where z3 can decide instead."""


def prefer_z3(size: int, events: int) -> bool:
    """Whether ``auto`` checks a part of ``size`` states by z3 rather than by
    enumeration: only past SYMBOLIC_ABOVE states, and only where enumeration
    would be refused (too many states, not enough memory) or slow.
    Enumeration is preferred wherever it fits: its report is complete
    (valid and reachable counts, findings, the delivery contract, tables)."""
    if size <= SYMBOLIC_ABOVE:
        return False
    from .budget import MAX_STATES, _USABLE, available_memory, estimate
    if size > MAX_STATES:
        return True
    b = estimate(size, events)
    if b.seconds_low > ENUMERATE_SECONDS:
        return True
    avail = available_memory()
    return avail is not None and b.floor_bytes > _USABLE * avail


def symbolic_possible(spec: MachineSpec) -> bool:
    """Whether z3 is installed and every rule of ``spec`` is spec text (what
    convergent.symbolic encodes)."""
    try:
        import z3  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    for e in spec.events:
        if e.apply.fn is not None or (e.guard is not None and e.guard.expr is None):
            return False
    return all(i.holds.expr is not None and i.repair.fn is None for i in spec.invariants)


def widest_rule(spec: MachineSpec) -> int:
    """The most values one rule's text spans (the product of the domains of
    the vars it names): what its table would hold."""
    sizes = {v.name: v.size for v in spec.vars}
    widest = 1
    rules: list[tuple[Any, ...]] = [(e.guard, e.apply) for e in spec.events] + [
        (i.holds, i.repair) for i in spec.invariants]
    for pred, assign in rules:
        names = set(assign.targets)
        for x in assign.exprs:
            names |= x.free_vars
        if pred is not None and pred.expr is not None:
            names |= pred.expr.free_vars
        widest = max(widest, prod(sizes[n] for n in names))
    return widest


def _wfc_only(sub: MachineSpec, scope: str, strict: bool) -> SymbolicAnalysis:
    """What a composed report needs of a z3 component whose events fail to
    evaluate when another component's repairs loop: WFC holds in it (z3
    proved it before evaluating events), nothing else is known."""
    from .check import SymbolicAnalysis
    total = prod(v.size for v in sub.vars)
    report = Report(sub.name, "fail", scope, strict, StateCounts(total, -1, None),
                    WFCResult(True, None), None, None, {}, {}, None, [], {},
                    dict(sub.initial), [e.name for e in sub.events], sub.version, "", None,
                    {"kind": "symbolic", "stopped": "an event fails to evaluate"})
    return SymbolicAnalysis(report)


def _symbolic_part(sub: MachineSpec, scope: str, strict: bool) -> SymbolicAnalysis | None:
    """The component checked by z3, or None where z3 cannot decide it (the
    caller then enumerates, which refuses what does not fit)."""
    if not symbolic_possible(sub):
        return None
    from ..symbolic.check import SymbolicUndecided, check_symbolic
    from ..symbolic.encode import SymbolicUnsupported
    from .check import SymbolicAnalysis
    try:
        return SymbolicAnalysis(check_symbolic(sub, scope=scope, strict=strict))
    except (SymbolicUndecided, SymbolicUnsupported):
        return None


# --------------------------------------------------------------------------- combining


class _SharedView:
    """Components that hold copies of read-only vars, seen together: the
    valid count and repair depth summed over every assignment of the shared
    vars, and the smallest valid state of each component at each of them.

    The split is exact only if every component has a valid state at every
    value of the shared vars it holds: then a valid (or invalid) state of
    one component at some value extends, with valid states of the others at
    the same value, to a whole state where the same facts hold (the
    argument of the module docstring, for each value). Where some component
    has none, ``of`` raises SharedValuesUncovered."""

    def __init__(self, spec: MachineSpec, comps: list[Component], parts: list[Analysis],
                 shared: list[int]) -> None:
        self.spec = spec
        self.parts = parts
        self.comps = comps
        self.shared = shared
        radices = [spec.vars[v].size for v in shared]
        g = Space(radices, range(len(shared)))
        acc: np.ndarray | None = None
        depth: np.ndarray | None = np.zeros(g.size, dtype=np.int64)
        self.smallest: list[np.ndarray] = []
        self.strides: list[dict[int, int]] = []
        counts_all: list[tuple[np.ndarray, np.ndarray]] = []
        for c, p in zip(comps, parts):
            local = {v: c.vars.index(v) for v in shared if v in c.vars}
            full, norm = p.full, p.normalizer
            sr = Space(p.compiled.radices, local.values())
            valid = norm.valid[full.project(norm.space)]
            idx = full.project(sr)
            counts = np.bincount(idx[valid], minlength=sr.size).astype(np.int64)
            if (counts == 0).any():
                raise SharedValuesUncovered(c)
            vids = np.flatnonzero(valid)
            _, first = np.unique(idx[vids], return_index=True)
            self.smallest.append(vids[first])
            self.strides.append({v: sr.stride[loc] for v, loc in local.items()})
            gmap = np.zeros(g.size, dtype=np.int64)
            for j, v in enumerate(shared):
                if v in local:
                    gmap += g.digits(j).astype(np.int64) * sr.stride[local[v]]
            counts_all.append((counts, gmap))
            if depth is not None and norm.max_depth is not None:
                dmax = np.zeros(sr.size, dtype=np.int64)
                np.maximum.at(dmax, idx, norm.depth[full.project(norm.space)])
                depth += dmax[gmap]
            else:
                depth = None
        bound = g.size
        for counts, _ in counts_all:
            bound *= int(counts.max())
        for counts, gmap in counts_all:
            col = counts[gmap] if bound < 2**62 else counts[gmap].astype(object)
            acc = col if acc is None else acc * col
        assert acc is not None
        self.valid = int(acc.sum())
        self.max_depth = None if depth is None else int(depth.max())

    @classmethod
    def of(cls, spec: MachineSpec, comps: list[Component],
           parts: list[Analysis]) -> _SharedView | None:
        shared = sorted({v for c in comps for v in c.shared})
        return cls(spec, comps, parts, shared) if shared else None

    def fill(self, state: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        """``state`` (the vars of one component) completed with the smallest
        valid state of every other component at the same shared values
        (those ``state`` does not hold taken from ``base``)."""
        names = [self.spec.vars[v].name for v in self.shared]
        at = {n: state.get(n, base[n]) for n in names}
        out = dict(state)
        for c, p, smallest, strides in zip(self.comps, self.parts, self.smallest,
                                           self.strides):
            if all(self.spec.vars[v].name in state for v in c.vars):
                continue
            rid = sum(self.spec.vars[v].digit(at[self.spec.vars[v].name]) * w
                      for v, w in strides.items())
            for k, x in local_to_state(p.compiled, p.full, int(smallest[rid])).items():
                out.setdefault(k, x)
        out.update(at)
        return out

    def agrees(self, state: dict[str, Any], base: dict[str, Any]) -> bool:
        return all(state.get(self.spec.vars[v].name, base[self.spec.vars[v].name])
                   == base[self.spec.vars[v].name] for v in self.shared)


def _combine(spec: MachineSpec, cm: CompiledMachine | None, comps: list[Component],
             parts: list[Any], idle: list[int], scope: str, strict: bool,
             independent: str, shared: _SharedView | None,
             seconds: dict[str, float]) -> Report:
    from .check import SymbolicAnalysis
    reports = [p.report for p in parts]
    # components checked by z3 have reports, no tables: no global repair
    # walk, no valid count past what z3 counted, no reachable count, no
    # findings or delivery contract (z3 checks the declared pairs only)
    symbolic = [isinstance(p, SymbolicAnalysis) for p in parts]
    idle_size = prod(spec.vars[v].size for v in idle)
    # every other component at its (normalized) initial state: a real,
    # reachable, valid state once its WFC holds
    base: dict[str, Any] = {v.name: spec.initial[v.name] for v in spec.vars}
    for r in reports:
        base.update(r.initial)
    order = [v.name for v in spec.vars]

    def whole(state: dict[str, Any] | None) -> dict[str, Any] | None:
        """A component's state as a whole one: the others at their initial
        states, or (at other values of shared read-only vars) at their
        smallest valid states there."""
        if state is None:
            return None
        if shared is not None and not shared.agrees(state, base):
            state = shared.fill(state, base)
        return {k: state.get(k, base[k]) for k in order}

    total = prod(v.size for v in spec.vars)
    if any(r.states.valid < 0 for r in reports):
        valid = -1       # not counted (a z3 component spans too many values)
    elif shared is None:
        valid = prod(r.states.valid for r in reports) * idle_size
    else:
        valid = shared.valid * idle_size
    wfc_ok = all(r.wfc.ok for r in reports)
    cm_warnings = list(cm.warnings) if cm is not None else []
    warnings = cm_warnings + _initial_warning(spec, base)
    method: dict[str, Any] = {
        "kind": "composition",
        "components": [{"vars": [spec.vars[v].name for v in c.vars],
                        "events": [spec.events[e].name for e in c.events],
                        "invariants": [spec.invariants[i].name for i in c.invariants],
                        "states": r.states.total, "verdict": r.verdict,
                        "method": "symbolic" if sym else "enumeration",
                        **({"symbolic": r.method} if sym else {})}
                       for c, r, sym in zip(comps, reports, symbolic)],
        "constant_vars": [spec.vars[v].name for v in idle]}
    if shared is not None:
        method["shared_read_only"] = [spec.vars[v].name for v in shared.shared]
    fps = {}
    ifps = {}
    for r in reports:
        fps.update(r.footprints)
        ifps.update(r.invariant_footprints)
    fps = {e.name: fps[e.name] for e in spec.events if e.name in fps}
    ifps = {i.name: ifps[i.name] for i in spec.invariants if i.name in ifps}
    digest = policy_digest(cm) if cm is not None else ""
    if not wfc_ok:
        raw = {v.name: spec.initial[v.name] for v in spec.vars}
        loops_at_start = [k for k, r in enumerate(reports) if not r.wfc.ok
                          and r.wfc.counterexample is not None
                          and r.wfc.counterexample.trace == []]
        trace: list[str] | None
        if loops_at_start:
            # the initial state itself never normalizes: it is the counterexample
            start, trace = raw, []
        else:
            bad = next(r for r in reports if not r.wfc.ok)
            c = bad.wfc.counterexample
            assert c is not None
            # the other components at their normal forms (valid: WFC holds
            # there, or their own loop is reached only later by their events)
            start, trace = (whole(c.state) or {}), c.trace
        if any(symbolic):
            # the failing component's own cycle, the others at their initial
            # states (valid where their WFC holds): no tables to walk
            bad = next(r for r in reports if not r.wfc.ok)
            c = bad.wfc.counterexample
            assert c is not None
            start, trace = whole(c.state) or {}, c.trace
            path = [whole(x) or {} for x in c.path]
            cycle = [whole(x) or {} for x in c.cycle]
            repairs = list(c.repairs)
        else:
            path, cycle, repairs = _global_loop(spec, comps, parts, start)
        wcex = WFCCounterexample(start, cycle, repairs, trace, path)
        wfc = WFCResult(False, None, wcex)
        raw = {v.name: spec.initial[v.name] for v in spec.vars}
        return Report(spec.name, "fail", scope, strict, StateCounts(total, valid, None), wfc,
                      None, None, fps, ifps, None, cm_warnings, seconds, raw,
                      [e.name for e in spec.events], spec.version, digest, None, method)
    wfc = WFCResult(True, sum(int(r.wfc.max_depth or 0) for r in reports)
                    if shared is None or shared.max_depth is None else shared.max_depth)
    reachable: int | None = None
    if not any(symbolic):
        reachable = prod(int(r.states.reachable or 0) for r in reports)
    cc1s = [r.cc1 for r in reports]
    cc2s = [r.cc2 for r in reports]
    assert all(c is not None for c in cc1s) and all(c is not None for c in cc2s)

    # an unreachable counterexample (scope all) sits, in whole enumeration,
    # at the smallest state: the other components at their smallest valid state
    smallest: dict[str, Any] = {v.name: spec.initial[v.name] for v in spec.vars}
    for p, sym in zip(parts, symbolic):
        if sym:
            smallest.update(p.report.initial)   # valid: z3 proved WFC
            continue
        norm = p.normalizer
        first = np.flatnonzero(norm.valid)
        if len(first):
            smallest.update(local_to_state(p.compiled, norm.space, int(first[0])))

    def cc1_cex(c: CC1Counterexample | None) -> CC1Counterexample | None:
        if c is None:
            return None
        if c.trace is None:
            def low(st: dict[str, Any]) -> dict[str, Any]:
                if shared is not None:
                    st = shared.fill(st, smallest)
                return {k: st.get(k, smallest[k]) for k in order}
            return CC1Counterexample(c.events, low(c.state), None, low(c.order1),
                                     low(c.order2))
        return CC1Counterexample(c.events, whole(c.state) or {}, c.trace,
                                 whole(c.order1) or {}, whole(c.order2) or {})

    pair_index = {frozenset(p): k for k, p in reversed(list(enumerate(spec.independent)))}

    def gid(state: dict[str, Any]) -> int:
        sid, w = 0, 1
        for v in spec.vars:
            sid += v.digit(state[v.name]) * w
            w *= v.size
        return sid

    def best(cexs: list[CC1Counterexample]) -> CC1Counterexample | None:
        """The one a whole enumeration reports: shortest trace first, then the
        first declared pair, then the smallest state."""
        whole_cexs = [c for c in (cc1_cex(x) for x in cexs) if c is not None]
        if not whole_cexs:
            return None
        return min(whole_cexs, key=lambda c: (
            len(c.trace) if c.trace is not None else float("inf"),
            pair_index.get(frozenset(c.events), len(pair_index)), gid(c.state)))

    cc1 = CC1Result(
        ok=all(c.ok for c in cc1s if c is not None), scope=scope,
        pairs=len(spec.independent),
        ok_reachable=all(c.ok_reachable for c in cc1s if c is not None),
        ok_all_valid=all(c.ok_all_valid for c in cc1s if c is not None),
        counterexample=best([c.counterexample for c in cc1s
                             if c is not None and c.counterexample is not None]),
        counterexample_all_valid=best([c.counterexample_all_valid for c in cc1s
                                       if c is not None
                                       and c.counterexample_all_valid is not None]),
        failing_pairs=sorted((p for c in cc1s if c is not None for p in c.failing_pairs),
                             key=lambda p: pair_index.get(frozenset(p), 0)),
        failing_pairs_all_valid=sorted((p for c in cc1s if c is not None
                                        for p in c.failing_pairs_all_valid),
                                       key=lambda p: pair_index.get(frozenset(p), 0)))
    bad2 = next((c for c in cc2s if c is not None and not c.ok), None)
    cc2 = CC2Result(True, None)
    if bad2 is not None and bad2.counterexample is not None:
        x = bad2.counterexample
        cc2 = CC2Result(False, CC2Counterexample(x.event, whole(x.state) or {},
                                                 whole(x.direct) or {},
                                                 whole(x.after_repair) or {}))
    findings = None
    delivery = None
    if reachable is not None and valid >= 0:
        findings = _findings(spec, reports, whole, valid - reachable)
        delivery = _delivery(spec, reports, whole, scope, independent)
    ok = cc1.ok and (not strict or (cc2.ok and cc1.ok_all_valid))
    return Report(spec.name, "pass" if ok else "fail", scope, strict,
                  StateCounts(total, valid, reachable), wfc, cc1, cc2, fps, ifps, findings,
                  warnings, seconds, base, [e.name for e in spec.events], spec.version,
                  digest, delivery, method)


def _global_loop(spec: MachineSpec, comps: list[Component], parts: list[Analysis],
                 start: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                 list[str]]:
    """Follow the whole machine's repairs from ``start`` (the first failing
    invariant in list order, whichever component it is in) until a state
    repeats: the states before the loop, the loop, and the invariant repaired
    at each step of it. Exact, and small: only repairs are followed."""
    from .decode import local_to_state
    names = [inv.name for inv in spec.invariants]
    state = dict(start)
    seen: dict[tuple[int, ...], int] = {}
    states: list[dict[str, Any]] = []
    repaired: list[str] = []
    while True:
        ids = []
        for p in parts:
            sp = p.normalizer.space
            local = 0
            for v in sp.vars:
                var = p.compiled.m.vars[v]
                local += var.digit(state[var.name]) * sp.stride[v]
            ids.append(local)
        key = tuple(ids)
        if key in seen:
            k = seen[key]
            return states[:k], states[k:], repaired[k:]
        seen[key] = len(states)
        states.append(dict(state))
        best: tuple[int, int] | None = None      # (global invariant index, part)
        for j, (p, local) in enumerate(zip(parts, ids)):
            ff = int(p.normalizer.first_fail[local])
            if ff >= 0:
                g = names.index(p.compiled.invariants[ff].name)
                if best is None or g < best[0]:
                    best = (g, j)
        if best is None:  # pragma: no cover - start was proven to loop
            return states, [], []
        g, j = best
        p = parts[j]
        nxt = local_to_state(p.compiled, p.normalizer.space, int(p.normalizer.rho[ids[j]]))
        for v in p.normalizer.space.vars:
            name = p.compiled.m.vars[v].name
            state[name] = nxt[name]
        repaired.append(names[g])


def _initial_warning(spec: MachineSpec, base: dict[str, Any]) -> list[str]:
    """The warning whole enumeration gives when the initial state breaks an
    invariant: the first one in list order, and the normal form."""
    from .decode import describe_state
    spec_vars = spec.var_map
    for inv in spec.invariants:
        try:
            holds = inv.holds.evaluate(spec_vars, spec.initial)
        except Exception:  # pragma: no cover - a component check raised first
            return []
        if not holds:
            return [f"the initial state breaks invariant {inv.name!r}; reachability starts "
                    f"from its normal form {describe_state(base)}"]
    return []


def _findings(spec: MachineSpec, reports: list[Report], whole: Any,
              unreachable_valid: int) -> Findings:
    never_fire = {n for r in reports if r.findings for n in r.findings.never_fire}
    never_fail = {n for r in reports if r.findings for n in r.findings.never_fail}
    saturating = []
    for r in reports:
        for d in (r.findings.saturating if r.findings else []):
            d = dict(d)
            if d.get("state") is not None:
                d["state"] = whole(d["state"])
            saturating.append(d)
    return Findings([e.name for e in spec.events if e.name in never_fire],
                    [i.name for i in spec.invariants if i.name in never_fail],
                    saturating, unreachable_valid)


def _delivery(spec: MachineSpec, reports: list[Report], whole: Any, scope: str,
              independent: str) -> dict[str, Any]:
    parts = [r.delivery for r in reports if r.delivery is not None]
    idem: dict[str, bool] = {}
    not_idem = []
    facts: dict[frozenset[str], dict[str, Any]] = {}
    obligations: list[list[str]] = []
    errors: list[list[str]] = []
    auto: list[list[str]] = []
    for d in parts:
        idem.update(d["idempotent"])
        not_idem += [{"event": x["event"], "state": whole(x["state"])}
                     for x in d["not_idempotent"]]
        for o in d["order"]:
            facts[frozenset(o["events"])] = o
        obligations += d["causal_order_required"]
        errors += d["errors"]
        auto += d.get("auto_independent") or []
    declared = {frozenset(p) for p in spec.independent}
    names = [e.name for e in spec.events]
    order = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            key = frozenset((a, b))
            got = facts.get(key)
            if got is None:  # events of different components: commute everywhere
                got = {"events": [a, b], "commutes": True, "commutes_all_valid": True,
                       "declared": key in declared}
                if independent == "auto":
                    auto.append([a, b])
            order.append(got)
    at = {n: i for i, n in enumerate(names)}
    not_idem.sort(key=lambda x: at[x["event"]])
    obligations.sort(key=lambda p: (at[p[0]], at[p[1]]))
    errors.sort(key=lambda p: (at[p[0]], at[p[1]]))
    need_dedup = [x["event"] for x in not_idem]
    return {"scope": scope, "mode": independent,
            "idempotent": {n: idem[n] for n in names if n in idem},
            "not_idempotent": not_idem, "order": order,
            "causal_order_required": obligations, "errors": errors,
            "auto_independent": auto if independent == "auto" else None,
            "contract": contract_words(spec.name, scope, need_dedup, obligations, errors)}
