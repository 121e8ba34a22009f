"""The signing guard: a validator never signs two conflicting messages, even across a restart.

Everything else in the core keeps its state in memory, so a validator that
crashes and comes back into the same height and view would not know what it
already signed: it could prevote a second value (a double-sign, i.e.
equivocation evidence against an honest node) or forget its lock and report
``lock_view = -1`` (which breaks rule 4 and with it the safety argument). The
guard closes that hole. Before any signed message leaves the node the core
asks ``SigningGuard.permit``, which

* refuses a message of kind ``k`` at ``(height, view)`` below the last one of
  kind ``k`` it signed (views and heights only move forward);
* refuses one at the same ``(height, view)`` whose signed payload differs
  (re-sending the identical message is allowed: ed25519 is deterministic, so it
  is the same signature, not a conflict);
* refuses a liveness message reporting a lower lock than the lock it recorded
  for that height;
* otherwise records ``(kind, height, view, payload digest)`` and the current
  lock in its ``SafetyStore`` and returns only once the store says the record
  is durable.

A restarted core resumes at the guard's last (height, view) with its lock
(``SafetyState.resume_point``), so it rejoins where it left off without being
able to contradict itself. Stores: ``MemorySafetyStore`` (the default; it lives
as long as the object, which is what the simulator's "disk" is) and
``FileSafetyStore`` (one JSON file per validator, replaced atomically and
fsync'd). A store that cannot read its file raises instead of starting blank:
an empty guard for a key that has signed before is exactly the bug it prevents.
A store is bound to the first key that signs through it (chain, node id, public
key); another key is refused it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from ._durable import atomic_write
from .crypto import digest as sha256
from .errors import ConsensusError
from .messages import Certificate, Kind, Liveness, LockProof, Message, kind_of

__all__ = [
    "FileSafetyStore",
    "MemorySafetyStore",
    "SafetyState",
    "SafetyStore",
    "SignRecord",
    "SigningGuard",
    "StoredLock",
]

FORMAT = 1


@dataclass(frozen=True, slots=True)
class SignRecord:
    """The last message of one kind this validator signed: where, and a digest of what."""

    kind: Kind
    height: int
    view: int
    digest: bytes
    """SHA-256 of the signed payload (so two records are equal iff the signatures are)."""


@dataclass(frozen=True, slots=True)
class StoredLock:
    """The highest lock taken: (height, view) and the value with its prevote certificate."""

    height: int
    view: int
    proof: LockProof


@dataclass(frozen=True)
class SafetyState:
    """What a validator must remember across restarts. Immutable; the guard replaces it."""

    records: Mapping[Kind, SignRecord] = field(default_factory=dict)
    lock: StoredLock | None = None
    owner: str = ""
    """Whose record this is (``chain/node/public key``): a store is bound to one key."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", MappingProxyType(dict(self.records)))

    @property
    def empty(self) -> bool:
        return not self.records and self.lock is None

    def resume_point(self) -> tuple[int, int] | None:
        """(height, view) to restart at, or None if nothing was ever signed.

        The height of the latest signature (one past it for a confirmation: that
        height is finished) and, at that height, the highest view signed in.
        """
        if not self.records:
            return None
        height = max(r.height + (1 if r.kind is Kind.CONFIRMATION else 0)
                     for r in self.records.values())
        views = [r.view for r in self.records.values()
                 if r.kind is not Kind.CONFIRMATION and r.height == height]
        return height, max(views, default=0)

    def lock_at(self, height: int) -> tuple[int, LockProof] | None:
        """The lock recorded for ``height`` (the core's ``_lock`` format), if any."""
        if self.lock is None or self.lock.height != height:
            return None
        return self.lock.view, self.lock.proof


@runtime_checkable
class SafetyStore(Protocol):
    """Durable storage for one validator's ``SafetyState``.

    ``save`` must not return before the state would survive a crash of the
    process or the machine (fsync or equivalent); ``load`` returns the last
    state saved, an empty ``SafetyState`` on first use, and raises if what is
    stored cannot be read (never a blank state instead).
    """

    def load(self) -> SafetyState: ...

    def save(self, state: SafetyState) -> None: ...


class MemorySafetyStore:
    """Keeps the state in the object: durable exactly as long as the object is kept.

    The simulator hands the same object to a node's core after a simulated crash
    (the object is its disk); a fresh object is a validator that lost its disk.
    """

    def __init__(self, state: SafetyState | None = None) -> None:
        self.state = state or SafetyState()
        self.saves = 0

    def load(self) -> SafetyState:
        return self.state

    def save(self, state: SafetyState) -> None:
        self.state = state
        self.saves += 1


# ---------------------------------------------------------------- the file store

def _cert_to_json(c: Certificate) -> dict[str, Any]:
    return {"kind": int(c.kind), "epoch": c.epoch, "height": c.height, "view": c.view,
            "digest": c.digest.hex(), "signatures": [[s, sig.hex()] for s, sig in c.signatures]}


def _cert_from_json(d: Mapping[str, Any]) -> Certificate:
    return Certificate(Kind(int(d["kind"])), int(d["epoch"]), int(d["height"]), int(d["view"]),
                       bytes.fromhex(d["digest"]),
                       tuple((str(s), bytes.fromhex(sig)) for s, sig in d["signatures"]))


def state_to_json(state: SafetyState) -> dict[str, Any]:
    lock = None
    if state.lock is not None:
        lock = {"height": state.lock.height, "view": state.lock.view,
                "value": state.lock.proof.value.hex(),
                "certificate": _cert_to_json(state.lock.proof.certificate)}
    return {"format": FORMAT, "owner": state.owner,
            "records": [{"kind": int(r.kind), "height": r.height, "view": r.view,
                         "digest": r.digest.hex()}
                        for r in sorted(state.records.values(), key=lambda r: r.kind)],
            "lock": lock}


def state_from_json(doc: Mapping[str, Any]) -> SafetyState:
    if doc.get("format") != FORMAT:
        raise ValueError(f"unknown safety state format {doc.get('format')!r}")
    records = {}
    for r in doc["records"]:
        rec = SignRecord(Kind(int(r["kind"])), int(r["height"]), int(r["view"]),
                         bytes.fromhex(r["digest"]))
        if len(rec.digest) != 32 or rec.kind in records:
            raise ValueError(f"bad record {r!r}")
        records[rec.kind] = rec
    lock = None
    if doc.get("lock") is not None:
        d = doc["lock"]
        lock = StoredLock(int(d["height"]), int(d["view"]),
                          LockProof(bytes.fromhex(d["value"]), _cert_from_json(d["certificate"])))
    return SafetyState(records, lock, str(doc.get("owner", "")))


class FileSafetyStore:
    """One JSON file per validator, replaced atomically and fsync'd on every save.

    ``save`` writes a temporary file in the same directory, fsyncs it, renames it
    over ``path`` and fsyncs the directory, so after a crash the file holds either
    the previous state or the new one, never a mix. ``fsync=False`` skips the two
    fsyncs (tests on slow disks only: it gives up durability against power loss).
    A save costs one or two disk flushes, a few times per view; the core makes it
    synchronously, on purpose, because the signature must not leave before it.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.saves = 0

    def __repr__(self) -> str:
        return f"FileSafetyStore({str(self.path)!r})"

    def load(self) -> SafetyState:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return SafetyState()
        try:
            return state_from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConsensusError(
                f"signing guard file {self.path} is unreadable ({exc}); refusing to start with "
                "an empty guard (that could double-sign). Restore the file, or delete it only "
                "if this key has never signed at a height the network has not passed") from exc

    def save(self, state: SafetyState) -> None:
        data = json.dumps(state_to_json(state), sort_keys=True).encode()
        atomic_write(self.path, data, fsync=self.fsync)
        self.saves += 1


# ---------------------------------------------------------------- the guard

class SigningGuard:
    """The rule that sits between signing and sending (see the module docstring).

    ``owner`` names the key the store belongs to (the core passes ``chain/node/key``);
    a store already bound to another owner is refused, since its records say nothing
    about this key and silently starting over on it would hide a configuration error.
    """

    def __init__(self, store: SafetyStore, owner: str = "", *, deferred: bool = False) -> None:
        self.store = store
        self.state = store.load()
        self.owner = owner
        self.deferred = deferred
        """Deferred mode (the asyncio runtime): ``permit`` only updates the state in memory;
        the owner must ``take_unsaved()`` and save it before any message permitted since the
        last save leaves the node. One save (one fsync) then covers a whole batch of
        signatures, and it can run off the event loop."""
        self._unsaved: SafetyState | None = None
        if owner and self.state.owner and self.state.owner != owner:
            raise ConsensusError(
                f"signing guard store {store!r} belongs to {self.state.owner!r}, "
                f"not {owner!r}: give each validator key its own store")
        self.refused = 0

    def resume_point(self) -> tuple[int, int] | None:
        return self.state.resume_point()

    def check(self, message: Message, chain_id: str) -> str | None:
        """Why ``message`` must not be signed now (None: it may)."""
        return self._check(message, sha256(message.payload(chain_id)))

    def _check(self, message: Message, dig: bytes) -> str | None:
        kind = kind_of(message)
        height, view = message.height, message.view
        last = self.state.records.get(kind)
        if last is not None:
            if (height, view) < (last.height, last.view):
                return (f"{kind.name} at h={height} v={view} is below the last one signed "
                        f"(h={last.height} v={last.view})")
            if (height, view) == (last.height, last.view) and dig != last.digest:
                return f"a different {kind.name} was already signed at h={height} v={view}"
        lock = self.state.lock
        if (isinstance(message, Liveness) and lock is not None and lock.height == height
                and lock.view < view and message.lock_view < lock.view):
            return (f"liveness at h={height} v={view} reports lock view {message.lock_view}, "
                    f"but a lock was taken in view {lock.view}")
        return None

    def permit(self, message: Message, chain_id: str,
               lock: tuple[int, int, LockProof] | None = None) -> str | None:
        """Check ``message``; if it may go, record it (and ``lock``: height, view, proof)
        durably and return None; otherwise return the reason and record nothing.

        Raises whatever the store raises if the record cannot be made durable: the
        caller must then not send the message either.
        """
        dig = sha256(message.payload(chain_id))
        reason = self._check(message, dig)
        if reason is not None:
            self.refused += 1
            return reason
        kind = kind_of(message)
        record = SignRecord(kind, message.height, message.view, dig)
        new_lock = self.state.lock
        if lock is not None and (new_lock is None
                                 or (lock[0], lock[1]) > (new_lock.height, new_lock.view)):
            new_lock = StoredLock(lock[0], lock[1], lock[2])
        if self.state.records.get(kind) == record and new_lock is self.state.lock:
            return None  # the identical message again: nothing new to remember
        records = dict(self.state.records)
        records[kind] = record
        state = SafetyState(records, new_lock, self.owner or self.state.owner)
        if self.deferred:
            self.state = self._unsaved = state
            return None
        self.store.save(state)
        self.state = state
        return None

    def take_unsaved(self) -> SafetyState | None:
        """In deferred mode: the state to save before the messages permitted since the last
        call may leave (None: nothing new). The caller saves it, or drops those messages."""
        state, self._unsaved = self._unsaved, None
        return state
