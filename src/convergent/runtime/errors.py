"""Errors of the replica runtime.

::

    ConvergentError                    (convergent.errors)
    +-- ReplicaError                   a replica was misused: emit after close, compaction
        |                              without a declared replica set, a bad replica id
        +-- PolicyMismatchError        an envelope, a store or a snapshot of another
        |                              machine policy
        +-- BackpressureError          the pending buffer is full: envelopes were refused
        |                              (anti-entropy sends them again later)
        +-- ProtocolError (ValueError) a malformed envelope or wire message
        +-- StoreError                 a store cannot open, read or commit
        +-- TransportError             a transport cannot connect or send

Nothing here is raised for the normal life of a distributed system: late,
duplicated, reordered or concurrent events are the specified input, and
their handling is counted in ``Replica.stats`` instead. The one overload
signal, ``BackpressureError``, is raised after everything else of the call
was done (applied, committed), and loses nothing for good.
"""

from __future__ import annotations

from ..errors import ConvergentError

__all__ = [
    "BackpressureError",
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


class BackpressureError(ReplicaError):
    """``Replica.receive`` refused envelopes because its pending (causal) buffer
    holds ``limit`` envelopes already.

    Raised at the end of the call, after every other envelope of it was
    applied or buffered and the batch committed (with autoflush): only the
    refused ones are affected. A refused envelope is not accepted, so the
    replica's version vector does not cover it and any peer's anti-entropy
    (``missing_for``) sends it again; nothing is lost for good. ``refused``
    lists the ids of the envelopes turned away (newly arrived ones, or buffered
    ones evicted for envelopes nearer to the causal frontier), ``applied`` how
    many envelopes of the call were applied, ``pending`` the buffer size after
    the call.
    """

    def __init__(self, message: str, *, refused: tuple[str, ...], applied: int,
                 pending: int, limit: int) -> None:
        self.refused = refused
        self.applied = applied
        self.pending = pending
        self.limit = limit
        super().__init__(message)
