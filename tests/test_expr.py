"""The expression language: parsing, typing, bare-name resolution, and the
agreement of the scalar and vectorized evaluators."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_path
from convergent.errors import SpecError
from convergent.spec import (
    EvalError,
    Location,
    Var,
    compile_assignment,
    compile_expr,
    compile_predicate,
    load_spec,
)
from convergent.spec.expr import CompiledExpr

SPECS = shared_path("conformance", "specs")

LOGIC = {v.name: v for v in (Var.boolean("a"), Var.boolean("b"), Var.boolean("c"),
                             Var.boolean("d"), Var.integer("k", 0, 3))}
ARITH = {v.name: v for v in (Var.integer("x", -7, 7), Var.integer("y", -7, 7))}
INVOICE = {v.name: v for v in (Var.enum("status", "draft", "sent", "paid", "void"),
                               Var.boolean("sent"), Var.boolean("paid"))}
ROTA = {v.name: v for v in (Var.enum("primary", "ana", "ben", "cover"),
                            Var.enum("cover", "ana", "ben", "cover"), Var.boolean("paged"))}


def value(text: str, vars: dict[str, Var], **state: Any) -> Any:
    return compile_expr(text, vars, None).eval(state)


def error(text: str, vars: dict[str, Var], expected: Any = "bool") -> str:
    with pytest.raises(SpecError) as info:
        compile_expr(text, vars, expected, where=Location("m.yaml", 7, 12),
                     what="guard of event 'e'")
    return str(info.value)


# --------------------------------------------------------------------------- precedence


@pytest.mark.parametrize("text, state, expected", [
    # spec 13: floor division, divisor-signed modulo, unary minus, left-assoc minus
    ("x // y", {"x": -3, "y": 2}, -2),
    ("x / y", {"x": -1, "y": 3}, -1),
    ("x % y", {"x": -4, "y": 3}, 2),
    ("x % -y", {"x": 1, "y": 3}, -2),
    ("-x % 3", {"x": 1, "y": 0}, 2),          # (-x) % 3, not -(x % 3) == -1
    ("x - 2 - 1", {"x": 3, "y": 0}, 0),        # (x - 2) - 1, not x - (2 - 1) == 2
    ("2 * x + 1", {"x": 3, "y": 0}, 7),         # (2 * x) + 1, not 2 * (x + 1) == 8
    ("x + y * 2", {"x": 1, "y": 3}, 7),
    ("x - y // 2 * 2", {"x": 5, "y": 3}, 3),    # * and // are left-assoc: (y // 2) * 2
    ("-x - 2 - -1", {"x": 2, "y": 0}, -3),
    ("abs(x) - x", {"x": -2, "y": 0}, 4),
    ("max(x, 1) * min(x, 2)", {"x": 3, "y": 0}, 6),
    ("-abs(x)", {"x": -3, "y": 0}, -3),
    ("(x + 7) % 9 - 4", {"x": 4, "y": 0}, -2),
])
def test_arithmetic_precedence(text: str, state: dict[str, int], expected: int) -> None:
    assert value(text, ARITH, **state) == expected


F, T = False, True


@pytest.mark.parametrize("text, state, expected", [
    # spec 14: implies is right-associative
    ("a implies b implies c", dict(a=F, b=F, c=F), T),   # left-assoc would give F
    # not binds tighter than and, and tighter than or
    ("not a and b or c", dict(a=T, b=T, c=F), F),        # not (a and b or c) would be T
    ("not a and b or c", dict(a=F, b=F, c=T), T),
    ("a or b and c", dict(a=T, b=F, c=F), T),            # (a or b) and c would be F
    # if-then-else is loosest: the else branch extends to the end
    ("if d then k > 1 else k == 0 or c", dict(d=F, k=2, c=T), T),
    ("if d then k > 1 else k == 0 or c", dict(d=T, k=0, c=T), F),
    # comparisons bind tighter than not
    ("not k == 1", dict(k=2), T),
    ("k * 2 - 1 >= k or (a != b) == c", dict(k=0, a=T, b=F, c=T), T),
    ("a implies b or c", dict(a=T, b=F, c=T), T),        # a implies (b or c)
    ("not not a", dict(a=T), T),
])
def test_logic_precedence(text: str, state: dict[str, Any], expected: bool) -> None:
    full = {"a": F, "b": F, "c": F, "d": F, "k": 0} | state
    assert value(text, LOGIC, **full) is expected


@pytest.mark.parametrize("name, valid", [
    ("13_arithmetic_operators", 300),
    ("14_logic_operators", 24),
    ("15_invoice_bare_enum_values", 14),
    ("16_oncall_quoted_values", 16),
])
def test_valid_state_counts_of_conformance_specs(name: str, valid: int) -> None:
    """states.valid from the expected results only comes out with the
    contract's precedence, floor semantics and name resolution; counted with
    both evaluators."""
    spec = load_spec(SPECS / f"{name}.yaml")
    grids = np.meshgrid(*[np.arange(v.size) for v in spec.vars], indexing="ij")
    digits = {v.name: g.ravel() for v, g in zip(spec.vars, grids)}
    cols = {v.name: (digits[v.name] + v.lo if v.kind == "int"
                     else digits[v.name].astype(bool) if v.kind == "bool" else digits[v.name])
            for v in spec.vars}
    ok = np.ones(grids[0].size, dtype=bool)
    for inv in spec.invariants:
        holds, err = inv.holds.expr.eval_vec(cols)
        assert err is None
        ok &= holds
    assert int(ok.sum()) == valid
    scalar = 0
    for combo in itertools.product(*[v.values for v in spec.vars]):
        state = dict(zip((v.name for v in spec.vars), combo))
        scalar += all(inv.holds.evaluate(spec.var_map, state) for inv in spec.invariants)
    assert scalar == valid


def test_comparisons_do_not_chain() -> None:
    message = error("k < 1 < 2", LOGIC)
    assert "m.yaml:7:18:" in message and "do not chain" in message
    assert value("(k < 1) == a", LOGIC, k=0, a=True) is True


def test_if_inside_an_operator_needs_parentheses() -> None:
    assert "parenthesized" in error("a and if b then c else d", LOGIC)
    assert value("a and (if b then c else d)", LOGIC, a=T, b=F, c=F, d=T) is True


# --------------------------------------------------------------------------- floor semantics


def test_division_and_modulo_follow_python_on_negatives() -> None:
    exprs = {op: compile_expr(f"x {op} y", ARITH, "int") for op in ("/", "//", "%")}
    xs, ys = np.meshgrid(np.arange(-7, 8), np.arange(-7, 8), indexing="ij")
    cols = {"x": xs.ravel(), "y": ys.ravel()}
    for op, expr in exprs.items():
        got, err = expr.eval_vec(cols)
        assert err is not None
        for i, (x, y) in enumerate(zip(cols["x"].tolist(), cols["y"].tolist())):
            if y == 0:
                assert err[i]
                with pytest.raises(EvalError, match="by zero"):
                    expr.eval({"x": x, "y": y})
                continue
            want = x % y if op == "%" else x // y
            assert not err[i]
            assert got[i] == want == expr.eval({"x": x, "y": y}), (op, x, y)


@pytest.mark.parametrize("text", [
    "y != 0 and x // y > 0",
    "y == 0 or x % y == 0",
    "y != 0 implies x / y >= -7",
    "if y == 0 then true else x // y == 1",
    "if y != 0 then x % y == 1 else false",
])
def test_errors_in_branches_not_taken_are_not_errors(text: str) -> None:
    expr = compile_predicate(text, ARITH).expr
    assert expr is not None
    got, err = expr.eval_vec({"x": np.array([3, 5, -2]), "y": np.array([0, 0, 0])})
    assert err is None or not err.any()
    assert [expr.eval({"x": x, "y": 0}) for x in (3, 5, -2)] == got.tolist()


def test_errors_in_branches_taken_are_errors() -> None:
    expr = compile_expr("y == 0 and x // y > 0", ARITH, "bool")
    _, err = expr.eval_vec({"x": np.array([1, 1]), "y": np.array([0, 1])})
    assert err is not None and err.tolist() == [True, False]
    with pytest.raises(EvalError):
        expr.eval({"x": 1, "y": 0})


def test_a_constant_division_by_zero_is_an_error_only_where_evaluated() -> None:
    expr = compile_expr("x > 0 and 1 // 0 == 0", ARITH, "bool")
    _, err = expr.eval_vec({"x": np.array([-1, 1]), "y": np.array([0, 0])})
    assert err is not None and err.tolist() == [False, True]


# --------------------------------------------------------------------------- eval_vec shape


def test_constants_broadcast_to_the_requested_length() -> None:
    for text, expected, dtype in (("true", True, np.bool_), ("2 + 3", 5, np.int64)):
        expr = compile_expr(text, ARITH, None)
        values, err = expr.eval_vec({}, n=4)
        assert values.dtype == dtype and values.tolist() == [expected] * 4 and err is None
        values, _ = expr.eval_vec({"x": np.arange(3)})
        assert values.shape == (3,)
    with pytest.raises(TypeError, match="n="):
        compile_expr("true", ARITH, None).eval_vec({})


def test_enum_constants_are_indices_and_results_are_fresh_arrays() -> None:
    assign = compile_expr("paid", INVOICE, INVOICE["status"])
    values, _ = assign.eval_vec({}, n=2)
    assert values.tolist() == [2, 2] and assign.eval({}) == "paid"
    column = np.array([0, 3])
    same = compile_expr("status", INVOICE, INVOICE["status"])
    values, _ = same.eval_vec({"status": column})
    values[0] = 1
    assert column.tolist() == [0, 3]


# --------------------------------------------------------------------------- bare names


def test_bare_enum_values_resolve_by_expected_type_spec_15() -> None:
    status = INVOICE["status"]
    assert compile_expr("paid", INVOICE, status).free_vars == frozenset()
    assert compile_expr("paid", INVOICE, "bool").free_vars == {"paid"}
    neq = compile_expr("status != paid or paid", INVOICE, "bool")
    assert neq.free_vars == {"status", "paid"}
    assert neq.eval({"status": "paid", "sent": F, "paid": F}) is False
    assert neq.eval({"status": "sent", "sent": F, "paid": F}) is True
    left = compile_expr("sent == status", INVOICE, "bool")
    assert left.free_vars == {"status"}
    assert left.eval({"status": "sent", "sent": F, "paid": F}) is True
    branch = compile_expr("if paid then paid else void", INVOICE, status)
    assert branch.free_vars == {"paid"} and branch.type == status.values
    assert branch.eval({"status": "draft", "sent": F, "paid": T}) == "paid"
    assert branch.eval({"status": "draft", "sent": F, "paid": F}) == "void"


def test_quoted_values_spec_16() -> None:
    cover = ROTA["cover"]
    assert compile_expr("'cover' != primary and not paged", ROTA, "bool").free_vars == {
        "primary", "paged"}
    swap = compile_expr("if cover == 'ana' then 'ben' else 'cover'", ROTA, cover)
    assert swap.eval({"primary": "ana", "cover": "ana", "paged": F}) == "ben"
    assert swap.eval({"primary": "ana", "cover": "ben", "paged": F}) == "cover"
    # Where no value is expected, `cover` is the variable.
    assert compile_expr("primary == 'ana' or cover == 'ana'", ROTA, "bool").free_vars == {
        "primary", "cover"}


@pytest.mark.parametrize("text, expected", [
    ("standby", "mode"),                        # spec 26
    ("primary == cover", "bool"),
    ("cover == primary", "bool"),
    ("if paged then cover else 'ana'", "primary"),
])
def test_a_var_that_is_a_value_of_its_own_enum_is_ambiguous(text: str, expected: str) -> None:
    vars = dict(ROTA) | {v.name: v for v in (Var.enum("mode", "idle", "mains", "standby"),
                                             Var.enum("standby", "idle", "mains", "standby"))}
    message = error(text, vars, vars[expected] if expected in vars else expected)
    assert "ambiguous name" in message and "quotes" in message


def test_two_enum_types_do_not_compare() -> None:
    vars = {v.name: v for v in (Var.enum("s", "a", "b"), Var.enum("t", "b", "a"),
                                Var.enum("u", "a", "b"))}
    assert "cannot compare enum [a, b] with enum [b, a]" in error("s == t", vars)
    assert compile_expr("s == u", vars, "bool").eval({"s": "a", "u": "a"}) is True


@pytest.mark.parametrize("text, expected, fragment, column", [
    ("staus == 'paid'", "bool", "unknown name 'staus' in guard of event 'e' "
                                "(did you mean 'status'; known vars: status, sent, paid)", 12),
    ("status == 'nope'", "bool", "'nope' is not a value of enum [draft, sent, paid, void]", 22),
    ("1 + 2", "bool", "int where bool expected: '1 + 2'", 12),
    ("sent + 1", "int", "bool where int expected: 'sent'", 12),
    ("sent", "int", "bool where int expected: 'sent'", 12),
    ("paid", "int", "bool where int expected", 12),
    ("status < 'paid'", "bool", "enum [draft, sent, paid, void] where int expected", 12),
    ("status == 1", "bool", "cannot compare enum [draft, sent, paid, void] with int", 19),
    ("'paid'", "bool", "quoted value 'paid' where bool expected", 12),
    ("'a' == 'b'", "bool", "quoted value 'a' needs an enum", 12),
    ("draft", "bool", "'draft' is a value of status: write status == 'draft'", 12),
    ("sent &&  paid", "bool", "unexpected character '&'", 17),
    ("(sent", "bool", "expected ')' to close '('", 17),
    ("sent and", "bool", "expected a value, found the end of the expression", 20),
    ("", "bool", "empty expression", 12),
    ("sent 'x", "bool", "unterminated quoted value", 17),
    ("foo(1)", "int", "unknown function 'foo'", 12),
    ("min(1)", "int", "min() takes 2 arguments, got 1", 12),
    ("12ab", "int", "malformed number", 12),
    ("if sent then 1 else paid", "int", "bool where int expected: 'paid'", 32),
])
def test_compile_errors_are_located_and_say_what_was_expected(
        text: str, expected: str, fragment: str, column: int) -> None:
    message = error(text, INVOICE, expected)
    assert message.startswith(f"m.yaml:7:{column}: "), message
    assert fragment in message


def test_without_pinpoint_errors_point_at_the_expression_start() -> None:
    with pytest.raises(SpecError) as info:
        compile_expr("sent and staus", INVOICE, "bool", where=Location("m.yaml", 4, 9),
                     pinpoint=False)
    assert str(info.value).startswith("m.yaml:4:9: unknown name 'staus'")


def test_yaml_scalars_are_expression_sources() -> None:
    assign = compile_assignment({"paid": True, "status": "paid", "sent": "not sent"}, INVOICE)
    assert assign.targets == ("paid", "status", "sent")
    out = assign.evaluate(INVOICE, {"status": "draft", "sent": True, "paid": False})
    assert out == {"paid": True, "status": "paid", "sent": False}
    assert compile_expr(-3, ARITH, "int").eval({}) == -3
    with pytest.raises(SpecError, match="expected an expression"):
        compile_expr(1.5, ARITH, "int")  # type: ignore[arg-type]


def test_compile_assignment_collects_every_problem() -> None:
    with pytest.raises(SpecError) as info:
        compile_assignment({"staus": "paid", "paid": "1", "sent": "x"}, INVOICE,
                           Location("m.yaml", 3, 5), what="apply of event 'e'")
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 3
    assert "assignment to unknown var 'staus' in apply of event 'e'" in messages[0]
    assert "int where bool expected" in messages[1]
    assert "unknown name 'x'" in messages[2]


def test_compiled_expr_satisfies_the_protocol() -> None:
    from convergent.spec.model import Expr

    expr = compile_expr("x + 1", ARITH, "int")
    assert isinstance(expr, Expr) and isinstance(expr, CompiledExpr)
    assert expr.text == "x + 1" and expr.type == "int" and not expr.can_fail


# --------------------------------------------------------------------------- properties
#
# Random typed trees are rendered with the fewest parentheses the documented
# precedence allows, compiled, and evaluated three ways: by an independent
# interpreter over the tree (the oracle), by eval, and by eval_vec over every
# state of a small domain.

PROP_VARS = {v.name: v for v in (Var.integer("x", -2, 2), Var.integer("y", -2, 2),
                                 Var.boolean("a"), Var.boolean("b"),
                                 Var.enum("s", "lo", "mid", "hi"),
                                 Var.enum("t", "lo", "mid", "hi"))}
LEVEL = {"if": 0, "implies": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "add": 6, "mul": 7,
         "neg": 8, "atom": 9}
CMP = ("==", "!=", "<", "<=", ">", ">=")


def node(kind: str, *args: Any) -> tuple[Any, ...]:
    return (kind, *args)


def int_trees(depth: int) -> st.SearchStrategy[tuple[Any, ...]]:
    leaves = st.one_of(st.builds(node, st.just("lit"), st.integers(0, 3)),
                       st.builds(node, st.just("var"), st.sampled_from(["x", "y"])))
    if depth == 0:
        return leaves
    sub, cond = int_trees(depth - 1), bool_trees(depth - 1)
    return st.one_of(
        leaves,
        st.builds(node, st.just("neg"), sub),
        st.builds(node, st.sampled_from(["+", "-", "*", "/", "//", "%"]), sub, sub),
        st.builds(node, st.sampled_from(["min", "max"]), sub, sub),
        st.builds(node, st.just("abs"), sub),
        st.builds(node, st.just("if"), cond, sub, sub),
    )


def anchored(tree: tuple[Any, ...]) -> bool:
    """Whether an enum tree has a type of its own (a var somewhere it can
    come from); a lone quoted value needs the other side to give it one."""
    if tree[0] == "var":
        return True
    return tree[0] == "if" and (anchored(tree[2]) or anchored(tree[3]))


def enum_trees(depth: int) -> st.SearchStrategy[tuple[Any, ...]]:
    leaves = st.one_of(st.builds(node, st.just("var"), st.sampled_from(["s", "t"])),
                       st.builds(node, st.just("str"), st.sampled_from(["lo", "mid", "hi"])))
    if depth == 0:
        return leaves
    return st.one_of(leaves, st.builds(node, st.just("if"), bool_trees(depth - 1),
                                       enum_trees(depth - 1), enum_trees(depth - 1)))


def bool_trees(depth: int) -> st.SearchStrategy[tuple[Any, ...]]:
    leaves = st.one_of(st.builds(node, st.just("lit"), st.booleans()),
                       st.builds(node, st.just("var"), st.sampled_from(["a", "b"])))
    if depth == 0:
        return leaves
    sub, num, enum = bool_trees(depth - 1), int_trees(depth - 1), enum_trees(depth - 1)
    return st.one_of(
        leaves,
        st.builds(node, st.just("not"), sub),
        st.builds(node, st.sampled_from(["and", "or", "implies"]), sub, sub),
        st.builds(node, st.sampled_from(CMP), num, num),
        st.builds(node, st.sampled_from(["==", "!="]), sub, sub),
        st.builds(node, st.sampled_from(["==", "!="]), enum, enum).filter(
            lambda t: anchored(t[1]) or anchored(t[2])),
        st.builds(node, st.just("if"), sub, sub, sub),
    )


def level(tree: tuple[Any, ...]) -> int:
    kind = tree[0]
    if kind in ("if", "implies", "or", "and", "not", "neg"):
        return LEVEL[kind]
    if kind in CMP:
        return LEVEL["cmp"]
    if kind in ("+", "-"):
        return LEVEL["add"]
    if kind in ("*", "/", "//", "%"):
        return LEVEL["mul"]
    return LEVEL["atom"]


def render(tree: tuple[Any, ...], need: int = 0) -> str:
    """Source text with parentheses only where the precedence requires them."""
    kind, *args = tree
    if kind == "lit":
        text = str(args[0]).lower()
    elif kind == "var":
        text = args[0]
    elif kind == "str":
        text = f"'{args[0]}'"
    elif kind in ("min", "max", "abs"):
        text = f"{kind}(" + ", ".join(render(a) for a in args) + ")"
    elif kind == "if":
        text = f"if {render(args[0])} then {render(args[1])} else {render(args[2])}"
    elif kind == "not":
        text = f"not {render(args[0], LEVEL['not'])}"
    elif kind == "neg":
        text = f"-{render(args[0], LEVEL['neg'])}"
    else:
        mine = level(tree)
        right_assoc = kind == "implies"
        non_assoc = kind in CMP
        left_need = mine + 1 if right_assoc or non_assoc else mine
        right_need = mine if right_assoc else mine + 1
        text = f"{render(args[0], left_need)} {kind} {render(args[1], right_need)}"
    return f"({text})" if level(tree) < need else text


def oracle(tree: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """An interpreter over the tree, independent of the parser and compiler."""
    kind, *args = tree
    if kind == "lit" or kind == "str":
        return args[0]
    if kind == "var":
        return state[args[0]]
    if kind == "if":
        return oracle(args[1], state) if oracle(args[0], state) else oracle(args[2], state)
    if kind == "and":
        return oracle(args[0], state) and oracle(args[1], state)
    if kind == "or":
        return oracle(args[0], state) or oracle(args[1], state)
    if kind == "implies":
        return (not oracle(args[0], state)) or oracle(args[1], state)
    if kind == "not":
        return not oracle(args[0], state)
    if kind == "neg":
        return -oracle(args[0], state)
    if kind == "abs":
        return abs(oracle(args[0], state))
    x, y = oracle(args[0], state), oracle(args[1], state)
    if kind in ("==", "!="):
        return (x == y) == (kind == "==")
    if kind in ("/", "//", "%"):
        if y == 0:
            raise ZeroDivisionError
        return x % y if kind == "%" else x // y
    return {"+": x + y, "-": x - y, "*": x * y, "min": min(x, y), "max": max(x, y),
            "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[kind]


ALL_STATES = [dict(zip(PROP_VARS, combo))
              for combo in itertools.product(*[v.values for v in PROP_VARS.values()])]
ALL_COLS = {name: np.array([PROP_VARS[name].digit(s[name]) if PROP_VARS[name].kind == "enum"
                            else s[name] for s in ALL_STATES])
            for name in PROP_VARS}


@settings(max_examples=150, deadline=None)
@given(st.one_of(bool_trees(3).map(lambda t: (t, "bool")),
                 int_trees(3).map(lambda t: (t, "int")),
                 enum_trees(2).map(lambda t: (t, PROP_VARS["s"]))))
def test_eval_and_eval_vec_agree_with_an_independent_interpreter(
        case: tuple[tuple[Any, ...], Any]) -> None:
    tree, expected = case
    text = render(tree)
    expr = compile_expr(text, PROP_VARS, expected)
    values, errors = expr.eval_vec(ALL_COLS)
    assert values.shape == (len(ALL_STATES),)
    assert errors is None or errors.shape == values.shape
    for i, state in enumerate(ALL_STATES):
        try:
            want = oracle(tree, state)
        except ZeroDivisionError:
            with pytest.raises(EvalError):
                expr.eval(state)
            assert errors is not None and errors[i], text
            continue
        assert expr.eval(state) == want, (text, state)
        assert errors is None or not errors[i], (text, state)
        got = values[i]
        if isinstance(expr.type, tuple):
            got = expr.type[got]
        assert got == want, (text, state)
