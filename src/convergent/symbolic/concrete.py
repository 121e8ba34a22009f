"""Concrete steps at one state, for the counterexamples the solver finds.

A counterexample's orders are computed again here, by evaluating the spec's
expressions at the concrete state (``Expr.eval``, the reference path of the
expression language), independently of the z3 translation: a state the
solver proposes becomes a counterexample only when the concrete evaluation
shows the two results really differ.
"""

from __future__ import annotations

from typing import Any

from ..spec.model import Event, MachineSpec

__all__ = ["Concrete"]

State = dict[str, Any]


class Concrete:
    """Guards, assignments, repairs and normal forms at one state."""

    def __init__(self, spec: MachineSpec, max_depth: int) -> None:
        self.spec = spec
        self.vars = spec.var_map
        self.max_depth = max_depth

    def _assign(self, values: dict[str, Any], state: State) -> State:
        out = dict(state)
        for name, value in values.items():
            var = self.vars[name]
            if var.kind == "int":
                value = min(max(int(value), var.lo), var.hi)
            out[name] = value
        return out

    def first_failing(self, state: State) -> int | None:
        for i, inv in enumerate(self.spec.invariants):
            if not inv.holds.evaluate(self.vars, state):
                return i
        return None

    def rho(self, state: State) -> State:
        i = self.first_failing(state)
        if i is None:
            return dict(state)
        repair = self.spec.invariants[i].repair
        return self._assign(repair.evaluate(self.vars, state), state)

    def nf(self, state: State) -> State:
        """The normal form, within the proved bound on repair steps."""
        s = dict(state)
        for _ in range(self.max_depth + 1):
            if self.first_failing(s) is None:
                return s
            s = self.rho(s)
        raise AssertionError(f"no normal form within {self.max_depth} repair steps from "
                             f"{state}: the proved bound is wrong")

    def raw(self, ev: Event, state: State) -> State:
        if ev.guard is not None and not ev.guard.evaluate(self.vars, state):
            return dict(state)
        return self._assign(ev.apply.evaluate(self.vars, state), state)

    def step(self, ev: Event, state: State) -> State:
        return self.nf(self.raw(ev, state))

    def cycle(self, state: State) -> tuple[list[State], list[str]]:
        """The repair loop through ``state`` (which must lie on one)."""
        cycle: list[State] = []
        repairs: list[str] = []
        s = dict(state)
        while True:
            i = self.first_failing(s)
            if i is None:
                raise AssertionError(f"{state} does not lie on a repair cycle")
            cycle.append(s)
            repairs.append(self.spec.invariants[i].name)
            s = self.rho(s)
            if s == state:
                return cycle, repairs
            if len(cycle) > 10_000:
                raise AssertionError(f"{state} does not come back within 10000 repairs")
