"""The minimal coordination plan is exact: checked against every subset of
morphisms on random small authority graphs."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from convergent import Registry
from convergent.federation import Federation
from convergent.federation.check import topological_order
from convergent.federation.plan import minimal_coordination_plan, shortest_cycle

from . import fixtures


def _graph(n: int, edges: list[tuple[int, int]]) -> Federation:
    fed = Federation("g")
    for i in range(n):
        r = Registry(f"n{i}")
        for k in range(len(edges) + 1):
            r.bool(f"v{k}")
        fed.registry(r)
    for k, (a, b) in enumerate(edges):
        fed.morphism(f"n{a}", f"n{b}", shared=[f"v{k}"], map={f"v{k}": "v0"}, name=f"m{k}")
    return fed


def _acyclic_without(n: int, edges: list[tuple[int, int]], removed: set[int]) -> bool:
    kept = [(f"m{k}", f"n{a}", f"n{b}") for k, (a, b) in enumerate(edges) if k not in removed]
    return shortest_cycle([f"n{i}" for i in range(n)], kept) is None


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 5).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                         min_size=1, max_size=8))))
def test_plan_is_minimal_and_leaves_the_rest_acyclic(graph: tuple[int, list]) -> None:
    n, edges = graph
    spec = _graph(n, edges).spec()
    plan = minimal_coordination_plan(spec)
    removed = {int(name[1:]) for name in plan.coordinate}
    assert _acyclic_without(n, edges, removed)
    smallest = next(k for k in range(len(edges) + 1)
                    if any(_acyclic_without(n, edges, set(c))
                           for c in itertools.combinations(range(len(edges)), k)))
    assert len(plan.coordinate) == smallest
    order, cycle = topological_order(spec)
    assert (order is None) == (smallest > 0) and (cycle == ()) == (smallest == 0)


def test_the_acyclic_check_reports_a_minimal_plan() -> None:
    report = fixtures.cyclic(cycle=True).check()
    (res,) = report.results("ACYCLIC")
    assert res.details is not None and len(res.details["coordination_plan"]) == 1
    # a triangle with a chord: one morphism suffices, and it is the shared one
    spec = _graph(3, [(0, 1), (1, 2), (2, 0), (1, 0)]).spec()
    assert minimal_coordination_plan(spec).coordinate in (("m0",),)
