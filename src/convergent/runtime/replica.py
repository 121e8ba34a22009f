"""The replica: a verified machine, its state, and the log of accepted events.

This module does no I/O of its own: the store and the transport are
injected, and everything here is deterministic given the calls made.

How a replica stays convergent (the proof is in docs/replicas.md):

* **Canonical order.** The log is kept sorted by ``key = (hlc, origin,
  seq)``, a linear extension of the causal order (the hybrid logical clock
  of an event exceeds the clock of everything its issuer had applied). The
  state is always ``fold(apply, log)`` from the initial state (or from the
  compacted snapshot): a function of the *set* of accepted events only.
* **Causal delivery.** An envelope is applied only once its origin's previous
  event and every dependency are applied; until then it waits in a buffer.
* **Dedup.** ``seq`` numbers each origin's events 1, 2, 3...; causal delivery
  makes the applied events of an origin a prefix, so a version vector
  ``{origin: n}`` recognises every duplicate.
* **Cheap resolution.** New events usually sort after everything applied:
  one table lookup each. One that sorts before applied events is applied at
  the end anyway when it commutes with all of them (a verified independent
  pair, or the same event name): the swap argument shows the result equals
  the canonical fold. Otherwise the replica rolls back to the state before
  the insertion point (states after each log position are cached) and
  replays: a repair, counted and explained. The replay is deferred until the
  state is read (``_fresh``): the repairs of many calls cost one replay.
* **Bounded buffer.** At most ``max_pending`` envelopes wait for their
  dependencies; past that, the ones farthest in the canonical order are
  turned away (``BackpressureError``). They are not accepted, so the version
  vector does not cover them and anti-entropy sends them again.
* **Joining from a snapshot.** A replica that lacks events a peer has
  compacted away installs that peer's snapshot (``install_snapshot``,
  ``from_snapshot``): the snapshot covers every event at or below its stable
  horizon, so the replica's own events below it are in it, and those above
  it stay in its log.
* **Nothing unchecked changes state.** ``receive`` checks every envelope of
  a call (types, ranges, sizes, ``Limits``) before touching anything; an
  envelope further ahead of the wall clock than ``max_drift_ms`` waits for
  anti-entropy; a second content under an accepted id is evidence
  (``evidence``, ``stats.equivocations``), never applied.
* **Compaction on durable facts.** Peers are told only committed state
  (``report``), and the stable horizon is built from it, so a crash between
  a report and its commit cannot get a later event refused.
* **Asynchronous commits.** With a store that declares itself ``blocking``,
  ``aflush``/``acompact``/``ainstall_snapshot`` run the store call in a worker
  thread, one at a time and in order, while the loop goes on; the in-memory
  part of each step stays on the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from heapq import heapify, heappop, heappush
from itertools import chain, islice, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..errors import MachineUsageError
from ..machine import Machine, State
from .._bulk import BULK
from .._bulk import bulk as _bulk
from .envelope import (
    DEFAULT_LIMITS,
    MAX_HLC,
    Envelope,
    Envelopes,
    _Checked,
    Limits,
    as_envelope,
    check_envelope,
    check_meta_value,
    valid_replica_id,
)
from .errors import (
    BackpressureError,
    PolicyMismatchError,
    ProtocolError,
    ReplicaError,
    StoreError,
)
from .hlc import HybridClock
from .model import Change, Explanation, Repair, ReplicaStats, Snapshot, Step, SyncReport

if TYPE_CHECKING:  # pragma: no cover
    from .stores.base import Store
    from .transports.base import Transport

__all__ = ["Replica"]

log = logging.getLogger("convergent.runtime")

_KEY = itemgetter(0)
_HLC = itemgetter(4)
#: machines with at most this many table entries get Python-list tables (faster lookups)
_LIST_TABLES = 4_000_000
#: default bound of the pending (causal) buffer: about 63 MB of waiting envelopes
MAX_PENDING = 100_000


class _Far:
    """A heap entry that puts the envelope with the *largest* key on top."""

    __slots__ = ("env",)

    def __init__(self, env: Envelope) -> None:
        self.env = env

    def __lt__(self, other: _Far) -> bool:
        return bool(self.env[0] > other.env[0])


class _StoreOp:
    """One store call run in a worker thread. ``finish`` (on success) or
    ``undo`` (on failure) runs on the replica's thread afterwards, once."""

    __slots__ = ("arg", "call", "done", "error", "finish", "future", "result", "settled",
                 "undo")

    def __init__(self, call: Callable[[Any], Any], arg: Any, finish: Callable[[], Any],
                 undo: Callable[[], None]) -> None:
        self.call = call
        self.arg = arg
        self.finish = finish
        self.undo = undo
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.settled = False
        self.result: Any = None
        self.future: asyncio.Future[None] | None = None

    def run(self) -> None:  # in the worker thread; never raises
        try:
            self.call(self.arg)
        except BaseException as exc:  # handed to the replica's thread by _settle
            self.error = exc
        finally:
            self.done.set()


class Replica:
    """One replica of an entity: ``emit`` local events, ``receive`` remote
    envelopes, read ``state``.

    Args:
        machine: a built (verified) ``Machine``.
        id: this replica's id: 1 to 64 of ``A-Z a-z 0-9 _ . -``. Never reuse
            an id with a fresh store: its event numbers would collide.
        store: a ``Store`` or a store URL (``sqlite:///r1.db``); default an
            in-memory store. The replica loads its log from it and owns it
            (``close`` closes it).
        transport: a ``Transport`` to broadcast committed local events on.
        peers: every replica id that may ever emit (this one included);
            needed by ``compact`` to know which prefix of the log is stable.
        clock: milliseconds for the hybrid logical clock (default: wall clock).
        autoflush: commit after every ``emit``/``receive`` outside ``batch()``
            (default); with False, call ``flush()`` yourself.
        resolve_conflicts, dedup: for tests only. Switching either off breaks
            the delivery contract (events of non-commuting concurrent pairs
            applied in arrival order; duplicates applied again).
        history: how many repairs and rejections ``explain`` remembers.
        max_pending: how many envelopes may wait for their dependencies (the
            causal buffer). When it is full, ``receive`` keeps the envelopes
            nearest to the causal frontier (smallest canonical keys), turns the
            others away and raises ``BackpressureError`` at the end of the call;
            anti-entropy sends them again (they were not accepted).
        limits: bounds on what is accepted from outside (``Limits``: clock
            drift, meta size and depth, dependencies); default ``Limits()``.
        retired: ``{peer: final_seq}`` of replicas removed for good (see
            ``remove_peer``): compaction no longer waits for them, and their
            events past ``final_seq`` are refused.

    Raises:
        ReplicaError: bad id, peers or max_pending. PolicyMismatchError: the
        store was written by another machine policy. StoreError: the store
        cannot open.

    Not thread-safe: use a replica from one thread or one event loop (with a
    ``blocking`` store, the ``a...`` methods use worker threads for the store
    calls only, and keep everything else on the loop).
    """

    def __init__(self, machine: Machine, *, id: str, store: Store | str | None = None,
                 transport: Transport | None = None, peers: Iterable[str] | None = None,
                 clock: Callable[[], int] | None = None, autoflush: bool = True,
                 resolve_conflicts: bool = True, dedup: bool = True,
                 history: int = 1000, max_pending: int = MAX_PENDING,
                 limits: Limits | None = None,
                 retired: Mapping[str, int] | None = None) -> None:
        if not isinstance(machine, Machine):
            raise ReplicaError(f"machine={machine!r} (expected a built Machine: "
                               "Registry.build() or Machine.from_spec())")
        if not valid_replica_id(id):
            raise ReplicaError(f"id={id!r} (expected 1 to 64 of A-Z a-z 0-9 _ . -)")
        if peers is not None:
            peers = frozenset(peers)
            bad = [p for p in peers if not valid_replica_id(p)]
            if bad:
                raise ReplicaError(f"peers: {bad[0]!r} is not a replica id")
            peers = peers | {id}
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ReplicaError(f"max_pending={max_pending!r} (expected an int >= 1)")
        if limits is not None and not isinstance(limits, Limits):
            raise ReplicaError(f"limits={limits!r} (expected a Limits)")
        self.limits: Limits = limits or DEFAULT_LIMITS
        # a _Checked envelope was checked with the default limits
        self._trusted = self.limits == DEFAULT_LIMITS
        self.retired: dict[str, int] = {}
        for p, n in (retired or {}).items():
            if not valid_replica_id(p) or p == id or type(n) is not int or n < 0:
                raise ReplicaError(f"retired: {p!r}: {n!r} (expected another replica's id "
                                   "and its final event number)")
            self.retired[p] = n
        if peers is not None:
            peers = peers - set(self.retired)
        self.id: str = id
        self.max_pending = max_pending
        self.machine = machine
        self.peers: frozenset[str] | None = peers
        self._policy = machine.policy_digest
        self._autoflush = autoflush
        self._resolve = resolve_conflicts
        self._dedup = dedup
        names = machine.events
        self._idx = {n: i for i, n in enumerate(names)}
        tables = machine.tables
        self._steps: list[Any] = ([row.tolist() for row in tables]
                                  if tables.size <= _LIST_TABLES else list(tables))
        # bit j of _indep[i]: events i and j commute (verified, or the same event)
        self._indep = [sum(1 << j for j, b in enumerate(names)
                           if i == j or machine.commutes(a, b)) for i, a in enumerate(names)]
        self._all_events = (1 << len(names)) - 1
        self._hlc = HybridClock(clock)
        self.stats = ReplicaStats()
        self._repairs: deque[Repair] = deque(maxlen=history)
        #: evidence of faulty or hostile peers: (id, what), newest last
        self.evidence: deque[tuple[str, str]] = deque(maxlen=history)
        self._ahead_limit = MAX_HLC
        self._dups: list[Envelope] = []
        self._rejected: deque[tuple[str, str]] = deque(maxlen=history)
        self._subscribers: list[Callable[[Change], None]] = []
        self._peer_views: dict[str, tuple[int, int]] = {}
        self._peer_has: dict[str, int] = {}
        self._batch_depth = 0
        self._closed = False
        # the log and its states
        self._log: list[Envelope] = []
        self._after: list[int] = []     # state after log[i], for i < len(_after)
        self._base = machine.initial.id  # state before log[0]
        self._base_snapshot: Snapshot | None = None
        self._horizon = -1               # every event with hlc <= horizon is compacted
        self._base_count = 0             # events in the compacted prefix
        # the state after the whole log, unless _stale: then only the prefix
        # cached in _after is folded, and the rest is replayed when the state
        # is read (_fresh): several repairs cost one replay
        self._cur = self._base
        self._stale = False
        self._stale_before = self._base  # the state shown before the deferred repairs
        self._deferred: list[tuple[tuple[str, ...], tuple[str, ...], int]] = []
        self._vv: dict[str, int] = {}
        self._clocks: dict[str, int] = {}
        self._heads: set[str] = set()
        self._pending: dict[str, Envelope] = {}
        self._waiting: dict[str, list[Envelope]] = {}
        # max-heap of pending keys, kept only while the buffer has been full since
        # it was last empty (stale entries are skipped)
        self._far: list[_Far] | None = None
        self._inflight: _StoreOp | None = None
        self._touched = False            # state replaced without new events (a snapshot)
        self._unflushed: list[Envelope] = []
        self._unsent: list[Envelope] = []
        self._changed: list[Envelope] = []
        self._notify_from = self._cur
        self._notify_repaired = False
        # the store
        if store is None:
            from .stores.memory import MemoryStore
            store = MemoryStore()
        elif isinstance(store, str):
            from .stores import open_store
            store = open_store(store)
        self.store: Store = store
        store.open(replica=id, machine=machine.name, policy=self._policy)
        self._load()
        self.transport = transport
        if transport is not None:
            transport.attach(self)

    # ------------------------------------------------------------ loading

    def _load(self) -> None:
        snap, events = self.store.load()
        if snap is not None:
            if snap.policy != self._policy:
                raise PolicyMismatchError(
                    f"snapshot of replica {self.id!r} in {self.store.url} has policy "
                    f"{snap.policy[:16]}..., this machine {self._policy[:16]}...",
                    expected=self._policy, got=snap.policy)
            try:
                self._base = self.machine.encode(snap.state).id
            except MachineUsageError as exc:
                raise ProtocolError(f"snapshot state does not fit the machine: {exc}") from None
            self._base_snapshot = snap
            self._horizon = snap.horizon
            self._base_count = snap.events
            self._vv = dict(snap.version)
            self._clocks = dict(snap.clocks)
            self._heads = set(snap.heads)
            self._hlc.observe(snap.hlc)
            self._hlc.observe(snap.horizon)
        vv, clocks, heads = self._vv, self._clocks, self._heads
        kept = []
        limits, idx_of = self.limits, self._idx
        for n, e in enumerate(events):  # acceptance order: a causal order
            # a stored row crossed a process boundary: checked like a peer's
            # envelope, and each origin's numbers go on without a gap
            try:
                check_envelope(as_envelope(e), limits)
            except ProtocolError as exc:
                raise StoreError(f"{self.store.url}: stored event {n} of replica {self.id!r} "
                                 f"is not a valid envelope: {exc}") from None
            origin, seq = e[2], e[3]
            if seq <= vv.get(origin, 0):
                continue
            if e[5] not in idx_of:
                raise ProtocolError(f"stored event {e[1]} names unknown event {e[5]!r}")
            if seq != vv.get(origin, 0) + 1:
                raise StoreError(f"{self.store.url}: stored event {e[1]} of replica {self.id!r} "
                                 f"follows {origin}:{vv.get(origin, 0)}: events "
                                 f"{origin}:{vv.get(origin, 0) + 1}..{seq - 1} are missing")
            vv[origin] = seq
            clocks[origin] = e[4]
            self._hlc.observe(e[4])
            heads.difference_update(e[6])
            heads.discard(f"{origin}:{seq - 1}")
            heads.add(e[1])
            kept.append(e)
        kept.sort(key=_KEY)
        self._log = kept
        s, steps, idx, after = self._base, self._steps, self._idx, self._after
        for e in kept:
            s = steps[idx[e[5]]][s]
            after.append(s)
        self._after = after
        self._cur = int(s)
        self._notify_from = self._cur
        self._durable_own = vv.get(self.id, 0)
        # the largest hlc of a durable fact (a stored event or snapshot): a
        # restart observes all of them, so no later event of this replica can
        # carry a smaller clock. The only clock reported to peers.
        self._durable_clock = max(self._hlc.last, 0)
        self.stats.accepted = self._base_count + len(kept)

    # ------------------------------------------------------------ reading

    @property
    def state(self) -> State:
        """The current state: the canonical fold of every accepted event."""
        return self.machine.state(self._fresh())

    @property
    def _state(self) -> int:
        """The current state id (replays deferred repairs first)."""
        return self._fresh()

    @property
    def log(self) -> tuple[Envelope, ...]:
        """The accepted events after the compacted prefix, in canonical order
        (the order their effects were computed in)."""
        return tuple(map(as_envelope, self._log))

    @property
    def pending(self) -> tuple[Envelope, ...]:
        """Envelopes waiting for a dependency, in canonical order."""
        return tuple(sorted(self._pending.values(), key=_KEY))

    @property
    def backpressure(self) -> bool:
        """Whether the pending buffer is full: an envelope that must wait for a
        dependency is turned away (or evicts a farther one) until it drains."""
        return len(self._pending) >= self.max_pending

    @property
    def version(self) -> dict[str, int]:
        """``{origin: n}``: the first n events of each origin are accepted."""
        return dict(self._vv)

    @property
    def heads(self) -> tuple[str, ...]:
        """Ids of accepted events no other accepted event depends on (what the
        next emitted event will name as its dependencies)."""
        return tuple(sorted(self._heads))

    @property
    def accepted(self) -> int:
        """Events accepted, compacted ones included."""
        return self._base_count + len(self._log)

    def status(self) -> dict[str, Any]:
        """A JSON-ready summary: state, digest, log length, pending buffer..."""
        return {
            "replica": self.id, "machine": self.machine.name, "policy": self._policy,
            "state": self.machine.decode(self._fresh()),
            "digest": self.machine.state_digest(self.state),
            "accepted": self.accepted, "log": len(self._log), "pending": len(self._pending),
            "max_pending": self.max_pending,
            "unflushed": len(self._unflushed), "version": dict(self._vv),
            "horizon": self._horizon, "stats": self.stats.to_dict(),
            "evidence": [list(x) for x in list(self.evidence)[-20:]],
            "retired": dict(self.retired),
        }

    def snapshot(self) -> Snapshot:
        """The current state and what it covers (no compaction, no I/O). Not
        a base to join from (nothing says no earlier event can still come):
        a new replica starts from ``bootstrap()``."""
        return Snapshot(replica=self.id, machine=self.machine.name, policy=self._policy,
                        state=self.machine.decode(self._fresh()),
                        digest=self.machine.state_digest(self.state), version=dict(self._vv),
                        events=self.accepted, horizon=-1, heads=self.heads,
                        clocks=dict(self._clocks), hlc=self._hlc.last)

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback(change)`` after every committed batch that accepted
        events; returns a function that unsubscribes. An exception raised by
        a callback propagates out of ``flush`` after every subscriber ran."""
        if not callable(callback):
            raise ReplicaError(f"subscribe: {callback!r} is not callable")
        if self._notify_from < 0:  # the last notification did not compute it
            self._notify_from = self._fresh()
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)
        return unsubscribe

    def explain(self, *, limit: int | None = None) -> Explanation:
        """Forensics: the events (the last ``limit`` of the retained log, or
        all) and the repairs that produced the current state."""
        m = self.machine
        self._fresh()
        start = 0 if limit is None else max(0, len(self._log) - limit)
        s = self._state_at(start)
        steps = []
        idx, tables = self._idx, self._steps
        for e in self._log[start:]:
            t = tables[idx[e[5]]][s]
            steps.append(Step(as_envelope(e), m.decode(int(s)), m.decode(int(t))))
            s = t
        return Explanation(replica=self.id, machine=m.name, initial=m.decode(m.initial),
                           base=self._base_snapshot, steps=tuple(steps),
                           repairs=tuple(self._repairs), rejected=tuple(self._rejected),
                           stats=ReplicaStats(**self.stats.to_dict()),
                           state=m.decode(self._cur))

    # ------------------------------------------------------------ writing

    def emit(self, event: str, meta: Mapping[str, Any] | None = None) -> Envelope:
        """Issue a local event: apply it, log it and (after the commit)
        broadcast it. A false guard is the specified no-op; the event is
        still logged. ``meta``: a JSON object carried along (who, why...).

        Raises MachineUsageError for an unknown event, ReplicaError for meta
        that is not a JSON object."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        ei = self._idx.get(event)
        if ei is None:
            ei = self.machine._event(event)
            event = self.machine.events[ei]
        if meta is not None:
            if not isinstance(meta, Mapping):
                raise ReplicaError(f"meta={meta!r} (expected a JSON object or None)")
            try:
                check_meta_value(meta, self.limits)
            except ProtocolError as exc:
                raise ReplicaError(str(exc)) from None
            meta = json.loads(json.dumps(meta))
        vv, heads = self._vv, self._heads
        seq = vv.get(self.id, 0) + 1
        hlc = self._hlc.tick()
        if hlc > MAX_HLC:
            self._hlc.last = hlc - 1
            raise ReplicaError(f"replica {self.id!r}: the clock passed 2**62 (a store written "
                               "before clocks were bounded?); nothing was emitted")
        deps = tuple(sorted(heads)) if len(heads) > 1 else tuple(heads)
        cls = _Checked if self._default_fit(meta, deps) else Envelope
        env = cls(self.id, seq, hlc, event, deps, meta, self._policy)
        vv[self.id] = seq
        self._clocks[self.id] = hlc
        heads.clear()
        heads.add(env[1])
        log, after = self._log, self._after
        log.append(env)  # hlc exceeds every accepted event's: the end of the canonical order
        if not self._stale:  # (stale: the deferred replay folds it too)
            s = self._steps[ei][self._cur]
            if len(after) == len(log) - 1:
                after.append(s)
            self._cur = s
        st = self.stats
        st.emitted += 1
        st.accepted += 1
        st.appended += 1
        self._unflushed.append(env)
        self._unsent.append(env)
        self._changed.append(env)
        if self._autoflush and not self._batch_depth:
            self.flush()
        return env

    def emit_many(self, events: Sequence[str],
                  meta: Mapping[str, Any] | None = None) -> Envelopes:
        """Issue several local events at once, in order: the same as calling
        ``emit`` for each (one commit at the end with autoflush), but with
        the per-event work done in bulk (one clock reading, one meta check,
        the fold through the machine's tables in one loop). ``meta`` is
        shared by all of them. Returns their envelopes (a read-only
        sequence that builds each ``Envelope`` when it is read).

        Each event after the first names no dependency: its one dependency
        is its origin's previous event, which causal delivery waits for
        anyway (``seq`` numbers an origin's events without gaps).

        Raises MachineUsageError for an unknown event (nothing is emitted),
        ReplicaError for bad meta."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        n = len(events)
        if not n:
            return Envelopes._issued([])
        idx, names = self._idx, self.machine.events
        try:
            eis = list(map(idx.__getitem__, events))
        except (KeyError, TypeError):
            eis = [self.machine._event(e) for e in events]
        if meta is not None:
            if not isinstance(meta, Mapping):
                raise ReplicaError(f"meta={meta!r} (expected a JSON object or None)")
            try:
                check_meta_value(meta, self.limits)
            except ProtocolError as exc:
                raise ReplicaError(str(exc)) from None
            meta = json.loads(json.dumps(meta))
        with _bulk(n):
            return self._emit_many(eis, meta)

    def _emit_many(self, eis: list[int], meta: Mapping[str, Any] | None) -> Envelopes:
        n = len(eis)
        names = self.machine.events
        me, policy, vv, heads = self.id, self._policy, self._vv, self._heads
        seq0 = vv.get(me, 0) + 1
        t0 = self._hlc.tick()
        top = t0 + n - 1
        if top > MAX_HLC:
            self._hlc.last = t0 - 1
            raise ReplicaError(f"replica {self.id!r}: the clock passed 2**62 (a store written "
                               "before clocks were bounded?); nothing was emitted")
        self._hlc.last = top  # t0, t0 + 1, ...: above everything applied, in order
        # every column built by C iterators (no bytecode per event): the ids,
        # the sort keys, then the rows themselves (plain tuples of the
        # envelope's layout, zipped from the columns; see as_envelope). The
        # first event depends on the heads, each later one only on its
        # predecessor, which its seq already implies: no dependency tuple.
        # (the clocks and numbers as lists: each int is made once, and the
        # key and the row share it)
        hs, qs = list(range(t0, top + 1)), list(range(seq0, seq0 + n))
        ids = list(map(f"{me}:".__add__, map(str, qs)))
        first = tuple(sorted(heads)) if len(heads) > 1 else tuple(heads)
        deps = chain((first,), repeat((), n - 1))
        keys = zip(hs, repeat(me), qs)
        envs: list[Any] = list(zip(keys, ids, repeat(me), qs, hs, map(names.__getitem__, eis),
                                   deps, repeat(meta), repeat(policy)))
        if not self._default_fit(meta, first):
            # rows read as envelopes checked with the default limits: these
            # are not, so they stay envelopes every receiver checks again
            envs = list(map(tuple.__new__, repeat(Envelope), envs))
        vv[me] = seq0 + n - 1
        self._clocks[me] = top
        heads.clear()
        heads.add(ids[-1])
        log, after, steps = self._log, self._after, self._steps
        if not self._stale:  # (stale: the deferred replay folds them too)
            st = self._cur
            if len(after) == len(log):
                push = after.append
                for ei in eis:
                    st = steps[ei][st]
                    push(st)
            else:
                for ei in eis:
                    st = steps[ei][st]
            self._cur = st
        log.extend(envs)
        stats = self.stats
        stats.emitted += n
        stats.accepted += n
        stats.appended += n
        self._unflushed.extend(envs)
        self._unsent.extend(envs)
        self._changed.extend(envs)
        if self._autoflush and not self._batch_depth:
            self.flush()
        return Envelopes._issued(envs)

    def _default_fit(self, meta: Mapping[str, Any] | None, deps: tuple[str, ...]) -> bool:
        """Whether an event this replica issues also fits the default limits,
        which a receiver assumes of issued envelopes without checking them
        again. With larger ``limits`` a meta or a frontier may not: such an
        envelope is issued as a plain ``Envelope``, which receivers check."""
        if self._trusted:
            return True
        if len(deps) > DEFAULT_LIMITS.max_deps:
            return False
        if meta is not None:
            try:
                check_meta_value(meta, DEFAULT_LIMITS)
            except ProtocolError:
                return False
        return True

    def receive(self, envelopes: Envelope | Iterable[Envelope]) -> int:
        """Accept remote envelopes (any order, duplicates welcome); returns how
        many were applied now (others wait for dependencies or were dropped
        as duplicates).

        Raises PolicyMismatchError (nothing of the call is accepted) when an
        envelope carries another policy digest, ProtocolError when one names
        an unknown event or is not an Envelope. Raises BackpressureError when
        the pending buffer (``max_pending``) was full and envelopes were turned
        away: only at the end, after the rest of the call was applied (and,
        with autoflush, committed); the refused ones come again through
        anti-entropy."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        batch = (envelopes,) if isinstance(envelopes, Envelope) else tuple(envelopes)
        policy, idx, limits = self._policy, self._idx, self.limits
        trusted = self._trusted
        # every envelope is checked before anything changes: a bad one
        # (built in-process or decoded) refuses the whole call
        for env in batch:
            if type(env) is not _Checked or not trusted:
                if not isinstance(env, Envelope):
                    raise ProtocolError(f"receive: {env!r:.80} is not an Envelope")
                check_envelope(env, limits)
            if env[8] != policy:
                raise PolicyMismatchError(
                    f"envelope {env[1]} ({env[5]}) was issued under machine policy "
                    f"{str(env[8])[:16]}..., but replica {self.id!r} runs "
                    f"{self.machine.name!r} policy {policy[:16]}...: both sides must run the "
                    "same verified machine", expected=policy, got=str(env[8]))
            if env[5] not in idx:
                raise ProtocolError(f"envelope {env[1]} names unknown event {env[5]!r} "
                                    f"(machine {self.machine.name!r})")
        ready: list[Envelope] = []
        refused: list[str] = []
        self._ahead_limit = self._clock_limit()
        if len(batch) < BULK:
            self._take(batch, ready, refused)
            if ready:
                self._integrate(ready)
        else:
            with _bulk(len(batch)):
                self._take(batch, ready, refused)
                if ready:
                    self._integrate(ready)
        if self._dups:
            dups, self._dups = self._dups, []
            for env in dups:
                self._check_duplicate(env)
        if self._far is not None and not self._pending:
            self._far = None
        if self._autoflush and not self._batch_depth:
            self.flush()
        if refused:
            raise BackpressureError(
                f"replica {self.id!r}: the pending buffer is full ({len(self._pending)} of "
                f"max_pending={self.max_pending} envelopes wait for dependencies); "
                f"{len(refused)} envelope(s) turned away ({', '.join(refused[:3])}"
                f"{', ...' if len(refused) > 3 else ''}), {len(ready)} applied. They are not "
                "accepted: anti-entropy sends them again once their dependencies arrive",
                refused=tuple(refused), applied=len(ready), pending=len(self._pending),
                limit=self.max_pending)
        return len(ready)

    def _take(self, batch: Sequence[Envelope], ready: list[Envelope],
              refused: list[str]) -> None:
        """``_offer`` each envelope, with the common case inlined: the next
        event of its origin, every dependency applied, nothing waiting for it
        (an in-order stream). Anything else goes through ``_offer``."""
        vv, clocks, heads = self._vv, self._clocks, self._heads
        pending, waiting, retired = self._pending, self._waiting, self.retired
        get = vv.get
        me, horizon, limit = self.id, self._horizon, self._ahead_limit
        hlc = self._hlc
        last = hlc.last
        push = ready.append
        offer = self._offer
        prev_id = prev_origin = ""
        for env in batch:
            origin, seq, h = env[2], env[3], env[4]
            if (seq != get(origin, 0) + 1 or origin == me or h > limit or h <= horizon
                    or (retired and origin in retired) or (pending and env[1] in pending)):
                hlc.last = last
                offer(env, ready, refused)
                last = hlc.last
                prev_id = prev_origin = ""
                continue
            deps = env[6]
            eid = env[1]
            if not deps and prev_origin == origin:
                # a burst of one origin (emit_many): the event just applied is
                # its predecessor (same origin, seq one less) and only dependency
                heads.discard(prev_id)
            elif len(deps) == 1 and deps[0] == prev_id:
                # the usual stream: it depends on the event just applied
                heads.discard(prev_id)
                if prev_origin != origin and seq > 1:
                    heads.discard(f"{origin}:{seq - 1}")
            else:
                ok = True
                for d in deps:
                    o, _, k = d.rpartition(":")
                    if get(o, 0) < int(k):
                        ok = False
                        break
                if not ok:
                    hlc.last = last
                    offer(env, ready, refused)
                    last = hlc.last
                    prev_id = prev_origin = ""
                    continue
                if deps:
                    heads.difference_update(deps)
                if seq > 1:
                    heads.discard(f"{origin}:{seq - 1}")
            vv[origin] = seq
            clocks[origin] = h
            if h > last:
                last = h
            heads.add(eid)
            push(env)
            prev_id, prev_origin = eid, origin
            if waiting and eid in waiting:  # released envelopes: the general path
                hlc.last = last
                for w in waiting.pop(eid):
                    if w[1] in pending:
                        del pending[w[1]]
                        offer(w, ready, refused)
                last = hlc.last
                prev_id = prev_origin = ""
        hlc.last = last

    def _clock_limit(self) -> int:
        """The largest hlc accepted now: the wall clock plus the allowed drift."""
        wall = int(self._hlc._wall())
        return min(MAX_HLC, (wall + self.limits.max_drift_ms) << 16 | 0xFFFF)

    def _offer(self, env: Envelope, ready: list[Envelope], refused: list[str]) -> None:
        origin, seq = env[2], env[3]
        st = self.stats
        if seq <= self._vv.get(origin, 0):
            if self._dedup:
                st.duplicates += 1
                # compared once the call's envelopes are in the log (the
                # accepted one may be earlier in this very call)
                self._dups.append(env)
            else:  # tests only: the dedup obligation switched off
                ready.append(env)
            return
        eid = env[1]
        other = self._pending.get(eid)
        if other is not None:
            st.duplicates += 1
            if other[4] != env[4] or other[5:8] != env[5:8]:
                self._equivocation(env, other)
            return
        if origin == self.id:
            # this replica issued no such event (its own events are all in its
            # store): a forged or misrouted one; accepting it would make the
            # next emit reuse its number
            self._equivocation(env, None)
            return
        final = self.retired.get(origin)
        if final is not None and seq > final:
            st.rejected += 1
            self._rejected.append((eid, f"{origin!r} was retired after its event {final}"))
            return
        if env[4] > self._ahead_limit:
            st.ahead += 1
            self._rejected.append((eid, f"hlc {env[4]} is more than max_drift_ms="
                                        f"{self.limits.max_drift_ms} ahead of the local clock; "
                                        "accepted once the clock caught up"))
            return
        if env[4] <= self._horizon:
            st.rejected += 1
            self._rejected.append((eid, f"hlc {env[4]} is at or below the compaction horizon "
                                        f"{self._horizon} (an origin missing from peers?)"))
            return
        missing = self._missing(env)
        if missing is not None:
            if len(self._pending) >= self.max_pending:
                # full: keep the envelopes nearest to the causal frontier (the
                # smallest keys: the canonical order is a causal order)
                far = self._farthest()
                if far is None or not env[0] < far[0]:
                    st.refused += 1
                    refused.append(eid)
                    return
                self._evict(far)
                st.refused += 1
                refused.append(far[1])
            self._pending[eid] = env
            self._waiting.setdefault(missing, []).append(env)
            far_heap = self._far
            if far_heap is not None:
                heappush(far_heap, _Far(env))
                if len(far_heap) > 2 * len(self._pending) + 1024:  # drop stale entries
                    self._far = None
            st.buffered += 1
            return
        stack = [env]
        vv, clocks, heads, hlc = self._vv, self._clocks, self._heads, self._hlc
        while stack:
            e = stack.pop()
            origin, seq, eid = e[2], e[3], e[1]
            vv[origin] = seq
            clocks[origin] = e[4]
            hlc.observe(e[4])
            heads.difference_update(e[6])
            if seq > 1:
                heads.discard(f"{origin}:{seq - 1}")
            heads.add(eid)
            ready.append(e)
            self._pending.pop(eid, None)
            waiters = self._waiting.pop(eid, None)
            if waiters:
                for w in waiters:
                    if w[1] not in self._pending:
                        continue
                    m = self._missing(w)
                    if m is None:
                        stack.append(w)
                    else:
                        self._waiting.setdefault(m, []).append(w)

    def _check_duplicate(self, env: Envelope) -> None:
        """An envelope whose id is already accepted: compare its content with
        the accepted one when that is still in the log (found by its key, so
        no index by id is needed: another clock means other content)."""
        log = self._log
        k = bisect_left(log, env[0], key=_KEY)
        if k < len(log) and log[k][0] == env[0]:
            mine = log[k]
            if mine is env or mine[5:8] == env[5:8]:
                return
            self._equivocation(env, mine)
        elif env[4] > self._horizon:  # the accepted one is elsewhere: another hlc
            self._equivocation(env, None)

    def _equivocation(self, env: Envelope, accepted: Envelope | None) -> None:
        """Record evidence of a peer that sent two contents under one id (the
        first accepted wins, everywhere it came first), or an event of this
        replica's own id that it never issued."""
        self.stats.equivocations += 1
        if env[2] == self.id and accepted is None and env[3] > self._vv.get(self.id, 0):
            what = (f"an envelope claims this replica's id ({env[1]} {env[5]}) but it never "
                    "issued it: refused")
        elif accepted is None:
            what = (f"{env[1]} arrived again with another clock ({env[4]}) than the accepted "
                    "one: kept the accepted one")
        else:
            what = (f"{env[1]} arrived again with other content ({env[5]} hlc={env[4]} "
                    f"deps={list(env[6])}) than the accepted one ({accepted[5]} "
                    f"hlc={accepted[4]} deps={list(accepted[6])}): kept the accepted one")
        self.evidence.append((env[1], what))
        log.warning("replica %s: equivocation: %s", self.id, what)

    def _farthest(self) -> Envelope | None:
        """The pending envelope with the largest key (stale heap entries of
        applied or evicted envelopes are dropped on the way)."""
        heap, pending = self._far, self._pending
        if heap is None:  # built on the first overflow, in O(n)
            heap = self._far = [_Far(e) for e in pending.values()]
            heapify(heap)
        while heap:
            env = heap[0].env
            if pending.get(env[1]) is env:
                return env
            heappop(heap)
        return None

    def _evict(self, env: Envelope) -> None:
        """Take a pending envelope out of the buffer (it was never accepted)."""
        del self._pending[env[1]]
        # it waits in the list of its first missing dependency, which is still
        # missing (that list is popped when the dependency is applied)
        key = self._missing(env)
        waiters = self._waiting.get(key) if key is not None else None
        if waiters:
            for i, w in enumerate(waiters):
                if w is env:
                    del waiters[i]
                    break
            if not waiters:
                del self._waiting[key]  # type: ignore[arg-type]

    def _missing(self, env: Envelope) -> str | None:
        """The first dependency of ``env`` not yet accepted, or None."""
        vv = self._vv
        origin, seq = env[2], env[3]
        if vv.get(origin, 0) != seq - 1:
            return f"{origin}:{seq - 1}"
        for d in env[6]:
            o, _, n = d.rpartition(":")
            if vv.get(o, 0) < int(n):
                return d
        return None

    def _integrate(self, new: list[Envelope]) -> None:
        """Put delivered envelopes into the canonical log and bring the state
        to the canonical fold (see the module docstring). A repair (rollback
        and replay) is decided here but deferred: the log is exact at once,
        the replay runs when the state is next read (``_fresh``), so the
        repairs of many ``receive`` calls cost one replay."""
        st = self.stats
        st.accepted += len(new)
        self._unflushed.extend(new)
        self._changed.extend(new)
        log, after, steps, idx = self._log, self._after, self._steps, self._idx
        ordered = sorted(new, key=_KEY) if len(new) > 1 else new
        s = self._cur
        stale = self._stale
        if not log or log[-1][0] < ordered[0][0]:
            if stale:  # the deferred replay folds them too
                log.extend(ordered)
                st.appended += len(new)
                return
            full = len(after) == len(log)
            for e in ordered:
                s = steps[idx[e[5]]][s]
                if full:
                    after.append(s)
            log.extend(ordered)
            self._cur = s
            st.appended += len(new)
            return
        p0 = bisect_left(log, ordered[0][0], key=_KEY)
        n_log = len(log)
        tail_new = len(ordered) - bisect_right(ordered, log[-1][0], key=_KEY)
        inserted = ordered[:len(ordered) - tail_new]
        # which inserted events do not commute with an old event after them?
        # Walk the old events backwards, collecting their event kinds; the
        # mask only grows, so once it holds every kind the rest is decided
        indep, full_mask = self._indep, self._all_events
        j = len(inserted) - 1
        mask = 0
        conflicts: list[Envelope] = []
        for i in range(n_log - 1, p0 - 1, -1):
            e = log[i]
            k = e[0]
            while j >= 0 and inserted[j][0] > k:
                n = inserted[j]
                if mask & ~indep[idx[n[5]]]:
                    conflicts.append(n)
                j -= 1
            if j < 0:
                break
            mask |= 1 << idx[e[5]]
            if mask == full_mask:
                break
        # into the log: a few events by binary search and insert (a memmove
        # of the tail), many by merging two sorted runs (one pass, in C)
        if len(inserted) * 32 < n_log - p0:
            insert = log.insert
            for e in inserted:
                insert(bisect_left(log, e[0], lo=p0, key=_KEY), e)
            if tail_new:
                log.extend(ordered[len(inserted):])
        else:
            merged = log[p0:] + ordered
            merged.sort(key=_KEY)
            log[p0:] = merged
        if len(after) > p0:
            del after[p0:]
        if not self._resolve:  # tests only: the resolution obligation switched off
            for e in new:
                s = steps[idx[e[5]]][s]
            self._cur = s
            st.commuted += len(new)
            return
        while j >= 0:
            n = inserted[j]
            if mask & ~indep[idx[n[5]]]:
                conflicts.append(n)
            j -= 1
        if not conflicts:
            if not stale:
                for e in ordered:
                    s = steps[idx[e[5]]][s]
                self._cur = s
            st.commuted += len(ordered) - tail_new
            st.appended += tail_new
            return
        # a rollback to the state before p0 and a replay: _after keeps the
        # states before p0 (exact: nothing before p0 changed), the replay of
        # log[len(_after):] is deferred to the next read of the state
        st.repairs += 1
        self._notify_repaired = True
        against: tuple[str, ...] = ()
        if not stale:  # the first repair of a replay: the one its record names
            self._stale = True
            self._stale_before = int(s)
            first = conflicts[-1]
            bad = ~indep[idx[first[5]]]
            new_ids = {e[1] for e in ordered}
            later = (log[i] for i in range(bisect_right(log, first[0], key=_KEY), len(log)))
            against = tuple(islice((e[1] for e in later if e[1] not in new_ids
                                    and (1 << idx[e[5]]) & bad), 5))
        self._deferred.append((tuple(e[1] for e in reversed(conflicts)), against,
                               self._base_count + p0))

    def _fresh(self) -> int:
        """The current state id: runs the deferred replay first, if any."""
        if self._stale:
            self._replay()
        return self._cur

    def _replay(self) -> None:
        """Replay the log after the cached prefix of states: one rollback and
        replay for every repair decided since the state was last read,
        recorded as one ``Repair``."""
        log = self._log
        start = len(self._after)
        s = int(self._state_at(len(log)))
        self._cur = s
        self._stale = False
        deferred, self._deferred = self._deferred, []
        replayed = len(log) - start
        st = self.stats
        st.replays += 1
        st.replayed += replayed
        m = self.machine
        self._repairs.append(Repair(
            inserted=tuple(i for d in deferred for i in d[0]), against=deferred[0][1],
            position=min(d[2] for d in deferred), replayed=replayed,
            before=m.decode(self._stale_before), after=m.decode(s)))

    def _state_at(self, p: int) -> Any:
        """The state after the first ``p`` events of the retained log."""
        if p == 0:
            return self._base
        after = self._after
        n = len(after)
        if n < p:
            steps, idx = self._steps, self._idx
            s = after[-1] if n else self._base
            for e in self._log[n:p]:
                s = steps[idx[e[5]]][s]
                after.append(s)
        return after[p - 1]

    @contextmanager
    def batch(self) -> Iterator[Replica]:
        """Group emits and receives into one commit (one store transaction,
        one notification, one broadcast) at the end of the block."""
        self._batch_depth += 1
        try:
            yield self
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._autoflush and not self._closed:
                self.flush()

    def flush(self) -> int:
        """Commit accepted events to the store (one transaction), then
        broadcast the local ones and notify subscribers. Returns how many
        events were committed. On StoreError nothing is committed, sent or
        notified; the events stay queued for the next flush.

        Synchronous: with a ``blocking`` store, prefer ``await aflush()`` on
        an event loop. A store call still running in a worker thread (an
        ``a...`` method) is waited for first, so commits stay in order."""
        if self._inflight is not None:
            self._settle_quietly(self._inflight)
        n = len(self._unflushed)
        if n:
            batch = self._unflushed
            self.store.append(Envelopes._issued(batch))
            self._unflushed = []
            self._committed(batch)
        if self._unsent:
            own = self._unsent
            self._unsent = []
            self._durable_own = own[-1][3]
            if self.transport is not None:
                self.transport.broadcast(Envelopes._issued(own))
        if self._changed or self._touched:
            self._notify()
        return n

    def _committed(self, batch: list[Envelope]) -> None:
        top = max(map(_HLC, batch))
        if top > self._durable_clock:
            self._durable_clock = top

    def _notify(self) -> None:
        events, self._changed = self._changed, []
        before, self._notify_from = self._notify_from, self._notified_state()
        repaired, self._notify_repaired = self._notify_repaired, False
        self._touched = False
        if self._subscribers:
            self._tell(before, self._notify_from, events, repaired)

    def _notified_state(self) -> int:
        """The state a notification reports as "after": with no subscriber
        it is not computed (a deferred replay stays deferred) and -1 says
        "unknown" (``subscribe`` fills it in)."""
        if self._subscribers or not self._stale:
            return self._fresh()
        return -1

    def _tell(self, before: int, after: int, events: Sequence[Envelope],
              repaired: bool) -> None:
        if not self._subscribers:
            return
        m = self.machine
        change = Change(m.state(before), m.state(after), tuple(map(as_envelope, events)),
                        repaired)
        error: BaseException | None = None
        for cb in list(self._subscribers):
            try:
                cb(change)
            except Exception as exc:  # every subscriber runs; the first error propagates
                error = error or exc
        if error is not None:
            raise error

    # ------------------------------------------------------------ asynchronous store I/O

    def _blocking(self) -> bool:
        return bool(getattr(self.store, "blocking", False))

    async def aflush(self) -> int:
        """``flush`` for an asyncio loop: with a ``blocking`` store (PostgreSQL)
        the store's ``append`` runs in a worker thread and the loop goes on
        meanwhile (events emitted or received then go into the next commit);
        otherwise the same as ``flush()``. Commits stay in order: one store
        call at a time. Broadcast and notification happen on the loop, after
        the commit. Cancelling the awaiting task does not cancel the commit:
        its outcome is applied when the thread finishes."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        if not self._blocking():
            return self.flush()
        n = await self._run_blocking(self._prepare_flush)
        return int(n or 0)

    def _prepare_flush(self) -> _StoreOp | None:
        batch = self._unflushed
        if not batch:
            self.flush()  # nothing to write: broadcast and notify what is due
            return None
        own, changed = self._unsent, self._changed
        before, after = self._notify_from, self._notified_state()
        repaired = self._notify_repaired
        self._unflushed, self._unsent, self._changed = [], [], []
        self._notify_from, self._notify_repaired, self._touched = after, False, False

        def finish() -> int:
            self._committed(batch)
            if own:
                self._durable_own = own[-1][3]
                if self.transport is not None:
                    self.transport.broadcast(Envelopes._issued(own))
            # (a subscriber that came in meanwhile starts from its own moment)
            if (changed or before != after) and before >= 0 and after >= 0:
                self._tell(before, after, changed, repaired)
            return len(batch)

        def undo() -> None:  # nothing was written: queue it all again, in front
            self._unflushed[:0] = batch
            self._unsent[:0] = own
            self._changed[:0] = changed
            self._notify_from = before
            self._notify_repaired = self._notify_repaired or repaired

        return _StoreOp(self.store.append, Envelopes._issued(batch), finish, undo)

    async def _run_blocking(self, prepare: Callable[[], _StoreOp | None]) -> Any:
        """Wait for the store to be free, ``prepare`` an operation (on the
        loop), run its store call in a worker thread and settle it."""
        await self._await_store()
        op = prepare()
        if op is None:
            return None
        op.future = asyncio.get_running_loop().run_in_executor(None, op.run)
        self._inflight = op
        try:
            await asyncio.shield(op.future)
        except asyncio.CancelledError:
            # the thread runs on: apply its outcome when it ends
            op.future.add_done_callback(lambda _f: self._settle_quietly(op))
            raise
        return self._settle(op)

    async def _await_store(self) -> None:
        while self._inflight is not None:
            op = self._inflight
            if op.future is not None:
                await asyncio.wait([op.future])
            self._settle_quietly(op)

    def _settle(self, op: _StoreOp) -> Any:
        """Wait for ``op``'s thread (if needed) and apply its outcome, once."""
        if not op.settled:
            op.done.wait()
            op.settled = True
            if self._inflight is op:
                self._inflight = None
            if op.error is None:
                op.result = op.finish()
            else:
                op.undo()
        if op.error is not None:
            raise op.error
        return op.result

    def _settle_quietly(self, op: _StoreOp) -> None:
        """Settle an operation whose caller is gone: a failed commit is queued
        again (and retried by the next flush), a failed compaction is retried
        by the next one; errors are not raised here."""
        try:
            self._settle(op)
        except Exception:
            pass

    # ------------------------------------------------------------ anti-entropy

    def missing_for(self, version: Mapping[str, int]) -> list[Envelope]:
        """The committed events of the retained log a replica at ``version``
        lacks, in canonical (hence causal) order. Compacted events cannot be
        served: when ``snapshot_for(version)`` is not None, send that snapshot
        first (the transports do)."""
        durable = self._durable_own
        me = self.id
        get = version.get
        return [as_envelope(e) for e in self._log
                if e[3] > get(e[2], 0) and (e[2] != me or e[3] <= durable)]

    def snapshot_for(self, version: Mapping[str, int]) -> Snapshot | None:
        """The snapshot a replica at ``version`` needs before ``missing_for``
        can bring it up to date: this replica's compacted base when the other
        lacks events it covers (a new replica, or one that was away while
        everybody compacted), else None."""
        base = self._base_snapshot
        if base is None:
            return None
        get = version.get
        for origin, n in base.version.items():
            if get(origin, 0) < n:
                return base
        return None

    def bootstrap(self) -> tuple[Snapshot | None, list[Envelope]]:
        """What a new replica needs to join: the compacted base snapshot
        (None if this replica never compacted) and the committed events of
        the retained log, in canonical order. Pass both to ``from_snapshot``."""
        return self._base_snapshot, self.missing_for({})

    def needs_snapshot(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` covers events this replica lacks."""
        vv = self._vv
        return any(vv.get(o, 0) < n for o, n in snapshot.version.items())

    def add_peer(self, peer: str) -> None:
        """Add ``peer`` to the replica set (``peers``): compaction then waits for
        its events too. Done automatically for every peer heard from through
        anti-entropy (``observe_peer``); a no-op without ``peers``."""
        if not valid_replica_id(peer):
            raise ReplicaError(f"add_peer: {peer!r} is not a replica id")
        if peer in self.retired:
            raise ReplicaError(f"add_peer: {peer!r} was retired; a retired id never comes back")
        if self.peers is not None and peer not in self.peers:
            self.peers = self.peers | {peer}

    def report(self) -> SyncReport:
        """What to tell peers in anti-entropy: the **committed** version and
        the largest committed clock (see ``SyncReport``). Peers answer it with
        what it lacks, and may bound their compaction by it."""
        version = dict(self._vv)
        for e in self._unflushed:  # an origin's uncommitted events are its last ones
            if e[3] <= version.get(e[2], 0):
                version[e[2]] = e[3] - 1
        return SyncReport(self.id, {o: n for o, n in version.items() if n > 0},
                          self._durable_clock)

    def observe_peer(self, peer: str, version: Mapping[str, int], clock: int) -> None:
        """Record a peer's ``report()`` (its committed version and clock); lets
        ``compact`` advance while that peer is idle. A peer not yet in
        ``peers`` is added (a replica that joined): compaction never passes
        the clock it reported, and its later events have larger clocks. A
        retired peer, a malformed report, or a clock further ahead than the
        allowed drift is ignored (it would let compaction run ahead)."""
        if (not valid_replica_id(peer) or peer == self.id or peer in self.retired
                or type(clock) is not int or not 0 <= clock <= self._clock_limit()
                or not isinstance(version, Mapping)):
            return
        own, mine = version.get(peer, 0), version.get(self.id, 0)
        if type(own) is not int or type(mine) is not int:
            return
        if self.peers is not None and peer not in self.peers:
            self.peers = self.peers | {peer}
        self._peer_views[peer] = (own, clock)
        self._peer_has[peer] = mine

    def remove_peer(self, peer: str, final: int) -> None:
        """Retire ``peer`` for good after its event number ``final`` (its last
        committed event): compaction stops waiting for it, and its events past
        ``final`` are refused. Safe only once this replica holds every one of
        those ``final`` events (else it raises ReplicaError: an event of the
        peer still on its way could sort below the next compaction and be
        refused). The procedure, on every remaining replica, is in
        docs/replicas.md (*Membership*); restart with ``retired=`` to keep it."""
        if not valid_replica_id(peer) or peer == self.id:
            raise ReplicaError(f"remove_peer: {peer!r} is not another replica's id")
        if type(final) is not int or final < 0:
            raise ReplicaError(f"remove_peer: final={final!r} (expected an event number)")
        have = self._vv.get(peer, 0)
        if have < final:
            raise ReplicaError(
                f"remove_peer: replica {self.id!r} has {have} of {peer!r}'s {final} events; "
                "wait until anti-entropy brought them all, then remove it")
        if have > final:
            raise ReplicaError(
                f"remove_peer: replica {self.id!r} already accepted {have} events of {peer!r}, "
                f"more than final={final}: take its real final number from its store")
        self.retired[peer] = final
        self._peer_views.pop(peer, None)
        self._peer_has.pop(peer, None)
        if self.peers is not None:
            self.peers = self.peers - {peer}

    def peers_have_mine(self) -> bool:
        """Whether every other replica in ``peers`` reported (through
        ``observe_peer``) having all of this replica's committed events."""
        if self.peers is None:
            return False
        mine = self._durable_own
        return all(self._peer_has.get(p, -1) >= mine for p in self.peers if p != self.id)

    def stable_horizon(self) -> int:
        """The largest hlc h such that no event with hlc <= h can still arrive
        (assuming ``peers`` lists every origin); -1 when unknown.

        Built from durable facts only: for a peer, the clock of its last
        event applied here (it committed that event before sending it, so it
        restarts above it), or the committed clock of its last ``report``
        once every event that report counted is applied here; for this
        replica, its clock (compaction commits first, and the snapshot
        records the horizon)."""
        if self.peers is None:
            return -1
        bounds = []
        for p in self.peers:
            if p == self.id:
                bounds.append(self._hlc.last)
                continue
            b = self._clocks.get(p, -1)
            view = self._peer_views.get(p)
            if view is not None and self._vv.get(p, 0) >= view[0]:
                b = max(b, view[1])
            bounds.append(b)
        return min(bounds)

    def compact(self) -> int:
        """Snapshot the stable prefix of the log (every event no future event
        can sort before) into the store and drop it from the log. Returns the
        number of events compacted.

        Raises ReplicaError when the replica was built without ``peers``."""
        self._need_peers()
        self.flush()
        op = self._prepare_compact()
        if op is None:
            return 0
        op.run()  # here, on this thread
        return int(self._settle(op))

    async def acompact(self) -> int:
        """``compact`` for an asyncio loop: with a ``blocking`` store the
        store's part runs in a worker thread (see ``aflush``)."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        if not self._blocking():
            return self.compact()
        self._need_peers()
        await self.aflush()
        n = await self._run_blocking(self._prepare_compact)
        return int(n or 0)

    def _need_peers(self) -> None:
        if self.peers is None:
            raise ReplicaError("compaction needs the replica set: create the replica with "
                               "peers=[...] naming every replica that may emit")

    def _prepare_compact(self) -> _StoreOp | None:
        horizon = self.stable_horizon()
        if self._unflushed:  # only committed events go into a snapshot
            horizon = min(horizon, min(e[4] for e in self._unflushed) - 1)
        if horizon <= self._horizon:
            return None
        log = self._log
        k = bisect_right(log, horizon, key=_HLC)
        if k == 0:
            return None
        s = int(self._state_at(k))
        base = self._base_snapshot
        version = dict(base.version) if base else {}
        clocks = dict(base.clocks) if base else {}
        heads = set(base.heads) if base else set()
        for e in log[:k]:
            version[e[2]] = max(version.get(e[2], 0), e[3])
            clocks[e[2]] = max(clocks.get(e[2], -1), e[4])
            heads.difference_update(e[6])
            heads.add(e[1])
        m = self.machine
        snap = Snapshot(replica=self.id, machine=m.name, policy=self._policy,
                        state=m.decode(s), digest=m.state_digest(m.state(s)), version=version,
                        events=self._base_count + k, horizon=horizon,
                        heads=tuple(sorted(heads)), clocks=clocks, hlc=horizon)
        old_horizon = self._horizon
        # from now on an event at or below the new horizon is refused, as it
        # will be once the snapshot is stored (none can come: it is stable)
        self._horizon = horizon

        def finish() -> int:
            # nothing was inserted at or before position k meanwhile: every
            # later event sorts after the horizon
            if len(self._after) < k:
                self._state_at(k)
            del log[:k]
            del self._after[:k]
            self._base = s
            self._base_snapshot = snap
            self._base_count += k
            self.stats.compacted += k
            return k

        def undo() -> None:
            self._horizon = old_horizon

        return _StoreOp(self.store.compact, snap, finish, undo)

    # ------------------------------------------------------------ joining

    @classmethod
    def from_snapshot(cls, machine: Machine, snapshot: Snapshot | None,
                      log: Iterable[Envelope] = (), *, id: str,
                      store: Store | str | None = None, transport: Transport | None = None,
                      **options: Any) -> Replica:
        """A new replica that starts from a peer's compacted snapshot and the
        rest of its log (what the peer's ``bootstrap()`` returns), then goes on
        like any other: ``Replica.from_snapshot(m, *peer.bootstrap(), id="d",
        store="sqlite:///d.db", transport=..., peers=[...])``. ``options`` are
        the other ``Replica`` arguments. ``snapshot`` None (the peer never
        compacted): start from the log alone. The transport is attached last,
        once the snapshot and the log are in.

        Raises PolicyMismatchError for a snapshot (or an envelope) of another
        machine policy, ReplicaError for a snapshot that is not a compacted
        base (``horizon < 0``), that knows events of ``id`` this store lacks
        (an id is never reused), or that misses events of this store."""
        replica = cls(machine, id=id, store=store, **options)
        try:
            if snapshot is not None:
                replica.install_snapshot(snapshot)
            log = tuple(log)
            if log:
                replica.receive(log)
            replica.flush()
        except BaseException:
            replica.close()
            raise
        if transport is not None:
            replica.transport = transport
            transport.attach(replica)
        return replica

    def install_snapshot(self, snapshot: Snapshot) -> bool:
        """Continue from a peer's compacted snapshot when it covers events
        this replica lacks (``needs_snapshot``): the replica joins, or catches
        up past compactions it missed. Its own accepted events at or below the
        snapshot's horizon must be in the snapshot (they are when every origin
        is in the peer's ``peers``); the ones above it stay in the log, and
        pending envelopes are tried again. Commits queued events first, then
        stores the snapshot (in place of the covered events) and tells the
        subscribers. Returns False (and does nothing) when the snapshot brings
        nothing new.

        Raises PolicyMismatchError for another machine policy; ReplicaError
        for a snapshot that is not a compacted base, knows events of this
        replica's id that it lacks, or misses events this replica has at or
        below its horizon; StoreError when the store fails (nothing changed)."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        if self._check_snapshot(snapshot) is None:
            return False
        self.flush()
        if self._inflight is not None:
            self._settle_quietly(self._inflight)
        op = self._prepare_install(snapshot)
        if op is None:
            return False
        op.run()
        self._settle(op)
        if self._autoflush and not self._batch_depth:
            self.flush()
        return True

    async def ainstall_snapshot(self, snapshot: Snapshot) -> bool:
        """``install_snapshot`` for an asyncio loop: with a ``blocking`` store
        the store's part runs in a worker thread (see ``aflush``)."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        if not self._blocking():
            return self.install_snapshot(snapshot)
        if self._check_snapshot(snapshot) is None:
            return False
        await self.aflush()
        done = await self._run_blocking(lambda: self._prepare_install(snapshot))
        if done and self._autoflush and not self._batch_depth:
            await self.aflush()
        return bool(done)

    def _check_snapshot(self, snap: Snapshot) -> int | None:
        """Validate ``snap`` against this replica; its base state, or None
        when it brings nothing new."""
        if not isinstance(snap, Snapshot):
            raise ProtocolError(f"install_snapshot: {snap!r:.80} is not a Snapshot")
        snap.validate()
        if snap.policy != self._policy:
            raise PolicyMismatchError(
                f"snapshot of replica {snap.replica!r} ({snap.machine!r}) has policy "
                f"{str(snap.policy)[:16]}..., but replica {self.id!r} runs "
                f"{self.machine.name!r} policy {self._policy[:16]}...: both sides must run "
                "the same verified machine", expected=self._policy, got=str(snap.policy))
        if snap.horizon < 0:
            raise ReplicaError(
                f"snapshot of replica {snap.replica!r} is not a compacted base (horizon "
                f"{snap.horizon}): a replica can only continue from a stable prefix; use the "
                "peer's bootstrap() (its base snapshot and its log)")
        if snap.hlc > self._clock_limit():
            raise ProtocolError(
                f"snapshot of {snap.replica!r}: its clock {snap.hlc} is more than "
                f"max_drift_ms={self.limits.max_drift_ms} ahead of the local clock")
        try:
            state = self.machine.encode(snap.state)
        except MachineUsageError as exc:
            raise ProtocolError(f"snapshot state does not fit the machine: {exc}") from None
        if self.machine.state_digest(state) != snap.digest:
            raise ProtocolError(f"snapshot of {snap.replica!r}: its digest does not match its "
                                "state")
        if not self.machine.is_valid(state):
            raise ProtocolError(f"snapshot of {snap.replica!r}: its state breaks an invariant "
                                "(no replica can reach it)")
        base = int(state.id)
        if not self.needs_snapshot(snap):
            return None
        sv = snap.version
        mine = self._vv.get(self.id, 0)
        if sv.get(self.id, 0) > mine:
            raise ReplicaError(
                f"snapshot of replica {snap.replica!r} holds {sv[self.id]} events of "
                f"{self.id!r}, whose store has {mine}: a replica id is never reused with a "
                "fresh store (its event numbers would collide); join under a new id")
        if snap.replica == self.id or (self.peers is not None and snap.replica not in self.peers):
            raise ReplicaError(
                f"snapshot of {snap.replica!r}: not one of this replica's peers "
                f"({', '.join(sorted(self.peers or ()))}); only a peer's snapshot is installed")
        own = self._base_snapshot
        if own is not None and (own.horizon > snap.horizon or any(
                sv.get(o, 0) < n for o, n in own.version.items())):
            raise ReplicaError(
                f"replica {self.id!r} compacted events the snapshot of {snap.replica!r} "
                f"(horizon {snap.horizon}) lacks: their replica sets (peers) disagree")
        for e in self._log:
            if e[4] <= snap.horizon and e[3] > sv.get(e[2], 0):
                raise ReplicaError(
                    f"the snapshot of {snap.replica!r} (horizon {snap.horizon}) lacks event "
                    f"{e[1]} of this replica, at or below its horizon: is {e[2]!r} missing "
                    f"from {snap.replica!r}'s peers?")
        return base

    def _prepare_install(self, snap: Snapshot) -> _StoreOp | None:
        base = self._check_snapshot(snap)
        if base is None:
            return None
        return _StoreOp(self.store.compact, snap, lambda: self._adopt(snap, base),
                        lambda: None)

    def _adopt(self, snap: Snapshot, base: int) -> bool:
        """Make the stored snapshot ``snap`` the base of the in-memory log."""
        self._fresh()  # record the deferred repairs against the old base
        horizon, sv = snap.horizon, snap.version
        had = self.accepted > 0
        keep: list[Envelope] = []
        for e in self._log:
            if e[3] <= sv.get(e[2], 0):
                continue  # covered by the snapshot
            if e[4] <= horizon:  # accepted while the snapshot was stored: too late
                self.stats.rejected += 1
                why = (f"hlc {e[4]} is at or below the horizon {horizon} of the installed "
                       "snapshot, which lacks it")
                self._rejected.append((e[1], why))
                continue
            keep.append(e)
        vv = dict(sv)
        for o, n in self._vv.items():
            if n > vv.get(o, 0):
                vv[o] = n
        clocks = dict(snap.clocks)
        for o, c in self._clocks.items():
            clocks[o] = max(clocks.get(o, -1), c)
        heads = set(snap.heads) | self._heads
        for e in keep:
            heads.difference_update(e[6])
            heads.discard(f"{e[2]}:{e[3] - 1}")
        top: dict[str, int] = {}
        for h in heads:  # an origin's earlier event is below its later one: not a head
            origin, _, num = h.rpartition(":")
            top[origin] = max(top.get(origin, 0), int(num))
        self._heads = {h for h in heads if int(h.rpartition(":")[2]) == top[h.rpartition(":")[0]]}
        self._log = keep
        self._after = []
        self._base = base
        self._base_snapshot = snap
        self._horizon = horizon
        self._base_count = snap.events
        self._vv = vv
        self._clocks = clocks
        self._hlc.observe(snap.hlc)
        self._hlc.observe(horizon)
        self._durable_clock = max(self._durable_clock, snap.hlc, horizon)
        self._cur = int(self._state_at(len(keep)))
        self._unflushed = [e for e in self._unflushed
                           if e[3] > sv.get(e[2], 0) and e[4] > horizon]
        self.stats.accepted = self._base_count + len(keep)
        self.stats.installed += 1
        self._notify_repaired = self._notify_repaired or had
        self._touched = True
        # what waited for events the snapshot covers may go now
        waiting = sorted(self._pending.values(), key=_KEY)
        self._pending, self._waiting, self._far = {}, {}, None
        ready: list[Envelope] = []
        for e in waiting:
            self._offer(e, ready, [])
        if ready:
            self._integrate(ready)
        self._dups.clear()
        return True

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Flush, detach from the transport and close the store."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self.transport is not None:
                self.transport.detach(self)
            self.store.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Replica({self.id!r}, machine={self.machine.name!r}, "
                f"accepted={self.accepted}, pending={len(self._pending)})")
