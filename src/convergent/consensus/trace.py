"""A bounded, human-readable log of what a node did and why.

Kept by the core itself (not by a global logger) so that a simulated run's
trace is part of its deterministic result and a failing seed can be read
back line by line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .machine import Phase

__all__ = ["TraceLog", "TraceRecord"]


@dataclass(frozen=True, slots=True)
class TraceRecord:
    time: float
    node: str
    height: int
    view: int
    phase: Phase
    text: str

    def __str__(self) -> str:
        return (f"{self.time:10.4f} {self.node:>8} h={self.height} v={self.view} "
                f"{self.phase.value:<14} {self.text}")


class TraceLog:
    """The last ``limit`` records (older ones are dropped, so memory stays bounded)."""

    def __init__(self, limit: int = 2048) -> None:
        self._records: deque[TraceRecord] = deque(maxlen=limit)
        self.total = 0

    def append(self, record: TraceRecord) -> None:
        self._records.append(record)
        self.total += 1

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def tail(self, n: int = 50) -> list[TraceRecord]:
        return list(self._records)[-n:]

    def format(self, n: int | None = None) -> str:
        records = list(self._records) if n is None else self.tail(n)
        return "\n".join(str(r) for r in records)
