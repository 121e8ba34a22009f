"""Witnesses: two replicas' runs over the same events that end in different
v2 states, and the replay that proves them before any report shows them.

A run is a list of ``Step``: v1 events (applied under v1 before the
replica's switch, as their translation after it), one switch (the state
becomes ``nf2(map(s))``), and v2 events (only after the switch). ``replay``
executes a run on the tables; a witness whose replay does not give its two
different results is an internal error, never a verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MigrationError
from .model import Step
from .tables import Tables

__all__ = ["Witness", "make_witness", "replay", "render_run"]


@dataclass(frozen=True)
class Witness:
    """Why a class does not hold: replicas A and B apply the same events
    (the same multiset, or under at-least-once the same set) and diverge.

    ``condition``: the code of the failing condition; ``barrier``: both runs
    switch behind a barrier (no v1 event after a switch), so the witness also
    shows the switch unsafe; ``reached``: the v1 events both applied first."""

    condition: str
    delivery: str
    barrier: bool
    summary: str
    start: dict[str, Any]
    reached: tuple[str, ...]
    run_a: tuple[Step, ...]
    run_b: tuple[Step, ...]
    result_a: dict[str, Any]
    result_b: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "delivery": self.delivery,
                "barrier": self.barrier, "summary": self.summary, "start": self.start,
                "reached": list(self.reached),
                "run_a": [s.to_dict() for s in self.run_a],
                "run_b": [s.to_dict() for s in self.run_b],
                "result_a": self.result_a, "result_b": self.result_b}


def replay(t: Tables, steps: Sequence[Step]) -> int:
    """The v2 state a replica ends in after ``steps`` from v1's initial state."""
    s, version = t.s0, 1
    for st in steps:
        if st.kind == "switch":
            if version == 2:
                raise MigrationError("a run switches twice")
            s, version = int(t.M[s]), 2
            if s < 0:  # pragma: no cover - v1 steps stay among reachable states
                raise MigrationError("a run switched at an unreachable v1 state")
        elif st.kind == "v1":
            e = t.v1.index.get(st.event)
            if e is None:
                raise MigrationError(f"{st.event!r} is not a v1 event")
            s = int(t.v1.step[e][s]) if version == 1 else int(
                t.translate(e, np.array([s]))[0])
        else:
            f = t.v2.index.get(st.event)
            if f is None:
                raise MigrationError(f"{st.event!r} is not a v2 event")
            if version == 1:
                raise MigrationError(f"a run applies the v2 event {st.event!r} before its "
                                     "switch (a v1 replica never applies a v2 event)")
            s = int(t.v2.step[f][s])
    if version != 2:
        raise MigrationError("a run ends before its switch")
    return s


def make_witness(t: Tables, *, condition: str, delivery: str, barrier: bool, summary: str,
                 reached: Sequence[str], run_a: Sequence[Step],
                 run_b: Sequence[Step]) -> Witness:
    """Replay both runs; they must end in different states (else: a bug here)."""
    a, b = replay(t, run_a), replay(t, run_b)
    if a == b:  # pragma: no cover - a failing condition always gives two states
        raise AssertionError(f"internal error: the witness of {condition} does not replay "
                             f"({[s.to_dict() for s in run_a]} vs {[s.to_dict() for s in run_b]})")
    return Witness(condition, delivery, barrier, summary, t.v1.state(t.s0), tuple(reached),
                   tuple(run_a), tuple(run_b), t.v2.state(a), t.v2.state(b))


def render_run(steps: Sequence[Step], events: dict[str, str | None] | None = None) -> str:
    """``deposit, withdraw under v1, switch, fee (in flight, dropped), close under v2``."""
    parts: list[str] = []
    group: list[str] = []
    kind = ""
    switched = False

    def flush() -> None:
        if group:
            parts.append(", ".join(group) + (" under v1" if kind == "v1" else " under v2"))
            group.clear()

    for st in steps:
        if st.kind == "switch":
            flush()
            parts.append("switch")
            switched = True
            kind = ""
            continue
        label = st.event
        this = st.kind
        if st.kind == "v1" and switched:
            target = (events or {}).get(st.event, st.event)
            label = (f"{st.event} (v1, in flight: dropped)" if target is None else
                     f"{st.event} (v1, in flight)" if target == st.event else
                     f"{st.event} (v1, in flight, as {target})")
            this = "v2"
        if this != kind:
            flush()
            kind = this
        group.append(label)
    flush()
    return ", ".join(parts) if parts else "(nothing)"
