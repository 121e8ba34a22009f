"""A real nats-server for the federation's NATS tests: started on loopback
with a free port in a temporary directory, skipped (with the reason) only
when the binary or the client library is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest


def find_nats() -> str | None:
    for cand in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nats_url() -> Iterator[str]:
    binary = find_nats()
    if binary is None:
        pytest.skip("nats-server not found (Debian: apt-get install nats-server)")
    if importlib.util.find_spec("nats") is None:
        pytest.skip("nats-py is not installed: pip install nats-py")
    with tempfile.TemporaryDirectory(prefix="cv-fed-nats-") as d:
        port = _free_port()
        with open(os.path.join(d, "nats.log"), "ab") as log:
            proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port),
                                     "-sd", os.path.join(d, "js")],
                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"nats-server did not start on {port}") from None
                    time.sleep(0.05)
            yield f"nats://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
