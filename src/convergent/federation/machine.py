"""The federated machine: every registry's state, repaired along the order.

A federated state holds one state id per registry. ``normalize`` is the
federation's normal form: each registry's own normal form, then, in
topological order, each target's shared vars overwritten with the image of
its (already final) sources. ``apply`` runs one registry's event (its own
step, then its own repairs) and normalizes. Only a federation that passes
every check is built, so the result of a set of independent events does not
depend on the order they are applied in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._tables import Member, Repair, build_members, build_repair
from .check import check_federation
from .errors import FederationCheckError, FederationError
from .model import FederationSpec
from .report import FederationReport

__all__ = ["FederatedMachine", "FederatedState"]


@dataclass(frozen=True)
class FederatedState:
    """One state id per registry, in the federation's declaration order."""

    names: tuple[str, ...]
    ids: tuple[int, ...]

    def __getitem__(self, registry: str) -> int:
        try:
            return self.ids[self.names.index(registry)]
        except ValueError:
            raise FederationError(f"unknown registry {registry!r}") from None


class FederatedMachine:
    """A verified federation, run on its registries' own tables."""

    def __init__(self, spec: FederationSpec, members: Mapping[str, Member],
                 report: FederationReport) -> None:
        if report.order is None or not report.ok:
            raise FederationCheckError(report)
        self.spec = spec
        self.report = report
        self.names = spec.names
        self.order: tuple[str, ...] = report.order
        self._members = dict(members)
        self._repairs: dict[str, Repair] = {
            t: build_repair(spec, members, t) for t in self.order if spec.incoming(t)}
        init = []
        for n in self.names:
            m = self._members[n].machine
            assert m is not None
            init.append(m.initial.id)
        self.initial = self.normalize(FederatedState(self.names, tuple(init)))

    @classmethod
    def from_spec(cls, spec: FederationSpec, *, xu: bool = False) -> FederatedMachine:
        """Check ``spec``; raises ``FederationCheckError`` unless every check holds."""
        members = build_members(spec)
        report = check_federation(spec, xu=xu, members=members)
        return cls(spec, members, report)

    def normalize(self, state: FederatedState) -> FederatedState:
        """The federation's normal form of ``state``."""
        ids = {n: int(self._members[n].nf[i]) for n, i in zip(self.names, state.ids)}
        for t in self.order:
            rep = self._repairs.get(t)
            if rep is not None:
                off = rep.offset_at(ids)
                ids[t] = int(rep.overwrite(off, np.array([ids[t]], dtype=np.int64))[0])
        return FederatedState(self.names, tuple(ids[n] for n in self.names))

    def apply(self, state: FederatedState, registry: str, event: str) -> FederatedState:
        """Run ``event`` of ``registry``, then normalize the federation."""
        mem = self._member(registry)
        try:
            ei = mem.events.index(event)
        except ValueError:
            raise FederationError(f"registry {registry!r} has no event {event!r} (known: "
                                  f"{', '.join(mem.events)})") from None
        ids = list(state.ids)
        k = self.names.index(registry)
        ids[k] = int(mem.step[ei][ids[k]])
        return self.normalize(FederatedState(self.names, tuple(ids)))

    def run(self, events: Iterable[tuple[str, str]],
            state: FederatedState | None = None) -> FederatedState:
        """Apply ``(registry, event)`` pairs in turn from ``state`` (default: initial)."""
        s = self.initial if state is None else state
        for registry, event in events:
            s = self.apply(s, registry, event)
        return s

    def decode(self, state: FederatedState) -> dict[str, dict[str, Any]]:
        return {n: self._members[n].decode(i) for n, i in zip(self.names, state.ids)}

    def encode(self, values: Mapping[str, Mapping[str, Any]]) -> FederatedState:
        """A federated state from ``{registry: {var: value}}`` (all vars given)."""
        ids = []
        for n in self.names:
            m = self._members[n].machine
            assert m is not None
            ids.append(m.encode(values[n]).id)
        return FederatedState(self.names, tuple(ids))

    def _member(self, name: str) -> Member:
        if name not in self._members:
            raise FederationError(f"unknown registry {name!r} (known: {', '.join(self.names)})")
        return self._members[name]

    def __repr__(self) -> str:
        return f"FederatedMachine({self.spec.name!r}, order={' -> '.join(self.order)})"
