"""The federated machine: every registry's state, repaired along the order.

A federated state holds one state id per registry. ``normalize`` is the
federation's normal form: each registry's own normal form, then, in
topological order, each target's shared vars overwritten with the image of
its (already final) sources, and each accepted (monotone) cycle set to the
least fixed point of repair around it (``lfp.py``). ``apply`` runs one registry's event (its own
step, then its own repairs) and normalizes. Only a federation that passes
every check is built, so the result of a set of independent events does not
depend on the order they are applied in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..machine import Machine
from ._tables import Member, Repair, build_members, build_repair
from .check import check_federation
from .lfp import CycleRepair
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
        from .lfp import build_cycle_repair, components, cyclic_components
        cyclic = cyclic_components(spec)
        inside = {t: frozenset(m.source for m in spec.incoming(t) if m.source in c)
                  for c in cyclic for t in c}
        self._repairs: dict[str, Repair] = {
            t: build_repair(spec, members, t, every_state=inside.get(t, frozenset()))
            for t in self.order if spec.incoming(t)}
        #: the repair plan: a registry name (one overwrite, sources first) or
        #: an accepted cycle (its least fixed point), in order
        self._plan: list[str | CycleRepair] = []
        for comp in components(spec):
            if comp in cyclic:
                self._plan.append(build_cycle_repair(spec, members, comp, self._repairs))
            else:
                self._plan.append(comp[0])
        self.cycles: tuple[tuple[str, ...], ...] = cyclic
        self._digest: str | None = None
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
        """The federation's normal form of ``state``: each registry's own
        normal form, then in order each target overwritten with its sources'
        image, or each accepted cycle set to its least fixed point."""
        ids = {n: int(self._members[n].nf[i]) for n, i in zip(self.names, state.ids)}
        for step in self._plan:
            if isinstance(step, CycleRepair):
                ids.update(step.fixpoint(ids)[0])
                continue
            rep = self._repairs.get(step)
            if rep is not None:
                off = rep.offset_at(ids)
                ids[step] = int(rep.overwrite(off, np.array([ids[step]], dtype=np.int64))[0])
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

    def machine(self, registry: str) -> Machine:
        """The built ``Machine`` of one registry (what its replicas run)."""
        m = self._member(registry).machine
        assert m is not None
        return m

    def repair(self, target: str) -> Repair | None:
        """The repair of ``target`` (None when it has no source)."""
        self._member(target)
        return self._repairs.get(target)

    @property
    def digest(self) -> str:
        """SHA-256 of the federation's meaning: every member's policy digest
        (or, for a certified member, its tables), every morphism and resolver
        by name, every map's table and every target's set of images. Stamped
        on projections, so that services running another version of the
        federation refuse each other's (see ``replicas.py``)."""
        if self._digest is None:
            h = hashlib.sha256()
            members = []
            for n in self.names:
                mach = self.machine(n)
                pd = mach.policy_digest
                if not pd:
                    th = hashlib.sha256()
                    for a in (self._members[n].nf, mach.tables):
                        th.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
                    pd = "tables:" + th.hexdigest()
                members.append([n, pd])
            head = {"format": "convergent-federation/1", "name": self.spec.name,
                    "members": members,
                    "morphisms": [[m.name, m.source, m.target, list(m.shared)]
                                  for m in self.spec.morphisms],
                    "resolvers": [[r.name, r.target, list(r.vars)] for r in self.spec.resolvers]}
            h.update(json.dumps(head, sort_keys=True, separators=(",", ":")).encode())
            for t in sorted(self._repairs):
                rep = self._repairs[t]
                for m in rep.morphisms:
                    b = np.ascontiguousarray(rep.images[m.name], dtype="<i8").tobytes()
                    h.update(len(b).to_bytes(8, "little") + b)
                b = np.ascontiguousarray(rep.offsets, dtype="<i8").tobytes()
                h.update(len(b).to_bytes(8, "little") + b)
            self._digest = h.hexdigest()
        return self._digest

    def _member(self, name: str) -> Member:
        if name not in self._members:
            raise FederationError(f"unknown registry {name!r} (known: {', '.join(self.names)})")
        return self._members[name]

    def __repr__(self) -> str:
        return f"FederatedMachine({self.spec.name!r}, order={' -> '.join(self.order)})"
