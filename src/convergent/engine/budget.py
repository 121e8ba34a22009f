"""What a check will cost, known before any state is enumerated.

The engine enumerates every state, so its memory and time follow from the
spec alone: N (the product of the domain sizes) and E (the number of events).
This module turns them into an estimate and refuses, with a message a person
can act on, a machine that cannot fit in the memory this machine has
*available now* (``MemAvailable`` in ``/proc/meminfo``: what can be allocated
without swapping, unlike the total or the "free" figure), instead of letting
the kernel kill the process minutes later.

The figures are calibrated on the engine as it is (2-core VM, 2026-12-03):

* the floor, always allocated: the step tables, E x N ids (int32, int64 past
  2^31 states), plus the per-state arrays of reachability (visited, parent,
  event, depth) and validity;
* the peak: when most states are reachable the last phases (delivery
  contract, findings) hold temporaries of about 3.5 times the step tables;
  with few reachable states the peak is the floor;
* time: from about 10 ns per state and event (few reachable states) to about
  100 ns (all of them reachable).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BuildError

__all__ = [
    "MAX_STATES",
    "Budget",
    "available_memory",
    "enforce",
    "estimate",
    "format_bytes",
    "format_seconds",
    "warning",
]

#: the largest state space the engine accepts, whatever the memory
MAX_STATES = 2**33
#: bytes per state besides the step tables: visited (1), parent (ids), event
#: (2), depth (4), valid (1), reachable ids (ids) -- see module docstring
_PER_STATE_FIXED = 8
_PER_STATE_IDS = 2
#: the last phases' temporaries, in step-table sizes, when all states are reachable
_PEAK_TABLES = 3.5
_NS_LOW = 10.0
_NS_HIGH = 100.0
#: the share of available memory a check may plan to use
_USABLE = 0.9


@dataclass(frozen=True)
class Budget:
    """The cost of checking one machine, before it is enumerated."""

    states: int
    events: int
    id_bytes: int            # 4 (int32 ids) or 8 (int64 past 2^31 states)
    table_bytes: int         # the step tables: events x states ids
    floor_bytes: int         # always allocated: tables + per-state arrays
    peak_bytes: int          # at most, when nearly every state is reachable
    seconds_low: float
    seconds_high: float

    def describe(self) -> str:
        """One line: states, memory, time."""
        return (f"{self.states:,} states x {self.events} events: needs "
                f"{format_bytes(self.floor_bytes)} (up to {format_bytes(self.peak_bytes)} "
                f"when most states are reachable), about {format_seconds(self.seconds_low)}"
                f" to {format_seconds(self.seconds_high)}")


def estimate(states: int, events: int) -> Budget:
    """The budget of a machine of ``states`` states and ``events`` events."""
    if states < 0 or events < 0:
        raise ValueError(f"states={states}, events={events} (expected >= 0)")
    id_bytes = 4 if states < 2**31 - 1 else 8
    e = max(1, events)
    tables = states * e * id_bytes
    floor = tables + states * (_PER_STATE_FIXED + _PER_STATE_IDS * id_bytes)
    peak = floor + tables * int(_PEAK_TABLES * 2) // 2   # exact: states may pass 2^1000
    work = states * e
    low = high = float("inf")
    if work < 10**300:
        low, high = work * _NS_LOW * 1e-9, work * _NS_HIGH * 1e-9
    return Budget(states, events, id_bytes, tables, floor, peak, low, high)


def available_memory(meminfo: str = "/proc/meminfo") -> int | None:
    """Bytes that can be allocated now without swapping: ``MemAvailable``
    (Linux 3.14+), else the free physical pages, else None (unknown)."""
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    parts = line.split()
                    unit = 1024 if len(parts) > 2 and parts[2].lower() == "kb" else 1
                    return int(parts[1]) * unit
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def enforce(budget: Budget, *, name: str, sizes: Sequence[int],
            max_states: int = MAX_STATES, available: int | None = None) -> None:
    """Raise ``BuildError`` when the machine cannot be checked here: more
    states than ``max_states``, or a floor that does not fit in the
    available memory (``available``, default: measured now)."""
    shape = " x ".join(str(s) for s in sizes) or "1"
    if budget.states > max_states:
        raise BuildError(f"{name!r} has {budget.states:,} states ({shape}); convergent "
                         f"enumerates every state and supports up to {max_states:,}: narrow "
                         "the int ranges or split the entity")
    avail = available_memory() if available is None else available
    if avail is None:
        return
    if budget.floor_bytes > _USABLE * avail:
        raise BuildError(f"{name!r} has {budget.states:,} states ({shape}) x "
                         f"{budget.events} events: checking it needs at least "
                         f"{format_bytes(budget.floor_bytes)} of memory "
                         f"({format_bytes(budget.table_bytes)} of step tables), but only "
                         f"{format_bytes(avail)} is available on this machine: narrow the "
                         "int ranges, split the entity, or free memory")


def warning(budget: Budget, available: int | None = None) -> str | None:
    """A line to show before a check that may not fit (its peak exceeds the
    available memory though its floor fits), else None."""
    avail = available_memory() if available is None else available
    if avail is None or budget.peak_bytes <= _USABLE * avail:
        return None
    return (f"may need up to {format_bytes(budget.peak_bytes)} if most states are reachable; "
            f"{format_bytes(avail)} is available")


def format_bytes(n: float) -> str:
    """``1.5 GiB``, ``640 MiB``, ``12 KiB``."""
    if n >= 2**50 * 1000:
        return f"{int(n) // 2**40:.3g} TiB" if int(n) // 2**40 < 10**300 else "more than 10^300 B"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def format_seconds(s: float) -> str:
    """``0.3 s``, ``45 s``, ``12 min``, ``3.5 h``."""
    if s < 10:
        return f"{max(s, 0.01):.2g} s" if s < 1 else f"{s:.0f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{math.ceil(s / 60)} min"
    return f"{s / 3600:.1f} h"
