"""A seeded model of an unreliable network under partial synchrony.

Before the global stabilization time (GST) a message may be dropped, delayed
for long, reordered, or cut by a partition. A message sent at or after GST
between two honest nodes is delivered within ``max_delay`` (the Delta of the
partial-synchrony model). Every draw comes from one ``random.Random``, so a
seed fixes the whole schedule.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["NetworkConfig", "NetworkModel", "Partition"]


@dataclass(frozen=True)
class Partition:
    """Between ``start`` and ``end`` only nodes of the same group hear each other."""

    start: float
    end: float
    groups: tuple[frozenset[str], ...]

    def separates(self, a: str, b: str, now: float) -> bool:
        if not self.start <= now < self.end:
            return False
        for g in self.groups:
            if a in g:
                return b not in g
        return True


@dataclass(frozen=True)
class NetworkConfig:
    min_delay: float = 0.001
    max_delay: float = 0.05
    pre_gst_max_delay: float = 1.0
    drop_rate: float = 0.0
    gst: float = 0.0
    partitions: tuple[Partition, ...] = ()
    random_partitions: int = 0
    """How many random two-way partitions to draw before GST (each up to GST / 2 long)."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_delay <= self.max_delay:
            raise ConfigError(f"delays min={self.min_delay!r} max={self.max_delay!r}")
        if self.pre_gst_max_delay < self.min_delay:
            raise ConfigError(f"pre_gst_max_delay={self.pre_gst_max_delay!r} < min_delay")
        if not 0 <= self.drop_rate < 1:
            raise ConfigError(f"drop_rate={self.drop_rate!r} (expected 0 <= p < 1)")
        for p in self.partitions:
            if p.end > self.gst:
                raise ConfigError(f"partition ending at {p.end} outlives GST={self.gst}")


class NetworkModel:
    def __init__(self, config: NetworkConfig, rng: random.Random, nodes: Sequence[str]) -> None:
        self.config = config
        self.rng = rng
        parts = list(config.partitions)
        for _ in range(config.random_partitions):
            if config.gst <= 0:
                break
            start = rng.uniform(0, config.gst)
            end = min(config.gst, start + rng.uniform(0, config.gst / 2))
            members = list(nodes)
            rng.shuffle(members)
            cut = rng.randint(1, max(1, len(members) - 1))
            parts.append(Partition(start, end, (frozenset(members[:cut]),
                                                frozenset(members[cut:]))))
        self.partitions = tuple(parts)
        self.dropped = 0
        self.delivered = 0

    def delay(self, src: str, dst: str, now: float) -> float | None:
        """Delivery delay for a message sent now, or None if it is lost."""
        c = self.config
        if now >= c.gst:
            self.delivered += 1
            return self.rng.uniform(c.min_delay, c.max_delay)
        for p in self.partitions:
            if p.separates(src, dst, now):
                self.dropped += 1
                return None
        if c.drop_rate and self.rng.random() < c.drop_rate:
            self.dropped += 1
            return None
        self.delivered += 1
        return self.rng.uniform(c.min_delay, c.pre_gst_max_delay)
