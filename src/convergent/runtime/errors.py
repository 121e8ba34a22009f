"""Errors of the replica runtime.

::

    ConvergentError                    (convergent.errors)
    +-- ReplicaError                   a replica was misused: emit after close, compaction
        |                              without a declared replica set, a bad replica id
        +-- PolicyMismatchError        an envelope or a store of another machine policy
        +-- ProtocolError (ValueError) a malformed envelope or wire message
        +-- StoreError                 a store cannot open, read or commit
        +-- TransportError             a transport cannot connect or send

Nothing here is raised for the normal life of a distributed system: late,
duplicated, reordered or concurrent events are the specified input, and
their handling is counted in ``Replica.stats`` instead.
"""

from __future__ import annotations

from ..errors import ConvergentError

__all__ = [
    "PolicyMismatchError",
    "ProtocolError",
    "ReplicaError",
    "StoreError",
    "TransportError",
]


class ReplicaError(ConvergentError):
    """A replica was used wrongly, or cannot do what was asked."""


class PolicyMismatchError(ReplicaError):
    """An envelope, or a store, was written under another machine policy.

    Two machines with different policy digests mean different things by the
    same event names; applying one's events with the other's tables would
    silently diverge. ``expected`` and ``got`` are the two digests.
    """

    def __init__(self, message: str, *, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(message)


class ProtocolError(ReplicaError, ValueError):
    """An envelope or a wire message is malformed (missing field, wrong type,
    unknown event name)."""


class StoreError(ReplicaError):
    """A store failed to open, read or commit; nothing of the failed batch was
    written (every append is one transaction)."""


class TransportError(ReplicaError):
    """A transport failed to connect, or its server refused an operation."""
