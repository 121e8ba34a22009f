"""Every exception the relational layer raises on purpose.

::

    ConvergentError
    +-- RelationalError
        +-- SchemaError (SpecError, ValueError)   a schema is malformed: unknown or
        |                                         badly named states, a state that
        |                                         both requires and removes another
        +-- SchemaLoadError                       ``load_schema("mod:Name")`` found no schema
        +-- HandlerBindingError (ValueError)      a handler name that matches no state,
        |                                         or two handlers for one name
        +-- UnknownStateError (ValueError)        a mutation or query names no state
        +-- LifecycleError (RuntimeError)         used before ``start()`` or after ``aclose()``
        +-- HandlerTimeoutError (TimeoutError)    an async handler outlived the timeout;
        |                                         it is *delivered* through the
        |                                         ``Exception`` state, never raised
        +-- SnapshotError (ValueError)            a snapshot of another machine or schema
        +-- AnalysisLimitError (ValueError)       a schema too large to enumerate

Errors raised *by handlers* are not wrapped: the machine catches them, activates
the ``Exception`` state and passes the original exception as ``args["err"]``.
"""

from __future__ import annotations

from ..errors import ConvergentError, Problem, SpecError

__all__ = [
    "AnalysisLimitError",
    "HandlerBindingError",
    "HandlerTimeoutError",
    "LifecycleError",
    "RelationalError",
    "SchemaError",
    "SchemaLoadError",
    "SnapshotError",
    "UnknownStateError",
]


class RelationalError(ConvergentError):
    """Root of the errors raised by ``convergent.relational``."""


class SchemaError(RelationalError, SpecError):
    """A schema is malformed; ``problems`` lists every issue found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        SpecError.__init__(self, problems)


class SchemaLoadError(RelationalError):
    """``load_schema`` could not import the target or the name is not a schema."""


class HandlerBindingError(RelationalError, ValueError):
    """A handler cannot be bound: its name looks like a handler of no known state,
    or two handler sources define the same name ambiguously."""


class UnknownStateError(RelationalError, ValueError):
    """A state name passed to a mutation or a query is not in the schema."""

    def __init__(self, names: list[str], known: tuple[str, ...]) -> None:
        self.names = names
        super().__init__(f"unknown state(s) {', '.join(map(repr, names))}; "
                         f"known: {', '.join(known)}")


class LifecycleError(RelationalError, RuntimeError):
    """The machine was used before ``await machine.start()`` or after ``aclose()``."""


class HandlerTimeoutError(RelationalError, TimeoutError):
    """An async handler ran longer than ``handler_timeout``; the transition is
    cancelled and this error reaches the ``Exception`` state."""

    def __init__(self, handler: str, timeout: float) -> None:
        self.handler = handler
        self.timeout = timeout
        super().__init__(f"handler {handler} exceeded {timeout:g}s")


class SnapshotError(RelationalError, ValueError):
    """``Machine.load`` got a snapshot whose id or state names do not match."""


class AnalysisLimitError(RelationalError, ValueError):
    """Static analysis enumerates every set of active states; past the limit it
    refuses rather than running for hours."""
