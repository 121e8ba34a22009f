"""A TCP transport on asyncio streams: length-prefixed frames of ``wire``-encoded messages.

Every message is signed and the core checks it, so the transport is not what
makes a message trustworthy. Connections are still *authenticated* (give
``keys`` and ``peer_keys``): each connection starts with a mutual
challenge-response handshake in which both ends sign a transcript of both
node ids and two fresh nonces with their validator keys,

    client -> server   HELLO    client id, client nonce
    server -> client   WELCOME  server id, server nonce, server signature
    client -> server   AUTH     client signature

so a node knows which validator each connection belongs to. That identity is
what per-peer rate limits are keyed by (``ingress.py``): a peer cannot spend
another's budget by claiming its name, and a process without a member's key
cannot hold a connection at all (counted in ``auth_failures``). Without keys
the transport runs unauthenticated (tests, tools): a connection's peer is
whatever name it claims.

A peer cannot make a node block or grow without bound either: each outgoing
link has a bounded queue (the oldest frame is dropped when it is full), frames
above ``max_frame`` close the connection, a handshake must finish within
``handshake_timeout``, and a frame that does not decode is counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from . import wire
from ._codec import Reader, Writer
from .crypto import Verifier
from .errors import WireError
from .messages import Message, Signer

__all__ = ["TcpTransport"]

_LEN = struct.Struct(">I")
_HELLO = b"CVG-HELLO:"
"""Unauthenticated greeting: the claimed node id follows."""
_AUTH_HELLO = b"CVG-HELLO2"
_WELCOME = b"CVG-WELCOME"
_AUTH = b"CVG-AUTH"
_AUTH_DOMAIN = b"convergent/consensus/peer-auth/v1"
_NONCE = 32


class AuthError(Exception):
    """A handshake that did not prove the claimed identity (the connection is closed)."""


def _transcript(role: bytes, client: str, server: str, nonce_c: bytes, nonce_s: bytes) -> bytes:
    return (Writer().blob(_AUTH_DOMAIN).blob(role).text(client).text(server).blob(nonce_c)
            .blob(nonce_s).getvalue())


async def _read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if size > limit:
        raise AuthError(f"frame of {size} bytes during the handshake")
    return await reader.readexactly(size)


def _frame(data: bytes) -> bytes:
    return _LEN.pack(len(data)) + data


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
                reader, writer = await asyncio.open_connection(*self.address)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            try:
                await self.transport._greet(reader, writer, self.peer)
                while not self.transport.closing:
                    while self.queue:
                        frame = self.queue.popleft()
                        writer.write(_LEN.pack(len(frame)) + frame)
                    await writer.drain()
                    self.wakeup.clear()
                    if not self.queue:
                        await self.wakeup.wait()
            except (OSError, ConnectionError, asyncio.IncompleteReadError, AuthError, WireError,
                    TimeoutError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()


class TcpTransport:
    """Listens on ``host:port`` (0: any free port) and sends to the peers it is given."""

    def __init__(self, node_id: str, host: str = "127.0.0.1", port: int = 0, *,
                 on_message: Callable[[Message, str], None] | None = None,
                 max_frame: int = 4 * wire.MAX_VALUE_BYTES, queue_limit: int = 4096,
                 keys: Signer | None = None, peer_keys: Mapping[str, bytes] | None = None,
                 handshake_timeout: float = 5.0) -> None:
        if (keys is None) != (peer_keys is None):
            raise WireError("keys and peer_keys go together (both for authenticated "
                            "connections, neither for unauthenticated ones)")
        if keys is not None and keys.node_id != node_id:
            raise WireError(f"keys belong to {keys.node_id!r}, not {node_id!r}")
        self.node_id = node_id
        self.keys = keys
        self.peer_keys = dict(peer_keys or {})
        self.authenticated = keys is not None
        self.handshake_timeout = handshake_timeout
        self.auth_failures = 0
        """Connections closed because the handshake did not prove a member's identity."""
        self._verifier = Verifier()
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

    # -------------------------------------------------------------- handshake

    async def _greet(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     peer: str) -> None:
        """Client side: prove who we are to ``peer`` and check that it is ``peer``."""
        if self.keys is None:
            writer.write(_frame(_HELLO + self.node_id.encode()))
            return
        nonce_c = os.urandom(_NONCE)
        writer.write(_frame(_AUTH_HELLO + Writer().text(self.node_id).blob(nonce_c).getvalue()))
        await writer.drain()
        try:
            frame = await asyncio.wait_for(_read_frame(reader, 4096), self.handshake_timeout)
            if not frame.startswith(_WELCOME):
                raise AuthError("no WELCOME")
            r = Reader(frame[len(_WELCOME):])
            server, nonce_s, sig = r.text(), r.blob(_NONCE), r.blob(64)
            r.done()
            key = self.peer_keys.get(peer)
            if server != peer or key is None or len(nonce_s) != _NONCE or not (
                    self._verifier.verify(key, _transcript(b"server", self.node_id, server,
                                                           nonce_c, nonce_s), sig)):
                raise AuthError(f"{peer} did not prove its identity")
        except (AuthError, WireError):
            self.auth_failures += 1
            raise
        auth = self.keys.sign(_transcript(b"client", self.node_id, peer, nonce_c, nonce_s))
        writer.write(_frame(_AUTH + auth))

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> str | None:
        """Server side: the authenticated id of the peer on this connection (None: refused)."""
        try:
            frame = await _read_frame(reader, 4096)
            if self.keys is None:
                if not frame.startswith(_HELLO):
                    raise AuthError("no HELLO")
                return frame[len(_HELLO):].decode("utf-8", "replace") or "?"
            if not frame.startswith(_AUTH_HELLO):
                raise AuthError("no authenticated HELLO")
            r = Reader(frame[len(_AUTH_HELLO):])
            client, nonce_c = r.text(), r.blob(_NONCE)
            r.done()
            key = self.peer_keys.get(client)
            if key is None or len(nonce_c) != _NONCE:
                raise AuthError(f"{client!r} is not a known peer")
            nonce_s = os.urandom(_NONCE)
            sig = self.keys.sign(_transcript(b"server", client, self.node_id, nonce_c, nonce_s))
            writer.write(_frame(_WELCOME + Writer().text(self.node_id).blob(nonce_s).blob(sig)
                                .getvalue()))
            await writer.drain()
            frame = await _read_frame(reader, 4096)
            if not frame.startswith(_AUTH) or not self._verifier.verify(
                    key, _transcript(b"client", client, self.node_id, nonce_c, nonce_s),
                    frame[len(_AUTH):]):
                raise AuthError(f"{client!r} did not prove its identity")
            return client
        except (AuthError, WireError, UnicodeDecodeError):
            self.auth_failures += 1
            return None

    # -------------------------------------------------------------- serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            try:
                peer = await asyncio.wait_for(self._accept(reader, writer),
                                              self.handshake_timeout)
            except TimeoutError:
                self.auth_failures += 1
                return
            if peer is None:
                return
            while not self.closing:
                header = await reader.readexactly(_LEN.size)
                (size,) = _LEN.unpack(header)
                if size > self.max_frame:
                    self.bad_frames += 1
                    return
                frame = await reader.readexactly(size)
                try:
                    message = wire.decode(frame)
                except WireError:
                    self.bad_frames += 1
                    continue
                self.received += 1
                if self.on_message is not None:
                    self.on_message(message, peer)
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
