"""The transition table: the reference design's phases, events and timeouts, checked."""

from __future__ import annotations

import pytest

from convergent.consensus import ConfigError, Event, MachineSpec, Phase, Transition
from convergent.consensus.machine import RUNNING
from convergent.consensus.render import to_dot, to_mermaid, to_table


def test_default_is_the_reference_design():
    spec = MachineSpec.default()
    path = [
        (Phase.STOPPED, Event.START, Phase.STARTING),
        (Phase.STARTING, Event.INIT_COMPLETE, Phase.LOADING),
        (Phase.LOADING, Event.SYNC_COMPLETE, Phase.COLLECTING),
        (Phase.COLLECTING, Event.COLLECTION_DONE, Phase.LIVENESS_CHECK),
        (Phase.LIVENESS_CHECK, Event.PROVER_SIGNAL, Phase.PROVING),
        (Phase.PROVING, Event.PROOF_COMPLETE, Phase.PUBLISHING),
        (Phase.PUBLISHING, Event.PUBLISH_COMPLETE, Phase.VOTING),
        (Phase.VOTING, Event.QUORUM_REACHED, Phase.FINALIZING),
        (Phase.FINALIZING, Event.AGGREGATION_DONE, Phase.VERIFYING),
        (Phase.VERIFYING, Event.VERIFICATION_DONE, Phase.COLLECTING),
        (Phase.STOPPING, Event.CLEANUP_COMPLETE, Phase.STOPPED),
    ]
    for source, event, target in path:
        tr = spec.transition(source, event)
        assert tr is not None and tr.target is target, (source, event)
    timeouts = {p: spec.states[p].timeout for p in spec.states}
    assert timeouts == {
        Phase.STARTING: 1.0, Phase.LOADING: 600.0, Phase.COLLECTING: 1.0,
        Phase.LIVENESS_CHECK: 1.0, Phase.PROVING: 120.0, Phase.PUBLISHING: 1.0,
        Phase.VOTING: 10.0, Phase.FINALIZING: 1.0, Phase.VERIFYING: 1.0,
        Phase.STOPPING: 30.0}
    fired = [spec.timeout_event(p) for p in spec.states]
    assert len(set(fired)) == len(fired)  # each timeout fires its own event
    for phase in RUNNING:
        assert spec.transition(phase, Event.STOP).target is Phase.STOPPING
        assert spec.transition(phase, Event.INDUCE_SYNC).target is Phase.LOADING
    assert spec.transition(Phase.STOPPED, Event.STOP) is None


def test_backoff_scales_view_timeouts_and_caps():
    spec = MachineSpec.default()
    assert spec.timeout(Phase.VOTING, 0) == 10.0
    assert spec.timeout(Phase.VOTING, 2) == 40.0
    assert spec.timeout(Phase.VOTING, 100) == 10.0 * 2 ** spec.max_backoff_exponent
    assert spec.timeout(Phase.VERIFYING, 5) == 1.0  # not a view phase
    assert spec.timeout(Phase.STOPPED) is None


def test_variants_are_rechecked():
    spec = MachineSpec.default().with_timeouts(proving=2.0, voting=None)
    assert spec.states[Phase.PROVING].timeout == 2.0 and spec.timeout(Phase.VOTING) is None
    assert MachineSpec.default().scaled(0.5).states[Phase.STOPPING].timeout == 15.0
    with pytest.raises(ConfigError, match="unknown phase 'provin'"):
        MachineSpec.default().with_timeouts(provin=1.0)
    with pytest.raises(ConfigError, match="expected > 0"):
        MachineSpec.default().scaled(0)


def test_broken_tables_report_every_problem():
    spec = MachineSpec.default()
    with pytest.raises(ConfigError) as err:
        spec.with_transitions(remove=[(Phase.VOTING, Event.STOP),
                                      (Phase.PROVING, Event.PROVING_TIMEOUT),
                                      (Phase.VERIFYING, Event.INDUCE_SYNC)])
    text = str(err.value)
    assert "voting does not accept stop" in text
    assert "proving times out with proving_timeout but has no transition" in text
    assert "verifying does not accept induce_sync" in text
    with pytest.raises(ConfigError, match="two transitions"):
        MachineSpec(spec.transitions + (Transition(Phase.STOPPED, Event.START,
                                                   Phase.LOADING),), spec.states)
    unreachable = [t for t in spec.transitions if t.target is not Phase.VERIFYING]
    with pytest.raises(ConfigError, match="unreachable phases: verifying"):
        MachineSpec(tuple(unreachable), spec.states)


def test_renderings_show_every_row():
    spec = MachineSpec.default()
    mermaid, dot, table = to_mermaid(spec), to_dot(spec), to_table(spec)
    assert mermaid.startswith("stateDiagram-v2")
    assert dot.startswith("digraph consensus {") and dot.rstrip().endswith("}")
    for tr in spec.transitions:
        assert f"| {tr.source.value} | {tr.event.value} | {tr.target.value} |" in table
        if not tr.internal:
            assert f"{tr.source.value} --> {tr.target.value}: {tr.event.value}" in mermaid
            assert f'"{tr.source.value}" -> "{tr.target.value}" [label="{tr.event.value}' in dot
    assert "| proving | 120 | proving_timeout | yes |" in table
    assert "voting_timeout" in to_mermaid(spec, include_internal=True)
