"""Stores: where a replica keeps its log and snapshot.

``open_store(url)``: ``memory://``, ``sqlite:///relative.db``,
``sqlite:////absolute/path.db`` (query ``?synchronous=normal`` to trade
power-loss durability for speed), ``postgresql://user@host:port/db``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..errors import StoreError
from .base import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:  # pragma: no cover
    from .postgres import PostgresStore

__all__ = ["MemoryStore", "PostgresStore", "SQLiteStore", "Store", "open_store"]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":  # imported on use: it needs psycopg
        from .postgres import PostgresStore
        return PostgresStore
    raise AttributeError(name)


def open_store(url: str, *, readonly: bool = False) -> Store:
    """A store from its URL (see the module docstring); raises StoreError for
    an unknown scheme. ``readonly``: never write, take no lock, refuse to
    create a replica (SQLite and PostgreSQL)."""
    if not isinstance(url, str):
        raise StoreError(f"store url={url!r} (expected a string such as sqlite:///r1.db)")
    if url == "memory://" or url == "memory:":
        return MemoryStore()
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:"):]
        if not rest.startswith("///"):
            raise StoreError(f"store url={url!r} (expected sqlite:///relative.db or "
                             "sqlite:////absolute/path.db)")
        path, _, query = rest[3:].partition("?")
        if not path:
            raise StoreError(f"store url={url!r} names no file")
        opts = {k: v[-1] for k, v in parse_qs(query).items()}
        unknown = set(opts) - {"synchronous"}
        if unknown:
            raise StoreError(f"store url={url!r}: unknown option(s) {', '.join(sorted(unknown))} "
                             "(known: synchronous)")
        return SQLiteStore(path, synchronous=opts.get("synchronous", "full"), readonly=readonly)
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore
        return PostgresStore(url, readonly=readonly)
    raise StoreError(f"store url={url!r} (expected memory://, sqlite:///FILE or "
                     "postgresql://...)")
