"""The NATS transport against hostile messages and a misbehaving server
(issue 12: bugs 3, 5, 8; signatures; NATS authentication)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convergent.runtime import Keyring, MemoryStore, Replica, TransportError, encode_batch
from convergent.runtime.envelope import Envelope

from .helpers import machine
from .servers import NatsServer, find_nats

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]
SPEC = "tests/runtime/machines.py:account"


async def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _nats_server(extra: tuple[str, ...] = ()) -> Iterator[NatsServer]:
    binary = find_nats()
    if binary is None:
        pytest.skip("nats-server not found (Debian: apt-get install nats-server)")
    with tempfile.TemporaryDirectory(prefix="cv-nats-") as d:
        server = NatsServer(binary, d, extra)
        server.start()
        try:
            yield server
        finally:
            server.close()


async def _service(url: str, rid: str, **options: Any) -> Any:
    from convergent.runtime import NatsTransport, ReplicaService
    store = options.pop("store", None) or MemoryStore()
    replica_options = {k: options.pop(k) for k in ("peers", "clock") if k in options}
    t = NatsTransport(url, sync_interval=options.pop("sync_interval", 0.3), **options)
    r = Replica(machine("account"), id=rid, store=store, transport=t, autoflush=False,
                **replica_options)
    s = ReplicaService(r, t)
    await s.start()
    return s


# ---------------------------------------------------------------- bug 3

def test_a_nesting_bomb_on_the_stream_is_skipped_and_the_consumer_lives(
        nats_server: NatsServer) -> None:
    m = machine("account")

    async def main() -> None:
        import nats
        a, b = await _service(nats_server.url, "a"), await _service(nats_server.url, "b")
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        bomb = b"[" * 500_000
        await js.publish("cv.account.events.evil", bomb)
        await js.publish("cv.account.events.evil", b'{"format":' * 50_000)
        await nc.publish("cv.account.direct.b", bomb)
        await nc.publish("cv.account.sync", bomb)
        await nc.flush()
        await _wait(lambda: b.transport.counters["refused"] >= 4, 10, "four refusals")
        for k in range(20):
            a.replica.emit(m.events[k % 5])
        await _wait(lambda: b.replica.accepted == 20, 10, "the events after the bomb")
        assert all(not t.done() for t in b.transport._tasks)
        assert b.transport.counters["task_restarts"] == 0
        await nc.close()
        await a.aclose()
        await b.aclose()

    asyncio.run(main())


def test_a_failing_consumer_task_is_restarted(nats_server: NatsServer) -> None:
    m = machine("account")

    async def main() -> None:
        a, b = await _service(nats_server.url, "a"), await _service(nats_server.url, "b")
        real = b.transport._accept
        calls = [0]

        def flaky(*args: Any, **kw: Any) -> Any:
            calls[0] += 1
            if calls[0] == 1:
                raise RuntimeError("injected bug")
            return real(*args, **kw)

        b.transport._accept = flaky
        for k in range(10):
            a.replica.emit(m.events[k % 5])
        await _wait(lambda: b.replica.accepted == 10, 15, "delivery after the restart")
        assert b.transport.counters["task_restarts"] >= 1
        assert any("injected bug" in msg for _, msg in b.transport.errors)
        await a.aclose()
        await b.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------- bug 5

class SilentServer:
    """Speaks just enough NATS to accept a connection (INFO, PONG), then
    never answers anything else: a server that stopped answering."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        info = {"server_id": "silent", "version": "2.10.0", "go": "go1", "host": "127.0.0.1",
                "port": self.port, "max_payload": 1048576, "proto": 1, "headers": True}
        conn.sendall(b"INFO " + json.dumps(info).encode() + b"\r\n")
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                if line.startswith(b"PING"):
                    conn.sendall(b"PONG\r\n")

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def test_a_server_that_stops_answering_after_connect_fails_start_with_a_message() -> None:
    from convergent.runtime import NatsTransport
    server = SilentServer()
    try:
        async def main() -> None:
            t = NatsTransport(server.url, connect_timeout=1.5)
            Replica(machine("account"), id="a", transport=t, autoflush=False)
            t0 = time.monotonic()
            with pytest.raises(TransportError, match="JetStream did not answer within 1.5 s"):
                await t.start()
            assert time.monotonic() - t0 < 8
            assert not t.connected

        asyncio.run(main())
        p = subprocess.run([sys.executable, "-m", "convergent", "replica", "run", SPEC, "--id",
                            "r1", "--store", "memory://", "--nats", server.url,
                            "--connect-timeout", "1.5"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2, p.stderr
        assert "JetStream did not answer" in p.stderr and "Traceback" not in p.stderr
    finally:
        server.close()


# ---------------------------------------------------------------- bug 8

def test_the_transport_syncs_at_start_not_one_interval_later(
        nats_server: NatsServer, tmp_path: Path) -> None:
    from convergent.runtime import SQLiteStore
    m = machine("account")
    with Replica(m, id="a", store=SQLiteStore(tmp_path / "a.db")) as offline:
        for k in range(5):                        # never published: the stream lacks them
            offline.emit(m.events[k])

    async def main() -> None:
        a = await _service(nats_server.url, "a", store=SQLiteStore(tmp_path / "a.db"),
                           sync_interval=60, inflight_grace=0.0)
        b = await _service(nats_server.url, "b", sync_interval=60, inflight_grace=0.0)
        await _wait(lambda: b.replica.accepted == 5, 10, "the first anti-entropy round")
        await a.aclose()
        await b.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------- signatures

def test_signed_replicas_converge_and_refuse_outsiders(nats_server: NatsServer) -> None:
    from convergent.runtime import NatsTransport
    m = machine("account")
    keys = {i: Keyring.generate(i) for i in "abc"}
    public = {i: k.public_key for i, k in keys.items()}
    keys = {i: k.with_peers(public) for i, k in keys.items()}
    mallory = Keyring.generate("m").with_peers(public)

    async def main() -> None:
        import nats
        svcs = {i: await _service(nats_server.url, i, keys=keys[i], peers="abc")
                for i in "abc"}
        for k in range(30):
            svcs["abc"[k % 3]].replica.emit(m.events[k % 5])
        await _wait(lambda: all(s.replica.accepted == 30 for s in svcs.values()), 15, "30 each")
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        policy = m.policy_digest
        fake = Envelope("a", 99, 1, "freeze", (), None, policy)
        mine = Envelope("m", 1, 1, "freeze", (), None, policy)
        # unsigned; signed by an outsider; signed by a member for another origin
        await js.publish("cv.account.events.a", encode_batch(m.name, policy, [fake]))
        await js.publish("cv.account.events.m", mallory.seal(encode_batch(m.name, policy,
                                                                          [mine])))
        await js.publish("cv.account.events.b", keys["b"].seal(
            encode_batch(m.name, policy, [Envelope("a", 31, 1, "freeze", (), None, policy)])))
        # a forged snapshot offer and sync request on the direct and sync subjects
        snap = {"format": "convergent-snapshot-offer/1", "machine": m.name, "policy": policy,
                "snapshot": {"format": "convergent-snapshot/1", "replica": "m",
                             "machine": m.name, "policy": policy, "state": {"balance": 20},
                             "digest": "x", "version": {"m": 10**6}, "events": 10**6,
                             "horizon": 1, "heads": [], "clocks": {}, "hlc": 1}}
        await nc.publish("cv.account.direct.c", mallory.seal(json.dumps(snap).encode()))
        await nc.publish("cv.account.sync", keys["b"].seal(json.dumps(
            {"from": "a", "version": {}, "committed": {"a": 0}, "clock": 2**60,
             "policy": policy}).encode()))
        await nc.flush()
        # (a replica does not read its own subject: a skips events.a, b events.b)
        # (c also refuses the forged offer on its direct subject: >= 4, once
        # every message has arrived)
        await _wait(lambda: all(s.transport.counters["unsigned_refused"] >= 2
                                for s in svcs.values())
                    and svcs["c"].transport.counters["unsigned_refused"] >= 4, 10,
                    "the refusals")
        await asyncio.sleep(0.3)
        for s in svcs.values():
            assert s.replica.accepted == 30 and s.replica.version == {"a": 10, "b": 10, "c": 10}
            assert s.replica.stats.installed == 0 and s.replica._peer_views.get("a", (0, 0))[1] \
                < 2**60
        states = {s.replica.state for s in svcs.values()}
        assert len(states) == 1
        # a replica without keys cannot read signed messages, and says so
        plain = NatsTransport(nats_server.url, sync_interval=0.3)
        d = Replica(m, id="d", store=MemoryStore(), transport=plain, autoflush=False)
        await plain.start()
        await asyncio.sleep(1.0)
        assert d.accepted == 0
        await plain.aclose()
        d.close()
        await nc.close()
        for s in svcs.values():
            await s.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------- NATS authentication

@pytest.mark.parametrize("server_args, good, bad", [
    (("--user", "cv", "--pass", "s3cret"), {"user": "cv", "password": "s3cret"},
     {"user": "cv", "password": "wrong"}),
    (("--auth", "t0ken"), {"token": "t0ken"}, {"token": "nope"}),
])
def test_nats_authentication_options_reach_the_server(
        server_args: tuple[str, ...], good: dict[str, str], bad: dict[str, str]) -> None:
    from convergent.runtime import NatsTransport
    for server in _nats_server(server_args):
        async def main() -> None:
            t = NatsTransport(server.url, connect_timeout=1.0, **bad)
            Replica(machine("account"), id="a", transport=t, autoflush=False)
            with pytest.raises(TransportError, match="cannot connect"):
                await t.start()
            s = await _service(server.url, "b", **good)
            s.replica.emit("deposit")
            await _wait(lambda: s.transport.counters["published"] == 1, 10, "a publish")
            await s.aclose()

        asyncio.run(main())


def _self_signed(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made here (no files in
    the repository, nothing from outside)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key: Any, issuer: Any, issuer_key: Any, ca: bool) -> Any:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cv test CA")])
    ca = cert("cv test CA", ca_key, ca_name, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    srv = cert("127.0.0.1", key, ca_name, ca_key, False)
    paths = d / "ca.pem", d / "server.pem", d / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_tls_options_reach_the_server(tmp_path: Path) -> None:
    from convergent.runtime.transports.nats import tls_context
    ca, cert, key = _self_signed(tmp_path)
    for server in _nats_server(("--tls", "--tlscert", str(cert), "--tlskey", str(key))):
        async def main() -> None:
            from convergent.runtime import NatsTransport
            t = NatsTransport(server.url, connect_timeout=1.0)   # no TLS: refused
            Replica(machine("account"), id="a", transport=t, autoflush=False)
            with pytest.raises(TransportError, match="cannot connect"):
                await t.start()
            s = await _service(server.url, "b", tls=tls_context(ca_file=str(ca)))
            s.replica.emit("deposit")
            await _wait(lambda: s.transport.counters["published"] == 1, 10, "a publish")
            await s.aclose()

        asyncio.run(main())
