"""What goes into the pure core and what comes out of it.

The core (``core.py``) is a function from (its state, one ``Input``) to (its
new state, a list of ``Effect``). It never sleeps, reads a clock, touches a
socket or calls a provider: the asyncio runtime and the simulator interpret
the effects, each with its own notion of time, and feed results back in as
inputs. That is what makes a simulated run replayable from its seed and keeps
the real node's event loop free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .evidence import Equivocation
from .machine import Event, Phase
from .messages import Certificate, Message

__all__ = [
    "Call",
    "CancelCall",
    "CertifiedValue",
    "Decision",
    "Deliver",
    "Effect",
    "EvidenceFound",
    "FaultObserved",
    "Finalized",
    "ForceResync",
    "Input",
    "Notification",
    "Notify",
    "ProviderDone",
    "ProviderFailed",
    "Send",
    "SetTimer",
    "Start",
    "Stop",
    "TimerFired",
    "TransitionRecord",
]

V = TypeVar("V")
NodeId = str


# -- inputs -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Start:
    """Leave ``stopped``."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Shut down from any running phase."""


@dataclass(frozen=True, slots=True)
class ForceResync:
    """Go back to ``loading`` and ask the sync provider to catch up."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message arrived from the network (its sender is whoever signed it)."""

    message: Message


@dataclass(frozen=True, slots=True)
class ProviderDone:
    """The provider call ``token`` returned ``result``."""

    token: int
    result: Any


@dataclass(frozen=True, slots=True)
class ProviderFailed:
    """The provider call ``token`` raised, timed out or was cancelled."""

    token: int
    error: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The timer set with ``token`` expired; ignored unless the phase is still the same entry."""

    token: int
    event: Event


Input = Start | Stop | ForceResync | Deliver | ProviderDone | ProviderFailed | TimerFired


# -- values reported ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Decision(Generic[V]):
    """A finalized height: the value, its digest and the commit certificate proving it."""

    height: int
    view: int
    value: V
    raw: bytes
    digest: bytes
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class CertifiedValue:
    """What a sync provider returns: a past height's value and its commit certificate."""

    height: int
    value: bytes
    certificate: Certificate


# -- notifications (for listeners) --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One transition taken (internal ones included)."""

    time: float
    node: NodeId
    height: int
    view: int
    source: Phase
    event: Event
    target: Phase
    internal: bool


@dataclass(frozen=True, slots=True)
class Finalized(Generic[V]):
    time: float
    node: NodeId
    decision: Decision[V]


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    time: float
    node: NodeId
    evidence: Equivocation


@dataclass(frozen=True, slots=True)
class FaultObserved:
    """A confirmation disagreed with the local result (``kind`` says how), or a provider failed."""

    time: float
    node: NodeId
    height: int
    kind: str
    peer: NodeId | None
    detail: str


Notification = TransitionRecord | Finalized[Any] | EvidenceFound | FaultObserved


# -- effects ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message``; ``to=None`` means every other validator of the message's epoch."""

    message: Message
    to: NodeId | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """Run ``providers.<provider>.<method>(*args)`` as a task; answer with ProviderDone/Failed."""

    token: int
    provider: str
    method: str
    args: tuple[Any, ...]
    timeout: float | None


@dataclass(frozen=True, slots=True)
class CancelCall:
    """The result of call ``token`` is no longer wanted."""

    token: int


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Fire ``TimerFired(token, event)`` after ``delay`` seconds."""

    token: int
    delay: float
    event: Event


@dataclass(frozen=True, slots=True)
class Notify:
    note: Notification


Effect = Send | Call | CancelCall | SetTimer | Notify
