"""``EntityService``: event-sourced entities of one chart in one store.

``send`` runs one transaction: idempotency lookup, envelope replay check,
head read (optimistic concurrency), the chart's step, authorization, then
the event row, head, timers, outbox commands, audit row, request record and
(every ``snapshot_every`` versions) a snapshot. Observers (metrics, traces,
logs) hear of it after the commit, never before.

Rebuilding an entity replays its events through the chart from the latest
snapshot taken under the same chart version; a snapshot of another version
is ignored and the entity is rebuilt from its first event (the events are
the truth; snapshots are a cache). Replay re-runs guards and actions, so
they must be deterministic in what they are given; commands they emit on
replay are discarded (they were written the first time).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._bulk import bulk
from ._semantics import (
    _NO_MOVE,
    Config,
    Node,
    Step,
    initial_step,
    move_of,
    moves_of,
    node_of,
    step,
)
from ._writes import Writes
from .audit import AuditRecord
from .chart import ROOT, Actor, Chart
from .errors import (
    ConcurrencyError,
    DurableError,
    DurableStoreError,
    EnvelopeRejected,
    NotAuthorized,
    ReplayError,
    UnknownEventError,
)
from .observe import Observer, TransitionRecord
from .security import Envelope, EnvelopePolicy, denial, masked_leaves, redact
from .store import EntityStore, Tx, dumps

__all__ = ["Entity", "EntityService", "Result", "SYSTEM"]

log = logging.getLogger("convergent.durable.service")

SYSTEM = Actor("system", frozenset({"$system"}))
"""The actor of timers and internal events."""

CREATE = "$create"
MIGRATE = "$migrate"
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BATCH = 10_000
_ENTITY_MAX = 200


@dataclass(frozen=True)
class Entity:
    """An entity as rebuilt: ``version`` (events applied), ``config``,
    active ``leaves``, ``since`` (leaf -> unix time entered), ``done``."""

    kind: str
    id: str
    version: int
    config: Config
    leaves: tuple[str, ...]
    since: Mapping[str, float]
    done: bool
    chart_version: int


@dataclass(frozen=True)
class Result:
    """What a ``send`` did. ``outcome``: ``applied`` (a transition fired and
    was written), ``ignored`` (no transition enabled: nothing written),
    ``created``. ``replayed`` is True when this is the stored result of an
    earlier request with the same key (nothing changed this time)."""

    entity: str
    event: str
    outcome: str
    version: int
    transition_id: str | None
    from_leaves: tuple[str, ...]
    to_leaves: tuple[str, ...]
    commands: tuple[str, ...] = ()
    replayed: bool = False

    def to_json(self) -> str:
        return dumps({"entity": self.entity, "event": self.event, "outcome": self.outcome,
                      "version": self.version, "transition_id": self.transition_id,
                      "from": list(self.from_leaves), "to": list(self.to_leaves),
                      "commands": list(self.commands)})

    @staticmethod
    def from_json(text: str) -> Result:
        d = json.loads(text)
        return Result(d["entity"], d["event"], d["outcome"], int(d["version"]),
                      d["transition_id"], tuple(d["from"]), tuple(d["to"]),
                      tuple(d["commands"]), replayed=True)


class _Cached:
    """An entity as this service last knew it: the cache's entry, and also
    the batch fast path's working copy (so a batch builds no copy per
    entity and no new entry per batch: it moves this one in place, and any
    batch that does not commit clears the whole cache).

    ``config`` is built on demand from the node's memory, ``vars`` and
    ``extra`` (the fast path moves those and drops the built one). ``node``:
    the plan node of the memory, once known; ``since_json``: the text of
    ``since`` as last written (maps are replaced, never changed in place).
    ``head``/``epoch``: what the entity's head row held when this entry was
    last known to match the database, and in which of the service's epochs
    (see ``EntityService._batch_tx``). ``base``, ``dirty``, ``chart`` and
    ``prefix`` serve the fast path: the version its batch found, whether the
    entry moved since it was last written back, its chart and its
    transition ids' prefix."""

    __slots__ = ("_config", "base", "chart", "dirty", "done", "epoch", "extra", "head", "node",
                 "prefix", "since", "since_json", "vars", "version")

    def __init__(self, version: int, config: Config, since: dict[str, float], done: bool,
                 chart: Chart) -> None:
        self.version = self.base = version
        self._config: Config | None = config
        self.vars: Mapping[str, Any] = config.vars
        self.extra: Mapping[str, Any] = config.extra
        self.since = since
        self.done = done
        self.chart = chart
        self.node: Node | None = None
        self.since_json: str | None = None
        self.head: tuple[str, str, int, int] | None = None
        self.epoch = -1
        self.dirty = False
        self.prefix = ""

    @property
    def chart_version(self) -> int:
        return self.chart.version

    @property
    def config(self) -> Config:
        c = self._config
        if c is None:
            assert self.node is not None  # dropped only when the fast path moved the node
            c = self._config = Config(self.node.memory, self.vars, self.extra)
        return c

    def __repr__(self) -> str:
        return (f"_Cached(version={self.version}, config={self.config!r}, "
                f"since={self.since!r}, done={self.done}, chart_version={self.chart_version})")


@dataclass(frozen=True)
class _Applied:
    """What ``_apply`` did inside a transaction, acted on after the commit."""

    result: Result
    record: TransitionRecord | None = None
    fresh: _Cached | None = None
    rejected: tuple[str, TransitionRecord] | None = None


_MISS: Any = object()


class _BatchRefused(Exception):
    """Internal: unwinds a batch's transaction when one item is refused."""

    def __init__(self, applied: _Applied) -> None:
        self.applied = applied


@dataclass
class EntityService:
    """Entities of ``chart`` stored in ``store`` under ``kind`` (default: the
    chart's name).

    Args:
        snapshot_every: write a snapshot every N versions (0: never).
        clock: unix seconds; injectable for tests and timers.
        observers: metrics, traces, logs (see ``convergent.durable.observe``).
        envelopes: the policy for ``accept`` (max age, signing key).
        audit_key: HMAC key for the audit chain (None: plain SHA-256).
        cache_size: entities kept in memory between calls (0: none).
        fast_batches: let ``send_batch`` apply the steps the chart's plans
            already prove in one loop (False: every item takes the full
            path, the reference the fast path is tested against).
    """

    chart: Chart
    store: EntityStore
    kind: str = ""
    snapshot_every: int = 100
    clock: Callable[[], float] = time.time
    observers: tuple[Observer, ...] = ()
    envelopes: EnvelopePolicy = field(default_factory=EnvelopePolicy)
    audit_key: bytes | None = field(default=None, repr=False)
    cache_size: int = 10_000
    extra_limit: int = 1 << 16
    versions: Mapping[int, Chart] = field(default_factory=dict)
    require_verified: bool = False
    fast_batches: bool = True

    def __post_init__(self) -> None:
        self.kind = self.kind or self.chart.name.lower()
        self._charts: dict[int, Chart] = {}
        for v, ch in {**self.versions, self.chart.version: self.chart}.items():
            if ch.version != v or ch.name != self.chart.name:
                raise DurableError(f"versions[{v}] is chart {ch.name!r} version {ch.version} "
                                   f"(expected {self.chart.name!r} version {v})")
            self._charts[v] = ch
        self._verified: set[int] = set()
        self._events = frozenset(e for ch in self._charts.values() for e in ch.events
                                 if not e.startswith(("after:", "done.", "$")))
        if self.require_verified:
            for ch in self._charts.values():
                self._require_verified(ch)
        self._table = self.store.ensure_kind(self.kind)
        # one index seek (the (entity, version) key, read backwards)
        self._last_version = (f"SELECT max(e.version) FROM {self._table} AS e "
                              "WHERE e.entity = h.entity")
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._epoch = 0
        self._mark: tuple[int, int] | None = None
        self.fast_hits = 0
        """Batch items the fast path applied (or found ignored) so far."""
        if self.snapshot_every < 0:
            raise DurableError(f"snapshot_every={self.snapshot_every} (expected >= 0)")

    # ------------------------------------------------------------ reads

    def load(self, entity: str) -> Entity:
        """Rebuild ``entity`` from its snapshot and events (no cache)."""
        _check_id(entity)
        with self.store.tx() as tx:
            got = self._rebuild(tx, entity)
            head = self._head(tx, entity)
        if got is None or head is None:
            raise DurableError(f"{self.kind}/{entity}: no such entity")
        return self._entity(entity, got, head[2])

    def exists(self, entity: str) -> bool:
        with self.store.tx() as tx:
            return self._head(tx, entity) is not None

    def view(self, entity: str, actor: Actor | None) -> dict[str, Any]:
        """What ``actor`` may see: leaves (sensitive ones neutral), vars and
        extra with the chart's sensitive fields redacted."""
        e = self.load(entity)
        fields = self.chart.sensitive_fields
        return {"entity": entity, "version": e.version, "done": e.done,
                "state": masked_leaves(self.chart, list(e.leaves), actor),
                "vars": redact(dict(e.config.vars), fields),
                "extra": redact(dict(e.config.extra), fields)}

    def history(self, entity: str) -> list[dict[str, Any]]:
        """The stored events of ``entity`` in order."""
        with self.store.tx() as tx:
            rows = tx.all(f"SELECT version, transition_id, event, payload, actor, meta, "
                          f"from_leaves, to_leaves, chart_version, recorded_at FROM "
                          f"{self._table} WHERE entity = ? ORDER BY version", (entity,))
        return [{"version": int(r[0]), "transition_id": r[1], "event": r[2],
                 "payload": json.loads(r[3]), "actor": json.loads(r[4]),
                 "meta": json.loads(r[5]), "from": json.loads(r[6]), "to": json.loads(r[7]),
                 "chart_version": int(r[8]), "recorded_at": float(r[9])} for r in rows]

    # ------------------------------------------------------------ writes

    def create(self, entity: str, *, actor: Actor, extra: Mapping[str, Any] | None = None,
               request_key: str | None = None, meta: Mapping[str, str] | None = None) -> Result:
        """Create ``entity`` in the chart's initial configuration (version 1)."""
        return self._write(entity, CREATE, dict(extra or {}), actor, request_key, None,
                           dict(meta or {}), None, None)

    def send(self, entity: str, event: str, payload: Mapping[str, Any] | None = None, *,
             actor: Actor, request_key: str | None = None, expected_version: int | None = None,
             meta: Mapping[str, str] | None = None) -> Result:
        """Deliver ``event`` to ``entity``.

        Raises ``UnknownEventError`` (not declared), ``ConcurrencyError``
        (``expected_version`` is not the stored one), ``NotAuthorized``
        (recorded in the audit log first), ``EffectError`` (a guard or action
        raised: nothing written). With ``request_key`` a repeated call
        returns the first result and changes nothing."""
        if not self._declared(event):
            raise UnknownEventError(f"{self.kind}: event {event!r} is not declared by chart "
                                    f"{self.chart.name!r}")
        return self._write(entity, event, dict(payload or {}), actor, request_key,
                           expected_version, dict(meta or {}), None, None)

    def accept(self, envelope: Mapping[str, Any] | Envelope, *,
               actor: Actor | None = None) -> Result:
        """Deliver a request from outside: validated, checked for age and
        signature, and refused if its id was seen before. The actor comes from
        a signed envelope, or from ``actor`` (authenticated by the caller)."""
        env = envelope if isinstance(envelope, Envelope) else Envelope.from_dict(envelope)
        claimed = env.check(self.envelopes, self.clock())
        who = actor if actor is not None else claimed
        if not self._declared(env.event):
            raise UnknownEventError(f"{self.kind}: event {env.event!r} is not declared")
        return self._write(env.entity, env.event, dict(env.payload), who, env.request_key,
                           None, dict(env.meta), env.id, None)

    def migrate(self, entity: str, to: int,
                migration: Callable[[Config], Mapping[str, Any]] | None = None, *,
                actor: Actor) -> Result:
        """Move ``entity`` onto chart version ``to`` (which must verify).
        ``migration(old_config)`` returns the new config as a mapping
        (``memory``, ``vars``, ``extra``); without it the old config must fit
        the new chart as is. The result is recorded as a ``$migrate`` event
        carrying the new config, so replay needs no function. Until migrated,
        an entity keeps running the version it was created or migrated on.
        Migrating is an operator's act: the caller authorizes ``actor``."""
        if to not in self._charts:
            raise DurableError(f"chart version {to} is not known to this service "
                               f"(known: {sorted(self._charts)})")
        self._require_verified(self._charts[to])
        e = self.load(entity)
        new = dict(migration(e.config)) if migration is not None else e.config.to_dict()
        try:
            Config.from_dict(self._charts[to], new)
        except (ValueError, KeyError, TypeError) as exc:
            raise DurableError(f"{self.kind}/{entity}: the migrated config does not fit "
                               f"chart version {to}: {exc}") from None
        return self._write(entity, MIGRATE, {"to": to, "from": e.chart_version,
                                             "config": new}, actor, None, e.version, {},
                           None, None)

    def load_at(self, entity: str, version: int) -> Entity:
        """``entity`` as it was after event ``version`` (replayed, no snapshot)."""
        with self.store.tx() as tx:
            head = self._head(tx, entity)
            if head is None or not 1 <= version <= head[0]:
                raise DurableError(f"{self.kind}/{entity}: no version {version}")
            got = self._replay(tx, entity, version, "{}", head[2], snapshots=False)
        return self._entity(entity, got, got.chart_version)

    def _declared(self, event: str) -> bool:
        return event in self._events

    async def run_timers(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """Fire due timers until ``stop`` is set, waking at the next due time
        or after ``interval`` seconds, whichever is sooner. A failing round
        (database down) is logged and retried; the loop never dies silently."""
        while not stop.is_set():
            wait = interval
            try:
                fired = await asyncio.to_thread(self.fire_due_timers)
                nxt = await asyncio.to_thread(self.next_timer)
                if fired:
                    wait = 0.0
                elif nxt is not None:
                    wait = max(0.0, min(interval, nxt - self.clock()))
            except Exception:
                log.exception("timer round failed for %s; retrying", self.kind)
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass

    def fire_due_timers(self, *, now: float | None = None, limit: int = 100) -> int:
        """Fire the timers due at ``now``; returns how many fired. Each fires
        in its own transaction with the timer id as request key, so a crash
        or a second runner never fires one twice."""
        now = self.clock() if now is None else now
        with self.store.tx() as tx:
            rows = tx.all("SELECT id, entity, event FROM dz_timers WHERE kind = ? AND "
                          "due_at <= ? ORDER BY due_at LIMIT ?", (self.kind, now, limit))
        fired = 0
        for tid, entity, event in rows:
            res = self._write(entity, event, {}, SYSTEM, f"timer:{tid}", None, {}, None, tid)
            fired += res.outcome == "applied" and not res.replayed
        return fired

    def next_timer(self) -> float | None:
        """When the next timer of this kind is due (unix seconds), if any."""
        with self.store.tx() as tx:
            row = tx.one("SELECT min(due_at) FROM dz_timers WHERE kind = ?", (self.kind,))
        return None if row is None or row[0] is None else float(row[0])

    def stuck(self, *, now: float | None = None) -> list[tuple[str, str, float]]:
        """``(entity, state, seconds)`` for every live entity whose active
        state (or an ancestor) declares ``stuck_after`` and was entered longer
        ago than that."""
        now = self.clock() if now is None else now
        limits = {s.name: s.stuck_after.total_seconds() for s in self.chart.states.values()
                  if s.stuck_after is not None}
        if not limits:
            return []
        with self.store.tx() as tx:
            rows = tx.all("SELECT entity, since FROM dz_heads WHERE kind = ? AND done = 0",
                          (self.kind,))
        out = []
        for entity, since_json in rows:
            since = json.loads(since_json)
            for leaf, t0 in since.items():
                for s in (leaf, *self.chart.ancestors(leaf)):
                    if s in limits and now - float(t0) > limits[s]:
                        out.append((entity, s, now - float(t0)))
                        break
        return out

    # ------------------------------------------------------------ internals

    def _head(self, tx: Tx, entity: str) -> tuple[int, str, int] | None:
        """``(version, since, chart_version)`` of ``entity``: the version is
        its last event's (the head row is written only when what it holds
        changes; see ``Writes.head``)."""
        return self._heads(tx, {entity}).get(entity)

    def _rebuild(self, tx: Tx, entity: str, overlay: Mapping[str, _Cached] | None = None,
                 heads: Mapping[str, tuple[int, str, int]] | None = None, *,
                 touch: bool = True) -> _Cached | None:
        """``entity`` as of this transaction: written earlier in it
        (``overlay``), the cache entry matching its head, or replayed.
        ``touch``: move a cache hit to the recent end (a batch does that once
        per entity after its commit instead)."""
        if overlay and entity in overlay:
            return overlay[entity]  # written earlier in this transaction (head not yet)
        head = heads.get(entity) if heads is not None else self._head(tx, entity)
        if head is None:
            return None
        version, since_json, _ = head
        cached = self._cache.get(entity)
        if cached is not None and cached.version == version:
            if touch:
                self._cache.move_to_end(entity)
            return cached
        return self._replay(tx, entity, version, since_json, head[2], snapshots=True)

    def _heads(self, tx: Tx, entities: set[str], w: Writes | None = None, *,
               trust: bool = True) -> dict[str, tuple[int, str, int]]:
        """The heads of many entities (as ``_head``): one query on
        PostgreSQL, one per 500 on SQLite (its limit on parameters). ``w``
        learns what each head row holds, so the flush skips rows a batch
        leaves as they were; with ``trust`` (a batch, which checked first
        that nothing else wrote since its last one) cached entries known to
        match their rows in this epoch are not read again."""
        out: dict[str, tuple[int, str, int]] = {}
        cache = self._cache
        if w is not None and trust:
            need = set()
            for e in entities:
                c = cache.get(e)
                if c is not None and c.epoch == self._epoch and c.head is not None:
                    out[e] = (c.version, c.head[1], c.head[2])
                    w.known[e] = c.head
                else:
                    need.add(e)
            entities = need
        if not entities:
            return out
        names = sorted(entities)
        head = (f"SELECT h.entity, ({self._last_version}), h.version, h.since, "
                "h.chart_version, h.leaves, h.done FROM dz_heads AS h WHERE h.kind = ? AND ")
        if tx.dialect == "postgres" and len(names) == 1:  # a single send: a plain key lookup
            chunks = [tx.all(head + "h.entity = ?", (self.kind, names[0]))]
        elif tx.dialect == "postgres":
            # one array parameter: a 500-placeholder IN list plans slowly on PostgreSQL
            chunks = [tx.all(head + "h.entity = ANY(?)", (self.kind, names))]
        else:
            chunks = [tx.all(head + f"h.entity IN ({', '.join('?' * len(names[i:i + 500]))})",
                             (self.kind, *names[i:i + 500]))
                      for i in range(0, len(names), 500)]
        for rows in chunks:
            for e, last, v, since, cv, leaves, done in rows:
                version = _current(last, v)
                out[e] = (version, since, int(cv))
                if w is not None:
                    read = w.read_head(e, leaves, since, int(cv), int(done))
                    c = cache.get(e)
                    if c is not None and c.version == version:
                        c.head, c.epoch = read, self._epoch
        return out

    def _replay(self, tx: Tx, entity: str, version: int, since_json: str, head_cv: int, *,
                snapshots: bool) -> _Cached:
        """The entity at ``version``: from a snapshot taken under a chart
        version this service knows (and the entity still runs), else from its
        first event. Each event replays under the chart version it was written
        with; events of a version this service does not know replay under the
        newest chart (a compatible change needs no migration)."""
        cfg: Config | None = None
        start = 0
        cv = head_cv
        snap = tx.one("SELECT version, chart_version, config FROM dz_snapshots WHERE kind = ? "
                      "AND entity = ?", (self.kind, entity)) if snapshots else None
        if snap is not None and int(snap[1]) == head_cv and head_cv in self._charts \
                and int(snap[0]) <= version:
            try:
                cfg = Config.from_dict(self._charts[head_cv], json.loads(snap[2]))
                start = int(snap[0])
            except (ValueError, KeyError, TypeError):
                cfg = None  # a snapshot that no longer fits: rebuild from events
        done = False
        # bounded by the head read above: under read committed, a writer may
        # commit newer events between the two statements
        rows = tx.all(f"SELECT version, event, payload, actor, chart_version, to_leaves FROM "
                      f"{self._table} WHERE entity = ? AND version > ? AND version <= ? "
                      f"ORDER BY version", (entity, start, version))
        for v, event, payload_json, actor_json, row_cv, to_json in rows:
            who = _actor_of(actor_json)
            payload: dict[str, Any] = {} if payload_json == "{}" else json.loads(payload_json)
            ch = self._chart_of(int(row_cv))
            cv = ch.version
            if event == CREATE:
                st = initial_step(ch, entity=entity, actor=who,
                                  extra=payload, extra_limit=1 << 30)
                cfg = st.config
            elif event == MIGRATE:
                cfg = Config.from_dict(ch, payload["config"])
                done = False
            else:
                if cfg is None:
                    raise DurableStoreError(f"{self.kind}/{entity}: event {v} has no "
                                            "predecessor (events missing)")
                st = step(ch, cfg, event, payload=payload, actor=who,
                          entity=entity, extra_limit=1 << 30)
                if not st.changed:
                    raise self._mismatch(entity, int(v), event, to_json, [], ch)
                cfg = st.config
                done = done or st.done
            if _leaves_json(cfg.leaves(ch)) != to_json:
                raise self._mismatch(entity, int(v), event, to_json, cfg.leaves(ch), ch)
            start = int(v)
        if cfg is None or start != version:
            raise DurableStoreError(f"{self.kind}/{entity}: head says version {version}, "
                                    f"events end at {start}")
        ch = self._chart_of(cv)
        got = _Cached(version, cfg, {k: float(x) for k, x in json.loads(since_json).items()},
                      done or any(ch.states[s].kind == "final" and ch.states[s].parent == ROOT
                                  for s in cfg.leaves(ch)), ch)
        if snapshots:
            self._remember(entity, got)
        return got

    def _mismatch(self, entity: str, version: int, event: str, stored_json: str,
                  replayed: list[str], ch: Chart) -> ReplayError:
        """The error for a replayed event that does not reach its stored
        state (``replayed`` empty: no transition was enabled at all)."""
        try:
            stored = [str(x) for x in json.loads(stored_json)]
        except (ValueError, TypeError):
            stored = [repr(stored_json)]
        return ReplayError(self.kind, entity, version, event, stored,
                           replayed or ["(no transition enabled)"], ch.version)

    def _chart_of(self, version: int) -> Chart:
        return self._charts.get(version, self.chart)

    def _require_verified(self, ch: Chart) -> None:
        if ch.version in self._verified:
            return
        from .verify import verify
        report = verify(ch)
        if not report.ok:
            raise DurableError(f"chart {ch.name!r} version {ch.version} does not verify, so "
                               f"it may not go live: {report.summary()}")
        self._verified.add(ch.version)

    def _remember(self, entity: str, got: _Cached) -> None:
        if self.cache_size <= 0:
            return
        self._cache[entity] = got
        self._cache.move_to_end(entity)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _entity(self, entity: str, c: _Cached, chart_version: int) -> Entity:
        ch = self._chart_of(c.chart_version)
        return Entity(self.kind, entity, c.version, c.config,
                      tuple(c.config.leaves(ch)), dict(c.since), c.done, ch.version)

    def _write(self, entity: str, event: str, payload: dict[str, Any], actor: Actor,
               request_key: str | None, expected: int | None, meta: dict[str, str],
               envelope_id: str | None, timer_id: str | None) -> Result:
        _check_id(entity)
        if len(dumps(payload)) > MAX_PAYLOAD_BYTES:
            raise DurableError(f"payload over {MAX_PAYLOAD_BYTES:,} bytes")
        attempts = 3 if expected is None else 1
        for attempt in range(attempts):
            try:
                return self._write_once(entity, event, payload, actor, request_key, expected,
                                        meta, envelope_id, timer_id)
            except ConcurrencyError:
                self._cache.pop(entity, None)
                if attempt + 1 == attempts or expected is not None:
                    raise
            except DurableStoreError as exc:
                if not self.store.conflict(exc):
                    raise
                self._cache.pop(entity, None)
                if envelope_id is not None and "dz_envelopes" in str(exc.__cause__):
                    raise EnvelopeRejected(f"envelope {envelope_id}: seen before (replay)",
                                           reason="duplicate") from None
                if request_key is not None and "dz_requests" in str(exc.__cause__):
                    continue  # a concurrent twin committed first: return its result
                if attempt + 1 == attempts:
                    with self.store.tx() as tx:
                        head = self._head(tx, entity)
                    raise ConcurrencyError(self.kind, entity,
                                           -1 if expected is None else expected,
                                           None if head is None else head[0]) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_once(self, entity: str, event: str, payload: dict[str, Any], actor: Actor,
                    request_key: str | None, expected: int | None, meta: dict[str, str],
                    envelope_id: str | None, timer_id: str | None) -> Result:
        t0 = time.perf_counter()
        mark, self._mark = self._mark, None
        with self.store.tx(pipeline=True) as tx:
            seen, own = tx.others_version(), tx.own_changes()
            w = self._writes(tx)
            done = self._apply(w, entity, event, payload, actor, request_key, expected, meta,
                               envelope_id, timer_id, {})
            w.flush()
            after = tx.own_changes()
        # committed (or rolled back by an exception above): only now may the
        # cache hold the new version and the observers hear of it
        self._keep_trust(mark, seen, own, after, w, entity, done.fresh)
        self._after(done, time.perf_counter() - t0)
        return done.result

    def _keep_trust(self, mark: tuple[int, int] | None, seen: int | None, own: int | None,
                    after: int | None, w: Writes, entity: str, fresh: _Cached | None) -> None:
        """After a committed single send: if no one else wrote between this
        service's last mark and the send (see ``_batch_tx``), the send's own
        writes do not end the trust in cached heads; the mark moves past
        them and the entity's new entry is known to match its head row. A
        service that mixes sends and batches then keeps reading no head row
        for entities it already knows."""
        new: tuple[int, int] | None = None
        if mark is not None:
            if seen is not None:  # SQLite: nothing committed by others, nothing else on ours
                if mark == (seen, own) and after is not None:
                    new = (seen, after)
            else:  # PostgreSQL: marks are (chain length, 0)
                length = _chain_after(w, mark[0])
                if length is not None:
                    new = (length, 0)
        if new is None:
            return
        self._mark = new
        if fresh is not None:
            written = w.final.get(entity)
            if written is not None:
                fresh.head, fresh.epoch = written, self._epoch

    def send_batch(self, items: Sequence[tuple[str, str, Mapping[str, Any] | None]], *,
                   actor: Actor) -> list[Result]:
        """Apply ``(entity, event, payload)`` items in order in ONE transaction:
        all are written or none. ``$create`` as the event creates the entity
        (payload: its extra data). A refused item aborts the whole batch; the
        refusal is then recorded on its own and ``NotAuthorized`` raised. A
        concurrent writer makes the batch fail with ``ConcurrencyError`` (not
        retried: the caller decides)."""
        if len(items) > MAX_BATCH:
            raise DurableError(f"a batch of {len(items):,} items (at most {MAX_BATCH:,})")
        t0 = time.perf_counter()
        overlay: dict[str, _Cached] = {}
        results: list[Result] = []
        records: list[TransitionRecord | None] = []
        entities = {entity for entity, _, _ in items}
        for entity in entities:
            _check_id(entity)
        for event in {event for _, event, _ in items}:
            if event != CREATE and not self._declared(event):
                raise UnknownEventError(f"{self.kind}: event {event!r} is not declared")
        try:
            with bulk(len(items)):
                self._batch_tx(items, entities, actor, overlay, results, records)
        except DurableStoreError as exc:
            self._cache.clear()  # entries rebuilt inside the rolled-back batch
            if self.store.conflict(exc):
                raise ConcurrencyError(self.kind, "(batch)", -1, None) from None
            raise
        except ConcurrencyError:
            self._cache.clear()
            raise
        except _BatchRefused as refused:
            # the batch rolled back; the refusal itself is still recorded
            bad = refused.applied
            assert bad.rejected is not None
            r = bad.rejected[1]
            with self.store.tx() as tx:
                w = self._writes(tx)
                w.append_audit(AuditRecord(self.kind, r.entity, r.transition_id, r.actor,
                                           r.event, ",".join(r.from_leaves),
                                           ",".join(r.to_leaves), r.trace_id, "rejected",
                                           r.reason), self.clock())
                w.flush()
            self._cache.clear()  # entries rebuilt inside the rolled-back batch
            self._after(_Applied(bad.result, rejected=bad.rejected), 0.0)
        except BaseException:
            # anything else (an interrupt, a bug): the batch rolled back, and
            # the fast path may have moved cache entries in place
            self._cache.clear()
            raise
        seconds = (time.perf_counter() - t0) / max(1, len(results))
        if self.cache_size > 0:  # the last state of each: what the store holds
            cache = self._cache
            for entity, fresh in overlay.items():  # _remember, inlined: once per entity
                cache[entity] = fresh
            move = cache.move_to_end
            for entity in entities:  # every entity the batch touched is recent
                if entity in cache:
                    move(entity)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)
        if self.observers:
            for res, rec in zip(results, records):
                self._after(_Applied(res, rec), seconds)
        return results

    def _batch_tx(self, items: Sequence[tuple[str, str, Mapping[str, Any] | None]],
                  entities: set[str], actor: Actor, overlay: dict[str, _Cached],
                  results: list[Result], records: list[TransitionRecord | None]) -> None:
        """A batch's transaction. Its own frame, so the rows it gathered
        (events, audit, heads read) are freed when it returns: inside the
        caller's collector pause, which then resumes with only what lives on
        (results, cache entries) to walk, not every row of the batch.

        Heads are read only for entities whose cache entry may be stale. If
        nothing was written since this service's last batch, an entry known
        to match its head row in the current epoch still does; otherwise the
        epoch moves on and every entity is read. SQLite tells: its
        ``data_version`` (another connection committed) and the connection's
        ``total_changes`` (anything else wrote on this one). On PostgreSQL
        the kind's audit chain does: every transition of the kind appends to
        it, so its length as committed is the kind's write count (only
        writes of this kind can touch these entities).
        Even a wrong trust could not write a wrong state: a stale version
        collides on the event key (``ConcurrencyError``)."""
        mark, self._mark = self._mark, None
        with self.store.tx() as tx:
            seen, own = tx.others_version(), tx.own_changes()
            if seen is None:  # PostgreSQL: every write of this kind moves its audit chain
                seen, own = self._audit_seq(tx), 0
            if mark is None or seen is None or mark != (seen, own):
                self._epoch += 1  # written by someone else since: check every entry
            w = self._writes(tx)
            heads = self._heads(tx, entities, w)
            now = self.clock()  # one transaction, one instant
            self._batch(w, items, actor, overlay, heads, now, results, records)
            w.flush()
            for entity, written in w.final.items():
                fresh = overlay.get(entity)
                if fresh is not None:
                    fresh.head, fresh.epoch = written, self._epoch
            after = tx.own_changes()  # the commit itself changes no row
            if after is None and seen is not None:  # PostgreSQL
                length = _chain_after(w, seen)
                if length is not None:  # else another writer appended mid-batch: no trust
                    seen, after = length, 0
        if seen is not None and after is not None:
            self._mark = (seen, after)

    def _audit_seq(self, tx: Tx) -> int | None:
        """The length of this kind's audit chain as committed: every
        transition, refusal and migration of the kind appends to it, so an
        unchanged length means no other writer committed one since."""
        row = tx.one("SELECT seq FROM dz_audit_heads WHERE chain = ?", (self.kind,))
        return None if row is None else int(row[0])

    def _batch(self, w: Writes, items: Sequence[tuple[str, str, Mapping[str, Any] | None]],
               actor: Actor, overlay: dict[str, _Cached],
               heads: Mapping[str, tuple[int, str, int]], now: float,
               results: list[Result], records: list[TransitionRecord | None]) -> None:
        """A batch's items in order, inside ``w``'s transaction.

        The fast path: an item whose step a learnt plan proves (the chart's
        ``Move`` for the entity's configuration, the event and the guard
        outcomes) is applied here, on the entity's cache entry itself
        (``_Cached``, moved in place), writing its rows directly: no Step,
        Config, _Cached, plan key or _Applied per event. Everything else
        (creation, migration, a step no plan proves yet, a failing guard or
        assignment, a refused actor) takes the full path, ``_apply``, in
        order: the entry is first written back (``_sync``: overlay and head)
        so the full path sees every earlier item, and re-read from the
        overlay afterwards. Both paths write the
        same rows in the same order; ``tests/durable/test_batch_fast.py``
        compares them on random batches."""
        tx = w.tx
        kind = self.kind
        fast = self.fast_batches
        observers = self.observers
        snap = self.snapshot_every
        slots: dict[str, _Cached] = {}
        allowed: dict[Any, bool] = {}  # move -> may this actor take it (no actor guard)
        at_iso = w.at_iso(now)
        actor_id = actor.id
        actor_j = _actor_json(actor)
        add_event = w.events.append
        add_audit = w.audit.append
        add_result = results.append
        add_record = records.append
        hits = 0
        for entity, event, payload in items:
            if fast and event != CREATE and event != MIGRATE:
                s = slots.get(entity)
                if s is None:
                    s = self._slot(tx, entity, overlay, heads)
                    if s is not None:
                        slots[entity] = s
                if s is not None:
                    chart = s.chart
                    node: Node = s.node  # type: ignore[assignment]  # set by _slot
                    moves = node.on.get(event, _MISS)
                    if moves is _MISS:
                        moves = moves_of(chart, node, event)
                    mv: Any = None
                    vars_ = s.vars
                    if moves is not None:
                        try:
                            outcomes = tuple([bool(g(vars_)) for g in moves.guards]) \
                                if moves.guards else ()
                            mv = moves.by_outcome.get(outcomes)
                            if mv is None or mv is _NO_MOVE:
                                mv = move_of(chart, node, event, moves, outcomes)
                        except Exception:
                            mv = None  # the full path reports the failing guard
                    if mv is node:
                        hits += 1
                        add_result(_result(entity, event, "ignored", s.version, None,
                                           node.leaves, node.leaves, ()))
                        add_record(None)
                        continue
                    if mv is not None:
                        ok = allowed.get(mv)
                        if ok is None:
                            ok = denial(chart, mv.fired, mv.entered, actor,
                                        dict(payload) if payload else {}) is None
                            if mv.free:
                                allowed[mv] = ok
                        nv: Mapping[str, Any] | None = vars_
                        if ok and mv.assigns:
                            nv = work = dict(vars_)
                            try:
                                # one var per assign: in order; else each
                                # assign's values first, then its writes
                                for group in ((mv.assigns_flat,) if mv.assigns_flat
                                              else mv.assigns):
                                    values = group if mv.assigns_flat else \
                                        [(name, ev(work), lo, hi, var)
                                         for name, ev, lo, hi, var in group]
                                    for name, x, lo, hi, var in values:
                                        if mv.assigns_flat:
                                            x = x(work)
                                        if lo is None:
                                            var.digit(x)
                                        else:
                                            x = max(lo, min(hi, int(x)))
                                        work[name] = x
                            except Exception:
                                nv = None  # the full path reports the failing action
                        if ok and nv is not None:
                            hits += 1
                            v = s.version + 1
                            tid = f"{s.prefix}{v:012x}"
                            target = mv.target
                            meta: dict[str, str] = {}
                            meta_j = "{}"
                            trace_id = ""
                            if observers:
                                for o in observers:
                                    meta = o.carry(meta)
                                trace_id = meta.get("traceparent", "")
                                meta_j = dumps(meta) if meta else "{}"
                            add_event((entity, v, tid, event,
                                       dumps(payload if type(payload) is dict
                                             else dict(payload)) if payload else "{}",
                                       actor_j, meta_j, node.json, target.json,
                                       chart.version, now))
                            time_in: dict[str, float] = {}
                            if mv.touches_since:
                                s.since, time_in = _moved_since(s.since, node.leaves,
                                                                target.leaves, mv.exited,
                                                                mv.entered, now)
                                s.since_json = None
                            for state in mv.cancelled:
                                w.cancel_timers(entity, state)
                            for t in mv.armed:
                                w.arm_timer(f"{tid}/{t.id}", entity, t.source, t.event,
                                            now + (t.after.total_seconds() if t.after
                                                   else 0.0))
                            keys: tuple[str, ...] = ()
                            if mv.emits:
                                keys = self._emit(w, entity, tid, mv.emits, meta, now)
                            if snap and v % snap == 0:
                                w.snapshots[entity] = (kind, entity, v, chart.version, dumps(
                                    Config(target.memory, nv, s.extra).to_dict()))
                            add_audit((at_iso, kind, entity, tid, actor_id, event, node.joined,
                                       target.joined, trace_id, "applied", ""))
                            add_result(_result(entity, event, "applied", v, tid, node.leaves,
                                               target.leaves, keys))
                            add_record(TransitionRecord(
                                kind, entity, event, v, tid, node.leaves, target.leaves,
                                time_in, "applied", 0.0, actor_id, trace_id, "",
                                dict(payload) if payload else {}) if observers else None)
                            s.node, s.vars, s.version, s.done = target, nv, v, mv.done
                            s._config = None
                            s.dirty = True
                            continue
                    # the full path: it must see this entity as the fast path left it
                    if s.dirty:
                        self._sync(w, entity, s, overlay, now)
                    del slots[entity]
            got = self._apply(w, entity, event, dict(payload) if payload else {},
                              actor, None, None, {}, None, None, overlay, heads, now)
            if got.rejected is not None:
                raise _BatchRefused(got)
            if got.fresh is not None:
                overlay[entity] = got.fresh
            add_result(got.result)
            add_record(got.record)
        for entity, s in slots.items():
            if s.dirty:
                self._sync(w, entity, s, overlay, now)
        self.fast_hits += hits

    def _slot(self, tx: Tx, entity: str, overlay: dict[str, _Cached],
              heads: Mapping[str, tuple[int, str, int]]) -> _Cached | None:
        """``entity``'s entry made ready for the fast path (None: no such
        entity; the full path says so). Not moved in the cache's order here:
        ``send_batch`` does that once per entity after the commit."""
        cur = self._rebuild(tx, entity, overlay, heads, touch=False)
        if cur is None:
            return None
        if cur.node is None:
            cur.node = node_of(cur.chart, cur.config.memory)
        if not cur.prefix:
            cur.prefix = _tid_prefix(self.kind, entity)
        cur.base = cur.version
        return cur

    def _sync(self, w: Writes, entity: str, s: _Cached, overlay: dict[str, _Cached],
              now: float) -> None:
        """Write an entry the fast path moved back: the entity's head row, and
        the entry into the overlay (the cache takes it after the commit)."""
        if s.since_json is None:
            s.since_json = dumps(s.since)  # what the flush would write; kept for next time
        node = s.node
        assert node is not None
        w.head(entity, s.base, (s.version, node.json, s.since_json, s.chart_version,
                                int(s.done), now))
        overlay[entity] = s
        s.dirty = False

    def _emit(self, w: Writes, entity: str, tid: str, emits: tuple[tuple[str, str], ...],
              meta: dict[str, str], now: float) -> tuple[str, ...]:
        """Outbox rows of a step's commands (bodies already JSON); their keys."""
        keys = []
        for i, (topic, body) in enumerate(emits):
            key = tid if len(emits) == 1 else f"{tid}/{i}"
            keys.append(key)
            w.outbox.append((self.kind, entity, key, topic, body,
                             dumps({**meta, "transition_id": tid, "entity": entity,
                                    "kind": self.kind}), now, now))
        return tuple(keys)

    def _after(self, done: _Applied, seconds: float) -> None:
        if done.fresh is not None:
            self._remember(done.result.entity, done.fresh)
        if done.rejected is not None:
            self._notify("rejected", done.rejected[1])
            raise NotAuthorized(f"{self.kind}/{done.result.entity}: {done.rejected[0]}",
                                reason=done.rejected[0])
        if done.record is not None and self.observers:
            rec = TransitionRecord(**{**done.record.__dict__, "seconds": seconds})
            self._notify("transition", rec)
        elif done.result.outcome == "ignored" and not done.result.replayed:
            self._notify("ignored", self.kind, done.result.entity, done.result.event)

    def _notify(self, hook: str, *args: Any) -> None:
        """Tell every observer; one that raises is logged, never passed on:
        the transition is committed and the caller must see its result."""
        for o in self.observers:
            try:
                getattr(o, hook)(*args)
            except Exception:
                log.exception("observer %r failed in %s (the transition is committed)", o, hook)

    def _writes(self, tx: Tx) -> Writes:
        return Writes(tx, self.kind, self._table, self.audit_key)

    def _apply(self, w: Writes, entity: str, event: str, payload: dict[str, Any], actor: Actor,
               request_key: str | None, expected: int | None, meta: dict[str, str],
               envelope_id: str | None, timer_id: str | None,
               overlay: dict[str, _Cached],
               heads: Mapping[str, tuple[int, str, int]] | None = None,
               now: float | None = None) -> _Applied:
        """Everything one request does, inside ``w``'s transaction."""
        tx = w.tx
        if request_key is not None:
            row = tx.one("SELECT result FROM dz_requests WHERE kind = ? AND key = ?",
                         (self.kind, request_key))
            if row is not None:
                prior = Result.from_json(row[0])
                if prior.outcome == "rejected":
                    raise NotAuthorized(f"{self.kind}/{entity}: {prior.event} was refused "
                                        "(repeated request)", reason="repeated")
                return _Applied(prior)
        if now is None:
            now = self.clock()
        if envelope_id is not None:
            tx.q("INSERT INTO dz_envelopes (id, seen_at) VALUES (?, ?)", (envelope_id, now))
        if heads is None:  # one request: its head, and what the row holds (see _heads)
            heads = self._heads(tx, {entity}, w, trust=False)
        cur = self._rebuild(tx, entity, overlay, heads)
        version = 0 if cur is None else cur.version
        if expected is not None and expected != version:
            raise ConcurrencyError(self.kind, entity, expected, version)
        chart = self.chart if cur is None else self._chart_of(cur.chart_version)
        if event == MIGRATE:
            if cur is None:
                raise DurableError(f"{self.kind}/{entity}: no such entity")
            return self._migrate_in(w, entity, payload, actor, cur, request_key, now)
        if event != CREATE and event not in chart.events:
            raise UnknownEventError(f"{self.kind}/{entity} runs chart version "
                                    f"{chart.version}, which does not declare {event!r}")
        if event == CREATE:
            if cur is not None:
                raise DurableError(f"{self.kind}/{entity} already exists")
            st = initial_step(chart, entity=entity, actor=actor, extra=payload,
                              extra_limit=self.extra_limit)
            before: list[str] = []
            since: dict[str, float] = {}
        else:
            if cur is None:
                raise DurableError(f"{self.kind}/{entity}: no such entity (create it first)")
            st = step(chart, cur.config, event, payload=payload, actor=actor,
                      entity=entity, extra_limit=self.extra_limit)
            before = cur.config.leaves(chart)
            since = cur.since  # copied by _commit before any change
        after = st.config.leaves(chart) if st.changed or event == CREATE else before
        tid = _transition_id(self.kind, entity, version + 1)
        trace_id = meta.get("traceparent", "")
        if timer_id is not None:
            tx.q("DELETE FROM dz_timers WHERE id = ?", (timer_id,))
        if not st.changed and event != CREATE:
            res = Result(entity, event, "ignored", version, None, tuple(before), tuple(before))
            if request_key is not None:
                self._record_request(w, request_key, entity, res)
            return _Applied(res)
        why = denial(chart, st.fired, st.entered, actor, payload)
        if why is not None:
            tid = str(uuid.uuid4())  # an attempt, not a version: its own id
            res = Result(entity, event, "rejected", version, None, tuple(before), tuple(before))
            w.append_audit(AuditRecord(self.kind, entity, tid, actor.id, event,
                                       ",".join(before), ",".join(before), trace_id,
                                       "rejected", why), now)
            if request_key is not None:
                self._record_request(w, request_key, entity, res)
            return _Applied(res, rejected=(why, TransitionRecord(
                self.kind, entity, event, version, tid, tuple(before), tuple(before), {},
                "rejected", 0.0, actor.id, trace_id, why, payload)))
        if self.observers:
            for o in self.observers:
                meta = o.carry(meta)
            trace_id = meta.get("traceparent", trace_id)
        res, rec, fresh = self._commit(w, chart, entity, event, payload, actor, meta, version,
                                       tid, st, before, after, since, now, trace_id,
                                       request_key)
        return _Applied(res, rec, fresh)

    def _migrate_in(self, w: Writes, entity: str, payload: dict[str, Any], actor: Actor,
                    cur: _Cached, request_key: str | None, now: float) -> _Applied:
        old = self._chart_of(cur.chart_version)
        to = self._charts[int(payload["to"])]
        cfg = Config.from_dict(to, payload["config"])
        before = cur.config.leaves(old)
        after = cfg.leaves(to)
        active_old = cur.config.active(old)
        active_new = cfg.active(to)
        st = Step(cfg, (), tuple(reversed(active_old)), tuple(active_new), (),
                  tuple(t for s in active_new for t in to.timers(s)),
                  tuple(s for s in active_old if old.timers(s)), False)
        tid = _transition_id(self.kind, entity, cur.version + 1)
        res, rec, fresh = self._commit(w, to, entity, MIGRATE, payload, actor, {}, cur.version,
                                       tid, st, before, after, {}, now, "", request_key)
        return _Applied(res, rec, fresh)

    def _commit(self, w: Writes, chart: Chart, entity: str, event: str,
                payload: dict[str, Any], actor: Actor, meta: dict[str, str], version: int,
                tid: str, st: Step,
                before: list[str], after: list[str], since: dict[str, float], now: float,
                trace_id: str, request_key: str | None) -> tuple[Result,
                                                                   TransitionRecord | None,
                                                                   _Cached]:
        v = version + 1
        before_j, after_j = _leaves_json(before), _leaves_json(after)
        w.events.append((entity, v, tid, event, dumps(payload) if payload else "{}",
                         _actor_json(actor), dumps(meta) if meta else "{}", before_j,
                         after_j, chart.version, now))
        time_in: dict[str, float] = {}
        if st.exited or st.entered or before != after:
            since, time_in = _moved_since(since, before, after, st.exited, st.entered, now)
        done = st.done or any(chart.states[s].kind == "final"
                              and chart.states[s].parent == ROOT for s in after)
        w.head(entity, version, (v, after_j, since, chart.version, int(done), now))
        for state in st.cancelled:
            w.cancel_timers(entity, state)
        for t in st.armed:
            w.arm_timer(f"{tid}/{t.id}", entity, t.source, t.event,
                        now + (t.after.total_seconds() if t.after else 0.0))
        keys = []
        for i, (topic, body) in enumerate(st.commands):
            key = tid if len(st.commands) == 1 else f"{tid}/{i}"
            keys.append(key)
            w.outbox.append((self.kind, entity, key, topic, dumps(body),
                             dumps({**meta, "transition_id": tid, "entity": entity,
                                    "kind": self.kind}), now, now))
        if self.snapshot_every and v % self.snapshot_every == 0:
            w.snapshots[entity] = (self.kind, entity, v, chart.version,
                                   dumps(st.config.to_dict()))
        outcome = _OUTCOMES.get(event, "applied")
        before_t, after_t = _tuple(before), _tuple(after)
        w.audit_row(entity, tid, actor.id, event, _joined(before_t), _joined(after_t),
                    trace_id, outcome, "", now)
        res = _result(entity, event, outcome, v, tid, before_t, after_t, tuple(keys))
        if request_key is not None:
            self._record_request(w, request_key, entity, res)
        rec = TransitionRecord(self.kind, entity, event, v, tid, before_t, after_t,
                               time_in, outcome, 0.0, actor.id, trace_id, "",
                               payload) if self.observers else None
        return res, rec, _Cached(v, st.config, since, done, chart)

    def _record_request(self, w: Writes, key: str, entity: str, res: Result) -> None:
        w.requests.append((self.kind, key, entity, res.to_json()))


def _chain_after(w: Writes, start: int) -> int | None:
    """PostgreSQL: the kind's audit chain length after ``w``'s transaction,
    which expected it at ``start``: unchanged when it appended nothing; None
    when it found the chain longer (another writer appended in between)."""
    if w.audit_seq is None:
        return start
    return w.audit_seq if w.audit_base == start else None


def _current(last: Any, head_version: Any) -> int:
    """An entity's version: its last event's. The head row's own version is
    that of the last event that changed the head; a head ahead of the events
    (rows missing) is kept, so the replay reports the gap."""
    return int(head_version) if last is None else max(int(last), int(head_version))


@functools.lru_cache(maxsize=4096)
def _actor_of(text: str) -> Actor:
    a = json.loads(text)
    return Actor(str(a["id"]), frozenset(str(r) for r in a["roles"]))


@functools.lru_cache(maxsize=4096)
def _actor_json(actor: Actor) -> str:
    return dumps({"id": actor.id, "roles": sorted(actor.roles)})


def _leaves_json(leaves: list[str]) -> str:
    return _leaves_json_t(tuple(leaves))


_OUTCOMES = {CREATE: "created", MIGRATE: "migrated"}


@functools.lru_cache(maxsize=4096)
def _tuple_of(leaves: tuple[str, ...]) -> tuple[str, ...]:
    return leaves


def _tuple(leaves: list[str]) -> tuple[str, ...]:
    """One shared tuple per distinct set of leaves (results hold many)."""
    return _tuple_of(tuple(leaves))


@functools.lru_cache(maxsize=4096)
def _joined(leaves: tuple[str, ...]) -> str:
    return ",".join(leaves)


@functools.lru_cache(maxsize=4096)
def _leaves_json_t(leaves: tuple[str, ...]) -> str:
    return dumps(list(leaves))


def _transition_id(kind: str, entity: str, version: int) -> str:
    """Deterministic: the same (kind, entity, version) always names the same
    transition, so a retried write after a crash reuses its ids. UUID-shaped:
    80 bits of BLAKE2b over ``kind/entity`` (computed once per entity), then
    the version in 12 hex digits, so an entity's ids differ in their tail
    only and cost one format per event. (Events written before 2026-12-03
    carry a hash of ``kind/entity/version`` instead; ids are opaque, unique
    either way, and never recomputed from stored rows.)"""
    return f"{_tid_prefix(kind, entity)}{version:012x}"


@functools.lru_cache(maxsize=1 << 16)
def _tid_prefix(kind: str, entity: str) -> str:
    h = hashlib.blake2b(f"{kind}/{entity}".encode(), digest_size=10).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-"


def _moved_since(since: Mapping[str, float], before: Sequence[str], after: Sequence[str],
                 exited: Sequence[str], entered: Sequence[str],
                 now: float) -> tuple[dict[str, float], dict[str, float]]:
    """The since map after a step that left ``before`` for ``after`` (a new
    map: the old one may be shared), and the seconds spent in each leaf left."""
    out = dict(since)
    time_in: dict[str, float] = {}
    for leaf in before:
        if leaf not in after or leaf in exited:
            time_in[leaf] = now - out.pop(leaf, now)
    for leaf in after:
        if leaf not in out or leaf in entered:
            out[leaf] = now
    return {k: x for k, x in out.items() if k in after}, time_in


_new = object.__new__
_set = object.__setattr__


def _result(entity: str, event: str, outcome: str, version: int, transition_id: str | None,
            from_leaves: tuple[str, ...], to_leaves: tuple[str, ...],
            commands: tuple[str, ...]) -> Result:
    """``Result(...)`` without the frozen dataclass's one ``__setattr__`` per
    field (a microsecond per event on the batch path); equal in every way."""
    r = _new(Result)
    _set(r, "__dict__", {"entity": entity, "event": event, "outcome": outcome,
                         "version": version, "transition_id": transition_id,
                         "from_leaves": from_leaves, "to_leaves": to_leaves,
                         "commands": commands, "replayed": False})
    return r


_CONTROL = re.compile("[\x00-\x1f]")


def _check_id(entity: Any) -> None:
    if type(entity) is str and 0 < len(entity) <= _ENTITY_MAX and entity.isprintable():
        return  # the common case, in C: a printable string holds no control character
    if not isinstance(entity, str) or not entity or len(entity) > _ENTITY_MAX \
            or _CONTROL.search(entity) is not None:
        raise DurableError(f"entity id {entity!r} (expected 1-{_ENTITY_MAX} printable "
                           "characters)")
