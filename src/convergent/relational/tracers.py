"""Tracers: observers of a machine's queue, transitions and handlers.

A tracer implements any subset of the ``Tracer`` hooks; the machine looks each
hook up once, when the tracer is bound, and calls only those present. Tracers
observe: an exception raised by a hook is logged and otherwise ignored, so a
broken tracer cannot change what the machine does.

``HistoryTracer`` keeps the last transitions (bounded) as ``TransitionRecord``
values, the Python counterpart of the reference's ``pkg/history``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .model import Mutation, MutationType, Transition

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

__all__ = ["HOOKS", "HandlerTrace", "HistoryTracer", "Tracer", "TransitionRecord"]

HOOKS = ("mutation_queued", "transition_start", "transition_end", "handler_visit",
         "handler_start", "handler_end", "queue_end")


class Tracer(Protocol):
    """Every hook a tracer may implement (all optional at run time)."""

    def mutation_queued(self, machine: Machine, mutation: Mutation) -> None:
        """A mutation entered the queue (prepended ones included)."""

    def transition_start(self, transition: Transition) -> None:
        """Relations are resolved; negotiation is about to start."""

    def transition_end(self, transition: Transition) -> None:
        """The transition is complete, accepted or not."""

    def handler_visit(self, transition: Transition, name: str) -> None:
        """The transition reached handler ``name`` (``Foo_exit``, ``Foo_enter``,
        ``Foo_Foo``, ``Foo_Bar``, ``any_enter``, ``Foo_end``, ``Foo_state``,
        ``any_state``), whether or not a handler is bound to it: the names the
        reference's ``Machine.handle`` is called with, in its order. A bound
        handler's ``handler_start`` follows. Binding this hook makes the machine
        walk every name, so keep it for tests and debugging."""

    def handler_start(self, transition: Transition, name: str) -> None:
        """A handler is about to run."""

    def handler_end(self, transition: Transition, name: str) -> None:
        """A handler returned (or raised)."""

    def queue_end(self, machine: Machine) -> None:
        """The queue is empty again."""


class HandlerTrace:
    """Records every handler name the machine reaches, bound or not, in order
    (the ``handler_visit`` hook), so a test can assert a whole handler trace
    without binding every name. ``by_transition`` keeps the transition ids."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.by_transition: list[tuple[int, str]] = []

    def handler_visit(self, transition: Transition, name: str) -> None:
        self.names.append(name)
        self.by_transition.append((transition.id, name))

    def of(self, transition_id: int) -> list[str]:
        """The names reached in one transition."""
        return [name for tx, name in self.by_transition if tx == transition_id]

    def clear(self) -> None:
        self.names.clear()
        self.by_transition.clear()


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One finished transition as history keeps it."""

    id: int
    type: MutationType
    called: tuple[str, ...]
    is_auto: bool
    accepted: bool
    before: tuple[str, ...]
    after: tuple[str, ...]
    time_after: tuple[int, ...]

    @property
    def activated(self) -> tuple[str, ...]:
        return tuple(s for s in self.after if s not in self.before)

    @property
    def deactivated(self) -> tuple[str, ...]:
        return tuple(s for s in self.before if s not in self.after)


class HistoryTracer:
    """Keeps the last ``maxlen`` transitions.

    Recording is cheap (a tuple of the transition's index lists); names are
    attached when records are read.
    """

    def __init__(self, maxlen: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen={maxlen!r} (expected >= 1)")
        self._raw: deque[tuple[int, int, list[int], bool, bool, list[int], list[int],
                               tuple[int, ...], tuple[str, ...]]] = deque(maxlen=maxlen)
        self.total = 0

    def transition_end(self, transition: Transition) -> None:
        mut = transition.mutation
        after = transition.machine._active if transition.accepted else transition.before
        self._raw.append((transition.id, mut.kind, mut.called, mut.is_auto,
                          transition.accepted, transition.before, list(after),
                          transition.time_after, transition._names))
        self.total += 1

    @property
    def records(self) -> list[TransitionRecord]:
        return list(self)

    def __iter__(self) -> Iterator[TransitionRecord]:
        for tx_id, kind, called, auto, ok, before, after, time_after, names in self._raw:
            yield TransitionRecord(
                id=tx_id, type=MutationType(kind), called=tuple(names[s] for s in called),
                is_auto=auto, accepted=ok, before=tuple(names[s] for s in before),
                after=tuple(names[s] for s in after), time_after=time_after)

    def __len__(self) -> int:
        return len(self._raw)

    def last(self) -> TransitionRecord | None:
        return next(iter(reversed(self.records)), None) if self._raw else None

    def activated_recently(self, state: str, within: int = 10) -> bool:
        """Whether one of the last ``within`` accepted transitions activated ``state``."""
        return any(rec.accepted and state in rec.activated for rec in self.records[-within:])

    def clear(self) -> None:
        self._raw.clear()
