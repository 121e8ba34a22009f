"""A throwaway PostgreSQL cluster on loopback for the durable tests (the
same approach as tests/runtime/servers.py, kept separate so the two test
folders do not depend on each other)."""

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
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_postgres() -> str | None:
    """The directory holding ``initdb`` and ``postgres``."""
    found = shutil.which("initdb")
    dirs = [os.path.dirname(os.path.realpath(found))] if found else []
    dirs += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in dirs:
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "postgres")):
            return d
    return None


def postgres_user() -> tuple[list[str], int | None] | None:
    """How to run the server (PostgreSQL refuses to run as root: as root it
    runs as the ``postgres`` user through ``runuser``); None when impossible."""
    if os.geteuid() != 0:
        return [], None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        return None
    runuser = shutil.which("runuser")
    return ([runuser, "-u", "postgres", "--"], pw.pw_uid) if runuser else None


class PostgresServer:
    """``initdb`` (trust auth) and ``postgres`` on 127.0.0.1, a free port."""

    def __init__(self, bindir: str, prefix: list[str], uid: int | None) -> None:
        self.bindir = bindir
        self.prefix = prefix
        self.root = tempfile.mkdtemp(prefix="cv-dz-pg-")
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
                 "-c", "fsync=on", "-c", "max_connections=30"],
                stdout=log, stderr=subprocess.STDOUT)
        import psycopg
        deadline = time.monotonic() + 60
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
        try:
            pid = int(Path(self.data, "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown
        except (OSError, ValueError, IndexError):
            pass
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
