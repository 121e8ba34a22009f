"""Static checks by parts: a schema split where its relations do not reach.

The footprint of a mutation is the set of states its resolution can read or
change. For ``add_X`` and ``remove_X`` it never leaves X's *part*: the states
connected to X by ``require``, ``remove`` or ``add`` (``after`` orders
handlers and changes no set). So the reachable sets of active states can be
explored part by part, each part a small finite model for the engine, instead
of one model of 2^n sets. Two effects cross parts, and each part's model
includes them exactly:

* every mutation elsewhere *refreshes* the part (it is resolved again as
  active states of a mutation that does not call them: ``resolve(add, [],
  part)``) and, when a clock moved anywhere, runs the part's auto states. The
  part's model has a relation-free ``multi`` state standing for "elsewhere"
  (the ``Exception`` appended to the part's schema, or ``ForeignTick`` when
  the part holds the real ``Exception``): its mutations produce exactly those
  two effects. This is exact when some other part can move a clock from each
  of its reachable sets (checked: from a non-empty set a removal always does,
  so only the empty set needs an accepted add), or when the part has no auto
  state;
* one auto mutation covers every part, accepted when any part accepts one of
  its auto states; a part whose candidates all fail is then refreshed.

A part whose model has more than ``max_states`` states is explored set by set
instead of by tables (``_explicit``), up to ``max_sets`` reachable sets.

The decomposition is used only when the refresh changes no reachable set of
any part (no ``multi`` state re-adding what it adds, no set left holding a
state and its remover); otherwise ``AnalysisLimitError`` says why, and the
exhaustive analysis (up to ``max_states``) is the way.

What it reports is then what the exhaustive analysis reports: a state is
active in some reachable set of the schema exactly when it is in some
reachable set of its part (REL1); a mutation is accepted somewhere exactly
when it is in its part (REL4); the auto map of the schema is the product of
the parts' maps, so an auto loop is a loop of one part (REL2); require cycles
(REL3) come from the graph. Witnesses and loop descriptions name the part's
states only. ``reachable`` is the product of the parts' counts: exact when no
part has a reachable set its auto states have not settled (the empty set with
an auto state ready counts), else an upper bound (``reachable_is_bound``).
The tests hold the findings to the exhaustive analysis on random schemas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _resolver as R
from ._explicit import explore_explicit
from .errors import AnalysisLimitError
from .schema import EXCEPTION, Schema, State
from .static import (
    Finding,
    FiniteModel,
    StaticReport,
    _bits,
    _explore,
    _mask,
    _require_cycle_findings,
    _require_sccs,
)

__all__ = ["Part", "analyze_parts", "parts_of"]

TICK = "ForeignTick"
"""The stand-in for "a mutation elsewhere", when the part holds ``Exception``."""


@dataclass(frozen=True)
class Part:
    """States connected by ``require``, ``remove`` or ``add``, in schema order."""

    states: tuple[str, ...]

    @property
    def has_exception(self) -> bool:
        return EXCEPTION in self.states


def parts_of(schema: Schema) -> list[Part]:
    """The connected components of the relation graph, in order of their first state."""
    names = schema.names
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for name in names:
        state = schema[name]
        for other in (*state.require, *state.remove, *state.add):
            a, b = root(name), root(other)
            if a != b:
                parent[max(a, b, key=names.index)] = min(a, b, key=names.index)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return [Part(tuple(g)) for g in groups.values()]


@dataclass(frozen=True)
class _PartResult:
    part: Part
    findings: list[Finding]
    reachable: int
    """Distinct sets of the part's own states."""
    unsettled: bool
    """Some reachable set is not a fixed point of the part's auto map."""
    movable: bool
    """From every reachable set some mutation of the part moves a clock."""


def _part_schema(schema: Schema, part: Part, foreign: bool) -> Schema:
    """The part as a schema of its own, with the stand-in for "elsewhere" when
    ``foreign`` (the ``Exception`` a schema appends, or ``ForeignTick``)."""
    members = set(part.states)
    states = [(n, State(require=schema[n].require, remove=schema[n].remove, add=schema[n].add,
                        after=tuple(a for a in schema[n].after if a in members),
                        auto=schema[n].auto, multi=schema[n].multi))
              for n in part.states]
    if foreign and part.has_exception:
        tick = TICK
        while tick in schema:
            tick += "X"
        states.append((tick, State(multi=True)))
    return Schema(tuple(states), f"{schema.name}[{part.states[0]}]")


def _explore_part(schema: Schema, part: Part, foreign: bool, max_states: int,
                  max_sets: int) -> _PartResult:
    """Explore one part: with the engine's tables when its model has at most
    ``max_states`` states, else set by set (``_explicit``, at most ``max_sets``)."""
    sub = _part_schema(schema, part, foreign)
    real = frozenset(part.states)
    if len(sub) <= max_states:
        explored = _explore(sub, real)
        model: FiniteModel = explored.model
        reachable, findings = explored.reachable, explored.findings
        tables = explored.tables
        # the sets a refresh may meet: reachable ones, and those a mutation
        # leaves before its auto mutation
        reach = np.asarray(reachable, dtype=np.int64)
        met = np.concatenate([reach, tables.pre[:, reach][tables.accepted[:, reach]]])
        moved_by_refresh = [int(m) for m in met[tables.refresh[met] != met][:1]]
        unsettled = bool((tables.auto[reach] != reach).any())
    else:
        ex = explore_explicit(sub, real, max_sets)
        model, reachable, findings = ex.model, ex.reachable, ex.findings
        c = model.compiled
        moved_by_refresh = [m for m in sorted(set(reachable) | ex.pre)
                            if _mask(R.resolve(c, R.ADD, [], _bits(m))) != m][:1]
        unsettled = any(model.auto(m) != m for m in reachable)
    if moved_by_refresh:
        raise AnalysisLimitError(
            f"schema {schema.name!r}: part {list(part.states)} depends on mutations "
            f"elsewhere (resolving {model.describe(moved_by_refresh[0])} again changes "
            "it), so it cannot be analyzed alone; use method='exhaustive'")
    own = _mask([i for i, n in enumerate(model.names) if n in real])
    movable = False
    for _name, kind, called in model.events:
        if all(own >> s & 1 for s in called):
            step = model.apply(0, kind, called)
            if step.accepted and step.after != 0:
                movable = True
                break
    projected = {m & own for m in reachable}
    return _PartResult(part, findings, len(projected), unsettled, movable)


def _order(schema: Schema, findings: list[Finding]) -> list[Finding]:
    """The exhaustive analysis's order: REL1 by state, REL2, REL3, REL4 by event."""
    names = schema.names
    groups = {tuple(g): i for i, g in enumerate(_require_sccs(schema))}

    def event_key(f: Finding) -> tuple[int, int]:
        if len(f.states) > 1:
            return (1, groups.get(f.states, len(groups)))
        return (0, names.index(f.states[0]))

    rel1 = sorted((f for f in findings if f.kind == "contradiction"),
                  key=lambda f: names.index(f.states[0]))
    rel2 = [f for f in findings if f.kind == "auto-loop"]
    rel4 = sorted((f for f in findings if f.kind == "always-cancelled"), key=event_key)
    return rel1 + rel2 + _require_cycle_findings(schema) + rel4


def analyze_parts(schema: Schema, *, max_states: int, max_sets: int) -> StaticReport:
    """``static.analyze`` by parts (see the module docstring)."""
    parts = parts_of(schema)
    foreign = len(parts) > 1
    results = [_explore_part(schema, p, foreign, max_states, max_sets) for p in parts]
    for r in results:
        has_auto = any(schema[n].auto for n in r.part.states)
        if foreign and has_auto and not any(o.movable for o in results if o is not r):
            raise AnalysisLimitError(
                f"schema {schema.name!r}: the auto states of part {list(r.part.states)} "
                "react to mutations elsewhere, and no other part can always make one; "
                "use method='exhaustive'")
    findings = _order(schema, [f for r in results for f in r.findings])
    events = len(FiniteModel(schema).events)
    reachable = 1
    for r in results:
        reachable *= r.reachable
    # with unsettled auto states somewhere, not every combination of the parts'
    # sets is reachable: a move in one part runs the others' auto states
    bound = len(results) > 1 and any(r.unsettled for r in results)
    return StaticReport(schema=schema.name, states=schema.names, events=events,
                        reachable=reachable, findings=tuple(findings),
                        reachable_is_bound=bound)
