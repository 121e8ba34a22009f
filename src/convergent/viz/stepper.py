"""One event at one state, step by step: the raw successor, then each repair.

The step tables of an ``Analysis`` only keep where an event ends (after
normalization). Pictures and the inspector's counterexample player need the
way there: did the guard fire, which state did the assignment produce, which
invariant failed and what did its repair do, until a valid state. This module
recomputes that from the compiled machine's local tables (the same tables the
engine built the step tables from), so what it shows always ends where the
proof says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.check import Analysis
from ..engine.decode import full_to_state
from ..errors import MachineUsageError

__all__ = ["RepairStep", "Stepper", "Transition"]

#: a repair chain longer than this is cut (WFC proves chains end; a failing
#: WFC has a loop, which is detected before this)
MAX_REPAIRS = 10_000


@dataclass(frozen=True)
class RepairStep:
    """The repair of ``invariant`` (the first failing one) took the state to ``state``."""

    invariant: str
    state: int


@dataclass(frozen=True)
class Transition:
    """``event`` at ``before``: ``raw`` is the assignment's result (``before``
    when the guard is false), ``repairs`` the repairs that followed, ``after``
    the last state reached. ``loops`` says the repairs went round a cycle
    (WFC fails there): ``after`` is then the first state seen twice."""

    event: str
    before: int
    fired: bool
    raw: int
    repairs: tuple[RepairStep, ...]
    after: int
    loops: bool = False


class Stepper:
    """Single-state evaluation of a machine's events and repairs, on full ids."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.cm = analysis.compiled
        self.norm = analysis.normalizer
        self.full = analysis.full
        self.events = tuple(e.name for e in self.cm.events)
        self.vars = tuple(self.cm.m.vars)
        self._index = {name: i for i, name in enumerate(self.events)}
        self._deltas: dict[int, np.ndarray] = {}
        strides = []
        acc = 1
        for v in self.vars:
            strides.append(acc)
            acc *= v.size
        self.strides = tuple(strides)
        self.size = acc

    # ------------------------------------------------------------ ids

    def check_id(self, sid: int) -> int:
        if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)) \
                or not 0 <= int(sid) < self.size:
            raise MachineUsageError(f"state id {sid!r} is outside [0, {self.size})")
        return int(sid)

    def encode(self, values: Mapping[str, Any]) -> int:
        """The full id of a complete ``{var: value}`` state."""
        sid = 0
        for var, stride in zip(self.vars, self.strides):
            if var.name not in values:
                raise MachineUsageError(f"state lacks var {var.name!r}")
            try:
                sid += var.digit(values[var.name]) * stride
            except ValueError as exc:
                raise MachineUsageError(str(exc)) from None
        return sid

    def decode(self, sid: int) -> dict[str, Any]:
        return full_to_state(self.cm, self.check_id(sid))

    def event_index(self, event: str) -> int:
        try:
            return self._index[event]
        except KeyError:
            raise MachineUsageError(f"unknown event {event!r}") from None

    # ------------------------------------------------------------ vectorized

    def _delta(self, e: int) -> np.ndarray:
        got = self._deltas.get(e)
        if got is None:
            ce = self.cm.events[e]
            got = self._deltas[e] = ce.space.restride(ce.new, self.full)
        return got

    def raw_many(self, e: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fires, raw successor) of event ``e`` at each of ``ids``."""
        ce = self.cm.events[e]
        ids = np.asarray(ids, dtype=np.int64)
        local = self.full.project(ce.space, ids)
        return ce.fires[local].astype(bool), ids + self._delta(e)[local]

    def valid_many(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        valid: np.ndarray = self.norm.valid[self.full.project(self.norm.space, ids)]
        return valid.astype(bool)

    def repair_many(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first failing invariant index or -1, state after one repair step)."""
        ids = np.asarray(ids, dtype=np.int64)
        local = self.full.project(self.norm.space, ids)
        delta = self.norm.rho_delta(self.full)
        return self.norm.first_fail[local].astype(np.int64), ids + delta[local]

    # ------------------------------------------------------------ one state

    def valid(self, sid: int) -> bool:
        return bool(self.valid_many(np.array([self.check_id(sid)]))[0])

    def repair(self, sid: int) -> RepairStep | None:
        """The first failing invariant's repair at ``sid``, or None when valid."""
        inv, nxt = self.repair_many(np.array([self.check_id(sid)]))
        if inv[0] < 0:
            return None
        return RepairStep(self.cm.invariants[int(inv[0])].name, int(nxt[0]))

    def normalize(self, sid: int) -> tuple[tuple[RepairStep, ...], int, bool]:
        """Repairs from ``sid`` until a valid state: (steps, last state, loops)."""
        seen = {sid}
        steps: list[RepairStep] = []
        cur = sid
        while len(steps) < MAX_REPAIRS:
            r = self.repair(cur)
            if r is None:
                return tuple(steps), cur, False
            steps.append(r)
            cur = r.state
            if cur in seen:
                return tuple(steps), cur, True
            seen.add(cur)
        return tuple(steps), cur, True

    def enabled(self, sid: int) -> list[str]:
        ids = np.array([self.check_id(sid)])
        return [name for e, name in enumerate(self.events) if self.raw_many(e, ids)[0][0]]

    def apply(self, event: str | int, sid: int) -> Transition:
        """``event`` at ``sid``, with every repair that follows."""
        e = event if isinstance(event, int) else self.event_index(event)
        sid = self.check_id(sid)
        fires, raw = self.raw_many(e, np.array([sid]))
        raw_id = int(raw[0]) if fires[0] else sid
        repairs, after, loops = self.normalize(raw_id)
        return Transition(self.events[e], sid, bool(fires[0]), raw_id, repairs, after, loops)

    def changed(self, a: int, b: int) -> list[str]:
        """Names of the vars whose values differ between states ``a`` and ``b``."""
        return [v.name for v, w in zip(self.vars, self.strides)
                if (a // w) % v.size != (b // w) % v.size]
