"""Replicas of a collection: a template machine per key, aggregates across
keys, many replicas, no locks (docs/collections.md, "Replicas").

The model, and why it is sound:

* **Ownership.** Every key has one owner replica (``owner(key)``, the same
  function on every replica); only the owner issues events on its keys.
  Events on one key are therefore totally ordered by their owner, and every
  replica applies them in that order (per-origin FIFO), so a key's state is
  the same function of "how many of its owner's events were applied"
  everywhere. An envelope on a key its origin does not own is refused.
* **Causal delivery.** An envelope carries its issuer's version vector
  (``deps``: every event the issuer had applied) and is applied only after
  all of them; duplicates are dropped by ``(origin, seq)``.
* **Admission** is one of two rules, fixed by the collection
  (``CollectionMachine.admission``):

  - ``escrow``: every limit is split into per-replica **shares** (``Shares``;
    the shares of a limit sum to at most the limit). The owner admits an
    event only if its own keys' total stays within its share; everyone else
    applies the event as decided. Shares move with ``transfer`` (the giver
    gives only what it does not use; the receiver gains it when it applies
    the transfer). At any replica, at any moment, each origin's keys total
    at most that origin's share *as seen there* (an origin's use of a
    transferred share depends causally on the transfer), and the shares
    seen at a replica always sum to the initial split; so **every aggregate
    holds at every replica at every moment**, and two replicas that applied
    the same envelopes hold the same collection. This needs nothing of the
    cross-key check: it is the coordination that makes a limit safe. The
    price: an event can be refused while the limit has room elsewhere
    (another replica's share); ``transfer`` rebalances.
  - ``shared``: every replica re-evaluates the aggregates against its whole
    collection when it applies an event (``CollectionMachine.apply``, a
    refused event is a no-op there, like a false guard). The aggregates
    hold at every replica at every moment; replicas that applied the same
    envelopes agree **only because the collection's check passed**
    (cross-key commutation at every configuration the aggregates allow;
    events on one key never race here, ownership orders them). A replica
    refuses to run a shared collection whose check did not pass.

* **Durability** (``store=``): every call that applied envelopes writes them
  in one transaction before it returns (an ``emit``'s envelope exists only
  once stored); a restart replays the stored log through the checks a
  peer's envelopes pass. A failed write puts the replica back to what the
  store holds (nothing half-applied stays visible) and raises StoreError.
  Without a store a replica lives in memory only.

* **Signing.** ``seal_envelopes(envelopes, keyring)`` signs a batch for the
  wire (ed25519, the replicas' ``Keyring``: one signature per batch);
  ``receive_sealed(data, keyring)`` opens only batches a configured peer
  signed and every envelope is then checked as usual. A peer may forward
  others' envelopes (anti-entropy): the signature says which configured
  replica vouches for the batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..collection import CollectionMachine, CollectionState
from ..errors import MachineUsageError
from .envelope import Limits, loads_bounded
from .errors import (
    BackpressureError,
    PolicyMismatchError,
    ProtocolError,
    ReplicaError,
    StoreError,
)
from .stores.collection import (
    CollectionStore,
    MemoryCollectionStore,
    SQLiteCollectionStore,
    open_collection_store,
)

if TYPE_CHECKING:  # pragma: no cover
    from .signing import Keyring

__all__ = ["CollectionEnvelope", "CollectionReplica", "CollectionStore", "EmitResult",
           "MAX_KEY_CHARS", "MemoryCollectionStore", "SQLiteCollectionStore", "Shares",
           "hash_owner", "open_collection_store", "open_envelopes", "seal_envelopes"]

MAX_KEY_CHARS = 256
"""A string key's length, and an int key's digits, crossing the boundary."""
MAX_SEQ = 2**53
MAX_PENDING = 100_000
WIRE_FORMAT = "convergent-collection-envelopes/1"
#: envelopes one sealed batch may hold, and its size in bytes
MAX_WIRE_ENVELOPES = 100_000
MAX_WIRE_BYTES = 64 * 1024 * 1024


# ------------------------------------------------------------------ shares

@dataclass(frozen=True)
class Shares:
    """Per aggregate, per replica, how much of the limit that replica may use
    (escrow admission). The shares of an aggregate sum to at most its limit.

    ``Shares.split(cm, replicas)`` divides each limit evenly (the remainder
    to the first replicas in sorted order)."""

    table: Mapping[str, Mapping[str, int]]

    @classmethod
    def split(cls, cm: CollectionMachine, replicas: Sequence[str]) -> Shares:
        ids = sorted(set(replicas))
        if not ids:
            raise ReplicaError("shares need at least one replica")
        table: dict[str, dict[str, int]] = {}
        for a in cm.aggregates:
            base, extra = divmod(a.limit, len(ids))
            table[a.name] = {r: base + (1 if i < extra else 0) for i, r in enumerate(ids)}
        return cls(table)

    def check(self, cm: CollectionMachine, replicas: Sequence[str]) -> None:
        """Raise ReplicaError unless the table covers exactly the collection's
        aggregates and ``replicas``, with ints >= 0 summing within each limit."""
        names = [a.name for a in cm.aggregates]
        if sorted(self.table) != sorted(names):
            raise ReplicaError(f"shares name aggregates {sorted(self.table)}, the collection "
                               f"has {sorted(names)}")
        for a in cm.aggregates:
            row = self.table[a.name]
            if sorted(row) != sorted(set(replicas)):
                raise ReplicaError(f"shares of {a.name!r} name replicas {sorted(row)}, "
                                   f"expected {sorted(set(replicas))}")
            for r, v in row.items():
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ReplicaError(f"share of {a.name!r} for {r!r} is {v!r} (expected an "
                                       "int >= 0)")
            if sum(row.values()) > a.limit:
                raise ReplicaError(f"shares of {a.name!r} sum to {sum(row.values())}, above "
                                   f"its limit {a.limit}")


def hash_owner(replicas: Sequence[str]) -> Callable[[Any], str]:
    """The default owner function: a stable hash of the key's JSON over the
    sorted replica ids (the same on every process and platform)."""
    ids = sorted(set(replicas))

    def owner(key: Any) -> str:
        digest = hashlib.sha256(json.dumps(key).encode("utf-8")).digest()
        return ids[int.from_bytes(digest[:8], "big") % len(ids)]
    return owner


# ------------------------------------------------------------------ envelopes

@dataclass(frozen=True)
class CollectionEnvelope:
    """One event on a key (``kind="event"``: ``key``, ``event``), or one share
    transfer (``kind="transfer"``: ``aggregate``, ``to``, ``amount``), issued
    by ``origin`` as its ``seq``-th envelope after applying ``deps``."""

    origin: str
    seq: int
    deps: Mapping[str, int]
    policy: str
    kind: str = "event"
    key: str | int | None = None
    event: str | None = None
    aggregate: str | None = None
    to: str | None = None
    amount: int = 0

    @property
    def id(self) -> str:
        return f"{self.origin}:{self.seq}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"origin": self.origin, "seq": self.seq,
                               "deps": dict(self.deps), "policy": self.policy,
                               "kind": self.kind}
        if self.kind == "event":
            out.update(key=self.key, event=self.event)
        else:
            out.update(aggregate=self.aggregate, to=self.to, amount=self.amount)
        return out

    @classmethod
    def from_dict(cls, d: Any) -> CollectionEnvelope:
        """Shape only (types and keys); ``receive`` checks the meaning."""
        if not isinstance(d, Mapping):
            raise ProtocolError(f"an envelope must be an object, got {type(d).__name__}")
        kind = d.get("kind")
        keys = {"origin", "seq", "deps", "policy", "kind"} | (
            {"key", "event"} if kind == "event" else {"aggregate", "to", "amount"})
        if kind not in ("event", "transfer") or set(d) != keys:
            raise ProtocolError(f"an envelope has exactly the keys {sorted(keys)} "
                                f"(kind event|transfer), got {sorted(map(str, d))}")
        deps = d["deps"]
        if not isinstance(deps, Mapping):
            raise ProtocolError("deps must be an object")
        if kind == "event":
            return cls(d["origin"], d["seq"], dict(deps), d["policy"], "event",
                       key=d["key"], event=d["event"])
        return cls(d["origin"], d["seq"], dict(deps), d["policy"], "transfer",
                   aggregate=d["aggregate"], to=d["to"], amount=d["amount"])


def seal_envelopes(envelopes: Iterable[CollectionEnvelope], keyring: Keyring) -> bytes:
    """A batch of envelopes as one signed wire message (see ``open_envelopes``)."""
    rows = [e.to_dict() for e in envelopes]
    if len(rows) > MAX_WIRE_ENVELOPES:
        raise ReplicaError(f"{len(rows)} envelopes in one batch (at most "
                           f"{MAX_WIRE_ENVELOPES}): send several")
    body = json.dumps({"format": WIRE_FORMAT, "envelopes": rows},
                      separators=(",", ":")).encode()
    return keyring.seal(body)


def open_envelopes(data: bytes, keyring: Keyring) -> tuple[str, list[CollectionEnvelope]]:
    """``(signer, envelopes)`` of a ``seal_envelopes`` message. Raises
    SignatureError (unsigned, an unknown signer, a bad signature) or
    ProtocolError (too big, nested too deeply, not this format) before
    anything of it is decoded into envelopes; each envelope's meaning is
    checked by ``receive``."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_WIRE_BYTES:
        raise ProtocolError(f"a sealed batch is bytes of at most {MAX_WIRE_BYTES} bytes")
    signer, body = keyring.open(bytes(data))
    msg = loads_bounded(body, Limits(max_message_bytes=MAX_WIRE_BYTES), what="sealed batch")
    if not isinstance(msg, dict) or msg.get("format") != WIRE_FORMAT or not isinstance(
            msg.get("envelopes"), list) or set(msg) != {"format", "envelopes"}:
        raise ProtocolError(f"a sealed batch is {{'format': {WIRE_FORMAT!r}, 'envelopes': "
                            "[...]}")
    rows = msg["envelopes"]
    if len(rows) > MAX_WIRE_ENVELOPES:
        raise ProtocolError(f"a sealed batch of {len(rows)} envelopes (at most "
                            f"{MAX_WIRE_ENVELOPES})")
    return signer, [CollectionEnvelope.from_dict(r) for r in rows]


@dataclass(frozen=True)
class EmitResult:
    """What ``emit`` did: the envelope issued (None when nothing happened),
    and why not: ``"guard"`` (the template's guard is false: the specified
    no-op) or ``"aggregate:<name>"`` (admission refused it)."""

    envelope: CollectionEnvelope | None
    refused: str | None = None

    @property
    def admitted(self) -> bool:
        return self.envelope is not None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ------------------------------------------------------------------ the replica

@dataclass
class _Stats:
    applied: int = 0
    duplicates: int = 0
    refused_at_apply: int = 0        # shared admission: applied as a no-op here
    evidence: int = 0


class CollectionReplica:
    """One replica of a collection (see the module docstring for the model).

    Args:
        machine: the built ``CollectionMachine``; a ``shared`` one must be
            verified (its check passed).
        id: this replica's id, one of ``replicas``.
        replicas: every replica of the collection (fixed membership).
        shares: escrow shares (default ``Shares.split``); ignored for shared.
        owner: key -> owning replica id, the same on every replica (default
            ``hash_owner(replicas)``).
        max_pending: envelopes buffered while their dependencies are missing;
            past it, ``receive`` refuses the newcomers (BackpressureError,
            anti-entropy sends them again).
        store: a ``CollectionStore`` or its URL (``sqlite:///c1.db``); the
            replica restarts from what it holds. Default: none (memory only).

    Raises:
        StoreError: the store cannot open, is held by another process, or
            holds a row that does not replay (named by position).
        PolicyMismatchError: the store belongs to another collection policy.
    """

    def __init__(self, machine: CollectionMachine, id: str, *, replicas: Sequence[str],
                 shares: Shares | None = None, owner: Callable[[Any], str] | None = None,
                 max_pending: int = MAX_PENDING,
                 store: CollectionStore | str | None = None) -> None:
        if not isinstance(machine, CollectionMachine):
            raise ReplicaError(f"a CollectionReplica needs a CollectionMachine, got "
                               f"{type(machine).__name__}")
        ids = sorted(set(replicas))
        if id not in ids or not all(isinstance(r, str) and r for r in ids):
            raise ReplicaError(f"replica id {id!r} must be one of the replicas {ids}")
        if machine.admission == "shared" and not machine.verified:
            raise ReplicaError(f"collection {machine.name!r} uses shared admission but its "
                               "check did not pass: concurrent events on two keys may race "
                               "(see its report); use admission 'escrow'")
        if machine.initial_counts:
            raise ReplicaError("the template's initial state counts in an aggregate")
        self.machine = machine
        self.id = id
        self.replicas = tuple(ids)
        self.escrow = machine.admission == "escrow"
        self.shares = shares if shares is not None else Shares.split(machine, ids)
        self.shares.check(machine, ids)
        self.owner = owner if owner is not None else hash_owner(ids)
        if not _is_int(max_pending) or max_pending < 1:
            raise ReplicaError(f"max_pending={max_pending!r} (expected an int >= 1)")
        self.max_pending = max_pending
        self.policy = self._policy()
        names = [a.name for a in machine.aggregates]
        self._agg_index = {n: i for i, n in enumerate(names)}
        self._pending: dict[tuple[str, int], CollectionEnvelope] = {}
        self._blocked: set[str] = set()   # origins caught breaking the rules
        self.evidence: list[str] = []
        self.stats = _Stats()
        self._reset()
        if isinstance(store, str):
            store = open_collection_store(store)
        if store is not None and not isinstance(store, CollectionStore):
            raise ReplicaError(f"store={store!r} (expected a CollectionStore or its URL)")
        self.store = store
        if store is not None:
            store.open(replica=id, policy=self.policy)
            self._restore()

    def _reset(self) -> None:
        """The collection before any envelope (what a restart replays on)."""
        names = list(self._agg_index)
        ids = self.replicas
        # what each origin's keys total, and each origin's share, as seen here
        self._used = {r: [0] * len(names) for r in ids}
        self._share = {r: [self.shares.table[n][r] for n in names] for r in ids}
        self._ids: dict[Any, int] = {}
        self._totals = [0] * len(names)
        self._vv = {r: 0 for r in ids}
        self._log: list[CollectionEnvelope] = []
        self._by_id: dict[str, CollectionEnvelope] = {}
        self._stored = 0                  # how many of _log the store holds

    def _restore(self) -> None:
        """Replay the store's rows, each checked as a peer's envelope would
        be, in the stored order (the order first applied)."""
        assert self.store is not None
        rows = self.store.load()
        where = f"{self.store.url}: collection replica {self.id!r}"
        self._reset()
        self.stats.applied = self.stats.refused_at_apply = 0
        for n, row in enumerate(rows):
            try:
                env = CollectionEnvelope.from_dict(row)
                self._validate(env)
            except (ProtocolError, PolicyMismatchError, TypeError, ValueError) as exc:
                self._reset()
                raise StoreError(f"{where}: stored row {n} is not an envelope of this "
                                 f"collection: {exc}") from None
            why = ("it is not the next envelope of its origin or its dependencies are "
                   "not before it" if not self._ready(env) else self._breach(env))
            if why is not None:
                self._reset()
                raise StoreError(f"{where}: stored row {n} ({env.id}) does not replay: {why}")
            self._apply(env)
        self._stored = len(self._log)

    def _commit(self) -> None:
        """Write what this call applied, in one transaction; on failure go
        back to what the store holds (and raise its StoreError)."""
        if self.store is None or self._stored == len(self._log):
            return
        fresh = self._log[self._stored:]
        try:
            self.store.append([e.to_dict() for e in fresh])
        except StoreError:
            self._restore()
            raise
        self._stored = len(self._log)

    # -- identity
    def _policy(self) -> str:
        m = self.machine
        head = {"format": "convergent-collection-policy/1", "name": m.name, "key": m.key,
                "key_type": m.key_type, "admission": m.admission,
                "template": m.template.policy_digest,
                "aggregates": [[a.name, a.limit, a.where, a.field] for a in m.aggregates],
                "contributions": [hashlib.sha256(c.tobytes()).hexdigest()
                                  for c in m.contributions],
                "replicas": list(self.replicas),
                "shares": ({n: dict(sorted(r.items())) for n, r in
                            sorted(self.shares.table.items())} if self.escrow else None)}
        text = json.dumps(head, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # -- views
    @property
    def state(self) -> CollectionState:
        return CollectionState(dict(self._ids), tuple(self._totals))

    def decode(self) -> dict[Any, dict[str, Any]]:
        return self.machine.decode(self.state)

    def totals(self) -> dict[str, int]:
        """Each aggregate's total over every key, here."""
        return {a.name: t for a, t in zip(self.machine.aggregates, self._totals)}

    def share(self, aggregate: str, replica: str | None = None) -> int:
        """The share of ``replica`` (default: this one), as seen here."""
        who = self.id if replica is None else replica
        if who not in self._share:
            raise ReplicaError(f"unknown replica {who!r} (known: {list(self.replicas)})")
        return self._share[who][self._aggregate(aggregate)]

    def available(self, aggregate: str) -> int:
        """How much of its share this replica does not use (escrow)."""
        i = self._aggregate(aggregate)
        return self._share[self.id][i] - self._used[self.id][i]

    @property
    def version(self) -> dict[str, int]:
        return dict(self._vv)

    @property
    def log(self) -> tuple[CollectionEnvelope, ...]:
        """Every envelope applied here, in the order applied (a causal order)."""
        return tuple(self._log)

    @property
    def pending(self) -> tuple[CollectionEnvelope, ...]:
        return tuple(self._pending.values())

    def _aggregate(self, name: str) -> int:
        try:
            return self._agg_index[name]
        except KeyError:
            raise ReplicaError(f"unknown aggregate {name!r} (known: "
                               f"{', '.join(self._agg_index) or 'none'})") from None

    # -- local events
    def emit(self, key: Any, event: str, *args: Any) -> EmitResult:
        """Issue ``event`` on ``key`` (owned by this replica). Returns what
        happened; the envelope, if any, is to be sent to every peer.

        Raises:
            ReplicaError: the key is not this replica's, or not of the key type.
            MachineUsageError: an unknown event (from the template).
        """
        self._check_key(key, ReplicaError)
        if self.owner(key) != self.id:
            raise ReplicaError(f"key {key!r} is owned by replica {self.owner(key)!r}, not "
                               f"{self.id!r}: only its owner issues its events")
        t = self.machine.template
        name = t.instance(event, *args) if args else event
        if name not in t.events:
            raise MachineUsageError(f"unknown event {name!r} of template {t.name!r}")
        old = self._ids.get(key, t.initial.id)
        new = t.apply_id(old, name)
        if new == old:
            return EmitResult(None, "guard")
        refused = self._refusal(self.id, old, new)
        if refused is not None:
            return EmitResult(None, f"aggregate:{refused}")
        env = CollectionEnvelope(self.id, self._vv[self.id] + 1, dict(self._vv), self.policy,
                                 "event", key=key, event=name)
        self._apply(env)
        self._commit()
        return EmitResult(env)

    def transfer(self, aggregate: str, to: str, amount: int) -> CollectionEnvelope:
        """Give ``amount`` of this replica's unused share of ``aggregate`` to
        replica ``to`` (escrow). The receiver can use it once it applied
        the returned envelope.

        Raises:
            ReplicaError: not escrow, unknown aggregate or replica, or more
                than ``available(aggregate)``.
        """
        if not self.escrow:
            raise ReplicaError("shares exist under escrow admission only")
        self._aggregate(aggregate)
        if to not in self._vv or to == self.id:
            raise ReplicaError(f"transfer to {to!r}: expected another replica of "
                               f"{list(self.replicas)}")
        if not _is_int(amount) or amount < 1 or amount > self.available(aggregate):
            raise ReplicaError(f"transfer of {amount!r} of {aggregate!r}: expected an int in "
                               f"[1, {self.available(aggregate)}] (the unused share)")
        env = CollectionEnvelope(self.id, self._vv[self.id] + 1, dict(self._vv), self.policy,
                                 "transfer", aggregate=aggregate, to=to, amount=amount)
        self._apply(env)
        self._commit()
        return env

    def _refusal(self, origin: str, old: int, new: int) -> str | None:
        """The aggregate that refuses moving a key of ``origin`` from ``old``
        to ``new`` here, or None: against ``origin``'s share (escrow), or
        against the whole collection (shared)."""
        before = self.machine.contribution(old)
        after = self.machine.contribution(new)
        for i, a in enumerate(self.machine.aggregates):
            delta = after[i] - before[i]
            if delta <= 0:
                continue
            if self.escrow:
                if self._used[origin][i] + delta > self._share[origin][i]:
                    return a.name
            elif self._totals[i] + delta > a.limit:
                return a.name
        return None

    # -- remote events
    def receive(self, envelopes: CollectionEnvelope | Iterable[CollectionEnvelope]) -> int:
        """Accept peers' envelopes (late, duplicated, reordered): each is
        checked whole before anything changes, then dropped (duplicate),
        buffered (dependencies missing) or applied. Returns how many were
        applied (buffered ones included, once their turn came).

        Raises:
            ProtocolError: a malformed envelope (nothing of the call applied),
                or an origin caught breaking the rules (its envelope is not
                applied; everything valid of the call was).
            PolicyMismatchError: an envelope of another collection, split or
                membership (nothing of the call applied).
            BackpressureError: the buffer is full; the refused ones come again
                with anti-entropy.
        """
        batch = [envelopes] if isinstance(envelopes, CollectionEnvelope) else list(envelopes)
        for env in batch:
            self._validate(env)
        refused: list[str] = []
        caught: list[str] = []
        before = self.stats.applied
        for env in batch:
            if env.seq <= self._vv[env.origin]:
                self._duplicate(env)
            elif (env.origin, env.seq) in self._pending:
                self.stats.duplicates += 1
                if self._pending[env.origin, env.seq] != env:
                    self._evidence(env, "two different envelopes under one id")
            elif self._ready(env):
                # applicable now: never refused, whatever the buffer holds
                self._pending[env.origin, env.seq] = env
                caught += self._drain()
            elif len(self._pending) >= self.max_pending:
                refused.append(env.id)
            else:
                self._pending[env.origin, env.seq] = env
        caught += self._drain()
        self._commit()
        applied = self.stats.applied - before
        if caught:
            raise ProtocolError("; ".join(caught))
        if refused:
            raise BackpressureError(f"{len(refused)} envelopes refused: the pending buffer "
                                    f"holds {self.max_pending}", refused=tuple(refused),
                                    applied=applied, pending=len(self._pending),
                                    limit=self.max_pending)
        return applied

    def receive_sealed(self, data: bytes, keyring: Keyring) -> int:
        """``receive`` of a ``seal_envelopes`` batch: opened only when a
        replica of this collection that ``keyring`` knows signed it (else
        SignatureError, and nothing changes)."""
        signer, envelopes = open_envelopes(data, keyring)
        if signer not in self._vv:
            from .signing import SignatureError
            raise SignatureError(f"a batch signed by {signer!r}, which is not a replica of "
                                 f"this collection ({list(self.replicas)})")
        return self.receive(envelopes)

    def missing_for(self, version: Mapping[str, int]) -> list[CollectionEnvelope]:
        """What a peer at ``version`` (its version vector, as it sent it)
        lacks, in an order it can apply.

        Raises:
            ProtocolError: ``version`` is not a mapping of replica ids to ints.
        """
        if not isinstance(version, Mapping) or not all(
                isinstance(k, str) and _is_int(v) and 0 <= v < MAX_SEQ
                for k, v in version.items()) or len(version) > 4 * len(self.replicas) + 16:
            raise ProtocolError("a version vector maps replica ids to ints in [0, 2**53)")
        return [e for e in self._log if e.seq > version.get(e.origin, 0)]

    def _check_key(self, key: Any, error: type[Exception]) -> None:
        if not self.machine.key_ok(key):
            raise error(f"key {key!r} is not a {self.machine.key_type} key of collection "
                        f"{self.machine.name!r}")
        if isinstance(key, str) and len(key) > MAX_KEY_CHARS or \
                _is_int(key) and abs(key) >= 10**MAX_KEY_CHARS:
            raise error(f"key longer than {MAX_KEY_CHARS} characters")

    def _validate(self, env: Any) -> None:
        """Every field's type, range and meaning that can be checked alone."""
        if not isinstance(env, CollectionEnvelope):
            raise ProtocolError(f"expected a CollectionEnvelope, got {type(env).__name__}")
        if not isinstance(env.origin, str) or env.origin not in self._vv:
            raise ProtocolError(f"origin {env.origin!r} is not a replica of "
                                f"{list(self.replicas)}")
        if not _is_int(env.seq) or not 1 <= env.seq < MAX_SEQ:
            raise ProtocolError(f"{env.origin}: seq {env.seq!r} (expected an int in "
                                f"[1, 2**53))")
        if not isinstance(env.policy, str) or env.policy != self.policy:
            raise PolicyMismatchError(f"envelope {env.id} is of another collection policy "
                                      "(collection, template, aggregates, replicas or "
                                      "shares differ)", expected=self.policy,
                                      got=str(env.policy))
        deps = env.deps
        if not isinstance(deps, Mapping) or not set(deps) <= set(self._vv) or not all(
                _is_int(v) and 0 <= v < MAX_SEQ for v in deps.values()):
            raise ProtocolError(f"envelope {env.id}: deps must map replicas to ints >= 0")
        if int(deps.get(env.origin, 0)) != env.seq - 1:
            raise ProtocolError(f"envelope {env.id}: deps[{env.origin}] must be {env.seq - 1}")
        if env.kind == "event":
            self._check_key(env.key, ProtocolError)
            if not isinstance(env.event, str) or env.event not in self.machine.template.events:
                raise ProtocolError(f"envelope {env.id}: unknown event {env.event!r}")
            if self.owner(env.key) != env.origin:
                raise ProtocolError(f"envelope {env.id}: key {env.key!r} belongs to "
                                    f"{self.owner(env.key)!r}, not to its origin")
        elif env.kind == "transfer":
            if not self.escrow or env.aggregate not in self._agg_index:
                raise ProtocolError(f"envelope {env.id}: transfer of {env.aggregate!r} (not an "
                                    "escrowed aggregate)")
            if env.to not in self._vv or env.to == env.origin:
                raise ProtocolError(f"envelope {env.id}: transfer to {env.to!r}")
            if not _is_int(env.amount) or not 1 <= env.amount < MAX_SEQ:
                raise ProtocolError(f"envelope {env.id}: amount {env.amount!r}")
        else:
            raise ProtocolError(f"envelope {env.id}: kind {env.kind!r}")

    def _duplicate(self, env: CollectionEnvelope) -> None:
        self.stats.duplicates += 1
        seen = self._by_id.get(env.id)
        if seen is not None and seen != env:
            self._evidence(env, "two different envelopes under one id")

    def _evidence(self, env: CollectionEnvelope, why: str) -> str:
        """Keep the first content (as the core replica does) and remember the
        faulty peer: ``evidence`` and ``stats.evidence``."""
        msg = f"replica {env.origin!r} broke the protocol with {env.id}: {why}"
        if msg not in self.evidence:
            self.evidence.append(msg)
            self.stats.evidence += 1
        return msg

    def _caught(self, env: CollectionEnvelope, why: str) -> str:
        """An envelope that cannot be applied without breaking an aggregate:
        its origin's later envelopes (which depend on it) wait for good."""
        self._blocked.add(env.origin)
        return self._evidence(env, why)

    def _ready(self, env: CollectionEnvelope) -> bool:
        return env.seq == self._vv[env.origin] + 1 and all(
            self._vv[o] >= n for o, n in env.deps.items())

    def _drain(self) -> list[str]:
        """Apply every buffered envelope whose turn came: only the next one of
        each origin can be, so a round costs one lookup per replica and the
        whole drain O(applied x replicas), whatever the arrival order."""
        caught: list[str] = []
        progress = True
        while progress:
            progress = False
            for origin in self.replicas:
                if origin in self._blocked:
                    continue
                env = self._pending.get((origin, self._vv[origin] + 1))
                if env is None or not self._ready(env):
                    continue
                why = self._breach(env)
                if why is not None:
                    caught.append(self._caught(env, why))
                    continue
                del self._pending[origin, env.seq]
                self._apply(env)
                progress = True
        return caught

    def _breach(self, env: CollectionEnvelope) -> str | None:
        """Under escrow, an honest origin never exceeds its share as seen
        here (see the module docstring); an envelope that would is refused."""
        if not self.escrow:
            return None
        if env.kind == "transfer":
            i = self._agg_index[str(env.aggregate)]
            if self._share[env.origin][i] - env.amount < self._used[env.origin][i]:
                return f"it gives away more of {env.aggregate!r} than it has unused"
            return None
        t = self.machine.template
        old = self._ids.get(env.key, t.initial.id)
        new = t.apply_id(old, str(env.event))
        refused = self._refusal(env.origin, old, new)
        if refused is not None:
            return f"it exceeds its share of {refused!r}"
        return None

    def _apply(self, env: CollectionEnvelope) -> None:
        if env.kind == "transfer":
            i = self._agg_index[str(env.aggregate)]
            self._share[env.origin][i] -= env.amount
            self._share[str(env.to)][i] += env.amount
        else:
            self._apply_event(env)
        self._vv[env.origin] = env.seq
        self._log.append(env)
        self._by_id[env.id] = env
        self.stats.applied += 1

    def _apply_event(self, env: CollectionEnvelope) -> None:
        t = self.machine.template
        key = env.key
        old = self._ids.get(key, t.initial.id)
        new = t.apply_id(old, str(env.event))
        if new == old:
            return
        if not self.escrow and self._refusal(env.origin, old, new) is not None:
            self.stats.refused_at_apply += 1     # shared admission: a no-op here
            return
        before = self.machine.contribution(old)
        after = self.machine.contribution(new)
        used = self._used[env.origin]
        for i in range(len(before)):
            d = after[i] - before[i]
            used[i] += d
            self._totals[i] += d
        if new == t.initial.id:
            self._ids.pop(key, None)
        else:
            self._ids[key] = new

    def close(self) -> None:
        """Close the store (and release its lock); the replica keeps its
        state in memory but writes nothing more."""
        if self.store is not None:
            self.store.close()

    def __repr__(self) -> str:
        return (f"CollectionReplica({self.id!r}, {self.machine.name!r}, "
                f"{self.machine.admission}, applied={self.stats.applied}, "
                f"pending={len(self._pending)})")
