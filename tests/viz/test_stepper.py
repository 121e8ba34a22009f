"""The stepper replays what the step tables summarize: for every reachable
state and event, its raw successor followed by its repairs ends exactly
where ``step[e][s]`` says, and every state before the last is invalid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import machines

from convergent.engine.check import analyze
from convergent.errors import BuildError, MachineUsageError
from convergent.spec.loader import load_spec
from convergent.viz.stepper import Stepper

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _check_agrees(an: object) -> int:
    from convergent.engine.check import Analysis
    assert isinstance(an, Analysis)
    st = Stepper(an)
    assert an.step is not None and an.reach is not None
    checked = 0
    for sid in an.reach.tolist():
        assert st.valid(sid)
        assert st.decode(sid) and st.encode(st.decode(sid)) == sid
        for e, name in enumerate(st.events):
            t = st.apply(name, sid)
            assert t.after == int(an.step[e][sid]), (name, st.decode(sid))
            assert not t.loops
            chain = [t.raw] + [r.state for r in t.repairs]
            assert all(not st.valid(s) for s in chain[:-1])
            assert st.valid(chain[-1])
            if not t.fired:
                assert t.raw == sid
            checked += 1
    return checked


@pytest.mark.parametrize("name", ["gsm_order.yaml", "bank_account.yaml",
                                  "order_fulfillment.yaml", "permissions.yaml"])
def test_examples_replay_to_the_step_tables(name: str) -> None:
    an = analyze(load_spec(str(EXAMPLES / name)))
    assert _check_agrees(an) > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machines())
def test_random_machines_replay_to_the_step_tables(gm: object) -> None:
    try:
        an = analyze(gm.to_spec())  # type: ignore[attr-defined]
    except BuildError:
        return
    if an.step is None:  # WFC fails: some repair chain must loop
        st = Stepper(an)
        cex = an.report.wfc.counterexample
        assert cex is not None
        _, _, loops = st.normalize(st.encode(cex.state))
        assert loops
        return
    _check_agrees(an)


def test_bank_account_shows_its_repair() -> None:
    """place_hold at an approved account breaks the invariant: one repair."""
    an = analyze(load_spec(str(EXAMPLES / "bank_account.yaml")))
    st = Stepper(an)
    approved = st.encode({"balance": 3, "hold": False, "approval": "approved"})
    t = st.apply("place_hold", approved)
    assert t.fired and not st.valid(t.raw)
    assert [r.invariant for r in t.repairs] == ["held_accounts_are_not_approved"]
    assert st.decode(t.after) == {"balance": 3, "hold": True, "approval": "requested"}
    assert st.changed(approved, t.after) == ["hold", "approval"]


def test_misuse_is_a_usage_error() -> None:
    an = analyze(load_spec(str(EXAMPLES / "gsm_order.yaml")))
    st = Stepper(an)
    with pytest.raises(MachineUsageError):
        st.decode(st.size)
    with pytest.raises(MachineUsageError):
        st.apply("no_such_event", 0)
    with pytest.raises(MachineUsageError):
        st.encode({"status": "pending"})
    with pytest.raises(MachineUsageError):
        st.encode({"status": "lost", "paid": False, "inventory": 0})
    with pytest.raises(MachineUsageError):
        st.check_id(True)  # a bool is not a state id
    assert st.enabled(0) == ["process_payment", "restock"]
    fires, raw = st.raw_many(0, np.array([0, 1]))
    assert fires.dtype == bool and len(raw) == 2
