"""Start the inspector: check the address, verify the machines, run uvicorn.

The inspector binds to loopback unless ``allow_remote`` says otherwise: it
shows a machine's whole behaviour to whoever can reach it, and it has no
login. The Host header check (``security.py``) only accepts the names of
the address it is bound to.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ConvergentError
from .app import LOOPBACK_HOSTS, create_app
from .inspection import Inspection

__all__ = ["allowed_hosts", "bind", "check_host", "run", "serving"]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless ``allow_remote``."""
    if not host:
        raise ConvergentError("--host is empty")
    if not _is_loopback(host) and not allow_remote:
        raise ConvergentError(
            f"--host {host} is not a loopback address: the inspector has no login and "
            "shows every state of the machine to whoever reaches it; pass --allow-remote "
            "to serve it anyway")


def allowed_hosts(host: str) -> list[str]:
    """The Host header values to accept for a server bound to ``host``."""
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::"):
        return ["*"]  # any interface: no single name to check against
    return sorted({*LOOPBACK_HOSTS, bare.lower()}) if _is_loopback(host) else [bare.lower()]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    bare = host.strip("[]")
    if bare.lower() == "localhost":
        bare = "127.0.0.1"
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(bare).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    if not 0 <= port <= 65535:
        raise ConvergentError(f"--port {port} (expected 0..65535)")
    try:
        return socket.create_server((bare, port), family=family, backlog=64)
    except OSError as exc:
        raise ConvergentError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def url_of(sock: socket.socket) -> str:
    addr = sock.getsockname()
    host = f"[{addr[0]}]" if sock.family == socket.AF_INET6 else addr[0]
    return f"http://{host}:{addr[1]}/"


def server_for(inspections: Sequence[Inspection], host: str, *,
               replica_status: Sequence[str] = ()) -> Any:
    """A uvicorn ``Server`` for the app (not started)."""
    import uvicorn
    app = create_app(inspections, allowed_hosts=allowed_hosts(host),
                     replica_status=replica_status)
    # a local tool: a bounded number of connections, short keep-alives
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False, lifespan="off", limit_concurrency=64,
                            timeout_keep_alive=5)
    return uvicorn.Server(config)


def run(inspections: Sequence[Inspection], *, host: str, port: int,
        allow_remote: bool = False, replica_status: Sequence[str] = (),
        announce: Any = print) -> None:
    """Serve until interrupted."""
    check_host(host, allow_remote)
    sock = bind(host, port)
    server = server_for(inspections, host, replica_status=replica_status)
    announce(f"convergent inspector on {url_of(sock)} "
             f"({len(inspections)} machine{'s' if len(inspections) != 1 else ''}; "
             "Ctrl-C stops it)")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def serving(inspections: Sequence[Inspection], *,
            replica_status: Sequence[str] = ()) -> Iterator[str]:
    """Serve ``inspections`` from a background thread on 127.0.0.1 and a free
    port (a notebook, a test, a screenshot script); yields the base URL and
    stops the server when the block ends."""
    sock = bind("127.0.0.1", 0)
    server = server_for(inspections, "127.0.0.1", replica_status=replica_status)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise ConvergentError("the inspector did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
