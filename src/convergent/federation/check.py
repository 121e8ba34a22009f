"""The checks of the corrected federation model, each local to one target.

Every check reads one target's tables (from the core engine) and the images
its sources can give (from the sources' valid states); none walks the product
of the registries. The quantifiers follow the corrected model of the paper's
machine-checked audit (``coq/FederationEvents.v`` in normalization-confluence):
source states range over each source's valid states independently, target
states over valid states whose shared part is an image ("consistent"), and an
event's step is the registry's own step (event, then its own repairs).
docs/federation.md states each check in words.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._tables import Member, Repair, build_members, build_repair
from .model import FederationSpec
from .report import CheckResult, Counterexample, FederationReport, RegistryResult, TraceStep

__all__ = ["check_federation", "topological_order"]


def topological_order(fed: FederationSpec) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """``(order, ())`` when the authority graph is acyclic (sources before
    targets, ties in declaration order), else ``(None, cycle)`` with the
    morphism names along one directed cycle."""
    names = list(fed.names)
    preds: dict[str, set[str]] = {n: set() for n in names}
    for m in fed.morphisms:
        preds[m.target].add(m.source)
    order: list[str] = []
    left = list(names)
    while left:
        ready = [n for n in left if not (preds[n] - set(order))]
        if not ready:
            break
        order.append(ready[0])
        left.remove(ready[0])
    if not left:
        return tuple(order), ()
    # a cycle among the rest: walk back along predecessors until a node repeats
    rest = set(left)
    node = left[0]
    path: list[str] = []
    while node not in path:
        path.append(node)
        node = sorted(p for p in preds[node] if p in rest)[0]
    loop = path[path.index(node):][::-1]          # sources before targets
    cycle = []
    for a, b in zip(loop, loop[1:] + loop[:1]):
        cycle.append(next(m.name for m in fed.morphisms if m.source == a and m.target == b))
    return None, tuple(cycle)


def check_federation(fed: FederationSpec, *, xu: bool = False,
                     members: Mapping[str, Member] | None = None) -> FederationReport:
    """Check every condition of the corrected model (XU only when ``xu``)."""
    t0 = time.perf_counter()
    members = dict(members) if members is not None else build_members(fed)
    checks: list[CheckResult] = []
    regs = []
    for name in fed.names:
        mem = members[name]
        regs.append(RegistryResult(name, mem.verdict, mem.states, mem.summary))
        checks.append(CheckResult("REG", name, mem.ok, "" if mem.ok else mem.summary,
                                  details=mem.details))
    order, cycle = topological_order(fed)
    internal: dict[str, frozenset[str]] = {}
    if order is not None:
        checks.append(CheckResult("ACYCLIC", fed.name, True, "", order=order))
    else:
        from .lfp import check_monotone, components, cyclic_components
        comps = cyclic_components(fed)
        mono = [r for c in comps for r in check_monotone(fed, members, c)]
        if all(r.ok is True for r in mono):
            order = tuple(n for c in components(fed) for n in c)
            for c in comps:
                for t in c:
                    internal[t] = frozenset(m.source for m in fed.incoming(t) if m.source in c)
            checks.append(CheckResult(
                "ACYCLIC", fed.name, True,
                f"{len(comps)} cycle(s) accepted ({'; '.join(', '.join(c) for c in comps)}): "
                "every map and resolver on them is monotone (MONO), so repair around each "
                "reaches its least fixed point", cycle=cycle, order=order,
                details={"cycles": [list(c) for c in comps]}))
        else:
            from .cycles import diagnose_cycle
            from .plan import minimal_coordination_plan
            plan = minimal_coordination_plan(fed)
            diagnosis = diagnose_cycle(fed, members)
            checks.append(CheckResult(
                "ACYCLIC", fed.name, False,
                "the morphisms form a directed cycle that is not monotone (see MONO): repair "
                "has no order in which every source is final before its targets, and no "
                f"least fixed point is guaranteed; coordinating {len(plan.coordinate)} "
                f"morphism(s) ({', '.join(plan.coordinate)}) is the least that leaves the "
                "rest acyclic", cycle=cycle,
                details={"coordination_plan": list(plan.coordinate),
                         "order_without_them": list(plan.order),
                         "diagnosis": diagnosis.to_dict() if diagnosis else None}))
        checks.extend(mono)
    for target in fed.names:
        if not fed.incoming(target):
            continue
        checks.extend(_target_checks(fed, members, target, xu,
                                     internal.get(target, frozenset())))
    return FederationReport(fed.name, tuple(regs), tuple(checks), order, xu,
                            round(time.perf_counter() - t0, 6))


def _target_checks(fed: FederationSpec, members: Mapping[str, Member], target: str,
                   xu: bool, every_state: frozenset[str] = frozenset()) -> list[CheckResult]:
    tm = members[target]
    incoming = fed.incoming(target)
    resolved = any(r.target == target for r in fed.resolvers)
    shared_twice = any(sum(v in m.shared for m in incoming) > 1
                       for v in {v for m in incoming for v in m.shared})
    m1 = "R2" if resolved or shared_twice else "M1"
    untab = [n for n in [target, *(m.source for m in fed.incoming(target))]
             if not members[n].tabulated]
    if untab:
        why = f"not run: {', '.join(sorted(set(untab)))} could not be tabulated (see REG)"
        return [CheckResult(m1, target, None, why)]
    rep = build_repair(fed, members, target, every_state=every_state)
    out: list[CheckResult] = []
    multi = len(rep.sources) > 1 or resolved or shared_twice
    if rep.fault is not None:
        f = rep.fault
        out.append(CheckResult("R1", target, False, f.message, Counterexample(
            target, f.sources or {}, {}, note=f"proposals: {f.proposals}"
            if f.proposals is not None else "")))
        out.append(CheckResult(m1, target, None, "not run: R1 fails"))
        return out
    if multi:
        out.append(CheckResult("R1", target, True,
                               f"{len(rep.offsets)} images from {', '.join(rep.sources)}"))
    out.append(_m1(rep, members, m1))
    for ei, ev in enumerate(tm.events):
        out.append(_c1(rep, members, ei, ev, consistent=True))
    pairs = [(a, b) for a, b in tm.independent if a != b]
    for a, b in pairs:
        out.append(_c2(rep, members, a, b))
    if xu:
        for ei, ev in enumerate(tm.events):
            out.append(_c1(rep, members, ei, ev, consistent=False))
        for a, b in pairs:
            out.append(_local_cc(rep, a, b))
    return out


def _sources(rep: Repair, members: Mapping[str, Member], k: int) -> dict[str, dict[str, Any]]:
    return {s: members[s].decode(i) for s, i in rep.witnesses[k].items()}


def _offset_index(rep: Repair, offsets: np.ndarray) -> np.ndarray:
    return np.searchsorted(rep.offsets, offsets)


def _m1(rep: Repair, members: Mapping[str, Member], code: str) -> CheckResult:
    tm = rep.target
    valid = tm.valid
    vids = np.flatnonzero(valid)
    bases, first = np.unique(rep.base(vids), return_index=True)
    for k, o in enumerate(rep.offsets):
        bad = ~valid[bases + o]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            b = int(vids[first[i]])
            after = int(bases[i] + o)
            cx = Counterexample(
                tm.name, _sources(rep, members, k), tm.decode(b),
                trace=(TraceStep("order1", "overwrite the shared vars with the sources' image",
                                 tm.decode(after)),),
                note="the overwritten state breaks an invariant of the target")
            return CheckResult(code, tm.name, False,
                               "an image of the sources makes a valid target state invalid", cx)
    return CheckResult(code, tm.name, True,
                       f"{len(rep.offsets)} images x {len(bases)} valid local parts")


def _c1(rep: Repair, members: Mapping[str, Member], ei: int, ev: str,
        consistent: bool) -> CheckResult:
    tm = rep.target
    code = "C1" if consistent else "XU"
    vids = np.flatnonzero(tm.valid)
    sh = rep.shared_part(vids)
    if consistent:
        keep = np.isin(sh, rep.offsets)
        vids, sh = vids[keep], sh[keep]
    step = tm.step[ei].astype(np.int64)
    bb = vids - sh
    right_base = rep.base(step[vids])
    for k, o in enumerate(rep.offsets):
        left = rep.base(step[bb + o]) + o
        right = right_base + o
        bad = left != right
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            b = int(vids[i])
            first = int(bb[i] + o)
            prior = None
            if consistent:
                j = int(_offset_index(rep, np.array([sh[i]]))[0])
                prior = _sources(rep, members, j)
            trace = (
                TraceStep("order1", "propagate the sources' image", tm.decode(first)),
                TraceStep("order1", ev, tm.decode(int(step[first]))),
                TraceStep("order1", "propagate the sources' image", tm.decode(int(left[i]))),
                TraceStep("order2", ev, tm.decode(int(step[b]))),
                TraceStep("order2", "propagate the sources' image", tm.decode(int(right[i]))),
            )
            cx = Counterexample(tm.name, _sources(rep, members, k), tm.decode(b), (ev,),
                                tm.decode(int(left[i])), tm.decode(int(right[i])), prior, trace,
                                "order1: the source change arrives before the event; "
                                "order2: after it")
            return CheckResult(code, f"{tm.name}: {ev}", False,
                               f"{ev} and a change of the sources do not commute", cx)
    scope = "consistent" if consistent else "valid"
    return CheckResult(code, f"{tm.name}: {ev}", True,
                       f"{len(rep.offsets)} images x {len(vids)} {scope} states")


def _c2(rep: Repair, members: Mapping[str, Member], a: str, b: str) -> CheckResult:
    tm = rep.target
    ia, ib = tm.events.index(a), tm.events.index(b)
    sa, sb = tm.step[ia].astype(np.int64), tm.step[ib].astype(np.int64)
    vids = np.flatnonzero(tm.valid)
    sh = rep.shared_part(vids)
    n = 0
    for k, o in enumerate(rep.offsets):
        x = vids[sh == o]
        n += len(x)
        x1 = rep.overwrite(o, sa[x])
        left = rep.overwrite(o, sb[x1])
        x2 = rep.overwrite(o, sb[x])
        right = rep.overwrite(o, sa[x2])
        bad = left != right
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            s = int(x[i])
            trace = (
                TraceStep("order1", a, tm.decode(int(sa[s]))),
                TraceStep("order1", "propagate the sources' image", tm.decode(int(x1[i]))),
                TraceStep("order1", b, tm.decode(int(sb[x1[i]]))),
                TraceStep("order1", "propagate the sources' image", tm.decode(int(left[i]))),
                TraceStep("order2", b, tm.decode(int(sb[s]))),
                TraceStep("order2", "propagate the sources' image", tm.decode(int(x2[i]))),
                TraceStep("order2", a, tm.decode(int(sa[x2[i]]))),
                TraceStep("order2", "propagate the sources' image", tm.decode(int(right[i]))),
            )
            cx = Counterexample(tm.name, _sources(rep, members, k), tm.decode(s), (a, b),
                                tm.decode(int(left[i])), tm.decode(int(right[i])), None, trace,
                                f"order1: {a} then {b}; order2: {b} then {a}; the repair "
                                "runs after each event")
            return CheckResult("C2", f"{tm.name}: {a}, {b}", False,
                               f"{a} and {b} do not commute once the repair runs between "
                               "them", cx)
    return CheckResult("C2", f"{tm.name}: {a}, {b}", True, f"{n} consistent states")


def _local_cc(rep: Repair, a: str, b: str) -> CheckResult:
    tm = rep.target
    sa = tm.step[tm.events.index(a)].astype(np.int64)
    sb = tm.step[tm.events.index(b)].astype(np.int64)
    vids = np.flatnonzero(tm.valid)
    left, right = sb[sa[vids]], sa[sb[vids]]
    bad = left != right
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        s = int(vids[i])
        cx = Counterexample(tm.name, {}, tm.decode(s), (a, b), tm.decode(int(left[i])),
                            tm.decode(int(right[i])), None, (
                                TraceStep("order1", a, tm.decode(int(sa[s]))),
                                TraceStep("order1", b, tm.decode(int(left[i]))),
                                TraceStep("order2", b, tm.decode(int(sb[s]))),
                                TraceStep("order2", a, tm.decode(int(right[i])))),
                            "a replica may hold any valid state between propagations")
        return CheckResult("XU", f"{tm.name}: local CC {a}, {b}", False,
                           f"{a} and {b} do not commute at every valid state", cx)
    return CheckResult("XU", f"{tm.name}: local CC {a}, {b}", True,
                       f"{len(vids)} valid states")
