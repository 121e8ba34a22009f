"""A discrete-event scheduler: virtual time, a heap, and a tie-breaking sequence number.

Two events at the same virtual time run in the order they were scheduled, so
a run depends only on the seed that drew the delays, never on wall time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

__all__ = ["Scheduler"]


class Scheduler:
    def __init__(self) -> None:
        self.now = 0.0
        self.processed = 0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0

    def at(self, time: float, action: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (max(time, self.now), self._seq, action, args))

    def after(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        self.at(self.now + delay, action, *args)

    def __len__(self) -> int:
        return len(self._heap)

    def run(self, *, until: float, stop: Callable[[], bool] | None = None,
            max_events: int = 10_000_000, check_every: int = 64) -> None:
        """Run events in time order until ``until``, ``stop()`` or ``max_events``."""
        heap = self._heap
        budget = max_events
        while heap and budget > 0:
            time, _, action, args = heap[0]
            if time > until:
                break
            heapq.heappop(heap)
            self.now = time
            action(*args)
            budget -= 1
            self.processed += 1
            if stop is not None and self.processed % check_every == 0 and stop():
                break
