"""Step plans (the memoized structure of finite steps) never change what a
step does: planned and full steps agree on every field, for random event
sequences over charts with guards, assignments, emits, history, timers,
parallel regions and completion events."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.durable import Chart, Statechart, assign, emit
from convergent.durable.chart import ROOT
from convergent.durable._semantics import Config, Step, _Plan, initial_step, step

from .charts import order_chart


def pump_chart() -> Chart:
    """Finite throughout (every step may be planned): int and bool vars,
    guards over them, entry/exit/transition assignments, constant emits, a
    compound state with deep history, a timer, a top-level final state."""
    c = Statechart("pump")
    c.int("level", 0, 5)
    c.int("starts", 0, 9)
    c.bool("alarm")
    c.state("idle", entry=[assign(alarm="false")])
    c.state("running", initial="slow", history="deep",
            exit=[emit("pump.stopped", {"why": "exit"})])
    c.state("slow", parent="running", entry=[assign(starts="starts + 1")])
    c.state("fast", parent="running")
    c.state("broken", final=True)
    c.on("idle", "start", "running", guard="level < 5")
    c.on("idle", "start", "broken", guard="level >= 5", actions=[assign(alarm="true")])
    c.on("running", "fill", None, actions=[assign(level="level + 1")])
    c.on("running", "drain", None, guard="level > 0", actions=[assign(level="level - 1")])
    c.on("slow", "faster", "fast", actions=[emit("pump.speed", {"to": "fast"})])
    c.on("fast", "slower", "slow")
    c.on("running", "stop", "idle")
    c.on("idle", "fill", None, actions=[assign(level="level + 1")])
    c.after("fast", timedelta(minutes=5), "slow")
    return c.build()


def same(a: Step, b: Step) -> None:
    assert dict(a.config.memory) == dict(b.config.memory)
    assert dict(a.config.vars) == dict(b.config.vars)
    assert dict(a.config.extra) == dict(b.config.extra)
    assert [t.id for t in a.fired] == [t.id for t in b.fired]
    assert (a.exited, a.entered, a.commands, a.cancelled, a.done) == \
        (b.exited, b.entered, b.commands, b.cancelled, b.done)
    assert [t.id for t in a.armed] == [t.id for t in b.armed]


def run_both(planned: Chart, full: Chart, events: list[str]) -> int:
    """Drive both charts; ``full`` forgets everything before each step, so
    it always takes the full path. Returns how many plans were kept."""
    extra = {"note": ["open data rides along"]}
    cfg_p: Config = initial_step(planned, extra=extra).config
    cfg_f: Config = initial_step(full, extra=extra).config
    for ev in events:
        full.memo.clear()
        a = step(planned, cfg_p, ev)
        b = step(full, cfg_f, ev)
        same(a, b)
        cfg_p, cfg_f = a.config, b.config
    return sum(isinstance(v, _Plan) for v in planned.memo.values())


PUMP_EVENTS = ["start", "fill", "drain", "faster", "slower", "stop",
               *sorted(e for e in pump_chart().events if e.startswith("after:"))]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PUMP_EVENTS), max_size=40))
def test_planned_steps_equal_full_steps_on_a_finite_chart(events: list[str]) -> None:
    run_both(pump_chart(), pump_chart(), events)


ORDER_EVENTS = ["submit", "authorized", "declined", "hold", "release", "ship", "pack",
                "invoice", "flag", "clear"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(ORDER_EVENTS), max_size=30))
def test_planned_steps_equal_full_steps_with_completion_events_and_callables(
        events: list[str]) -> None:
    run_both(order_chart(), order_chart(), events)


def test_plans_are_kept_and_reused_for_repeated_finite_steps() -> None:
    assert len(PUMP_EVENTS) == 7  # the timer's event is among them
    chart = pump_chart()
    kept = run_both(chart, pump_chart(), ["start", "fill", "fill", "drain", "faster",
                                          "slower", "fill", "fill"])
    assert kept >= 4
    # the second 'fill' from the same configuration reused the first one's plan
    before = sum(isinstance(v, _Plan) for v in chart.memo.values())
    run_both(chart, pump_chart(), ["start", "fill", "fill"])
    assert sum(isinstance(v, _Plan) for v in chart.memo.values()) == before


def test_steps_that_raise_completion_events_are_not_planned() -> None:
    chart = order_chart()
    events = ["submit", "authorized", "ship", "pack", "invoice"]  # done.fulfilment runs
    run_both(chart, order_chart(), events)
    for v in chart.memo.values():
        if isinstance(v, _Plan):
            assert all(not t.event.startswith("done.") for t in v.fired)
            assert not any(chart.states[s].kind == "final" and chart.states[s].parent != ROOT
                           for s in v.entered)
    assert any(isinstance(v, _Plan) for v in chart.memo.values())  # 'submit' etc. were
