"""NATS JetStream transport (``pip install 'convergent[replica]'``, server:
Debian's ``nats-server`` run with ``-js``).

Subjects, for a machine named ``M`` (prefix ``cv`` by default)::

    cv.M.events.<origin>   JetStream stream CV_M (file storage): committed
                           events, a batch per message; every replica reads
                           the whole stream with its own durable pull consumer
                           (skipping its own subject: those are its events)
                           and acknowledges a batch only after its store
                           committed it
    cv.M.sync              core NATS: "I am R, my version vector is V"; every
                           peer answers on R's direct subject with what V lacks
                           (anti-entropy, on every (re)connect and periodically)
    cv.M.direct.<replica>  core NATS: anti-entropy answers; when R lacks events
                           the answering peer compacted away, the answer starts
                           with that peer's snapshot (``convergent-snapshot-
                           offer/1``), which R installs before the events

Every envelope carries the machine's policy digest; a batch or a snapshot of
another policy is refused (counted, and the reason kept in ``errors``), never
applied. With a ``Keyring`` (``keys=``), every message is signed by its
sender (ed25519, one signature per message) and only messages signed by a
configured peer are opened; a batch on ``events.<origin>`` must be signed by
that origin. Every message is bounded (``Limits.max_message_bytes``) and
decoded defensively: a malformed one is counted, logged and skipped. The
background tasks are supervised: one that fails is logged, counted
(``task_restarts``) and restarted after a backoff; none dies silently. Everything runs on the caller's asyncio loop; ``broadcast`` only
queues. Commits go through ``Replica.aflush`` (a worker thread for a
``blocking`` store such as PostgreSQL). Envelopes a full pending buffer turns
away are counted (``backpressure``) and asked for again by an early
anti-entropy round.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._tasks import cancel_and_wait
from ..envelope import (
    MAX_PARTS,
    Envelope,
    Limits,
    decode_batch_part,
    encode_batch,
    loads_bounded,
)
from ..errors import (
    BackpressureError,
    PolicyMismatchError,
    ProtocolError,
    ReplicaError,
    StoreError,
    TransportError,
)
from ..model import Snapshot
from ..signing import Keyring, SignatureError
from .base import Transport

try:
    import nats
    import nats.errors
    import nats.js.errors
    from nats.js import api as js_api
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the NATS transport needs nats-py: pip install nats-py "
                      "(or 'convergent[replica]')", name=exc.name) from exc

if TYPE_CHECKING:  # pragma: no cover
    from ..replica import Replica

__all__ = ["NatsTransport", "tls_context"]

SNAPSHOT_FORMAT = "convergent-snapshot-offer/1"
log = logging.getLogger("convergent.runtime")

#: multi-message anti-entropy answers assembled at once, at most
MAX_OPEN_ANSWERS = 64
#: envelopes held by unfinished answers, at most (about 130 MB; past it the
#: answers are applied as they are, and their later parts on arrival)
MAX_ANSWER_EVENTS = 200_000


class _Answer:
    """The parts of one multi-message anti-entropy answer received so far."""

    __slots__ = ("events", "n", "parts", "timer")

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: dict[int, list[Envelope]] = {}
        self.events = 0
        self.timer: asyncio.TimerHandle | None = None

    def envelopes(self) -> list[Envelope]:
        """The parts in order: the answer's canonical order."""
        out: list[Envelope] = []
        for i in sorted(self.parts):
            out.extend(self.parts[i])
        return out


def _durable_name(replica_id: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", replica_id)
    if clean != replica_id:
        clean += "_" + hashlib.sha256(replica_id.encode()).hexdigest()[:8]
    return f"cv_{clean}"


class NatsTransport(Transport):
    """Carry one replica's events over NATS JetStream (module docstring).

    Args:
        servers: a NATS URL or a list of them.
        prefix: the first subject token (default ``cv``).
        storage: ``file`` (default; survives a server restart) or ``memory``.
        sync_interval: seconds between anti-entropy rounds.
        fetch_batch: messages per JetStream fetch.
        max_events: envelopes per published message.
        connect_timeout: seconds to keep trying to connect and to set up the
            stream and the consumer at start (with backoff), before giving up
            with a TransportError that says what failed.
        keys: this replica's ``Keyring``: sign every message, open only those
            signed by its configured peers. None: unsigned (a closed network).
        user, password, token, nkeys_seed, user_credentials: NATS
            authentication, passed to the client (``nkeys_seed`` and
            ``user_credentials`` are file paths).
        tls: an ``ssl.SSLContext`` for ``tls://`` servers (see
            ``tls_context``); tls_hostname: the name to check in the
            server's certificate.
        limits: bounds on incoming messages (default: the replica's).
        inflight_grace: seconds an event is assumed in flight through the
            stream; anti-entropy answers leave out younger ones (default the
            smaller of ``sync_interval`` and 2).

    Use: ``t = NatsTransport(url); r = Replica(m, id=..., transport=t,
    autoflush=False); await t.start(); ...; await t.aclose()`` (or let a
    ``ReplicaService`` do it).
    """

    def __init__(self, servers: str | list[str] = "nats://127.0.0.1:4222", *,
                 prefix: str = "cv", storage: str = "file", sync_interval: float = 2.0,
                 fetch_batch: int = 256, max_events: int = 1000,
                 connect_timeout: float = 10.0, keys: Keyring | None = None,
                 user: str | None = None, password: str | None = None,
                 token: str | None = None, nkeys_seed: str | None = None,
                 user_credentials: str | None = None, tls: ssl.SSLContext | None = None,
                 tls_hostname: str | None = None, limits: Limits | None = None,
                 inflight_grace: float | None = None) -> None:
        if storage not in ("file", "memory"):
            raise TransportError(f"storage={storage!r} (expected 'file' or 'memory')")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", prefix):
            raise TransportError(f"prefix={prefix!r} (expected one subject token)")
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.prefix = prefix
        self.storage = storage
        self.sync_interval = sync_interval
        self.fetch_batch = fetch_batch
        self.max_events = max_events
        self.connect_timeout = connect_timeout
        if keys is not None and not isinstance(keys, Keyring):
            raise TransportError(f"keys={keys!r} (expected a Keyring)")
        self.keys = keys
        self._auth: dict[str, Any] = {k: v for k, v in (
            ("user", user), ("password", password), ("token", token),
            ("nkeys_seed", nkeys_seed), ("user_credentials", user_credentials),
            ("tls", tls), ("tls_hostname", tls_hostname)) if v is not None}
        self._limits = limits
        self.inflight_grace = (min(sync_interval, 2.0) if inflight_grace is None
                               else inflight_grace)
        #: seconds a multi-message anti-entropy answer may take to arrive whole
        self.answer_timeout = max(1.0, min(sync_interval, 5.0))
        self.replica = None
        self.nc: Any = None
        self.js: Any = None
        self._psub: Any = None
        self._resetup = False
        self._outbox: deque[Envelope] = deque()
        self._wake = asyncio.Event()
        self._sync_now = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs: list[Any] = []
        self._closing = False
        self.connected = False
        #: the latest problems (time, message), newest last
        self.errors: deque[tuple[float, str]] = deque(maxlen=100)
        #: multi-message answers being assembled, by (signer, tag)
        self._answers: dict[tuple[str | None, str], _Answer] = {}
        #: answers applied before they were whole: their later parts go at once
        self._cut: deque[tuple[str | None, str]] = deque(maxlen=MAX_OPEN_ANSWERS)
        self._answer_tasks: set[asyncio.Task[None]] = set()
        self.counters = {"published": 0, "publish_retries": 0, "fetched": 0,
                         "sync_requests": 0, "sync_sent": 0, "direct_received": 0,
                         "answers_received": 0, "answers_incomplete": 0,
                         "refused": 0, "reconnects": 0, "backpressure": 0,
                         "snapshots_sent": 0, "snapshots_installed": 0,
                         "unsigned_refused": 0, "task_restarts": 0}

    # ------------------------------------------------------------ names

    def _r(self) -> Replica:
        if self.replica is None:
            raise TransportError("NatsTransport is not attached: pass it to Replica(transport=...)")
        return self.replica

    @property
    def machine(self) -> str:
        return self._r().machine.name

    @property
    def stream(self) -> str:
        return f"{self.prefix.upper()}_{self.machine}"

    def subject(self, kind: str, name: str | None = None) -> str:
        base = f"{self.prefix}.{self.machine}.{kind}"
        return base if name is None else f"{base}.{name}"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect (retrying until ``connect_timeout``), make sure the stream
        and this replica's consumer exist, and start the background tasks.

        Raises TransportError when no server answered in time."""
        replica = self._r()

        async def on_error(exc: Exception) -> None:
            self._note(f"nats: {exc!r}")

        async def on_disconnect() -> None:
            self.connected = False

        async def on_reconnect() -> None:
            self.connected = True
            self.counters["reconnects"] += 1
            self._resetup = True         # the server may have lost the stream
            self._sync_now.set()
            self._wake.set()

        deadline = time.monotonic() + self.connect_timeout
        where = ", ".join(self.servers)
        backoff = 0.1
        while True:
            try:
                # the client retries by itself (an authorization failure too),
                # so the deadline bounds the call as a whole
                self.nc = await asyncio.wait_for(nats.connect(
                    self.servers, name=f"convergent-{replica.id}", error_cb=on_error,
                    disconnected_cb=on_disconnect, reconnected_cb=on_reconnect,
                    allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.25,
                    connect_timeout=2, ping_interval=5, max_outstanding_pings=2,
                    **self._auth), timeout=max(0.1, deadline - time.monotonic()))
                break
            except Exception as exc:  # nats raises several unrelated types here
                if time.monotonic() + backoff > deadline:
                    last = self.errors[-1][1] if self.errors else repr(exc)
                    raise TransportError(f"cannot connect to NATS at {where} within "
                                         f"{self.connect_timeout:g} s: {last}") from None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        self.connected = True
        # the server accepted the connection; JetStream must answer too (a
        # server without -js, or one that stopped answering, fails here):
        # retry with backoff until the deadline, then say what is wrong
        backoff = 0.1
        while True:
            left = deadline - time.monotonic()
            self.js = self.nc.jetstream(timeout=max(0.5, min(5.0, left)))
            try:
                await self._setup()
                break
            except Exception as exc:
                self._note(f"setup: {exc!r}")
                if time.monotonic() + backoff > deadline:
                    await self._close_quietly()
                    raise TransportError(
                        f"NATS at {where} accepted the connection but JetStream did not "
                        f"answer within {self.connect_timeout:g} s (is the server running "
                        f"with -js, and reachable?): {exc!r}") from None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        self.js = self.nc.jetstream(timeout=5)
        self._subs.append(await self.nc.subscribe(self.subject("sync"), cb=self._on_sync))
        self._subs.append(await self.nc.subscribe(self.subject("direct", replica.id),
                                                  cb=self._on_direct,
                                                  pending_msgs_limit=100_000,
                                                  pending_bytes_limit=512 * 1024 * 1024))
        await self.nc.flush()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._supervise("consume", self._consume),
                                        name="convergent-consume"),
                       loop.create_task(self._supervise("publish", self._publish),
                                        name="convergent-publish"),
                       loop.create_task(self._supervise("sync", self._anti_entropy),
                                        name="convergent-sync")]
        self._sync_now.set()   # anti-entropy at once, as documented: not one interval later
        self._wake.set()

    async def _close_quietly(self) -> None:
        if self.nc is not None:
            try:
                await self.nc.close()
            except Exception:
                pass
        self.connected = False

    async def _supervise(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run ``body`` until closing; if it fails (or returns early), log it,
        count it and start it again after a backoff: a background task never
        dies silently."""
        backoff = 0.1
        while not self._closing:
            try:
                await body()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["task_restarts"] += 1
                self.errors.append((time.time(), f"task {name} failed and restarts: {exc!r}"))
                log.exception("convergent %s task of replica %s failed; restarting", name,
                              getattr(self.replica, "id", "?"))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not self._closing:
                self.counters["task_restarts"] += 1
                self._note_warning(f"task {name} ended early and restarts")
                await asyncio.sleep(backoff)

    async def _setup(self) -> None:
        """Create the stream and this replica's durable consumer if missing."""
        replica = self._r()
        try:
            await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            try:
                await self.js.add_stream(name=self.stream, subjects=[self.subject("events", ">")],
                                         storage=js_api.StorageType(self.storage))
            except nats.js.errors.BadRequestError:
                pass  # another replica created it meanwhile
        old, self._psub = self._psub, None
        if old is not None:
            try:
                await old.unsubscribe()
            except Exception:  # the connection that carried it may be gone
                pass
        cfg = js_api.ConsumerConfig(ack_policy=js_api.AckPolicy.ALL,
                                    deliver_policy=js_api.DeliverPolicy.ALL,
                                    ack_wait=30, max_ack_pending=-1)
        self._psub = await self.js.pull_subscribe(self.subject("events", ">"),
                                                  durable=_durable_name(replica.id),
                                                  stream=self.stream, config=cfg)

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued local event is published (True) or the
        timeout passed (False)."""
        deadline = time.monotonic() + timeout
        while self._outbox and time.monotonic() < deadline:
            self._wake.set()
            await asyncio.sleep(0.02)
        return not self._outbox

    async def aclose(self) -> None:
        """Stop the tasks, tell the peers once more what this replica has (its
        last periodic announcement may predate its last events: peers waiting
        for it, as ``--until-accepted`` does, would wait forever), and close
        the connection (queued events that were not published stay in the
        store: anti-entropy sends them later)."""
        self._closing = True
        await cancel_and_wait(self._tasks)
        self._tasks = []
        for ans in self._answers.values():  # not accepted: asked for again after a restart
            if ans.timer is not None:
                ans.timer.cancel()
        self._answers.clear()
        self._cut.clear()
        await cancel_and_wait(list(self._answer_tasks))
        if self.nc is not None and self.connected and self.replica is not None:
            try:
                await self.nc.publish(self.subject("sync"), self._sync_body())
                await self.nc.flush(timeout=1)
            except Exception as exc:
                self._note(f"final sync: {exc!r}")
        if self.nc is not None:
            try:
                await self.nc.close()
            except Exception:
                pass
        self.connected = False

    def _note(self, message: str, level: int = logging.DEBUG) -> None:
        """Keep a problem in ``errors`` (shown by ``status``) and log it;
        connection chatter at DEBUG, refused messages at WARNING."""
        self.errors.append((time.time(), message))
        log.log(level, "replica %s: %s", getattr(self.replica, "id", "?"), message)

    def _count(self, counter: str) -> None:
        self.counters[counter] += 1

    def _note_warning(self, message: str) -> None:
        self._note(message, logging.WARNING)

    @property
    def limits(self) -> Limits:
        return self._limits or self._r().limits

    def _seal(self, body: bytes) -> bytes:
        return self.keys.seal(body) if self.keys is not None else body

    def _unseal(self, data: bytes, source: str) -> tuple[str | None, bytes] | None:
        """The signer and body of an incoming message; None (counted, noted)
        when it is too large, or, with keys, unsigned or not from a peer."""
        limit = self.limits.max_message_bytes
        if len(data) > limit + 4096:
            self._count("refused")
            self._note_warning(f"refused a {source} message of {len(data)} bytes "
                       f"(max_message_bytes={limit})")
            return None
        if self.keys is None:
            return None, data
        try:
            return self.keys.open(data)
        except SignatureError as exc:
            self._count("unsigned_refused")
            self._note_warning(f"refused a {source} message: {exc}")
            return None

    # ------------------------------------------------------------ Transport

    def broadcast(self, envelopes: Sequence[Envelope]) -> None:
        self._outbox.extend(envelopes)
        self._wake.set()

    @property
    def outbox(self) -> int:
        """Committed local events not yet published."""
        return len(self._outbox)

    # ------------------------------------------------------------ tasks

    def _accept(self, data: bytes, source: str, origin: str | None = None,
                opened: tuple[str | None, bytes] | None = None) -> list[Envelope]:
        """Check and decode one batch; a message that is malformed, unsigned,
        of another machine or policy, or (on ``events.<origin>``) signed by
        someone else than its events' origin is refused loudly (counted and
        noted), never raised: failures are per message."""
        return self._accept_part(data, source, origin, opened)[0]

    def _accept_part(self, data: bytes, source: str, origin: str | None = None,
                     opened: tuple[str | None, bytes] | None = None
                     ) -> tuple[list[Envelope], tuple[str, int, int] | None]:
        """``_accept``, and the message's part of a multi-message answer
        (None: a whole one)."""
        replica = self._r()
        if opened is None:
            opened = self._unseal(data, source)
            if opened is None:
                return [], None
        signer, body = opened
        try:
            machine, policy, envs, part = decode_batch_part(body, self.limits)
        except ProtocolError as exc:
            self._count("refused")
            self._note_warning(f"refused a malformed {source} message: {exc}")
            return [], None
        except Exception as exc:  # nothing a peer sends may stop the consumer
            self._count("refused")
            self._note_warning(f"refused an undecodable {source} message: {exc!r}")
            return [], None
        if signer is not None and origin is not None and any(e[2] != signer for e in envs):
            self._count("unsigned_refused")
            self._note_warning(f"refused a {source} message signed by {signer!r} carrying events of "
                       "another origin")
            return [], None
        if machine != replica.machine.name or policy != replica.machine.policy_digest:
            self._count("refused")
            self._note_warning(str(PolicyMismatchError(
                f"refused {len(envs)} events from {source}: machine {machine!r} policy "
                f"{policy[:16]}..., this replica runs {replica.machine.name!r} policy "
                f"{replica.machine.policy_digest[:16]}...",
                expected=replica.machine.policy_digest, got=policy)))
            return [], None
        return envs, part

    async def _commit(self, envs: list[Envelope]) -> None:
        replica = self._r()
        if envs:
            try:
                replica.receive(envs)
            except BackpressureError as exc:
                # not accepted: ask the peers again soon (they answer with what
                # this replica's version vector lacks, in causal order)
                self.counters["backpressure"] += len(exc.refused)
                self._note(f"backpressure: {len(exc.refused)} envelopes turned away "
                           f"(pending buffer full, {exc.limit})")
                self._sync_now.set()
        await replica.aflush()

    async def _consume(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                if self._psub is None or self._resetup:
                    self._resetup = False
                    await self._setup()
                msgs = await self._psub.fetch(self.fetch_batch, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._note(f"fetch: {exc!r}")
                self._resetup = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            if not msgs:
                continue
            envs: list[Envelope] = []
            own = self.subject("events", self._r().id)
            for msg in msgs:
                if msg.subject == own:  # this replica's own events, back from the stream
                    continue
                envs.extend(self._accept(msg.data, f"stream {msg.subject}",
                                         origin=msg.subject.rpartition(".")[2]))
            self.counters["fetched"] += len(msgs)
            try:
                await self._commit(envs)
            except StoreError as exc:  # not acknowledged: JetStream redelivers
                self._note(f"store: {exc}")
                await asyncio.sleep(0.5)
                continue
            except ProtocolError as exc:  # decoded but refused by the replica: skip it
                self._count("refused")
                self._note_warning(f"refused a stream batch: {exc}")
            except Exception as exc:  # a subscriber failed after the commit
                self._note(f"subscriber: {exc!r}")
            try:
                await msgs[-1].ack()
            except Exception as exc:  # redelivered later; duplicates are dropped
                self._note(f"ack: {exc!r}")

    async def _publish(self) -> None:
        replica = self._r()
        subject = self.subject("events", replica.id)
        machine, policy = replica.machine.name, replica.machine.policy_digest
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and not self._closing:
                chunk = [self._outbox[i] for i in range(min(self.max_events, len(self._outbox)))]
                data = self._seal(encode_batch(machine, policy, chunk))
                try:
                    await self.js.publish(subject, data, timeout=5)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.counters["publish_retries"] += 1
                    self._note(f"publish: {exc!r}")
                    await asyncio.sleep(0.25)
                    continue
                for _ in chunk:
                    self._outbox.popleft()
                self.counters["published"] += len(chunk)

    async def _anti_entropy(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._sync_now.wait(), timeout=self.sync_interval)
            except TimeoutError:
                pass
            self._sync_now.clear()
            if not self.connected:
                continue
            try:
                await self.nc.publish(self.subject("sync"), self._sync_body())
            except Exception as exc:
                self._note(f"sync: {exc!r}")

    def _sync_body(self) -> bytes:
        """``version``: what to send this replica; ``committed`` and ``clock``:
        its durable facts (``Replica.report``), the only ones peers may bound
        their compaction by."""
        replica = self._r()
        report = replica.report()
        return self._seal(json.dumps({"from": replica.id, "version": replica.version,
                                      "committed": report.version, "clock": report.clock,
                                      "policy": replica.machine.policy_digest}).encode())

    async def sync_now(self) -> None:
        """Ask every peer for what this replica lacks, now."""
        self._sync_now.set()
        await asyncio.sleep(0)

    async def _on_sync(self, msg: Any) -> None:
        try:
            await self._answer_sync(msg.data)
        except Exception as exc:  # a handler never fails silently, nor for good
            self._note(f"sync request: {exc!r}")

    async def _answer_sync(self, data: bytes) -> None:
        replica = self.replica
        if replica is None or self._closing:
            return
        opened = self._unseal(data, "sync")
        if opened is None:
            return
        signer, body = opened
        try:
            req = loads_bounded(body, self.limits, what="sync request")
            peer, version, clock = req["from"], req["version"], req["clock"]
            committed = req.get("committed", {})
            if req.get("policy") != replica.machine.policy_digest:
                if peer != replica.id:
                    self._count("refused")
                    self._note_warning(f"refused a sync request of {str(peer)[:64]!r}: another "
                               "machine policy")
                return
            if not isinstance(version, dict) or not isinstance(committed, dict) or not all(
                    isinstance(k, str) and type(v) is int and v >= 0
                    for d in (version, committed) for k, v in d.items()):
                raise TypeError("version is not an object of event counts")
        except (ProtocolError, KeyError, TypeError) as exc:
            self._count("refused")
            self._note_warning(f"malformed sync request: {exc!r}")
            return
        if peer == replica.id:
            return
        if signer is not None and signer != peer:
            self._count("unsigned_refused")
            self._note_warning(f"refused a sync request of {str(peer)[:64]!r} signed by {signer!r}")
            return
        self.counters["sync_requests"] += 1
        replica.observe_peer(peer, committed, clock)
        subject = self.subject("direct", peer)
        machine, policy = replica.machine.name, replica.machine.policy_digest
        snap = replica.snapshot_for(version)
        if snap is not None:  # the peer lacks events compacted here: snapshot first
            try:
                await self.nc.publish(subject, self._seal(json.dumps(
                    {"format": SNAPSHOT_FORMAT, "machine": machine, "policy": policy,
                     "snapshot": snap.to_dict()}, separators=(",", ":")).encode()))
                self.counters["snapshots_sent"] += 1
            except Exception as exc:
                self._note(f"snapshot to {peer}: {exc!r}")
                return
            version = dict(version)
            for o, n in snap.version.items():
                version[o] = max(int(version.get(o, 0)), n)
        # events younger than one sync interval are most likely still in
        # flight through the stream: answer with them on a later round
        cutoff = (time.time_ns() // 1_000_000 - int(self.inflight_grace * 1000)) << 16
        missing = [e for e in replica.missing_for(version) if e[4] <= cutoff]
        if not missing:
            return
        # one answer, in messages of max_events: numbered parts of one tag,
        # so that the peer applies it as one batch (one receive: one repair
        # at most), however many messages it takes
        step = self.max_events
        n = -(-len(missing) // step)
        tag = secrets.token_hex(8)
        try:
            for k, i in enumerate(range(0, len(missing), step)):
                await self.nc.publish(subject, self._seal(encode_batch(
                    machine, policy, missing[i:i + step],
                    part=(tag, k, n) if 1 < n <= MAX_PARTS else None)))
            self.counters["sync_sent"] += len(missing)
        except Exception as exc:
            self._note(f"sync answer to {peer}: {exc!r}")

    async def _on_direct(self, msg: Any) -> None:
        try:
            await self._direct(msg.data)
        except Exception as exc:  # a handler never fails silently, nor for good
            self._note(f"direct message: {exc!r}")

    async def _direct(self, data: bytes) -> None:
        if self.replica is None or self._closing:
            return
        opened = self._unseal(data, "direct")
        if opened is None:
            return
        body = opened[1]
        if body.startswith(b'{"format":"' + SNAPSHOT_FORMAT.encode()):
            await self._on_snapshot(body)
            return
        envs, part = self._accept_part(data, "anti-entropy", opened=opened)
        if not envs:
            return  # refused (counted and noted), or empty
        self.counters["direct_received"] += len(envs)
        if part is not None and part[2] > 1:
            envs = self._assemble(opened[0], part, envs)
            if not envs:
                return  # more parts to come
        self.counters["answers_received"] += 1
        await self._apply_answer(envs)

    def _assemble(self, signer: str | None, part: tuple[str, int, int],
                  envs: list[Envelope]) -> list[Envelope]:
        """Keep a part of a multi-message answer; the whole answer, in order,
        once its last part is in (else []). Bounded: at most
        ``MAX_OPEN_ANSWERS`` answers and ``MAX_ANSWER_EVENTS`` envelopes wait;
        an answer not complete within ``answer_timeout`` is applied as it is
        (what lacks dependencies waits in the replica's buffer, what was lost
        comes with the next round)."""
        tag, i, n = part
        key = (signer, tag)
        if key in self._cut:  # the rest of an answer applied before it was whole
            return envs
        ans = self._answers.get(key)
        if ans is None:
            if len(self._answers) >= MAX_OPEN_ANSWERS:
                self._expire(next(iter(self._answers)))  # the oldest
            ans = self._answers[key] = _Answer(n)
            ans.timer = asyncio.get_running_loop().call_later(
                self.answer_timeout, self._expire, key)
        if n != ans.n or i in ans.parts:
            self._count("refused")
            self._note_warning(f"refused part {i} of {n} of anti-entropy answer {tag} (a "
                               "duplicate, or another count of parts)")
            return []
        ans.parts[i] = envs
        ans.events += len(envs)
        if len(ans.parts) < ans.n:
            if sum(a.events for a in self._answers.values()) > MAX_ANSWER_EVENTS:
                self._expire(key)  # too much waiting: apply what came
            return []
        del self._answers[key]
        if ans.timer is not None:
            ans.timer.cancel()
        return ans.envelopes()

    def _expire(self, key: tuple[str | None, str]) -> None:
        """Apply an incomplete answer as it is (a part was lost, or the
        answers waiting are past their bounds)."""
        ans = self._answers.pop(key, None)
        if ans is None:
            return
        if ans.timer is not None:
            ans.timer.cancel()
        self._cut.append(key)
        self.counters["answers_incomplete"] += 1
        self._note(f"anti-entropy answer {key[1]}: {len(ans.parts)} of {ans.n} parts came; "
                   "applying them")
        task = asyncio.get_running_loop().create_task(self._apply_answer(ans.envelopes()))
        self._answer_tasks.add(task)
        task.add_done_callback(self._answer_tasks.discard)

    async def _apply_answer(self, envs: list[Envelope]) -> None:
        """One receive (and commit) for one anti-entropy answer; failures are
        noted, never raised (the next round asks again)."""
        try:
            await self._commit(envs)
        except StoreError as exc:  # lost for now; the next sync round asks again
            self._note(f"store: {exc}")
        except ProtocolError as exc:  # decoded but refused by the replica
            self._count("refused")
            self._note_warning(f"refused an anti-entropy batch: {exc}")
        except Exception as exc:  # a subscriber failed after the commit
            self._note(f"subscriber: {exc!r}")

    async def _on_snapshot(self, data: bytes) -> None:
        """A peer's compacted snapshot (signature already checked): install it
        if it brings anything and passes the replica's checks."""
        replica = self._r()
        try:
            msg = loads_bounded(data, self.limits, what="snapshot offer")
            snap = Snapshot.from_dict(msg["snapshot"])
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            self._count("refused")
            self._note_warning(f"refused a malformed snapshot message: {exc!r}")
            return
        try:
            if await replica.ainstall_snapshot(snap):
                self.counters["snapshots_installed"] += 1
        except (ReplicaError, StoreError) as exc:  # policy, or sets of peers that disagree
            self._count("refused")
            self._note_warning(f"refused the snapshot of {snap.replica!r}: {exc}")
        except Exception as exc:  # a subscriber failed after the commit
            self._note(f"subscriber: {exc!r}")

    def info(self) -> dict[str, Any]:
        return {"servers": self.servers, "connected": self.connected, "outbox": self.outbox,
                "signed": self.keys is not None,
                "stream": self.stream if self.replica else None, **self.counters,
                "errors": [m for _, m in list(self.errors)[-5:]]}


def tls_context(*, ca_file: str | None = None, cert_file: str | None = None,
                key_file: str | None = None) -> ssl.SSLContext:
    """A client TLS context for ``NatsTransport(tls=...)``: verify the server
    against ``ca_file`` (default: the system's roots), and present
    ``cert_file``/``key_file`` when the server asks for a client certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx
