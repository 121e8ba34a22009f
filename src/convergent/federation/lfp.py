"""Monotone cycles: when a cycle of morphisms is accepted, and its normal form
(the least fixed point of repair around it).

A cycle has no order in which every source is final before its targets, so
repair cannot be one pass. It still has a canonical result when repair is a
*monotone* function of the values that travel around the cycle: then
iterating it from the least values climbs a chain in a finite lattice and
stops at its least fixed point, whichever state the members held before
(Kleene). This module decides monotonicity by enumeration and computes that
fixed point.

**The order.** Each var's values are ordered as its domain declares them:
``false < true``, ints numerically, enum values in the order they are listed
(list them least first). Tuples of values are ordered pointwise. The order
is the declared one, not one inferred to make the maps monotone: repair
settles on the *least* fixed point, so the order decides the result and must
be one the author chose. Nothing is assumed of a map: it is *proved*
monotone below, over every state of its source, or the cycle is refused.

**What is proved (check ``MONO``).** For every morphism whose source and
target lie on one cycle (a strongly connected component of the authority
graph, or a registry with a morphism onto itself): raising any one *fed* var
of the source (a var some morphism is authoritative over) by one step, at
any state of the source, never lowers any value of the image. Single steps
suffice: a pointwise larger state is reached by single steps, and the image
order is transitive. For every resolver of a cycle member: raising any one
proposal by one step never lowers its output, over every combination of
proposals. Both are exhaustive over finite tables (vectorized for maps).

The iteration itself (``CycleRepair.fixpoint``) starts every fed var of the
component at its least value and recomputes all of them from the current
states together until nothing changes; with every piece monotone this is the
least fixed point, reached in at most (sum of the fed vars' heights) + 1
rounds.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tables import MAX_COMBINATIONS, Member, Repair, _call_resolver, _Fault, _natural
from ._tabulate import tabulate_map
from .errors import FederationError
from .model import FederationSpec, Morphism, Resolver
from .report import CheckResult, Counterexample

__all__ = ["CycleRepair", "check_monotone", "components", "cyclic_components", "fed_vars"]


def components(fed: FederationSpec) -> tuple[tuple[str, ...], ...]:
    """The strongly connected components of the authority graph, sources
    first (a topological order of the condensation), each in declaration
    order; ties between independent components also in declaration order."""
    names = list(fed.names)
    succ: dict[str, list[str]] = {n: [] for n in names}
    for m in fed.morphisms:
        succ[m.source].append(m.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[frozenset[str]] = []

    def visit(v: str) -> None:          # Tarjan; depth <= number of registries
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            comps.append(frozenset(comp))

    for n in names:
        if n not in index:
            visit(n)
    comp_of = {n: c for c in comps for n in c}
    preds: dict[frozenset[str], set[frozenset[str]]] = {c: set() for c in comps}
    for m in fed.morphisms:
        if comp_of[m.source] != comp_of[m.target]:
            preds[comp_of[m.target]].add(comp_of[m.source])
    first = {c: min(names.index(n) for n in c) for c in comps}
    done: list[frozenset[str]] = []
    left = sorted(comps, key=first.__getitem__)
    while left:
        ready = next(c for c in left if not (preds[c] - set(done)))
        done.append(ready)
        left.remove(ready)
    return tuple(tuple(n for n in names if n in c) for c in done)


def cyclic_components(fed: FederationSpec) -> tuple[tuple[str, ...], ...]:
    """The components that hold a cycle: several registries, or one with a
    morphism onto itself."""
    loops = {m.source for m in fed.morphisms if m.source == m.target}
    return tuple(c for c in components(fed) if len(c) > 1 or c[0] in loops)


def internal_morphisms(fed: FederationSpec, comp: tuple[str, ...]) -> tuple[Morphism, ...]:
    """The morphisms with source and target in ``comp`` (the cycle's own)."""
    return tuple(m for m in fed.morphisms if m.source in comp and m.target in comp)


def fed_vars(fed: FederationSpec, registry: str) -> tuple[str, ...]:
    """The vars of ``registry`` some morphism is authoritative over, in the
    registry's var order."""
    owned = {v for m in fed.incoming(registry) for v in m.shared}
    return tuple(v.name for v in fed.member(registry).vars if v.name in owned)


def _strides(member: Member) -> dict[str, int]:
    return member.strides()


def check_monotone(fed: FederationSpec, members: Mapping[str, Member],
                   comp: tuple[str, ...]) -> list[CheckResult]:
    """``MONO`` for every map and resolver of one cyclic component."""
    subject_of = f"cycle {', '.join(comp)}"
    untab = [n for n in comp if not members[n].tabulated]
    if untab:
        return [CheckResult("MONO", subject_of, None,
                            f"not run: {', '.join(untab)} could not be tabulated (see REG)")]
    out = [_monotone_map(fed, members, m) for m in internal_morphisms(fed, comp)]
    out.extend(_monotone_resolver(fed, members, r)
               for r in fed.resolvers if r.target in comp)
    return out


def _monotone_map(fed: FederationSpec, members: Mapping[str, Member],
                  m: Morphism) -> CheckResult:
    sm, tm = members[m.source], members[m.target]
    table = tabulate_map(m, sm.vars, tm.vars)
    n = table.shape[0]
    ids = np.arange(n, dtype=np.int64)
    w = _strides(sm)
    sizes = {v.name: v.size for v in sm.vars}
    pairs = 0
    for var in fed_vars(fed, m.source):
        lo = ids[(ids // w[var]) % sizes[var] < sizes[var] - 1]
        hi = lo + w[var]
        pairs += len(lo)
        worse = (table[hi] < table[lo]).any(axis=1)
        if worse.any():
            i = int(np.flatnonzero(worse)[0])
            x, y = int(lo[i]), int(hi[i])
            tv = {v.name: v for v in tm.vars}
            img = {
                s: {name: _natural(tv[name], tv[name].values[int(d)])
                    for name, d in zip(m.shared, table[s])} for s in (x, y)}
            cx = Counterexample(
                m.target, {m.source: sm.decode(x)}, img[x], order1=img[x], order2=img[y],
                note=f"raising {m.source}.{var} to {sm.decode(y)[var]!r} (source state "
                     f"{sm.decode(y)}) lowers the image from {img[x]} to {img[y]}")
            return CheckResult("MONO", f"{m.name}", False,
                               f"the map of {m.name} is not monotone in {m.source}.{var}: "
                               "repair around the cycle may orbit or have no least fixed "
                               "point", cx)
    return CheckResult("MONO", m.name, True,
                       f"monotone: {pairs} one-step raises of {m.source}'s fed vars checked")


def _monotone_resolver(fed: FederationSpec, members: Mapping[str, Member],
                       r: Resolver) -> CheckResult:
    tm = members[r.target]
    tv = {v.name: v for v in tm.vars}
    coords = [(m.source, var) for m in fed.incoming(r.target) for var in m.shared
              if var in r.vars]
    sizes = [tv[var].size for _, var in coords]
    total = 1
    for z in sizes:
        total *= z
    if total > MAX_COMBINATIONS:
        raise FederationError(f"resolver {r.name!r}: {total} combinations of proposals "
                              f"(more than {MAX_COMBINATIONS}) to prove it monotone")

    def call(digits: tuple[int, ...]) -> dict[str, int] | str:
        proposals: dict[str, dict[str, Any]] = {}
        for (src, var), d in zip(coords, digits):
            proposals.setdefault(src, {})[var] = _natural(tv[var], tv[var].values[d])
        try:
            return _call_resolver(r, proposals, tv)
        except _Fault as f:
            return f.fault.message

    memo: dict[tuple[int, ...], dict[str, int] | str] = {}
    pairs = 0
    for digits in itertools.product(*(range(z) for z in sizes)):
        low = memo.setdefault(digits, call(digits))
        if isinstance(low, str):
            return CheckResult("MONO", r.name, None, f"not run: {low} (see R1)")
        for k, z in enumerate(sizes):
            if digits[k] + 1 >= z:
                continue
            up = digits[:k] + (digits[k] + 1,) + digits[k + 1:]
            high = memo.setdefault(up, call(up))
            if isinstance(high, str):
                return CheckResult("MONO", r.name, None, f"not run: {high} (see R1)")
            pairs += 1
            if any(high[v] < low[v] for v in r.vars):
                def nat(d: Mapping[str, int]) -> dict[str, Any]:
                    return {v: _natural(tv[v], tv[v].values[d[v]]) for v in r.vars}
                src, var = coords[k]
                cx = Counterexample(
                    r.target, {}, nat(low), order1=nat(low), order2=nat(high),
                    note=f"raising {src}'s proposal for {var} lowers the merge from "
                         f"{nat(low)} to {nat(high)}")
                return CheckResult("MONO", r.name, False,
                                   f"resolver {r.name} is not monotone in {src}'s proposal "
                                   f"for {var}", cx)
    return CheckResult("MONO", r.name, True,
                       f"monotone: {pairs} one-step raises of a proposal checked")


@dataclass
class CycleRepair:
    """Repair of one accepted cyclic component: the least fixed point.

    ``repairs`` holds each member's ``Repair`` (its incoming maps and
    resolvers, tabulated over every source state); ``fixpoint`` reads the
    members' current states (and the final states of sources outside the
    component) and returns the members' states at the least fixed point."""

    members: tuple[str, ...]
    repairs: dict[str, Repair]
    height: int

    def fixpoint(self, ids: Mapping[str, int]) -> tuple[dict[str, int], int]:
        """``(states, rounds)``: every member's state at the least fixed point
        of repair (its own local part kept, its fed vars recomputed)."""
        cur = dict(ids)
        base = {t: int(rep.base(np.array([cur[t]], dtype=np.int64))[0])
                for t, rep in self.repairs.items()}
        cur.update(base)                            # every fed var at its least value
        for rounds in range(1, self.height + 2):
            new = {t: base[t] + rep.offset_at(cur) for t, rep in self.repairs.items()}
            if all(new[t] == cur[t] for t in new):
                return {t: cur[t] for t in self.members}, rounds
            cur.update(new)
        raise FederationError(f"repair around {', '.join(self.members)} did not reach a fixed "
                              f"point in {self.height + 1} rounds: a map or resolver is not "
                              "monotone (MONO should have refused it)")


def build_cycle_repair(fed: FederationSpec, members: Mapping[str, Member],
                       comp: tuple[str, ...], repairs: Mapping[str, Repair]) -> CycleRepair:
    """The fixed-point repair of ``comp`` from its members' ``Repair``s."""
    height = 0
    for t in comp:
        if t not in repairs:
            continue
        tv = {v.name: v for v in members[t].vars}
        height += sum(tv[v].size - 1 for v in repairs[t].shared)
    return CycleRepair(comp, {t: repairs[t] for t in comp if t in repairs}, height)
