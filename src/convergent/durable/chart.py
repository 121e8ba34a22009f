"""Statechart definitions: the builder (``Statechart``) and the frozen model
(``Chart``) it validates into.

A chart has a *finite part* — its states and its declared data vars (bool,
enum, small int ranges, exactly as in a ``Registry``) changed only by
``assign`` actions — and an *open part*: ``extra`` JSON data and side
effects (``emit``, ``call``), which never decide where the chart goes unless
an opaque (callable) guard reads them. The finite part is what ``verify()``
hands to the core engine.

States live in one flat namespace (names are identifiers, unique across the
chart), declared parent first; a state with children is compound, or
parallel when declared with ``parallel()``. History is an attribute of a
compound state: ``history="shallow"`` resumes its last active child,
``"deep"`` its last active configuration below it, whenever the state is
entered by default (a transition targets it or an ancestor of it).

Everything is checked at ``build()`` and every problem is reported at once,
located at its file line when the chart came from YAML.
"""

from __future__ import annotations

import builtins
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from ..errors import Problem, SpecError
from ..spec.model import Assignment, Location, Predicate, Var
from .errors import ChartError

__all__ = [
    "ROOT",
    "Action",
    "ActionContext",
    "Actor",
    "Chart",
    "Guard",
    "GuardContext",
    "StateDef",
    "Statechart",
    "Transition",
    "assign",
    "call",
    "emit",
]

ROOT = "(root)"
"""The implicit compound state holding the top-level states (not an identifier,
so it never clashes with a declared name)."""

StateKind = Literal["atomic", "compound", "parallel", "final"]
History = Literal["none", "shallow", "deep"]

_EVENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_ENUMERATION = 1 << 16
"""Guards over at most this many var valuations are compared exhaustively
for overlap; past it two guards on one event must be given priorities."""


@dataclass(frozen=True)
class Actor:
    """Who sends an event: an id and the roles it holds (from the caller's
    authentication; the chart decides what each role may do)."""

    id: str
    roles: frozenset[str] = frozenset()

    @staticmethod
    def of(id: str, *roles: str) -> Actor:
        return Actor(id, frozenset(roles))


@dataclass(frozen=True)
class GuardContext:
    """What an opaque (callable) guard sees: finite vars, extra data, the
    event's payload and the actor. Guards must be pure: replay re-runs them."""

    vars: Mapping[str, Any]
    extra: Mapping[str, Any]
    payload: Mapping[str, Any]
    actor: Actor | None


@dataclass
class ActionContext:
    """What a ``call`` action may touch: ``extra`` (mutable JSON data),
    ``emit`` commands into the outbox. Finite vars are read-only here: they
    change only through ``assign`` so that the finite part stays verifiable."""

    vars: Mapping[str, Any]
    extra: dict[str, Any]
    payload: Mapping[str, Any]
    actor: Actor | None
    entity: str
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def emit(self, topic: str, body: Mapping[str, Any] | None = None) -> None:
        """Queue a command for the outbox (written with the transition)."""
        _check_topic(topic)
        self.commands.append((topic, dict(body or {})))


def _check_topic(topic: Any) -> None:
    if not isinstance(topic, str) or not _EVENT.match(topic) or len(topic) > 200:
        raise SpecError(f"topic={topic!r} (expected dotted identifiers, e.g. 'payment.charge')")


@dataclass(frozen=True)
class Action:
    """One step of an entry, exit or transition action list: ``assign`` finite
    vars (spec-language expressions), ``emit`` a command, or ``call`` a
    function with an ``ActionContext``."""

    kind: Literal["assign", "emit", "call"]
    text: str
    assignment: Assignment | None = None
    raw: Mapping[str, Any] | None = None
    topic: str | None = None
    body: Callable[[ActionContext], Mapping[str, Any]] | Mapping[str, Any] | None = \
        field(default=None, compare=False)
    fn: Callable[[ActionContext], None] | None = field(default=None, compare=False)


def assign(values: Mapping[str, Any] | None = None, **kwargs: Any) -> Action:
    """``assign(paid="true", attempts="attempts + 1")``: a simultaneous
    assignment of finite vars; values are spec-language expressions (or plain
    bool/int values; an enum value is its name as a string expression)."""
    items = dict(values or {})
    items.update(kwargs)
    if not items:
        raise SpecError("assign() needs at least one var")
    text = ", ".join(f"{k} := {v}" for k, v in items.items())
    return Action("assign", text, raw=items)


def emit(topic: str, body: Callable[[ActionContext], Mapping[str, Any]] | Mapping[str, Any]
         | None = None) -> Action:
    """Write a command to the outbox in the transition's transaction; the
    dispatcher publishes it at least once with the transition id as key."""
    _check_topic(topic)
    if body is not None and not callable(body) and not isinstance(body, Mapping):
        raise SpecError(f"emit({topic!r}): body={body!r} (expected a mapping or a callable)")
    return Action("emit", f"emit {topic}", topic=str(topic), body=body)


def call(fn: Callable[[ActionContext], None], *, name: str | None = None) -> Action:
    """Run ``fn(ctx)``; it may change ``ctx.extra`` and ``ctx.emit(...)``. It
    must be deterministic in its context: rebuilding an entity replays it."""
    if not callable(fn):
        raise SpecError(f"call({fn!r}): expected a callable")
    return Action("call", str(name or getattr(fn, "__qualname__", "call")), fn=fn)


@dataclass(frozen=True)
class Guard:
    """A transition's condition: a spec-language predicate over the finite
    vars (``predicate``: decidable, verified, compared for overlap) or an
    opaque callable over a ``GuardContext`` (``fn``)."""

    text: str
    predicate: Predicate | None = None
    fn: Callable[[GuardContext], bool] | None = field(default=None, compare=False)

    @property
    def finite(self) -> bool:
        return self.predicate is not None


@dataclass(frozen=True)
class StateDef:
    name: str
    kind: StateKind
    parent: str
    children: tuple[str, ...]
    initial: str | None
    history: History
    entry: tuple[Action, ...]
    exit: tuple[Action, ...]
    sensitive: bool
    entry_roles: frozenset[str]
    stuck_after: timedelta | None
    order: int
    depth: int
    where: Location = Location()


@dataclass(frozen=True)
class Transition:
    """``source --event [guard] / actions--> target``. ``target`` None is a
    targetless transition (actions only, nothing exits); ``internal`` with a
    target inside ``source`` does not exit ``source``. ``after`` makes it a
    timer armed on entry to ``source`` (its event is ``after:<id>``)."""

    id: str
    source: str
    event: str
    target: str | None
    internal: bool
    guard: Guard | None
    priority: int | None
    actions: tuple[Action, ...]
    roles: frozenset[str]
    actor_guard: Callable[[Actor, Mapping[str, Any]], bool] | None = \
        field(default=None, compare=False)
    after: timedelta | None = None
    order: int = 0
    where: Location = Location()


@dataclass(frozen=True)
class Chart:
    """A validated statechart; build it with ``Statechart(...).build()`` or
    ``load_chart(path)``. Immutable; safe to share between threads."""

    name: str
    version: int
    vars: tuple[Var, ...]
    initial_vars: Mapping[str, Any]
    states: Mapping[str, StateDef]
    transitions: tuple[Transition, ...]
    independent: tuple[tuple[str, str], ...]
    sensitive_fields: frozenset[str]
    by_source: Mapping[tuple[str, str], tuple[Transition, ...]] = field(compare=False)
    events: frozenset[str] = frozenset()
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Derived facts computed on first use (active sets by memory, ancestors);
    the chart itself never changes, so they never go stale."""

    @property
    def var_map(self) -> dict[str, Var]:
        return {v.name: v for v in self.vars}

    def state(self, name: str) -> StateDef:
        return self.states[name]

    def ancestors(self, name: str) -> list[str]:
        """Proper ancestors, nearest first, ending with ROOT."""
        key = ("anc", name)
        got = self.memo.get(key)
        if got is None:
            got = []
            while name != ROOT:
                name = self.states[name].parent
                got.append(name)
            self.memo[key] = got
        return list(got)

    def is_descendant(self, name: str, of: str) -> bool:
        """True when ``name`` is ``of`` or lies below it."""
        return name == of or of in self.ancestors(name)

    def timers(self, state: str) -> tuple[Transition, ...]:
        key = ("timers", state)
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = tuple(t for t in self.transitions
                                         if t.after is not None and t.source == state)
        return got

    def transitions_on(self, event: str) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.event == event)

    def leaves(self) -> list[str]:
        return [s.name for s in self.states.values() if s.kind in ("atomic", "final")]


_ROOT_DEF = StateDef(ROOT, "compound", "", (), None, "none", (), (), False, frozenset(), None,
                     -1, 0)


@dataclass
class _PendingState:
    name: str
    parent: str
    parallel: bool
    final: bool
    initial: str | None
    history: str
    entry: tuple[Action, ...]
    exit: tuple[Action, ...]
    sensitive: bool
    entry_roles: frozenset[str]
    stuck_after: timedelta | None
    where: Location


@dataclass
class _PendingTransition:
    source: str
    event: str
    target: str | None
    internal: bool
    guard: str | Callable[[GuardContext], bool] | None
    priority: int | None
    actions: tuple[Action, ...]
    roles: frozenset[str]
    actor_guard: Callable[[Actor, Mapping[str, Any]], bool] | None
    after: timedelta | None
    where: Location


class Statechart:
    """Declare a statechart, then ``build()`` it into a validated ``Chart``.

    >>> from datetime import timedelta
    >>> c = Statechart("ticket")
    >>> _ = c.state("open"); _ = c.state("escalated"); _ = c.state("closed", final=True)
    >>> _ = c.on("open", "close", "closed")
    >>> _ = c.after("open", timedelta(minutes=30), "escalated")
    >>> _ = c.on("escalated", "close", "closed", roles={"manager"})
    >>> c.build().name
    'ticket'
    """

    def __init__(self, name: str, *, version: int = 1) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ChartError(f"chart name {name!r} is not an identifier")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ChartError(f"version={version!r} (expected an int >= 1)")
        self.name = name
        self.version = version
        self._vars: dict[str, Var] = {}
        self._initial_vars: dict[str, Any] = {}
        self._states: dict[str, _PendingState] = {}
        self._transitions: list[_PendingTransition] = []
        self._initial: str | None = None
        self._initial_where = Location()
        self._pairs: list[tuple[str, str]] = []
        self._sensitive_fields: set[str] = set()
        self._problems: list[Problem] = []

    # ------------------------------------------------------------ data

    def _add_var(self, var: Var, where: Location) -> str:
        if not var.name.isidentifier():
            self._problems.append(where.problem(f"var name {var.name!r} is not an identifier"))
        elif var.name in self._vars:
            self._problems.append(where.problem(f"duplicate var name {var.name!r}"))
        self._vars[var.name] = var
        return var.name

    def bool(self, name: str, *, initial: bool = False, where: Location = Location()) -> str:
        """A finite boolean var."""
        n = self._add_var(Var.boolean(name), where)
        self._initial_vars[n] = bool(initial)
        return n

    def enum(self, name: str, *values: str, initial: str | None = None,
             where: Location = Location()) -> str:
        """A finite enum var (first value is the default initial value)."""
        if not values or len(set(values)) != len(values) or \
                not all(isinstance(v, str) and v for v in values):
            self._problems.append(where.problem(f"enum {name!r}: values={values!r} (expected "
                                                "distinct non-empty strings)"))
            values = values or ("_",)
        n = self._add_var(Var.enum(name, *values), where)
        self._initial_vars[n] = values[0] if initial is None else initial
        return n

    def int(self, name: str, lo: builtins.int, hi: builtins.int, *,
            initial: builtins.int | None = None,
            where: Location = Location()) -> str:
        """A finite int var over [lo, hi]; an assignment outside saturates."""
        try:
            var = Var.integer(name, lo, hi)
        except SpecError as exc:
            self._problems.append(where.problem(str(exc)))
            var = Var.integer(name, 0, 0)
        n = self._add_var(var, where)
        self._initial_vars[n] = var.lo if initial is None else initial
        return n

    def sensitive_fields(self, *names: str) -> Statechart:
        """Payload and extra fields redacted in logs and neutralized in views."""
        self._sensitive_fields.update(names)
        return self

    # ------------------------------------------------------------ states

    def state(self, name: str, *, parent: str | None = None, initial: str | None = None,
              history: History = "none", final: builtins.bool = False,
              entry: Sequence[Action] = (), exit: Sequence[Action] = (),
              sensitive: builtins.bool = False, entry_roles: Iterable[str] = (),
              stuck_after: timedelta | None = None, where: Location = Location()) -> str:
        """Declare a state (compound once a child names it as ``parent``).

        ``initial`` picks a compound state's default child (else its first);
        ``history`` is ``"none"``, ``"shallow"`` or ``"deep"``; ``final``
        states take no outgoing transitions; ``entry_roles`` are the roles an
        actor needs to enter it; ``sensitive`` states read as a neutral value
        for actors without those roles; ``stuck_after`` feeds the stuck gauge."""
        return self._state(name, parent, False, initial, history, final, entry, exit,
                           sensitive, entry_roles, stuck_after, where)

    def parallel(self, name: str, *, parent: str | None = None,
                 entry: Sequence[Action] = (), exit: Sequence[Action] = (),
                 where: Location = Location()) -> str:
        """Declare a parallel state: each child is an orthogonal region, all
        active together."""
        return self._state(name, parent, True, None, "none", False, entry, exit, False, (),
                           None, where)

    def _state(self, name: str, parent: str | None, parallel: builtins.bool, initial: str | None,
               history: str, final: builtins.bool, entry: Sequence[Action], exit: Sequence[Action],
               sensitive: builtins.bool, entry_roles: Iterable[str], stuck_after: timedelta | None,
               where: Location) -> str:
        p = where.problem
        if not isinstance(name, str) or not name.isidentifier():
            self._problems.append(p(f"state name {name!r} is not an identifier"))
            return str(name)
        if name in self._states:
            self._problems.append(p(f"duplicate state name {name!r}"))
            return name
        par = ROOT if parent is None else parent
        if par != ROOT and par not in self._states:
            self._problems.append(p(f"state {name!r}: parent={parent!r} is not declared "
                                    "(declare a parent before its children)"))
            par = ROOT
        elif par != ROOT and self._states[par].final:
            self._problems.append(p(f"state {name!r}: parent {parent!r} is final (final "
                                    "states have no children)"))
        if history not in ("none", "shallow", "deep"):
            self._problems.append(p(f"state {name!r}: history={history!r} (expected none, "
                                    "shallow or deep)"))
            history = "none"
        if stuck_after is not None and (not isinstance(stuck_after, timedelta)
                                        or stuck_after <= timedelta(0)):
            self._problems.append(p(f"state {name!r}: stuck_after={stuck_after!r} (expected a "
                                    "positive timedelta)"))
            stuck_after = None
        for a in (*entry, *exit):
            if not isinstance(a, Action):
                self._problems.append(p(f"state {name!r}: {a!r} is not an action (use assign, "
                                        "emit or call)"))
        self._states[name] = _PendingState(
            name, par, parallel, final, initial, history, tuple(entry), tuple(exit),
            bool(sensitive), frozenset(entry_roles), stuck_after, where)
        return name

    def initial(self, name: str, *, where: Location = Location()) -> Statechart:
        """The top-level initial state (default: the first top-level state)."""
        self._initial, self._initial_where = name, where
        return self

    # ------------------------------------------------------------ transitions

    def on(self, source: str, event: str, target: str | None = None, *,
           guard: str | Callable[[GuardContext], builtins.bool] | None = None,
           actions: Sequence[Action] = (), roles: Iterable[str] = (),
           actor_guard: Callable[[Actor, Mapping[str, Any]], builtins.bool] | None = None,
           internal: builtins.bool = False, priority: builtins.int | None = None,
           where: Location = Location()) -> Statechart:
        """A transition taken on ``event`` from ``source`` (or any state inside
        it) when ``guard`` holds. ``target=None``: actions only. ``roles``:
        the actor needs one of them (none listed: anyone). ``actor_guard(actor,
        payload)`` refines that per request. ``priority`` orders transitions
        whose guards may overlap (lower first)."""
        if not isinstance(event, str) or not _EVENT.match(event) or event.startswith("after"):
            self._problems.append(where.problem(
                f"event={event!r} (expected dotted identifiers, not starting with 'after')"))
        self._transitions.append(_PendingTransition(
            source, event, target, bool(internal), guard, priority, tuple(actions),
            frozenset(roles), actor_guard, None, where))
        return self

    def after(self, source: str, delay: timedelta, target: str, *,
              actions: Sequence[Action] = (), guard: str | None = None,
              where: Location = Location()) -> Statechart:
        """A durable timer: ``delay`` after ``source`` was entered (and while it
        stays active), take this transition. Survives restarts."""
        if not isinstance(delay, timedelta) or delay <= timedelta(0):
            self._problems.append(where.problem(f"after({source!r}): delay={delay!r} "
                                                "(expected a positive timedelta)"))
            delay = timedelta(seconds=1)
        if guard is not None and not isinstance(guard, str):
            self._problems.append(where.problem(f"after({source!r}): a timer's guard must be "
                                                "a spec-language string over the vars"))
            guard = None
        self._transitions.append(_PendingTransition(
            source, "", target, False, guard, None, tuple(actions), frozenset(), None,
            delay, where))
        return self

    def independent(self, a: str, b: str) -> Statechart:
        """Declare that events ``a`` and ``b`` may be applied in either order
        (typically events of different parallel regions); ``verify()`` proves
        they commute."""
        self._pairs.append((a, b))
        return self

    # ------------------------------------------------------------ build

    def build(self) -> Chart:
        """Validate everything and return the frozen ``Chart``; raises
        ``ChartError`` listing every problem with its location."""
        return _Builder(self).build()


class _Builder:
    def __init__(self, sc: Statechart) -> None:
        self.sc = sc
        self.problems: list[Problem] = list(sc._problems)

    def build(self) -> Chart:
        sc = self.sc
        vars_ = dict(sc._vars)
        for n, v in sc._initial_vars.items():
            try:
                vars_[n].digit(v)
            except ValueError as exc:
                self.problems.append(Problem(f"initial: {exc}"))
        states = self._states()
        transitions = self._transitions(states, vars_)
        events = frozenset(t.event for t in transitions)
        by_source: dict[tuple[str, str], list[Transition]] = {}
        for t in transitions:
            by_source.setdefault((t.source, t.event), []).append(t)
        ordered = {k: tuple(sorted(v, key=lambda t: (t.priority if t.priority is not None
                                                      else 0, t.order)))
                   for k, v in by_source.items()}
        pairs = []
        for a, b in sc._pairs:
            for n in (a, b):
                if n not in events:
                    self.problems.append(Problem(f"independent({a!r}, {b!r}): unknown event "
                                                 f"{n!r}"))
            if a == b:
                self.problems.append(Problem(f"independent({a!r}, {b!r}) names {a!r} twice"))
            pairs.append((a, b))
        if self.problems:
            raise ChartError(self.problems)
        chart = Chart(sc.name, sc.version, tuple(vars_.values()), dict(sc._initial_vars),
                      states, tuple(transitions), tuple(pairs),
                      frozenset(sc._sensitive_fields), ordered, events)
        self._check_deterministic(chart)
        self._check_reachable(chart)
        if self.problems:
            raise ChartError(self.problems)
        return chart

    # -- states

    def _states(self) -> dict[str, StateDef]:
        sc = self.sc
        children: dict[str, list[str]] = {ROOT: []}
        for s in sc._states.values():
            children.setdefault(s.parent, []).append(s.name)
            children.setdefault(s.name, [])
        if not children[ROOT]:
            self.problems.append(Problem("a statechart needs at least one state"))
        out: dict[str, StateDef] = {ROOT: self._root(children[ROOT])}
        order = itertools.count()

        def visit(name: str, depth: int) -> None:
            s = sc._states[name]
            kids = tuple(children[name])
            p = s.where.problem
            kind: StateKind
            if s.final:
                kind = "final"
                if s.parallel:
                    self.problems.append(p(f"state {name!r} cannot be both final and parallel"))
            elif s.parallel:
                kind = "parallel"
                if len(kids) < 2:
                    self.problems.append(p(f"parallel state {name!r} has {len(kids)} "
                                           "region(s) (expected at least 2)"))
            else:
                kind = "compound" if kids else "atomic"
            initial = None
            if kind == "compound":
                initial = s.initial if s.initial is not None else kids[0]
                if initial not in kids:
                    self.problems.append(p(f"state {name!r}: initial={s.initial!r} is not one "
                                           f"of its children ({', '.join(kids)})"))
                    initial = kids[0]
            elif s.initial is not None:
                self.problems.append(p(f"state {name!r}: initial={s.initial!r} but it has "
                                       "no children"))
            if s.history != "none" and kind != "compound":
                self.problems.append(p(f"state {name!r}: history={s.history!r} needs a "
                                       "compound state (one with children)"))
            history: History = s.history  # type: ignore[assignment]
            out[name] = StateDef(name, kind, s.parent, kids, initial, history,
                                 s.entry, s.exit, s.sensitive, s.entry_roles, s.stuck_after,
                                 next(order), depth, s.where)
            for k in kids:
                visit(k, depth + 1)

        for top in children[ROOT]:
            visit(top, 1)
        for sd in out.values():
            for a in (*sd.entry, *sd.exit):
                self._check_action(a, sd.where, f"state {sd.name!r}")
        return out

    def _root(self, tops: list[str]) -> StateDef:
        sc = self.sc
        initial = sc._initial if sc._initial is not None else (tops[0] if tops else None)
        if sc._initial is not None and sc._initial not in tops:
            self.problems.append(sc._initial_where.problem(
                f"initial={sc._initial!r} is not a top-level state "
                f"({', '.join(tops) or 'none declared'})"))
            initial = tops[0] if tops else None
        return StateDef(ROOT, "compound", "", tuple(tops), initial, "none", (), (), False,
                        frozenset(), None, -1, 0)

    def _check_action(self, a: Action, where: Location, what: str) -> None:
        if a.kind != "assign" or a.assignment is not None:
            return
        from ..spec.expr import compile_assignment
        raw = {}
        for k, v in (a.raw or {}).items():
            var = self.sc._vars.get(k)
            if var is not None and var.kind == "enum" and isinstance(v, str) \
                    and v in var.values:
                v = repr(v)
            raw[k] = v
        try:
            compiled = compile_assignment(raw, dict(self.sc._vars), where)
        except SpecError as exc:
            self.problems.extend(Problem(f"{what}: {q.message}", q.file or where.file,
                                         q.line or where.line, q.column or where.column)
                                 for q in exc.problems)
            return
        object.__setattr__(a, "assignment", compiled)

    # -- transitions

    def _transitions(self, states: Mapping[str, StateDef],
                     vars_: Mapping[str, Var]) -> list[Transition]:
        out: list[Transition] = []
        timer_n: dict[str, int] = {}
        for i, pt in enumerate(self.sc._transitions):
            p = pt.where.problem
            ok = True
            if pt.source not in states or pt.source == ROOT:
                self.problems.append(p(f"transition on {pt.event or 'timer'!r}: source "
                                       f"{pt.source!r} is not a declared state"))
                ok = False
            if pt.target is not None and (pt.target not in states or pt.target == ROOT):
                self.problems.append(p(f"transition {pt.source} --{pt.event or 'after'}--> "
                                       f"{pt.target}: target {pt.target!r} is not a declared "
                                       "state"))
                ok = False
            if not ok:
                continue
            src = states[pt.source]
            if src.kind == "final":
                self.problems.append(p(f"final state {pt.source!r} has an outgoing transition "
                                       "(final states are absorbing)"))
            if pt.internal and pt.target is not None and \
                    not _below(states, pt.target, pt.source):
                self.problems.append(p(f"internal transition from {pt.source!r} targets "
                                       f"{pt.target!r}, which is not inside it"))
            if pt.event.startswith("done.") and pt.event[5:] not in states:
                self.problems.append(p(f"event {pt.event!r} names no state"))
            if pt.priority is not None and (isinstance(pt.priority, bool)
                                            or not isinstance(pt.priority, int)):
                self.problems.append(p(f"priority={pt.priority!r} (expected an int)"))
            guard = self._guard(pt, vars_)
            for a in pt.actions:
                if not isinstance(a, Action):
                    self.problems.append(p(f"{a!r} is not an action (use assign, emit or call)"))
                else:
                    self._check_action(a, pt.where, f"transition from {pt.source!r}")
            target = pt.target
            if pt.internal and target == pt.source:
                target = None  # an internal self-transition exits nothing: targetless
            if pt.after is not None:
                n = timer_n.get(pt.source, 0)
                timer_n[pt.source] = n + 1
                tid = f"{pt.source}.after.{n}"
                event = f"after:{tid}"
            else:
                tid = f"{pt.source}.{pt.event}.{i}"
                event = pt.event
            out.append(Transition(tid, pt.source, event, target, pt.internal, guard,
                                  pt.priority, tuple(a for a in pt.actions
                                                     if isinstance(a, Action)),
                                  pt.roles, pt.actor_guard, pt.after, i, pt.where))
        return out

    def _guard(self, pt: _PendingTransition, vars_: Mapping[str, Var]) -> Guard | None:
        g = pt.guard
        if g is None:
            return None
        if isinstance(g, str):
            from ..spec.expr import compile_predicate
            try:
                return Guard(g, predicate=compile_predicate(g, dict(vars_), pt.where))
            except SpecError as exc:
                self.problems.extend(Problem(f"guard of {pt.source} --{pt.event}-->: "
                                             f"{q.message}", q.file or pt.where.file,
                                             q.line or pt.where.line,
                                             q.column or pt.where.column)
                                     for q in exc.problems)
                return None
        if callable(g):
            return Guard(getattr(g, "__qualname__", "guard"), fn=g)
        self.problems.append(pt.where.problem(f"guard={g!r} (expected an expression string "
                                              "or a callable)"))
        return None

    # -- determinism

    def _check_deterministic(self, chart: Chart) -> None:
        for (source, event), ts in chart.by_source.items():
            for a, b in itertools.combinations(ts, 2):
                why = _overlap(chart, a, b)
                if why is not None:
                    self.problems.append(b.where.problem(
                        f"non-deterministic: {source} --{event}--> "
                        f"{a.target or '(none)'} and --> {b.target or '(none)'} {why}; make "
                        "the guards exclusive or give the transitions different priorities"))
        # orthogonal regions: two transitions on one event whose exits collide
        by_event: dict[str, list[Transition]] = {}
        for t in chart.transitions:
            by_event.setdefault(t.event, []).append(t)
        for event, group in by_event.items():
            for a, b in itertools.combinations(group, 2):
                if a.source == b.source or not _orthogonal(chart, a.source, b.source):
                    continue
                if a.target is None and b.target is None:
                    continue
                if _leaves_region(chart, a, b.source) or _leaves_region(chart, b, a.source):
                    if a.priority is not None and b.priority is not None \
                            and a.priority != b.priority:
                        continue
                    self.problems.append(b.where.problem(
                        f"non-deterministic: on {event!r}, {a.source} --> {a.target} and "
                        f"{b.source} --> {b.target} fire in orthogonal regions and one exits "
                        "the other's region; give them different priorities"))

    # -- reachability

    def _check_reachable(self, chart: Chart) -> None:
        reached: set[str] = set()

        def enter_default(s: str) -> None:
            if s in reached:
                return
            reached.add(s)
            d = chart.states[s]
            if d.kind == "parallel":
                for k in d.children:
                    enter_default(k)
            elif d.kind == "compound":
                assert d.initial is not None
                enter_default(d.initial)  # history only resumes children reached otherwise

        def enter(target: str) -> None:
            for a in reversed(chart.ancestors(target)):
                if a == ROOT:
                    continue
                reached.add(a)
                if chart.states[a].kind == "parallel":
                    for k in chart.states[a].children:
                        if not _below(chart.states, target, k):
                            enter_default(k)
            enter_default(target)

        root = chart.states[ROOT]
        assert root.initial is not None
        enter_default(root.initial)
        changed = True
        while changed:
            changed = False
            for t in chart.transitions:
                if t.target is not None and t.target not in reached and t.source in reached:
                    enter(t.target)
                    changed = True
        for s in chart.states.values():
            if s.name != ROOT and s.name not in reached:
                self.problems.append(s.where.problem(
                    f"state {s.name!r} is unreachable from the initial state"))


def _below(states: Mapping[str, StateDef], name: str, of: str) -> bool:
    while True:
        if name == of:
            return True
        if name == ROOT:
            return False
        name = states[name].parent


def _orthogonal(chart: Chart, a: str, b: str) -> bool:
    """True when ``a`` and ``b`` can be active together without one containing
    the other: their nearest common ancestor is parallel."""
    if chart.is_descendant(a, b) or chart.is_descendant(b, a):
        return False
    anc_a = [a, *chart.ancestors(a)]
    for x in [b, *chart.ancestors(b)]:
        if x in anc_a:
            return chart.states[x].kind == "parallel"
    return False


def _leaves_region(chart: Chart, t: Transition, other: str) -> bool:
    """Whether taking ``t`` exits the state ``other`` (active beside it)."""
    if t.target is None:
        return False
    from ._semantics import transition_domain
    dom = transition_domain(chart, t)
    return chart.is_descendant(other, dom) and other != dom


def _overlap(chart: Chart, a: Transition, b: Transition) -> str | None:
    """Why two transitions from one state on one event may both be enabled
    (None when they provably cannot, or an explicit priority orders them)."""
    if a.priority is not None and b.priority is not None and a.priority != b.priority:
        return None
    if a.guard is None and b.guard is None:
        return "are both unguarded"
    if a.guard is None or b.guard is None:
        return "overlap: one of them is unguarded"
    pa, pb = a.guard.predicate, b.guard.predicate
    if pa is None or pb is None:
        return "may overlap: an opaque (callable) guard cannot be compared"
    assert pa.expr is not None and pb.expr is not None
    names = sorted(pa.expr.free_vars | pb.expr.free_vars)
    var_map = chart.var_map
    domains = [var_map[n].values for n in names]
    size = 1
    for d in domains:
        size *= len(d)
    if size > MAX_ENUMERATION:
        return f"may overlap: their vars take {size:,} values (too many to compare)"
    for combo in itertools.product(*domains):
        values = dict(zip(names, combo))
        try:
            if pa.expr.eval(values) and pb.expr.eval(values):
                shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
                return f"overlap: both guards hold at {shown or 'every state'}"
        except ArithmeticError:
            continue
    return None
