"""Diagnosis of a cycle of morphisms: does repair around it settle or orbit,
and is it obstructed from every seed?

Walking the cycle once applies each of its morphisms in turn: the target's
shared vars that the morphism owns are overwritten with the image of its
source (nothing else changes). From a seed (one state per registry of the
cycle) the walk is a deterministic map on a finite set, so it either reaches
a state it does not change (a *section*: a setting every morphism of the
cycle accepts) or returns to an earlier state (an *orbit*). An orbit from one
seed does not prove there is no section (the audit's
``nonfree_holonomy_counterexample``, PAPER-MAP finding 12): the cycle is
*obstructed* only when no seed settles, which needs every seed. Seeds are
combinations of the cycle registries' valid states, so this diagnosis is a
bounded product over the registries of one cycle: it checks at most
``MAX_SEEDS`` seeds and says whether it checked them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tables import Member, build_members
from ._tabulate import tabulate_map
from .check import topological_order
from .model import FederationSpec, Morphism

__all__ = ["MAX_SEEDS", "CycleDiagnosis", "diagnose_cycle"]

#: seeds tried at most (the first is the registries' initial states)
MAX_SEEDS = 1 << 14

State = dict[str, Any]


@dataclass(frozen=True)
class CycleDiagnosis:
    """What repair does around one cycle.

    ``settles``: the initial seed reaches a section; ``orbit``: otherwise the
    repeating configurations from it; ``section``: a setting every morphism
    of the cycle accepts, when some checked seed reaches one; ``all_seeds``:
    whether every seed was checked (only then does ``obstructed`` mean that no
    section exists)."""

    cycle: tuple[str, ...]
    settles: bool
    orbit: tuple[dict[str, State], ...]
    section: dict[str, State] | None
    seeds_checked: int
    all_seeds: bool

    @property
    def obstructed(self) -> bool:
        return self.all_seeds and self.section is None

    @property
    def verdict(self) -> str:
        if self.settles:
            return "settles"
        if self.section is not None:
            return "orbits from the initial seed; a section exists"
        return "obstructed" if self.all_seeds else "orbits (not every seed checked)"

    def to_dict(self) -> dict[str, Any]:
        return {"cycle": list(self.cycle), "verdict": self.verdict, "settles": self.settles,
                "orbit": list(self.orbit), "section": self.section,
                "seeds_checked": self.seeds_checked, "all_seeds": self.all_seeds,
                "obstructed": self.obstructed}


class _Walk:
    def __init__(self, members: Mapping[str, Member], cycle: list[Morphism]) -> None:
        self.members = members
        self.cycle = cycle
        self.regs = list(dict.fromkeys(m.source for m in cycle))
        self.images = {m.name: tabulate_map(m, members[m.source].vars, members[m.target].vars)
                       for m in cycle}

    def step(self, ids: dict[str, int], m: Morphism) -> None:
        tm = self.members[m.target]
        w = tm.strides()
        sizes = {v.name: v.size for v in tm.vars}
        x = ids[m.target]
        row = self.images[m.name][ids[m.source]]
        for var, d in zip(m.shared, row):
            x += (int(d) - (x // w[var]) % sizes[var]) * w[var]
        ids[m.target] = x

    def run(self, seed: dict[str, int]) -> tuple[bool, list[dict[str, int]]]:
        """(settled, states visited): settled with the fixed point last, or an
        orbit (the repeating part)."""
        ids = dict(seed)
        seen: list[dict[str, int]] = []
        while True:
            before = dict(ids)
            for m in self.cycle:
                self.step(ids, m)
            if ids == before:
                return True, [ids]
            if ids in seen:
                return False, seen[seen.index(ids):]
            seen.append(dict(ids))

    def decode(self, ids: Mapping[str, int]) -> dict[str, State]:
        return {r: self.members[r].decode(i) for r, i in ids.items()}


def diagnose_cycle(fed: FederationSpec, members: Mapping[str, Member] | None = None
                   ) -> CycleDiagnosis | None:
    """Diagnose one directed cycle of ``fed`` (None when it is acyclic)."""
    order, names = topological_order(fed)
    if order is not None:
        return None
    members = dict(members) if members is not None else build_members(fed)
    by_name = {m.name: m for m in fed.morphisms}
    cycle = [by_name[n] for n in names]
    walk = _Walk(members, cycle)
    for r in walk.regs:
        if not members[r].tabulated:
            return CycleDiagnosis(tuple(names), False, (), None, 0, False)
    initial = {}
    for r in walk.regs:
        mach = members[r].machine
        assert mach is not None
        initial[r] = int(mach.initial.id)
    settles, visited = walk.run(initial)
    section = walk.decode(visited[-1]) if settles else None
    orbit = () if settles else tuple(walk.decode(s) for s in visited)
    checked = 1
    pools = [np.flatnonzero(members[r].valid) for r in walk.regs]
    total = 1
    for p in pools:
        total *= len(p)
    if section is None:
        for combo in itertools.product(*pools):
            if checked >= MAX_SEEDS:
                break
            checked += 1
            ok, seen = walk.run({r: int(i) for r, i in zip(walk.regs, combo)})
            if ok:
                section = walk.decode(seen[-1])
                break
    return CycleDiagnosis(tuple(names), settles, orbit, section, checked, checked > total)
