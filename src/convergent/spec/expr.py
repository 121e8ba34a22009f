"""The spec expression language: tokenizer, parser, type checker, compiler.

An expression is parsed by hand (never with Python's ``eval``), type-checked
against the machine's vars when the spec loads, and compiled into two trees of
small closures built once:

* ``eval(values)`` evaluates at one state of natural values (bool, int, and
  ``str`` for enum values); it is the slow reference path;
* ``eval_vec(cols)`` evaluates over numpy columns of up to millions of states
  with one numpy call per node, never a Python loop per element.

Grammar, loosest first (``docs/spec-format.md`` is the contract)::

    expr    := 'if' expr 'then' expr 'else' expr | implies
    implies := or ['implies' implies]                 right-associative
    or      := and {'or' and}
    and     := not {'and' not}
    not     := 'not' not | cmp
    cmp     := sum [('=='|'!='|'<'|'<='|'>'|'>=') sum] non-associative
    sum     := term {('+'|'-') term}
    term    := unary {('*'|'/'|'//'|'%') unary}
    unary   := '-' unary | atom
    atom    := INT | 'true' | 'false' | STRING | NAME | NAME '(' args ')' | '(' expr ')'

Decisions where the contract is silent:

* comparisons do not chain: ``a < b < c`` is an error (Python would chain,
  most other languages would nest; refusing avoids both surprises);
* ``if`` is a prefix form allowed only where a whole ``expr`` is (top level,
  parentheses, branches, call arguments): ``a and if ...`` must be written
  ``a and (if ...)``;
* enum types are identified by their tuple of values, so two enum vars with
  the same values in the same order share a type and compare;
* values of an enum type are compared with ``==``/``!=`` only; ordering
  (``<`` ...) is for ints.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np

from ..errors import Problem, SpecError
from .model import Assignment, EvalError, Location, Predicate, Var

__all__ = [
    "KEYWORDS",
    "CompiledExpr",
    "ExprType",
    "compile_assignment",
    "compile_expr",
    "compile_predicate",
    "describe_type",
]

ExprType = Union[Literal["bool", "int"], tuple[str, ...]]
"""``"bool"``, ``"int"``, or an enum type given by its tuple of values."""

Expected = Union[Literal["bool", "int"], tuple[str, ...], Var, None]

KEYWORDS = frozenset({"if", "then", "else", "implies", "or", "and", "not", "true", "false"})
FUNCTIONS = {"min": 2, "max": 2, "abs": 1}

_CMP_OPS = ("==", "!=", "<=", ">=", "<", ">")
_ORDER_OPS = frozenset({"<", "<=", ">", ">="})
_INT_OPS = frozenset({"+", "-", "*", "/", "//", "%"})
_TWO_CHAR_OPS = ("==", "!=", "<=", ">=", "//")
_ONE_CHAR_OPS = "<>+-*/%(),"
_HINTS = {"&": "and", "|": "or", "!": "not", "=": "=="}
MAX_DIGITS = 400  # an int literal; far past 64 bits, far below Python's str->int limit


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["int", "name", "str", "op", "kw", "end"]
    text: str
    pos: int
    end: int


class _Skip(Exception):
    """An unknown name the caller asked to ignore (a var already reported broken)."""


class _SyntaxProblem(Exception):
    """Raised inside the compiler with an offset into the text; turned into a
    located ``SpecError`` at the public boundary, where the location is known."""

    def __init__(self, pos: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message
        self.hint = hint


def _tokenize(text: str) -> list[_Tok]:
    """Split ``text`` into tokens; every token keeps its offset for error columns."""
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c.isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j < n and (text[j].isalpha() or text[j] == "_"):
                raise _SyntaxProblem(i, f"malformed number {text[i:j + 1]!r}")
            if j - i > MAX_DIGITS:
                raise _SyntaxProblem(i, f"number with {j - i} digits (at most {MAX_DIGITS})")
            if not text[i:j].isascii():
                raise _SyntaxProblem(i, f"malformed number {text[i:j]!r} (ASCII digits only)")
            toks.append(_Tok("int", text[i:j], i, j))
            i = j
        elif c.isascii() and (c.isalpha() or c == "_"):
            j = i
            while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            toks.append(_Tok("kw" if word in KEYWORDS else "name", word, i, j))
            i = j
        elif c in "'\"":
            j = text.find(c, i + 1)
            nl = text.find("\n", i + 1)
            if j < 0 or 0 <= nl < j:
                raise _SyntaxProblem(i, f"unterminated quoted value starting {text[i:i + 12]!r}")
            toks.append(_Tok("str", text[i + 1:j], i, j + 1))
            i = j + 1
        elif text.startswith(_TWO_CHAR_OPS, i):
            toks.append(_Tok("op", text[i:i + 2], i, i + 2))
            i += 2
        elif c in _ONE_CHAR_OPS:
            toks.append(_Tok("op", c, i, i + 1))
            i += 1
        else:
            hint = f"write '{_HINTS[c]}'" if c in _HINTS else ""
            raise _SyntaxProblem(i, f"unexpected character {c!r}", hint)
    toks.append(_Tok("end", "", n, n))
    return toks


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class _Node:
    """A parsed, untyped node. ``start``/``end`` delimit its source text."""

    kind: str  # lit, str, name, neg, not, bin, if, call
    start: int
    end: int
    value: Any = None  # lit: bool|int; str: value; name: name; bin: op; call: function
    args: tuple[_Node, ...] = ()
    pos: int = 0  # offset of the operator (bin) for messages
    depth: int = 1  # of the tree below and including this node


MAX_NESTING = 40
"""Parentheses, ``not``, unary minus, ``if`` and calls nested in one another."""
MAX_DEPTH = 120
"""Levels of the syntax tree (a chain ``a + b + ...`` adds one per term).
Both caps keep parsing, type checking and evaluation well inside Python's
recursion limit: a deeper expression is a located error, never a crash."""


def _node(kind: str, start: int, end: int, value: Any = None, args: tuple[_Node, ...] = (),
          pos: int = 0) -> _Node:
    depth = 1 + max((a.depth for a in args), default=0)
    if depth > MAX_DEPTH:
        raise _SyntaxProblem(pos or start, f"expression nested too deeply (more than "
                                           f"{MAX_DEPTH} levels)",
                             "split it, e.g. into several invariants or events")
    return _Node(kind, start, end, value, args, pos, depth)


class _Parser:
    """Recursive descent, one method per precedence level of the grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.nesting = 0

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise _SyntaxProblem(self.tok.pos, f"expression nested too deeply (more than "
                                               f"{MAX_NESTING} levels of parentheses, not, "
                                               "unary minus, if or calls)",
                                 "split it, e.g. into several invariants or events")

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _at(self, *texts: str) -> bool:
        t = self.tok
        return t.kind in ("op", "kw") and t.text in texts

    def _take(self) -> _Tok:
        t = self.tok
        self.i += 1
        return t

    def _expect(self, text: str, context: str) -> _Tok:
        if not self._at(text):
            raise _SyntaxProblem(self.tok.pos, f"expected '{text}' {context}, found {self._show()}")
        return self._take()

    def _show(self) -> str:
        t = self.tok
        return "the end of the expression" if t.kind == "end" else repr(t.text)

    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise _SyntaxProblem(0, "empty expression")
        node = self.expr()
        if self.tok.kind != "end":
            hint = ""
            if self._at(*_CMP_OPS) and node.kind == "bin" and node.value in _CMP_OPS:
                hint = "comparisons do not chain: write 'a < b and b < c', or add parentheses"
            raise _SyntaxProblem(self.tok.pos, f"unexpected {self._show()}", hint)
        return node

    def expr(self) -> _Node:
        self._enter()
        try:
            return self._expr()
        finally:
            self.nesting -= 1

    def _expr(self) -> _Node:
        if self._at("if"):
            start = self._take().pos
            cond = self.expr()
            self._expect("then", "after the condition of 'if'")
            then = self.expr()
            self._expect("else", "in 'if ... then ... else ...'")
            other = self.expr()
            return _node("if", start, other.end, args=(cond, then, other))
        return self.implies()

    def implies(self) -> _Node:
        left = self.or_()
        if self._at("implies"):
            op = self._take()
            right = self.implies()
            return _node("bin", left.start, right.end, "implies", (left, right), op.pos)
        return left

    def _left_assoc(self, ops: tuple[str, ...], sub: Callable[[], _Node]) -> _Node:
        left = sub()
        while self._at(*ops):
            op = self._take()
            right = sub()
            left = _node("bin", left.start, right.end, op.text, (left, right), op.pos)
        return left

    def or_(self) -> _Node:
        return self._left_assoc(("or",), self.and_)

    def and_(self) -> _Node:
        return self._left_assoc(("and",), self.not_)

    def not_(self) -> _Node:
        if self._at("not"):
            start = self._take().pos
            self._enter()
            try:
                arg = self.not_()
            finally:
                self.nesting -= 1
            return _node("not", start, arg.end, args=(arg,))
        return self.cmp()

    def cmp(self) -> _Node:
        left = self.sum()
        if self._at(*_CMP_OPS):
            op = self._take()
            right = self.sum()
            return _node("bin", left.start, right.end, op.text, (left, right), op.pos)
        return left

    def sum(self) -> _Node:
        return self._left_assoc(("+", "-"), self.term)

    def term(self) -> _Node:
        return self._left_assoc(("*", "/", "//", "%"), self.unary)

    def unary(self) -> _Node:
        if self._at("-"):
            start = self._take().pos
            self._enter()
            try:
                arg = self.unary()
            finally:
                self.nesting -= 1
            return _node("neg", start, arg.end, args=(arg,))
        return self.atom()

    def atom(self) -> _Node:
        t = self.tok
        if t.kind == "int":
            self._take()
            return _Node("lit", t.pos, t.end, int(t.text))
        if t.kind == "str":
            self._take()
            return _Node("str", t.pos, t.end, t.text)
        if t.kind == "kw" and t.text in ("true", "false"):
            self._take()
            return _Node("lit", t.pos, t.end, t.text == "true")
        if t.kind == "name":
            self._take()
            if self._at("("):
                return self._call(t)
            return _Node("name", t.pos, t.end, t.text)
        if self._at("("):
            self._take()
            inner = self.expr()
            close = self._expect(")", "to close '('")
            return _Node(inner.kind, t.pos, close.end, inner.value, inner.args, inner.pos,
                         inner.depth)
        if self._at("if"):
            raise _SyntaxProblem(t.pos, "an 'if' inside an operator must be parenthesized",
                                 "write '(if c then a else b)'")
        raise _SyntaxProblem(t.pos, f"expected a value, found {self._show()}")

    def _call(self, name: _Tok) -> _Node:
        self._take()  # '('
        args: list[_Node] = []
        if not self._at(")"):
            args.append(self.expr())
            while self._at(","):
                self._take()
                args.append(self.expr())
        close = self._expect(")", f"to close the call of {name.text}(")
        return _node("call", name.pos, close.end, name.text, tuple(args), name.pos)


# --------------------------------------------------------------------------- compiled code

Vec = Callable[[Mapping[str, np.ndarray]], tuple[Any, Any]]
Scalar = Callable[[Mapping[str, Any]], Any]

_NOCONST = object()


@dataclass(slots=True)
class _Code:
    """A typed node compiled into a scalar closure and a vectorized closure.

    ``vec`` returns (values, error mask or None); values may be numpy scalars
    for constant subtrees (broadcast happens once, at the root). ``fails`` is
    False when ``vec`` never returns a mask, so parents can skip the mask work.
    """

    type: ExprType
    ev: Scalar
    vec: Vec
    fails: bool
    free: frozenset[str]
    const: Any = _NOCONST
    is_var: bool = False
    # exact static range of an int node (Python ints), and whether this node
    # or one below it can leave int64: then the whole expression evaluates on
    # object arrays of Python ints, never wrapping
    lo: int = 0
    hi: int = 0
    wide: bool = False


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _WideCols(dict[str, Any]):
    """The columns of one evaluation in exact mode: int columns are read as
    object arrays of Python ints, and int constants stay Python ints."""


def _fits(lo: int, hi: int) -> bool:
    return INT64_MIN <= lo and hi <= INT64_MAX


def _bounds(op: str, *args: _Code) -> tuple[int, int]:
    """The exact range of an int operation from its operands' ranges (sound:
    every value the operation can produce lies inside)."""
    if op == "neg":
        (a,) = args
        return -a.hi, -a.lo
    if op == "abs":
        (a,) = args
        m = max(abs(a.lo), abs(a.hi))
        return (0 if a.lo <= 0 <= a.hi else min(abs(a.lo), abs(a.hi))), m
    a, b = args
    if op == "+":
        return a.lo + b.lo, a.hi + b.hi
    if op == "-":
        return a.lo - b.hi, a.hi - b.lo
    if op == "*":
        p = (a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi)
        return min(p), max(p)
    if op in ("/", "//"):
        # floor(x / y) with |y| >= 1 lies within [-|x|, |x|]
        m = max(abs(a.lo), abs(a.hi))
        return -m, m
    if op == "%":
        m = max(abs(b.lo), abs(b.hi))
        return -max(m - 1, 0), max(m - 1, 0)
    if op == "min":
        return min(a.lo, b.lo), min(a.hi, b.hi)
    if op == "max":
        return max(a.lo, b.lo), max(a.hi, b.hi)
    if op == "if":
        return min(a.lo, b.lo), max(a.hi, b.hi)
    raise AssertionError(op)


def _ranged(code: _Code, lo: int, hi: int, *children: _Code) -> _Code:
    code.lo, code.hi = lo, hi
    code.wide = (code.type == "int" and not _fits(lo, hi)) or any(c.wide for c in children)
    if code.wide and code.type == "int" and not code.is_var and code.const is _NOCONST:
        inner = code.vec

        def vec(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
            # a ufunc on 0-d object arrays returns a bare Python int, which
            # the next ufunc would try to narrow to int64: keep it an object
            x, err = inner(cols)
            if type(cols) is _WideCols and not isinstance(x, np.ndarray):
                x = np.array(x, dtype=object)
            return x, err

        code.vec = vec
    return code


def describe_type(t: ExprType | None) -> str:
    """A type as users read it in messages: ``bool``, ``int``, ``enum [a, b]``."""
    if t is None:
        return "any type"
    if isinstance(t, tuple):
        return "enum [" + ", ".join(t) + "]"
    return t


def _var_type(var: Var) -> ExprType:
    if var.kind == "enum":
        return tuple(var.values)
    return var.kind


def _union(*masks: Any) -> Any:
    """The union of error masks, ignoring the ``None`` (cannot fail) ones."""
    out = None
    for m in masks:
        if m is not None:
            out = m if out is None else np.logical_or(out, m)
    return out


def _const_code(value: Any, t: ExprType) -> _Code:
    if isinstance(t, tuple):
        vec_value: Any = np.int64(t.index(value))
    elif t == "bool":
        vec_value = np.bool_(value)
    elif _fits(value, value):
        vec_value = np.int64(value)
    else:
        vec_value = value  # only ever used in exact mode (the node is wide)
    result = (vec_value, None)
    if t == "int":
        exact = (np.array(value, dtype=object), None)

        def vec(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
            return exact if type(cols) is _WideCols else result

        code = _Code(t, lambda v: value, vec, False, frozenset(), value)
        return _ranged(code, value, value)
    return _Code(t, lambda v: value, lambda cols: result, False, frozenset(), value)


def _var_code(var: Var) -> _Code:
    name = var.name
    t = _var_type(var)
    dtype = np.bool_ if t == "bool" else np.int64

    if t == "int":
        def vec(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
            if type(cols) is _WideCols:
                return np.asarray(cols[name]).astype(object), None
            return np.asarray(cols[name], dtype=dtype), None

        code = _Code(t, lambda v: v[name], vec, False, frozenset((name,)), is_var=True)
        return _ranged(code, var.lo, var.hi)

    def vec_other(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
        return np.asarray(cols[name], dtype=dtype), None

    return _Code(t, lambda v: v[name], vec_other, False, frozenset((name,)), is_var=True)


def _fold(code: _Code) -> _Code:
    """Replace a subtree that reads no var by its value, computed once.

    A constant subtree that fails (``1 // 0``) is kept as is: its error must
    surface only where the subtree is actually evaluated (short-circuit)."""
    if code.free or code.const is not _NOCONST:
        return code
    try:
        value = code.ev({})
    except EvalError:
        return code
    return _const_code(value, code.type)


def _strict(t: ExprType, fn: Callable[..., Any], np_fn: Callable[..., Any],
            *args: _Code, op: str = "") -> _Code:
    """A node that evaluates all its operands (no short-circuit): errors add up.
    ``op`` names an int operation for its static range (see ``_bounds``)."""
    evs = [a.ev for a in args]
    vecs = [a.vec for a in args]
    fails = any(a.fails for a in args)
    free = frozenset().union(*(a.free for a in args))
    if len(args) == 1:
        (e0,), (v0,) = evs, vecs

        def ev1(v: Mapping[str, Any]) -> Any:
            return fn(e0(v))

        def vec1(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
            x, ex = v0(cols)
            return np_fn(x), ex

        code = _Code(t, ev1, vec1, fails, free)
        return _fold(_ranged(code, *(_bounds(op, *args) if op else (0, 0)), *args))
    e0, e1 = evs
    v0, v1 = vecs

    def ev2(v: Mapping[str, Any]) -> Any:
        return fn(e0(v), e1(v))

    def vec2(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
        x, ex = v0(cols)
        y, ey = v1(cols)
        return np_fn(x, y), _union(ex, ey)

    code = _Code(t, ev2, vec2, fails, free)
    return _fold(_ranged(code, *(_bounds(op, *args) if op else (0, 0)), *args))


def _division(op: str, a: _Code, b: _Code, snippet: str) -> _Code:
    """``/``, ``//`` and ``%`` on ints: floor semantics (Python's), and an
    error (not numpy's silent 0) where the divisor is zero."""
    py = (lambda x, y: x // y) if op in ("/", "//") else (lambda x, y: x % y)
    np_fn = np.floor_divide if op in ("/", "//") else np.remainder
    ea, eb, va, vb = a.ev, b.ev, a.vec, b.vec
    message = f"division by zero in '{snippet}'" if op != "%" else f"modulo by zero in '{snippet}'"

    def ev(v: Mapping[str, Any]) -> Any:
        x, y = ea(v), eb(v)
        if y == 0:
            raise EvalError(message)
        return py(x, y)

    if b.const is not _NOCONST and b.const != 0:
        def vec(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
            x, ex = va(cols)
            y, ey = vb(cols)
            return np_fn(x, y), _union(ex, ey)

        code = _Code("int", ev, vec, a.fails or b.fails, a.free | b.free)
        return _fold(_ranged(code, *_bounds(op, a, b), a, b))

    def vec_checked(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
        x, ex = va(cols)
        y, ey = vb(cols)
        zero = np.equal(y, 0)
        return np_fn(x, np.where(zero, 1, y)), _union(ex, ey, zero)

    code = _Code("int", ev, vec_checked, True, a.free | b.free)
    return _fold(_ranged(code, *_bounds(op, a, b), a, b))


def _logic(op: str, a: _Code, b: _Code) -> _Code:
    """``and``/``or``/``implies`` with short-circuit: an error in ``b`` counts
    only where ``a`` does not already decide the result."""
    ea, eb, va, vb = a.ev, b.ev, a.vec, b.vec
    if op == "and":
        def ev(v: Mapping[str, Any]) -> Any:
            return bool(ea(v)) and bool(eb(v))
        value_fn: Callable[[Any, Any], Any] = np.logical_and
        reach_b: Callable[[Any], Any] = (lambda x: x)
    elif op == "or":
        def ev(v: Mapping[str, Any]) -> Any:
            return bool(ea(v)) or bool(eb(v))
        value_fn, reach_b = np.logical_or, np.logical_not
    else:
        def ev(v: Mapping[str, Any]) -> Any:
            return (not ea(v)) or bool(eb(v))
        value_fn, reach_b = (lambda x, y: np.logical_or(np.logical_not(x), y)), (lambda x: x)

    def vec(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
        x, ex = va(cols)
        y, ey = vb(cols)
        if ey is not None:
            ey = np.logical_and(reach_b(x), ey)
        return value_fn(x, y), _union(ex, ey)

    return _fold(_ranged(_Code("bool", ev, vec, a.fails or b.fails, a.free | b.free), 0, 0,
                         a, b))


def _if(c: _Code, a: _Code, b: _Code) -> _Code:
    ec, ea, eb, vc, va, vb = c.ev, a.ev, b.ev, c.vec, a.vec, b.vec

    def ev(v: Mapping[str, Any]) -> Any:
        return ea(v) if ec(v) else eb(v)

    def vec(cols: Mapping[str, np.ndarray]) -> tuple[Any, Any]:
        cond, errc = vc(cols)
        x, ex = va(cols)
        y, ey = vb(cols)
        if ex is not None:
            ex = np.logical_and(cond, ex)
        if ey is not None:
            ey = np.logical_and(np.logical_not(cond), ey)
        return np.where(cond, x, y), _union(errc, ex, ey)

    fails = c.fails or a.fails or b.fails
    code = _Code(a.type, ev, vec, fails, c.free | a.free | b.free)
    lo, hi = _bounds("if", a, b) if a.type == "int" else (0, 0)
    return _fold(_ranged(code, lo, hi, c, a, b))


_ARITH: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "+": (lambda x, y: x + y, np.add),
    "-": (lambda x, y: x - y, np.subtract),
    "*": (lambda x, y: x * y, np.multiply),
}
_COMPARE: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "==": (lambda x, y: x == y, np.equal),
    "!=": (lambda x, y: x != y, np.not_equal),
    "<": (lambda x, y: x < y, np.less),
    "<=": (lambda x, y: x <= y, np.less_equal),
    ">": (lambda x, y: x > y, np.greater),
    ">=": (lambda x, y: x >= y, np.greater_equal),
}
_CALLS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "min": (min, np.minimum),
    "max": (max, np.maximum),
    "abs": (abs, np.abs),
}


# --------------------------------------------------------------------------- type checker


class _Checker:
    """Types a parsed tree top-down and compiles it.

    The expected type flows down because bare names are resolved by it: where
    a value of an enum is expected, a bare name that is one of its values is
    that value (``status: paid``), otherwise a name is a variable.
    """

    def __init__(self, text: str, vars: Mapping[str, Var],
                 unknown_ok: frozenset[str] = frozenset()) -> None:
        self.text = text
        self.vars = vars
        self.types = {name: _var_type(v) for name, v in vars.items()}
        self.unknown_ok = unknown_ok

    # -- helpers
    def snippet(self, node: _Node) -> str:
        return self.text[node.start:node.end]

    def fail(self, node: _Node | int, message: str, hint: str = "") -> _SyntaxProblem:
        pos = node if isinstance(node, int) else node.start
        return _SyntaxProblem(pos, message, hint)

    def peek(self, node: _Node) -> ExprType | None:
        """The type a node has when bare names are read as variables, or None
        when that needs context (a quoted value, an unknown name). Never fails:
        it only decides which side of ``==`` or of an ``if`` sets the enum."""
        kind = node.kind
        if kind == "lit":
            return "bool" if isinstance(node.value, bool) else "int"
        if kind == "name":
            return self.types.get(node.value)
        if kind in ("neg", "call") or (kind == "bin" and node.value in _INT_OPS):
            return "int"
        if kind in ("not", "bin"):
            return "bool"
        if kind == "if":
            kinds = [self.peek(node.args[1]), self.peek(node.args[2])]
            enums = [k for k in kinds if isinstance(k, tuple)]
            if enums:
                return enums[0]
            return kinds[0] or kinds[1]
        return None

    # -- entry
    def check(self, node: _Node, want: ExprType | None) -> _Code:
        code = self.infer(node, want)
        if want is not None and code.type != want:
            raise self.fail(node, f"{describe_type(code.type)} where {describe_type(want)} "
                                  f"expected: '{self.snippet(node)}'")
        return code

    def infer(self, node: _Node, want: ExprType | None) -> _Code:
        kind = node.kind
        if kind == "lit":
            return _const_code(node.value, "bool" if isinstance(node.value, bool) else "int")
        if kind == "str":
            return self.quoted(node, want)
        if kind == "name":
            return self.name(node, want)
        if kind == "neg":
            return _strict("int", lambda x: -x, np.negative, self.check(node.args[0], "int"),
                           op="neg")
        if kind == "not":
            arg = self.check(node.args[0], "bool")
            return _strict("bool", lambda x: not x, np.logical_not, arg, op="")
        if kind == "if":
            return self.if_(node, want)
        if kind == "call":
            return self.call(node)
        return self.binary(node)

    def quoted(self, node: _Node, want: ExprType | None) -> _Code:
        value = node.value
        if isinstance(want, tuple):
            if value in want:
                return _const_code(value, want)
            raise self.fail(node, f"'{value}' is not a value of {describe_type(want)}")
        if want is None:
            raise self.fail(node, f"quoted value '{value}' needs an enum to belong to",
                            "compare it with an enum var, or assign it to one")
        raise self.fail(node, f"quoted value '{value}' where {want} expected")

    def name(self, node: _Node, want: ExprType | None) -> _Code:
        name = node.value
        var_type = self.types.get(name)
        if isinstance(want, tuple) and name in want:
            if var_type == want:
                raise self.fail(node, f"ambiguous name '{name}': it is both a var and a value "
                                      f"of its type {describe_type(want)}",
                                f"write '{name}' with quotes to mean the value")
            return _const_code(name, want)
        if var_type is not None:
            return _var_code(self.vars[name])
        raise self.unknown(node, want)

    def unknown(self, node: _Node, want: ExprType | None) -> _SyntaxProblem:
        name = node.value
        if name in self.unknown_ok:
            raise _Skip(name)
        hints = []
        close = difflib.get_close_matches(name, list(self.vars), n=1)
        if close:
            hints.append(f"did you mean '{close[0]}'")
        holders = [v for v, t in self.types.items() if isinstance(t, tuple) and name in t]
        if holders:
            hints.append(f"'{name}' is a value of {holders[0]}: write {holders[0]} == '{name}'")
        if isinstance(want, tuple):
            hints.append(f"values here: {', '.join(want)}")
        hints.append("known vars: " + (", ".join(self.vars) or "none"))
        return self.fail(node, f"unknown name '{name}'", "; ".join(hints))

    def if_(self, node: _Node, want: ExprType | None) -> _Code:
        cond_node, then_node, else_node = node.args
        cond = self.check(cond_node, "bool")
        branch_want = want
        if branch_want is None:
            peeked = self.peek(node)
            branch_want = peeked if isinstance(peeked, tuple) else None
        then = self.check(then_node, branch_want)
        other = self.check(else_node, branch_want if branch_want is not None else then.type)
        return _if(cond, then, other)

    def call(self, node: _Node) -> _Code:
        fn = node.value
        if fn not in FUNCTIONS:
            raise self.fail(node, f"unknown function '{fn}'",
                            "functions: " + ", ".join(sorted(FUNCTIONS)))
        arity = FUNCTIONS[fn]
        if len(node.args) != arity:
            raise self.fail(node, f"{fn}() takes {arity} argument{'s' * (arity > 1)}, "
                                  f"got {len(node.args)}")
        args = [self.check(a, "int") for a in node.args]
        py, np_fn = _CALLS[fn]
        return _strict("int", py, np_fn, *args, op=fn)

    def binary(self, node: _Node) -> _Code:
        op = node.value
        left, right = node.args
        if op in ("and", "or", "implies"):
            return _logic(op, self.check(left, "bool"), self.check(right, "bool"))
        if op in _ORDER_OPS:
            a, b = self.check(left, "int"), self.check(right, "int")
            return _strict("bool", *_COMPARE[op], a, b)
        if op in ("==", "!="):
            a, b = self.equality(node)
            return _strict("bool", *_COMPARE[op], a, b)
        a, b = self.check(left, "int"), self.check(right, "int")
        if op in _ARITH:
            return _strict("int", *_ARITH[op], a, b, op=op)
        return _division(op, a, b, self.snippet(node))

    def equality(self, node: _Node) -> tuple[_Code, _Code]:
        """Type both sides of ``==``/``!=``: a side that is an enum makes the
        other side expect a value of that enum (so bare values resolve)."""
        left, right = node.args
        pl, pr = self.peek(left), self.peek(right)
        el = pl if isinstance(pl, tuple) else None
        er = pr if isinstance(pr, tuple) else None
        if el is not None and er is not None and el != er:
            raise self.fail(node.pos, f"cannot compare {describe_type(el)} with "
                                      f"{describe_type(er)}: '{self.snippet(node)}'",
                            "enums compare only with the same enum type")
        if el is None and er is None and left.kind == "str" and right.kind != "str":
            # Type the side that needs no context first, so the message names
            # the real problem (an unknown name) rather than the quoted value.
            b = self.infer(right, None)
            a = self.infer(left, b.type)
        else:
            a = self.infer(left, er)
            b = self.infer(right, el if el is not None else a.type)
        if a.type != b.type:
            raise self.fail(node.pos, f"cannot compare {describe_type(a.type)} with "
                                      f"{describe_type(b.type)}: '{self.snippet(node)}'")
        return a, b


# --------------------------------------------------------------------------- public objects


@dataclass(frozen=True, eq=False)
class CompiledExpr:
    """A typed, compiled expression (satisfies ``convergent.spec.model.Expr``).

    Equality is identity: the same text over differently ordered enums is a
    different function on the encoded columns.
    """

    text: str
    type: ExprType
    free_vars: frozenset[str]
    _code: _Code = field(repr=False)

    @property
    def wide(self) -> bool:
        """True when some value along the evaluation can leave int64: then
        ``eval_vec`` computes on Python ints (exact, slower)."""
        return self._code.wide

    @property
    def can_fail(self) -> bool:
        """False when no state can make evaluation fail (no division by a
        non-constant divisor): ``eval_vec`` then always returns a None mask."""
        return self._code.fails

    def eval(self, values: Mapping[str, Any]) -> Any:
        """The value at one state given as natural values (bool, int, enum
        value str). Raises EvalError on division or modulo by zero."""
        out = self._code.ev(values)
        if self.type == "bool":
            return bool(out)
        if self.type == "int":
            return int(out)
        return out

    def eval_vec(self, cols: Mapping[str, np.ndarray],
                 n: int | tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Evaluate over columns (bools as np.bool_, ints as int64 values, enums
        as int64 indices into their values tuple).

        Returns the values (same conventions, except that an int expression
        whose exact range passes 64 bits, ``wide``, gives Python ints in an
        object array: arithmetic never wraps; always a fresh array of the full
        shape) and a bool mask of the states where evaluation failed, or None
        when no state can fail. ``n`` gives the length (or shape) when ``cols``
        holds none of the columns, e.g. for a constant expression.
        """
        shape = self._shape(cols, n)
        wide = self._code.wide
        values, errors = self._code.vec(_WideCols(cols) if wide else cols)
        dtype: Any = np.bool_ if self.type == "bool" else np.int64
        if wide and self.type == "int":
            dtype = object
        elif wide:
            values = np.asarray(values).astype(dtype)
        if np.shape(values) != shape:
            values = np.broadcast_to(np.asarray(values, dtype=dtype), shape).copy()
        elif self._code.is_var:
            values = np.array(values, dtype=dtype)  # never hand out the caller's column
        if errors is not None and np.shape(errors) != shape:
            errors = np.broadcast_to(errors, shape).copy()
        return values, errors

    def _shape(self, cols: Mapping[str, np.ndarray],
               n: int | tuple[int, ...] | None) -> tuple[int, ...]:
        if n is not None:
            return (n,) if isinstance(n, (int, np.integer)) else tuple(n)
        for name in self.free_vars:
            return np.shape(cols[name])
        for col in cols.values():
            return np.shape(col)
        raise TypeError(f"eval_vec of '{self.text}' reads no column: pass n= (the length)")

    def __repr__(self) -> str:
        return f"CompiledExpr({self.text!r}: {describe_type(self.type)})"


def _expected_type(expected: Expected) -> ExprType | None:
    if isinstance(expected, Var):
        return _var_type(expected)
    if expected is None or expected in ("bool", "int") or isinstance(expected, tuple):
        return expected
    raise TypeError(f"expected must be 'bool', 'int', a Var, an enum tuple or None, "
                    f"not {expected!r}")


def _as_var_map(vars: Mapping[str, Var] | Iterable[Var]) -> Mapping[str, Var]:
    if isinstance(vars, Mapping):
        return vars
    return {v.name: v for v in vars}


def _locate(where: Location, text: str, pos: int, pinpoint: bool) -> tuple[int | None, int | None]:
    """The line and column of offset ``pos``: pinpointed when ``where`` is the
    exact source position of ``text``'s first character and no newline comes
    before ``pos``; otherwise the start of the expression."""
    if pinpoint and where.column is not None and "\n" not in text[:pos]:
        return where.line, where.column + pos
    return where.line, where.column


def expression_source(value: Any) -> str | None:
    """The expression text of a YAML scalar: ``true``, ``3`` and ``paid`` are
    all expressions (a YAML boolean reads as ``true``/``false``). None for
    anything else (a float, a null, a list): the caller reports it."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return value
    return None


def _compile(text: str, vars: Mapping[str, Var], expected: Expected, where: Location,
             what: str, pinpoint: bool, unknown_ok: frozenset[str]) -> CompiledExpr | None:
    """The compiler behind ``compile_expr``; returns None (no problem to
    report) when the only problem is an unknown name in ``unknown_ok``: the
    loader uses that for vars whose declaration was already reported broken."""
    want = _expected_type(expected)
    try:
        tree = _Parser(text).parse()
        code = _Checker(text, vars, unknown_ok).check(tree, want)
    except _Skip:
        return None
    except RecursionError:  # pragma: no cover - the caps above come first
        p = _SyntaxProblem(0, "expression nested too deeply")
        line, column = _locate(where, text, 0, pinpoint)
        raise SpecError(Problem(p.message + (f" in {what}" if what else ""), where.file,
                                line, column)) from None
    except _SyntaxProblem as p:
        line, column = _locate(where, text, p.pos, pinpoint)
        message = p.message + (f" in {what}" if what else "") + (f" ({p.hint})" if p.hint else "")
        raise SpecError(Problem(message, where.file, line, column)) from None
    # Folding only removes subtrees that read no var, so ``code.free`` is
    # exactly the set of names that resolved to vars in the source.
    return CompiledExpr(text, code.type, code.free, code)


def compile_expr(text: str | bool | int, vars: Mapping[str, Var] | Iterable[Var],
                 expected: Expected, *, where: Location = Location(), what: str = "",
                 pinpoint: bool = True) -> CompiledExpr:
    """Parse, type-check and compile one expression.

    Args:
        text: the source; a YAML ``true`` or ``3`` is accepted as is.
        vars: the machine's vars by name (or an iterable of Var).
        expected: ``"bool"``, ``"int"``, an enum values tuple, a Var (the
            value assigned to it: bare names that are its enum's values mean
            the values), or None (any type).
        where: the position of the text's first character; problems point at
            the offending token when ``pinpoint`` (the text is verbatim there).
        what: where the expression stands, for messages ("guard of event 'x'").

    Raises:
        SpecError: one located Problem (syntax, unknown name, type error...).
    """
    source = expression_source(text)
    if source is None:
        raise SpecError(where.problem(f"expected an expression (a string, an int or a bool), "
                                      f"got {text!r}" + (f" in {what}" if what else "")))
    compiled = _compile(source, _as_var_map(vars), expected, where, what, pinpoint, frozenset())
    assert compiled is not None
    return compiled


def compile_predicate(text: str | bool, vars: Mapping[str, Var] | Iterable[Var],
                      where: Location = Location(), *, what: str = "",
                      pinpoint: bool = True) -> Predicate:
    """A guard or an invariant's ``holds``: a bool expression wrapped in a Predicate."""
    expr = compile_expr(text, vars, "bool", where=where, what=what, pinpoint=pinpoint)
    return Predicate(expr=expr, text=expr.text)


def compile_assignment(mapping: Mapping[str, str | bool | int],
                       vars: Mapping[str, Var] | Iterable[Var],
                       where: Location = Location(), *, what: str = "",
                       value_where: Mapping[str, Location] | None = None,
                       key_where: Mapping[str, Location] | None = None,
                       pinpoint: bool = True) -> Assignment:
    """A simultaneous assignment ``{var: expression}`` (targets in mapping order).

    Every target is compiled with the target var as the expected type, so
    ``{status: paid}`` assigns the enum value. All problems of all targets are
    collected into one SpecError. ``value_where``/``key_where`` give the exact
    positions of each value/key when known (the loader has them).
    """
    var_map = _as_var_map(vars)
    problems: list[Problem] = []
    targets: list[str] = []
    exprs: list[CompiledExpr] = []
    for target, source in mapping.items():
        key_loc = (key_where or {}).get(target, where)
        if target not in var_map:
            hint = difflib.get_close_matches(str(target), list(var_map), n=1)
            extra = f"did you mean '{hint[0]}'? " if hint else ""
            problems.append(key_loc.problem(
                f"assignment to unknown var '{target}'" + (f" in {what}" if what else "")
                + f" ({extra}known vars: {', '.join(var_map) or 'none'})"))
            continue
        value_loc = (value_where or {}).get(target, where)
        target_what = f"the value of {target}" + (f" in {what}" if what else "")
        try:
            exprs.append(compile_expr(source, var_map, var_map[target], where=value_loc,
                                      what=target_what, pinpoint=pinpoint))
            targets.append(target)
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(problems)
    text = "{" + ", ".join(f"{t}: {e.text}" for t, e in zip(targets, exprs)) + "}"
    return Assignment(targets=tuple(targets), exprs=tuple(exprs), text=text)
