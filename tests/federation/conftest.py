"""A real nats-server for the federation's NATS tests (the replica tests'
harness): started on loopback with a free port in a temporary directory,
skipped (with the reason) only when the binary or the client library is
missing."""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator

import pytest

from runtime.servers import NatsServer, find_nats

__all__ = ["find_nats"]


@pytest.fixture
def nats_url() -> Iterator[str]:
    binary = find_nats()
    if binary is None:
        pytest.skip("nats-server not found (Debian: apt-get install nats-server)")
    if importlib.util.find_spec("nats") is None:
        pytest.skip("nats-py is not installed: pip install nats-py")
    with tempfile.TemporaryDirectory(prefix="cv-fed-nats-") as d:
        server = NatsServer(binary, d)
        server.start()
        try:
            yield server.url
        finally:
            server.close()
