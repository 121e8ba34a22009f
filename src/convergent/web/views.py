"""JSON shapes shared by the inspector's views: a state, a transition.

Every value here is plain JSON (str, int, bool, lists, dicts): names and
enum values come from the spec and are untrusted, and it is the page's job to
insert them as text, never as markup.
"""

from __future__ import annotations

from typing import Any

from ..viz.stepper import Stepper, Transition

__all__ = ["state_json", "transition_json"]


def state_json(st: Stepper, sid: int) -> dict[str, Any]:
    return {"id": int(sid), "values": st.decode(sid), "valid": st.valid(sid)}


def transition_json(st: Stepper, t: Transition) -> dict[str, Any]:
    """One event at one state: the raw result, each repair, the end."""
    return {
        "event": t.event,
        "fired": t.fired,
        "before": state_json(st, t.before),
        "raw": state_json(st, t.raw),
        "repairs": [{"invariant": r.invariant, "state": state_json(st, r.state)}
                    for r in t.repairs],
        "after": state_json(st, t.after),
        "loops": t.loops,
        "changed": st.changed(t.before, t.after),
    }


def repair_json(st: Stepper, sid: int) -> dict[str, Any]:
    """One repair step shown as a transition without an event (CC2's second order)."""
    r = st.repair(sid)
    after = sid if r is None else r.state
    return {
        "event": None,
        "fired": r is not None,
        "before": state_json(st, sid),
        "raw": state_json(st, sid),
        "repairs": [] if r is None else [{"invariant": r.invariant,
                                          "state": state_json(st, r.state)}],
        "after": state_json(st, after),
        "loops": False,
        "changed": st.changed(sid, after),
    }
