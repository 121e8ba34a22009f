"""Validity, one repair step, normal forms and WFC, on the invariants' sub-space.

Normalization only reads and writes the variables of the invariants (holds
and repairs): the set D. Everything about it is therefore computed once on
the product of D's domains, exactly, and lifted to bigger spaces by gathers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BuildError
from .compile import CompiledMachine
from .space import Space

__all__ = ["Normalizer", "WfcFailure"]


@dataclass
class WfcFailure:
    state: int                 # a local id (in the normalizer's space) on a repair cycle
    cycle: list[int]           # local ids around the cycle, starting at ``state``
    repairs: list[str]         # invariant repaired at each step of the cycle


class Normalizer:
    """valid / first failing invariant / rho / nf / depth over the space of D."""

    def __init__(self, cm: CompiledMachine) -> None:
        self.cm = cm
        dvars: set[int] = set()
        for inv in cm.invariants:
            dvars |= set(inv.holds.space.vars) | set(inv.repair.space.vars)
            # where a repair saturates is a finding, exact on D (rarely bigger)
            dvars |= set(inv.repair.sat_on.vars)
        self.space = Space(cm.radices, dvars)
        sp = self.space
        n = sp.size
        first_fail = np.full(n, -1, dtype=np.int32)
        for inv in cm.invariants:
            p = sp.project(inv.holds.space)
            h = inv.holds.value[p]
            undecided = first_fail < 0
            if inv.holds.err is not None:
                bad = undecided & inv.holds.err[p]
                if bad.any():
                    self._fail_eval(f"the holds of invariant {inv.name!r} cannot be "
                                    "evaluated", int(np.flatnonzero(bad)[0]), r_inv=inv.name)
            first_fail[undecided & ~h] = inv.index
        self.first_fail = first_fail
        self.valid = first_fail < 0
        rho = sp.ids.astype(np.int64)
        self.repair_sat = np.zeros(n, dtype=bool)
        for inv in cm.invariants:
            at = first_fail == inv.index
            if not at.any():
                continue
            r = inv.repair
            p = sp.project(r.space)
            delta = r.space.restride(r.new, sp)
            rho[at] += delta[p[at]]
            if r.err is not None:
                bad = at & r.err[p]
                if bad.any():
                    self._fail_eval(f"the repair of invariant {inv.name!r} assigns a value "
                                    "outside an int range with overflow: error (or cannot be "
                                    "evaluated)", int(np.flatnonzero(bad)[0]), r_inv=inv.name)
            if r.sat is not None:
                self.repair_sat |= at & r.sat[sp.project(r.sat_on)]
        self.rho = rho.astype(sp.dtype)
        self._normal_forms()

    def _fail_eval(self, message: str, local: int, r_inv: str | None = None) -> None:
        from .decode import describe_state, local_to_state
        state = local_to_state(self.cm, self.space, local)
        raise BuildError(f"{message}, at {describe_state(state)}", name=r_inv, state=state)

    def _normal_forms(self) -> None:
        sp = self.space
        n = sp.size
        rho = self.rho
        depth = np.zeros(n, dtype=np.int32)
        nf = sp.ids.copy()
        active = np.flatnonzero(~self.valid).astype(sp.dtype)
        cur = active.copy()
        steps = 0
        self.wfc_failure: WfcFailure | None = None
        cycling = np.zeros(n, dtype=bool)
        cycle_checked = False
        while len(active):
            steps += 1
            cur = rho[cur]
            still = ~self.valid[cur]
            depth[active[~still]] = steps
            nf[active[~still]] = cur[~still]
            active, cur = active[still], cur[still]
            if (steps >= 64 or steps >= n) and len(active) and not cycle_checked:
                # Long chains: decide once, exactly, which states never reach a
                # valid one (a state is proven to loop only when its chain is
                # still invalid after >= n steps, i.e. it revisits a state);
                # the others keep stepping and end within n steps.
                cycle_checked = True
                loops = self._never_valid(active)
                if loops.any():
                    cycling[active[loops]] = True
                    active, cur = active[~loops], cur[~loops]
            if steps > n:  # pragma: no cover - a terminating chain ends within n steps
                raise AssertionError("normalization did not settle within n steps")
        self.cycling = cycling
        if cycling.any():
            start = int(np.flatnonzero(cycling)[0])
            seen: dict[int, int] = {}
            path: list[int] = []
            x = start
            while x not in seen:
                seen[x] = len(path)
                path.append(x)
                x = int(rho[x])
            cycle = path[seen[x]:]
            names = [self.cm.invariants[int(self.first_fail[s])].name for s in cycle]
            self.wfc_failure = WfcFailure(cycle[0], cycle, names)
            self.max_depth = None
        else:
            self.max_depth = int(depth.max()) if n else 0
        self.depth = depth
        self.nf = nf

    def cycle_from(self, local: int) -> tuple[list[int], list[int], list[str]]:
        """From a looping state: the states repaired before the loop, the
        loop itself, and the invariant repaired at each step of the loop."""
        seen: dict[int, int] = {}
        path: list[int] = []
        x = local
        while x not in seen:
            seen[x] = len(path)
            path.append(x)
            x = int(self.rho[x])
        loop = path[seen[x]:]
        names = [self.cm.invariants[int(self.first_fail[s])].name for s in loop]
        return path[:seen[x]], loop, names

    def _never_valid(self, active: np.ndarray) -> np.ndarray:
        """Which of ``active`` never reach a valid state, by pointer doubling:
        valid states are fixed points of rho, so after >= n steps a terminating
        chain sits on a valid state and a looping one does not."""
        j = self.rho.copy()
        steps = 1
        while steps < self.space.size:
            j = j[j]
            steps *= 2
        return ~self.valid[j[active]]

    # lifting -------------------------------------------------------------

    def nf_delta(self, target: Space) -> np.ndarray:
        """Deltas, in ``target`` ids, indexed by our local id (cached per target)."""
        return self._delta("nf", self.nf, target)

    def rho_delta(self, target: Space) -> np.ndarray:
        return self._delta("rho", self.rho, target)

    def _delta(self, kind: str, table: np.ndarray, target: Space) -> np.ndarray:
        cache = self.__dict__.setdefault("_deltas", {})
        key = (kind, target.vars, target.all_radices)
        got = cache.get(key)
        if got is None:
            got = self.space.restride(table, target)
            got.setflags(write=False)
            cache[key] = got
        return got
