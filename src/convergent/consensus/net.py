"""A TCP transport on asyncio streams: length-prefixed frames of ``wire``-encoded messages.

Connections are not authenticated and need not be: every message is signed
and the core checks it. What the transport must guarantee is that a peer
cannot make a node block or grow without bound, so each outgoing link has a
bounded queue (the oldest frame is dropped when it is full), frames above
``max_frame`` close the connection, and a frame that does not decode is
counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from . import wire
from .errors import WireError
from .messages import Message

__all__ = ["TcpTransport"]

_LEN = struct.Struct(">I")
_HELLO = b"CVG-HELLO:"


class _Link:
    """One outgoing connection with its bounded queue and writer task."""

    def __init__(self, transport: TcpTransport, peer: str, address: tuple[str, int]) -> None:
        self.transport = transport
        self.peer = peer
        self.address = address
        self.queue: deque[bytes] = deque(maxlen=transport.queue_limit)
        self.wakeup = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"link-{transport.node_id}-{peer}")

    def push(self, frame: bytes) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.transport.dropped += 1
        self.queue.append(frame)
        self.wakeup.set()

    async def _run(self) -> None:
        backoff = 0.05
        while not self.transport.closing:
            try:
                _, writer = await asyncio.open_connection(*self.address)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            try:
                hello = _HELLO + self.transport.node_id.encode()
                writer.write(_LEN.pack(len(hello)) + hello)
                while not self.transport.closing:
                    while self.queue:
                        frame = self.queue.popleft()
                        writer.write(_LEN.pack(len(frame)) + frame)
                    await writer.drain()
                    self.wakeup.clear()
                    if not self.queue:
                        await self.wakeup.wait()
            except (OSError, ConnectionError):
                await asyncio.sleep(backoff)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()


class TcpTransport:
    """Listens on ``host:port`` (0: any free port) and sends to the peers it is given."""

    def __init__(self, node_id: str, host: str = "127.0.0.1", port: int = 0, *,
                 on_message: Callable[[Message], None] | None = None,
                 max_frame: int = 4 * wire.MAX_VALUE_BYTES, queue_limit: int = 4096) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.on_message = on_message
        self.max_frame = max_frame
        self.queue_limit = queue_limit
        self.closing = False
        self.dropped = 0
        self.bad_frames = 0
        self.received = 0
        self._server: asyncio.Server | None = None
        self._links: dict[str, _Link] = {}
        self._peers: dict[str, tuple[str, int]] = {}
        self._readers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; returns the bound port."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def set_peers(self, peers: Mapping[str, tuple[str, int]]) -> None:
        for peer, address in peers.items():
            if peer != self.node_id:
                self._peers[peer] = address

    def send(self, message: Any, to: str | None) -> None:
        """Queue ``message`` for ``to`` (or every peer); never blocks."""
        frame = wire.encode(message)
        targets = [to] if to is not None else list(self._peers)
        for peer in targets:
            address = self._peers.get(peer)
            if address is None:
                continue
            link = self._links.get(peer)
            if link is None:
                link = self._links[peer] = _Link(self, peer, address)
            link.push(frame)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            first = True
            while not self.closing:
                header = await reader.readexactly(_LEN.size)
                (size,) = _LEN.unpack(header)
                if size > self.max_frame:
                    self.bad_frames += 1
                    return
                frame = await reader.readexactly(size)
                if first:
                    first = False
                    if frame.startswith(_HELLO):
                        continue
                try:
                    message = wire.decode(frame)
                except WireError:
                    self.bad_frames += 1
                    continue
                self.received += 1
                if self.on_message is not None:
                    self.on_message(message)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return
        finally:
            writer.close()
            if task is not None:
                self._readers.discard(task)

    async def close(self) -> None:
        self.closing = True
        for link in self._links.values():
            link.wakeup.set()
            link.task.cancel()
        for link in self._links.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await link.task
        for task in list(self._readers):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
