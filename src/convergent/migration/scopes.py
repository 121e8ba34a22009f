"""Where v2 replicas can be after a switch: closures of the migrated states.

A v2 replica starts at ``M(r)`` for some reachable v1 state ``r`` and then
applies v2 events (v1 events in flight become v2 events too). v2's own
check covers the states reachable from *its* initial state; migrated states
may lie elsewhere, so every condition after the switch is checked on
``closure(M(R1), events)``, computed here by vectorized frontier expansion
over v2's step tables (one gather per event per level), with BFS parents so
that any state in it comes with a run that reaches it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.space import id_dtype
from .tables import Tables

__all__ = ["Scope", "closure", "migrated"]


@dataclass
class Scope:
    """``ids``: the v2 states of the closure, shallowest first; ``parent``,
    ``pev``: how each was reached (-1 at a migrated state); ``origin``: at a
    migrated state, a shallowest reachable v1 state that maps to it."""

    events: tuple[int, ...]
    ids: np.ndarray
    parent: np.ndarray
    pev: np.ndarray
    origin: np.ndarray

    def path(self, z: int) -> tuple[int, list[int]]:
        """(the v1 state r, the v2 events) with ``z = fold(events, M(r))``."""
        evs: list[int] = []
        s = int(z)
        while int(self.parent[s]) >= 0:
            evs.append(int(self.pev[s]))
            s = int(self.parent[s])
        return int(self.origin[s]), evs[::-1]


def migrated(t: Tables) -> tuple[np.ndarray, np.ndarray]:
    """The distinct migrated states, each with the position in ``reach1`` of
    a shallowest v1 state that maps to it, shallowest first (computed once)."""
    got = t.cache.get("migrated")
    if got is None:
        seeds, first = np.unique(t.image, return_index=True)
        order = np.argsort(first, kind="stable")
        got = t.cache["migrated"] = (seeds[order], first[order])
    return got


def closure(t: Tables, events: tuple[int, ...]) -> Scope:
    """The states v2 reaches from the migrated states by ``events`` (v2 indices)."""
    n = t.v2.size
    seeds, first = migrated(t)
    visited = np.zeros(n, dtype=bool)
    # narrow ids (int32 below 2**31 states): one closure is kept per set of
    # events, so its arrays are what a classification's memory is made of
    parent = np.full(n, -1, dtype=id_dtype(n))
    pev = np.full(n, -1, dtype=np.int16 if len(t.v2.names) < 2**15 else np.int32)
    origin = np.full(n, -1, dtype=id_dtype(t.v1.size))
    visited[seeds] = True
    origin[seeds] = t.reach1[first]
    frontier = seeds.astype(np.int64)
    levels = [frontier]
    step = t.v2.step
    while len(frontier):
        found = []
        for e in events:
            nxt = step[e][frontier].astype(np.int64)
            new = ~visited[nxt]
            if not new.any():
                continue
            cand, idx = np.unique(nxt[new], return_index=True)
            visited[cand] = True
            parent[cand] = frontier[new][idx]
            pev[cand] = e
            found.append(cand)
        frontier = np.concatenate(found) if found else frontier[:0]
        if len(frontier):
            levels.append(frontier)
    return Scope(tuple(events), np.concatenate(levels), parent, pev, origin)
