"""Fixtures: real servers (skipped, with the reason, only when their binary or
client library cannot be found) and the store matrix."""

from __future__ import annotations

import importlib.util
import tempfile
import uuid
from collections.abc import Callable, Iterator

import pytest

from convergent.runtime import MemoryStore, SQLiteStore, Store

from .servers import NatsServer, find_nats, postgres_or_skip


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from postgres_or_skip()


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    binary = find_nats()
    if binary is None:
        pytest.skip("nats-server not found (Debian: apt-get install nats-server)")
    if importlib.util.find_spec("nats") is None:
        pytest.skip("nats-py is not installed: pip install nats-py")
    with tempfile.TemporaryDirectory(prefix="cv-nats-") as d:
        server = NatsServer(binary, d)
        server.start()
        try:
            yield server
        finally:
            server.close()


def _factory(kind: str, request: pytest.FixtureRequest, tmp_path: object) -> Callable[[], Store]:
    if kind == "memory":
        mem = MemoryStore()
        return lambda: mem
    if kind == "sqlite":
        path = f"{tmp_path}/store.db"
        return lambda: SQLiteStore(path)
    url = request.getfixturevalue("postgres_url")
    from convergent.runtime.stores.postgres import PostgresStore
    return lambda: PostgresStore(url)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def store_factory(request: pytest.FixtureRequest, tmp_path: object) -> Callable[[], Store]:
    """Makes stores that reach the same data on each call (a restart)."""
    return _factory(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def durable_factory(request: pytest.FixtureRequest, tmp_path: object) -> Callable[[], Store]:
    """The same, for the stores that outlive a process."""
    return _factory(request.param, request, tmp_path)


@pytest.fixture
def rid() -> Callable[[str], str]:
    """Replica ids unique per test (the PostgreSQL tests share a database)."""
    tag = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{tag}"
