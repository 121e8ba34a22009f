"""Static checks of a relational schema, before anything runs.

The relations of a schema are compiled into a pure, finite transition function
over sets of active states, encoded as bitmasks (bit ``i`` = state ``i`` in
declaration order). Its events are the single-state mutations ``add_X`` and
``remove_X``, plus ``add_X+Y`` for states that require each other (they can
only be activated together); each step runs the same resolver as the runtime, assumes every
handler accepts, and, when a clock moved, applies the one auto mutation the
runtime would prepend. From the initial state (nothing active) every reachable
set is enumerated, which is exact and cheap up to about 16 states.

Findings (stable codes):

======  =================  ==========================================================
REL1    contradiction      a state is active in no reachable set
REL2    auto-loop          auto mutations alone cycle between sets (every transition
                           would flip the auto states again)
REL3    require-cycle      states that require each other: each can only be
                           activated together with the others, and the reference
                           gives up ordering their handlers (a warning)
REL4    always-cancelled   a mutation the relations refuse in every reachable set
======  =================  ==========================================================

``to_machine_spec`` builds the same transition function as a
``convergent.spec.model.MachineSpec`` (one boolean var per state, one event per
mutation) for the core engine.

The runtime orders active states as the previous transition resolved them; the
transition function orders them by declaration. The resolver's outcome depends
on order only when simultaneously implied states remove each other; the tests
hold both to the same results on random schemas.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _resolver as R
from .errors import AnalysisLimitError
from .schema import Schema

if TYPE_CHECKING:  # pragma: no cover
    from ..spec.model import MachineSpec

__all__ = ["FINDING_CODES", "MAX_STATES", "Finding", "FiniteModel", "StaticReport", "Step",
           "analyze", "to_machine_spec"]

MAX_STATES = 20
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
        return {"version": REPORT_VERSION, "kind": "relational", "schema": self.schema,
                "states": list(self.states), "events": self.events,
                "reachable": self.reachable, "space": self.space,
                "verdict": "pass" if self.ok else "fail",
                "findings": [f.to_dict() for f in self.findings]}

    def render_text(self) -> str:
        errors = sum(1 for f in self.findings if f.severity == "error")
        warnings = len(self.findings) - errors
        lines = [f"relational schema {self.schema!r}: {len(self.states)} states, "
                 f"{self.events} mutations, {self.reachable} of {self.space} active sets "
                 "reachable"]
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


def _path(parent: dict[int, tuple[int, int] | None], mask: int,
          model: FiniteModel) -> list[str]:
    steps: list[str] = []
    while parent.get(mask) is not None:
        prev, event = parent[mask]  # type: ignore[misc]
        steps.append(f"{model.events[event][0]} -> {model.describe(mask)}")
        mask = prev
    steps.reverse()
    return steps


def analyze(schema: Schema, *, max_states: int = MAX_STATES) -> StaticReport:
    """Enumerate every reachable set of active states of ``schema`` and report
    contradictions, auto loops, require cycles and always-cancelled mutations.

    Raises:
        AnalysisLimitError: the schema has more than ``max_states`` states
            (``Exception`` included).
    """
    if not isinstance(schema, Schema):
        raise TypeError(f"schema={schema!r} (expected a convergent.relational.Schema)")
    n = len(schema.names)
    if n > max_states:
        raise AnalysisLimitError(f"schema {schema.name!r} has {n} states; exhaustive analysis "
                                 f"stops at max_states={max_states}")
    model = FiniteModel(schema)
    names = model.names
    n_events = len(model.events)

    # reachability, with BFS parents for witnesses
    parent: dict[int, tuple[int, int] | None] = {model.initial: None}
    todo = deque([model.initial])
    executed_somewhere = [False] * n_events
    while todo:
        mask = todo.popleft()
        for e in range(n_events):
            step = model.step(mask, e)
            if step.executed:
                executed_somewhere[e] = True
            if step.after not in parent:
                parent[step.after] = (mask, e)
                todo.append(step.after)
    reachable = list(parent)
    ever = 0
    for mask in reachable:
        ever |= mask

    findings: list[Finding] = []
    never = [i for i in range(n) if not ever >> i & 1]
    never_set = set(never)
    for i in never:
        reasons = _reasons(model, reachable, R.ADD, [i])
        blocked_by = [names[r] for r in model.compiled.require[i] if r in never_set]
        message = f"{names[i]} can never be active"
        if blocked_by:
            message += f" (it requires {', '.join(blocked_by)}, never active either)"
        findings.append(Finding("contradiction", message, (names[i],), details=reasons))

    findings += _auto_loops(model, reachable, parent)

    for comp in _require_sccs(schema):
        findings.append(Finding(
            "require-cycle",
            f"{' -> '.join(comp + comp[:1])} require each other: they can only be added "
            f"together (add_{'+'.join(comp)}), and handler order among them is undefined",
            tuple(comp), severity="warning"))

    for e, (name, kind, called) in enumerate(model.events):
        if executed_somewhere[e] or (kind == R.ADD and any(s in never_set for s in called)):
            continue
        findings.append(Finding(
            "always-cancelled", f"{name} is cancelled by the relations in every reachable "
            "set of active states", tuple(names[s] for s in called),
            details=_reasons(model, reachable, kind, called)))

    return StaticReport(schema=schema.name, states=names, events=n_events,
                        reachable=len(reachable), findings=tuple(findings))


def _auto_loops(model: FiniteModel, reachable: list[int],
                parent: dict[int, tuple[int, int] | None]) -> list[Finding]:
    """Cycles of length >= 2 of the auto map among reachable sets."""
    color: dict[int, int] = {}
    found: list[Finding] = []
    seen_cycles: set[frozenset[int]] = set()
    seen_states: set[tuple[str, ...]] = set()
    for start in reachable:
        path: list[int] = []
        on_path: dict[int, int] = {}
        mask = start
        while mask not in color and mask not in on_path:
            on_path[mask] = len(path)
            path.append(mask)
            nxt = model.auto(mask)
            if nxt == mask:
                break
            mask = nxt
        if mask in on_path and model.auto(mask) != mask:
            cycle = path[on_path[mask]:]
            key = frozenset(cycle)
            if len(cycle) > 1 and key not in seen_cycles:
                seen_cycles.add(key)
                first = min(cycle, key=lambda m: (len(_path(parent, m, model)), m))
                pos = cycle.index(first)
                cycle = cycle[pos:] + cycle[:pos]
                loop = " -> ".join(model.describe(m) for m in cycle + cycle[:1])
                states = tuple(sorted({model.names[s] for m in cycle
                                       for s in _bits(m ^ model.auto(m))},
                                      key=model.names.index))
                if states in seen_states:
                    # the same loop with other, unrelated states active
                    continue
                seen_states.add(states)
                found.append(Finding(
                    "auto-loop",
                    f"auto states never settle: {loop}; every transition that moves a clock "
                    "flips them again",
                    states, witness=tuple(_path(parent, first, model))))
        for m in path:
            color[m] = 1
    return found


def to_machine_spec(schema: Schema) -> MachineSpec:
    """The schema's transition function as a ``convergent.spec.model.MachineSpec``.

    One ``Var.boolean`` per state (declaration order), one ``Event`` per
    ``add_X`` / ``remove_X``: its guard says the relations accept the mutation,
    its apply sets every state to its value after the mutation and the auto
    mutation that follows. No invariants; initially nothing is active.
    """
    from ..spec.model import Assignment, Event, MachineSpec, Predicate, StateView, Var

    model = FiniteModel(schema)
    names = model.names

    def mask_of(view: StateView) -> int:
        m = 0
        for i, name in enumerate(names):
            if view[name]:
                m |= 1 << i
        return m

    def guard(e: int) -> Callable[[StateView], bool]:
        return lambda view: model.step(mask_of(view), e).accepted

    def apply(e: int) -> Callable[[StateView], dict[str, bool]]:
        def fn(view: StateView) -> dict[str, bool]:
            after = model.step(mask_of(view), e).after
            return {name: bool(after >> i & 1) for i, name in enumerate(names)}
        return fn

    events = tuple(
        Event(name=name, guard=Predicate(fn=guard(e), text=f"relations accept {name}"),
              apply=Assignment(fn=apply(e), text=f"{name} with relations and auto states"))
        for e, (name, _kind, _called) in enumerate(model.events))
    return MachineSpec(name=schema.name, vars=tuple(Var.boolean(n) for n in names),
                       invariants=(), events=events, independent=(),
                       initial={n: False for n in names}, source=None)
