"""Event families: parameterized events expanded into ordinary instances.

``withdraw(amount in 1..100)`` becomes the hundred events ``withdraw(1)`` ...
``withdraw(100)``, each with its argument bound into its guard and apply.
The engine then checks instances as it checks any event: every instance and
every pair of instances, exactly; nothing is sampled.

Why expand rather than treat a parameter as a dimension of the state: an
argument is chosen by the sender of an event, not held by the replica, so
each instance is its own function of the state. Expansion keeps the engine's
proofs unchanged (an instance *is* an event), and the names say which
instance a counterexample is about.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SpecError
from .model import Assignment, Event, Expr, Family, Predicate, StateView, Var

__all__ = ["BoundExpr", "expand_family", "instance_name", "param_var"]


def format_arg(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def instance_name(family: str, args: Iterable[Any]) -> str:
    """``withdraw(40)``, ``assign(alice, true)``: how reports, machines and
    exports name an instance (enum values bare, bools as true/false)."""
    return f"{family}({', '.join(format_arg(a) for a in args)})"


def param_var(family: str, name: str, domain: Any) -> Var:
    """A parameter's domain, declared like a var: ``(lo, hi)`` or ``range`` for
    ints, a list of strings for an enum, ``bool`` for a bool, or a Var."""
    if isinstance(domain, Var):
        return Var(name, domain.kind, domain.values, domain.overflow)
    if domain is bool:
        return Var.boolean(name)
    if isinstance(domain, range):
        if domain.step != 1 or len(domain) == 0:
            raise SpecError(f"param {name!r} of event {family!r}: a range must be non-empty "
                            f"with step 1, got {domain!r}")
        return Var.integer(name, domain.start, domain.stop - 1)
    if (isinstance(domain, tuple) and len(domain) == 2
            and all(isinstance(b, int) and not isinstance(b, bool) for b in domain)):
        return Var.integer(name, domain[0], domain[1])
    if (isinstance(domain, (list, tuple)) and domain
            and all(isinstance(v, str) for v in domain)):
        if len(set(domain)) != len(domain):
            raise SpecError(f"param {name!r} of event {family!r}: repeated values")
        return Var.enum(name, *domain)
    raise SpecError(f"param {name!r} of event {family!r}: expected (lo, hi), a range, a list "
                    f"of enum values or bool, got {domain!r}")


def _column(var: Var, value: Any, n: int | tuple[int, ...]) -> np.ndarray:
    if var.kind == "bool":
        return np.full(n, bool(value), dtype=bool)
    if var.kind == "enum":
        return np.full(n, var.values.index(value), dtype=np.int64)
    return np.full(n, int(value), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class BoundExpr:
    """An expression over vars and params with the params' values fixed: an
    ``Expr`` over the vars alone (what the engine tabulates)."""

    expr: Any
    params: tuple[Var, ...]
    binding: Mapping[str, Any]
    free_vars: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = {p.name for p in self.params}
        object.__setattr__(self, "free_vars", frozenset(self.expr.free_vars) - names)

    @property
    def text(self) -> str:
        return str(self.expr.text)

    @property
    def type(self) -> Any:
        return self.expr.type

    def eval(self, values: Mapping[str, Any]) -> Any:
        return self.expr.eval({**values, **self.binding})

    def eval_vec(self, cols: Mapping[str, np.ndarray],
                 n: int | tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        shape = n
        if shape is None:
            for name in self.free_vars:
                shape = np.shape(cols[name])
                break
        if shape is None:
            raise TypeError(f"eval_vec of '{self.text}' reads no column: pass n= (the length)")
        bound = dict(cols)
        for p in self.params:
            if p.name in self.expr.free_vars:
                bound[p.name] = _column(p, self.binding[p.name], shape)
        return self.expr.eval_vec(bound, n=shape)


def _bind_predicate(pred: Predicate, params: tuple[Var, ...], binding: dict[str, Any],
                    label: str) -> Predicate:
    if pred.expr is not None:
        return Predicate(expr=BoundExpr(pred.expr, params, binding), text=pred.text)
    fn = pred.fn
    assert fn is not None

    def bound(s: StateView) -> Any:
        return fn(s, **binding)

    return Predicate(fn=bound, text=label)


def _bind_assignment(asg: Assignment, params: tuple[Var, ...], binding: dict[str, Any],
                     label: str) -> Assignment:
    if asg.fn is None:
        exprs: tuple[Expr, ...] = tuple(BoundExpr(e, params, binding) for e in asg.exprs)
        return Assignment(targets=asg.targets, exprs=exprs, text=asg.text)
    fn = asg.fn

    def bound(s: StateView) -> Any:
        return fn(s, **binding)

    return Assignment(fn=bound, text=label)


def expand_family(template: Event, params: tuple[Var, ...],
                  ) -> tuple[Family, list[Event]]:
    """One event per combination of the params' values, in the params' order
    (the first param varies slowest, as in ``itertools.product``)."""
    if not params:
        raise SpecError(f"event {template.name!r}: params must name at least one parameter")
    instances: list[Event] = []
    for values in itertools.product(*(p.values for p in params)):
        args = tuple(values)
        binding = {p.name: v for p, v in zip(params, args)}
        name = instance_name(template.name, args)
        guard = (None if template.guard is None else
                 _bind_predicate(template.guard, params, binding, f"guard of event {name!r}"))
        apply = _bind_assignment(template.apply, params, binding, f"apply of event {name!r}")
        instances.append(Event(name=name, apply=apply, guard=guard, reads=template.reads,
                               writes=template.writes, where=template.where,
                               family=template.name, args=args))
    return Family(template.name, params, tuple(e.name for e in instances)), instances


def expand_pairs(pairs: Iterable[tuple[str, str]], families: Mapping[str, Family],
                 ) -> list[tuple[str, str]]:
    """Declared pairs over families: ``[withdraw, deposit]`` is every pair of
    their instances; ``[withdraw, withdraw]`` every pair of distinct instances
    of one family. Plain event names stand for themselves."""
    out: list[tuple[str, str]] = []
    seen: set[frozenset[str]] = set()

    def members(name: str) -> tuple[str, ...]:
        fam = families.get(name)
        return fam.instances if fam is not None else (name,)

    for a, b in pairs:
        for x in members(a):
            for y in members(b):
                key = frozenset((x, y))
                if x != y and key not in seen:
                    seen.add(key)
                    out.append((x, y))
    return out


