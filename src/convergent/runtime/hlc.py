"""A hybrid logical clock packed in one int.

``hlc = physical_ms << 16 | logical``. ``tick()`` returns a timestamp larger
than every timestamp this clock has returned or observed, and close to the
wall clock when the wall clock is ahead; ``observe(t)`` takes a remote
timestamp into account. So an event issued after its issuer applied another
event always carries a larger timestamp: sorting by hlc extends the causal
order. The logical part absorbs up to 65,535 ticks per millisecond before it
carries into the millisecond part, which stays correct (only less close to
the wall clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["HybridClock", "hlc_millis"]

LOGICAL_BITS = 16


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def hlc_millis(hlc: int) -> int:
    """The physical (millisecond) part of a timestamp."""
    return hlc >> LOGICAL_BITS


class HybridClock:
    """Monotonic hybrid logical clock; ``wall`` returns milliseconds (inject a
    fake for deterministic simulations)."""

    __slots__ = ("_wall", "last")

    def __init__(self, wall: Callable[[], int] | None = None, last: int = 0) -> None:
        self._wall = wall or _wall_ms
        self.last = last

    def tick(self) -> int:
        now = int(self._wall()) << LOGICAL_BITS
        last = self.last + 1
        self.last = t = now if now > last else last
        return t

    def observe(self, t: int) -> None:
        if t > self.last:
            self.last = t
