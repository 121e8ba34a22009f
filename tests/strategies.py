"""Hypothesis strategies for small random machines.

``machines()`` draws a ``GenMachine``: 1-4 vars (bool, enum, int ranges with
negatives, overflow clamp/error), 0-3 invariants, 1-7 events, guards, holds,
repairs and applies built from random typed expression trees. Most are
*constructed* to pass WFC and reach many states (``constructed_machines``:
stratified repairs, events that move every var), the rest are *wild*
(``wild_machines``: anything goes, so WFC failures and build errors stay
covered); ``tests/test_delivery.py`` asserts the mix. A GenMachine gives the
same machine two ways:

* ``to_yaml()``: spec text in the contract's syntax (docs/spec-format.md), for
  the loader and the expression compiler;
* ``to_spec()``: a ``MachineSpec`` whose functions are Python closures that
  evaluate the same trees through ``StateView`` reads (reading a var only when
  the evaluation gets there), for the engine's tracing path.

State spaces stay at most ``MAX_STATES`` states so the reference is quick.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable

from hypothesis import strategies as st

from convergent.spec.model import (
    Assignment,
    Event,
    Invariant,
    MachineSpec,
    Predicate,
    StateView,
    Var,
)

__all__ = ["GenMachine", "MAX_STATES", "constructed_machines", "evaluate", "machines", "render",
           "wild_machines"]

MAX_STATES = 200
VAR_NAMES = ["a", "b", "c", "d", "k", "m", "w", "z", "level", "mode"]
# YAML 1.1 would read several of these as booleans; the contract reads YAML 1.2.
ENUM_VALUES = ["on", "off", "yes", "no", "y", "n", "red", "green", "idle", "busy"]
EVENT_NAMES = ["go", "stop", "bump", "drop", "flip", "reset", "push"]
INV_NAMES = ["inv_a", "inv_b", "inv_c"]

# --------------------------------------------------------------------------
# expression trees: nested tuples
#   ("lit", value) ("var", name) ("not", x) ("and"|"or"|"implies", x, y)
#   ("cmp", op, x, y) ("if", c, x, y) ("arith", op, x, y) ("neg", x)
#   ("call", "min"|"max"|"abs", (args...))
# types: "bool", "int", ("enum", var_name)
# --------------------------------------------------------------------------


def _floordiv(x: int, y: int) -> int:
    if y == 0:
        raise ZeroDivisionError("division by zero")
    return x // y


def _mod(x: int, y: int) -> int:
    if y == 0:
        raise ZeroDivisionError("modulo by zero")
    return x % y


_ARITH: dict[str, Callable[[int, int], int]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": _floordiv,
    "//": _floordiv,
    "%": _mod,
}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda x, y: x == y,
    "!=": lambda x, y: x != y,
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


def evaluate(node: tuple, get: Callable[[str], Any]) -> Any:
    """Evaluate a tree, reading vars through ``get`` only when needed
    (and/or/implies/if short-circuit, as the contract's evaluation does)."""
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "var":
        return get(node[1])
    if tag == "not":
        return not evaluate(node[1], get)
    if tag == "and":
        return bool(evaluate(node[1], get)) and bool(evaluate(node[2], get))
    if tag == "or":
        return bool(evaluate(node[1], get)) or bool(evaluate(node[2], get))
    if tag == "implies":
        return (not evaluate(node[1], get)) or bool(evaluate(node[2], get))
    if tag == "cmp":
        return bool(_CMP[node[1]](evaluate(node[2], get), evaluate(node[3], get)))
    if tag == "if":
        return evaluate(node[2], get) if evaluate(node[1], get) else evaluate(node[3], get)
    if tag == "arith":
        return _ARITH[node[1]](evaluate(node[2], get), evaluate(node[3], get))
    if tag == "neg":
        return -evaluate(node[1], get)
    if tag == "call":
        args = [evaluate(a, get) for a in node[2]]
        if node[1] == "min":
            return min(args)
        if node[1] == "max":
            return max(args)
        return abs(args[0])
    raise AssertionError(node)


# precedence levels, loosest first
L_IF, L_IMPLIES, L_OR, L_AND, L_NOT, L_CMP, L_ADD, L_MUL, L_NEG, L_ATOM = range(10)


def render(node: tuple, parens: bool = False) -> str:
    """The tree as contract syntax with the fewest parentheses the contract's
    precedence allows (or around every compound subexpression if ``parens``)."""
    return _render(node, parens)[0]


def _render(node: tuple, parens: bool) -> tuple[str, int]:
    def sub(child: tuple, min_level: int) -> str:
        text, level = _render(child, parens)
        if level < min_level or (parens and level < L_ATOM):
            return f"({text})"
        return text

    tag = node[0]
    if tag == "lit":
        v = node[1]
        if isinstance(v, bool):
            return ("true" if v else "false"), L_ATOM
        if isinstance(v, int):
            return str(v), (L_NEG if v < 0 else L_ATOM)
        return f"'{v}'", L_ATOM
    if tag == "var":
        return node[1], L_ATOM
    if tag == "if":
        return (f"if {sub(node[1], L_IMPLIES)} then {sub(node[2], L_IMPLIES)} "
                f"else {sub(node[3], L_IF)}"), L_IF
    if tag == "implies":
        return f"{sub(node[1], L_OR)} implies {sub(node[2], L_IMPLIES)}", L_IMPLIES
    if tag == "or":
        return f"{sub(node[1], L_OR)} or {sub(node[2], L_AND)}", L_OR
    if tag == "and":
        return f"{sub(node[1], L_AND)} and {sub(node[2], L_NOT)}", L_AND
    if tag == "not":
        return f"not {sub(node[1], L_NOT)}", L_NOT
    if tag == "cmp":
        return f"{sub(node[2], L_ADD)} {node[1]} {sub(node[3], L_ADD)}", L_CMP
    if tag == "arith":
        level = L_ADD if node[1] in "+-" else L_MUL
        return f"{sub(node[2], level)} {node[1]} {sub(node[3], level + 1)}", level
    if tag == "neg":
        inner = sub(node[1], L_NEG)
        if inner.startswith("-"):
            inner = f"({inner})"
        return f"-{inner}", L_NEG
    if tag == "call":
        return f"{node[1]}({', '.join(render(a, parens) for a in node[2])})", L_ATOM
    raise AssertionError(node)


# --------------------------------------------------------------------------
# the generated machine
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GVar:
    name: str
    kind: str                  # bool | enum | int
    values: tuple = ()         # enum values
    lo: int = 0
    hi: int = 0
    overflow: str | None = None  # None = not written (clamp)

    def to_var(self) -> Var:
        if self.kind == "bool":
            return Var.boolean(self.name)
        if self.kind == "enum":
            return Var.enum(self.name, *self.values)
        return Var.integer(self.name, self.lo, self.hi, self.overflow or "clamp")

    @property
    def domain(self) -> tuple:
        if self.kind == "bool":
            return (False, True)
        if self.kind == "enum":
            return self.values
        return tuple(range(self.lo, self.hi + 1))

    @property
    def type(self) -> Any:
        return ("enum", self.name) if self.kind == "enum" else self.kind


@dataclass(frozen=True)
class GMachine:
    vars: tuple[GVar, ...]
    initial: tuple[tuple[str, Any], ...]   # the written part of initial
    # (name, holds, ((target, expr), ...)[, watches])
    invariants: tuple[tuple, ...]
    # (name, guard, ((target, expr), ...)[, reads, writes])
    events: tuple[tuple, ...]
    independent: tuple[tuple[str, str], ...] | None  # None = all
    all_style: str = "omit"          # how "all" is written: omit | all
    parens: bool = False             # render with every parenthesis
    dict_apply: bool = False         # closures return {var: value} instead of a view

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        if self.independent is not None:
            return self.independent
        return tuple(combinations([e[0] for e in self.events], 2))

    # -- YAML -------------------------------------------------------------------
    def _lit(self, v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    def _expr(self, node: tuple) -> str:
        if node[0] == "lit" and not isinstance(node[1], str):
            return self._lit(node[1])        # bare YAML scalar: true, 3, -2
        return '"' + render(node, self.parens) + '"'

    def to_yaml(self) -> str:
        lines = ["machine: random_machine", "vars:"]
        for v in self.vars:
            if v.kind == "bool":
                lines.append(f"  {v.name}: bool")
            elif v.kind == "enum":
                lines.append(f"  {v.name}: {{enum: [{', '.join(v.values)}]}}")
            else:
                extra = f", overflow: {v.overflow}" if v.overflow else ""
                lines.append(f"  {v.name}: {{int: [{v.lo}, {v.hi}]{extra}}}")
        if self.initial:
            items = ", ".join(f"{n}: {self._lit(x)}" for n, x in self.initial)
            lines.append(f"initial: {{{items}}}")
        if self.invariants:
            lines.append("invariants:")
            for name, holds, repair, *watches in self.invariants:
                lines.append(f"  - name: {name}")
                lines.append(f"    holds: \"{render(holds, self.parens)}\"")
                items = ", ".join(f"{t}: {self._expr(x)}" for t, x in repair)
                lines.append(f"    repair: {{{items}}}")
                if watches:
                    lines.append(f"    watches: [{', '.join(watches[0])}]")
        lines.append("events:")
        for name, guard, apply, *declared in self.events:
            lines.append(f"  {name}:")
            if guard is not None:
                lines.append(f"    guard: \"{render(guard, self.parens)}\"")
            items = ", ".join(f"{t}: {self._expr(x)}" for t, x in apply)
            lines.append(f"    apply: {{{items}}}")
            if declared:
                lines.append(f"    reads: [{', '.join(declared[0])}]")
                lines.append(f"    writes: [{', '.join(declared[1])}]")
        if self.independent is None:
            if self.all_style == "all":
                lines.append("independent: all")
        else:
            lines.append("independent:")
            for a, b in self.independent:
                lines.append(f"  - [{a}, {b}]")
        return "\n".join(lines) + "\n"

    # -- MachineSpec of closures ------------------------------------------------
    def to_spec(self) -> MachineSpec:
        def pred(tree: tuple, text: str) -> Predicate:
            return Predicate(fn=lambda s: evaluate(tree, s.__getitem__), text=text)

        def assign(items: tuple, text: str) -> Assignment:
            as_dict = self.dict_apply

            def fn(s: StateView) -> Any:
                values = [(t, evaluate(x, s.__getitem__)) for t, x in items]  # simultaneous
                if as_dict:
                    return dict(values)
                out = s
                for t, v in values:
                    out = out.set(t, v)
                return out
            return Assignment(fn=fn, text=text)

        invs = tuple(Invariant(name, pred(h, f"holds of {name}"), assign(r, f"repair of {name}"),
                               watches=w[0] if w else None)
                     for name, h, r, *w in self.invariants)
        evs = tuple(Event(name, assign(a, f"apply of {name}"),
                          None if g is None else pred(g, f"guard of {name}"),
                          reads=d[0] if d else None, writes=d[1] if d else None)
                    for name, g, a, *d in self.events)
        written = dict(self.initial)
        initial = {v.name: written.get(v.name, v.domain[0]) for v in self.vars}
        return MachineSpec(name="random_machine", vars=tuple(v.to_var() for v in self.vars),
                           invariants=invs, events=evs, independent=self.pairs,
                           initial=initial, independent_all=self.independent is None)

    @property
    def total(self) -> int:
        n = 1
        for v in self.vars:
            n *= len(v.domain)
        return n


GenMachine = GMachine

# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------


@st.composite
def _vars(draw: Any) -> tuple[GVar, ...]:
    count = draw(st.integers(1, 4))
    names = draw(st.permutations(VAR_NAMES))[:count]
    out = []
    budget = MAX_STATES
    for i, name in enumerate(names):
        remaining = count - i - 1
        cap = max(1, budget // (2 ** remaining))   # leave room for the others
        kinds = ["bool", "enum", "int"] if cap >= 2 else ["enum", "int"]
        kind = draw(st.sampled_from(kinds))
        if kind == "bool":
            v = GVar(name, "bool")
        elif kind == "enum":
            k = draw(st.integers(1, min(4, cap)))
            values = tuple(draw(st.permutations(ENUM_VALUES))[:k])
            v = GVar(name, "enum", values=values)
        else:
            size = draw(st.integers(1, min(5, cap)))
            lo = draw(st.integers(-3, 2))
            overflow = draw(st.sampled_from([None, None, "clamp", "error"]))
            v = GVar(name, "int", lo=lo, hi=lo + size - 1, overflow=overflow)
        budget //= len(v.domain)
        out.append(v)
    return tuple(out)


@st.composite
def _big_vars(draw: Any, min_states: int, max_states: int) -> tuple[GVar, ...]:
    """Vars whose product lies in [min_states, max_states]: enough of them
    that the engine's blocked (low/high) table writing is exercised."""
    names = list(draw(st.permutations(VAR_NAMES)))
    out: list[GVar] = []
    total = 1
    while total < min_states:
        name = names.pop()
        need = -(-min_states // total)           # ceil: the size that would finish
        if need <= 6 or len(names) <= 1:
            size = need if draw(st.booleans()) else min(6, need + draw(st.integers(0, 2)))
            size = max(1, min(size, max_states // total))
            lo = draw(st.integers(-3, 2))
            out.append(GVar(name, "int", lo=lo, hi=lo + size - 1,
                            overflow=draw(st.sampled_from([None, "clamp", "error"]))))
        else:
            kind = draw(st.sampled_from(["bool", "enum", "int"]))
            if kind == "bool":
                out.append(GVar(name, "bool"))
            elif kind == "enum":
                k = draw(st.integers(2, 4))
                out.append(GVar(name, "enum", values=tuple(draw(st.permutations(ENUM_VALUES))[:k])))
            else:
                lo = draw(st.integers(-3, 2))
                out.append(GVar(name, "int", lo=lo, hi=lo + draw(st.integers(2, 6)) - 1,
                                overflow=draw(st.sampled_from([None, "clamp", "error"]))))
        total *= len(out[-1].domain)
    return tuple(draw(st.permutations(out)))


def _leaf(draw: Any, ty: Any, vs: tuple[GVar, ...]) -> tuple:
    same = [v for v in vs if v.type == ty]
    if ty == "bool":
        if same and draw(st.integers(0, 3)) > 0:
            return ("var", draw(st.sampled_from(same)).name)
        return ("lit", draw(st.booleans()))
    if ty == "int":
        if same and draw(st.booleans()):
            return ("var", draw(st.sampled_from(same)).name)
        return ("lit", draw(st.integers(-3, 5)))
    var = next(v for v in vs if v.name == ty[1])
    if draw(st.booleans()):
        return ("var", var.name)
    return ("lit", draw(st.sampled_from(var.values)))


def _expr(draw: Any, ty: Any, vs: tuple[GVar, ...], depth: int, safe: bool = False) -> tuple:
    """A random typed tree; ``safe``: no divisor that may be 0 (no evaluation errors)."""
    if depth <= 0 or draw(st.integers(0, 9)) < 3:
        if ty == "bool" and depth > 0 and draw(st.booleans()):
            # a comparison leaf: the common shape of guards and holds
            return _comparison(draw, vs, 1, safe)
        return _leaf(draw, ty, vs)
    d = depth - 1
    if ty == "bool":
        shape = draw(st.sampled_from(["not", "and", "or", "implies", "cmp", "cmp", "if"]))
        if shape == "not":
            return ("not", _expr(draw, "bool", vs, d, safe))
        if shape in ("and", "or", "implies"):
            return (shape, _expr(draw, "bool", vs, d, safe), _expr(draw, "bool", vs, d, safe))
        if shape == "cmp":
            return _comparison(draw, vs, d, safe)
        return ("if", _expr(draw, "bool", vs, d, safe), _expr(draw, "bool", vs, d, safe),
                _expr(draw, "bool", vs, d, safe))
    if ty == "int":
        shape = draw(st.sampled_from(["+", "-", "*", "/", "//", "%", "min", "max", "abs",
                                      "neg", "if"]))
        if shape in ("+", "-", "*"):
            return ("arith", shape, _expr(draw, "int", vs, d, safe),
                    _expr(draw, "int", vs, d, safe))
        if shape in ("/", "//", "%"):
            if not safe and draw(st.integers(0, 9)) == 0:   # now and then a divisor that may be 0
                divisor = _expr(draw, "int", vs, d, safe)
            else:
                divisor = ("lit", draw(st.sampled_from([-3, -2, -1, 1, 2, 3])))
            return ("arith", shape, _expr(draw, "int", vs, d, safe), divisor)
        if shape in ("min", "max"):
            return ("call", shape, (_expr(draw, "int", vs, d, safe),
                                    _expr(draw, "int", vs, d, safe)))
        if shape == "abs":
            return ("call", "abs", (_expr(draw, "int", vs, d, safe),))
        if shape == "neg":
            return ("neg", _expr(draw, "int", vs, d, safe))
        return ("if", _expr(draw, "bool", vs, d, safe), _expr(draw, "int", vs, d, safe),
                _expr(draw, "int", vs, d, safe))
    # enum
    return ("if", _expr(draw, "bool", vs, d, safe), _expr(draw, ty, vs, d, safe),
            _expr(draw, ty, vs, d, safe))


def _comparison(draw: Any, vs: tuple[GVar, ...], depth: int, safe: bool = False) -> tuple:
    kinds = ["int", "int", "bool"] + [v.type for v in vs if v.kind == "enum"]
    ty = draw(st.sampled_from(kinds))
    ops = ["==", "!=", "<", "<=", ">", ">="] if ty == "int" else ["==", "!="]
    left, right = _expr(draw, ty, vs, depth, safe), _expr(draw, ty, vs, depth, safe)
    if isinstance(ty, tuple) and not (_anchored(left) or _anchored(right)):
        # two quoted values have no enum to belong to: a type error, so one
        # side names the var
        left = ("var", ty[1])
    return ("cmp", draw(st.sampled_from(ops)), left, right)


def _anchored(node: tuple) -> bool:
    """An enum expression whose enum is known without context (it names a var)."""
    if node[0] == "var":
        return True
    return node[0] == "if" and (_anchored(node[2]) or _anchored(node[3]))


def _assignment(draw: Any, vs: tuple[GVar, ...], max_targets: int, depth: int,
                prefer: list[str] | None = None) -> tuple:
    k = draw(st.integers(1, min(max_targets, len(vs))))
    order = draw(st.permutations([v.name for v in vs]))
    if prefer and draw(st.integers(0, 3)) > 0:
        order = sorted(order, key=lambda n: n not in prefer)
    targets = sorted(order[:k], key=[v.name for v in vs].index) if draw(st.booleans()) \
        else order[:k]
    items = []
    for t in targets:
        var = next(v for v in vs if v.name == t)
        if draw(st.integers(0, 2)) == 0:
            items.append((t, _leaf(draw, var.type, vs)))
        else:
            items.append((t, _expr(draw, var.type, vs, depth)))
    return tuple(items)


def _free_vars(node: Any) -> set[str]:
    if not isinstance(node, tuple) or not node:
        return set()
    if node[0] == "var":
        return {node[1]}
    children = node if isinstance(node[0], tuple) else node[1:]   # call args: a tuple of nodes
    out: set[str] = set()
    for child in children:
        out |= _free_vars(child)
    return out


def _fixing_repair(draw: Any, vs: tuple[GVar, ...], holds: tuple) -> tuple | None:
    """Constants for every var ``holds`` reads that make it true, if some exist
    (a repair that fixes its own invariant, so that WFC holds more often)."""
    free = [v for v in vs if v.name in _free_vars(holds)]
    if not free or len(free) > 3:
        return None
    choices = []
    for v in free:
        choices.append(draw(st.permutations(v.domain)))
    # search the product of the (shuffled) domains for a fixing assignment
    def search(i: int, fixed: dict[str, Any]) -> dict[str, Any] | None:
        if i == len(free):
            try:
                return dict(fixed) if evaluate(holds, fixed.__getitem__) else None
            except ArithmeticError:
                return None
        for value in choices[i]:
            fixed[free[i].name] = value
            found = search(i + 1, fixed)
            if found is not None:
                return found
        del fixed[free[i].name]
        return None
    found = search(0, {})
    if found is None:
        return None
    return tuple((n, ("lit", x)) for n, x in found.items())


@st.composite
def machines(draw: Any, max_depth: int = 3, min_states: int | None = None,
             max_states: int | None = None) -> GMachine:
    """A random small machine (see the module docstring). With ``min_states``,
    a machine of between ``min_states`` and ``max_states`` states.

    Five in six are *constructed* to pass WFC and to reach many states
    (``constructed_machines``), so that what the property tests assert about
    reachable states, witnesses and obligations is exercised; the rest are
    *wild* (``wild_machines``): any expressions, repairs that may loop,
    divisors that may be 0, ``overflow: error``, so that WFC failures and build
    errors keep being compared too. ``tests/test_delivery.py`` asserts this
    distribution."""
    if draw(st.sampled_from(("constructed",) * 5 + ("wild",))) == "constructed":
        return draw(constructed_machines(max_depth, min_states, max_states))
    return draw(wild_machines(max_depth, min_states, max_states))


@st.composite
def wild_machines(draw: Any, max_depth: int = 3, min_states: int | None = None,
                  max_states: int | None = None) -> GMachine:
    """Any small machine: random expressions everywhere (most fail WFC or
    reach one state; some raise build errors)."""
    if min_states is None:
        vs = draw(_vars())
    else:
        vs = draw(_big_vars(min_states, max_states or 4 * min_states))
    ninv = draw(st.sampled_from([1, 2, 1, 2, 3, 0]))
    invariants = []
    for name in INV_NAMES[:ninv]:
        holds = _expr(draw, "bool", vs, max_depth)
        if not _free_vars(holds):      # a constant holds: make it read a var
            v = draw(st.sampled_from(vs))
            holds = ("or", holds, ("cmp", "!=", ("var", v.name),
                                   ("lit", draw(st.sampled_from(v.domain)))))
        repair = None
        if draw(st.integers(0, 4)) > 0:
            repair = _fixing_repair(draw, vs, holds)
        if repair is None:
            repair = _assignment(draw, vs, 2, max_depth - 1, prefer=sorted(_free_vars(holds)))
        invariants.append((name, holds, repair))
    nev = draw(st.sampled_from([2, 3, 3, 4, 5, 2, 1]))
    names = draw(st.permutations(EVENT_NAMES))[:nev]
    events = []
    for name in names:
        guard = _expr(draw, "bool", vs, max_depth) if draw(st.booleans()) else None
        apply = _assignment(draw, vs, 3, max_depth)
        events.append((name, guard, apply))
    return _finish(draw, vs, invariants, events)


def _finish(draw: Any, vs: tuple[GVar, ...], invariants: list[tuple],
            events: list[tuple]) -> GMachine:
    """Declared footprints now and then, the independent pairs, the initial
    state and the rendering options: common to every kind of machine."""
    names = [e[0] for e in events]
    declare = draw(st.integers(0, 3)) == 3
    if declare:
        # declared footprints: the syntactic ones (never smaller than the
        # semantic ones the engine infers) plus now and then an extra var
        var_names = [v.name for v in vs]

        def superset(base: set[str]) -> tuple[str, ...]:
            extra = set(draw(st.lists(st.sampled_from(var_names), max_size=1)))
            return tuple(n for n in var_names if n in base | extra)
        invariants = [(n, h, r, superset(_free_vars(h))) for n, h, r in invariants]
        events = [(n, g, a, superset(_free_vars(g) | _free_vars(a)),
                   superset({t for t, _ in a})) for n, g, a in events]
    all_pairs = list(combinations(names, 2))
    if not all_pairs or draw(st.booleans()):
        independent = None
    else:
        chosen = draw(st.lists(st.sampled_from(all_pairs), min_size=1, max_size=len(all_pairs),
                               unique=True))
        independent = tuple((b, a) if draw(st.booleans()) else (a, b) for a, b in chosen)
    initial = []
    for v in vs:
        if draw(st.booleans()):
            initial.append((v.name, draw(st.sampled_from(v.domain))))
    return GMachine(vars=vs, initial=tuple(initial), invariants=tuple(invariants),
                    events=tuple(events), independent=independent,
                    all_style=draw(st.sampled_from(["omit", "all"])),
                    parens=draw(st.integers(0, 4)) == 0,
                    dict_apply=draw(st.booleans()))


# --------------------------------------------------------------------------
# constructed machines: WFC by construction, many reachable states
# --------------------------------------------------------------------------

#: states of a constructed machine (at least: enough to reach 10+)
MIN_CONSTRUCTED_STATES = 32


@st.composite
def _rich_vars(draw: Any) -> tuple[GVar, ...]:
    """2-4 vars of 2+ values each, between MIN_CONSTRUCTED_STATES and
    MAX_STATES states, no ``overflow: error`` (events clamp)."""
    names = list(draw(st.permutations(VAR_NAMES)))
    out: list[GVar] = []
    total = 1
    while len(out) < 4 and (total < MIN_CONSTRUCTED_STATES
                            or (total * 2 <= MAX_STATES and draw(st.integers(0, 2)) == 0)):
        room = MAX_STATES // total
        if room < 2:
            break
        name = names.pop()
        kind = draw(st.sampled_from(["bool", "enum", "int", "int"]))
        if kind == "bool":
            v = GVar(name, "bool")
        elif kind == "enum":
            k = draw(st.integers(2, min(4, room)))
            v = GVar(name, "enum", values=tuple(draw(st.permutations(ENUM_VALUES))[:k]))
        else:
            size = draw(st.integers(2, min(7, room)))
            lo = draw(st.integers(-3, 2))
            v = GVar(name, "int", lo=lo, hi=lo + size - 1,
                     overflow=draw(st.sampled_from([None, "clamp"])))
        out.append(v)
        total *= len(v.domain)
    return tuple(out)


def _mover(draw: Any, v: GVar, vs: tuple[GVar, ...], depth: int, own: bool = False) -> tuple:
    """An assignment to ``v`` that moves it through its domain (so events
    reach many states), now and then a random safe expression. ``own``: the
    var's own event, which can take it to every value (toggle, +1, next)."""
    # hypothesis leans to the first choices of a strategy: they are the movers
    if draw(st.integers(0, 7 if own else 4)) == 4:
        return _expr(draw, v.type, vs, depth, safe=True)
    if own:
        x = ("var", v.name)
        if v.kind == "bool":
            return ("not", x)
        if v.kind == "int":
            wrap = ("if", ("cmp", ">=", x, ("lit", v.hi)), ("lit", v.lo),
                    ("arith", "+", x, ("lit", 1)))
            return draw(st.sampled_from([("arith", "+", x, ("lit", 1)), wrap]))
        nxt: tuple = ("lit", v.values[0])
        for here, there in reversed(list(zip(v.values, v.values[1:]))):
            nxt = ("if", ("cmp", "==", x, ("lit", here)), ("lit", there), nxt)
        return nxt
    if v.kind == "bool":
        return draw(st.sampled_from([("not", ("var", v.name)), ("not", ("var", v.name)),
                                     ("lit", True), ("lit", False)]))
    if v.kind == "int":
        x = ("var", v.name)
        return draw(st.sampled_from([
            ("arith", "+", x, ("lit", 1)), ("arith", "+", x, ("lit", 1)),
            ("arith", "-", x, ("lit", 1)), ("arith", "+", x, ("lit", 2)),
            ("call", "max", (("arith", "-", x, ("lit", 1)), ("lit", v.lo))),
            ("lit", draw(st.sampled_from(v.domain))),
        ]))
    if draw(st.booleans()):
        return _mover(draw, v, vs, depth, own=True)
    return ("lit", draw(st.sampled_from(v.values)))


def _true_everywhere(holds: tuple, fixed: dict[str, Any], free: list[GVar],
                     limit: list[int]) -> bool:
    """Whether ``holds`` is true for every value of the ``free`` vars, with
    ``fixed`` set (``limit``: a shared budget of evaluations)."""
    def go(i: int) -> bool:
        if i == len(free):
            limit[0] -= 1
            try:
                return bool(evaluate(holds, {**fixed, **env}.__getitem__))
            except ArithmeticError:
                return False
        for value in free[i].domain:
            env[free[i].name] = value
            if not go(i + 1):
                return False
        return True
    env: dict[str, Any] = {}
    return go(0)


def _stratified_repair(draw: Any, vs: tuple[GVar, ...], holds: tuple,
                       protected: set[str]) -> tuple | None:
    """Constants for some vars of ``holds``, none read by an earlier
    invariant (``protected``), that make ``holds`` true whatever the other
    vars are. Such repairs cannot loop: a repair leaves every earlier
    invariant true (it writes nothing they read) and makes its own true, so
    the first failing invariant moves strictly down the list."""
    read = [v for v in vs if v.name in _free_vars(holds)]
    writable = [v for v in read if v.name not in protected]
    if not writable:
        return None
    subsets = [[v for k, v in enumerate(writable) if mask >> k & 1]
               for mask in range(1, 2 ** len(writable))]
    subsets.sort(key=len)
    limit = [4000]
    for subset in subsets:
        rest = [v for v in read if v not in subset]
        combos: list[dict[str, Any]] = [{}]
        for v in subset:
            combos = [{**c, v.name: x} for c in combos for x in draw(st.permutations(v.domain))]
        for fixed in combos:
            if limit[0] <= 0:
                return None
            if _true_everywhere(holds, fixed, rest, limit):
                return tuple((n, ("lit", x)) for n, x in fixed.items())
    return None


def _share_true(holds: tuple, vs: tuple[GVar, ...]) -> float:
    read = [v for v in vs if v.name in _free_vars(holds)]
    total = hits = 0

    def go(i: int, env: dict[str, Any]) -> None:
        nonlocal total, hits
        if i == len(read):
            total += 1
            try:
                hits += bool(evaluate(holds, env.__getitem__))
            except ArithmeticError:
                pass
            return
        for x in read[i].domain:
            env[read[i].name] = x
            go(i + 1, env)
    go(0, {})
    return hits / max(total, 1)


@st.composite
def constructed_machines(draw: Any, max_depth: int = 3, min_states: int | None = None,
                         max_states: int | None = None) -> GMachine:
    """A machine that passes WFC by construction (stratified repairs to
    constants, see ``_stratified_repair``), evaluates without errors (no
    divisor that may be 0, no ``overflow: error``), and whose events move
    every var through its domain (increments, toggles, next enum value), so
    that it usually reaches many states. Declared pairs are random, so CC1
    passes or fails. One in twelve gets two invariants that fight (WFC fails),
    one in twelve an ``overflow: error`` int that its events may push out of
    range (a build error where that happens at a valid state)."""
    if min_states is None:
        vs = draw(_rich_vars())
    else:
        vs = tuple(dataclasses.replace(v, overflow=None) if v.overflow == "error" else v
                   for v in draw(_big_vars(min_states, max_states or 4 * min_states)))
    invariants: list[tuple] = []
    protected: set[str] = set()
    for name in INV_NAMES[:draw(st.sampled_from([1, 2, 0, 1, 2, 3]))]:
        for _ in range(3):
            holds = _expr(draw, "bool", vs, min(max_depth, 2), safe=True)
            if not _free_vars(holds) or _share_true(holds, vs) < 0.4:
                continue       # constant, or too few valid states to reach many
            repair = _stratified_repair(draw, vs, holds, protected)
            if repair is not None:
                invariants.append((name, holds, repair))
                protected |= _free_vars(holds)
                break
    flaw = draw(st.sampled_from(("none",) * 10 + ("cycle", "overflow")))
    if flaw == "cycle":
        # two last invariants that undo each other on one var: WFC fails at
        # the states where both are in play (and only there)
        v = draw(st.sampled_from([v for v in vs if len(v.domain) >= 2]))
        a, b = draw(st.permutations(v.domain))[:2]
        x = ("var", v.name)
        invariants += [("fight_a", ("cmp", "!=", x, ("lit", a)), ((v.name, ("lit", b)),)),
                       ("fight_b", ("cmp", "!=", x, ("lit", b)), ((v.name, ("lit", a)),))]
    elif flaw == "overflow":
        # an int that its event pushes past its bound under overflow: error
        ints = [k for k, v in enumerate(vs) if v.kind == "int"]
        if ints:
            k = draw(st.sampled_from(ints))
            vs = vs[:k] + (dataclasses.replace(vs[k], overflow="error"),) + vs[k + 1:]
    # every var has an event of its own that moves it (vars moved only in
    # lockstep reach few states), then up to two events on random vars
    nev = min(len(EVENT_NAMES), len(vs) + draw(st.integers(0, 2)))
    names = list(draw(st.permutations(EVENT_NAMES))[:nev])
    targets: list[list[str]] = [[v.name] for v in draw(st.permutations(vs))]
    targets += [[] for _ in range(nev - len(targets))]
    events = []
    for name, mine in zip(names, targets):
        if not mine or draw(st.integers(0, 3)) == 3:
            extra = draw(st.sampled_from(vs)).name
            if extra not in mine:
                mine.append(extra)
        by_name = {v.name: v for v in vs}
        apply = tuple((t, _mover(draw, by_name[t], vs, 1, own=k == 0))
                      for k, t in enumerate(mine))
        guard = None
        if draw(st.integers(0, 2)) == 2:
            guard = _expr(draw, "bool", vs, 1, safe=True)
            if not _free_vars(guard) or _share_true(guard, vs) < 0.3:
                guard = None     # a guard that (nearly) never holds: no moves
        events.append((name, guard, apply))
    return _finish(draw, vs, invariants, events)


# --------------------------------------------------------------------------
# hand-written machines from Python functions
# --------------------------------------------------------------------------


def make_spec(vars: list[Var], *, invariants: list[tuple] = (), events: list[tuple],
              independent: list[tuple[str, str]] | None = None,
              initial: dict[str, Any] | None = None, name: str = "hand_built") -> MachineSpec:
    """A MachineSpec from Python functions.

    ``invariants``: ``(name, holds(s) -> bool, repair(s) -> s.set(...))``, optionally
    followed by ``watches``; ``events``: ``(name, guard(s) or None, apply(s))``,
    optionally followed by ``reads`` and ``writes``. ``independent=None``: all pairs.
    """
    invs = []
    for inv in invariants:
        n, holds, repair, *rest = inv
        invs.append(Invariant(n, Predicate(fn=holds, text=f"holds of {n}"),
                              Assignment(fn=repair, text=f"repair of {n}"),
                              watches=tuple(rest[0]) if rest and rest[0] is not None else None))
    evs = []
    for ev in events:
        n, guard, apply, *rest = ev
        reads = tuple(rest[0]) if len(rest) > 0 and rest[0] is not None else None
        writes = tuple(rest[1]) if len(rest) > 1 and rest[1] is not None else None
        evs.append(Event(n, Assignment(fn=apply, text=f"apply of {n}"),
                         None if guard is None else Predicate(fn=guard, text=f"guard of {n}"),
                         reads=reads, writes=writes))
    names = [e.name for e in evs]
    pairs = tuple(combinations(names, 2)) if independent is None else tuple(
        tuple(p) for p in independent)
    init = {v.name: (initial or {}).get(v.name, v.values[0]) for v in vars}
    return MachineSpec(name=name, vars=tuple(vars), invariants=tuple(invs), events=tuple(evs),
                       independent=pairs, initial=init, independent_all=independent is None)
