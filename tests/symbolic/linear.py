"""Random small machines in linear integer arithmetic (plus bools and enums),
as spec text: what the symbolic method must decide exactly as enumeration.

Ints get small ranges with negatives (so floor division and modulo by
negative constants matter), ``clamp`` or ``error`` overflow; expressions use
``+ - min max abs``, multiplication and floor division/modulo by constants
(negative ones too), ``if``, comparisons, ``and or not implies``, enum
equality, and now and then a division by a variable (an evaluation error
both methods must report alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

__all__ = ["LinearMachine", "linear_machines"]

ENUM_VALUES = ("idle", "busy", "done")


@dataclass(frozen=True)
class GVar:
    name: str
    kind: str               # bool | enum | int
    lo: int = 0
    hi: int = 0
    values: tuple[str, ...] = ()
    overflow: str = "clamp"

    def decl(self) -> str:
        if self.kind == "bool":
            return "bool"
        if self.kind == "enum":
            return "{enum: [" + ", ".join(self.values) + "]}"
        extra = ", overflow: error" if self.overflow == "error" else ""
        return f"{{int: [{self.lo}, {self.hi}]{extra}}}"

    @property
    def size(self) -> int:
        if self.kind == "bool":
            return 2
        if self.kind == "enum":
            return len(self.values)
        return self.hi - self.lo + 1


@dataclass(frozen=True)
class LinearMachine:
    vars: tuple[GVar, ...]
    invariants: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    events: tuple[tuple[str | None, tuple[tuple[str, str], ...]], ...]
    pairs: tuple[tuple[int, int], ...] | None

    def to_yaml(self) -> str:
        lines = ["machine: gen", "vars:"]
        lines += [f"  {v.name}: {v.decl()}" for v in self.vars]
        if self.invariants:
            lines.append("invariants:")
            for i, (holds, repair) in enumerate(self.invariants):
                lines.append(f"  - name: inv{i}")
                lines.append(f"    holds: {_q(holds)}")
                lines.append("    repair: {" + ", ".join(f"{t}: {_q(e)}" for t, e in repair)
                             + "}")
        lines.append("events:")
        for i, (guard, apply) in enumerate(self.events):
            lines.append(f"  e{i}:")
            if guard is not None:
                lines.append(f"    guard: {_q(guard)}")
            lines.append("    apply: {" + ", ".join(f"{t}: {_q(e)}" for t, e in apply) + "}")
        if self.pairs is not None:
            lines.append("independent:")
            lines += [f"  - [e{a}, e{b}]" for a, b in self.pairs]
        return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


@st.composite
def _vars(draw: Any) -> tuple[GVar, ...]:
    n = draw(st.integers(1, 3))
    out: list[GVar] = []
    size = 1
    for i in range(n):
        kind = draw(st.sampled_from(["int", "int", "bool", "enum"]))
        name = "xyz"[i]
        if kind == "int":
            lo = draw(st.integers(-3, 1))
            hi = lo + draw(st.integers(1, 6))
            overflow = draw(st.sampled_from(["clamp", "clamp", "clamp", "error"]))
            v = GVar(name, "int", lo, hi, overflow=overflow)
        elif kind == "enum":
            v = GVar(name, "enum", values=ENUM_VALUES[:draw(st.integers(2, 3))])
        else:
            v = GVar(name, "bool")
        if size * v.size > 250:
            break
        size *= v.size
        out.append(v)
    return tuple(out)


def _int_expr(draw: Any, vs: tuple[GVar, ...], depth: int) -> str:
    ints = [v.name for v in vs if v.kind == "int"]
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        if ints and draw(st.booleans()):
            return draw(st.sampled_from(ints))
        return str(draw(st.integers(-4, 4)))
    form = draw(st.integers(0, 9))
    a = _int_expr(draw, vs, depth - 1)
    b = _int_expr(draw, vs, depth - 1)
    if form <= 2:
        return f"({a} {draw(st.sampled_from(['+', '-']))} {b})"
    if form == 3:
        return f"{draw(st.sampled_from(['min', 'max']))}({a}, {b})"
    if form == 4:
        return f"abs({a})"
    if form == 5:
        return f"({draw(st.sampled_from(['2', '-1', '3']))} * {a})"
    if form == 6:
        op = draw(st.sampled_from(["//", "%", "/"]))
        div = draw(st.sampled_from(["2", "3", "-2", "(-3)"]))
        return f"({a} {op} {div})"
    if form == 7 and ints and draw(st.integers(0, 3)) == 0:
        # a divisor that can be zero: an evaluation error somewhere
        return f"({a} // {draw(st.sampled_from(ints))})"
    if form == 8:
        c = _bool_expr(draw, vs, depth - 1)
        return f"(if {c} then {a} else {b})"
    return f"(-{a})"


def _bool_expr(draw: Any, vs: tuple[GVar, ...], depth: int) -> str:
    form = draw(st.integers(0, 9 if depth > 0 else 4))
    bools = [v.name for v in vs if v.kind == "bool"]
    enums = [v for v in vs if v.kind == "enum"]
    if form == 0 and bools:
        return draw(st.sampled_from(bools))
    if form == 1 and enums:
        v = draw(st.sampled_from(enums))
        op = draw(st.sampled_from(["==", "!="]))
        return f"{v.name} {op} '{draw(st.sampled_from(v.values))}'"
    if form == 2:
        return draw(st.sampled_from(["true", "false"]))
    if form <= 5:
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"{_int_expr(draw, vs, 1)} {op} {_int_expr(draw, vs, 1)}"
    a = _bool_expr(draw, vs, depth - 1)
    if form == 6:
        return f"not ({a})"
    b = _bool_expr(draw, vs, depth - 1)
    op = draw(st.sampled_from(["and", "or", "implies"]))
    return f"({a}) {op} ({b})"


def _value(draw: Any, v: GVar, vs: tuple[GVar, ...]) -> str:
    if v.kind == "bool":
        return _bool_expr(draw, vs, 1)
    if v.kind == "enum":
        if draw(st.booleans()):
            return draw(st.sampled_from(v.values))
        c = _bool_expr(draw, vs, 0)
        return (f"if {c} then '{draw(st.sampled_from(v.values))}' "
                f"else '{draw(st.sampled_from(v.values))}'")
    return _int_expr(draw, vs, 2)


def _assignment(draw: Any, vs: tuple[GVar, ...]) -> tuple[tuple[str, str], ...]:
    targets = draw(st.lists(st.sampled_from(vs), min_size=1, max_size=2, unique=True))
    return tuple((t.name, _value(draw, t, vs)) for t in targets)


def _invariant(draw: Any, vs: tuple[GVar, ...]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Half the time a bound with the repair that restores it (so repairs
    usually terminate), else arbitrary (so some loop)."""
    if draw(st.booleans()):
        return _bool_expr(draw, vs, 1), _assignment(draw, vs)
    v = draw(st.sampled_from(vs))
    if v.kind == "int":
        c = draw(st.integers(v.lo, v.hi))
        op = draw(st.sampled_from([">=", "<="]))
        guard = _bool_expr(draw, vs, 0) if draw(st.booleans()) else "true"
        return f"({guard}) implies {v.name} {op} {c}", ((v.name, str(c)),)
    if v.kind == "bool":
        return f"{v.name} or ({_bool_expr(draw, vs, 0)})", ((v.name, "true"),)
    bad, good = draw(st.permutations(v.values))[:2]
    return f"{v.name} != '{bad}'", ((v.name, f"'{good}'"),)


@st.composite
def linear_machines(draw: Any) -> LinearMachine:
    vs = draw(_vars())
    invs = tuple(_invariant(draw, vs) for _ in range(draw(st.integers(0, 2))))
    events = tuple((_bool_expr(draw, vs, 1) if draw(st.booleans()) else None,
                    _assignment(draw, vs)) for _ in range(draw(st.integers(1, 3))))
    all_pairs = [(a, b) for a in range(len(events)) for b in range(a + 1, len(events))]
    pairs: tuple[tuple[int, int], ...] | None = None
    if all_pairs and draw(st.booleans()):
        pairs = tuple(draw(st.lists(st.sampled_from(all_pairs), min_size=1, unique=True)))
    return LinearMachine(vs, invs, events, pairs)
