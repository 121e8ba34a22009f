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
