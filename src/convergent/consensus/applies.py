"""The apply queue: every finalized height reaches the application, once, in height order.

Finalizing and applying are different clocks. Consensus moves on when a quorum
has committed a value; the application may take longer than any phase timer to
apply it. The core therefore never hands a decision to the application as part
of a phase: each decision is first recorded durably in an ``ApplyLog`` (before
this node signs anything for the next height), then applied through a queue

* strictly in height order, one call at a time (height ``h + 1`` waits for ``h``);
* never cancelled by a phase timer: a slow ``finalize_votes`` holds the queue,
  not consensus, which keeps finalizing and logging later heights meanwhile;
* retried after a failure (at the next phase change), never skipped;
* acknowledged (``done``) only when the application returns, so after a crash
  the new process re-applies what was logged but not acknowledged.

Delivery is therefore *at least once*: an application keyed by height (which
ignores a height it already applied, as the simulator's does) gets each height
exactly once. Heights finalized from a sync answer go through the queue too: a
sync provider that also applies them itself must, again, ignore repeats.

Stores: ``MemoryApplyLog`` (as durable as the object; the simulator keeps it
across a simulated crash, like a disk) and ``FileApplyLog`` (one JSON file,
replaced atomically and fsync'd).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._durable import atomic_write
from .errors import ConsensusError
from .guard import _cert_from_json, _cert_to_json
from .messages import Certificate

__all__ = ["ApplyLog", "ApplyQueue", "ApplyState", "FileApplyLog", "MemoryApplyLog",
           "PendingApply"]

FORMAT = 1


@dataclass(frozen=True, slots=True)
class PendingApply:
    """A finalized height the application has not acknowledged yet."""

    height: int
    raw: bytes
    certificate: Certificate


@dataclass(frozen=True)
class ApplyState:
    """``next_height``: the first height not acknowledged; ``pending``: logged decisions at
    or above it, sorted by height."""

    next_height: int = 0
    pending: tuple[PendingApply, ...] = ()


@runtime_checkable
class ApplyLog(Protocol):
    """Durable storage for one node's ``ApplyState``: ``save`` returns once it would survive
    a crash; ``load`` raises rather than return a blank state for unreadable content."""

    def load(self) -> ApplyState: ...

    def save(self, state: ApplyState) -> None: ...


class MemoryApplyLog:
    """Keeps the state in the object (the simulator's disk; a test's)."""

    def __init__(self, state: ApplyState | None = None) -> None:
        self.state = state or ApplyState()
        self.saves = 0

    def load(self) -> ApplyState:
        return self.state

    def save(self, state: ApplyState) -> None:
        self.state = state
        self.saves += 1


def state_to_json(state: ApplyState) -> dict[str, Any]:
    return {"format": FORMAT, "next_height": state.next_height,
            "pending": [{"height": p.height, "raw": p.raw.hex(),
                         "certificate": _cert_to_json(p.certificate)} for p in state.pending]}


def state_from_json(doc: Mapping[str, Any]) -> ApplyState:
    if doc.get("format") != FORMAT:
        raise ValueError(f"unknown apply log format {doc.get('format')!r}")
    pending = tuple(PendingApply(int(p["height"]), bytes.fromhex(p["raw"]),
                                 _cert_from_json(p["certificate"])) for p in doc["pending"])
    heights = [p.height for p in pending]
    if heights != sorted(set(heights)):
        raise ValueError("pending heights are not strictly increasing")
    return ApplyState(int(doc["next_height"]), pending)


class FileApplyLog:
    """One JSON file per node, replaced atomically and fsync'd on every save.

    Written twice per height (logged, acknowledged): small next to the guard's writes.
    ``fsync=False`` gives up durability against power loss (tests on slow disks only).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.saves = 0

    def __repr__(self) -> str:
        return f"FileApplyLog({str(self.path)!r})"

    def load(self) -> ApplyState:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return ApplyState()
        try:
            return state_from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConsensusError(
                f"apply log {self.path} is unreadable ({exc}); refusing to start without it "
                "(finalized heights would never reach the application)") from exc

    def save(self, state: ApplyState) -> None:
        atomic_write(self.path, json.dumps(state_to_json(state), sort_keys=True).encode(),
                     fsync=self.fsync)
        self.saves += 1


class ApplyQueue:
    """The core's view of the log: what to apply next, and bookkeeping around it.

    ``start_height`` is the application's own next height (0 when it does not say);
    the queue starts at the higher of it and the log's, so heights the application
    reports as applied are never handed to it again.
    """

    def __init__(self, log: ApplyLog, start_height: int = 0, *, deferred: bool = False) -> None:
        self.log = log
        self.deferred = deferred
        """Deferred mode (the asyncio runtime): changes stay in memory until the owner takes
        them (``take_unsaved``) and saves them - off the event loop, before anything the
        node signed since leaves it."""
        self._unsaved: ApplyState | None = None
        state = log.load()
        if start_height > state.next_height:
            state = ApplyState(start_height,
                               tuple(p for p in state.pending if p.height >= start_height))
        self.state = state
        self.in_flight: int | None = None
        """The height whose apply call is running (at most one)."""

    @property
    def next_height(self) -> int:
        return self.state.next_height

    @property
    def backlog(self) -> int:
        return len(self.state.pending)

    def _save(self, state: ApplyState) -> None:
        if self.deferred:
            self.state = self._unsaved = state
            return
        self.state = state  # kept in memory even if the save below raises
        self.log.save(state)

    def take_unsaved(self) -> ApplyState | None:
        """In deferred mode: the state to save now (None: nothing changed)."""
        state, self._unsaved = self._unsaved, None
        return state

    def add(self, height: int, raw: bytes, certificate: Certificate) -> bool:
        """Log a finalized height (durably); False if it is already applied or logged."""
        state = self.state
        if height < state.next_height or any(p.height == height for p in state.pending):
            return False
        pending = tuple(sorted((*state.pending, PendingApply(height, raw, certificate)),
                               key=lambda p: p.height))
        self._save(replace(state, pending=pending))
        return True

    def next(self) -> PendingApply | None:
        """The entry to apply now: the lowest pending one, if it is the next height."""
        if self.in_flight is not None:
            return None
        pending = self.state.pending
        if pending and pending[0].height == self.state.next_height:
            return pending[0]
        return None

    def done(self, height: int) -> None:
        """The application returned for ``height``: acknowledge it durably."""
        if self.in_flight == height:
            self.in_flight = None
        if height < self.state.next_height:
            return
        self._save(ApplyState(height + 1,
                              tuple(p for p in self.state.pending if p.height > height)))

    def abandon(self) -> None:
        """The running call failed or was cancelled: the same height is tried again later."""
        self.in_flight = None

    def skip_to(self, height: int) -> None:
        """Heights below ``height`` were applied by other means: forget them."""
        if height <= self.state.next_height:
            return
        self._save(ApplyState(height, tuple(p for p in self.state.pending if p.height >= height)))
