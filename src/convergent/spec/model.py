"""The neutral model of a machine: frozen values that the YAML loader and the
``Registry`` both produce, and that the engine is the only one to interpret.

A state function (guard, holds, apply, repair) comes in one of two forms:

* an *expression* compiled from the spec language (``Expr``): the engine can
  evaluate it vectorized over numpy columns;
* a Python *callable* taking a ``StateView``: the engine traces which
  variables it really reads and enumerates only those.

Both forms also evaluate on one plain ``{var: value}`` mapping, which is what
the slow reference checker in the tests and the single-state helpers use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ..errors import BuildError, Problem, SpecError

__all__ = [
    "Assignment",
    "EvalError",
    "Event",
    "Expr",
    "Family",
    "Invariant",
    "Location",
    "MachineSpec",
    "Predicate",
    "StateView",
    "Var",
    "VarKind",
]

VarKind = Literal["bool", "enum", "int"]
Overflow = Literal["clamp", "error"]


MAX_DOMAIN = 2**62
"""The most values one int var may take. Enumeration refuses machines too
big for this machine's memory (engine/budget.py); abstraction (engine/abstract.py)
checks compare-and-copy vars of any range."""

INT_BOUND = 2**63


def int_range_problem(lo: int, hi: int) -> str | None:
    """Why [lo, hi] cannot be an int var's range, or None. Bounds are stored
    and encoded as 64-bit ints (tables, exports, other runtimes); arithmetic
    on the values is exact, whatever the size of its intermediate results."""
    if not (-INT_BOUND <= lo and hi < INT_BOUND):
        return (f"int range [{lo}, {hi}] passes 64 bits (bounds must lie in "
                f"[-2**63, 2**63 - 1])")
    if hi - lo + 1 > MAX_DOMAIN:
        return f"int range [{lo}, {hi}] has {hi - lo + 1:,} values (at most {MAX_DOMAIN:,})"
    return None


@dataclass(frozen=True)
class Location:
    """Where a declaration comes from (a spec file line, or None for Python)."""

    file: str | None = None
    line: int | None = None
    column: int | None = None

    def problem(self, message: str) -> Problem:
        return Problem(message, self.file, self.line, self.column)


class EvalError(ArithmeticError):
    """An expression could not be evaluated at a state (e.g. division by zero)."""


@dataclass(frozen=True)
class Var:
    """A finite variable. ``values`` is its domain in declaration order; the
    position of a value in it is the value's *digit* in the state encoding."""

    name: str
    kind: VarKind
    values: tuple[Any, ...] | range   # an int var: a range (never materialized)
    overflow: Overflow = "clamp"

    def __post_init__(self) -> None:
        if not self.values:
            raise SpecError(f"var {self.name!r} has an empty domain")

    @staticmethod
    def boolean(name: str) -> Var:
        return Var(name, "bool", (False, True))

    @staticmethod
    def enum(name: str, *values: str) -> Var:
        return Var(name, "enum", tuple(values))

    @staticmethod
    def integer(name: str, lo: int, hi: int, overflow: Overflow = "clamp") -> Var:
        if lo > hi:
            raise SpecError(f"var {name!r}: empty int range [{lo}, {hi}]")
        problem = int_range_problem(lo, hi)
        if problem:
            raise SpecError(f"var {name!r}: {problem}")
        # a range, not a tuple: a var of 10^9 values costs nothing until a
        # check enumerates it (the engine's budget refuses what cannot fit)
        return Var(name, "int", range(lo, hi + 1), overflow)

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def lo(self) -> int:
        return int(self.values[0])

    @property
    def hi(self) -> int:
        return int(self.values[-1])

    def digit(self, value: Any) -> int:
        """The digit of an in-domain value; raises ValueError otherwise."""
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{self.name}={value!r} (expected a bool)")
            return int(bool(value))
        if self.kind == "int":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{self.name}={value!r} (expected an int in "
                                 f"[{self.lo}, {self.hi}])")
            v = int(value)
            if not self.lo <= v <= self.hi:
                raise ValueError(f"{self.name}={v} (expected an int in [{self.lo}, {self.hi}])")
            return v - self.lo
        try:
            return self.values.index(value)
        except ValueError:
            raise ValueError(f"{self.name}={value!r} (expected one of "
                             f"{', '.join(map(str, self.values))})") from None

    def describe(self) -> str:
        if self.kind == "bool":
            return "bool"
        if self.kind == "int":
            extra = ", overflow: error" if self.overflow == "error" else ""
            return f"int [{self.lo}, {self.hi}]{extra}"
        return "enum [" + ", ".join(map(str, self.values)) + "]"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "bool":
            return {"name": self.name, "kind": "bool"}
        if self.kind == "int":
            return {"name": self.name, "kind": "int", "range": [self.lo, self.hi],
                    "overflow": self.overflow}
        return {"name": self.name, "kind": "enum", "values": list(self.values)}


@runtime_checkable
class Expr(Protocol):
    """A typed, compiled spec expression (see ``convergent.spec.expr``)."""

    @property
    def text(self) -> str: ...

    @property
    def free_vars(self) -> frozenset[str]: ...

    def eval(self, values: Mapping[str, Any]) -> Any:
        """Evaluate at one state of natural values (bool, int, enum value str).
        Raises EvalError (e.g. division by zero)."""

    def eval_vec(self, cols: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Evaluate over columns. ``cols[name]``: bool vars as np.bool_, ints as
        int64 values, enums as int64 indices into the var's values. Returns the
        result in the same convention and a bool mask of states where evaluation
        failed (None if it cannot fail), with short-circuit semantics."""


class StateView:
    """What a Python state function sees: read with ``s[var]`` or ``s["name"]``,
    build a successor with ``s.set(var, value)`` (a new view; ``s`` is unchanged).

    Reads go through ``_read`` so the engine can record exactly which variables
    a function looks at; values set earlier on the same chain are read back
    without touching the underlying state.
    """

    __slots__ = ("_read", "_spec_vars", "_writes")

    def __init__(self, spec_vars: Mapping[str, Var], read: Callable[[Var], Any],
                 writes: dict[str, Any] | None = None) -> None:
        self._spec_vars = spec_vars
        self._read = read
        self._writes: dict[str, Any] = writes if writes is not None else {}

    def _var(self, key: Var | str) -> Var:
        name = key.name if isinstance(key, Var) else key
        try:
            var = self._spec_vars[name]
        except (KeyError, TypeError):
            raise SpecError(f"unknown variable {key!r}; known: "
                            f"{', '.join(self._spec_vars)}") from None
        if isinstance(key, Var) and key != var:
            raise SpecError(f"variable {key.name!r} belongs to another machine")
        return var

    def __getitem__(self, key: Var | str) -> Any:
        var = self._var(key)
        if var.name in self._writes:
            return self._writes[var.name]
        return self._read(var)

    def get(self, key: Var | str) -> Any:
        return self[key]

    def set(self, key: Var | str, value: Any) -> StateView:
        var = self._var(key)
        check_assignable(var, value)
        writes = dict(self._writes)
        writes[var.name] = _natural(var, value)
        return StateView(self._spec_vars, self._read, writes)

    @property
    def writes(self) -> dict[str, Any]:
        """The assignments made along this chain of ``set`` calls."""
        return dict(self._writes)

    def __contains__(self, key: object) -> bool:
        raise SpecError(f"`{key!r} in s` is not defined on a state: every var is always "
                        "there; read one with s[var] (e.g. s[status] == 'paid')")

    def __iter__(self) -> Any:
        raise SpecError("a state cannot be iterated: read each var with s[var]")

    def __repr__(self) -> str:
        return f"StateView(writes={self._writes!r})"


def _natural(var: Var, value: Any) -> Any:
    if var.kind == "bool":
        return bool(value)
    if var.kind == "int":
        return int(value)
    return value


def check_assignable(var: Var, value: Any) -> None:
    """Raise SpecError for a value of the wrong type for ``var`` (an int value
    outside the range is fine here: it saturates or errors per ``overflow``)."""
    if var.kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise SpecError(f"{var.name}={value!r} (expected a bool)")
    elif var.kind == "int":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise SpecError(f"{var.name}={value!r} (expected an int)")
    elif not (isinstance(value, str) and value in var.values):
        raise SpecError(f"{var.name}={value!r} (expected one of {', '.join(map(str, var.values))})")


@dataclass(frozen=True)
class Predicate:
    """A guard or an invariant's ``holds``: an Expr or a callable(StateView) -> bool."""

    expr: Expr | None = None
    fn: Callable[[StateView], Any] | None = field(default=None, compare=False)
    text: str = ""

    def __post_init__(self) -> None:
        if (self.expr is None) == (self.fn is None):
            raise ValueError("a Predicate has exactly one of expr= or fn=")

    def evaluate(self, spec_vars: Mapping[str, Var], values: Mapping[str, Any]) -> bool:
        if self.expr is not None:
            return bool(self.expr.eval(values))
        out = self.fn(StateView(spec_vars, lambda v: values[v.name]))  # type: ignore[misc]
        return as_bool(out, self.text)


def as_bool(out: Any, what: str) -> bool:
    if isinstance(out, (bool, np.bool_)):
        return bool(out)
    raise BuildError(f"{what or 'predicate'} returned {out!r}, expected a bool")


@dataclass(frozen=True)
class Assignment:
    """An event's ``apply`` or an invariant's ``repair``: a simultaneous
    assignment evaluated in the state it applies to.

    Expression form: ``targets[i] := exprs[i]``. Callable form: ``fn(view)``
    returns a StateView built with ``set`` (or a ``{var: value}`` mapping).
    """

    targets: tuple[str, ...] = ()
    exprs: tuple[Expr, ...] = ()
    fn: Callable[[StateView], Any] | None = field(default=None, compare=False)
    text: str = ""

    def evaluate(self, spec_vars: Mapping[str, Var], values: Mapping[str, Any]) -> dict[str, Any]:
        """The raw assigned values (ints not yet saturated)."""
        if self.fn is None:
            return {t: e.eval(values) for t, e in zip(self.targets, self.exprs)}
        view = StateView(spec_vars, lambda v: values[v.name])
        return assignment_result(spec_vars, self.fn(view), self.text)


def assignment_result(spec_vars: Mapping[str, Var], out: Any, what: str) -> dict[str, Any]:
    """Normalize what a callable assignment returned into ``{name: value}``."""
    if isinstance(out, StateView):
        return out.writes
    if isinstance(out, Mapping):
        result: dict[str, Any] = {}
        for key, value in out.items():
            name = key.name if isinstance(key, Var) else key
            if name not in spec_vars:
                raise SpecError(f"{what}: unknown variable {key!r}")
            check_assignable(spec_vars[name], value)
            result[name] = _natural(spec_vars[name], value)
        return result
    raise BuildError(f"{what or 'assignment'} returned {out!r}; return s.set(var, value) "
                     f"(a StateView) or a {{var: value}} mapping")


@dataclass(frozen=True)
class Invariant:
    name: str
    holds: Predicate
    repair: Assignment
    watches: tuple[str, ...] | None = None
    where: Location = Location()


@dataclass(frozen=True)
class Event:
    """One event. An instance of a parameterized family (``withdraw(40)``)
    is an ordinary event whose rules have the arguments bound: it names its
    ``family`` and ``args`` so reports, machines and exports can group them."""

    name: str
    apply: Assignment
    guard: Predicate | None = None
    reads: tuple[str, ...] | None = None
    writes: tuple[str, ...] | None = None
    where: Location = Location()
    family: str | None = None
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Family:
    """A parameterized event: one instance per combination of its params'
    values (params are declared like vars: bool, enum or int range)."""

    name: str
    params: tuple[Var, ...]
    instances: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"params": [p.to_dict() for p in self.params], "instances": list(self.instances)}


@dataclass(frozen=True)
class MachineSpec:
    """A whole machine, validated: names unique, pairs known, initial complete."""

    name: str
    vars: tuple[Var, ...]
    invariants: tuple[Invariant, ...]
    events: tuple[Event, ...]
    independent: tuple[tuple[str, str], ...]
    initial: Mapping[str, Any]
    version: int = 1
    independent_all: bool = False
    source: str | None = None
    families: tuple[Family, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        for kind, names in (("var", [v.name for v in self.vars]),
                            ("invariant", [i.name for i in self.invariants]),
                            ("event", [e.name for e in self.events])):
            seen: set[str] = set()
            for n in names:
                if n in seen:
                    problems.append(Problem(f"duplicate {kind} name {n!r}", self.source))
                seen.add(n)
        if not self.vars:
            problems.append(Problem("a machine needs at least one var", self.source))
        known = {e.name for e in self.events}
        for a, b in self.independent:
            for n in (a, b):
                if n not in known:
                    problems.append(Problem(f"independent pair [{a}, {b}] names unknown "
                                            f"event {n!r}", self.source))
            if a == b:
                problems.append(Problem(f"independent pair [{a}, {b}] names {a!r} twice",
                                        self.source))
        if problems:
            raise SpecError(problems)

    @property
    def var_map(self) -> dict[str, Var]:
        return {v.name: v for v in self.vars}

    def event(self, name: str) -> Event:
        for e in self.events:
            if e.name == name:
                return e
        raise KeyError(name)

    def iter_pairs(self) -> Iterator[tuple[str, str]]:
        return iter(self.independent)
