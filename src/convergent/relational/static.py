"""Static checks of a relational schema, before anything runs.

The relations of a schema are compiled into a finite machine for the core
engine (``convergent.engine``): one boolean var per state (declaration order,
so a state id is the bitmask of active states, bit ``i`` = state ``i``) and
one event per mutation, ``add_X`` and ``remove_X``, plus ``add_X+Y`` for states
that require each other (they can only be activated together). An event's guard
says the relations accept the mutation; its apply is the resolver's outcome
followed, when a clock moved, by the one auto mutation the runtime would
prepend. Every handler is assumed to accept.

The guard and apply tables are computed for every set of active states at
once, with numpy, by a vectorized twin of the resolver (``_transition_tables``);
the per-state resolver (``FiniteModel``, shared with the runtime) is the
definition, and the tests hold the twin to it at every state of random
schemas. The engine then enumerates the reachable sets (``Analysis.reach``)
and the events whose guard never holds there (``never_fire``); the findings
are read off those tables:

======  =================  ==========================================================
REL1    contradiction      a state is active in no reachable set
REL2    auto-loop          auto mutations alone cycle between sets (every transition
                           would flip the auto states again)
REL3    require-cycle      states that require each other: each can only be
                           activated together with the others, and the reference
                           gives up ordering their handlers (a warning)
REL4    always-cancelled   a mutation the relations refuse in every reachable set
======  =================  ==========================================================

REL1 is the OR of the reachable ids; REL4 is ``never_fire`` restricted to the
add mutations (an accepted add is executed; a removal is always accepted and
executed, since the resolver never re-adds a state called for removal); REL2
follows the auto map (a table over every set) from the reachable sets; REL3 is
a cycle of the ``require`` graph. Reasons and witnesses are listed in BFS
order, the shortest mutation sequence first and, among equally short ones, the
one whose mutations come first in declaration order.

That is ``analyze(method="exhaustive")``, the default up to ``max_states``
states. Past it, the schema is analyzed by independent parts
(``_parts``; parts too large for tables are explored set by set, ``_explicit``).

The runtime orders active states as the previous transition resolved them; the
transition function orders them by declaration. The resolver's outcome depends
on order only when simultaneously implied states remove each other; the tests
hold both to the same results on random schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import _resolver as R
from .errors import AnalysisLimitError
from .schema import Schema

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.check import Analysis
    from ..spec.model import MachineSpec

__all__ = ["FINDING_CODES", "MAX_SETS", "MAX_STATES", "METHODS", "Finding", "FiniteModel", "StaticReport",
           "Step", "analyze", "to_machine_spec"]

MAX_STATES = 16
MAX_SETS = 20_000
"""Reachable sets a part too large for tables may reach before ``analyze`` gives up."""
FINDING_CODES = {
    "contradiction": "REL1",
    "auto-loop": "REL2",
    "require-cycle": "REL3",
    "always-cancelled": "REL4",
}
REPORT_VERSION = 1


class Step(NamedTuple):
    """One mutation applied to one set of active states."""

    accepted: bool
    """The relations accepted it (else nothing changed)."""
    executed: bool
    """What the runtime would return: executed (True) or canceled (False)."""
    after: int
    """The active set after it and its auto mutation."""


def _bits(mask: int) -> list[int]:
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def _mask(states: list[int]) -> int:
    m = 0
    for s in states:
        m |= 1 << s
    return m


class FiniteModel:
    """The relations of a schema as a finite transition function over bitmasks."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.compiled = R.compile_schema(schema)
        self.names = self.compiled.names
        events: list[tuple[str, int, list[int]]] = []
        for i, name in enumerate(self.names):
            events.append((f"add_{name}", R.ADD, [i]))
            events.append((f"remove_{name}", R.REMOVE, [i]))
        index = self.compiled.index
        for group in _require_sccs(schema):
            # states that require each other only activate in one mutation
            events.append(("add_" + "+".join(group), R.ADD, [index[g] for g in group]))
        self.events: tuple[tuple[str, int, list[int]], ...] = tuple(events)
        self.initial = 0
        self._memo: dict[tuple[int, int], Step] = {}
        self._auto_memo: dict[int, int] = {}

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(e[0] for e in self.events)

    def describe(self, mask: int) -> str:
        """``(Foo Bar)`` for a set of active states."""
        return "(" + " ".join(self.names[s] for s in _bits(mask)) + ")"

    def step(self, mask: int, event: int) -> Step:
        key = (mask, event)
        hit = self._memo.get(key)
        if hit is None:
            _name, kind, called = self.events[event]
            hit = self._memo[key] = self.apply(mask, kind, called)
        return hit

    def apply(self, mask: int, kind: int, called: list[int]) -> Step:
        """Any mutation (several called states allowed) from ``mask``."""
        c = self.compiled
        before = _bits(mask)
        targets = R.resolve(c, kind, called, before)
        if not R.accepted(kind, called, targets, False):
            return Step(False, False, mask)
        after = _mask(targets)
        changed = after != mask or (kind != R.REMOVE and any(
            c.multi[s] and mask >> s & 1 and after >> s & 1 for s in called))
        executed = kind != R.REMOVE or not any(after >> s & 1 for s in called)
        if changed and c.auto_states:
            after = self.auto(after)
        return Step(True, executed, after)

    def auto(self, mask: int) -> int:
        """The auto mutation the runtime prepends after a transition at ``mask``."""
        hit = self._auto_memo.get(mask)
        if hit is not None:
            return hit
        c = self.compiled
        before = _bits(mask)
        out = mask
        candidates = R.auto_candidates(c, before)
        if candidates:
            targets = R.resolve(c, R.ADD, candidates, before)
            if R.accepted(R.ADD, candidates, targets, True):
                tset = set(targets)
                clean = [s for s in candidates if s in tset]
                if len(clean) != len(candidates):
                    targets = R.resolve(c, R.ADD, clean, before)
                out = _mask(targets)
        self._auto_memo[mask] = out
        return out

    def explain(self, mask: int, kind: int, called: list[int]) -> list[str]:
        """The resolver's reasoning (reference log lines) for one mutation."""
        trace: list[str] = []
        R.resolve(self.compiled, kind, called, _bits(mask), trace)
        return trace


@dataclass(frozen=True)
class Finding:
    """One problem found in a schema."""

    kind: str
    message: str
    states: tuple[str, ...] = ()
    severity: str = "error"
    witness: tuple[str, ...] = ()
    """Steps that show it (mutations from the initial state, then what happens)."""
    details: tuple[str, ...] = ()
    """The resolver's reasons, in the reference's log format."""

    @property
    def code(self) -> str:
        return FINDING_CODES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "kind": self.kind, "severity": self.severity,
                "message": self.message, "states": list(self.states),
                "witness": list(self.witness), "details": list(self.details)}

    def render(self) -> str:
        tag = "" if self.severity == "error" else f" ({self.severity})"
        lines = [f"{self.code} {self.kind}{tag}: {self.message}"]
        lines += [f"    {w}" for w in self.witness]
        lines += [f"    why: {d}" for d in self.details]
        return "\n".join(lines)


@dataclass(frozen=True)
class StaticReport:
    """What ``analyze`` found. ``ok`` when no finding is an error."""

    schema: str
    states: tuple[str, ...]
    events: int
    reachable: int
    findings: tuple[Finding, ...] = field(default=())
    reachable_is_bound: bool = False
    """``reachable`` is an upper bound (a decomposed analysis whose parts'
    auto states react to each other); the findings are exact either way."""

    @property
    def space(self) -> int:
        return 1 << len(self.states)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def _of(self, kind: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == kind)

    @property
    def contradictions(self) -> tuple[Finding, ...]:
        return self._of("contradiction")

    @property
    def auto_loops(self) -> tuple[Finding, ...]:
        return self._of("auto-loop")

    @property
    def require_cycles(self) -> tuple[Finding, ...]:
        return self._of("require-cycle")

    @property
    def always_cancelled(self) -> tuple[Finding, ...]:
        return self._of("always-cancelled")

    def to_dict(self) -> dict[str, Any]:
        out = {"version": REPORT_VERSION, "kind": "relational", "schema": self.schema,
               "states": list(self.states), "events": self.events,
               "reachable": self.reachable, "space": self.space,
               "verdict": "pass" if self.ok else "fail",
               "findings": [f.to_dict() for f in self.findings]}
        if self.reachable_is_bound:
            out["reachable_is_bound"] = True
        return out

    def render_text(self) -> str:
        errors = sum(1 for f in self.findings if f.severity == "error")
        warnings = len(self.findings) - errors
        lines = [(f"relational schema {self.schema!r}: {len(self.states)} states, "
                  f"{self.events} mutations, {'at most ' * self.reachable_is_bound}"
                  f"{self.reachable} of {self.space} active sets reachable")]
        lines += [f.render() for f in self.findings]
        verdict = "pass" if self.ok else "fail"
        lines.append(f"verdict: {verdict} ({errors} error{'s' * (errors != 1)}, "
                     f"{warnings} warning{'s' * (warnings != 1)})")
        return "\n".join(lines)


def _require_sccs(schema: Schema) -> list[list[str]]:
    """Strongly connected components of the require graph with a cycle."""
    names = schema.names
    graph = {n: schema[n].require for n in names}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp, key=names.index))

    for n in names:
        if n not in index:
            strong(n)
    return out


def _reasons(model: FiniteModel, reachable: list[int], kind: int, called: list[int],
             limit: int = 3) -> tuple[str, ...]:
    """Distinct resolver log lines about the called state, over reachable sets."""
    name = model.names[called[0]]
    reasons: list[str] = []
    for mask in reachable:
        for line in model.explain(mask, kind, called):
            words = line.replace("(", " ").replace(")", " ").split()
            if name in words and line not in reasons:
                reasons.append(line)
        if len(reasons) >= limit:
            break
    return tuple(reasons[:limit])


# ---------------------------------------------------------------- transition tables


class _Tables(NamedTuple):
    """Every mutation at every set of active states (ids ``0 .. 2**n - 1``)."""

    accepted: np.ndarray
    """(E, N) bool: the relations accept event ``e`` at set ``s`` (the guard)."""
    after: np.ndarray
    """(E, N) int64: the set after event ``e`` and its auto mutation (``s`` if refused)."""
    auto: np.ndarray
    """(N,) int64: the set after the auto mutation the runtime prepends at ``s``."""
    pre: np.ndarray
    """(E, N) int64: the set after event ``e``, before its auto mutation (``s`` if refused)."""
    refresh: np.ndarray
    """(N,) int64: ``s`` resolved again by a mutation that calls none of its states."""


_Slots = list[tuple[int, np.ndarray]]


def _require_fix(c: R.Compiled, present: list[np.ndarray]) -> list[np.ndarray]:
    """``_parse_require`` on sets: drop states whose requirement is missing, until stable."""
    require = c.require
    while True:
        nxt = list(present)
        for s, reqs in enumerate(require):
            for r in reqs:
                nxt[s] = nxt[s] & present[r]
        if all(np.array_equal(a, b) for a, b in zip(nxt, present)):
            return present
        present = nxt


def _resolve_vec(c: R.Compiled, kind: int, called: _Slots, bits: list[np.ndarray]
                 ) -> list[np.ndarray]:
    """``_resolver.resolve`` at every set at once: the target states as one bool
    column per state. A list is a sequence of slots (a state and where it is
    present), so order-dependent steps stay exact: a state's position is its
    first present slot. ``called`` may differ by set (the auto candidates)."""
    n = len(bits)
    size = len(bits[0])
    no = np.zeros(size, dtype=bool)
    cond = [np.ones(size, dtype=bool) if c.multi[s] else ~bits[s] for s in range(n)]
    called_set = {s for s, _ in called}

    def adds_of(s: int) -> tuple[int, ...]:
        adds = c.add[s]
        if kind == R.REMOVE:
            adds = tuple(a for a in adds if a not in called_set)
        return adds

    # 1. states_to_set (active states in declaration order)
    if kind == R.ADD:
        slots: _Slots = list(called) + [(s, bits[s]) for s in range(n)]
    elif kind == R.REMOVE:
        slots = [(s, bits[s]) for s in range(n) if s not in called_set]
    else:  # pragma: no cover - the static model has no set mutations
        raise ValueError(f"kind={kind}")
    # 2. one hop of add, at the first occurrence of a state not active before
    if c.has_add:
        seen: dict[int, np.ndarray] = {}
        extra: _Slots = []
        for s, pr in slots:
            prev = seen.get(s)
            first = pr if prev is None else pr & ~prev
            seen[s] = pr if prev is None else prev | pr
            adds = adds_of(s)
            if adds:
                on = first & cond[s]
                extra += [(a, on) for a in adds]
        slots += extra
    # 3. de-duplicate: a state's position is its first present slot
    end = len(slots)
    pos = [np.full(size, end, dtype=np.int32) for _ in range(n)]
    for i, (s, pr) in enumerate(slots):
        pos[s][pr & (pos[s] == end)] = i
    present = [p < end for p in pos]
    if c.has_require:
        present = _require_fix(c, present)
    # 4. walk from the end: blocked by a listed remover not blocked later in the list
    if c.has_remove:
        blocked = [no.copy() for _ in range(n)]
        for i in range(end - 1, -1, -1):
            s = slots[i][0]
            if not c.removed_by[s]:
                continue
            here = present[s] & (pos[s] == i)
            if not here.any():
                continue
            hit = no
            for b in c.removed_by[s]:
                hit = hit | (present[b] & ~((pos[b] > i) & blocked[b]))
            blocked[s] |= here & hit
        kept = [present[s] & ~blocked[s] for s in range(n)]
        removed = [no] * n
        for s in range(n):
            for t in c.remove[s]:
                removed[t] = removed[t] | kept[s]
        gone: list[np.ndarray] | None = removed
    else:
        kept, gone = present, None
    # 5. second hop of add, drop what the survivors remove, require again
    out = list(kept)
    if c.has_add:
        for s in range(n):
            adds = adds_of(s)
            if adds:
                on = kept[s] & cond[s]
                for a in adds:
                    out[a] = out[a] | on
    if gone is not None:
        out = [o & ~g for o, g in zip(out, gone)]
    if c.has_require:
        out = _require_fix(c, out)
    return out


def _ids(cols: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(len(cols[0]), dtype=np.int64)
    for i, col in enumerate(cols):
        out |= col.astype(np.int64) << i
    return out


def _transition_tables(model: FiniteModel) -> _Tables:
    """``FiniteModel.step`` (accepted, after) and ``FiniteModel.auto`` at every
    set of active states, vectorized over the sets."""
    c = model.compiled
    n = len(model.names)
    ids = np.arange(1 << n, dtype=np.int64)
    bits = [(ids >> i & 1).astype(bool) for i in range(n)]

    auto = ids
    if c.auto_states:
        blocked = [np.zeros(len(ids), dtype=bool) for _ in range(n)]
        for t in range(n):
            for s in c.remove[t]:
                blocked[s] = blocked[s] | bits[t]
        cand = {s: ~bits[s] & ~blocked[s] for s in c.auto_states}
        first = _resolve_vec(c, R.ADD, list(cand.items()), bits)
        ok = np.zeros(len(ids), dtype=bool)
        partial = np.zeros(len(ids), dtype=bool)
        for s, cs in cand.items():
            ok |= cs & first[s]
            partial |= cs & ~first[s]
        partial &= ok
        targets = first
        if partial.any():
            again = _resolve_vec(c, R.ADD, [(s, cs & first[s]) for s, cs in cand.items()],
                                 bits)
            targets = [np.where(partial, a, f) for a, f in zip(again, first)]
        auto = np.where(ok, _ids(targets), ids)

    E = len(model.events)
    every = np.ones(len(ids), dtype=bool)
    accepted = np.ones((E, len(ids)), dtype=bool)
    after = np.empty((E, len(ids)), dtype=np.int64)
    pre = np.empty((E, len(ids)), dtype=np.int64)
    for e, (_name, kind, called) in enumerate(model.events):
        res = _resolve_vec(c, kind, [(s, every) for s in called], bits)
        out = _ids(res)
        if kind != R.REMOVE:
            for s in called:
                accepted[e] &= res[s]
        pre[e] = np.where(accepted[e], out, ids)
        if c.auto_states:
            changed = out != ids
            if kind != R.REMOVE:
                for s in called:
                    if c.multi[s]:
                        changed |= bits[s] & res[s]
            out = np.where(changed, auto[out], out)
        after[e] = np.where(accepted[e], out, ids)
    refresh = _ids(_resolve_vec(c, R.ADD, [], bits))
    return _Tables(accepted, after, auto, pre, refresh)


# ---------------------------------------------------------------- the MachineSpec


class _Ids:
    """The set id of every row of the engine's columns, computed once per batch."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._last: tuple[Any, np.ndarray] | None = None

    def of_columns(self, cols: Mapping[str, np.ndarray]) -> np.ndarray:
        last = self._last
        if last is not None and last[0] is cols:
            return last[1]
        out = _ids([np.asarray(cols[name], dtype=bool) for name in self.names])
        self._last = (cols, out)
        return out

    def of_values(self, values: Mapping[str, Any]) -> int:
        return sum(1 << i for i, name in enumerate(self.names) if values[name])


class _TableExpr:
    """A boolean spec expression (``convergent.spec.model.Expr``) read from a
    table over the sets of active states."""

    __slots__ = ("_ids", "_table", "_text")

    def __init__(self, ids: _Ids, table: np.ndarray, text: str) -> None:
        self._ids = ids
        self._table = table
        self._text = text

    @property
    def text(self) -> str:
        return self._text

    @property
    def free_vars(self) -> frozenset[str]:
        return frozenset(self._ids.names)

    def eval(self, values: Mapping[str, Any]) -> bool:
        return bool(self._table[self._ids.of_values(values)])

    def eval_vec(self, cols: Mapping[str, np.ndarray], n: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        return self._table[self._ids.of_columns(cols)], None

    def __repr__(self) -> str:
        return f"_TableExpr({self._text!r})"


def _spec(model: FiniteModel, tables: _Tables) -> MachineSpec:
    from ..spec.model import Assignment, Event, MachineSpec, Predicate, Var

    names = model.names
    ids = _Ids(names)
    events = []
    for e, (name, _kind, _called) in enumerate(model.events):
        guard = _TableExpr(ids, tables.accepted[e], f"relations accept {name}")
        exprs = tuple(_TableExpr(ids, (tables.after[e] >> i & 1).astype(bool),
                                 f"{s} after {name} and the auto mutation")
                      for i, s in enumerate(names))
        events.append(Event(
            name=name, guard=Predicate(expr=guard, text=guard.text),
            apply=Assignment(targets=names, exprs=exprs,
                             text=f"{name} with relations and auto states")))
    return MachineSpec(name=model.schema.name, vars=tuple(Var.boolean(n) for n in names),
                       invariants=(), events=tuple(events), independent=(),
                       initial={n: False for n in names}, source=None)


def to_machine_spec(schema: Schema, *, max_states: int = MAX_STATES) -> MachineSpec:
    """The schema's transition function as a ``convergent.spec.model.MachineSpec``.

    One ``Var.boolean`` per state (declaration order), one ``Event`` per
    ``add_X`` / ``remove_X`` (and ``add_X+Y`` for states that require each
    other): its guard says the relations accept the mutation, its apply sets
    every state to its value after the mutation and the auto mutation that
    follows. Both are tables over every set of active states (expressions
    with ``eval`` and ``eval_vec``). No invariants; initially nothing is active.

    Raises:
        AnalysisLimitError: the schema has more than ``max_states`` states
            (the tables cover all 2^n sets).
    """
    if len(schema) > max_states:
        raise AnalysisLimitError(f"schema {schema.name!r} has {len(schema)} states; its "
                                 f"tables stop at max_states={max_states}")
    model = FiniteModel(schema)
    return _spec(model, _transition_tables(model))


# ---------------------------------------------------------------- analysis


def _bfs(step: np.ndarray, s0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reachable ids over the engine's step tables in BFS discovery order (by
    level; within a level by (parent's position, event)), with parents, the
    event from the parent and the depth (-1 where unreachable)."""
    E, N = step.shape
    visited = np.zeros(N, dtype=bool)
    parent = np.full(N, -1, dtype=np.int64)
    pev = np.full(N, -1, dtype=np.int64)
    depth = np.full(N, -1, dtype=np.int64)
    visited[s0] = True
    depth[s0] = 0
    frontier = np.array([s0], dtype=np.int64)
    levels = [frontier]
    d = 0
    while True:
        d += 1
        succ = step[:, frontier].T.ravel()          # key j * E + e
        keys = np.flatnonzero(~visited[succ])
        if not len(keys):
            break
        new, first = np.unique(succ[keys], return_index=True)
        by_key = np.argsort(first, kind="stable")
        new = new[by_key]
        k = keys[first[by_key]]
        parent[new] = frontier[k // E]
        pev[new] = k % E
        depth[new] = d
        visited[new] = True
        levels.append(new)
        frontier = new
    return np.concatenate(levels), parent, pev, depth


def _witness(model: FiniteModel, parent: np.ndarray, pev: np.ndarray, mask: int) -> list[str]:
    steps: list[str] = []
    while parent[mask] >= 0:
        steps.append(f"{model.events[int(pev[mask])][0]} -> {model.describe(mask)}")
        mask = int(parent[mask])
    steps.reverse()
    return steps


def _auto_loops(model: FiniteModel, auto: np.ndarray, order: np.ndarray,
                parent: np.ndarray, pev: np.ndarray, depth: np.ndarray) -> list[Finding]:
    """Cycles of length >= 2 of the auto map entered from the reachable sets,
    in the order of the first reachable set that leads into each."""
    N = len(auto)
    # pointer doubling: h = auto^(2^k) lands on the cycle every orbit ends in,
    # low[x] = the smallest id among auto^0(x) .. auto^(2^k - 1)(x)
    h = auto
    low = np.arange(N, dtype=np.int64)
    for _ in range(max(1, (N - 1).bit_length())):
        low = np.minimum(low, low[h])
        h = h[h]
    rep = low[h]                                    # the cycle's smallest id
    ends = rep[order]
    loops = np.flatnonzero(auto[ends] != ends)
    cycles, first = np.unique(ends[loops], return_index=True)
    found: list[Finding] = []
    seen_states: set[tuple[str, ...]] = set()
    for start in cycles[np.argsort(first, kind="stable")].tolist():
        cycle = [start]
        m = int(auto[start])
        while m != start:
            cycle.append(m)
            m = int(auto[m])
        # the set with the shortest witness (unreachable ones count as 0), then the id
        lead = min(cycle, key=lambda m: (max(int(depth[m]), 0), m))
        pos = cycle.index(lead)
        cycle = cycle[pos:] + cycle[:pos]
        loop = " -> ".join(model.describe(m) for m in cycle + cycle[:1])
        states = tuple(sorted({model.names[s] for m in cycle for s in _bits(m ^ int(auto[m]))},
                              key=model.names.index))
        if states in seen_states:
            # the same loop with other, unrelated states active
            continue
        seen_states.add(states)
        found.append(Finding(
            "auto-loop",
            f"auto states never settle: {loop}; every transition that moves a clock "
            "flips them again",
            states, witness=tuple(_witness(model, parent, pev, lead))))
    return found


def _engine_analysis(model: FiniteModel, tables: _Tables) -> Analysis:
    from ..engine.check import analyze as engine_analyze

    an = engine_analyze(_spec(model, tables), independent="auto")
    if an.step is None or an.reach is None or an.initial_id is None \
            or an.report.findings is None:  # pragma: no cover - no invariants, no repairs
        raise RuntimeError(f"the engine did not tabulate schema {model.schema.name!r}")
    return an


@dataclass(frozen=True)
class _Explored:
    """One schema's finite model explored by the engine (``_explore``)."""

    model: FiniteModel
    tables: _Tables
    reachable: list[int]
    """Reachable sets in BFS order."""
    findings: list[Finding]
    """REL1, REL2 and REL4 findings about the ``real`` states, in report order."""


def _explore(schema: Schema, real: frozenset[str] | None = None) -> _Explored:
    """Enumerate ``schema``'s reachable sets with the core engine and read REL1,
    REL2 and REL4 off its tables. ``real``: report only about these states
    (and the mutations that call only them); all states when None."""
    model = FiniteModel(schema)
    names = model.names
    n = len(names)
    keep = [real is None or names[i] in real for i in range(n)]
    tables = _transition_tables(model)
    an = _engine_analysis(model, tables)
    assert an.step is not None and an.reach is not None and an.initial_id is not None
    assert an.report.findings is not None
    order, parent, pev, depth = _bfs(an.step, an.initial_id)
    if len(order) != len(an.reach) or not (depth[an.reach] >= 0).all():  # pragma: no cover
        raise RuntimeError("the engine's reachable sets differ from its own step tables")
    reachable: list[int] = order.tolist()

    findings: list[Finding] = []
    ever = int(np.bitwise_or.reduce(an.reach))
    never = [i for i in range(n) if not ever >> i & 1]
    never_set = set(never)
    for i in never:
        if not keep[i]:
            continue
        reasons = _reasons(model, reachable, R.ADD, [i])
        blocked_by = [names[r] for r in model.compiled.require[i] if r in never_set]
        message = f"{names[i]} can never be active"
        if blocked_by:
            message += f" (it requires {', '.join(blocked_by)}, never active either)"
        findings.append(Finding("contradiction", message, (names[i],), details=reasons))

    findings += _auto_loops(model, tables.auto, order, parent, pev, depth)

    # an accepted add is executed; removals are always accepted and executed
    never_fire = set(an.report.findings.never_fire)
    for name, kind, called in model.events:
        if kind != R.ADD or name not in never_fire or any(s in never_set for s in called):
            continue
        if not all(keep[s] for s in called):
            continue
        findings.append(Finding(
            "always-cancelled", f"{name} is cancelled by the relations in every reachable "
            "set of active states", tuple(names[s] for s in called),
            details=_reasons(model, reachable, kind, called)))
    return _Explored(model, tables, reachable, findings)


def _require_cycle_findings(schema: Schema) -> list[Finding]:
    return [Finding(
        "require-cycle",
        f"{' -> '.join(comp + comp[:1])} require each other: they can only be added "
        f"together (add_{'+'.join(comp)}), and handler order among them is undefined",
        tuple(comp), severity="warning") for comp in _require_sccs(schema)]


METHODS = ("auto", "exhaustive", "decomposed")


def analyze(schema: Schema, *, max_states: int = MAX_STATES, method: str = "auto",
            max_sets: int = MAX_SETS) -> StaticReport:
    """Compile ``schema`` into a finite machine, let the core engine enumerate
    every reachable set of active states, and report contradictions, auto
    loops, require cycles and always-cancelled mutations.

    ``method``:

    * ``"exhaustive"``: one finite model of all states (2^n sets);
    * ``"decomposed"``: the schema split into independent parts (states
      connected by require, remove or add), each explored on its own with the
      effects of the others modeled exactly (``convergent.relational._parts``),
      so the cost grows with the largest part, not with the schema;
    * ``"auto"`` (default): exhaustive up to ``max_states`` states, decomposed
      beyond.

    A part with more than ``max_states`` states (with its stand-in for the
    other parts) is explored one reachable set at a time, up to ``max_sets``
    sets.

    Raises:
        AnalysisLimitError: an exhaustive analysis of more than ``max_states``
            states (``Exception`` included); a part reaching more than
            ``max_sets`` sets; or parts that depend on each other in a way a
            decomposed analysis does not model.
    """
    if not isinstance(schema, Schema):
        raise TypeError(f"schema={schema!r} (expected a convergent.relational.Schema)")
    if method not in METHODS:
        raise ValueError(f"method={method!r} (expected one of {', '.join(METHODS)})")
    n = len(schema.names)
    if method == "decomposed" or (method == "auto" and n > max_states):
        from ._parts import analyze_parts

        return analyze_parts(schema, max_states=max_states, max_sets=max_sets)
    if n > max_states:
        raise AnalysisLimitError(f"schema {schema.name!r} has {n} states; exhaustive analysis "
                                 f"stops at max_states={max_states}")
    explored = _explore(schema)
    findings = [f for f in explored.findings if f.kind != "always-cancelled"]
    findings += _require_cycle_findings(schema)
    findings += [f for f in explored.findings if f.kind == "always-cancelled"]
    return StaticReport(schema=schema.name, states=explored.model.names,
                        events=len(explored.model.events), reachable=len(explored.reachable),
                        findings=tuple(findings))
