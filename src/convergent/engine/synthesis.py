"""Repair synthesis: given invariants, find repairs that make the machine
converge, least invasive first.

The search space is stated, and the answer within it is never "unknown":
each invariant's candidate repairs assign constants to at most ``max_vars``
of the vars its ``holds`` reads, and only candidates that make the invariant
hold at every state where it fails are kept (a repair that does not fix its
own invariant cannot be the least invasive one that does). Combinations are
tried in order of total cost — the number of vars assigned, then how many
states the repairs change — and each is verified by the engine (WFC, CC1 in
scope, and CC2 / all-valid CC1 with ``strict``). The first that passes is
the answer; when the whole space fails, the answer is "none exists in this
space", with the counterexample of the least invasive combination as the
witness. A space of more than ``max_combinations`` is refused before the
search, with its size: the search is exhaustive or it does not start.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

from ..errors import BuildError, SpecError
from ..spec.expr import compile_assignment
from ..spec.model import Assignment, Invariant, MachineSpec, Var
from .check import check
from .report import Report

__all__ = ["Candidate", "SynthesisResult", "candidates", "synthesize"]

MAX_COMBINATIONS = 20_000
"""The largest search space ``synthesize`` explores (each point is one check)."""


@dataclass(frozen=True)
class Candidate:
    """A repair for one invariant: constants for some of its vars."""

    invariant: str
    values: tuple[tuple[str, Any], ...]
    changed: int           # states (of the holds' space) where the repair changes something

    @property
    def cost(self) -> tuple[int, int]:
        return len(self.values), self.changed

    def text(self) -> str:
        return "{" + ", ".join(f"{k}: {_lit(v)}" for k, v in self.values) + "}"


@dataclass(frozen=True)
class SynthesisResult:
    """``repairs`` (by invariant) when found; else ``found`` is False and
    ``witness`` is the report of the least invasive combination tried."""

    found: bool
    repairs: dict[str, Candidate]
    report: Report | None
    witness: Report | None
    tried: int
    space: int
    spec: MachineSpec | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"found": self.found,
                "repairs": {k: dict(c.values) for k, c in self.repairs.items()},
                "tried": self.tried, "space": self.space,
                "witness": self.witness.summary() if self.witness else None,
                "reason": self.reason}


def _lit(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f"'{v}'"
    return str(v)


def _holds_vars(inv: Invariant, spec: MachineSpec) -> list[Var]:
    expr = inv.holds.expr
    if expr is None:
        raise SpecError(f"invariant {inv.name!r}: synthesis needs holds written as an "
                        "expression (its footprint and failing states are computed from it)")
    names = expr.free_vars
    return [v for v in spec.vars if v.name in names]


def candidates(spec: MachineSpec, inv: Invariant, *, max_vars: int = 2,
               allowed: Sequence[str] | None = None) -> list[Candidate]:
    """Every constant repair of at most ``max_vars`` of the holds' vars that
    makes the invariant hold wherever it fails, cheapest first. ``allowed``
    restricts the vars a repair may assign (the others must stay)."""
    vs = _holds_vars(inv, spec)
    writable = [v for v in vs if allowed is None or v.name in allowed]
    if prod(v.size for v in vs) > 1_000_000:
        raise SpecError(f"invariant {inv.name!r}: its holds reads {prod(v.size for v in vs):,} "
                        "combinations, too many to search repairs over")
    assert inv.holds.expr is not None
    expr = inv.holds.expr
    states = [dict(zip((v.name for v in vs), combo))
              for combo in itertools.product(*(v.values for v in vs))]
    failing = [s for s in states if not _safe(expr, s)]
    out: list[Candidate] = []
    for k in range(1, min(max_vars, len(writable)) + 1):
        for chosen in itertools.combinations(writable, k):
            for values in itertools.product(*(v.values for v in chosen)):
                assign = dict(zip((v.name for v in chosen), values))
                if all(_safe(expr, {**s, **assign}) for s in failing):
                    changed = sum(1 for s in failing
                                  if any(s[n] != x for n, x in assign.items()))
                    out.append(Candidate(inv.name, tuple(assign.items()), changed))
    out.sort(key=lambda c: (c.cost, c.values))
    return out


def _safe(expr: Any, values: dict[str, Any]) -> bool:
    try:
        return bool(expr.eval(values))
    except Exception:  # a holds that cannot be evaluated there does not hold
        return False


def _with_repairs(spec: MachineSpec, chosen: dict[str, Candidate]) -> MachineSpec:
    invs = []
    for inv in spec.invariants:
        c = chosen.get(inv.name)
        if c is None:
            invs.append(inv)
            continue
        asg: Assignment = compile_assignment({k: _lit(v) for k, v in c.values}, spec.var_map,
                                             inv.where)
        invs.append(dataclasses.replace(inv, repair=asg, watches=None))
    return dataclasses.replace(spec, invariants=tuple(invs))


def synthesize(spec: MachineSpec, *, invariants: Sequence[str] | None = None,
               max_vars: int = 2, scope: str = "reachable", strict: bool = False,
               max_combinations: int = MAX_COMBINATIONS,
               allowed: dict[str, Sequence[str]] | None = None) -> SynthesisResult:
    """Repairs for ``invariants`` (default: all) that make ``spec`` pass,
    least invasive first; the repairs written in ``spec`` are ignored for
    those invariants. Raises SpecError when the space is too big to search
    exhaustively (say so rather than guess)."""
    names = list(invariants) if invariants is not None else [i.name for i in spec.invariants]
    unknown = [n for n in names if n not in {i.name for i in spec.invariants}]
    if unknown:
        raise SpecError(f"unknown invariant(s): {', '.join(unknown)}")
    cands = [candidates(spec, next(i for i in spec.invariants if i.name == n),
                        max_vars=max_vars, allowed=(allowed or {}).get(n)) for n in names]
    space = prod(len(c) for c in cands)
    if space == 0:
        empty = [n for n, c in zip(names, cands) if not c]
        return SynthesisResult(False, {}, None, None, 0, 0, None,
                               f"no constant repair of at most {max_vars} var(s) makes "
                               f"{', '.join(empty)} hold where it fails")
    if space > max_combinations:
        raise SpecError(f"repair synthesis: {space:,} combinations of candidate repairs "
                        f"(more than {max_combinations:,}); lower max_vars or name fewer "
                        "invariants")
    witness: Report | None = None
    tried = 0
    for combo in _by_cost(cands):
        chosen = {n: c for n, c in zip(names, combo)}
        candidate_spec = _with_repairs(spec, chosen)
        tried += 1
        try:
            report = check(candidate_spec, scope=scope, strict=strict, method="enumerate")
        except BuildError:
            continue
        if report.ok:
            return SynthesisResult(True, chosen, report, witness, tried, space, candidate_spec)
        if witness is None:
            witness = report
    return SynthesisResult(False, {}, None, witness, tried, space, None,
                           f"none of the {space:,} combinations converges; the least invasive "
                           f"fails as the witness shows")


def _by_cost(cands: list[list[Candidate]]) -> Iterable[tuple[Candidate, ...]]:
    """Every combination (one candidate per list), in order of total cost,
    each exactly once (best-first over the index lattice)."""
    start = tuple(0 for _ in cands)

    def cost(ix: tuple[int, ...]) -> tuple[int, int, tuple[int, ...]]:
        a = sum(cands[k][i].cost[0] for k, i in enumerate(ix))
        b = sum(cands[k][i].cost[1] for k, i in enumerate(ix))
        return a, b, ix

    heap = [cost(start)]
    seen = {start}
    while heap:
        _, _, ix = heapq.heappop(heap)
        yield tuple(cands[k][i] for k, i in enumerate(ix))
        for k in range(len(ix)):
            if ix[k] + 1 < len(cands[k]):
                nxt = ix[:k] + (ix[k] + 1,) + ix[k + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, cost(nxt))
