"""Repair synthesis (issue 16, item 2): the least invasive constant repairs
that make a machine converge, exhaustive over a stated space; never an
"unknown" inside it."""

from __future__ import annotations

import itertools

import pytest

from convergent.engine.check import check
from convergent.engine.synthesis import _by_cost, _with_repairs, candidates, synthesize
from convergent.errors import SpecError
from convergent.spec.loader import loads_spec

ORDER = """
machine: order
vars:
  status: {enum: [pending, paid, shipped, cancelled]}
  paid: bool
  refunded: bool
invariants:
  - name: no_ship_unpaid
    holds: status != 'shipped' or paid
    repair: {paid: false}          # a placeholder: synthesis ignores it
  - name: no_refund_unpaid
    holds: not refunded or paid
    repair: {paid: false}
events:
  pay: {guard: "status == 'pending'", apply: {status: paid, paid: true}}
  ship: {guard: "status == 'paid'", apply: {status: shipped}}
  cancel: {guard: "status != 'shipped'", apply: {status: cancelled}}
  refund: {apply: {refunded: true}}
independent:
  - [ship, refund]
  - [pay, refund]
"""


def _brute(spec, names, max_vars=2):
    """Every combination, checked: the cheapest passing cost (or None)."""
    lists = [candidates(spec, next(i for i in spec.invariants if i.name == n),
                        max_vars=max_vars) for n in names]
    best = None
    for combo in itertools.product(*lists):
        c = (sum(x.cost[0] for x in combo), sum(x.cost[1] for x in combo))
        r = check(_with_repairs(spec, dict(zip(names, combo))), method="enumerate")
        if r.ok and (best is None or c < best):
            best = c
    return best


def test_finds_the_least_invasive_repairs_that_converge() -> None:
    spec = loads_spec(ORDER)
    res = synthesize(spec)
    assert res.found
    assert res.report is not None and res.report.ok
    assert check(res.spec).ok                         # verified again, independently
    cost = (sum(c.cost[0] for c in res.repairs.values()),
            sum(c.cost[1] for c in res.repairs.values()))
    assert cost == _brute(spec, ["no_ship_unpaid", "no_refund_unpaid"])
    for c in res.repairs.values():                    # each repair fixes its invariant
        assert len(c.values) == 1


def test_reports_none_in_the_space_with_a_witness() -> None:
    """x must skip the value 1 while inc and dec race: wherever a constant
    repair sends x, inc-then-dec and dec-then-inc disagree next to it."""
    text = """
machine: skip_one
vars:
  x: {int: [0, 3]}
invariants:
  - name: not_one
    holds: x != 1
    repair: {x: 0}
events:
  inc: {apply: {x: 'min(x + 1, 3)'}}
  dec: {apply: {x: 'max(x - 1, 0)'}}
independent:
  - [inc, dec]
"""
    spec = loads_spec(text)
    # (in the reachable scope x := 0 "works" vacuously: x never leaves 0)
    assert synthesize(spec).found
    res = synthesize(spec, scope="all")
    assert not res.found and res.tried == res.space == 3
    assert res.witness is not None and not res.witness.ok
    assert res.witness.cc1 is not None and res.witness.cc1.counterexample is not None
    assert "none of the 3 combinations" in res.reason


def test_agrees_with_brute_force_on_two_invariants() -> None:
    text = """
machine: two
vars:
  x: {int: [0, 3]}
  a: bool
invariants:
  - name: low_when_a
    holds: not a or x < 2
    repair: {x: 0}
  - name: high_when_not_a
    holds: a or x >= 2
    repair: {x: 3}
events:
  flip: {apply: {a: not a}}
  up: {apply: {x: 'min(x + 1, 3)'}}
independent:
  - [flip, up]
"""
    spec = loads_spec(text)
    names = ["low_when_a", "high_when_not_a"]
    for allowed in (None, {"low_when_a": ["x"], "high_when_not_a": ["x"]}):
        res = synthesize(spec, max_vars=1, allowed=allowed)
        lists = [candidates(spec, i, max_vars=1, allowed=(allowed or {}).get(i.name))
                 for i in spec.invariants]
        passing = []
        for combo in itertools.product(*lists):
            if check(_with_repairs(spec, dict(zip(names, combo))), method="enumerate").ok:
                passing.append((sum(c.cost[0] for c in combo), sum(c.cost[1] for c in combo)))
        assert res.found == bool(passing)
        if res.found:
            assert (sum(c.cost[0] for c in res.repairs.values()),
                    sum(c.cost[1] for c in res.repairs.values())) == min(passing)


def test_order_of_search_is_by_cost_and_complete() -> None:
    spec = loads_spec(ORDER)
    lists = [candidates(spec, inv) for inv in spec.invariants]
    seen = list(_by_cost(lists))
    assert len(seen) == len(lists[0]) * len(lists[1])
    assert len(set(seen)) == len(seen)
    costs = [(sum(c.cost[0] for c in x), sum(c.cost[1] for c in x)) for x in seen]
    assert costs == sorted(costs)


def test_a_space_too_big_is_refused_not_guessed() -> None:
    with pytest.raises(SpecError, match="combinations"):
        synthesize(loads_spec(ORDER), max_combinations=3)
