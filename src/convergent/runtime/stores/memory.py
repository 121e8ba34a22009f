"""An in-memory store: for tests and simulations. It survives a replica
object being dropped (a simulated crash) as long as the store object lives."""

from __future__ import annotations

from collections.abc import Sequence

from ..envelope import Envelope, as_envelope, rows_of
from ..errors import StoreError
from ..model import Snapshot
from .base import Store, check_meta

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Keeps every replica's log in Python lists; ``fail_next`` makes the next
    ``append`` raise StoreError (to test failure paths)."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._meta: dict[str, dict[str, str]] = {}
        self._events: dict[str, list[Envelope]] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self.fail_next = False

    def open(self, *, replica: str, machine: str, policy: str) -> None:
        meta = self._meta.get(replica)
        if meta is None:
            self._meta[replica] = {"machine": machine, "policy": policy}
            self._events[replica] = []
        else:
            check_meta(self.url, replica, meta, machine, policy)
        self.replica = replica

    def load(self) -> tuple[Snapshot | None, list[Envelope]]:
        r = self._bound()
        return self._snapshots.get(r), list(map(as_envelope, self._events[r]))

    def append(self, envelopes: Sequence[Envelope]) -> None:
        r = self._bound()
        if self.fail_next:
            self.fail_next = False
            raise StoreError("memory store: injected failure")
        self._events[r].extend(rows_of(envelopes))

    def compact(self, snapshot: Snapshot) -> int:
        r = self._bound()
        events = self._events[r]
        keep = [e for e in events if e[4] > snapshot.horizon]
        self._events[r] = keep
        self._snapshots[r] = snapshot
        return len(events) - len(keep)

    def count(self) -> int:
        return len(self._events[self._bound()])
