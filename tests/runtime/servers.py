"""Real servers for the tests, started on loopback with free ports in temporary
directories: ``nats-server -js`` and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# ---------------------------------------------------------------- NATS


def find_nats() -> str | None:
    for cand in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class NatsServer:
    """``nats-server -js`` on 127.0.0.1 with file storage in ``store_dir``."""

    def __init__(self, binary: str, store_dir: str, extra: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.store_dir = store_dir
        self.extra = extra
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(os.path.join(store_dir, "nats.log"), "ab")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", os.path.join(self.store_dir, "js"), *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, *, wipe: bool = False, pause: float = 0.0) -> None:
        """Stop; optionally lose every stream and consumer; wait; start again."""
        self.stop()
        if wipe:
            shutil.rmtree(os.path.join(self.store_dir, "js"), ignore_errors=True)
        time.sleep(pause)
        self.start()

    def close(self) -> None:
        self.stop()
        self.log.close()


# ---------------------------------------------------------------- PostgreSQL


def find_postgres() -> str | None:
    """The directory holding ``initdb`` and ``postgres``."""
    found = shutil.which("initdb")
    dirs = [os.path.dirname(os.path.realpath(found))] if found else []
    dirs += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in dirs:
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "postgres")):
            return d
    return None


def postgres_user() -> tuple[list[str], int | None, str] | None:
    """How to run the server: ``(prefix, uid, reason)``. PostgreSQL refuses to
    run as root, so as root it runs as the ``postgres`` user through
    ``runuser`` (or ``su``); None (with no way) when impossible."""
    if os.geteuid() != 0:
        return [], None, ""
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        return None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"], pw.pw_uid, ""
    return None


class PostgresServer:
    """A temporary cluster: ``initdb`` (trust auth) and ``postgres`` on
    127.0.0.1 with a free port; ``url`` connects as the ``postgres`` role."""

    def __init__(self, bindir: str, prefix: list[str], uid: int | None) -> None:
        self.bindir = bindir
        self.prefix = prefix
        self.root = tempfile.mkdtemp(prefix="cv-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if uid is not None:
            os.chown(self.root, uid, -1)
        self.log = os.path.join(self.root, "postgres.log")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run([*self.prefix, os.path.join(self.bindir, "initdb"), "-D", self.data,
                        "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, os.path.join(self.bindir, "postgres"), "-D", self.data,
                 "-p", str(self.port), "-h", "127.0.0.1", "-k", self.root,
                 "-c", "fsync=on", "-c", "max_connections=50"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        import psycopg
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("PostgreSQL did not start:\n"
                                       + Path(self.log).read_text()) from exc
                time.sleep(0.2)

    def stop(self) -> None:
        pidfile = Path(self.data, "postmaster.pid")
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGINT)          # fast shutdown
        except (OSError, ValueError, IndexError):
            pass
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_or_skip() -> Iterator[str]:
    """The body of a session ``postgres_url`` fixture: a real PostgreSQL on
    loopback for the session, or a pytest skip with the reason it cannot run
    here (no psycopg, no binaries, root with no 'postgres' user)."""
    import importlib.util

    import pytest
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: pip install 'psycopg[binary]'")
    bindir = find_postgres()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, postgres) not found on PATH or under "
                    "/usr/lib/postgresql/*/bin")
    how = postgres_user()
    if how is None:
        pytest.skip("running as root with no 'postgres' user or no runuser: PostgreSQL "
                    "refuses to run as root")
    prefix, uid, _ = how
    server = PostgresServer(bindir, prefix, uid)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
