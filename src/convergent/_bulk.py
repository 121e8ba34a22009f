"""Bulk calls build many small objects at once: pause the garbage collector.

Shared by the shells that build objects in bulk (replica envelopes, durable
batches); no I/O."""

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
    items (envelopes, a durable batch's rows, results and cache entries):
    objects that live on (in a log, a cache), so each collection the
    allocations trigger would walk all of them again, which costs two to
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


