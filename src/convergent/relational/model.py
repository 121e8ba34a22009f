"""Values a relational machine hands out: results, mutations, transitions,
handler events and snapshots.

``Mutation`` and ``Transition`` are slotted classes rather than frozen
dataclasses because a machine creates one of each per mutation and fills a
transition in as it runs; handlers and tracers should treat them as read-only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

__all__ = ["CANCELED", "EXECUTED", "Event", "LogLevel", "MachineState", "Mutation", "MutationType",
           "Outcome", "Result", "Snapshot", "Transition"]

EMPTY_ARGS: Mapping[str, Any] = MappingProxyType({})


class MachineState(enum.Enum):
    """Where a machine is in its life (httpx's ``ClientState``, for machines)."""

    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class LogLevel(enum.IntEnum):
    """The reference's log levels; messages use its formats (``[state] +Foo``)."""

    NOTHING = 0
    CHANGES = 1
    OPS = 2
    DECISIONS = 3
    EVERYTHING = 4


class MutationType(enum.IntEnum):
    """The three mutations: keep others and activate, deactivate, replace all."""

    ADD = 0
    REMOVE = 1
    SET = 2

    def __str__(self) -> str:
        return self.name.lower()


class Outcome(enum.Enum):
    EXECUTED = "executed"
    CANCELED = "canceled"
    QUEUED = "queued"


@dataclass(frozen=True, slots=True)
class Result:
    """What a mutation call returns.

    ``queue_tick`` is set for ``QUEUED``: the machine's queue tick at which the
    mutation will have run, to pass to ``machine.when_queue``. The reference
    encodes the same as one integer (0 executed, 1 canceled, >= 2 queue tick).
    """

    outcome: Outcome
    queue_tick: int = 0

    @property
    def executed(self) -> bool:
        return self.outcome is Outcome.EXECUTED

    @property
    def canceled(self) -> bool:
        return self.outcome is Outcome.CANCELED

    @property
    def queued(self) -> bool:
        return self.outcome is Outcome.QUEUED

    def __str__(self) -> str:
        return self.outcome.value


EXECUTED = Result(Outcome.EXECUTED)
CANCELED = Result(Outcome.CANCELED)


class Mutation:
    """A request to change the active states, waiting in or taken from the queue."""

    __slots__ = ("args", "called", "is_auto", "is_recovery", "kind", "queue_tick", "result",
                 "source")

    def __init__(self, kind: int, called: list[int], args: Mapping[str, Any],
                 is_auto: bool = False, queue_tick: int = 0, source: str | None = None,
                 is_recovery: bool = False) -> None:
        self.kind = kind
        self.called = called
        self.args = args
        self.is_auto = is_auto
        self.is_recovery = is_recovery
        """The ``Exception`` mutation prepended for a failed handler: when it
        activates or deactivates nothing (``Exception`` was already active), no
        auto mutation follows it, so a failing auto state is not retried forever."""
        self.queue_tick = queue_tick
        self.result: Result | None = None
        self.source = source

    @property
    def type(self) -> MutationType:
        return MutationType(self.kind)

    def describe(self, names: tuple[str, ...]) -> str:
        """``[add] Foo Bar``, the reference's mutation format."""
        return f"[{MutationType(self.kind)}] " + " ".join(names[s] for s in self.called)

    def __repr__(self) -> str:
        return (f"Mutation({MutationType(self.kind)}, called={self.called}, "
                f"queue_tick={self.queue_tick}, auto={self.is_auto})")


class Transition:
    """One mutation being executed: what was called, what the relations
    resolved to, and what the handlers decided."""

    __slots__ = (
        "_names",
        "accepted",
        "before",
        "completed",
        "enters",
        "exits",
        "id",
        "machine",
        "mutation",
        "targets",
        "time_after",
        "time_before",
    )

    def __init__(self, tx_id: int, machine: Machine, mutation: Mutation, before: list[int],
                 time_before: tuple[int, ...], names: tuple[str, ...],
                 targets: list[int] | None = None, exits: list[int] | None = None,
                 enters: list[int] | None = None) -> None:
        self.id = tx_id
        self.machine = machine
        self.mutation = mutation
        self.before = before
        self.targets: list[int] = [] if targets is None else targets
        self.exits: list[int] = [] if exits is None else exits
        self.enters: list[int] = [] if enters is None else enters
        self.time_before = time_before
        self.time_after = time_before
        self.accepted = True
        self.completed = False
        self._names = names

    @property
    def is_auto(self) -> bool:
        return self.mutation.is_auto

    @property
    def type(self) -> MutationType:
        return MutationType(self.mutation.kind)

    @property
    def args(self) -> Mapping[str, Any]:
        return self.mutation.args

    def _n(self, states: list[int]) -> tuple[str, ...]:
        names = self._names
        return tuple(names[s] for s in states)

    @property
    def called_states(self) -> tuple[str, ...]:
        return self._n(self.mutation.called)

    @property
    def target_states(self) -> tuple[str, ...]:
        return self._n(self.targets)

    @property
    def states_before(self) -> tuple[str, ...]:
        return self._n(self.before)

    @property
    def entered(self) -> tuple[str, ...]:
        return self._n(self.enters)

    @property
    def exited(self) -> tuple[str, ...]:
        return self._n(self.exits)

    @property
    def clock_before(self) -> dict[str, int]:
        return dict(zip(self._names, self.time_before, strict=True))

    @property
    def clock_after(self) -> dict[str, int]:
        return dict(zip(self._names, self.time_after, strict=True))

    def __str__(self) -> str:
        return f"tx#{self.id} {self.mutation.describe(self._names)}"

    def __repr__(self) -> str:
        return (f"Transition(id={self.id}, {self.mutation.describe(self._names)}, "
                f"targets={list(self.target_states)}, accepted={self.accepted})")


class Event:
    """What a handler receives: its own name, the machine, the transition and
    the mutation's arguments."""

    __slots__ = ("machine", "name", "transition")

    def __init__(self, name: str, machine: Machine, transition: Transition) -> None:
        self.name = name
        self.machine = machine
        self.transition = transition

    @property
    def args(self) -> Mapping[str, Any]:
        return self.transition.mutation.args

    @property
    def mutation(self) -> Mutation:
        return self.transition.mutation

    def __repr__(self) -> str:
        return f"Event({self.name!r}, tx={self.transition.id})"


@dataclass(frozen=True)
class Snapshot:
    """The active states of a machine with their clocks (the reference's
    ``Serialized``): enough, with the same schema, to restore a machine."""

    id: str
    state_names: tuple[str, ...]
    time: tuple[int, ...]
    queue_tick: int = 1
    machine_tick: int = 0

    def __post_init__(self) -> None:
        if len(self.state_names) != len(self.time):
            raise ValueError(f"state_names ({len(self.state_names)}) and time "
                             f"({len(self.time)}) differ in length")

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(n for n, t in zip(self.state_names, self.time, strict=True) if t % 2)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state_names": list(self.state_names), "time": list(self.time),
                "queue_tick": self.queue_tick, "machine_tick": self.machine_tick}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        try:
            return cls(id=str(data["id"]), state_names=tuple(data["state_names"]),
                       time=tuple(int(t) for t in data["time"]),
                       queue_tick=int(data.get("queue_tick", 1)),
                       machine_tick=int(data.get("machine_tick", 0)))
        except KeyError as exc:
            raise ValueError(f"snapshot lacks {exc.args[0]!r}") from None
