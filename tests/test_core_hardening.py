"""Issue 11, soundness: each class of wrong output found from outside, held
to the brute-force reference (tests/reference.py) and to hand-worked answers.

Every test here failed on the engine before its fix.
"""

from __future__ import annotations

import pytest

from convergent.errors import BuildError, SpecError
from convergent.spec.loader import loads_spec
from convergent.spec.model import Var
from reference import reference_check
from strategies import make_spec
from test_soundness import assert_engine_matches, engine_check


def _verify(spec, scope: str = "reachable", strict: bool = False) -> dict:
    got = assert_engine_matches(spec, scope, strict, check=engine_check())
    assert got is not None, "unexpected BuildError on both sides"
    return got


# --------------------------------------------------------------------------
# 1. a cycle is proven (a state revisited), never assumed from a step budget
# --------------------------------------------------------------------------

def _long_chain_yaml(top: int, with_cycle: bool) -> str:
    x_on = ("  - name: x_on\n    holds: not (loop and not x)\n    repair: {x: true}\n"
            if with_cycle else "")
    return f"""
machine: longchain
vars:
  n: {{int: [0, {top}]}}
  loop: bool
  x: bool
invariants:
  - name: count_up
    holds: n == {top} or loop
    repair: {{n: n + 1}}
  - name: x_off
    holds: not (loop and x)
    repair: {{x: false}}
{x_on}events:
  start:
    apply: {{loop: true}}
"""


def _long_chain_python(top: int, with_cycle: bool):
    invs = [("count_up", lambda s: s["n"] == top or s["loop"], lambda s: s.set("n", s["n"] + 1)),
            ("x_off", lambda s: not (s["loop"] and s["x"]), lambda s: s.set("x", False))]
    if with_cycle:
        invs.append(("x_on", lambda s: not (s["loop"] and not s["x"]),
                     lambda s: s.set("x", True)))
    return make_spec([Var.integer("n", 0, top), Var.boolean("loop"), Var.boolean("x")],
                     invariants=invs, events=[("start", None, lambda s: s.set("loop", True))],
                     independent=[])


@pytest.mark.parametrize("form", ["yaml", "python"])
@pytest.mark.parametrize("top", [3, 63, 64, 65, 70, 300])
def test_long_repair_chain_beside_a_real_cycle(form: str, top: int) -> None:
    """The chain n -> n+1 -> ... -> top terminates however long it is; only
    the x on/off states loop. The counterexample is the real cycle, reached by
    [start] from the initial state's normal form, never a valid state with an
    empty trace."""
    spec = (loads_spec(_long_chain_yaml(top, True)) if form == "yaml"
            else _long_chain_python(top, True))
    got = _verify(spec)
    cex = got["wfc"]["counterexample"]
    assert got["wfc"]["ok"] is False
    assert cex["trace"] == ["start"]
    assert cex["state"]["loop"] is True
    assert {s["x"] for s in cex["cycle"]} == {True, False}
    assert sorted(cex["repairs"]) == ["x_off", "x_on"]


@pytest.mark.parametrize("top", [63, 64, 65, 500])
def test_long_repair_chain_alone_terminates(top: int) -> None:
    spec = loads_spec(_long_chain_yaml(top, False))
    got = _verify(spec)
    assert got["wfc"]["ok"] is True
    # from n=0 with loop off: top repairs of count_up
    assert got["wfc"]["max_depth"] == top


# --------------------------------------------------------------------------
# 2, 3. spec arithmetic means mathematical integers: no wrapping, no crash
# --------------------------------------------------------------------------

import itertools  # noqa: E402

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convergent.spec import compile_expr  # noqa: E402

BIG = [0, 1, 2, 3, 7, 3037000500, 2**31, 2**32 + 1, 2**62, 2**63 - 1, 2**63, 2**64 + 3,
       10**20, 10**30]
LOWS = [0, -3, 2**62 - 2, 2**63 - 4, -(2**63), -(2**62), 2**31]


def _exact(node, env):
    """Plain-Python meaning of a generated tree (the contract's semantics)."""
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        return env[node[1]]
    if kind == "neg":
        return -_exact(node[1], env)
    if kind == "abs":
        return abs(_exact(node[1], env))
    if kind in ("min", "max"):
        return (min if kind == "min" else max)(_exact(node[1], env), _exact(node[2], env))
    if kind == "if":
        return _exact(node[2], env) if _exact(node[1], env) else _exact(node[3], env)
    if kind == "cmp":
        a, b = _exact(node[2], env), _exact(node[3], env)
        return {"<": a < b, "==": a == b, ">=": a >= b}[node[1]]
    op, a, b = node[1], _exact(node[2], env), _exact(node[3], env)
    if op in ("//", "%") and b == 0:
        raise ZeroDivisionError
    return {"+": a + b, "-": a - b, "*": a * b, "//": a // b if b else 0,
            "%": a % b if b else 0}[op]


def _text(node) -> str:
    kind = node[0]
    if kind == "lit":
        return str(node[1]) if node[1] >= 0 else f"(-{-node[1]})"
    if kind == "var":
        return node[1]
    if kind == "neg":
        return f"(-{_text(node[1])})"
    if kind in ("abs", "min", "max"):
        return f"{kind}({', '.join(_text(a) for a in node[1:])})"
    if kind == "if":
        return f"(if {_text(node[1])} then {_text(node[2])} else {_text(node[3])})"
    return f"({_text(node[2])} {node[1]} {_text(node[3])})"


def _int_trees():
    leaves = st.one_of(st.sampled_from(BIG).map(lambda v: ("lit", v)),
                       st.sampled_from(BIG).map(lambda v: ("lit", -v)),
                       st.sampled_from(["x", "y"]).map(lambda n: ("var", n)))

    def extend(inner):
        cmp = st.tuples(st.just("cmp"), st.sampled_from(["<", "==", ">="]), inner, inner)
        return st.one_of(
            st.tuples(st.just("bin"), st.sampled_from(["+", "-", "*", "//", "%"]), inner, inner),
            st.tuples(st.just("neg"), inner), st.tuples(st.just("abs"), inner),
            st.tuples(st.sampled_from(["min", "max"]), inner, inner),
            st.tuples(st.just("if"), cmp, inner, inner))

    return st.recursive(leaves, extend, max_leaves=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_int_trees(), lx=st.sampled_from(LOWS), ly=st.sampled_from(LOWS))
def test_vectorized_arithmetic_is_exact(tree, lx, ly) -> None:
    """eval_vec (what the engine tabulates) equals mathematical integer
    arithmetic at every state, errors included, however far intermediate
    results pass 64 bits."""
    xs, ys = Var.integer("x", lx, lx + 3), Var.integer("y", ly, ly + 2)
    expr = compile_expr(_text(tree), [xs, ys], "int")
    grid = list(itertools.product(xs.values, ys.values))
    cols = {"x": np.array([g[0] for g in grid], dtype=np.int64),
            "y": np.array([g[1] for g in grid], dtype=np.int64)}
    values, err = expr.eval_vec(cols)
    for k, (x, y) in enumerate(grid):
        try:
            want = _exact(tree, {"x": x, "y": y})
        except ZeroDivisionError:
            assert err is not None and err[k], (x, y)
            continue
        assert err is None or not err[k], (x, y)
        assert int(values[k]) == want, (_text(tree), x, y, values[k], want)
        assert expr.eval({"x": x, "y": y}) == want


_WIDE_YAML = """
machine: wide
vars:
  n: {{int: [{lo}, {hi}]}}
  f: bool
invariants:
  - name: rule
    holds: {holds}
    repair: {{f: false}}
events:
  go: {{apply: {{f: true}}}}
  bump: {{apply: {{n: {bump}}}}}
"""


@pytest.mark.parametrize("lo,hi,holds,bump", [
    (0, 3, "not f or n * 3037000500 * 3037000500 > 0", "n + 1"),
    (0, 3, "not f or n * 4611686018427387904 * 2 > 0", "n + 1"),
    (-(2**63), -(2**63) + 2, "not f or abs(n) < 9223372036854775807", "n - 1"),
    (2**62, 2**62 + 2, "not f or n + n < 9223372036854775807", "n + 1"),
    (0, 3, "not f or n * 100000000000000000000 < 250000000000000000000", "n + 1"),
    (0, 3, "not f or n < 3", "100000000000000000000"),
    (0, 3, "not f or n < 3", "n - 100000000000000000000"),
    (-(2**63), -(2**63) + 3, "not f or n * n > 0", "n * 3 // 3"),
])
@pytest.mark.parametrize("form", ["yaml", "python"])
def test_wide_arithmetic_agrees_with_python_lambdas(lo, hi, holds, bump, form) -> None:
    """Each rule is checked as spec text (vectorized, exact) and as Python
    lambdas (traced, Python ints): same report, and the reference agrees."""
    text = _WIDE_YAML.format(lo=lo, hi=hi, holds=holds, bump=bump)
    spec = loads_spec(text)
    if form == "python":
        hold_expr = spec.invariants[0].holds.expr
        bump_expr = spec.events[1].apply.exprs[0]
        spec = make_spec(
            [Var.integer("n", lo, hi), Var.boolean("f")],
            invariants=[("rule", lambda s: hold_expr.eval({"n": s["n"], "f": s["f"]}),
                         lambda s: s.set("f", False))],
            events=[("go", None, lambda s: s.set("f", True)),
                    ("bump", None, lambda s: s.set("n", bump_expr.eval({"n": s["n"]})))],
            independent=[("go", "bump")])
    _verify(spec)
    _verify(spec, "all", True)


@pytest.mark.parametrize("decl", ["{int: [0, 100000000000000000000]}",
                                  "{int: [-100000000000000000000, 0]}",
                                  "{int: [9223372036854775807, 9223372036854775808]}"])
def test_int_range_past_64_bits_is_a_located_error(decl: str) -> None:
    with pytest.raises(SpecError) as info:
        loads_spec(f"machine: m\nvars:\n  n: {decl}\nevents:\n  e: {{apply: {{n: n}}}}\n",
                   filename="big.yaml")
    problem = info.value.problems[0]
    assert problem.file == "big.yaml" and problem.line == 3 and "64 bits" in problem.message
    with pytest.raises(SpecError, match="64 bits"):
        Var.integer("n", 2**63, 2**63 + 1)


# --------------------------------------------------------------------------
# 4. findings.saturating: exact, whatever the footprint
# --------------------------------------------------------------------------

def _sat_spec(apply_c: str, *, form: str, repair: bool = False):
    """c in 0..3 and a bool f. ``apply_c`` is the value assigned to c (by the
    event ``go``, or by the repair of ``needs_f`` when ``repair``)."""
    if repair:
        text = f"""
machine: sat
vars:
  c: {{int: [0, 3]}}
  f: bool
  g: bool
invariants:
  - name: needs_f
    holds: f or not g
    repair: {{f: true, c: '{apply_c}'}}
events:
  go: {{apply: {{g: true}}}}
  bump: {{apply: {{c: 'min(c + 1, 3)'}}}}
independent: []
"""
    else:
        text = f"""
machine: sat
vars:
  c: {{int: [0, 3]}}
  f: bool
events:
  go: {{apply: {{f: true, c: '{apply_c}'}}}}
  bump: {{apply: {{c: 'min(c + 1, 3)'}}}}
independent: []
"""
    return loads_spec(text)


def _brute_saturations(spec) -> set[tuple[str, int]]:
    """(rule, c) for every reachable run step where an assignment to c falls
    outside 0..3: events at reachable states, repairs on the way to nf."""
    ref = reference_check(spec)
    m = ref.machine
    found = set()
    var_c = spec.vars[0]
    states = sorted(ref.bfs_depth)
    for sid in states:
        st = m.decode(sid)
        for e in spec.events:
            if e.guard is not None and not e.guard.evaluate({v.name: v for v in spec.vars}, st):
                continue
            vals = e.apply.evaluate({v.name: v for v in spec.vars}, st)
            if "c" in vals and not var_c.lo <= vals["c"] <= var_c.hi:
                found.add((e.name, st["c"]))
            cur = m.raw(spec.events.index(e), sid, True)
            seen = set()
            while not ref.valid[cur] and cur not in seen:
                seen.add(cur)
                cs = m.decode(cur)
                inv = spec.invariants[ref.first_failing[cur]]
                rv = inv.repair.evaluate({v.name: v for v in spec.vars}, cs)
                if "c" in rv and not var_c.lo <= rv["c"] <= var_c.hi:
                    found.add((inv.name, cs["c"]))
                cur = ref.rho[cur]
    return found


@pytest.mark.parametrize("repair", [False, True])
@pytest.mark.parametrize("apply_c,saturates", [
    ("if c == 3 then 7 else c", True),    # clamps back to 3: c neither read nor changed
    ("if c == 0 then -1 else c", True),   # clamps back to 0 at c=0 only
    ("c", False),
    ("min(c + 1, 3)", False),
    ("c + 5", True),
])
def test_saturation_finding_is_exact(apply_c: str, saturates: bool, repair: bool) -> None:
    spec = _sat_spec(apply_c, form="yaml", repair=repair)
    got = _verify(spec)
    want = _brute_saturations(spec)
    sat = got["findings"]["saturating"]
    assert bool(sat) == saturates == bool(want), (sat, want)
    for d in sat:
        assert d["vars"] == ["c"], d
        rule = d.get("event") or d.get("repair")
        assert (rule, d["state"]["c"]) in want, (d, want)
        assert not 0 <= d["values"]["c"] <= 3


# --------------------------------------------------------------------------
# 5. non-deterministic rules are refused; nothing hidden is cached
# --------------------------------------------------------------------------

import random  # noqa: E402

from convergent import Registry  # noqa: E402


def _counter_machine(guard):
    r = Registry("nd")
    x = r.int("x", 0, 3)
    r.event("inc", guard=guard, apply=lambda s: s.set(x, min(s[x] + 1, 3)))
    r.event("reset", apply=lambda s: s.set(x, 0))
    return r


def test_random_guard_is_refused() -> None:
    rng = random.Random(7)
    r = _counter_machine(lambda s: rng.random() < 0.5)
    with pytest.raises(BuildError, match="guard of event 'inc' is not deterministic"):
        r.check()


def test_call_counter_guard_is_refused() -> None:
    calls = {"n": 0}

    def guard(s):
        calls["n"] += 1
        return calls["n"] <= 4   # true on the first pass over the 4 states only

    with pytest.raises(BuildError, match="not deterministic"):
        _counter_machine(guard).check()


def test_rule_reading_different_vars_on_a_second_run_is_refused() -> None:
    r = Registry("nd2")
    a, b = r.bool("a"), r.bool("b")
    seen = []

    def apply(s):
        seen.append(1)
        # first pass reads only a; later calls read b too
        if len(seen) > 2 and s[b]:
            return s.set(a, False)
        return s.set(a, not s[a])

    r.event("flip", apply=apply)
    r.event("set_b", apply=lambda s: s.set(b, True))
    with pytest.raises(BuildError, match="flip.*not deterministic"):
        r.check()


def test_registry_does_not_reuse_a_report_when_captured_data_changes() -> None:
    limit = {"v": 3}
    r = Registry("captured")
    x = r.int("x", 0, 3)
    r.invariant("cap", holds=lambda s: s[x] <= limit["v"], repair=lambda s: s.set(x, 0))
    r.event("inc", apply=lambda s: s.set(x, min(s[x] + 1, 3)))
    first = r.check()
    assert first.states.valid == 4
    limit["v"] = 1
    second = r.check()
    assert second.states.valid == 2
    machine = r.build()
    assert machine.apply(machine.apply(machine.initial, "inc"), "inc") == machine.encode({"x": 0})


@pytest.mark.parametrize("code", [0, None, 1])
def test_system_exit_in_a_rule_is_a_build_error(code) -> None:
    def guard(s):
        if s["x"] == 2:
            raise SystemExit(code)
        return True

    r = _counter_machine(guard)
    with pytest.raises(BuildError, match=r"SystemExit.*x=2"):
        r.check()


def test_keyboard_interrupt_in_a_rule_propagates() -> None:
    def guard(s):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _counter_machine(guard).check()


def test_deterministic_rules_that_raise_are_not_called_nondeterministic() -> None:
    """A rule that fails at some states, the same way each time, is judged by
    what it computes (the replay compares exception types)."""
    r = Registry("raises")
    x = r.int("x", 0, 3)
    r.event("inc", apply=lambda s: s.set(x, 6 // (s[x] - 2)))
    with pytest.raises(BuildError) as info:
        r.check()
    assert "not deterministic" not in str(info.value)
    assert "inc" in str(info.value)
