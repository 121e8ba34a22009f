"""Abstraction of compare-and-copy integers: an int var whose rules only
compare it with constants, copy it to another such var, or assign it a
constant is checked at one representative value per *region* of its range,
whatever the range (a balance in 0..10^12, a timestamp).

The cutoff argument (docs/abstraction.md has it in full). Collect, for a
group of vars linked by copies, every constant they are compared with or
assigned, their initial values and their range bounds. These cut the range
into regions so that

* every comparison ``x op c`` of the spec has the same truth value at every
  value of a region (c and c+1 are cut points, so a region lies wholly on one
  side of c, or is the point {c});
* every value a run can produce is a point region: initial values, assigned
  constants, and clamped copies (range bounds) are all cut as points.

Map every value to its region's index. Comparisons become comparisons of
indices, a constant assignment the constant's index, a copy ``y := x`` the
index shifted between x's and y's slices of the shared partition (clamping
and ``overflow: error`` behave alike, as the bounds are cut points). The
abstract machine is then a bisimulation quotient of the concrete one: each
event and repair maps regions to regions uniformly, so WFC, CC1 (both scopes)
and CC2 hold for one iff for the other, and a counterexample at a region is a
counterexample at any value of it (the report shows the region's first
value). Reachable states correspond one to one (every reachable value is a
point), so the reachable count is exact; the valid count weights each
abstract state by the number of concrete states it stands for.

Anything else — arithmetic on the var, a comparison with another var, a rule
written as a Python function — refuses the abstraction with the reason.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

from ..spec.expr import _Node, _Parser, compile_assignment, compile_predicate
from ..spec.model import Assignment, Event, Invariant, Location, MachineSpec, Predicate, Var

__all__ = ["ABSTRACT_ABOVE", "Abstraction", "AbstractedAnalysis", "abstract",
           "analyze_abstracted", "plan"]

ABSTRACT_ABOVE = 64
"""Only int vars with more values than this are worth abstracting."""

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_CMP = frozenset(_FLIP)


@dataclass(frozen=True)
class Regions:
    """The partition of one var's range: region k is [starts[k], ends[k]]."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def index(self, value: int) -> int:
        return bisect.bisect_right(self.starts, value) - 1

    @property
    def sizes(self) -> list[int]:
        return [b - a + 1 for a, b in zip(self.starts, self.ends)]


@dataclass(frozen=True)
class Abstraction:
    """What was abstracted: each var's regions (over its own range) and the
    spec over region indices."""

    spec: MachineSpec
    regions: Mapping[str, Regions]

    def concrete(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """A state of the abstract spec as concrete values (a region's first value)."""
        return {k: (self.regions[k].starts[int(v)] if k in self.regions else v)
                for k, v in state.items()}

    def describe(self) -> dict[str, Any]:
        return {name: {"regions": len(r.starts),
                       "values": [[a, b] for a, b in zip(r.starts, r.ends)][:50]}
                for name, r in self.regions.items()}


class _Refused(Exception):
    pass


def _texts(spec: MachineSpec) -> Iterator[tuple[str, str, Any]]:
    """(where, kind, rule part) for every expression of the spec."""
    for inv in spec.invariants:
        yield f"holds of invariant {inv.name!r}", "pred", inv.holds
        yield f"repair of invariant {inv.name!r}", "asg", inv.repair
    for ev in spec.events:
        if ev.guard is not None:
            yield f"guard of event {ev.name!r}", "pred", ev.guard
        yield f"apply of event {ev.name!r}", "asg", ev.apply


def _int_literal(node: _Node) -> int | None:
    if node.kind == "lit" and isinstance(node.value, int) and not isinstance(node.value, bool):
        return int(node.value)
    if node.kind == "neg" and node.args[0].kind == "lit":
        inner = _int_literal(node.args[0])
        return None if inner is None else -inner
    return None


def plan(spec: MachineSpec, *, above: int = ABSTRACT_ABOVE
         ) -> tuple[dict[str, Regions], dict[str, str]]:
    """The vars that can be abstracted (with their regions), and for every
    other big int var the reason it cannot."""
    ints = {v.name: v for v in spec.vars if v.kind == "int"}
    big = {n for n, v in ints.items() if v.size > above}
    if not big:
        return {}, {}
    refused: dict[str, str] = {}
    for where, _kind, part in _texts(spec):
        if getattr(part, "fn", None) is not None:
            return {}, {n: f"{where} is a Python function, which cannot be analysed: "
                           "write the rules as expressions" for n in sorted(big)}
    cuts: dict[str, set[int]] = {n: set() for n in big}
    parent = {n: n for n in big}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    def refuse(name: str, why: str) -> None:
        refused.setdefault(name, why)

    def visit(node: _Node, where: str, text: str) -> None:
        """Refuse every big var used other than compared with a constant."""
        if node.kind == "bin" and node.value in _CMP:
            a, b = node.args
            for x, k in ((a, b), (b, a)):
                if x.kind == "name" and x.value in big and _int_literal(k) is not None:
                    c = _int_literal(k)
                    assert c is not None
                    cuts[x.value].update((c - 1, c, c + 1))
                    other = k
                    visit(other, where, text)
                    return
        if node.kind == "name" and node.value in big:
            refuse(node.value, f"{node.value} is used other than compared with a constant "
                               f"or copied, in {where}: '{text}'")
            return
        for child in node.args:
            visit(child, where, text)

    for where, kind, part in _texts(spec):
        if kind == "pred":
            visit(_Parser(part.expr.text).parse(), where, part.expr.text)
            continue
        for target, expr in zip(part.targets, part.exprs):
            tree = _Parser(expr.text).parse()
            c = _int_literal(tree)
            if target in big and c is not None:
                cuts[target].update((c - 1, c, c + 1))
                continue
            if tree.kind == "name" and tree.value in big:
                if target in big:
                    ra, rb = find(tree.value), find(target)
                    if ra != rb:
                        parent[ra] = rb
                    continue
                refuse(tree.value, f"{tree.value} is copied to {target}, which is not "
                                   f"abstracted, in {where}")
                continue
            if target in big and tree.kind == "name" and tree.value == target:
                continue
            if target in big:
                refuse(target, f"{target} is assigned '{expr.text}' in {where} (only a "
                               "constant or a copy can be abstracted)")
            visit(tree, where, expr.text)
    # a refused var refuses its whole copy group
    groups: dict[str, list[str]] = {}
    for n in big:
        groups.setdefault(find(n), []).append(n)
    out: dict[str, Regions] = {}
    for members in groups.values():
        why = next((refused[m] for m in members if m in refused), None)
        if why is not None:
            for m in members:
                refused.setdefault(m, why)
            continue
        points: set[int] = set()
        for m in members:
            v = ints[m]
            points |= cuts[m]
            init = int(spec.initial[m])
            points.update((init - 1, init, init + 1, v.lo, v.lo + 1, v.hi - 1, v.hi))
        for m in members:
            v = ints[m]
            starts = sorted({v.lo} | {p for p in points if v.lo < p <= v.hi})
            ends = [s - 1 for s in starts[1:]] + [v.hi]
            out[m] = Regions(tuple(starts), tuple(ends))
    return out, {n: w for n, w in refused.items() if n not in out}


# --------------------------------------------------------------------------- rewriting


def _render(node: _Node) -> str:
    k = node.kind
    if k == "lit":
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        return str(node.value) if node.value >= 0 else f"(-{-node.value})"
    if k == "str":
        return repr(node.value)
    if k == "name":
        return str(node.value)
    if k == "neg":
        return f"(-{_render(node.args[0])})"
    if k == "not":
        return f"(not {_render(node.args[0])})"
    if k == "if":
        c, a, b = node.args
        return f"(if {_render(c)} then {_render(a)} else {_render(b)})"
    if k == "call":
        return f"{node.value}({', '.join(_render(a) for a in node.args)})"
    a, b = node.args
    return f"({_render(a)} {node.value} {_render(b)})"


def _lit(value: int) -> _Node:
    return _Node("lit", 0, 0, value)


def _compare(op: str, x: str, c: int, regions: Regions) -> _Node:
    """``x op c`` over region indices (c is a cut point of x's regions)."""
    name = _Node("name", 0, 0, x)
    n = len(regions.starts)

    def below(k: int) -> int:  # regions wholly below k: [start, end] with end < k
        return bisect.bisect_left(regions.ends, k) if k <= regions.ends[-1] else n

    if op in ("==", "!="):
        if regions.starts[0] <= c <= regions.ends[-1]:
            idx = regions.index(c)
            assert regions.starts[idx] == c == regions.ends[idx], "a compared constant is a point"
            return _Node("bin", 0, 0, op, (name, _lit(idx)))
        return _lit(op == "!=")
    if op == "<":
        return _Node("bin", 0, 0, "<", (name, _lit(below(c))))
    if op == "<=":
        return _Node("bin", 0, 0, "<", (name, _lit(below(c + 1))))
    if op == ">":
        return _Node("bin", 0, 0, ">=", (name, _lit(below(c + 1))))
    return _Node("bin", 0, 0, ">=", (name, _lit(below(c))))


def _rewrite(node: _Node, regions: Mapping[str, Regions]) -> _Node:
    if node.kind == "bin" and node.value in _CMP:
        a, b = node.args
        if a.kind == "name" and a.value in regions and _int_literal(b) is not None:
            return _compare(node.value, a.value, _int_literal(b) or 0, regions[a.value])
        if b.kind == "name" and b.value in regions and _int_literal(a) is not None:
            return _compare(_FLIP[node.value], b.value, _int_literal(a) or 0,
                            regions[b.value])
    if not node.args:
        return node
    return dataclasses.replace(node, args=tuple(_rewrite(x, regions) for x in node.args))


def _value(target: str, node: _Node, regions: Mapping[str, Regions],
           spec_vars: Mapping[str, Var]) -> _Node:
    r = regions.get(target)
    if r is None:
        return _rewrite(node, regions)
    c = _int_literal(node)
    if c is not None:
        if c < r.starts[0]:
            return _lit(-1)                  # clamps (or errors) as the value would
        if c > r.ends[-1]:
            return _lit(len(r.starts))
        return _lit(r.index(c))
    if node.kind == "name" and node.value == target:
        return node
    assert node.kind == "name" and node.value in regions, node
    src = regions[node.value]
    # both slice one partition: shift between the two slices
    shift = _global_offset(src, r)
    expr = node if shift == 0 else _Node("bin", 0, 0, "+" if shift > 0 else "-",
                                         (node, _lit(abs(shift))))
    return expr


def _global_offset(src: Regions, dst: Regions) -> int:
    """Index in dst of the region with src's region 0 start, minus 0."""
    first = src.starts[0]
    if first < dst.starts[0]:
        # src starts below dst: count src regions below dst's start
        k = bisect.bisect_left(src.starts, dst.starts[0])
        return -k
    return bisect.bisect_left(dst.starts, first)


def abstract(spec: MachineSpec, regions: Mapping[str, Regions]) -> Abstraction:
    """The spec over region indices (see the module docstring)."""
    vars_ = tuple(Var.integer(v.name, 0, len(regions[v.name].starts) - 1, v.overflow)
                  if v.name in regions else v for v in spec.vars)
    scope = {v.name: v for v in vars_}

    def pred(p: Predicate, where: Location) -> Predicate:
        tree = _rewrite(_Parser(p.expr.text).parse(), regions)  # type: ignore[union-attr]
        return compile_predicate(_render(tree), scope, where)

    def asg(a: Assignment, where: Location) -> Assignment:
        mapping = {}
        for t, e in zip(a.targets, a.exprs):
            mapping[t] = _render(_value(t, _Parser(e.text).parse(), regions, scope))
        return compile_assignment(mapping, scope, where)

    invs = tuple(Invariant(i.name, pred(i.holds, i.where), asg(i.repair, i.where),
                           i.watches, i.where) for i in spec.invariants)
    evs = tuple(dataclasses.replace(e, guard=None if e.guard is None else pred(e.guard, e.where),
                                    apply=asg(e.apply, e.where)) for e in spec.events)
    initial = {k: (regions[k].index(int(v)) if k in regions else v)
               for k, v in spec.initial.items()}
    out = MachineSpec(spec.name, vars_, invs, evs, spec.independent, initial, spec.version,
                      independent_all=spec.independent_all, source=spec.source,
                      families=spec.families)
    return Abstraction(out, dict(regions))


def weighted_valid(valid: np.ndarray, dvars: list[Var],
                   regions: Mapping[str, Regions]) -> int:
    """How many concrete states the abstract states of ``valid`` stand for:
    ``valid`` is over the product of ``dvars`` (abstract vars, first least
    significant); a region counts its number of values."""
    arr = np.asarray(valid, dtype=object).reshape(
        tuple(v.size for v in reversed(dvars)) or (1,))
    for axis, v in enumerate(reversed(dvars)):
        w = (np.array(regions[v.name].sizes, dtype=object) if v.name in regions
             else np.ones(v.size, dtype=object))
        shape = [1] * arr.ndim
        shape[axis] = len(w)
        arr = arr * w.reshape(shape)
    return int(arr.sum()) if arr.size else 0


def _map_state(ab: Abstraction, st: Any) -> Any:
    return ab.concrete(st) if isinstance(st, Mapping) else st


def concrete_report(report: Any, ab: Abstraction, concrete: MachineSpec, valid: int,
                    refused: Mapping[str, str]) -> Any:
    """The abstract spec's report in concrete terms: states at their regions'
    first values, counts of concrete states, and the method."""
    from .report import (CC1Counterexample, CC1Result, CC2Counterexample, CC2Result,
                         Findings, StateCounts, WFCCounterexample, WFCResult)
    m = ab.concrete
    total = prod(v.size for v in concrete.vars)
    reachable = report.states.reachable
    wfc = report.wfc
    if wfc.counterexample is not None:
        c = wfc.counterexample
        wfc = WFCResult(wfc.ok, wfc.max_depth, WFCCounterexample(
            m(c.state), [m(x) for x in c.cycle], list(c.repairs), c.trace,
            [m(x) for x in (c.path or [])]))

    def cc1c(c: Any) -> Any:
        return None if c is None else CC1Counterexample(c.events, m(c.state), c.trace,
                                                        m(c.order1), m(c.order2))

    cc1 = report.cc1
    if cc1 is not None:
        cc1 = dataclasses.replace(cc1, counterexample=cc1c(cc1.counterexample),
                                  counterexample_all_valid=cc1c(cc1.counterexample_all_valid))
    cc2 = report.cc2
    if cc2 is not None and cc2.counterexample is not None:
        x = cc2.counterexample
        cc2 = CC2Result(cc2.ok, CC2Counterexample(x.event, m(x.state), m(x.direct),
                                                  m(x.after_repair)))
    findings = report.findings
    if findings is not None:
        sat = []
        for d in findings.saturating:
            d = dict(d)
            if d.get("state") is not None:
                d["state"] = m(d["state"])
            if "values" in d:
                # an abstracted var's assigned value is a region index: drop it
                d["values"] = {k: v for k, v in d["values"].items() if k not in ab.regions}
            sat.append(d)
        findings = Findings(findings.never_fire, findings.never_fail, sat,
                            None if reachable is None else valid - reachable)
    delivery = report.delivery
    if delivery is not None:
        delivery = dict(delivery)
        delivery["not_idempotent"] = [{"event": x["event"], "state": m(x["state"])}
                                      for x in delivery["not_idempotent"]]
    inner = report.method or {"kind": "enumeration"}
    method = {"kind": "abstraction", "abstracted": ab.describe(),
              "not_abstracted": dict(refused), "then": inner}
    return dataclasses.replace(
        report, states=StateCounts(total, valid, reachable), wfc=wfc, cc1=cc1, cc2=cc2,
        findings=findings, delivery=delivery, initial=m(report.initial), method=method)


@dataclass
class AbstractedAnalysis:
    """A check done on the abstract spec: the report in concrete terms, the
    abstraction, and the analysis of the abstract spec."""

    report: Any
    abstraction: Abstraction
    inner: Any


def analyze_abstracted(spec: MachineSpec, regions: Mapping[str, Regions],
                       refused: Mapping[str, str], run: Any) -> AbstractedAnalysis:
    """Check ``spec`` through its abstraction; ``run(abstract_spec)`` checks
    the abstract spec (by enumeration or components) and returns its analysis."""
    from .compose import ComposedAnalysis
    ab = abstract(spec, regions)
    inner = run(ab.spec)
    sizes = {v.name: v.size for v in spec.vars}

    def part_valid(an: Any) -> int:
        if not hasattr(an, "normalizer"):
            return -1     # a component checked by z3: not counted
        norm = an.normalizer
        pvars = an.compiled.m.vars
        dvars = [pvars[v] for v in norm.space.vars]
        rest = prod(sizes[v.name] for i, v in enumerate(pvars) if i not in norm.space.stride)
        return weighted_valid(norm.valid, dvars, ab.regions) * rest

    if isinstance(inner, ComposedAnalysis):
        # a product of weighted counts: exact only for components that share
        # no var (``run`` checks the abstract spec with share=False)
        assert not any(c.shared for c in inner.components)
        counts = [part_valid(p) for p in inner.parts]
        valid = -1 if min(counts) < 0 else prod(counts) * prod(
            sizes[spec.vars[v].name] for v in inner.idle)
    else:
        valid = part_valid(inner)
    return AbstractedAnalysis(concrete_report(inner.report, ab, spec, valid, refused), ab, inner)
