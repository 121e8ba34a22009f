"""Projections over NATS (``pip install 'convergent[replica]'``).

Subjects, for a federation ``F`` (prefix ``cvf`` by default)::

    cvf.F.proj.<morphism>   core NATS: projections of one morphism, from any
                            replica of its source to every replica of its
                            target

Core NATS may lose a message; a ``NatsProjectionLink`` therefore sends its
latest projections again every ``republish_interval`` seconds (a target
counts the repeats as duplicates and keeps nothing twice), and at once
whenever they change. Every message is bounded (``MAX_PROJECTION_BYTES``) and
checked before it touches the service (``FederatedReplica.receive_projection``);
with a ``Keyring`` (``keys=``) every message is signed by its publisher and
only messages signed by a configured peer *whose id is the projection's
origin* are opened. The background task is supervised: a failure is logged,
counted (``counters["task_restarts"]``) and the task restarted after a
backoff; it never dies silently.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from ..runtime.signing import Keyring, SignatureError
from .errors import FederationError
from .replicas import MAX_PROJECTION_BYTES, FederatedReplica, Projection, ProjectionError

try:
    import nats
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("projections over NATS need nats-py: pip install nats-py "
                      "(or 'convergent[replica]')", name=exc.name) from exc

__all__ = ["NatsProjectionLink"]

log = logging.getLogger("convergent.federation")


class NatsProjectionLink:
    """Publish one ``FederatedReplica``'s projections and feed it its
    sources' (see the module docstring).

    Args:
        replica: the service's ``FederatedReplica`` (the link attaches itself).
        servers: a NATS URL or a list of them.
        prefix: the first subject token.
        republish_interval: seconds between re-sends of the latest projections.
        keys: sign what is sent, open only what a configured peer signed.
        connect_timeout: seconds to keep trying to connect at start.

    Use: ``link = NatsProjectionLink(fr, url); await link.start(); ...;
    await link.aclose()``.
    """

    def __init__(self, replica: FederatedReplica, servers: str | list[str] = 
                 "nats://127.0.0.1:4222", *, prefix: str = "cvf",
                 republish_interval: float = 1.0, keys: Keyring | None = None,
                 connect_timeout: float = 10.0) -> None:
        if not isinstance(replica, FederatedReplica):
            raise FederationError(f"replica={replica!r} (expected a FederatedReplica)")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", prefix):
            raise FederationError(f"prefix={prefix!r} (expected one subject token)")
        if not republish_interval > 0:
            raise FederationError(f"republish_interval={republish_interval!r} (expected > 0)")
        if keys is not None and not isinstance(keys, Keyring):
            raise FederationError(f"keys={keys!r} (expected a Keyring)")
        self.replica = replica
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.prefix = prefix
        self.republish_interval = republish_interval
        self.keys = keys
        self.connect_timeout = connect_timeout
        self.nc: Any = None
        self.counters: dict[str, int] = {"sent": 0, "received": 0, "refused": 0,
                                         "task_restarts": 0, "send_errors": 0}
        #: recent problems: (unix time, message)
        self.errors: deque[tuple[float, str]] = deque(maxlen=100)
        self._latest: dict[str, Projection] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subs: list[Any] = []
        self._closed = False

    def subject(self, morphism: str) -> str:
        return f"{self.prefix}.{self.replica.machine.spec.name}.proj.{morphism}"

    async def start(self) -> None:
        """Connect, subscribe to the incoming morphisms, start publishing."""
        async def on_error(exc: Exception) -> None:
            self._note(f"nats: {exc!r}")

        self.nc = await nats.connect(
            servers=self.servers, connect_timeout=self.connect_timeout,
            max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=on_error,
            allow_reconnect=True)
        for m in self.replica.incoming:
            self._subs.append(await self.nc.subscribe(self.subject(m.name), cb=self._on_msg))
        self._task = asyncio.get_running_loop().create_task(self._supervise())
        self.replica.attach(self)

    def publish(self, projections: Sequence[Projection]) -> None:
        """Queue the latest projections (sent by the background task)."""
        for p in projections:
            self._latest[p.morphism] = p
        self._wake.set()

    async def _supervise(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                await self._run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["task_restarts"] += 1
                self._note(f"publisher failed, restarting in {backoff:.2f}s: {exc!r}",
                           logging.ERROR)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _run(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), self.republish_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            self.replica.refresh()
            if not self._latest and self.replica.outgoing:
                self._latest = {p.morphism: p for p in self.replica.projections()}
            for p in list(self._latest.values()):
                body = p.to_wire()
                data = self.keys.seal(body) if self.keys is not None else body
                try:
                    await self.nc.publish(self.subject(p.morphism), data)
                    self.counters["sent"] += 1
                except Exception as exc:    # disconnected: the next round sends again
                    self.counters["send_errors"] += 1
                    self._note(f"publish {p.morphism}: {exc!r}")

    async def _on_msg(self, msg: Any) -> None:
        """Never raises: a bad message is counted and noted, nothing more."""
        self.counters["received"] += 1
        data: bytes = msg.data
        try:
            if len(data) > MAX_PROJECTION_BYTES + 256:
                raise ProjectionError(f"message of {len(data)} bytes")
            signer = None
            if self.keys is not None:
                signer, data = self.keys.open(data)
            p = Projection.from_wire(data)
            if signer is not None and signer != p.origin:
                raise ProjectionError(f"projection of origin {p.origin!r} signed by "
                                      f"{signer!r}")
            self.replica.receive_projection(p)
        except (ProjectionError, SignatureError) as exc:
            self.counters["refused"] += 1
            self._note(f"refused a projection on {msg.subject}: {exc}", logging.WARNING)
        except Exception as exc:   # a bug, not input: keep the subscription alive
            self.counters["refused"] += 1
            self._note(f"handling a projection on {msg.subject} failed: {exc!r}",
                       logging.ERROR)

    def _note(self, message: str, level: int = logging.DEBUG) -> None:
        self.errors.append((time.time(), message))
        log.log(level, "%s: %s", self.replica.replica.id, message)

    async def aclose(self) -> None:
        """Stop publishing, unsubscribe and disconnect (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.nc is not None:
            try:
                await self.nc.close()
            except Exception:
                pass
