"""The spec language in z3: expressions, guards, assignments, one repair step.

A state is a mapping ``{var name: z3 term}``: a bool var is a z3 Bool, an int
var a z3 Int (exact, unbounded: the declared range is a side constraint), an
enum var a z3 Int holding the value's position in its declared values.

Every translated expression carries, besides its value, the condition under
which evaluating it fails (a division or modulo by zero that evaluation
actually reaches: ``and``/``or``/``implies``/``if`` short-circuit exactly as
``convergent.spec.expr`` does). Where an expression fails its value is
meaningless; the checker proves first that no state it reasons about can
fail, or reports the state where one does, as enumeration would.

Names are resolved with the loader's rules (``docs/spec-format.md``): where a
value of an enum is expected, a bare name among that enum's values is the
value. The spec was type-checked when it loaded, so the translation trusts
the types and does not re-report type errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import z3  # type: ignore[import-untyped, unused-ignore]

from ..errors import ConvergentError
from ..spec.expr import _Node, _Parser
from ..spec.params import BoundExpr
from ..spec.model import Assignment, Event, Invariant, MachineSpec, Predicate, Var

__all__ = ["Encoder", "SymState", "Sym", "SymbolicUnsupported"]

SymState = Mapping[str, Any]
"""``{var name: z3 term}`` (Bool for bool vars, Int for int and enum vars)."""

_Type = Union[str, tuple[str, ...]]
_ORDER = {"<", "<=", ">", ">="}
_ARITH = {"+", "-", "*"}
_DIV = {"/", "//", "%"}


class SymbolicUnsupported(ConvergentError):
    """The machine uses something the symbolic method cannot translate (a rule
    given as a Python function rather than a spec expression)."""


@dataclass(frozen=True)
class Sym:
    """A translated expression: its type, value, and failure condition (None
    when it cannot fail)."""

    type: _Type
    term: Any
    err: Any = None


def _var_type(var: Var) -> _Type:
    if var.kind == "enum":
        return tuple(str(v) for v in var.values)
    return var.kind


class Encoder:
    """Translates one machine's rules over a z3 context of its own (no z3
    global state is shared between checks)."""

    def __init__(self, spec: MachineSpec, ctx: z3.Context | None = None) -> None:
        self.spec = spec
        self.ctx = ctx if ctx is not None else z3.Context()
        self.vars = spec.var_map
        self.types: dict[str, _Type] = {n: _var_type(v) for n, v in self.vars.items()}
        self._trees: dict[str, _Node] = {}
        self._fresh = 0
        self.true = z3.BoolVal(True, self.ctx)
        self.false = z3.BoolVal(False, self.ctx)

    # ------------------------------------------------------------ states

    def int_val(self, value: int) -> Any:
        return z3.IntVal(value, self.ctx)

    def fresh_state(self, tag: str) -> dict[str, Any]:
        """New unconstrained constants, one per var (see ``domain``)."""
        self._fresh += 1
        out: dict[str, Any] = {}
        for name, var in self.vars.items():
            label = f"{tag}{self._fresh}!{name}"
            out[name] = z3.Bool(label, self.ctx) if var.kind == "bool" else z3.Int(label, self.ctx)
        return out

    def domain(self, st: SymState) -> Any:
        """The declared ranges (int bounds, enum positions)."""
        parts = []
        for name, var in self.vars.items():
            if var.kind == "int":
                parts.append(st[name] >= var.lo)
                parts.append(st[name] <= var.hi)
            elif var.kind == "enum":
                parts.append(st[name] >= 0)
                parts.append(st[name] < len(var.values))
        return z3.And(parts) if parts else self.true

    def const_state(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A concrete state (natural values) as z3 constants."""
        out: dict[str, Any] = {}
        for name, var in self.vars.items():
            v = values[name]
            if var.kind == "bool":
                out[name] = z3.BoolVal(bool(v), self.ctx)
            elif var.kind == "int":
                out[name] = self.int_val(int(v))
            else:
                out[name] = self.int_val(var.values.index(v))
        return out

    def equal(self, a: SymState, b: SymState) -> Any:
        return z3.And([a[n] == b[n] for n in self.vars])

    def differ(self, a: SymState, b: SymState) -> Any:
        return z3.Or([a[n] != b[n] for n in self.vars])

    def read_model(self, model: z3.ModelRef, st: SymState) -> dict[str, Any]:
        """A state's natural values in a model (completed: unconstrained vars
        take some value, which the domain constraint keeps in range)."""
        out: dict[str, Any] = {}
        for name, var in self.vars.items():
            got = model.eval(st[name], model_completion=True)
            if var.kind == "bool":
                out[name] = z3.is_true(got)
            elif var.kind == "int":
                out[name] = got.as_long()
            else:
                out[name] = var.values[got.as_long()]
        return out

    # ------------------------------------------------------------ rules

    def predicate(self, pred: Predicate | None, st: SymState, what: str) -> Sym:
        """A guard or ``holds``; None (no guard) is true."""
        if pred is None:
            return Sym("bool", self.true)
        if pred.expr is None:
            raise SymbolicUnsupported(f"{what} is a Python function: the symbolic method "
                                      "needs spec expressions")
        return self.expr_of(pred.expr, st, "bool")

    def assignment(self, asg: Assignment, st: SymState, what: str
                   ) -> tuple[dict[str, Any], Any, Any]:
        """A simultaneous assignment at ``st``: (new state with ints clamped,
        evaluation failure, overflow of a var declared ``overflow: error``)."""
        if asg.fn is not None:
            raise SymbolicUnsupported(f"{what} is a Python function: the symbolic method "
                                      "needs spec expressions")
        new = dict(st)
        errs: list[Any] = []
        overflow: list[Any] = []
        for target, e in zip(asg.targets, asg.exprs):
            var = self.vars[target]
            got = self.expr_of(e, st, _var_type(var))
            if got.err is not None:
                errs.append(got.err)
            value = got.term
            if var.kind == "int":
                low, high = value < var.lo, value > var.hi
                if var.overflow == "error":
                    overflow.append(z3.Or(low, high))
                value = z3.If(low, self.int_val(var.lo), z3.If(high, self.int_val(var.hi), value))
            new[target] = value
        return new, _any(errs, self.false), _any(overflow, self.false)

    def holds(self, inv: Invariant, st: SymState) -> Sym:
        return self.predicate(inv.holds, st, f"the holds of invariant {inv.name!r}")

    def valid(self, st: SymState) -> Any:
        inv = self.spec.invariants
        return z3.And([self.holds(i, st).term for i in inv]) if inv else self.true

    def rho(self, st: SymState) -> dict[str, Any]:
        """One repair step: the first failing invariant (list order) repairs;
        a valid state is left as it is."""
        out: dict[str, Any] = dict(st)
        for inv in reversed(self.spec.invariants):
            h = self.holds(inv, st).term
            new, _, _ = self.assignment(inv.repair, st, f"the repair of invariant {inv.name!r}")
            out = {n: z3.If(h, out[n], new[n]) for n in self.vars}
        return out

    def first_fails(self, st: SymState, index: int) -> Any:
        """Invariant ``index`` is the first one (in list order) to fail at ``st``."""
        invs = self.spec.invariants
        parts = [self.holds(invs[j], st).term for j in range(index)]
        parts.append(z3.Not(self.holds(invs[index], st).term))
        return z3.And(parts)

    def event(self, ev: Event, st: SymState) -> tuple[dict[str, Any], Any, Any]:
        """The raw event (guard and clamped assignment, no normalization):
        (state, evaluation failure, overflow under ``error``). A false guard
        is a no-op; the assignment's failures count only where it fires."""
        what = f"event {ev.name!r}"
        g = self.predicate(ev.guard, st, f"the guard of {what}")
        new, a_err, ovf = self.assignment(ev.apply, st, f"the apply of {what}")
        out = {n: z3.If(g.term, new[n], st[n]) for n in self.vars}
        g_err = g.err if g.err is not None else self.false
        return out, z3.Or(g_err, z3.And(g.term, a_err)), z3.And(g.term, ovf)

    # ------------------------------------------------------------ expressions

    def tree(self, text: str) -> _Node:
        got = self._trees.get(text)
        if got is None:
            got = self._trees[text] = _Parser(text).parse()
        return got

    def expr(self, text: str, st: SymState, want: _Type | None) -> Sym:
        return self._tr(self.tree(text), st, want)

    def expr_of(self, e: Any, st: SymState, want: _Type | None) -> Sym:
        """A compiled expression: its text, and for an instance of an event
        family (``BoundExpr``) its parameters as constants, typed as the
        loader typed them (params are names in scope, like vars)."""
        if not isinstance(e, BoundExpr):
            return self.expr(e.text, st, want)
        scoped = dict(st)
        types = dict(self.types)
        for p in e.params:
            types[p.name] = _var_type(p)
            value = e.binding[p.name]
            if p.kind == "bool":
                scoped[p.name] = z3.BoolVal(bool(value), self.ctx)
            elif p.kind == "int":
                scoped[p.name] = self.int_val(int(value))
            else:
                scoped[p.name] = self.int_val(list(p.values).index(value))
        outer = self.types
        self.types = types   # the names in scope while this expression translates
        try:
            return self.expr(e.text, scoped, want)
        finally:
            self.types = outer

    def _peek(self, node: _Node) -> _Type | None:
        """The type of a node when bare names are vars (the loader's ``peek``)."""
        kind = node.kind
        if kind == "lit":
            return "bool" if isinstance(node.value, bool) else "int"
        if kind == "name":
            return self.types.get(node.value)
        if kind in ("neg", "call") or (kind == "bin" and node.value in _ARITH | _DIV):
            return "int"
        if kind in ("not", "bin"):
            return "bool"
        if kind == "if":
            kinds = [self._peek(node.args[1]), self._peek(node.args[2])]
            enums = [k for k in kinds if isinstance(k, tuple)]
            if enums:
                return enums[0]
            return kinds[0] or kinds[1]
        return None

    def _tr(self, node: _Node, st: SymState, want: _Type | None) -> Sym:
        kind = node.kind
        if kind == "lit":
            if isinstance(node.value, bool):
                return Sym("bool", z3.BoolVal(node.value, self.ctx))
            return Sym("int", self.int_val(node.value))
        if kind == "str":
            if not isinstance(want, tuple):  # pragma: no cover - rejected at load
                raise SymbolicUnsupported(f"quoted value '{node.value}' without an enum")
            return Sym(want, self.int_val(want.index(node.value)))
        if kind == "name":
            name = node.value
            if isinstance(want, tuple) and name in want:
                return Sym(want, self.int_val(want.index(name)))
            return Sym(self.types[name], st[name])
        if kind == "neg":
            a = self._tr(node.args[0], st, "int")
            return Sym("int", -a.term, a.err)
        if kind == "not":
            a = self._tr(node.args[0], st, "bool")
            return Sym("bool", z3.Not(a.term), a.err)
        if kind == "if":
            return self._if(node, st, want)
        if kind == "call":
            args = [self._tr(a, st, "int") for a in node.args]
            err = _union(*(a.err for a in args))
            if node.value == "abs":
                x = args[0].term
                return Sym("int", z3.If(x < 0, -x, x), err)
            x, y = args[0].term, args[1].term
            if node.value == "min":
                return Sym("int", z3.If(x <= y, x, y), err)
            return Sym("int", z3.If(x >= y, x, y), err)
        return self._bin(node, st)

    def _if(self, node: _Node, st: SymState, want: _Type | None) -> Sym:
        c_node, a_node, b_node = node.args
        c = self._tr(c_node, st, "bool")
        branch = want
        if branch is None:
            peeked = self._peek(node)
            branch = peeked if isinstance(peeked, tuple) else None
        a = self._tr(a_node, st, branch)
        b = self._tr(b_node, st, branch if branch is not None else a.type)
        err = _union(c.err,
                     None if a.err is None else z3.And(c.term, a.err),
                     None if b.err is None else z3.And(z3.Not(c.term), b.err))
        return Sym(a.type, z3.If(c.term, a.term, b.term), err)

    def _bin(self, node: _Node, st: SymState) -> Sym:
        op = node.value
        left, right = node.args
        if op in ("and", "or", "implies"):
            a = self._tr(left, st, "bool")
            b = self._tr(right, st, "bool")
            if op == "and":
                value, reach_b = z3.And(a.term, b.term), a.term
            elif op == "or":
                value, reach_b = z3.Or(a.term, b.term), z3.Not(a.term)
            else:
                value, reach_b = z3.Implies(a.term, b.term), a.term
            err = _union(a.err, None if b.err is None else z3.And(reach_b, b.err))
            return Sym("bool", value, err)
        if op in ("==", "!="):
            a, b = self._equality(node, st)
            value = a.term == b.term if op == "==" else a.term != b.term
            return Sym("bool", value, _union(a.err, b.err))
        a = self._tr(left, st, "int")
        b = self._tr(right, st, "int")
        err = _union(a.err, b.err)
        x, y = a.term, b.term
        if op in _ORDER:
            value = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
            return Sym("bool", value, err)
        if op == "+":
            return Sym("int", x + y, err)
        if op == "-":
            return Sym("int", x - y, err)
        if op == "*":
            return Sym("int", x * y, err)
        # floor division and modulo (Python's): z3's div/mod are Euclidean
        # (remainder in [0, |y|)), which is floor's for y > 0; for y < 0 a
        # nonzero remainder moves the quotient down by one and the remainder
        # to the divisor's sign.
        q, r = x / y, x % y
        exact = z3.Or(y > 0, r == 0)
        zero = y == 0
        if z3.is_int_value(y) and y.as_long() != 0:
            zero = None
        value = z3.If(exact, q, q - 1) if op in ("/", "//") else z3.If(exact, r, r + y)
        return Sym("int", value, _union(err, zero))

    def _equality(self, node: _Node, st: SymState) -> tuple[Sym, Sym]:
        left, right = node.args
        pl, pr = self._peek(left), self._peek(right)
        el = pl if isinstance(pl, tuple) else None
        er = pr if isinstance(pr, tuple) else None
        if el is None and er is None and left.kind == "str" and right.kind != "str":
            b = self._tr(right, st, None)
            a = self._tr(left, st, b.type)
        else:
            a = self._tr(left, st, er)
            b = self._tr(right, st, el if el is not None else a.type)
        return a, b


def _union(*errs: Any) -> Any:
    parts = [e for e in errs if e is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else z3.Or(parts)


def _any(parts: list[Any], false: Any) -> Any:
    if not parts:
        return false
    return parts[0] if len(parts) == 1 else z3.Or(parts)
