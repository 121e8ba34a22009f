"""A seeded model of an unreliable network under partial synchrony.

Before the global stabilization time (GST) a message may be dropped, delayed
for long, reordered, or cut by a partition. A message sent at or after GST
between two honest nodes is delivered within ``max_delay`` (the Delta of the
partial-synchrony model). Every draw comes from one ``random.Random``, so a
seed fixes the whole schedule.

``rushing=True`` is the adversary's best schedule within that model: every
message from or to a byzantine node takes ``min_delay`` and is never lost,
while a message between honest nodes takes the full ``max_delay`` after GST.
The adversary sees each honest message first and its own copies arrive before
the real ones: any "first copy wins" rule in a receiver is exposed.
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
    rushing: bool = False
    """Byzantine traffic at ``min_delay``, honest traffic at the full ``max_delay`` after GST."""

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
    def __init__(self, config: NetworkConfig, rng: random.Random, nodes: Sequence[str],
                 byzantine: Sequence[str] = ()) -> None:
        self.config = config
        self.rng = rng
        self.byzantine = frozenset(byzantine)
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
        if c.rushing:
            if src in self.byzantine or dst in self.byzantine:
                self.delivered += 1
                return c.min_delay
            if now >= c.gst:
                self.delivered += 1
                return c.max_delay
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
