"""Bulk calls build many small objects at once: pause the garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BULK", "bulk"]

#: batches at least this large are built with the cyclic garbage collector paused
BULK = 256


@contextmanager
def bulk(n: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk call builds ``n``
    envelopes. They are tuples that live on in the log: each collection the
    allocations trigger would walk the whole log again, which costs two to
    four times the work itself. Nothing of them forms a cycle, so nothing is
    left to collect; the collector resumes (if it was on) when the call ends."""
    if n < BULK or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


