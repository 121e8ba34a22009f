"""Statechart definitions: semantics of the step, validation, verify, mermaid."""

from __future__ import annotations

import re

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.durable import (
    ChartError,
    EffectError,
    Statechart,
    assign,
    call,
    emit,
    to_mermaid,
    verify,
)
from convergent.durable._semantics import Config, initial_step, step

from .charts import order_chart


def run(chart, events, cfg=None):
    cfg = cfg or initial_step(chart).config
    steps = []
    for e in events:
        s = step(chart, cfg, e)
        steps.append(s)
        cfg = s.config
    return cfg, steps


# ---------------------------------------------------------------- semantics


def test_nested_entry_enters_initial_child_and_runs_actions_in_order() -> None:
    log: list[str] = []

    def note(tag):
        return call(lambda ctx: log.append(tag), name=tag)

    c = Statechart("n")
    c.state("a", exit=[note("exit a")])
    c.state("b", initial="b2", entry=[note("enter b")], exit=[note("exit b")])
    c.state("b1", parent="b", entry=[note("enter b1")])
    c.state("b2", parent="b", entry=[note("enter b2")], exit=[note("exit b2")])
    c.on("a", "go", "b", actions=[note("go")])
    c.on("b", "back", "a", actions=[note("back")])
    c.on("b2", "next", "b1")
    ch = c.build()
    cfg, _ = run(ch, ["go"])
    assert cfg.leaves(ch) == ["b2"]
    assert log == ["exit a", "go", "enter b", "enter b2"]
    log.clear()
    run(ch, ["back"], cfg)
    assert log == ["exit b2", "exit b", "back"]


def test_shallow_history_resumes_child_deep_history_resumes_grandchild() -> None:
    def chart(kind):
        c = Statechart("h")
        c.state("off")
        c.state("on", history=kind)
        c.state("x", parent="on", initial="x1")
        c.state("x1", parent="x")
        c.state("x2", parent="x")
        c.state("y", parent="on")
        c.on("off", "power", "on")
        c.on("on", "power", "off")
        c.on("x1", "step", "x2")
        c.on("x", "jump", "y")
        return c.build()

    shallow = chart("shallow")
    cfg, _ = run(shallow, ["power", "step", "power", "power"])
    assert cfg.leaves(shallow) == ["x1"], "shallow resumes x, whose child starts again"
    deep = chart("deep")
    cfg, _ = run(deep, ["power", "step", "power", "power"])
    assert cfg.leaves(deep) == ["x2"], "deep resumes the whole configuration"
    none = chart("none")
    cfg, _ = run(none, ["power", "step", "jump", "power", "power"])
    assert cfg.leaves(none) == ["x1"]
    cfg, _ = run(shallow, ["power", "step", "jump", "power", "power"])
    assert cfg.leaves(shallow) == ["y"]


def test_parallel_regions_and_done_event() -> None:
    ch = order_chart()
    cfg, steps = run(ch, ["submit", "authorized", "ship"])
    assert cfg.leaves(ch) == ["pack_wait", "inv_wait"]
    cfg, steps = run(ch, ["invoice", "pack"], cfg)
    assert cfg.leaves(ch) == ["done"]
    assert steps[-1].done and not steps[0].done
    assert [t.event for t in steps[-1].fired] == ["pack", "done.fulfilment"]
    assert steps[0].commands == (("mail.invoice", {}),)


def test_guards_select_among_transitions_and_false_guard_is_a_noop() -> None:
    ch = order_chart()
    cfg, _ = run(ch, ["submit", "declined", "submit", "declined", "submit"])
    assert cfg.vars["attempts"] == 3 and cfg.leaves(ch) == ["authorizing"]
    cfg, _ = run(ch, ["declined"], cfg)
    assert cfg.leaves(ch) == ["abandoned"]
    # ship from captured needs paid; at authorizing nothing handles ship
    cfg0, steps = run(ch, ["submit", "ship"])
    assert not steps[-1].changed and steps[-1].config == cfg0


def test_internal_self_and_targetless_transitions() -> None:
    counts: dict[str, int] = {"entry": 0, "exit": 0}

    def bump(k):
        return call(lambda ctx: counts.__setitem__(k, counts[k] + 1), name=k)

    c = Statechart("s")
    c.int("n", 0, 9)
    c.state("a", entry=[bump("entry")], exit=[bump("exit")], initial="a1")
    c.state("a1", parent="a")
    c.state("a2", parent="a")
    c.on("a", "tick", None, actions=[assign(n="n + 1")])
    c.on("a", "self", "a")
    c.on("a", "inner", "a2", internal=True)
    c.on("a", "outer", "a2")
    c.on("a", "quiet", "a", internal=True)
    ch = c.build()
    cfg, _ = run(ch, ["tick", "tick"])
    assert cfg.vars["n"] == 2 and counts == {"entry": 1, "exit": 0}
    cfg, _ = run(ch, ["self"], cfg)
    assert counts == {"entry": 2, "exit": 1}
    cfg, _ = run(ch, ["inner"], cfg)
    assert counts == {"entry": 2, "exit": 1} and cfg.leaves(ch) == ["a2"]
    cfg, _ = run(ch, ["outer"], cfg)
    assert counts == {"entry": 3, "exit": 2}
    cfg, _ = run(ch, ["quiet"], cfg)
    assert counts == {"entry": 3, "exit": 2}


def test_timers_are_armed_on_entry_and_cancelled_on_exit() -> None:
    ch = order_chart()
    start = initial_step(ch)
    assert start.armed == ()
    cfg, steps = run(ch, ["submit", "hold", "release"], start.config)
    assert [t.after for t in steps[0].armed] == [timedelta(minutes=30)]
    assert steps[1].cancelled == ("paying",) and steps[1].armed == ()
    assert steps[2].armed and steps[2].armed[0].source == "paying"
    timer_event = steps[2].armed[0].event
    s = step(ch, cfg, timer_event)
    assert s.config.leaves(ch) == ["abandoned"] and s.done


def test_int_assignments_saturate() -> None:
    ch = order_chart()
    cfg = initial_step(ch).config
    cfg = Config(cfg.memory, {**cfg.vars, "attempts": 3}, {})
    cfg, _ = run(ch, ["submit"], cfg)
    assert cfg.vars["attempts"] == 3


def test_failing_action_raises_effect_error_and_leaves_config_alone() -> None:
    c = Statechart("f")
    c.state("a")
    c.state("b")
    c.on("a", "go", "b", actions=[call(lambda ctx: 1 / 0, name="boom")])
    ch = c.build()
    cfg = initial_step(ch).config
    with pytest.raises(EffectError, match="boom.*ZeroDivisionError"):
        step(ch, cfg, "go")
    assert cfg.leaves(ch) == ["a"]


def test_emit_body_must_be_json() -> None:
    c = Statechart("j")
    c.state("a")
    c.state("b")
    c.on("a", "go", "b", actions=[emit("x.y", lambda ctx: {"bad": object()})])
    ch = c.build()
    with pytest.raises(EffectError, match="not JSON"):
        step(ch, initial_step(ch).config, "go")


@settings(max_examples=60)
@given(st.lists(st.sampled_from(["submit", "authorized", "declined", "hold", "release",
                                 "ship", "pack", "invoice", "flag", "clear"]), max_size=25))
def test_every_reached_configuration_is_well_formed(events: list[str]) -> None:
    """Property: whatever the events, exactly one child of each active
    compound is active, every region of an active parallel state is active,
    and a top-level final state absorbs everything after it."""
    ch = order_chart()
    cfg = initial_step(ch).config
    finished = False
    for e in events:
        s = step(ch, cfg, e)
        if finished:
            assert not s.changed
        cfg = s.config
        finished = finished or s.done
        active = set(cfg.active(ch))
        for name in active:
            d = ch.states[name]
            kids = [k for k in d.children if k in active]
            if d.kind == "compound":
                assert len(kids) == 1
            if d.kind == "parallel":
                assert kids == list(d.children)
        assert Config.from_dict(ch, cfg.to_dict()) == cfg


# ---------------------------------------------------------------- validation


def problems(build) -> list[str]:
    with pytest.raises(ChartError) as info:
        build()
    return [p.message for p in info.value.problems]


def test_missing_target_and_source_are_reported_together() -> None:
    c = Statechart("m")
    c.state("a")
    c.on("a", "go", "nowhere")
    c.on("ghost", "go", "a")
    msgs = problems(c.build)
    assert any("target 'nowhere'" in m for m in msgs)
    assert any("source 'ghost'" in m for m in msgs)


def test_unreachable_states_are_errors() -> None:
    c = Statechart("u")
    c.state("a")
    c.state("b")
    c.state("island", initial="i1")
    c.state("i1", parent="island")
    c.on("a", "go", "b")
    msgs = problems(c.build)
    assert "state 'island' is unreachable from the initial state" in msgs
    assert "state 'i1' is unreachable from the initial state" in msgs


def test_overlapping_guards_are_non_deterministic_with_a_witness() -> None:
    c = Statechart("d")
    c.int("n", 0, 5)
    c.state("a")
    c.state("b")
    c.state("x")
    c.on("a", "go", "b", guard="n > 1")
    c.on("a", "go", "x", guard="n < 3")
    msgs = problems(c.build)
    assert len(msgs) == 1 and "non-deterministic" in msgs[0] and "n=2" in msgs[0]


def test_exclusive_guards_and_priorities_are_deterministic() -> None:
    c = Statechart("d")
    c.int("n", 0, 5)
    c.state("a")
    c.state("b")
    c.state("x")
    c.on("a", "go", "b", guard="n > 2")
    c.on("a", "go", "x", guard="n <= 2")
    c.on("a", "maybe", "b", guard=lambda g: g.payload.get("ok") is True, priority=0)
    c.on("a", "maybe", "x", guard=lambda g: True, priority=1)
    assert c.build().name == "d"


def test_unguarded_pairs_and_opaque_guards_without_priority_are_errors() -> None:
    c = Statechart("d")
    c.state("a")
    c.state("b")
    c.on("a", "go", "b")
    c.on("a", "go", "a")
    c.on("a", "opaque", "b", guard=lambda g: True)
    c.on("a", "opaque", "a", guard=lambda g: False)
    msgs = problems(c.build)
    assert any("both unguarded" in m for m in msgs)
    assert any("opaque" in m for m in msgs)


def test_structural_mistakes_each_named() -> None:
    c = Statechart("s")
    c.state("a", history="deep")            # history without children
    c.state("f", final=True)
    c.parallel("p")
    c.state("only", parent="p")             # one region
    c.state("k", parent="nope")             # unknown parent
    c.on("a", "go", "f")
    c.on("f", "again", "a")                 # out of a final state
    c.on("a", "to_p", "p")
    c.after("a", timedelta(0), "f")         # non-positive timer
    c.on("a", "bad", "f", internal=True)    # internal to a non-descendant
    msgs = "\n".join(problems(c.build))
    for needle in ("history='deep' needs a compound", "final state 'f' has an outgoing",
                   "has 1 region", "parent='nope' is not declared",
                   "delay=datetime.timedelta(0)", "not inside it"):
        assert needle in msgs


def test_unknown_var_in_guard_and_assignment_are_located_problems() -> None:
    c = Statechart("v")
    c.bool("ok")
    c.state("a")
    c.state("b")
    c.on("a", "go", "b", guard="missing == 1", actions=[assign(nothere="true")])
    msgs = "\n".join(problems(c.build))
    assert "missing" in msgs and "nothere" in msgs


def test_orthogonal_conflict_without_priority_is_an_error() -> None:
    c = Statechart("o")
    c.parallel("p")
    c.state("r1", parent="p")
    c.state("r2", parent="p")
    c.state("out")
    c.on("r1", "go", "out")
    c.on("r2", "go", None)
    msgs = problems(c.build)
    assert any("orthogonal regions" in m for m in msgs)


# ---------------------------------------------------------------- verify, mermaid


def test_verify_passes_and_counts_reachable_configurations() -> None:
    report = verify(order_chart())
    assert report.ok, report.render_text()
    assert 10 < report.states.reachable < report.states.total


def test_verify_finds_independent_events_that_do_not_commute() -> None:
    c = Statechart("race")
    c.int("n", 0, 3)
    c.parallel("p")
    c.state("r1", parent="p")
    c.state("r2", parent="p")
    c.on("r1", "double", None, actions=[assign(n="n * 2")])
    c.on("r2", "inc", None, actions=[assign(n="n + 1")])
    c.independent("double", "inc")
    report = verify(c.build())
    assert not report.ok
    assert report.cc1 is not None and report.cc1.counterexample is not None
    assert report.cc1.failing_pairs == [("double", "inc")]


def test_verify_splits_events_with_opaque_guards() -> None:
    from convergent.durable import to_registry
    c = Statechart("o")
    c.state("a")
    c.state("b")
    c.state("x")
    c.on("a", "go", "b", guard=lambda g: g.payload.get("fast") is True, priority=0)
    c.on("a", "go", "x", priority=1)
    registry, names = to_registry(c.build())
    assert names["go"] == ["go__0", "go__1"]
    report = registry.check()
    assert report.states.reachable == 3  # a, b and x all reachable


def test_mermaid_shows_nesting_regions_history_and_timers() -> None:
    text = to_mermaid(order_chart())
    assert "stateDiagram-v2\n" in text
    ids = dict(re.findall(r'state "([^"<]+)(?:<br/>[^"]*)?" as (\w+)', text))
    assert f"state {ids['paying']} {{" in text and f'state "H" as h{ids["paying"]}' in text
    assert "\n        --\n" in text  # the two regions of fulfilment
    assert f"{ids['paying']} --> {ids['abandoned']} : after 30m" in text
    assert f"{ids['cart']} --> {ids['paying']} : submit #123;customer#125;" in text
    assert f"{ids['authorizing']} --> {ids['cart']} : declined [attempts #lt; 3]" in text


def test_graphviz_shows_nesting_and_regions_and_graphviz_reads_it() -> None:
    """The same picture as graphviz text: composite states and parallel
    regions as nested clusters, and the real ``dot`` accepts it."""
    import shutil
    import subprocess

    from convergent.durable import to_dot
    text = to_dot(order_chart())
    assert text.startswith("digraph ")
    assert text.count("subgraph cluster_") >= 3  # paying, fulfilment and its regions
    assert 'label="paying\\nstuck after 10m"' in text  # a cluster, with its threshold
    assert re.search(r'-> n\d+ \[ltail=cluster_k\d+, label="after 30m", style=dashed', text)
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed (scripts/install-test.sh installs it)")
    svg = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True,
                         check=True, timeout=60).stdout
    assert b"<svg" in svg and b"paying" in svg


def test_mermaid_escapes_what_a_chart_file_brings() -> None:
    """Role and state names are untrusted: they cannot open a block or a tag."""
    from convergent.durable import loads_chart
    chart = loads_chart("""
statechart: evil
initial: a
states:
  a:
    on:
      go:
        target: b
        roles: ["x\\n  state end {", "<img src=x onerror=alert(1)>"]
  b: {}
""")
    text = to_mermaid(chart)
    assert "<img" not in text and "state end {" not in text
