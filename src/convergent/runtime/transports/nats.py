"""NATS JetStream transport (``pip install 'convergent[replica]'``, server:
Debian's ``nats-server`` run with ``-js``).

Subjects, for a machine named ``M`` (prefix ``cv`` by default)::

    cv.M.events.<origin>   JetStream stream CV_M (file storage): committed
                           events, a batch per message; every replica reads
                           the whole stream with its own durable pull consumer
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
applied. Everything runs on the caller's asyncio loop; ``broadcast`` only
queues. Commits go through ``Replica.aflush`` (a worker thread for a
``blocking`` store such as PostgreSQL). Envelopes a full pending buffer turns
away are counted (``backpressure``) and asked for again by an early
anti-entropy round.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._tasks import cancel_and_wait
from ..envelope import Envelope, decode_batch, encode_batch
from ..errors import (
    BackpressureError,
    PolicyMismatchError,
    ProtocolError,
    ReplicaError,
    StoreError,
    TransportError,
)
from ..model import Snapshot
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

__all__ = ["NatsTransport"]

SNAPSHOT_FORMAT = "convergent-snapshot-offer/1"


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

    Use: ``t = NatsTransport(url); r = Replica(m, id=..., transport=t,
    autoflush=False); await t.start(); ...; await t.aclose()`` (or let a
    ``ReplicaService`` do it).
    """

    def __init__(self, servers: str | list[str] = "nats://127.0.0.1:4222", *,
                 prefix: str = "cv", storage: str = "file", sync_interval: float = 2.0,
                 fetch_batch: int = 256, max_events: int = 1000,
                 connect_timeout: float = 10.0) -> None:
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
        self.counters = {"published": 0, "publish_retries": 0, "fetched": 0,
                         "sync_requests": 0, "sync_sent": 0, "direct_received": 0,
                         "refused": 0, "reconnects": 0, "backpressure": 0,
                         "snapshots_sent": 0, "snapshots_installed": 0}

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
        while True:
            try:
                self.nc = await nats.connect(
                    self.servers, name=f"convergent-{replica.id}", error_cb=on_error,
                    disconnected_cb=on_disconnect, reconnected_cb=on_reconnect,
                    allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.25,
                    connect_timeout=2, ping_interval=5, max_outstanding_pings=2)
                break
            except Exception as exc:  # nats raises several unrelated types here
                if time.monotonic() > deadline:
                    raise TransportError(f"cannot connect to NATS at {', '.join(self.servers)}: "
                                         f"{exc!r}") from None
                await asyncio.sleep(0.25)
        self.connected = True
        self.js = self.nc.jetstream(timeout=5)
        await self._setup()
        self._subs.append(await self.nc.subscribe(self.subject("sync"), cb=self._on_sync))
        self._subs.append(await self.nc.subscribe(self.subject("direct", replica.id),
                                                  cb=self._on_direct,
                                                  pending_msgs_limit=100_000,
                                                  pending_bytes_limit=512 * 1024 * 1024))
        await self.nc.flush()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._consume(), name="convergent-consume"),
                       loop.create_task(self._publish(), name="convergent-publish"),
                       loop.create_task(self._anti_entropy(), name="convergent-sync")]
        self._wake.set()

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

    def _note(self, message: str) -> None:
        self.errors.append((time.time(), message))

    # ------------------------------------------------------------ Transport

    def broadcast(self, envelopes: Sequence[Envelope]) -> None:
        self._outbox.extend(envelopes)
        self._wake.set()

    @property
    def outbox(self) -> int:
        """Committed local events not yet published."""
        return len(self._outbox)

    # ------------------------------------------------------------ tasks

    def _accept(self, data: bytes, source: str) -> list[Envelope]:
        """Decode a batch, refusing another machine or policy loudly."""
        replica = self._r()
        try:
            machine, policy, envs = decode_batch(data)
        except ProtocolError as exc:
            self.counters["refused"] += 1
            self._note(f"refused a malformed {source} message: {exc}")
            return []
        if machine != replica.machine.name or policy != replica.machine.policy_digest:
            self.counters["refused"] += 1
            self._note(str(PolicyMismatchError(
                f"refused {len(envs)} events from {source}: machine {machine!r} policy "
                f"{policy[:16]}..., this replica runs {replica.machine.name!r} policy "
                f"{replica.machine.policy_digest[:16]}...",
                expected=replica.machine.policy_digest, got=policy)))
            return []
        return envs

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
            for msg in msgs:
                envs.extend(self._accept(msg.data, f"stream {msg.subject}"))
            self.counters["fetched"] += len(msgs)
            try:
                await self._commit(envs)
            except StoreError as exc:  # not acknowledged: JetStream redelivers
                self._note(f"store: {exc}")
                await asyncio.sleep(0.5)
                continue
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
                data = encode_batch(machine, policy, chunk)
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
        replica = self._r()
        return json.dumps({"from": replica.id, "version": replica.version,
                           "clock": replica._hlc.last,
                           "policy": replica.machine.policy_digest}).encode()

    async def sync_now(self) -> None:
        """Ask every peer for what this replica lacks, now."""
        self._sync_now.set()
        await asyncio.sleep(0)

    async def _on_sync(self, msg: Any) -> None:
        replica = self.replica
        if replica is None or self._closing:
            return
        try:
            req = json.loads(msg.data)
            peer, version, clock = req["from"], req["version"], req["clock"]
            if req.get("policy") != replica.machine.policy_digest:
                if peer != replica.id:
                    self.counters["refused"] += 1
                    self._note(f"refused a sync request of {peer!r}: another machine policy")
                return
            if not isinstance(version, dict):
                raise TypeError("version is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            self._note(f"malformed sync request: {exc!r}")
            return
        if peer == replica.id:
            return
        self.counters["sync_requests"] += 1
        replica.observe_peer(peer, version, clock)
        subject = self.subject("direct", peer)
        machine, policy = replica.machine.name, replica.machine.policy_digest
        snap = replica.snapshot_for(version)
        if snap is not None:  # the peer lacks events compacted here: snapshot first
            try:
                await self.nc.publish(subject, json.dumps(
                    {"format": SNAPSHOT_FORMAT, "machine": machine, "policy": policy,
                     "snapshot": snap.to_dict()}, separators=(",", ":")).encode())
                self.counters["snapshots_sent"] += 1
            except Exception as exc:
                self._note(f"snapshot to {peer}: {exc!r}")
                return
            version = dict(version)
            for o, n in snap.version.items():
                version[o] = max(int(version.get(o, 0)), n)
        # events younger than one sync interval are most likely still in
        # flight through the stream: answer with them on a later round
        cutoff = (time.time_ns() // 1_000_000 - int(self.sync_interval * 1000)) << 16
        missing = [e for e in replica.missing_for(version) if e[4] <= cutoff]
        if not missing:
            return
        try:
            for i in range(0, len(missing), self.max_events):
                await self.nc.publish(subject, encode_batch(machine, policy,
                                                            missing[i:i + self.max_events]))
            self.counters["sync_sent"] += len(missing)
        except Exception as exc:
            self._note(f"sync answer to {peer}: {exc!r}")

    async def _on_direct(self, msg: Any) -> None:
        if self.replica is None or self._closing:
            return
        if msg.data.startswith(b'{"format":"' + SNAPSHOT_FORMAT.encode()):
            await self._on_snapshot(msg.data)
            return
        envs = self._accept(msg.data, "anti-entropy")
        self.counters["direct_received"] += len(envs)
        try:
            await self._commit(envs)
        except StoreError as exc:  # lost for now; the next sync round asks again
            self._note(f"store: {exc}")
        except Exception as exc:  # a subscriber failed after the commit
            self._note(f"subscriber: {exc!r}")

    async def _on_snapshot(self, data: bytes) -> None:
        """A peer's compacted snapshot: install it if it brings anything."""
        replica = self._r()
        try:
            msg = json.loads(data)
            snap = Snapshot.from_dict(msg["snapshot"])
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            self.counters["refused"] += 1
            self._note(f"refused a malformed snapshot message: {exc!r}")
            return
        try:
            if await replica.ainstall_snapshot(snap):
                self.counters["snapshots_installed"] += 1
        except (ReplicaError, StoreError) as exc:  # policy, or sets of peers that disagree
            self.counters["refused"] += 1
            self._note(f"refused the snapshot of {snap.replica!r}: {exc}")
        except Exception as exc:  # a subscriber failed after the commit
            self._note(f"subscriber: {exc!r}")

    def info(self) -> dict[str, Any]:
        return {"servers": self.servers, "connected": self.connected, "outbox": self.outbox,
                "stream": self.stream if self.replica else None, **self.counters,
                "errors": [m for _, m in list(self.errors)[-5:]]}
