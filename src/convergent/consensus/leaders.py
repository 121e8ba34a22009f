"""Stake-weighted proposer priority: who leads view ``v`` of height ``h``.

A fixed round robin gives every validator the same share of leader slots
whatever its stake, and the order is the sorted ids. Here the schedule of an
epoch is the Tendermint / smooth-weighted-round-robin sequence of accumulating
priorities: at each step every member's priority grows by its weight, the
highest priority (ties: lowest id) leads, and its priority drops by the total
weight. Over one period of ``W`` steps (``W`` = total weight, divided by the
weights' gcd) each member leads exactly as many slots as its weight, spread out
rather than in a block, so a validator's share of views - and a coalition's -
is its share of stake. With equal weights the sequence is the id order, so the
schedule is the old round robin rotated by height, exactly.

The schedule is a pure function of the epoch's validator set (every honest node
computes the same one, no messages needed): view ``v`` of height ``h`` is led by
``S[(h + v) mod W]``. Stakes whose total exceeds ``PERIOD_CAP`` are quantized to
that many slots (each member keeps at least one) so a period stays cheap.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

from .validators import ValidatorSet

__all__ = ["PERIOD_CAP", "proposer_schedule", "schedule_period"]

NodeId = str
PERIOD_CAP = 1 << 14


def _slots(weights: list[int]) -> list[int]:
    g = 0
    for w in weights:
        g = gcd(g, w)
    slots = [w // g for w in weights]
    total = sum(slots)
    if total > PERIOD_CAP:
        slots = [max(1, s * PERIOD_CAP // total) for s in slots]
    return slots


@lru_cache(maxsize=32)
def schedule_period(validators: ValidatorSet) -> tuple[NodeId, ...]:
    """One period of the proposer sequence of ``validators`` (cached per set)."""
    ids = validators.ids
    slots = _slots([v.weight for v in validators.validators])
    total = sum(slots)
    priority = [0] * len(ids)
    order = range(len(ids))
    out: list[NodeId] = []
    for _ in range(total):
        for i in order:
            priority[i] += slots[i]
        best = max(order, key=lambda i: (priority[i], -i))
        priority[best] -= total
        out.append(ids[best])
    return tuple(out)


def proposer_schedule(height: int, validators: ValidatorSet) -> tuple[NodeId, ...]:
    """The leaders of views ``0, 1, 2, ...`` of ``height`` (one period; view ``v`` is entry
    ``v mod len``): what ``LeaderProvider.next_leaders`` returns by default."""
    period = schedule_period(validators)
    k = height % len(period)
    return period[k:] + period[:k]
