"""One SQLite write transaction, shared by the shells that write SQLite
(replica and collection stores, durable entities); no I/O of its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["immediate"]


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (``BEGIN IMMEDIATE``: writers queue on the file
    lock): committed when the block ends, rolled back when it raises (also
    when the commit itself fails and leaves the transaction open, so the
    connection is never left inside a transaction the next call cannot
    begin)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
