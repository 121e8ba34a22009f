"""Graph builders: the state graph (with repairs), its cap, the footprint
graph, a relational schema's graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convergent.engine.check import analyze
from convergent.spec.loader import load_spec
from convergent.viz import DiagramError, footprint_graph, graph_for, state_graph
from convergent.viz.schema import schema_graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _an(name: str):  # type: ignore[no-untyped-def]
    return analyze(load_spec(str(EXAMPLES / name)))


def test_state_graph_of_gsm_has_every_reachable_state_and_edge() -> None:
    an = _an("gsm_order.yaml")
    g = state_graph(an)
    assert g is not None and g.kind == "states"
    ids = {n.id for n in g.nodes}
    assert ids == {f"s{s}" for s in an.reach.tolist()}  # no invalid state on any run
    assert [n.id for n in g.nodes if n.initial] == [f"s{an.initial_id}"]
    edges = {(e.source, e.target): e.label for e in g.edges}
    # every transition that changes or keeps the state through a fired guard is drawn
    for e, name in enumerate(an.report.events):
        for s in an.reach.tolist():
            t = int(an.step[e][s])
            ce = an.compiled.events[e]
            if ce.fires[an.full.project(ce.space, np.array([s]))[0]]:
                assert name in edges[(f"s{s}", f"s{t}")].split(", ")
    assert all(e.style == "solid" for e in g.edges)


def test_repairs_are_dashed_and_invalid_states_marked() -> None:
    an = _an("bank_account.yaml")
    g = state_graph(an, max_states=1000)
    assert g is not None
    invalid = [n for n in g.nodes if n.kind == "invalid"]
    assert invalid, "place_hold at an approved account passes through an invalid state"
    repairs = [e for e in g.edges if e.style == "dashed"]
    assert repairs and all(e.label == "repair held_accounts_are_not_approved" for e in repairs)
    invalid_ids = {n.id for n in invalid}
    # every invalid node is left by a repair, and entered by an event
    assert {e.source for e in repairs} == invalid_ids
    assert invalid_ids <= {e.target for e in g.edges if e.style == "solid"}
    for n in invalid:
        assert "approval=approved" in n.lines and "hold=true" in n.lines


def test_cap_falls_back_to_the_footprint_graph_with_a_note() -> None:
    an = _an("gsm_order.yaml")
    assert state_graph(an, max_states=5) is None
    g = graph_for(an, max_states=5)
    assert g.kind == "footprint"
    assert "more than 5 nodes" in g.note and "18 reachable" in g.note
    with pytest.raises(DiagramError, match="raise --max-states"):
        graph_for(an, max_states=5, kind="states")


def test_footprint_graph_follows_the_report() -> None:
    an = _an("gsm_order.yaml")
    g = footprint_graph(an.report, [v.name for v in an.compiled.m.vars])
    label = {n.id: n.label for n in g.nodes}
    arcs = {(label[e.source], label[e.target], e.style) for e in g.edges}
    for ev, fp in an.report.footprints.items():
        for r in fp["reads"]:
            assert (r, ev, "solid") in arcs
        for w in fp["writes"]:
            assert (ev, w, "bold") in arcs
    assert ("no_ship_unpaid", "status", "dashed") in arcs
    fails = [e for e in g.edges if e.label == "CC1 fails"]
    assert {(label[e.source], label[e.target]) for e in fails} == {("ship_item", "restock")}
    assert {n.label for n in g.nodes if n.emphasis} == {"ship_item", "restock"}


def test_wfc_failure_draws_footprints() -> None:
    from convergent.spec.registry import Registry
    r = Registry("loops")
    x = r.bool("x")
    y = r.bool("y")
    r.invariant("a", holds=lambda s: not s[x], repair=lambda s: s.set(x, False).set(y, True))
    r.invariant("b", holds=lambda s: not s[y], repair=lambda s: s.set(y, False).set(x, True))
    r.event("go", apply=lambda s: s.set(x, True))
    an = analyze(r.spec())
    assert an.step is None
    g = graph_for(an)
    assert g.kind == "footprint" and "WFC fails" in g.note


def test_schema_graph() -> None:
    from convergent.relational import Schema, State
    schema = Schema.of(Start=State(add=("Fetching",)),
                       Fetching=State(require=("Start",), remove=("Idle",), multi=True),
                       Idle=State(auto=True, after=("Start",)), name="worker")
    g = schema_graph(schema)
    label = {n.id: n.lines[0] for n in g.nodes}
    rels = {(label[e.source], e.label, label[e.target]) for e in g.edges}
    assert rels == {("Start", "add", "Fetching"), ("Fetching", "require", "Start"),
                    ("Fetching", "remove", "Idle"), ("Idle", "after", "Start")}
    assert set(label.values()) == {"Start", "Fetching", "Idle", "Exception"}
    assert {label[n.id] for n in g.nodes if n.emphasis} == {"Idle"}
    assert [e.arrow for e in g.edges if e.label == "remove"] == ["tee"]


def test_a_machine_too_big_to_enumerate_gets_its_footprints(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import convergent.viz.select as select
    spec = load_spec(str(EXAMPLES / "gsm_order.yaml"))
    monkeypatch.setattr(select, "ENUMERATE_UP_TO", 10)
    monkeypatch.setattr(select, "analyze", lambda *a, **k: pytest.fail("enumerated"))
    g = select.graph_for_spec(spec)
    assert g.kind == "footprint" and "48 states" in g.note
    with pytest.raises(DiagramError, match="48 states"):
        select.graph_for_spec(spec, kind="states")
    monkeypatch.undo()
    assert select.graph_for_spec(spec).kind == "states"


def test_neighbourhood_of_a_state() -> None:
    from convergent.viz.states import neighborhood_graph
    from convergent.viz.stepper import Stepper
    an = _an("bank_account.yaml")
    st = Stepper(an)
    approved = st.encode({"balance": 3, "hold": False, "approval": "approved"})
    g = neighborhood_graph(st, approved, predecessors=[("approve", 42)])
    centre = g.node(f"s{approved}")
    assert centre.emphasis
    by_label = {e.label: e for e in g.edges}
    hold = by_label["place_hold"]
    assert g.node(hold.target).kind == "invalid"
    repair = by_label["repair held_accounts_are_not_approved"]
    assert repair.source == hold.target and repair.style == "dashed"
    assert int(repair.target[1:]) == int(an.step[st.event_index("place_hold")][approved])
    assert by_label["approve"].source == "s42"
    fired = {name for e, name in enumerate(st.events) if st.apply(e, approved).fired}
    drawn = {n for e in g.edges if e.style == "solid" and e.source == f"s{approved}"
             for n in e.label.split(", ")}
    assert drawn == fired
