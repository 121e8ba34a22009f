"""A minimal coordination plan for a cyclic federation.

A directed cycle of morphisms has no repair order; one way out is to take some
morphisms out of the coordination-free part (their propagation is then run
under outside coordination: a lock, a consensus round, a human) so that the
rest is acyclic. The fewest such morphisms form a minimum feedback arc set of
the authority graph, found here exactly by branch and bound: any answer must
remove an edge of every cycle, so branching over the edges of one shortest
cycle, with the best size so far as a bound, explores every minimal choice.
The search is exponential only in the answer's size, which is small for
federations a team would write; it gives up, loudly, past ``MAX_NODES``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import FederationError
from .model import FederationSpec

__all__ = ["MAX_NODES", "CoordinationPlan", "minimal_coordination_plan", "shortest_cycle"]

#: search nodes before the exact search gives up (raising, never guessing)
MAX_NODES = 200_000

Edge = tuple[str, str, str]          # (morphism, source, target)


@dataclass(frozen=True)
class CoordinationPlan:
    """``coordinate``: the fewest morphisms to put under outside coordination;
    ``order``: a topological order of the rest."""

    coordinate: tuple[str, ...]
    order: tuple[str, ...]


def shortest_cycle(nodes: Iterable[str], edges: Iterable[Edge]) -> tuple[Edge, ...] | None:
    """The edges of one shortest directed cycle (None when acyclic)."""
    out: dict[str, list[Edge]] = {}
    for e in edges:
        out.setdefault(e[1], []).append(e)
    best: tuple[Edge, ...] | None = None
    for start in nodes:
        # BFS from start back to start
        parent: dict[str, Edge] = {}
        queue = deque([start])
        seen = {start}
        found: Edge | None = None
        while queue and found is None:
            node = queue.popleft()
            for e in out.get(node, ()):
                if e[2] == start:
                    found = e
                    break
                if e[2] not in seen:
                    seen.add(e[2])
                    parent[e[2]] = e
                    queue.append(e[2])
        if found is None:
            continue
        path = [found]
        node = found[1]
        while node != start:
            path.append(parent[node])
            node = parent[node][1]
        cycle = tuple(reversed(path))
        if best is None or len(cycle) < len(best):
            best = cycle
            if len(best) == 1:
                break
    return best


def _order(nodes: list[str], edges: list[Edge]) -> tuple[str, ...]:
    preds = {n: {e[1] for e in edges if e[2] == n} for n in nodes}
    done: list[str] = []
    left = list(nodes)
    while left:
        ready = next(n for n in left if not (preds[n] - set(done)))
        done.append(ready)
        left.remove(ready)
    return tuple(done)


def minimal_coordination_plan(fed: FederationSpec) -> CoordinationPlan:
    """The fewest morphisms whose removal leaves the federation acyclic (exact).

    Raises:
        FederationError: the search needed more than ``MAX_NODES`` steps.
    """
    nodes = list(fed.names)
    edges = [(m.name, m.source, m.target) for m in fed.morphisms]
    best: list[tuple[Edge, ...] | None] = [None]
    steps = [0]

    def search(removed: tuple[Edge, ...]) -> None:
        steps[0] += 1
        if steps[0] > MAX_NODES:
            raise FederationError(f"no minimal coordination plan within {MAX_NODES} search "
                                  "steps; the authority graph has too many cycles")
        if best[0] is not None and len(removed) >= len(best[0]):
            return
        rest = [e for e in edges if e not in removed]
        cycle = shortest_cycle(nodes, rest)
        if cycle is None:
            best[0] = removed
            return
        if best[0] is not None and len(removed) + 1 >= len(best[0]):
            return
        for e in cycle:
            search(removed + (e,))

    search(())
    chosen = best[0] or ()
    rest = [e for e in edges if e not in chosen]
    return CoordinationPlan(tuple(sorted(e[0] for e in chosen)), _order(nodes, rest))
