"""Explicit exploration: the reachable sets of a model too large for tables.

The engine tabulates every one of the 2^n sets of a model, which stops being
possible past ``max_states``. A part that large may still reach few sets (modes
that exclude each other, chains of requirements), so it is explored one
reachable set at a time, breadth first, with the per-set resolver
(``static.FiniteModel``): exact, and as costly as the reachable sets times the
mutations. ``max_sets`` bounds it; past it ``AnalysisLimitError``.

It produces what the table-based exploration produces for a part
(``_parts``): the reachable sets in BFS order (by level; within a level by
parent, then mutation), the REL1, REL2 and REL4 findings, and the sets a
mutation leaves before its auto mutation.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _resolver as R
from .errors import AnalysisLimitError
from .schema import Schema
from .static import Finding, FiniteModel, _bits, _mask, _reasons

__all__ = ["Explicit", "explore_explicit"]


@dataclass(frozen=True)
class Explicit:
    model: FiniteModel
    reachable: list[int]
    findings: list[Finding]
    pre: frozenset[int]
    """Sets left by an accepted mutation of a reachable set, before its auto mutation."""


def _step(model: FiniteModel, mask: int, kind: int, called: list[int]
          ) -> tuple[bool, int, int]:
    """(accepted, set before the auto mutation, set after it): ``FiniteModel.apply``
    with the intermediate set."""
    c = model.compiled
    targets = R.resolve(c, kind, called, _bits(mask))
    if not R.accepted(kind, called, targets, False):
        return False, mask, mask
    pre = _mask(targets)
    changed = pre != mask or (kind != R.REMOVE and any(
        c.multi[s] and mask >> s & 1 and pre >> s & 1 for s in called))
    after = model.auto(pre) if changed and c.auto_states else pre
    return True, pre, after


def explore_explicit(schema: Schema, real: frozenset[str], max_sets: int) -> Explicit:
    model = FiniteModel(schema)
    names = model.names
    n = len(names)
    events = model.events
    parent: dict[int, tuple[int, int]] = {}
    depth = {0: 0}
    order = [0]
    fired = [False] * len(events)
    pre_sets: set[int] = set()
    i = 0
    while i < len(order):
        mask = order[i]
        i += 1
        for e, (_name, kind, called) in enumerate(events):
            ok, pre, after = _step(model, mask, kind, called)
            if not ok:
                continue
            fired[e] = True
            pre_sets.add(pre)
            if after not in depth:
                if len(order) >= max_sets:
                    raise AnalysisLimitError(
                        f"schema {schema.name!r}: {n} related states reach more than "
                        f"max_sets={max_sets} sets of active states")
                depth[after] = depth[mask] + 1
                parent[after] = (mask, e)
                order.append(after)

    def witness(mask: int) -> list[str]:
        steps: list[str] = []
        while mask in parent:
            prev, e = parent[mask]
            steps.append(f"{events[e][0]} -> {model.describe(mask)}")
            mask = prev
        steps.reverse()
        return steps

    keep = [names[s] in real for s in range(n)]
    findings: list[Finding] = []
    ever = 0
    for mask in order:
        ever |= mask
    never = [s for s in range(n) if not ever >> s & 1]
    never_set = set(never)
    for s in never:
        if not keep[s]:
            continue
        blocked_by = [names[r] for r in model.compiled.require[s] if r in never_set]
        message = f"{names[s]} can never be active"
        if blocked_by:
            message += f" (it requires {', '.join(blocked_by)}, never active either)"
        findings.append(Finding("contradiction", message, (names[s],),
                                details=_reasons(model, order, R.ADD, [s])))

    # auto loops: the cycle each reachable set's auto orbit ends in
    seen_cycles: set[int] = set()
    seen_states: set[tuple[str, ...]] = set()
    for start in order:
        path: dict[int, int] = {}
        m = start
        while m not in path:
            path[m] = len(path)
            m = model.auto(m)
        cycle = [x for x, pos in sorted(path.items(), key=lambda kv: kv[1])
                 if pos >= path[m]]
        if len(cycle) < 2 or min(cycle) in seen_cycles:
            continue
        seen_cycles.add(min(cycle))
        lead = min(cycle, key=lambda x: (max(depth.get(x, -1), 0), x))
        pos = cycle.index(lead)
        cycle = cycle[pos:] + cycle[:pos]
        loop = " -> ".join(model.describe(x) for x in cycle + cycle[:1])
        states = tuple(sorted({names[s] for x in cycle for s in _bits(x ^ model.auto(x))},
                              key=names.index))
        if states in seen_states:
            continue
        seen_states.add(states)
        findings.append(Finding(
            "auto-loop",
            f"auto states never settle: {loop}; every transition that moves a clock "
            "flips them again", states, witness=tuple(witness(lead))))

    for e, (name, kind, called) in enumerate(events):
        if kind != R.ADD or fired[e] or any(s in never_set for s in called):
            continue
        if not all(keep[s] for s in called):
            continue
        findings.append(Finding(
            "always-cancelled", f"{name} is cancelled by the relations in every reachable "
            "set of active states", tuple(names[s] for s in called),
            details=_reasons(model, order, kind, called)))
    return Explicit(model, order, findings, frozenset(pre_sets))
