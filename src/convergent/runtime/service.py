"""A replica as a running service over NATS: group commit, anti-entropy,
request handlers for ``status`` and ``emit``, optional compaction and a
status file. This is what ``convergent replica run`` runs.

Request subjects (core NATS request/reply, JSON bodies)::

    cv.M.status.<replica>   -> the replica's status
    cv.M.emit.<replica>     {"event": "deposit", "meta": {...}}
                            -> {"ok": true, "id": "r1:42", "state": {...}}
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

from .._files import atomic_write
from ..errors import ConvergentError
from ._tasks import cancel_and_wait
from .errors import ReplicaError
from .replica import Replica
from .transports.nats import NatsTransport

__all__ = ["ReplicaService"]

log = logging.getLogger("convergent.runtime")


class ReplicaService:
    """Run ``replica`` over ``transport`` on the current asyncio loop.

    Args:
        flush_interval: seconds between group commits (one store transaction
            and one published batch for everything accepted meanwhile).
        compact_interval: seconds between compactions (needs ``peers`` on the
            replica); None: never.
        status_file: a path rewritten (atomically) with the status JSON every
            ``status_interval`` seconds.

    The replica should be created with ``autoflush=False``: the service
    commits every ``flush_interval``. Store I/O never blocks the loop for a
    store that declares itself ``blocking`` (PostgreSQL): commits,
    compactions and snapshot installs run the store call in a worker thread
    (``Replica.aflush``/``acompact``/``ainstall_snapshot``), one at a time
    and in order; such a replica must be created with ``autoflush=False``.
    """

    def __init__(self, replica: Replica, transport: NatsTransport, *,
                 flush_interval: float = 0.02, compact_interval: float | None = None,
                 status_file: str | None = None, status_interval: float = 0.5) -> None:
        if replica.transport is not transport:
            raise ReplicaError("the replica must be created with transport=<this transport>")
        if getattr(replica.store, "blocking", False) and replica._autoflush:
            raise ReplicaError(f"replica {replica.id!r} has a blocking store "
                               f"({type(replica.store).__name__}) and autoflush=True: every "
                               "emit would commit on the event loop; create it with "
                               "autoflush=False (the service commits in the background)")
        self.replica = replica
        self.transport = transport
        self.flush_interval = flush_interval
        self.compact_interval = compact_interval
        self.status_file = status_file
        self.status_interval = status_interval
        self.started = time.time()
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs: list[Any] = []
        self._closed = False
        self.generated = 0
        #: failed group commits (each retried on the next round)
        self.flush_errors = 0

    async def start(self) -> None:
        """Connect the transport and start the periodic tasks."""
        await self.transport.start()
        nc, t, r = self.transport.nc, self.transport, self.replica
        self._subs.append(await nc.subscribe(t.subject("status", r.id), cb=self._on_status))
        self._subs.append(await nc.subscribe(t.subject("emit", r.id), cb=self._on_emit))
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._flusher(), name="convergent-flush"))
        if self.compact_interval:
            self._tasks.append(loop.create_task(self._compactor(), name="convergent-compact"))
        if self.status_file:
            self._tasks.append(loop.create_task(self._status_writer(), name="convergent-status"))

    async def __aenter__(self) -> ReplicaService:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def status(self) -> dict[str, Any]:
        s = self.replica.status()
        s["transport"] = self.transport.info()
        s["generated"] = self.generated
        s["flush_errors"] = self.flush_errors
        s["uptime"] = round(time.time() - self.started, 3)
        return s

    def write_status(self) -> None:
        if not self.status_file:
            return
        # replaced whole (never half-written), not synced: it is rewritten often
        atomic_write(self.status_file, json.dumps(self.status()).encode(), fsync=False)

    # ------------------------------------------------------------ tasks

    async def _flusher(self) -> None:
        """Group commit. Any failure (a store error, a subscriber raising, a
        bug) is counted, logged and retried next round (the events stay
        queued): the flush task never dies."""
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.replica.aflush()
            except ConvergentError as exc:  # retried next round; the events stay queued
                self.flush_errors += 1
                self.transport._note(f"flush: {exc}")
            except Exception as exc:
                self.flush_errors += 1
                self.transport._note(f"flush: {exc!r}")
                log.exception("replica %s: flush failed", self.replica.id)

    async def _compactor(self) -> None:
        assert self.compact_interval
        while True:
            await asyncio.sleep(self.compact_interval)
            try:
                await self.replica.acompact()
            except Exception as exc:
                self.transport._note(f"compact: {exc!r}")

    async def _status_writer(self) -> None:
        while True:
            try:
                self.write_status()
            except (OSError, TypeError, ValueError) as exc:
                self.transport._note(f"status file: {exc}")
            await asyncio.sleep(self.status_interval)

    async def _on_status(self, msg: Any) -> None:
        await msg.respond(json.dumps(self.status()).encode())

    async def _on_emit(self, msg: Any) -> None:
        try:
            req = json.loads(msg.data)
            if not isinstance(req, dict) or not isinstance(req.get("event"), str):
                raise ReplicaError('an emit request is {"event": NAME, "meta": {...}}')
            env = self.replica.emit(req["event"], req.get("meta"))
            await self.replica.aflush()
            reply = {"ok": True, "id": env.id, "hlc": env.hlc,
                     "state": self.replica.machine.decode(self.replica.state)}
        except (ConvergentError, ValueError) as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:  # a request never kills the handler
            log.exception("replica %s: emit request failed", self.replica.id)
            reply = {"ok": False, "error": repr(exc)}
        await msg.respond(json.dumps(reply).encode())

    async def generate(self, count: int, *, rate: float = 1000.0, seed: int = 0,
                       events: list[str] | None = None) -> int:
        """Emit ``count`` random events (seeded) at about ``rate`` per second:
        load for demos, benchmarks and tests. Returns the number emitted."""
        rng = random.Random(seed)
        names = list(events or self.replica.machine.events)
        tick = 0.01
        per_tick = max(1, round(rate * tick))
        start = time.monotonic()
        while self.generated < count and not self._closed:
            for _ in range(min(per_tick, count - self.generated)):
                self.replica.emit(rng.choice(names))
                self.generated += 1
            due = start + self.generated / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        return self.generated

    async def aclose(self, *, drain_timeout: float = 5.0) -> None:
        """Commit what is queued, publish it (up to ``drain_timeout``), stop,
        close the transport and the replica."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._tasks)
        try:
            await self.replica.aflush()
            await self.transport.drain(drain_timeout)
        finally:
            try:
                self.write_status()
            except OSError:
                pass
            await self.transport.aclose()
            self.replica.close()
