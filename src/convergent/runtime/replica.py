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
  replays: a repair, counted and explained.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..errors import MachineUsageError
from ..machine import Machine, State
from .envelope import Envelope, valid_replica_id
from .errors import PolicyMismatchError, ProtocolError, ReplicaError
from .hlc import HybridClock
from .model import Change, Explanation, Repair, ReplicaStats, Snapshot, Step

if TYPE_CHECKING:  # pragma: no cover
    from .stores.base import Store
    from .transports.base import Transport

__all__ = ["Replica"]

_KEY = itemgetter(0)
_HLC = itemgetter(4)
#: machines with at most this many table entries get Python-list tables (faster lookups)
_LIST_TABLES = 4_000_000


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

    Raises:
        ReplicaError: bad id or peers. PolicyMismatchError: the store was
        written by another machine policy. StoreError: the store cannot open.

    Not thread-safe: use a replica from one thread or one event loop.
    """

    def __init__(self, machine: Machine, *, id: str, store: Store | str | None = None,
                 transport: Transport | None = None, peers: Iterable[str] | None = None,
                 clock: Callable[[], int] | None = None, autoflush: bool = True,
                 resolve_conflicts: bool = True, dedup: bool = True,
                 history: int = 1000) -> None:
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
        self.id: str = id
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
        self._hlc = HybridClock(clock)
        self.stats = ReplicaStats()
        self._repairs: deque[Repair] = deque(maxlen=history)
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
        self._state = self._base
        self._vv: dict[str, int] = {}
        self._clocks: dict[str, int] = {}
        self._heads: set[str] = set()
        self._pending: dict[str, Envelope] = {}
        self._waiting: dict[str, list[Envelope]] = {}
        self._unflushed: list[Envelope] = []
        self._unsent: list[Envelope] = []
        self._changed: list[Envelope] = []
        self._notify_from = self._state
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
        for e in events:  # acceptance order: a causal order
            origin, seq = e[2], e[3]
            if seq <= vv.get(origin, 0):
                continue
            if e[5] not in self._idx:
                raise ProtocolError(f"stored event {e[1]} names unknown event {e[5]!r}")
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
        self._state = int(s)
        self._notify_from = self._state
        self._durable_own = vv.get(self.id, 0)
        self.stats.accepted = self._base_count + len(kept)

    # ------------------------------------------------------------ reading

    @property
    def state(self) -> State:
        """The current state: the canonical fold of every accepted event."""
        return self.machine.state(self._state)

    @property
    def log(self) -> tuple[Envelope, ...]:
        """The accepted events after the compacted prefix, in canonical order
        (the order their effects were computed in)."""
        return tuple(self._log)

    @property
    def pending(self) -> tuple[Envelope, ...]:
        """Envelopes waiting for a dependency, in canonical order."""
        return tuple(sorted(self._pending.values(), key=_KEY))

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
            "state": self.machine.decode(self._state),
            "digest": self.machine.state_digest(self.state),
            "accepted": self.accepted, "log": len(self._log), "pending": len(self._pending),
            "unflushed": len(self._unflushed), "version": dict(self._vv),
            "horizon": self._horizon, "stats": self.stats.to_dict(),
        }

    def snapshot(self) -> Snapshot:
        """The current state and what it covers (no compaction, no I/O)."""
        return Snapshot(replica=self.id, machine=self.machine.name, policy=self._policy,
                        state=self.machine.decode(self._state),
                        digest=self.machine.state_digest(self.state), version=dict(self._vv),
                        events=self.accepted, horizon=-1, heads=self.heads,
                        clocks=dict(self._clocks), hlc=self._hlc.last)

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback(change)`` after every committed batch that accepted
        events; returns a function that unsubscribes. An exception raised by
        a callback propagates out of ``flush`` after every subscriber ran."""
        if not callable(callback):
            raise ReplicaError(f"subscribe: {callback!r} is not callable")
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)
        return unsubscribe

    def explain(self, *, limit: int | None = None) -> Explanation:
        """Forensics: the events (the last ``limit`` of the retained log, or
        all) and the repairs that produced the current state."""
        m = self.machine
        start = 0 if limit is None else max(0, len(self._log) - limit)
        s = self._state_at(start)
        steps = []
        idx, tables = self._idx, self._steps
        for e in self._log[start:]:
            t = tables[idx[e[5]]][s]
            steps.append(Step(e, m.decode(int(s)), m.decode(int(t))))
            s = t
        return Explanation(replica=self.id, machine=m.name, initial=m.decode(m.initial),
                           base=self._base_snapshot, steps=tuple(steps),
                           repairs=tuple(self._repairs), rejected=tuple(self._rejected),
                           stats=ReplicaStats(**self.stats.to_dict()),
                           state=m.decode(self._state))

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
                meta = json.loads(json.dumps(meta))
            except (TypeError, ValueError) as exc:
                raise ReplicaError(f"meta is not JSON-serializable: {exc}") from None
        vv, heads = self._vv, self._heads
        seq = vv.get(self.id, 0) + 1
        hlc = self._hlc.tick()
        deps = tuple(sorted(heads)) if len(heads) > 1 else tuple(heads)
        env = Envelope(self.id, seq, hlc, event, deps, meta, self._policy)
        vv[self.id] = seq
        self._clocks[self.id] = hlc
        heads.clear()
        heads.add(env[1])
        log, after = self._log, self._after
        full = len(after) == len(log)
        s = self._steps[ei][self._state]
        log.append(env)  # hlc exceeds every accepted event's: the end of the canonical order
        if full:
            after.append(s)
        self._state = s
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

    def receive(self, envelopes: Envelope | Iterable[Envelope]) -> int:
        """Accept remote envelopes (any order, duplicates welcome); returns how
        many were applied now (others wait for dependencies or were dropped
        as duplicates).

        Raises PolicyMismatchError (nothing of the call is accepted) when an
        envelope carries another policy digest, ProtocolError when one names
        an unknown event or is not an Envelope."""
        if self._closed:
            raise ReplicaError(f"replica {self.id!r} is closed")
        batch = (envelopes,) if isinstance(envelopes, Envelope) else tuple(envelopes)
        policy, idx = self._policy, self._idx
        for env in batch:
            if not isinstance(env, Envelope):
                raise ProtocolError(f"receive: {env!r} is not an Envelope")
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
        for env in batch:
            self._offer(env, ready)
        if ready:
            self._integrate(ready)
        if self._autoflush and not self._batch_depth:
            self.flush()
        return len(ready)

    def _offer(self, env: Envelope, ready: list[Envelope]) -> None:
        origin, seq = env[2], env[3]
        st = self.stats
        if seq <= self._vv.get(origin, 0):
            if self._dedup:
                st.duplicates += 1
            else:  # tests only: the dedup obligation switched off
                ready.append(env)
            return
        eid = env[1]
        if eid in self._pending:
            st.duplicates += 1
            return
        if env[4] <= self._horizon:
            st.rejected += 1
            self._rejected.append((eid, f"hlc {env[4]} is at or below the compaction horizon "
                                        f"{self._horizon} (an origin missing from peers?)"))
            return
        missing = self._missing(env)
        if missing is not None:
            self._pending[eid] = env
            self._waiting.setdefault(missing, []).append(env)
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
        to the canonical fold (see the module docstring)."""
        st = self.stats
        st.accepted += len(new)
        self._unflushed.extend(new)
        self._changed.extend(new)
        log, after, steps, idx = self._log, self._after, self._steps, self._idx
        ordered = sorted(new, key=_KEY) if len(new) > 1 else new
        s = self._state
        if not log or log[-1][0] < ordered[0][0]:
            full = len(after) == len(log)
            for e in ordered:
                s = steps[idx[e[5]]][s]
                if full:
                    after.append(s)
            log.extend(ordered)
            self._state = s
            st.appended += len(new)
            return
        p0 = bisect_left(log, ordered[0][0], key=_KEY)
        old = log[p0:]
        merged: list[Envelope] = []
        is_new: list[bool] = []
        i = j = 0
        while i < len(old) and j < len(ordered):
            if ordered[j][0] < old[i][0]:
                merged.append(ordered[j])
                is_new.append(True)
                j += 1
            else:
                merged.append(old[i])
                is_new.append(False)
                i += 1
        merged.extend(old[i:])
        is_new.extend([False] * (len(old) - i))
        tail_new = len(ordered) - j
        merged.extend(ordered[j:])
        is_new.extend([True] * tail_new)
        if len(after) > p0:
            del after[p0:]
        log[p0:] = merged
        if not self._resolve:  # tests only: the resolution obligation switched off
            for e in new:
                s = steps[idx[e[5]]][s]
            self._state = s
            st.commuted += len(new)
            return
        indep = self._indep
        mask = 0
        conflicts: list[int] = []
        for k in range(len(merged) - 1, -1, -1):
            ei = idx[merged[k][5]]
            if is_new[k]:
                if mask & ~indep[ei]:
                    conflicts.append(k)
            else:
                mask |= 1 << ei
        if not conflicts:
            for e in ordered:
                s = steps[idx[e[5]]][s]
            self._state = s
            st.commuted += len(ordered) - tail_new
            st.appended += tail_new
            return
        # rollback to the state before p0 and replay
        before = self._state
        s = self._state_at(p0)
        for e in log[p0:]:
            s = steps[idx[e[5]]][s]
            after.append(s)
        self._state = s
        replayed = len(log) - p0
        st.repairs += 1
        st.replayed += replayed
        self._notify_repaired = True
        first = conflicts[-1]
        bad = ~indep[idx[merged[first][5]]]
        against = tuple(e[1] for k, e in enumerate(merged[first + 1:], first + 1)
                        if not is_new[k] and (1 << idx[e[5]]) & bad)[:5]
        m = self.machine
        self._repairs.append(Repair(
            inserted=tuple(merged[k][1] for k in reversed(conflicts)), against=against,
            position=self._base_count + p0, replayed=replayed,
            before=m.decode(int(before)), after=m.decode(int(s))))

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
        notified; the events stay queued for the next flush."""
        n = len(self._unflushed)
        if n:
            self.store.append(self._unflushed)
            self._unflushed = []
        if self._unsent:
            own = self._unsent
            self._unsent = []
            self._durable_own = own[-1][3]
            if self.transport is not None:
                self.transport.broadcast(own)
        if self._changed:
            self._notify()
        return n

    def _notify(self) -> None:
        events, self._changed = tuple(self._changed), []
        before, self._notify_from = self._notify_from, int(self._state)
        repaired, self._notify_repaired = self._notify_repaired, False
        if not self._subscribers:
            return
        m = self.machine
        change = Change(m.state(before), m.state(self._notify_from), events, repaired)
        error: BaseException | None = None
        for cb in list(self._subscribers):
            try:
                cb(change)
            except Exception as exc:  # every subscriber runs; the first error propagates
                error = error or exc
        if error is not None:
            raise error

    # ------------------------------------------------------------ anti-entropy

    def missing_for(self, version: Mapping[str, int]) -> list[Envelope]:
        """The committed events a replica at ``version`` lacks, in canonical
        (hence causal) order. Compacted events cannot be served: a peer that
        far behind was not in ``peers``."""
        durable = self._durable_own
        me = self.id
        get = version.get
        return [e for e in self._log
                if e[3] > get(e[2], 0) and (e[2] != me or e[3] <= durable)]

    def observe_peer(self, peer: str, version: Mapping[str, int], clock: int) -> None:
        """Record what a peer said it has (its own event count and its clock);
        lets ``compact`` advance while that peer is idle."""
        if valid_replica_id(peer) and isinstance(clock, int):
            self._peer_views[peer] = (int(version.get(peer, 0)), clock)
            self._peer_has[peer] = int(version.get(self.id, 0))

    def peers_have_mine(self) -> bool:
        """Whether every other replica in ``peers`` reported (through
        ``observe_peer``) having all of this replica's committed events."""
        if self.peers is None:
            return False
        mine = self._durable_own
        return all(self._peer_has.get(p, -1) >= mine for p in self.peers if p != self.id)

    def stable_horizon(self) -> int:
        """The largest hlc h such that no event with hlc <= h can still arrive
        (assuming ``peers`` lists every origin); -1 when unknown."""
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
        if self.peers is None:
            raise ReplicaError("compaction needs the replica set: create the replica with "
                               "peers=[...] naming every replica that may emit")
        self.flush()
        horizon = self.stable_horizon()
        if horizon <= self._horizon:
            return 0
        log = self._log
        k = bisect_right(log, horizon, key=_HLC)
        if k == 0:
            return 0
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
        self.store.compact(snap)
        del log[:k]
        del self._after[:k]
        self._base = s
        self._base_snapshot = snap
        self._horizon = horizon
        self._base_count += k
        self.stats.compacted += k
        return k

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
