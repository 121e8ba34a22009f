"""The built machine: verified tables and O(1) transitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .engine.check import Analysis
from .errors import MachineUsageError
from .spec.model import Var

__all__ = ["Machine", "State"]


class State:
    """An immutable state of one machine: read it as ``s[var]`` or ``s["name"]``.

    Equal states of the same machine compare equal and hash alike; ``id`` is
    the state's index in the machine's tables (mixed radix, first var least
    significant)."""

    __slots__ = ("_machine", "_id")

    def __init__(self, machine: Machine, state_id: int) -> None:
        object.__setattr__(self, "_machine", machine)
        object.__setattr__(self, "_id", state_id)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("State is immutable; use machine.apply(state, event)")

    @property
    def id(self) -> int:
        return self._id

    @property
    def machine(self) -> Machine:
        return self._machine

    def __getitem__(self, key: Var | str) -> Any:
        m = self._machine
        i = m._var_index(key)
        var = m.vars[i]
        return var.values[(self._id // m._weights[i]) % var.size]

    def to_dict(self) -> dict[str, Any]:
        return self._machine.decode(self)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, State) and other._machine is self._machine
                and other._id == self._id)

    def __hash__(self) -> int:
        return hash((id(self._machine), self._id))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"State({body})"


class Machine:
    """A verified machine. Transitions are table lookups: ``apply`` is one index
    into a numpy array, ``apply_many`` one vectorized gather."""

    def __init__(self) -> None:  # pragma: no cover - use Registry.build / Machine.load
        raise TypeError("build a Machine with Registry.build() or load one with Machine.load()")

    @classmethod
    def _from_analysis(cls, an: Analysis) -> Machine:
        assert an.step is not None and an.initial_id is not None
        self = object.__new__(cls)
        cm = an.compiled
        self.name = cm.spec.name
        self.version = cm.spec.version
        self.vars = tuple(cm.m.vars)
        self.events = tuple(e.name for e in cm.events)
        self.report = an.report
        self._step = an.step
        self._step.setflags(write=False)
        self._event_index = {name: i for i, name in enumerate(self.events)}
        self._var_names = {v.name: i for i, v in enumerate(self.vars)}
        w, acc = [], 1
        for v in self.vars:
            w.append(acc)
            acc *= v.size
        self._weights = tuple(w)
        self.size = acc
        norm = an.normalizer
        self._d_weights = [(norm.space.stride[i], w[i], self.vars[i].size)
                           for i in norm.space.vars]
        self._d_valid = norm.valid
        self._d_nf_delta = norm.nf_delta(an.full)
        self._fires = [(e.space, e.fires) for e in cm.events]
        self.initial = State(self, an.initial_id)
        self._analysis = an
        return self

    # ------------------------------------------------------------ lookups

    def _var_index(self, key: Var | str) -> int:
        name = key.name if isinstance(key, Var) else key
        try:
            i = self._var_names[name]
        except (KeyError, TypeError):
            raise MachineUsageError(f"unknown var {key!r} (known: "
                                    f"{', '.join(self._var_names)})") from None
        if isinstance(key, Var) and key != self.vars[i]:
            raise MachineUsageError(f"var {key.name!r} belongs to another machine")
        return i

    def _event(self, event: str | int) -> int:
        try:
            return self._event_index[event]  # type: ignore[index]
        except (KeyError, TypeError):
            if isinstance(event, int) and not isinstance(event, bool) \
                    and 0 <= event < len(self.events):
                return event
            raise MachineUsageError(f"unknown event {event!r} (known: "
                                    f"{', '.join(self.events)})") from None

    def _own(self, state: State) -> int:
        if not isinstance(state, State) or state._machine is not self:
            raise MachineUsageError(f"{state!r} is not a state of machine {self.name!r}")
        return state._id

    def _d_id(self, sid: int) -> int:
        return sum(((sid // w) % r) * s for s, w, r in self._d_weights)

    # ------------------------------------------------------------ API

    def apply(self, state: State, event: str | int) -> State:
        """The normalized state after ``event`` (a no-op when its guard is false)."""
        if state.__class__ is not State or state._machine is not self:
            self._own(state)
        return State(self, int(self._step[self._event(event), state._id]))

    def apply_id(self, state_id: int, event: str | int) -> int:
        """``apply`` on raw state ids: the fastest path, for hot loops."""
        return int(self._step[self._event(event), state_id])

    def apply_many(self, states: np.ndarray, event: str | int) -> np.ndarray:
        """Vectorized ``apply`` over an array of state ids."""
        ids = np.asarray(states)
        if ids.dtype.kind not in "iu":
            raise MachineUsageError(f"apply_many needs an int array of state ids, got {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise MachineUsageError(f"state ids must be in [0, {self.size})")
        return self._step[self._event(event)].take(ids)

    def run(self, events: Iterable[str | int], state: State | None = None) -> State:
        """Apply a sequence of events from ``state`` (default: ``initial``)."""
        sid = self._own(state) if state is not None else self.initial._id
        for e in events:
            sid = int(self._step[self._event(e), sid])
        return State(self, sid)

    def is_valid(self, state: State) -> bool:
        return bool(self._d_valid[self._d_id(self._own(state))])

    def normalize(self, state: State) -> State:
        """The normal form: repairs applied, first failing invariant first."""
        sid = self._own(state)
        return State(self, int(sid + self._d_nf_delta[self._d_id(sid)]))

    def enabled(self, state: State) -> list[str]:
        """Events whose guard holds at ``state``."""
        sid = self._own(state)
        out = []
        for name, (space, fires) in zip(self.events, self._fires):
            local = sum(((sid // self._weights[v]) % self.vars[v].size) * space.stride[v]
                        for v in space.vars)
            if fires[local]:
                out.append(name)
        return out

    def encode(self, values: Mapping[Any, Any]) -> State:
        """The state with these values; every var must be given."""
        if not isinstance(values, Mapping):
            raise MachineUsageError(f"encode needs a {{var: value}} mapping, got {values!r}")
        given = {}
        for key, value in values.items():
            given[self._var_index(key)] = value
        missing = [v.name for i, v in enumerate(self.vars) if i not in given]
        if missing:
            raise MachineUsageError(f"encode: missing var(s) {', '.join(missing)}")
        sid = 0
        for i, value in given.items():
            try:
                sid += self.vars[i].digit(value) * self._weights[i]
            except ValueError as exc:
                raise MachineUsageError(f"encode: {exc}") from None
        return State(self, sid)

    def decode(self, state: State | int) -> dict[str, Any]:
        sid = state if isinstance(state, (int, np.integer)) and not isinstance(state, bool) \
            else self._own(state)  # type: ignore[arg-type]
        if not 0 <= sid < self.size:
            raise MachineUsageError(f"state id {sid} is outside [0, {self.size})")
        out = {}
        for v, w in zip(self.vars, self._weights):
            out[v.name] = v.values[(int(sid) // w) % v.size]
        return out

    def state(self, state_id: int) -> State:
        if not 0 <= int(state_id) < self.size:
            raise MachineUsageError(f"state id {state_id} is outside [0, {self.size})")
        return State(self, int(state_id))

    def step_table(self, event: str | int) -> np.ndarray:
        """The read-only table ``step[state_id] -> state_id`` of one event."""
        return self._step[self._event(event)]

    @property
    def tables(self) -> np.ndarray:
        """All step tables, shape (events, states), read-only."""
        return self._step

    def __repr__(self) -> str:
        return (f"Machine({self.name!r}, vars={len(self.vars)}, events={len(self.events)}, "
                f"states={self.size}, verdict={self.report.verdict!r})")
