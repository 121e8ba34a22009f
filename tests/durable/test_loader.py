"""Charts from YAML: same model as Python, errors located at file lines."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from convergent.durable import ChartError, load_chart, loads_chart, verify
from convergent.durable._semantics import initial_step, step
from convergent.durable.loader import parse_delay

ROOT = Path(__file__).resolve().parents[2]
SAGA = ROOT / "examples" / "order_saga" / "order.yaml"

TICKET = """\
statechart: ticket
vars:
  level: {enum: ["on", "off", "yes"], initial: "off"}
  bumps: {int: [0, 2]}
states:
  open:
    on:
      escalate: {target: escalated, actions: [{set: {level: "on", bumps: "bumps + 1"}}]}
      close: closed
    after:
      - {delay: 30m, target: escalated}
  escalated:
    initial: triage
    history: deep
    states:
      triage:
        on: {assign: working}
      working: {}
    on:
      close: {target: closed, roles: [manager]}
  closed: {final: true}
"""


def test_yaml_chart_runs_like_a_python_one() -> None:
    ch = loads_chart(TICKET, filename="ticket.yaml")
    assert ch.states["escalated"].history == "deep"
    assert ch.var_map["level"].values == ("on", "off", "yes")  # YAML 1.2: strings stay
    assert ch.initial_vars == {"level": "off", "bumps": 0}
    [timer] = ch.timers("open")
    assert timer.after == timedelta(minutes=30) and timer.target == "escalated"
    cfg = initial_step(ch).config
    s = step(ch, cfg, "escalate")
    assert s.config.leaves(ch) == ["triage"]
    assert s.config.vars == {"level": "on", "bumps": 1}
    close = [t for t in ch.transitions if t.event == "close" and t.source == "escalated"]
    assert close[0].roles == frozenset({"manager"})


def test_problems_are_located_at_their_lines() -> None:
    text = TICKET.replace("close: closed", "close: closd").replace(
        "on: {assign: working}", "on: {assign: workin}")
    with pytest.raises(ChartError) as info:
        loads_chart(text, filename="ticket.yaml")
    located = {(p.file, p.line) for p in info.value.problems}
    msgs = [str(p) for p in info.value.problems]
    assert ("ticket.yaml", 9) in located, msgs
    assert ("ticket.yaml", 17) in located, msgs
    assert any("target 'closd'" in m for m in msgs)
    assert any("target 'workin'" in m for m in msgs)


def test_unknown_keys_functions_and_bad_delays_are_reported() -> None:
    text = """\
statechart: t
states:
  a:
    entry: [{call: nothing}]
    colour: red
    after: [{delay: soon, target: a}]
    on:
      go: {target: a, guard: {call: missing_guard}, bogus: 1}
"""
    with pytest.raises(ChartError) as info:
        loads_chart(text, filename="t.yaml")
    msgs = "\n".join(str(p) for p in info.value.problems)
    assert "t.yaml:4" in msgs and "unknown function 'nothing'" in msgs
    assert "t.yaml:5" in msgs and "unknown key 'colour'" in msgs
    assert "delay='soon'" in msgs
    assert "unknown function 'missing_guard'" in msgs
    assert "unknown key 'bogus'" in msgs


def test_malformed_yaml_is_a_located_chart_error() -> None:
    with pytest.raises(ChartError) as info:
        loads_chart("statechart: x\nstates: [\n", filename="bad.yaml")
    assert info.value.problems[0].file == "bad.yaml"
    assert info.value.problems[0].line is not None


def test_oversized_chart_is_refused_before_parsing() -> None:
    with pytest.raises(ChartError, match="over"):
        loads_chart("#" * (2 << 20))


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("2h", 7200), ("45s", 45),
                                           ("500ms", 0.5), ("1d", 86400), (90, 90)])
def test_delays(text: object, seconds: float) -> None:
    assert parse_delay(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["0s", "-1m", "soon", True, "10 parsecs"])
def test_bad_delays(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_delay(bad)


def test_the_saga_example_loads_and_verifies() -> None:
    import sys
    sys.path.insert(0, str(ROOT))
    try:
        from examples.order_saga.chart import FUNCTIONS
    finally:
        sys.path.remove(str(ROOT))
    ch = load_chart(SAGA, functions=FUNCTIONS)
    report = verify(ch)
    assert report.ok and report.states.reachable > 5
    with pytest.raises(ChartError, match="unknown function 'request_payment'"):
        load_chart(SAGA)
