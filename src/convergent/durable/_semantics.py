"""The run-to-completion step of a statechart: pure, deterministic, no I/O.

The configuration is stored as *memory*: for every compound state (ROOT
included) the child it is in, or — while it is inactive — the child its
history will resume (its initial child when it keeps no history). The
active states follow from ROOT downward (all children of a parallel state).
This is exactly the finite encoding ``verify()`` hands to the engine, and it
makes history free: a state that keeps no history is reset to its initial
child when it is exited, so "enter by default" always means "follow memory".

A state keeps its memory when it has history itself (shallow or deep) or
lies below a state with deep history.

Semantics (close to SCXML): for each active leaf in document order, the
first enabled transition of the leaf or its nearest ancestor is selected;
transitions whose exit sets collide with an earlier one are dropped; exits
run deepest first, then transition actions, then entries in document order.
A final child of a compound state raises ``done.<parent>``; all regions of a
parallel state final raise ``done.<parallel>``; these internal events run in
the same step. A step of more than ``MAX_MICROSTEPS`` is refused (a loop).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BuildError, SpecError
from ..spec.model import EvalError, Var
from .chart import ROOT, ActionContext, Actor, Chart, GuardContext, Transition
from .errors import EffectError
from .store import dumps

__all__ = ["Config", "Step", "active_states", "initial_step", "step", "transition_domain"]

MAX_MICROSTEPS = 64
MEMO_LIMIT = 100_000


@dataclass(frozen=True)
class Config:
    """An entity's whole state: memory (compound -> child), finite vars,
    open ``extra`` data. JSON-serializable through ``to_dict``."""

    memory: Mapping[str, str]
    vars: Mapping[str, Any]
    extra: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"memory": dict(self.memory), "vars": dict(self.vars),
                "extra": _copy(self.extra)}

    @staticmethod
    def from_dict(chart: Chart, d: Mapping[str, Any]) -> Config:
        """Rebuild from stored JSON, refusing anything the chart does not declare."""
        memory = d.get("memory")
        vars_ = d.get("vars")
        extra = d.get("extra", {})
        if not isinstance(memory, Mapping) or not isinstance(vars_, Mapping) \
                or not isinstance(extra, Mapping):
            raise ValueError("config needs memory, vars and extra mappings")
        for comp, child in memory.items():
            st = chart.states.get(comp)
            if st is None or st.kind != "compound" or child not in st.children:
                raise ValueError(f"config memory {comp!r} -> {child!r} does not fit the chart")
        var_map = chart.var_map
        for name, value in vars_.items():
            if name not in var_map:
                raise ValueError(f"config var {name!r} is not declared")
            var_map[name].digit(value)
        return Config(dict(memory), dict(vars_), dict(extra))

    def active(self, chart: Chart) -> list[str]:
        return active_states(chart, self.memory)

    def leaves(self, chart: Chart) -> list[str]:
        key = ("leaves", tuple(self.memory.items()))
        got = chart.memo.get(key)
        if got is None:
            got = tuple(s for s in self.active(chart)
                        if chart.states[s].kind in ("atomic", "final"))
            _memo_put(chart, key, got)
        return list(got)


@dataclass(frozen=True)
class Step:
    """What one event did: the new config, the transitions that fired (in
    order), states exited and entered, commands for the outbox, timers to
    arm (transitions whose source was entered) and states whose timers to
    cancel, and whether a top-level final state was reached."""

    config: Config
    fired: tuple[Transition, ...]
    exited: tuple[str, ...]
    entered: tuple[str, ...]
    commands: tuple[tuple[str, dict[str, Any]], ...]
    armed: tuple[Transition, ...]
    cancelled: tuple[str, ...]
    done: bool

    @property
    def changed(self) -> bool:
        return bool(self.fired)


def active_states(chart: Chart, memory: Mapping[str, str]) -> list[str]:
    """The active states in document order (ROOT excluded)."""
    key = ("active", tuple(memory.items()))  # insertion order: equal maps may take two slots
    got = chart.memo.get(key)
    if got is None:
        if len(chart.memo) > MEMO_LIMIT:
            chart.memo.clear()  # bounded: a huge chart recomputes instead of growing
        got = chart.memo[key] = _active(chart, memory)
    return list(got)


def _active(chart: Chart, memory: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    stack = [ROOT]
    while stack:
        s = stack.pop()
        if s != ROOT:
            out.append(s)
        d = chart.states[s]
        if d.kind == "compound":
            stack.append(memory[s])
        elif d.kind == "parallel":
            stack.extend(reversed(d.children))
    out.sort(key=lambda n: chart.states[n].order)
    return out


def transition_domain(chart: Chart, t: Transition) -> str:
    """The state whose descendants a transition exits and enters: the source
    itself for an internal transition to a descendant, else the nearest
    compound (non-parallel) state properly containing source and target."""
    assert t.target is not None
    if t.internal and t.target != t.source and chart.is_descendant(t.target, t.source):
        return t.source
    for a in chart.ancestors(t.source):
        if chart.states[a].kind == "compound" and chart.is_descendant(t.target, a) \
                and a != t.target:
            return a
    return ROOT


def keeps_memory(chart: Chart, name: str) -> bool:
    if chart.states[name].history != "none":
        return True
    return any(chart.states[a].history == "deep" for a in chart.ancestors(name) if a != ROOT)


def initial_config(chart: Chart) -> Config:
    memory = {s.name: s.initial for s in chart.states.values()
              if s.kind == "compound" and s.initial is not None}
    return Config(memory, dict(chart.initial_vars), {})


class _Run:
    """One run-to-completion step over a mutable working copy."""

    def __init__(self, chart: Chart, config: Config, payload: Mapping[str, Any],
                 actor: Actor | None, entity: str, extra_limit: int,
                 oracle: Callable[[Transition], bool] | None = None) -> None:
        self.chart = chart
        self.oracle = oracle
        self.memory = dict(config.memory)
        self.vars = dict(config.vars)
        self.extra: dict[str, Any] = _copy(config.extra)
        self.payload = payload
        self.actor = actor
        self.entity = entity
        self.extra_limit = extra_limit
        self.fired: list[Transition] = []
        self.exited: list[str] = []
        self.entered: list[str] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.done = False

    # -- guards and actions

    def guard_ok(self, t: Transition) -> bool:
        g = t.guard
        if g is None:
            return True
        try:
            if g.predicate is not None:
                assert g.predicate.expr is not None
                return bool(g.predicate.expr.eval(self.vars))
            assert g.fn is not None
            if self.oracle is not None:
                return self.oracle(t)
            out = g.fn(GuardContext(dict(self.vars), _copy(self.extra),
                                    self.payload, self.actor))
        except EvalError as exc:
            raise EffectError(f"guard {g.text!r} of {t.id}: {exc}") from exc
        except Exception as exc:
            raise EffectError(f"guard {g.text!r} of {t.id} raised "
                              f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(out, bool):
            raise EffectError(f"guard {g.text!r} of {t.id} returned {out!r} (expected a bool)")
        return out

    def run_actions(self, actions: tuple[Any, ...], where: str) -> None:
        var_map = self.chart.var_map
        for a in actions:
            if self.oracle is not None and a.kind != "assign":
                continue  # the finite part only (verify): effects are not modelled
            try:
                if a.kind == "assign":
                    assert a.assignment is not None
                    raw = a.assignment.evaluate(var_map, self.vars)
                    for name, value in raw.items():
                        self.vars[name] = _clamp(var_map[name], value)
                elif a.kind == "emit":
                    body = a.body
                    if callable(body):
                        got = body(self._ctx())
                        if not isinstance(got, Mapping):
                            raise EffectError(f"emit {a.topic}: body returned {got!r}")
                        body = got
                    self.commands.append((a.topic, _json_copy(body or {}, a.topic)))
                else:
                    ctx = self._ctx()
                    a.fn(ctx)
                    self.extra = ctx.extra
                    self.commands.extend((t, _json_copy(b, t)) for t, b in ctx.commands)
            except EffectError:
                raise
            except (EvalError, BuildError, SpecError) as exc:
                raise EffectError(f"{where}: action {a.text!r}: {exc}") from exc
            except Exception as exc:
                raise EffectError(f"{where}: action {a.text!r} raised "
                                  f"{type(exc).__name__}: {exc}") from exc
        if not self.extra or not any(a.kind == "call" for a in actions):
            return  # only ``call`` actions change extra
        size = len(json.dumps(self.extra, separators=(",", ":")))
        if size > self.extra_limit:
            raise EffectError(f"{where}: extra data grew to {size:,} bytes "
                              f"(at most {self.extra_limit:,})")

    def _ctx(self) -> ActionContext:
        return ActionContext(dict(self.vars), self.extra, self.payload, self.actor, self.entity)

    # -- selection

    def select(self, event: str) -> list[Transition]:
        chart = self.chart
        active = active_states(chart, self.memory)
        chosen: list[Transition] = []
        for leaf in active:
            if chart.states[leaf].kind not in ("atomic", "final"):
                continue
            for s in (leaf, *chart.ancestors(leaf)):
                if s == ROOT:
                    break
                pick = None
                for t in chart.by_source.get((s, event), ()):
                    if self.guard_ok(t):
                        pick = t
                        break
                if pick is not None:
                    if pick not in chosen:
                        chosen.append(pick)
                    break
        # drop later transitions whose exit set collides with an earlier one
        kept: list[Transition] = []
        exits: set[str] = set()
        for t in sorted(chosen, key=lambda t: (t.priority or 0, t.order)):
            ex = set(self.exit_set(t, active))
            if ex & exits:
                continue
            exits |= ex
            kept.append(t)
        return kept

    def exit_set(self, t: Transition, active: list[str]) -> list[str]:
        if t.target is None:
            return []
        dom = transition_domain(self.chart, t)
        return [s for s in active if s != dom and self.chart.is_descendant(s, dom)]

    # -- microstep

    def microstep(self, ts: list[Transition]) -> None:
        chart = self.chart
        active = active_states(chart, self.memory)
        exit_all: list[str] = []
        for t in ts:
            for s in self.exit_set(t, active):
                if s not in exit_all:
                    exit_all.append(s)
        exit_all.sort(key=lambda n: -chart.states[n].order)
        for s in exit_all:
            self.run_actions(chart.states[s].exit, f"exit of {s}")
            self.exited.append(s)
        for s in exit_all:
            if chart.states[s].kind == "compound" and not keeps_memory(chart, s):
                init = chart.states[s].initial
                assert init is not None
                self.memory[s] = init
        for t in ts:
            self.run_actions(t.actions, f"transition {t.id}")
            self.fired.append(t)
        enter: list[str] = []
        for t in ts:
            if t.target is None:
                continue
            dom = transition_domain(chart, t)
            path = [t.target]
            for a in chart.ancestors(t.target):
                if a == dom:
                    break
                path.append(a)
            for s in path:
                parent = chart.states[s].parent
                if chart.states[parent].kind == "compound":
                    self.memory[parent] = s
            for s in path:
                self._add_default(s, enter, path)
        enter = sorted(set(enter), key=lambda n: chart.states[n].order)
        for s in enter:
            self.run_actions(chart.states[s].entry, f"entry of {s}")
            self.entered.append(s)

    def _add_default(self, s: str, out: list[str], path: list[str]) -> None:
        """``s`` and everything a default entry into it enters, stopping at
        states on the explicit ``path`` (they are entered on their own)."""
        if s in out:
            return
        out.append(s)
        d = self.chart.states[s]
        if d.kind == "compound":
            child = self.memory[s]
            if child not in path:
                self._add_default(child, out, path)
        elif d.kind == "parallel":
            for k in d.children:
                if k not in path:
                    self._add_default(k, out, path)

    def done_events(self, entered: list[str]) -> list[str]:
        chart = self.chart
        out: list[str] = []
        active = set(active_states(chart, self.memory))
        for s in entered:
            d = chart.states[s]
            if d.kind != "final":
                continue
            parent = d.parent
            if parent == ROOT:
                self.done = True
                continue
            out.append(f"done.{parent}")
            grand = chart.states[parent].parent
            if grand != ROOT and chart.states[grand].kind == "parallel":
                regions = chart.states[grand].children
                if all(self._region_final(r, active) for r in regions):
                    out.append(f"done.{grand}")
        return out

    def _region_final(self, region: str, active: set[str]) -> bool:
        d = self.chart.states[region]
        if d.kind == "final":
            return True
        if d.kind != "compound":
            return False
        child = self.memory[region]
        return child in active and self.chart.states[child].kind == "final"


def _copy(extra: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data (the common empty case costs nothing)."""
    return copy.deepcopy(dict(extra)) if extra else {}


def _clamp(var: Var, value: Any) -> Any:
    if var.kind == "int":
        return max(var.lo, min(var.hi, int(value)))
    var.digit(value)
    return value


def _json_copy(body: Mapping[str, Any], topic: str | None) -> dict[str, Any]:
    try:
        out = json.loads(json.dumps(dict(body)))
    except (TypeError, ValueError) as exc:
        raise EffectError(f"command {topic}: body is not JSON: {exc}") from exc
    assert isinstance(out, dict)
    return out


def _finish(run: _Run, armed_from: list[str]) -> Step:
    chart = run.chart
    active = set(active_states(chart, run.memory))
    armed = tuple(t for s in armed_from if s in active for t in chart.timers(s))
    cancelled = tuple(s for s in dict.fromkeys(run.exited) if chart.timers(s))
    return Step(Config(run.memory, run.vars, run.extra), tuple(run.fired),
                tuple(run.exited), tuple(run.entered), tuple(run.commands), armed,
                cancelled, run.done)


def initial_step(chart: Chart, *, entity: str = "", actor: Actor | None = None,
                 payload: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                 extra_limit: int = 1 << 16) -> Step:
    """Enter the initial configuration (running entry actions, arming timers)."""
    cfg = initial_config(chart)
    cfg = Config(cfg.memory, cfg.vars, dict(extra or {}))
    run = _Run(chart, cfg, dict(payload or {}), actor, entity, extra_limit)
    enter = active_states(chart, run.memory)
    for s in enter:
        run.run_actions(chart.states[s].entry, f"entry of {s}")
        run.entered.append(s)
    _drain(run, run.done_events(enter))
    return _finish(run, run.entered)


def step(chart: Chart, config: Config, event: str, *, payload: Mapping[str, Any] | None = None,
         actor: Actor | None = None, entity: str = "", extra_limit: int = 1 << 16,
         oracle: Callable[[Transition], bool] | None = None) -> Step:
    """Process ``event`` to completion. An event no guard enables returns a
    step with no ``fired`` transitions and the config unchanged.

    ``oracle`` (for ``verify``) decides opaque guards instead of running
    them, and makes the step skip ``emit``/``call`` actions: the finite part."""
    if oracle is None:
        planned = _planned(chart, config, event)
        if planned is not None:
            return planned
    run = _Run(chart, config, dict(payload or {}), actor, entity, extra_limit, oracle)
    ts = run.select(event)
    if not ts:
        return Step(config, (), (), (), (), (), (), False)
    before = len(run.entered)
    run.microstep(ts)
    _drain(run, run.done_events(run.entered[before:]))
    got = _finish(run, run.entered)
    if oracle is None:
        _learn(chart, config, event, got)
    return got


# ---------------------------------------------------------------- step plans
#
# Most steps of a running entity repeat: the same configuration, the same
# event, the same guard outcomes. When everything a step consults is finite —
# the candidate transitions' guards are spec-language predicates over vars,
# and every action it runs is an ``assign`` or an ``emit`` of a constant body,
# and no ``done.*`` event follows — its structure (transitions fired, states
# exited and entered, the new memory, timers) is a function of (memory,
# event, guard outcomes). The first such step is run in full and its
# structure kept as a plan; later ones evaluate the guards, look the plan up
# and run only its assignments. Anything else (opaque guards, ``call``
# actions, computed bodies, completion events) always takes the full path.
# ``extra`` is carried over untouched: nothing a plan runs can read or change it.

_MISS = object()


@dataclass(frozen=True)
class _Plan:
    memory: Mapping[str, str]
    actions: tuple[Any, ...]
    fired: tuple[Transition, ...]
    exited: tuple[str, ...]
    entered: tuple[str, ...]
    armed: tuple[Transition, ...]
    cancelled: tuple[str, ...]
    done: bool


def _memo_put(chart: Chart, key: Any, value: Any) -> None:
    if len(chart.memo) > MEMO_LIMIT:
        chart.memo.clear()
    chart.memo[key] = value


def _candidates(chart: Chart, mem_key: tuple[tuple[str, str], ...], memory: Mapping[str, str],
                event: str) -> tuple[Transition, ...] | None:
    """Every transition selection could consult for ``event`` here, if all
    their guards are predicates (None: an opaque guard; no plan)."""
    key = ("cand", mem_key, event)
    got = chart.memo.get(key, _MISS)
    if got is _MISS:
        ts: list[Transition] = []
        for leaf in active_states(chart, memory):
            if chart.states[leaf].kind not in ("atomic", "final"):
                continue
            for s in (leaf, *chart.ancestors(leaf)):
                if s == ROOT:
                    break
                ts.extend(chart.by_source.get((s, event), ()))
        plannable = all(t.guard is None or t.guard.predicate is not None for t in ts)
        unique: dict[int, Transition] = {}
        for t in ts:
            unique.setdefault(id(t), t)  # transitions are unhashable; identity is enough
        got = tuple(unique.values()) if plannable else None
        _memo_put(chart, key, got)
    return got


def _plan_key(chart: Chart, config: Config, event: str) -> tuple[Any, ...] | None:
    mem_key = tuple(config.memory.items())
    cands = _candidates(chart, mem_key, config.memory, event)
    if cands is None:
        return None
    try:
        outcomes = tuple(bool(t.guard.predicate.expr.eval(config.vars))  # type: ignore[union-attr]
                         for t in cands if t.guard is not None)
    except Exception:
        return None  # the full path reports the failing guard
    return ("plan", mem_key, event, outcomes)


def _planned(chart: Chart, config: Config, event: str) -> Step | None:
    key = _plan_key(chart, config, event)
    if key is None:
        return None
    plan = chart.memo.get(key)
    if not isinstance(plan, _Plan):
        return None
    if not plan.fired:
        return Step(config, (), (), (), (), (), (), False)
    var_map = chart.var_map
    vars_ = dict(config.vars)
    commands: list[tuple[str, dict[str, Any]]] = []
    try:
        for a in plan.actions:
            if a.kind == "assign":
                for name, value in a.assignment.evaluate(var_map, vars_).items():
                    vars_[name] = _clamp(var_map[name], value)
            else:
                commands.append((a.topic, _json_copy(a.body or {}, a.topic)))
    except Exception:
        return None  # the full path reports the failing action
    return Step(Config(plan.memory, vars_, config.extra), plan.fired, plan.exited,
                plan.entered, tuple(commands), plan.armed, plan.cancelled, plan.done)


def _learn(chart: Chart, config: Config, event: str, got: Step) -> None:
    """Keep the structure of a full step as a plan, when it has one."""
    key = _plan_key(chart, config, event)
    if key is None or key in chart.memo:
        return
    if any(t.event != event for t in got.fired):
        return  # a completion event ran: its guards were not in the key
    if any(chart.states[s].kind == "final" and chart.states[s].parent != ROOT
           for s in got.entered):
        return
    actions = (*(a for s in got.exited for a in chart.states[s].exit),
               *(a for t in got.fired for a in t.actions),
               *(a for s in got.entered for a in chart.states[s].entry))
    if any(a.kind == "call" or (a.kind == "emit" and callable(a.body)) for a in actions):
        return
    _memo_put(chart, key, _Plan(got.config.memory, actions, got.fired, got.exited,
                                got.entered, got.armed, got.cancelled, got.done))


def _drain(run: _Run, queue: list[str]) -> None:
    n = 0
    while queue:
        ev = queue.pop(0)
        ts = run.select(ev)
        if not ts:
            continue
        n += 1
        if n > MAX_MICROSTEPS:
            raise EffectError(f"more than {MAX_MICROSTEPS} internal transitions in one step "
                              "(a loop of done.* events?)")
        before = len(run.entered)
        run.microstep(ts)
        queue.extend(run.done_events(run.entered[before:]))


# ---------------------------------------------------------------- batch moves
#
# The batch fast path (``EntityService.send_batch``) walks plans without
# building a Step, a Config or a plan key per event. A ``Node`` is one
# memory (configuration) with its leaves and, per event, the ``Moves`` the
# plans already proved there: the guard predicates to evaluate and, per
# tuple of their outcomes, a ``Move`` (the plan compiled: assignments as
# (var, evaluator, clamp) triples, constant emit bodies serialized once, the
# leaves before and after in every form the rows need, the node it leads
# to). A Move exists only where a plan exists, so a move does exactly what a
# planned step does; and where every candidate transition is guarded and no
# guard holds, selection picks nothing: the event is ignored, plan or not.
# Anything else (no plan learnt yet, an opaque guard, a failing guard or
# assignment) is for the caller's full path.

_NO_MOVE = object()
"""A plan that exists but can never be compiled (a body that is not JSON):
the full path reports it, every time."""


class Node:
    """One configuration's memory, as the fast path walks it."""

    __slots__ = ("joined", "json", "key", "leaves", "memory", "on")

    def __init__(self, chart: Chart, memory: Mapping[str, str]) -> None:
        self.memory = memory
        self.key = tuple(memory.items())  # the same key plans are learnt under
        self.leaves = tuple(Config(memory, {}, {}).leaves(chart))
        self.json = dumps(list(self.leaves))  # as the event row and head store them
        self.joined = ",".join(self.leaves)  # as the audit row does
        self.on: dict[str, Moves | None] = {}


class Moves:
    """What ``event`` may do from one node: the guards selection consults
    (predicates only) and the moves compiled so far, by guard outcomes."""

    __slots__ = ("always", "by_outcome", "guards")

    def __init__(self, guards: tuple[Callable[[Mapping[str, Any]], Any], ...],
                 always: bool) -> None:
        self.guards = guards
        self.always = always  # an unguarded candidate: something always fires
        self.by_outcome: dict[tuple[bool, ...], Any] = {}


class Move:
    """A plan compiled for the batch loop (see the section comment)."""

    __slots__ = ("assigns", "assigns_flat", "cancelled", "armed", "done", "emits", "entered",
                 "exited", "fired", "free", "target", "touches_since")

    def __init__(self, chart: Chart, plan: _Plan, source: Node, target: Node) -> None:
        var_map = chart.var_map
        assigns: list[tuple[tuple[str, Callable[[Mapping[str, Any]], Any], Any, Any, Var],
                            ...]] = []
        emits: list[tuple[str, str]] = []
        for a in plan.actions:
            if a.kind == "assign":
                # (var, evaluator, lo, hi, Var): ints saturate to [lo, hi]; other
                # values are checked by ``Var.digit`` (lo None), as ``_clamp`` does
                assigns.append(tuple(
                    (name, expr.eval, *((var_map[name].lo, var_map[name].hi)
                                        if var_map[name].kind == "int" else (None, None)),
                     var_map[name])
                    for name, expr in zip(a.assignment.targets, a.assignment.exprs)))
            else:
                # a constant body: serialized once (bodies never read vars)
                emits.append((a.topic, dumps(_json_copy(a.body or {}, a.topic))))
        self.assigns = tuple(assigns)
        # every assign sets one var: simultaneous is sequential, one flat loop
        self.assigns_flat = tuple(g[0] for g in assigns) \
            if all(len(g) == 1 for g in assigns) else ()
        self.emits = tuple(emits)  # (topic, body JSON) in order
        self.fired = plan.fired
        self.exited = plan.exited
        self.entered = plan.entered
        self.armed = plan.armed
        self.cancelled = plan.cancelled
        self.target = target
        states = chart.states
        self.done = plan.done or any(states[s].kind == "final" and states[s].parent == ROOT
                                     for s in target.leaves)
        self.touches_since = bool(plan.exited or plan.entered
                                  or source.leaves != target.leaves)
        # the actor's authorization depends on the actor alone (no actor guard)
        self.free = not any(t.actor_guard is not None for t in plan.fired)


def node_of(chart: Chart, memory: Mapping[str, str]) -> Node:
    """The node of ``memory`` (shared through the chart's memo)."""
    key = ("fnode", tuple(memory.items()))
    got = chart.memo.get(key)
    if got is None:
        got = Node(chart, memory)
        _memo_put(chart, key, got)
    assert isinstance(got, Node)
    return got


def moves_of(chart: Chart, node: Node, event: str) -> Moves | None:
    """The moves of ``event`` at ``node`` (None: selection would consult an
    opaque guard, or the chart does not know the event: never fast)."""
    got = node.on.get(event, _MISS)
    if got is _MISS:
        cands = _candidates(chart, node.key, node.memory, event) \
            if event in chart.events else None
        guards: list[Callable[[Mapping[str, Any]], Any]] | None = \
            [] if cands is not None else None
        for t in cands or ():
            if t.guard is None:
                continue
            expr = t.guard.predicate.expr if t.guard.predicate is not None else None
            if expr is None or guards is None:
                guards = None  # not an expression: never fast
                break
            guards.append(expr.eval)
        got = None if cands is None or guards is None else Moves(
            tuple(guards), any(t.guard is None for t in cands))
        node.on[event] = got
    assert got is None or isinstance(got, Moves)
    return got


def move_of(chart: Chart, node: Node, event: str, moves: Moves,
            outcomes: tuple[bool, ...]) -> Move | Node | None:
    """The compiled plan for these guard outcomes, once the full path has
    learnt one: a ``Move``, or ``node`` itself when no transition is enabled
    (the event is ignored). None: not learnt yet, or never compilable: take
    the full path."""
    got = moves.by_outcome.get(outcomes)
    if got is None:
        if not moves.always and not any(outcomes):
            # every candidate is guarded and no guard holds: selection picks
            # nothing, so the step is ignored (full steps learn no plan for it)
            moves.by_outcome[outcomes] = node
            return node
        plan = chart.memo.get(("plan", node.key, event, outcomes))
        if not isinstance(plan, _Plan):
            return None  # not learnt yet: the full path learns it
        if not plan.fired:
            got = node  # no transition enabled: the event is ignored (stays here)
        else:
            try:
                got = Move(chart, plan, node, node_of(chart, plan.memory))
            except Exception:
                got = _NO_MOVE
        moves.by_outcome[outcomes] = got
    return None if got is _NO_MOVE else got  # type: ignore[return-value]
