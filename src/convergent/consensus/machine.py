"""The consensus machine as data: phases, events, the transition table and timeouts.

The table is a frozen value so that it can be checked once (every timeout has a
transition, every phase is reachable, every running phase accepts ``stop`` and a
forced re-sync), rendered (``render.py``), and changed by a user without touching
the protocol code. The protocol core (``core.py``) never hard-codes a phase
change: it raises an ``Event`` and looks the target up here. Safety does not
depend on the table: the rules that make two honest nodes agree live in the core
and hold whatever phase a node is in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

from .errors import ConfigError

__all__ = ["Event", "MachineSpec", "Phase", "StateConfig", "Transition"]


class Phase(str, Enum):
    """Where a node is in its life and in the current (height, view)."""

    STOPPED = "stopped"
    STARTING = "starting"
    LOADING = "loading"
    COLLECTING = "collecting"
    LIVENESS_CHECK = "liveness_check"
    PROVING = "proving"
    PUBLISHING = "publishing"
    VOTING = "voting"
    FINALIZING = "finalizing"
    VERIFYING = "verifying"
    STOPPING = "stopping"

    def __str__(self) -> str:
        return self.value


class Event(str, Enum):
    """Everything that can move a node from one phase to another."""

    START = "start"
    STOP = "stop"
    INDUCE_SYNC = "induce_sync"
    INIT_COMPLETE = "init_complete"
    SYNC_COMPLETE = "sync_complete"
    SYNC_TIMEOUT = "sync_timeout"
    COLLECTION_DONE = "collection_done"
    COLLECTION_TIMEOUT = "collection_timeout"
    LIVENESS_CHECK_RECEIVED = "liveness_check_received"
    PROVER_SIGNAL = "prover_signal"
    LIVENESS_TIMEOUT = "liveness_timeout"
    PROOF_COMPLETE = "proof_complete"
    PROVING_TIMEOUT = "proving_timeout"
    PUBLISH_COMPLETE = "publish_complete"
    PUBLISH_TIMEOUT = "publish_timeout"
    PROPOSAL_RECEIVED = "proposal_received"
    VOTE_RECEIVED = "vote_received"
    QUORUM_REACHED = "quorum_reached"
    VOTING_TIMEOUT = "voting_timeout"
    AGGREGATION_DONE = "aggregation_done"
    AGGREGATION_TIMEOUT = "aggregation_timeout"
    CONFIRMATION_RECEIVED = "confirmation_received"
    VERIFICATION_DONE = "verification_done"
    VERIFICATION_TIMEOUT = "verification_timeout"
    VIEW_CHANGE = "view_change"
    CLEANUP_COMPLETE = "cleanup_complete"
    STOPPING_TIMEOUT = "stopping_timeout"

    def __str__(self) -> str:
        return self.value


RUNNING: tuple[Phase, ...] = (
    Phase.STARTING, Phase.LOADING, Phase.COLLECTING, Phase.LIVENESS_CHECK, Phase.PROVING,
    Phase.PUBLISHING, Phase.VOTING, Phase.FINALIZING, Phase.VERIFYING,
)
"""Phases in which a node is up: each must accept ``stop`` and ``induce_sync``."""

_IN_ROUND: tuple[Phase, ...] = (
    Phase.COLLECTING, Phase.LIVENESS_CHECK, Phase.PROVING, Phase.PUBLISHING,
    Phase.VOTING, Phase.FINALIZING,
)


@dataclass(frozen=True)
class Transition:
    """``source --event--> target``.

    An *internal* transition (a message counted while staying put) is shown to
    listeners but does not re-enter the phase: it neither restarts the phase's
    timer nor its entry action, so a flood of messages cannot hold a node in a
    phase forever.
    """

    source: Phase
    event: Event
    target: Phase
    internal: bool = False


@dataclass(frozen=True)
class StateConfig:
    """A phase's timeout (seconds, ``None`` for none) and the event it fires.

    ``scales_with_view`` multiplies the timeout by ``view_backoff ** view``
    (capped): after the network stabilizes, growing timeouts are what lets
    honest nodes eventually wait long enough for each other.
    """

    timeout: float | None = None
    on_timeout: Event | None = None
    scales_with_view: bool = False


def _default_transitions() -> list[Transition]:
    t = Transition
    rows = [
        t(Phase.STOPPED, Event.START, Phase.STARTING),
        t(Phase.STARTING, Event.INIT_COMPLETE, Phase.LOADING),
        t(Phase.LOADING, Event.SYNC_COMPLETE, Phase.COLLECTING),
        t(Phase.LOADING, Event.SYNC_TIMEOUT, Phase.COLLECTING),
        t(Phase.COLLECTING, Event.COLLECTION_DONE, Phase.LIVENESS_CHECK),
        t(Phase.COLLECTING, Event.COLLECTION_TIMEOUT, Phase.LIVENESS_CHECK),
        t(Phase.LIVENESS_CHECK, Event.LIVENESS_CHECK_RECEIVED, Phase.LIVENESS_CHECK, True),
        t(Phase.LIVENESS_CHECK, Event.PROVER_SIGNAL, Phase.PROVING),
        t(Phase.LIVENESS_CHECK, Event.PROPOSAL_RECEIVED, Phase.VOTING),
        t(Phase.LIVENESS_CHECK, Event.LIVENESS_TIMEOUT, Phase.COLLECTING),
        t(Phase.PROVING, Event.PROOF_COMPLETE, Phase.PUBLISHING),
        t(Phase.PROVING, Event.PROPOSAL_RECEIVED, Phase.VOTING),
        t(Phase.PROVING, Event.PROVING_TIMEOUT, Phase.COLLECTING),
        t(Phase.PUBLISHING, Event.PUBLISH_COMPLETE, Phase.VOTING),
        t(Phase.PUBLISHING, Event.PUBLISH_TIMEOUT, Phase.VOTING),
        t(Phase.VOTING, Event.PROPOSAL_RECEIVED, Phase.VOTING, True),
        t(Phase.VOTING, Event.VOTE_RECEIVED, Phase.VOTING, True),
        t(Phase.VOTING, Event.QUORUM_REACHED, Phase.FINALIZING),
        t(Phase.VOTING, Event.VOTING_TIMEOUT, Phase.COLLECTING),
        t(Phase.FINALIZING, Event.VOTE_RECEIVED, Phase.FINALIZING, True),
        t(Phase.FINALIZING, Event.AGGREGATION_TIMEOUT, Phase.COLLECTING),
        t(Phase.VERIFYING, Event.CONFIRMATION_RECEIVED, Phase.VERIFYING, True),
        t(Phase.VERIFYING, Event.VERIFICATION_DONE, Phase.COLLECTING),
        t(Phase.VERIFYING, Event.VERIFICATION_TIMEOUT, Phase.COLLECTING),
        t(Phase.STOPPING, Event.CLEANUP_COMPLETE, Phase.STOPPED),
        t(Phase.STOPPING, Event.STOPPING_TIMEOUT, Phase.STOPPED),
    ]
    for phase in _IN_ROUND:
        rows.append(t(phase, Event.AGGREGATION_DONE, Phase.VERIFYING))
        rows.append(t(phase, Event.VIEW_CHANGE, Phase.COLLECTING))
    for phase in RUNNING:
        rows.append(t(phase, Event.STOP, Phase.STOPPING))
        rows.append(t(phase, Event.INDUCE_SYNC, Phase.LOADING))
    return rows


_DEFAULT_STATES: dict[Phase, StateConfig] = {
    Phase.STARTING: StateConfig(1.0, Event.INIT_COMPLETE),
    Phase.LOADING: StateConfig(600.0, Event.SYNC_TIMEOUT),
    Phase.COLLECTING: StateConfig(1.0, Event.COLLECTION_TIMEOUT),
    Phase.LIVENESS_CHECK: StateConfig(1.0, Event.LIVENESS_TIMEOUT, True),
    Phase.PROVING: StateConfig(120.0, Event.PROVING_TIMEOUT, True),
    Phase.PUBLISHING: StateConfig(1.0, Event.PUBLISH_TIMEOUT),
    Phase.VOTING: StateConfig(10.0, Event.VOTING_TIMEOUT, True),
    Phase.FINALIZING: StateConfig(1.0, Event.AGGREGATION_TIMEOUT, True),
    Phase.VERIFYING: StateConfig(1.0, Event.VERIFICATION_TIMEOUT),
    Phase.STOPPING: StateConfig(30.0, Event.STOPPING_TIMEOUT),
}


@dataclass(frozen=True)
class MachineSpec:
    """A checked transition table with per-phase timeouts.

    Build the reference machine with ``MachineSpec.default()`` and derive variants
    with ``with_timeouts``, ``scaled``, ``with_transitions``; every constructor
    re-checks the whole table and raises ``ConfigError`` listing all problems.

    ``view_change_on`` are the events after which the core gives up on the
    current view (it moves to view + 1 before the transition is taken);
    ``next_height_on`` the events after which it moves to the next height.
    """

    transitions: tuple[Transition, ...]
    states: Mapping[Phase, StateConfig]
    initial: Phase = Phase.STOPPED
    view_backoff: float = 2.0
    max_backoff_exponent: int = 4
    view_change_on: frozenset[Event] = frozenset({
        Event.LIVENESS_TIMEOUT, Event.PROVING_TIMEOUT, Event.VOTING_TIMEOUT,
        Event.AGGREGATION_TIMEOUT,
    })
    next_height_on: frozenset[Event] = frozenset({
        Event.VERIFICATION_DONE, Event.VERIFICATION_TIMEOUT,
    })
    _index: Mapping[tuple[Phase, Event], Transition] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "transitions", tuple(self.transitions))
        object.__setattr__(self, "states", MappingProxyType(dict(self.states)))
        problems: list[str] = []
        index: dict[tuple[Phase, Event], Transition] = {}
        for tr in self.transitions:
            key = (tr.source, tr.event)
            if key in index:
                problems.append(f"two transitions for {tr.source} --{tr.event}-->")
            index[key] = tr
        object.__setattr__(self, "_index", MappingProxyType(index))
        for phase, cfg in self.states.items():
            if cfg.timeout is not None:
                if not cfg.timeout > 0:
                    problems.append(f"timeout of {phase}={cfg.timeout!r} (expected > 0)")
                if cfg.on_timeout is None:
                    problems.append(f"{phase} has a timeout but no on_timeout event")
                elif (phase, cfg.on_timeout) not in index:
                    problems.append(
                        f"{phase} times out with {cfg.on_timeout} but has no transition for it")
        for phase in RUNNING:
            for ev in (Event.STOP, Event.INDUCE_SYNC):
                if (phase, ev) not in index:
                    problems.append(f"running phase {phase} does not accept {ev}")
        reached = {self.initial}
        frontier = [self.initial]
        while frontier:
            src = frontier.pop()
            for tr in self.transitions:
                if tr.source is src and tr.target not in reached:
                    reached.add(tr.target)
                    frontier.append(tr.target)
        unreachable = sorted(p.value for p in Phase if p not in reached)
        if unreachable:
            problems.append(f"unreachable phases: {', '.join(unreachable)}")
        for phase in Phase:
            if phase in reached and not any(tr.source is phase for tr in self.transitions):
                problems.append(f"phase {phase} has no way out")
        if not self.view_backoff >= 1.0:
            problems.append(f"view_backoff={self.view_backoff!r} (expected >= 1)")
        if self.max_backoff_exponent < 0:
            problems.append(f"max_backoff_exponent={self.max_backoff_exponent!r} (expected >= 0)")
        if problems:
            raise ConfigError("invalid machine spec:\n  " + "\n  ".join(problems))

    # -- construction -----------------------------------------------------------------

    @classmethod
    def default(cls) -> MachineSpec:
        """The reference design: its phases, events and timeouts (seconds)."""
        return cls(tuple(_default_transitions()), dict(_DEFAULT_STATES))

    def with_timeouts(self, **seconds: float | None) -> MachineSpec:
        """Change timeouts by phase name, e.g. ``with_timeouts(proving=2.0, voting=1.0)``."""
        states = dict(self.states)
        for name, value in seconds.items():
            try:
                phase = Phase(name)
            except ValueError:
                raise ConfigError(f"unknown phase {name!r} in with_timeouts") from None
            states[phase] = replace(states.get(phase, StateConfig()), timeout=value)
        return replace(self, states=states)

    def scaled(self, factor: float) -> MachineSpec:
        """Every timeout multiplied by ``factor`` (a faster or slower network)."""
        if not factor > 0:
            raise ConfigError(f"factor={factor!r} (expected > 0)")
        states = {p: replace(c, timeout=None if c.timeout is None else c.timeout * factor)
                  for p, c in self.states.items()}
        return replace(self, states=states)

    def with_transitions(self, add: Iterable[Transition] = (),
                         remove: Iterable[tuple[Phase, Event]] = ()) -> MachineSpec:
        """A copy with rows removed (by ``(source, event)``) and then added."""
        gone = set(remove)
        rows = [t for t in self.transitions if (t.source, t.event) not in gone]
        added = list(add)
        keys = {(t.source, t.event) for t in added}
        rows = [t for t in rows if (t.source, t.event) not in keys] + added
        return replace(self, transitions=tuple(rows))

    @classmethod
    def from_dict(cls, doc: Mapping[str, object], base: MachineSpec | None = None,
                  ) -> MachineSpec:
        """A machine described as data (e.g. a JSON file), on top of ``base`` (the default).

        Keys, all optional: ``scale`` (every timeout times it), ``timeouts`` (phase name to
        seconds or null), ``remove`` (``[source, event]`` rows), ``add`` (rows as
        ``{"source", "event", "target", "internal"}``), ``view_backoff``,
        ``max_backoff_exponent``. Every problem is reported at once in a ``ConfigError``.
        """
        spec = base or cls.default()
        problems: list[str] = []
        if not isinstance(doc, Mapping):
            raise ConfigError(f"machine description is a {type(doc).__name__} (expected an "
                              "object)")
        known = {"scale", "timeouts", "remove", "add", "view_backoff", "max_backoff_exponent"}
        problems += [f"unknown key {k!r} (expected one of {sorted(known)})"
                     for k in doc if k not in known]

        def phase(value: object, where: str) -> Phase | None:
            try:
                return Phase(value)
            except ValueError:
                problems.append(f"{where}: unknown phase {value!r}")
                return None

        def event(value: object, where: str) -> Event | None:
            try:
                return Event(value)
            except ValueError:
                problems.append(f"{where}: unknown event {value!r}")
                return None

        scale = doc.get("scale")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int | float)
                                  or not scale > 0):
            problems.append(f"scale={scale!r} (expected a number > 0)")
            scale = None
        timeouts: dict[str, float | None] = {}
        raw_timeouts = doc.get("timeouts", {})
        if not isinstance(raw_timeouts, Mapping):
            problems.append(f"timeouts={raw_timeouts!r} (expected an object)")
            raw_timeouts = {}
        for name, value in raw_timeouts.items():
            if phase(name, f"timeouts.{name}") is None:
                continue
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, int | float) or not value > 0):
                problems.append(f"timeouts.{name}={value!r} (expected seconds > 0 or null)")
                continue
            timeouts[str(name)] = None if value is None else float(value)
        remove: list[tuple[Phase, Event]] = []
        for i, row in enumerate(_rows(doc.get("remove", []), "remove", problems)):
            if not isinstance(row, list | tuple) or len(row) != 2:
                problems.append(f"remove[{i}]={row!r} (expected [source, event])")
                continue
            src, ev = phase(row[0], f"remove[{i}]"), event(row[1], f"remove[{i}]")
            if src is not None and ev is not None:
                if spec.transition(src, ev) is None:
                    problems.append(f"remove[{i}]: there is no row {src} --{ev}-->")
                remove.append((src, ev))
        add: list[Transition] = []
        for i, row in enumerate(_rows(doc.get("add", []), "add", problems)):
            if not isinstance(row, Mapping) or not {"source", "event", "target"} <= set(row):
                problems.append(f"add[{i}]={row!r} (expected source, event, target)")
                continue
            src, ev = phase(row["source"], f"add[{i}]"), event(row["event"], f"add[{i}]")
            dst = phase(row["target"], f"add[{i}]")
            if src is not None and ev is not None and dst is not None:
                add.append(Transition(src, ev, dst, bool(row.get("internal", False))))
        changes: dict[str, object] = {}
        for key, kind in (("view_backoff", (int, float)), ("max_backoff_exponent", (int,))):
            if key in doc:
                value = doc[key]
                if isinstance(value, bool) or not isinstance(value, kind):
                    problems.append(f"{key}={value!r} (expected a number)")
                else:
                    changes[key] = value
        if problems:
            raise ConfigError("invalid machine description:\n  " + "\n  ".join(problems))
        if scale is not None:
            spec = spec.scaled(float(scale))
        if timeouts:
            spec = spec.with_timeouts(**timeouts)
        if add or remove:
            spec = spec.with_transitions(add=add, remove=remove)
        if changes:
            spec = replace(spec, **changes)  # type: ignore[arg-type]
        return spec

    # -- queries ------------------------------------------------------------------------

    def transition(self, phase: Phase, event: Event) -> Transition | None:
        """The row for ``phase --event-->``, or ``None``: the event is not accepted there."""
        return self._index.get((phase, event))

    def timeout(self, phase: Phase, view: int = 0) -> float | None:
        """The timeout of ``phase`` in ``view`` (seconds), backoff applied."""
        cfg = self.states.get(phase)
        if cfg is None or cfg.timeout is None:
            return None
        if not cfg.scales_with_view:
            return cfg.timeout
        return cfg.timeout * self.view_backoff ** min(view, self.max_backoff_exponent)

    def timeout_event(self, phase: Phase) -> Event | None:
        cfg = self.states.get(phase)
        return None if cfg is None else cfg.on_timeout

    @property
    def phases(self) -> tuple[Phase, ...]:
        return tuple(Phase)


def _rows(value: object, key: str, problems: list[str]) -> list[object]:
    if not isinstance(value, list):
        problems.append(f"{key}={value!r} (expected a list)")
        return []
    return value
