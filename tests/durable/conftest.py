"""Fixtures for the durable tests: a real PostgreSQL (skipped, with the
reason, only when it cannot run here) and the store matrix."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from convergent.durable import EntityStore, open_store

# one PostgreSQL harness for the whole suite: the replica tests' own
from runtime.servers import PostgresServer, find_postgres, postgres_user


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
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


def _fresh_pg(url: str) -> str:
    """A new database per test, so tests never see each other's rows."""
    import psycopg
    name = "dz_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL (SQLite file or PostgreSQL database), empty."""
    if request.param == "sqlite":
        return str(tmp_path / "entities.db")
    return _fresh_pg(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[[], EntityStore]]:
    """Opens stores on the same database (each call: a new connection, as
    after a restart); closes them all at the end."""
    opened: list[EntityStore] = []

    def make() -> EntityStore:
        s = open_store(store_url)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()
