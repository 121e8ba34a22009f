"""The store contract: one small interface for every backend.

A store keeps, for each replica id, the machine policy it was created under,
the accepted envelopes in acceptance order (which is a causal order) and at
most one snapshot (the compacted prefix). Four methods are required::

    open(replica=, machine=, policy=)   create or check; PolicyMismatchError
    load() -> (snapshot | None, [envelope, ...])
    append(envelopes)                    one transaction: all or nothing
    compact(snapshot) -> int             atomically: save the snapshot, delete
                                         the events with hlc <= snapshot.horizon

``close`` and ``count`` have defaults. A store that returns from ``append``
has made the batch durable: that is what "acknowledged" means.

A store whose calls wait on a network or a server (PostgreSQL) sets
``blocking = True``: ``Replica.aflush``, ``acompact`` and
``ainstall_snapshot`` (what ``ReplicaService`` and the NATS transport use)
then run its ``append`` and ``compact`` in a worker thread, one call at a
time and in order, so the asyncio loop keeps running meanwhile. Such a store
must accept being called from a thread other than the one that opened it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from ..envelope import Envelope
from ..errors import PolicyMismatchError, StoreError
from ..model import Snapshot

__all__ = ["Store", "check_meta"]


class Store(ABC):
    """Durable log and snapshot of replicas (see the module docstring)."""

    #: how to open this store again (``sqlite:///r1.db``, ``memory://``, ...)
    url: str = ""
    replica: str | None = None
    #: calls may wait on I/O for long: asynchronous callers run them in a
    #: worker thread (see the module docstring)
    blocking: bool = False

    @abstractmethod
    def open(self, *, replica: str, machine: str, policy: str) -> None:
        """Bind to ``replica``: create its records, or check that the stored
        machine and policy are these (PolicyMismatchError otherwise)."""

    @abstractmethod
    def load(self) -> tuple[Snapshot | None, list[Envelope]]:
        """The snapshot (None when never compacted) and the events after it,
        in acceptance order."""

    @abstractmethod
    def append(self, envelopes: Sequence[Envelope]) -> None:
        """Write a batch in one transaction; raise StoreError (nothing written)
        on failure."""

    @abstractmethod
    def compact(self, snapshot: Snapshot) -> int:
        """Save ``snapshot`` and delete the events it covers
        (``hlc <= snapshot.horizon``) in one transaction; the number deleted."""

    def count(self) -> int:
        """Events currently in the log (after the snapshot)."""
        return len(self.load()[1])

    def close(self) -> None:  # noqa: B027 - optional, with a default
        """Release connections; the store may be opened again."""

    def _bound(self) -> str:
        if self.replica is None:
            raise StoreError(f"store {self.url or type(self).__name__} is not open "
                             "(call open(replica=..., machine=..., policy=...))")
        return self.replica

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def check_meta(url: str, replica: str, stored: dict[str, str], machine: str,
               policy: str) -> None:
    """Raise PolicyMismatchError when ``stored`` meta names another machine
    or policy than the one opening the store."""
    if stored.get("machine") != machine or stored.get("policy") != policy:
        raise PolicyMismatchError(
            f"store {url} holds replica {replica!r} of machine {stored.get('machine')!r} "
            f"policy {str(stored.get('policy'))[:16]}..., but this process runs machine "
            f"{machine!r} policy {policy[:16]}...: a changed machine cannot continue an old "
            "log (use a new store, or run the old machine)",
            expected=policy, got=str(stored.get("policy")))


def envelope_row(replica: str, e: Envelope) -> tuple[Any, ...]:
    """The column values of one event (deps as ``a:1,b:2``, meta as JSON)."""
    import json
    meta = e[7]
    return (replica, e[1], e[2], e[3], e[4], e[5], ",".join(e[6]),
            None if meta is None else json.dumps(meta, separators=(",", ":")))


def row_envelope(policy: str, origin: str, seq: int, hlc: int, event: str, deps: str,
                 meta: str | None) -> Envelope:
    import json
    from sys import intern
    return Envelope(intern(origin), seq, hlc, intern(event), deps.split(",") if deps else (),
                    None if meta is None else json.loads(meta), policy)


def lock_slot(lock_path: str, fd: int | None, key: str) -> int | None:
    """Lock one byte of ``lock_path`` (opened once: pass the returned fd back)
    for ``key``, without waiting: one process per key. Returns the fd (None
    where ``fcntl`` does not exist: no cross-process guard there); raises
    OSError when another process holds the key. Closing the fd releases it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return fd
    import os
    import zlib
    if fd is None:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, zlib.crc32(key.encode()) & 0x3FFFFFFF)
    return fd


def try_advisory_lock(db: Any, classid: int, key: str, timeout: float) -> bool:
    """Take PostgreSQL's session advisory lock ``(classid, hashtext(key))``,
    retrying for up to ``timeout`` seconds (the session of a killed process
    takes a moment to end); whether it was taken. psycopg errors propagate."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        got = bool(db.execute("SELECT pg_try_advisory_lock(%s::int4, hashtext(%s))",
                              (classid, key)).fetchone()[0])
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)
