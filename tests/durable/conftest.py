"""Fixtures for the durable tests: a real PostgreSQL (skipped, with the
reason, only when it cannot run here) and the store matrix."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from convergent.durable import EntityStore, open_store

# one PostgreSQL harness for the whole suite: the replica tests' own
from runtime.servers import postgres_or_skip


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from postgres_or_skip()


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
