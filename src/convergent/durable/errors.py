"""Errors of the durable layer, all under ``ConvergentError``.

::

    ConvergentError
    +-- SpecError (ValueError)
    |   +-- ChartError                 a statechart definition is malformed (located)
    +-- DurableError                   root of run-time failures of durable entities
        +-- ConcurrencyError           another writer appended first (expected version)
        +-- UnknownEventError (ValueError)  the chart declares no such event
        +-- NotAuthorized              the actor may not send this event / enter a state
        +-- EnvelopeRejected           a stale, replayed, malformed or forged envelope
        +-- EffectError                an action or guard raised while a transition ran
        +-- DurableStoreError          the database failed; nothing of the call was written
        +-- AuditError                 the audit log does not verify
        +-- ReplayError                a stored event replays to another state

A transition that no guard enables is not an error: ``send`` returns a
result whose ``outcome`` is ``"ignored"``.
"""

from __future__ import annotations

from ..errors import ConvergentError, Problem, SpecError

__all__ = [
    "AuditError",
    "ChartError",
    "ConcurrencyError",
    "DurableError",
    "DurableStoreError",
    "EffectError",
    "EnvelopeRejected",
    "NotAuthorized",
    "ReplayError",
    "UnknownEventError",
]


class ChartError(SpecError):
    """A statechart is malformed. ``problems`` lists every problem found, each
    located (file, line, column) when it came from a file."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        super().__init__(problems)


class DurableError(ConvergentError):
    """Root of the run-time errors of durable entities."""


class ConcurrencyError(DurableError):
    """The entity moved on since it was read: another writer appended version
    ``actual`` while this one expected ``expected``. Nothing was written;
    reload and retry (``EntityService.send`` retries once by itself when the
    caller gave no expected version)."""

    def __init__(self, kind: str, entity: str, expected: int, actual: int | None) -> None:
        self.kind, self.entity, self.expected, self.actual = kind, entity, expected, actual
        got = "unknown" if actual is None else str(actual)
        super().__init__(f"{kind}/{entity}: expected version {expected}, the store holds {got}")


class UnknownEventError(DurableError, ValueError):
    """The event is not declared by the entity's chart (a false guard is not
    this: it is the specified no-op)."""


class NotAuthorized(DurableError):
    """The actor may not send this event, or may not enter the target state.
    The attempt is recorded in the audit log before this is raised."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class EnvelopeRejected(DurableError):
    """An envelope was refused before anything changed: too old, from the
    future, seen before (same id), malformed, oversized or badly signed."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class EffectError(DurableError):
    """A guard or action raised while the transition ran; nothing was written."""


class DurableStoreError(DurableError):
    """The database refused or failed; the call's transaction was rolled back."""


class AuditError(DurableError):
    """The audit log was edited, reordered or truncated (see ``problems``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))


class ReplayError(DurableError):
    """Rebuilding an entity from its events reached another state than the
    one stored with event ``version``: the chart was edited without a
    version bump, or the event row was tampered with. The entity cannot be
    trusted until the cause is found (bump the chart version, or restore the
    row); nothing is written while it stands."""

    def __init__(self, kind: str, entity: str, version: int, event: str,
                 stored: list[str], replayed: list[str], chart_version: int) -> None:
        self.kind, self.entity, self.version = kind, entity, version
        self.event, self.stored, self.replayed = event, stored, replayed
        self.chart_version = chart_version
        super().__init__(
            f"{kind}/{entity}: event {version} ({event!r}) was stored as reaching "
            f"{stored} but replays under chart version {chart_version} to {replayed} "
            "(the chart changed without a version bump, or the event row was edited)")
