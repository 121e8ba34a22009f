"""The built machine: verified tables and O(1) transitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .engine.check import Analysis
from .engine.report import Report
from .errors import MachineUsageError
from .spec.model import Family, Var

__all__ = ["Machine", "State"]


class State:
    """An immutable state of one machine: read it as ``s[var]`` or ``s["name"]``.

    Equal states of the same machine compare equal and hash alike; ``id`` is
    the state's index in the machine's tables (mixed radix, first var least
    significant)."""

    __slots__ = ("_id", "_machine")
    _machine: Machine
    _id: int

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


# Building a State without __init__ on the hot path of Machine.apply
_new_state = object.__new__
_set_machine = State._machine.__set__  # type: ignore[misc, attr-defined]
_set_id = State._id.__set__  # type: ignore[misc, attr-defined]


class Machine:
    """A verified machine. Transitions are table lookups: ``apply`` is one index
    into a numpy array, ``apply_many`` one vectorized gather."""

    name: str
    version: int
    vars: tuple[Var, ...]
    events: tuple[str, ...]
    report: Report | None
    meta: dict[str, Any]
    independent: frozenset[frozenset[str]]
    families: dict[str, Family]
    policy_digest: str
    size: int
    initial: State
    _step: np.ndarray
    _event_index: dict[str, int]
    _rows: dict[str | int, np.ndarray]
    _var_names: dict[str, int]
    _weights: tuple[int, ...]
    _nf: np.ndarray | None
    _valid: np.ndarray | None
    _fires: np.ndarray | None
    _analysis: Analysis | None

    def __init__(self) -> None:  # pragma: no cover - use Registry.build / Machine.load
        raise TypeError("build a Machine with Registry.build() or load one with Machine.load()")

    @classmethod
    def from_spec(cls, spec: Any, *, scope: str = "reachable", strict: bool = False,
                  progress: Any = None) -> Machine:
        """Verify and build a MachineSpec (e.g. from ``load_spec``); raises
        ConvergenceError(report) when the proof fails."""
        from .engine.check import analyze
        from .errors import ConvergenceError
        an = analyze(spec, scope=scope, strict=strict, progress=progress)
        if not an.report.ok:
            raise ConvergenceError(an.report)
        return cls._from_analysis(an)

    @classmethod
    def _from_analysis(cls, an: Analysis) -> Machine:
        assert an.step is not None and an.initial_id is not None
        cm = an.compiled
        return cls._from_tables(
            name=cm.spec.name, version=cm.spec.version, vars=tuple(cm.m.vars),
            events=tuple(e.name for e in cm.events), step=an.step,
            initial_id=an.initial_id, report=an.report, analysis=an,
            independent=an.independent if an.step is not None else cm.spec.independent,
            policy_digest=an.report.policy_digest, families=cm.spec.families)

    @classmethod
    def _from_tables(cls, *, name: str, version: int, vars: tuple[Var, ...],
                     events: tuple[str, ...], step: np.ndarray, initial_id: int,
                     report: Report | None, nf: np.ndarray | None = None,
                     valid: np.ndarray | None = None, fires: np.ndarray | None = None,
                     analysis: Analysis | None = None,
                     meta: dict[str, Any] | None = None,
                     independent: Iterable[tuple[str, str]] = (),
                     policy_digest: str = "",
                     families: Iterable[Family] = ()) -> Machine:
        """A machine over ready tables: ``step`` (E, N); ``nf``/``valid``/``fires``
        (full tables) are computed from ``analysis`` on first use when absent."""
        self = object.__new__(cls)
        self.name = name
        self.version = version
        self.vars = vars
        self.events = events
        self.report = report
        self.meta = dict(meta or {})
        # verified independent pairs: these commute at every state in scope
        self.independent = frozenset(
            frozenset(p) for p in independent)
        #: SHA-256 of the machine's meaning (see engine/digest.py)
        self.policy_digest = policy_digest
        #: parameterized events by family name (instances are in ``events``)
        self.families = {f.name: f for f in families}
        self._step = step
        if step.flags.writeable:
            step.setflags(write=False)
        self._event_index = {n: i for i, n in enumerate(events)}
        # per-event rows keyed by name and by index: one dict hit on the hot path
        self._rows = {n: step[i] for i, n in enumerate(events)}
        self._rows.update({i: step[i] for i in range(len(events))})
        self._var_names = {v.name: i for i, v in enumerate(vars)}
        w, acc = [], 1
        for v in vars:
            w.append(acc)
            acc *= v.size
        self._weights = tuple(w)
        self.size = acc
        if step.shape != (len(events), acc):
            raise MachineUsageError(f"step tables have shape {step.shape}, expected "
                                    f"({len(events)}, {acc})")
        self._nf = nf
        self._valid = valid
        self._fires = fires
        self._analysis = analysis
        self.initial = State(self, int(initial_id))
        return self

    # ------------------------------------------------------------ full tables

    def _lifter(self) -> Any:
        from .engine.space import Lifter, Space
        full = Space([v.size for v in self.vars], range(len(self.vars)))
        return full, Lifter(full)

    @property
    def nf_table(self) -> np.ndarray:
        """``nf[state_id]``: the normal form of every state (read-only)."""
        if self._nf is None:
            an = self._require_analysis("nf")
            full, lifter = self._lifter()
            norm = an.normalizer
            delta = norm.nf_delta(full).astype(full.dtype)
            self._nf = lifter.gather(norm.space, delta, add_ids=True)
            self._nf.setflags(write=False)
        return self._nf

    @property
    def valid_table(self) -> np.ndarray:
        """``valid[state_id]``: whether every invariant holds (read-only)."""
        if self._valid is None:
            an = self._require_analysis("valid")
            _, lifter = self._lifter()
            self._valid = lifter.gather(an.normalizer.space, an.normalizer.valid)
            self._valid.setflags(write=False)
        return self._valid

    @property
    def fires_table(self) -> np.ndarray:
        """``fires[event, state_id]``: whether the event's guard holds (read-only)."""
        if self._fires is None:
            an = self._require_analysis("fires")
            _, lifter = self._lifter()
            out = np.empty((len(self.events), self.size), dtype=bool)
            for e in an.compiled.events:
                lifter.gather(e.space, e.fires, out=out[e.index])
            out.setflags(write=False)
            self._fires = out
        return self._fires

    def _require_analysis(self, what: str) -> Analysis:
        if self._analysis is None:
            raise MachineUsageError(f"this machine was loaded without its {what} table")
        return self._analysis

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

    def instance(self, family: str, *args: Any) -> str:
        """The name of one instance of an event family: ``instance("withdraw",
        40) == "withdraw(40)"``; arguments are checked against the params."""
        from .spec.params import instance_name
        fam = self.families.get(family)
        if fam is None:
            known = ", ".join(self.families) or "none"
            raise MachineUsageError(f"{family!r} is not an event family of {self.name!r} "
                                    f"(families: {known})")
        if len(args) != len(fam.params):
            raise MachineUsageError(f"{family} takes {len(fam.params)} argument(s) "
                                    f"({', '.join(p.name for p in fam.params)}), got {len(args)}")
        for p, a in zip(fam.params, args):
            ok = (isinstance(a, (bool, np.bool_)) if p.kind == "bool" else
                  isinstance(a, str) if p.kind == "enum" else
                  isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)))
            if not ok or a not in p.values:
                raise MachineUsageError(f"{family}: {p.name}={a!r} is outside its domain "
                                        f"({p.describe()})")
        return instance_name(family, args)

    def _own(self, state: State) -> int:
        if not isinstance(state, State) or state._machine is not self:
            raise MachineUsageError(f"{state!r} is not a state of machine {self.name!r}")
        return state._id

    # ------------------------------------------------------------ API

    def apply(self, state: State, event: str | int, *args: Any) -> State:
        """The normalized state after ``event`` (a no-op when its guard is false).
        For an event family, pass its arguments: ``apply(s, "withdraw", 40)``."""
        if state.__class__ is not State or state._machine is not self:
            self._own(state)
        if args:
            event = self.instance(event, *args)  # type: ignore[arg-type]
        row = self._rows.get(event)
        if row is None:
            row = self._step[self._event(event)]
        out = _new_state(State)
        _set_machine(out, self)
        _set_id(out, row.item(state._id))
        return out

    def commutes(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` form a verified independent pair."""
        return frozenset((a, b)) in self.independent

    def state_digest(self, state: State) -> str:
        from .engine.digest import state_digest
        return state_digest(self.policy_digest, self.decode(state))

    def apply_id(self, state_id: int, event: str | int, *args: Any) -> int:
        """``apply`` on raw state ids: the fastest path, for hot loops."""
        if args:
            event = self.instance(event, *args)  # type: ignore[arg-type]
        return int(self._step[self._event(event), state_id])

    def apply_many(self, states: np.ndarray, event: str | int, *args: Any) -> np.ndarray:
        """Vectorized ``apply`` over an array of state ids."""
        if args:
            event = self.instance(event, *args)  # type: ignore[arg-type]
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
        return bool(self.valid_table[self._own(state)])

    def normalize(self, state: State) -> State:
        """The normal form: repairs applied, first failing invariant first."""
        return State(self, int(self.nf_table[self._own(state)]))

    def enabled(self, state: State) -> list[str]:
        """Events whose guard holds at ``state``."""
        sid = self._own(state)
        fires = self.fires_table
        return [name for i, name in enumerate(self.events) if fires[i, sid]]

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

    # ------------------------------------------------------------ files

    def export(self, path: str, **options: Any) -> Any:
        """Write the machine to ``path`` (``.json``, ``.json.gz`` or the compact
        binary ``.cvm``); see ``convergent.export``."""
        from .export import export_machine
        return export_machine(self, path, **options)

    @classmethod
    def load(cls, path: str, **options: Any) -> Machine:
        """Load a machine written by ``export`` (or a gsm JSON export)."""
        from .export import load_machine
        return load_machine(path, **options)

    def _repr_html_(self) -> str:
        """Jupyter: vars, events, verdict and a small state diagram (``convergent.viz``)."""
        from .viz.notebook import machine_html
        return machine_html(self)

    def _repr_svg_(self) -> str | None:
        """Jupyter: the reachable state graph when small and graphviz is installed."""
        from .viz.notebook import machine_svg
        return machine_svg(self)

    def __repr__(self) -> str:
        verdict = self.report.verdict if self.report is not None else self.meta.get("verdict")
        return (f"Machine({self.name!r}, vars={len(self.vars)}, events={len(self.events)}, "
                f"states={self.size}, verdict={verdict!r})")
