"""The Python API for declaring a machine: a builder that produces a MachineSpec.

Functions may be Python callables over a ``StateView`` (the engine traces what
they really read) or spec-language strings (``"status == 'paid'"``), which
compile exactly as in a YAML spec.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConvergenceError, SpecError
from .model import (
    Assignment,
    Event,
    Invariant,
    Location,
    MachineSpec,
    Overflow,
    Predicate,
    StateView,
    Var,
    check_assignable,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..composed import ComposedMachine
    from ..engine.check import Analysis, Progress
    from ..engine.compose import ComposedAnalysis
    from ..engine.report import Report
    from ..machine import Machine

__all__ = ["Registry"]

PredicateLike = Callable[[StateView], Any] | str
AssignmentLike = Callable[[StateView], Any] | Mapping[Any, Any]


def _identifier(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"{kind} name {name!r} is not an identifier")
    return name


class Registry:
    """Declare a machine step by step, then ``check()`` or ``build()`` it.

    >>> r = Registry("switch")
    >>> on = r.bool("on")
    >>> _ = r.event("flip", apply=lambda s: s.set(on, not s[on]))
    >>> r.check().verdict
    'pass'
    """

    def __init__(self, name: str, *, version: int = 1) -> None:
        self.name = _identifier("machine", name)
        if isinstance(version, bool) or not isinstance(version, int):
            raise SpecError(f"version={version!r} (expected an int)")
        self.version = version
        self._vars: dict[str, Var] = {}
        self._initial: dict[str, Any] = {}
        self._invariants: dict[str, Invariant] = {}
        self._events: dict[str, Event] = {}
        self._pairs: list[tuple[str, str]] = []
        self._params: dict[str, tuple[Var, ...]] = {}
        self._analysis: dict[tuple[str, bool, str], Analysis | ComposedAnalysis] = {}

    # ------------------------------------------------------------ vars

    def _add_var(self, var: Var) -> Var:
        _identifier("var", var.name)
        if var.name in self._vars:
            raise SpecError(f"duplicate var name {var.name!r}")
        self._vars[var.name] = var
        self._analysis.clear()
        return var

    def bool(self, name: str) -> Var:
        """A boolean var (initially false unless ``initial`` says otherwise)."""
        return self._add_var(Var.boolean(name))

    def enum(self, name: str, *values: str) -> Var:
        """An enum var; its first value is its default initial value."""
        if not values:
            raise SpecError(f"enum {name!r} has no values")
        if len(set(values)) != len(values):
            raise SpecError(f"enum {name!r} repeats a value: {values!r}")
        for v in values:
            if not isinstance(v, str) or not v:
                raise SpecError(f"enum {name!r} value {v!r} is not a non-empty string")
        return self._add_var(Var.enum(name, *values))

    def int(self, name: str, lo: int, hi: int, *, overflow: Overflow = "clamp") -> Var:
        """An int var over the inclusive range [lo, hi]; out-of-range
        assignments saturate (``clamp``) or are build errors (``error``)."""
        for label, v in (("lo", lo), ("hi", hi)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise SpecError(f"int {name!r}: {label}={v!r} (expected an int)")
        if overflow not in ("clamp", "error"):
            raise SpecError(f"int {name!r}: overflow={overflow!r} (expected 'clamp' or 'error')")
        return self._add_var(Var.integer(name, lo, hi, overflow))

    def initial(self, values: Mapping[Any, Any] | None = None, **kwargs: Any) -> Registry:
        """Set initial values; a var left out starts at false / its first enum
        value / its low bound."""
        items = dict(values or {})
        items.update(kwargs)
        for key, value in items.items():
            var = self._var(key)
            try:
                var.digit(value)
            except ValueError as exc:
                raise SpecError(f"initial: {exc}") from None
            self._initial[var.name] = value
        self._analysis.clear()
        return self

    def _var(self, key: Any) -> Var:
        name = key.name if isinstance(key, Var) else key
        if name not in self._vars:
            raise SpecError(f"unknown var {key!r} (known: {', '.join(self._vars) or 'none'})")
        return self._vars[name]

    # ------------------------------------------------------------ rules

    def _scope(self, params: tuple[Var, ...] = ()) -> dict[str, Var]:
        scope = dict(self._vars)
        scope.update({p.name: p for p in params})
        return scope

    def _predicate(self, f: PredicateLike, what: str, params: tuple[Var, ...] = ()
                   ) -> Predicate:
        if isinstance(f, str):
            from .expr import compile_predicate
            return compile_predicate(f, self._scope(params), Location())
        if callable(f):
            return Predicate(fn=f, text=what)
        raise SpecError(f"{what}: expected a callable or an expression string, got {f!r}")

    def _assignment(self, f: AssignmentLike, what: str, params: tuple[Var, ...] = ()
                    ) -> Assignment:
        if isinstance(f, Mapping):
            mapping: dict[str, Any] = {}
            for key, value in f.items():
                var = self._var(key)
                if not isinstance(value, str):
                    check_assignable(var, value)
                    if var.kind == "enum":
                        value = repr(value)
                mapping[var.name] = value
            from .expr import compile_assignment
            return compile_assignment(mapping, self._scope(params), Location())
        if callable(f):
            return Assignment(fn=f, text=what)
        raise SpecError(f"{what}: expected a callable or a {{var: value}} mapping, got {f!r}")

    def _names(self, kind: str, names: Any) -> tuple[str, ...] | None:
        if names is None:
            return None
        return tuple(self._var(n).name for n in names)

    def invariant(self, name: str, *, holds: PredicateLike, repair: AssignmentLike,
                  watches: Any = None) -> Registry:
        """An invariant; list order is repair priority (the first failing one repairs)."""
        _identifier("invariant", name)
        if name in self._invariants:
            raise SpecError(f"duplicate invariant name {name!r}")
        self._invariants[name] = Invariant(
            name, self._predicate(holds, f"holds of invariant {name!r}"),
            self._assignment(repair, f"repair of invariant {name!r}"),
            self._names("watches", watches))
        self._analysis.clear()
        return self

    def event(self, name: str, *, apply: AssignmentLike, guard: PredicateLike | None = None,
              reads: Any = None, writes: Any = None,
              params: Mapping[str, Any] | None = None) -> Registry:
        """An event: when ``guard`` holds, ``apply`` (a simultaneous assignment);
        a false guard makes it a no-op.

        ``params`` makes it a family, one event per combination of values
        (``params={"amount": (1, 100)}``: ints ``(lo, hi)`` or a ``range``,
        enums a list of strings, ``bool``). Functions then take the params as
        keyword arguments (``apply=lambda s, amount: ...``); strings name them
        like vars. Instances are named ``withdraw(40)``; a pair naming the
        family covers all its instances."""
        _identifier("event", name)
        if name in self._events:
            raise SpecError(f"duplicate event name {name!r}")
        pvars: tuple[Var, ...] = ()
        if params is not None:
            from .params import param_var
            if not isinstance(params, Mapping) or not params:
                raise SpecError(f"event {name!r}: params must be a non-empty mapping "
                                f"{{name: domain}}, got {params!r}")
            for pname in params:
                _identifier("param", pname)
                if pname in self._vars:
                    raise SpecError(f"event {name!r}: param {pname!r} has the name of a var")
            pvars = tuple(param_var(name, pname, dom) for pname, dom in params.items())
        self._events[name] = Event(
            name, self._assignment(apply, f"apply of event {name!r}", pvars),
            None if guard is None else self._predicate(guard, f"guard of event {name!r}",
                                                       pvars),
            self._names("reads", reads), self._names("writes", writes))
        if pvars:
            self._params[name] = pvars
        else:
            self._params.pop(name, None)
        self._analysis.clear()
        return self

    def independent(self, a: str, b: str) -> Registry:
        """Declare that ``a`` and ``b`` may be delivered in either order. With
        no declaration at all, every pair of distinct events is checked."""
        for n in (a, b):
            if n not in self._events:
                raise SpecError(f"independent({a!r}, {b!r}): unknown event {n!r}")
        if a == b and a not in self._params:
            raise SpecError(f"independent({a!r}, {b!r}) names {a!r} twice")
        if (a, b) not in self._pairs and (b, a) not in self._pairs:
            self._pairs.append((a, b))
        self._analysis.clear()
        return self

    # ------------------------------------------------------------ results

    def spec(self) -> MachineSpec:
        """The neutral model of what was declared."""
        from .params import expand_family, expand_pairs
        initial = {}
        for var in self._vars.values():
            initial[var.name] = self._initial.get(var.name, var.values[0])
        events: list[Event] = []
        families = {}
        for name, ev in self._events.items():
            if name in self._params:
                family, instances = expand_family(ev, self._params[name])
                families[name] = family
                events.extend(instances)
            else:
                events.append(ev)
        names = [e.name for e in events]
        pairs = (tuple(expand_pairs(self._pairs, families)) if self._pairs else tuple(
            (names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))))
        return MachineSpec(self.name, tuple(self._vars.values()),
                           tuple(self._invariants.values()), tuple(events),
                           pairs, initial, self.version, independent_all=not self._pairs,
                           families=tuple(families.values()))

    def analyze(self, *, scope: str = "reachable", strict: builtins.bool = False,
                progress: Progress | None = None,
                method: str = "auto") -> Analysis | ComposedAnalysis:
        """Verify and keep the tables. A result is reused only while every
        rule is spec-language text: a Python function can change what it
        computes without the Registry seeing it (captured data, globals), so
        a Registry with functions is analysed afresh on every call.

        ``method``: ``"auto"`` (whole enumeration, or by components when the
        machine is too big to enumerate and splits), ``"enumerate"`` or
        ``"compose"`` (see ``convergent.engine.check.check``)."""
        key = (scope, strict, method)
        got = self._analysis.get(key)
        if got is None:
            from ..engine.check import analyze_any
            spec = self.spec()
            got = analyze_any(spec, scope=scope, strict=strict, progress=progress,
                              method=method)
            if not _has_functions(spec):
                self._analysis[key] = got
        return got

    def check(self, *, scope: str = "reachable", strict: builtins.bool = False,
              progress: Progress | None = None, method: str = "auto") -> Report:
        """Verify; never raises on a failed proof (read ``report.verdict``)."""
        return self.analyze(scope=scope, strict=strict, progress=progress,
                            method=method).report

    def build(self, *, scope: str = "reachable", strict: builtins.bool = False,
              progress: Progress | None = None,
              method: str = "auto") -> Machine | ComposedMachine:
        """The verified machine; raises ConvergenceError(report) if the proof
        fails. A machine verified by components is a ``ComposedMachine``
        (same API, per-component tables, no export)."""
        an = self.analyze(scope=scope, strict=strict, progress=progress, method=method)
        if not an.report.ok:
            raise ConvergenceError(an.report)
        from ..engine.abstract import AbstractedAnalysis
        from ..engine.check import SymbolicAnalysis
        from ..engine.compose import ComposedAnalysis
        if isinstance(an, (SymbolicAnalysis, AbstractedAnalysis)):
            from ..errors import MachineUsageError
            how = ("symbolically (z3)" if isinstance(an, SymbolicAnalysis)
                   else "by abstraction (ints checked per region)")
            raise MachineUsageError(
                f"{self.name!r} was verified {how}, which gives no tables over concrete "
                "values to run; build it with method='enumerate' where the ranges allow")
        if isinstance(an, ComposedAnalysis):
            if not an.tabulated:
                from ..errors import MachineUsageError
                raise MachineUsageError(
                    f"{self.name!r} was verified by components, some of them symbolically "
                    "(z3), which gives no tables over concrete values to run; build it "
                    "with method='enumerate' where the ranges allow")
            from ..composed import ComposedMachine
            return ComposedMachine._from_analysis(an)
        from ..machine import Machine
        return Machine._from_analysis(an)

    def __repr__(self) -> str:
        return (f"Registry({self.name!r}, vars={len(self._vars)}, "
                f"invariants={len(self._invariants)}, events={len(self._events)})")


def _has_functions(spec: MachineSpec) -> builtins.bool:
    """Whether any rule of ``spec`` is a Python callable (opaque to caching)."""
    for inv in spec.invariants:
        if inv.holds.fn is not None or inv.repair.fn is not None:
            return True
    for ev in spec.events:
        if (ev.guard is not None and ev.guard.fn is not None) or ev.apply.fn is not None:
            return True
    return False
