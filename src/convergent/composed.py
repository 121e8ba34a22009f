"""A verified machine made of independent components (engine/compose.py):
each component keeps its own step tables, and a transition is one lookup in
the table of the event's component. No product table ever exists, so a
machine of 2^64 states runs in the memory of its components.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MachineUsageError
from .machine import Machine
from .spec.model import Family, Var

if TYPE_CHECKING:  # pragma: no cover
    from .engine.compose import ComposedAnalysis
    from .engine.report import Report

__all__ = ["ComposedMachine", "ComposedState"]


class ComposedState:
    """An immutable state of a ComposedMachine: one state id per component
    (the constant vars are the machine's). Read it as ``s[var]``."""

    __slots__ = ("_ids", "_machine")
    _machine: ComposedMachine
    _ids: tuple[int, ...]

    def __init__(self, machine: ComposedMachine, ids: tuple[int, ...]) -> None:
        object.__setattr__(self, "_machine", machine)
        object.__setattr__(self, "_ids", ids)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ComposedState is immutable; use machine.apply(state, event)")

    @property
    def ids(self) -> tuple[int, ...]:
        """The state id of each component, in ``machine.components`` order."""
        return self._ids

    @property
    def id(self) -> int:
        """The state's index in the whole machine's mixed-radix encoding (first
        var least significant), as a Python int: it may pass 64 bits."""
        return self._machine._global_id(self)

    @property
    def machine(self) -> ComposedMachine:
        return self._machine

    def __getitem__(self, key: Var | str) -> Any:
        return self._machine._read(self, key)

    def to_dict(self) -> dict[str, Any]:
        return self._machine.decode(self)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ComposedState) and other._machine is self._machine
                and other._ids == self._ids)

    def __hash__(self) -> int:
        return hash((id(self._machine), self._ids))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"ComposedState({body})"


# building a ComposedState without __init__ on the hot path of apply
_new = object.__new__
_set_machine = ComposedState._machine.__set__  # type: ignore[misc, attr-defined]
_set_ids = ComposedState._ids.__set__  # type: ignore[misc, attr-defined]


class ComposedMachine:
    """The built form of a composed check: the same API as ``Machine`` for
    transitions, reads and encoding, over per-component tables."""

    name: str
    version: int
    vars: tuple[Var, ...]
    events: tuple[str, ...]
    report: Report
    policy_digest: str
    families: dict[str, Family]
    components: tuple[Machine, ...]
    size: int
    independent: frozenset[frozenset[str]]
    initial: ComposedState
    _var_at: dict[str, tuple[int, int]]
    _constants: dict[str, Any]
    _event_at: dict[str | int, tuple[int, np.ndarray]]

    def __init__(self) -> None:  # pragma: no cover - built by Registry.build
        raise TypeError("build a ComposedMachine with Registry.build(method=...)")

    @classmethod
    def _from_analysis(cls, an: ComposedAnalysis) -> ComposedMachine:
        from .engine.check import Analysis
        spec = an.spec
        tables = [p for p in an.parts if isinstance(p, Analysis)]
        if len(tables) != len(an.parts):
            raise MachineUsageError(f"{spec.name!r} has components checked by z3: no tables "
                                    "to run")
        # one verified Machine per component, over its own vars
        return cls._from_parts(
            name=spec.name, version=spec.version, vars=tuple(spec.vars),
            events=tuple(e.name for e in spec.events), report=an.report,
            components=tuple(Machine._from_analysis(p) for p in tables),
            constants={spec.vars[v].name: spec.initial[spec.vars[v].name] for v in an.idle},
            independent=list(spec.independent), families=spec.families)

    @classmethod
    def _from_parts(cls, *, name: str, version: int, vars: tuple[Var, ...],
                    events: tuple[str, ...], report: Report,
                    components: tuple[Machine, ...], constants: Mapping[str, Any],
                    independent: Iterable[tuple[str, str]],
                    families: Iterable[Family] = ()) -> ComposedMachine:
        """The machine over ready components (from a check, or from a file,
        whose loader has checked that they fit together)."""
        self = object.__new__(cls)
        self.name = name
        self.version = version
        self.vars = vars
        self.events = events
        self.report = report
        self.policy_digest = report.policy_digest
        self.families = {f.name: f for f in families}
        self.components = components
        self.size = 1
        for v in self.vars:
            self.size *= v.size
        self._var_at = {}
        for k, m in enumerate(self.components):
            for i, v in enumerate(m.vars):
                self._var_at[v.name] = (k, i)
        self._constants = dict(constants)
        self._event_at = {}
        for k, m in enumerate(self.components):
            for i, ev in enumerate(m.events):
                self._event_at[ev] = (k, m._step[i])
        for g, ev in enumerate(self.events):
            self._event_at[g] = self._event_at[ev]
        cross = {frozenset((a, b)) for a, b in independent
                 if self._event_at[a][0] != self._event_at[b][0]}
        self.independent = frozenset(
            cross.union(*(m.independent for m in self.components)))
        self.initial = ComposedState(self, tuple(m.initial.id for m in self.components))
        return self

    # ------------------------------------------------------------ helpers

    def _own(self, state: ComposedState) -> tuple[int, ...]:
        if not isinstance(state, ComposedState) or state._machine is not self:
            raise MachineUsageError(f"{state!r} is not a state of machine {self.name!r}")
        return state._ids

    def _read(self, state: ComposedState, key: Var | str) -> Any:
        name = key.name if isinstance(key, Var) else key
        at = self._var_at.get(name)
        if at is None:
            if name in self._constants:
                return self._constants[name]
            raise MachineUsageError(f"unknown var {key!r} (known: "
                                    f"{', '.join(v.name for v in self.vars)})")
        k, i = at
        m = self.components[k]
        var = m.vars[i]
        return var.values[(state._ids[k] // m._weights[i]) % var.size]

    def _event(self, event: str | int) -> tuple[int, np.ndarray]:
        got = self._event_at.get(event)
        if got is None:
            raise MachineUsageError(f"unknown event {event!r} (known: "
                                    f"{', '.join(self.events)})")
        return got

    def _global_id(self, state: ComposedState) -> int:
        values = self.decode(state)
        sid, w = 0, 1
        for v in self.vars:
            sid += v.digit(values[v.name]) * w
            w *= v.size
        return sid

    # ------------------------------------------------------------ API

    def instance(self, family: str, *args: Any) -> str:
        """The name of one instance of an event family (see ``Machine.instance``)."""
        return Machine.instance(self, family, *args)  # type: ignore[arg-type]

    def apply(self, state: ComposedState, event: str | int, *args: Any) -> ComposedState:
        """The normalized state after ``event``: one lookup in its component's table."""
        if state.__class__ is not ComposedState or state._machine is not self:
            self._own(state)
        if args:
            event = self.instance(event, *args)  # type: ignore[arg-type]
        got = self._event_at.get(event)
        if got is None:
            got = self._event(event)
        k, row = got
        ids = state._ids
        out = _new(ComposedState)
        _set_machine(out, self)
        _set_ids(out, (*ids[:k], row.item(ids[k]), *ids[k + 1:]))
        return out

    def run(self, events: Iterable[str | int], state: ComposedState | None = None
            ) -> ComposedState:
        s = state if state is not None else self.initial
        for e in events:
            s = self.apply(s, e)
        return s

    def commutes(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.independent

    def is_valid(self, state: ComposedState) -> bool:
        ids = self._own(state)
        return all(m.valid_table[i] for m, i in zip(self.components, ids))

    def normalize(self, state: ComposedState) -> ComposedState:
        ids = self._own(state)
        return ComposedState(self, tuple(int(m.nf_table[i])
                                         for m, i in zip(self.components, ids)))

    def enabled(self, state: ComposedState) -> list[str]:
        ids = self._own(state)
        on: set[str] = set()
        for m, i in zip(self.components, ids):
            on.update(m.enabled(m.state(i)))
        return [e for e in self.events if e in on]

    def encode(self, values: Mapping[Any, Any]) -> ComposedState:
        """The state with these values; every var must be given (constant vars
        only at their value)."""
        if not isinstance(values, Mapping):
            raise MachineUsageError(f"encode needs a {{var: value}} mapping, got {values!r}")
        given = {(k.name if isinstance(k, Var) else k): v for k, v in values.items()}
        unknown = [k for k in given if k not in self._var_at and k not in self._constants]
        if unknown:
            raise MachineUsageError(f"encode: unknown var(s) {', '.join(map(str, unknown))}")
        for name, value in self._constants.items():
            if name in given and given[name] != value:
                raise MachineUsageError(f"encode: {name} is constant ({value!r}: no rule "
                                        f"touches it), got {given[name]!r}")
        missing = [v.name for v in self.vars
                   if v.name not in given and v.name not in self._constants]
        if missing:
            raise MachineUsageError(f"encode: missing var(s) {', '.join(missing)}")
        ids = tuple(m.encode({v.name: given[v.name] for v in m.vars}).id
                    for m in self.components)
        return ComposedState(self, ids)

    def decode(self, state: ComposedState) -> dict[str, Any]:
        ids = self._own(state)
        parts: dict[str, Any] = dict(self._constants)
        for m, i in zip(self.components, ids):
            parts.update(m.decode(i))
        return {v.name: parts[v.name] for v in self.vars}

    def state_digest(self, state: ComposedState) -> str:
        from .engine.digest import state_digest
        return state_digest(self.policy_digest, self.decode(state))

    def export(self, path: str, **options: Any) -> Any:
        """Write the machine to ``path`` (``.json`` or ``.json.gz``): its
        components' tables, each as a machine file, in one document (see
        ``convergent.export.composed``)."""
        from .export.composed import export_composed
        return export_composed(self, path, **options)

    @classmethod
    def load(cls, path: str, **options: Any) -> ComposedMachine:
        """Load a machine written by ``ComposedMachine.export``."""
        from .export.composed import load_composed
        return load_composed(path, **options)

    def __repr__(self) -> str:
        return (f"ComposedMachine({self.name!r}, vars={len(self.vars)}, "
                f"events={len(self.events)}, components={len(self.components)}, "
                f"states={self.size}, verdict={self.report.verdict!r})")

