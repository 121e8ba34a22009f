"""Per-registry tables and per-target repair tables: what every check reads.

Each member is verified and tabulated by the core engine on its own (its step
tables, normal forms and validity); nothing here builds a table over the
product of several registries. A target's *repair* overwrites its shared vars
with the image its sources give; an image is stored as an id offset (the
shared digits times their strides), so ``overwrite(o, x) = base(x) + o`` is
two array operations over a whole table.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.check import Analysis, analyze
from ..engine.report import Report
from ..machine import Machine
from ..spec.model import MachineSpec, Var
from ._tabulate import digit_columns, tabulate_map
from .errors import FederationError
from .model import FederationSpec, Morphism, Resolver

__all__ = ["MAX_COMBINATIONS", "Member", "Repair", "ResolverFault", "build_members",
           "build_repair"]

#: more combinations of source images than this for one target is refused:
#: the checks would no longer be local to the target
MAX_COMBINATIONS = 1 << 16


@dataclass
class Member:
    """One registry, verified and tabulated: by the core engine from its spec
    (``from_analysis``), or re-checked from a certificate's tables (see
    ``certificate.py``). The checks read only the fields below."""

    name: str
    vars: tuple[Var, ...]
    events: tuple[str, ...]
    #: the declared independent pairs (C2 and XU check these)
    independent: tuple[tuple[str, str], ...]
    machine: Machine | None            # None when the registry could not be tabulated
    ok: bool
    verdict: str
    summary: str
    #: the registry's own report (``Report.to_dict()``) when it fails
    details: dict[str, Any] | None = None
    spec: MachineSpec | None = None
    report: Report | None = None

    @classmethod
    def from_analysis(cls, spec: MachineSpec, an: Analysis) -> Member:
        machine = Machine._from_analysis(an) if an.step is not None else None
        rep = an.report
        return cls(spec.name, spec.vars, tuple(e.name for e in spec.events),
                   tuple(spec.independent), machine, rep.ok, rep.verdict, rep.summary(),
                   None if rep.ok else rep.to_dict(), spec, rep)

    @property
    def states(self) -> int:
        n = 1
        for v in self.vars:
            n *= v.size
        return n

    @property
    def tabulated(self) -> bool:
        return self.machine is not None

    @property
    def step(self) -> np.ndarray:
        assert self.machine is not None
        return self.machine.tables

    @property
    def valid(self) -> np.ndarray:
        assert self.machine is not None
        return self.machine.valid_table

    @property
    def nf(self) -> np.ndarray:
        assert self.machine is not None
        return self.machine.nf_table

    def strides(self) -> dict[str, int]:
        out, w = {}, 1
        for v in self.vars:
            out[v.name] = w
            w *= v.size
        return out

    def decode(self, sid: int) -> dict[str, Any]:
        cols = digit_columns(self.vars, np.array([int(sid)], dtype=np.int64))
        return {v.name: _natural(v, v.values[int(c[0])]) for v, c in zip(self.vars, cols)}


def _natural(var: Var, value: Any) -> Any:
    return bool(value) if var.kind == "bool" else int(value) if var.kind == "int" else value


def build_members(fed: FederationSpec) -> dict[str, Member]:
    """Verify every member with the core engine (its own WFC, CC1, reachability),
    and re-check every certified member on its tables."""
    out = {spec.name: Member.from_analysis(spec, analyze(spec)) for spec in fed.members}
    if fed.certified:
        from .certificate import certified_member
        out.update((reg.name, certified_member(reg)) for reg in fed.certified)
    return out


@dataclass(frozen=True)
class ResolverFault:
    """Why a target's repair is not a function of its sources (R1)."""

    message: str
    proposals: dict[str, dict[str, Any]] | None = None
    sources: dict[str, dict[str, Any]] | None = None


@dataclass
class Repair:
    """The repair of one target: its shared vars and every image its sources
    can give from valid states (with one witness per image)."""

    target: Member
    morphisms: tuple[Morphism, ...]
    resolvers: tuple[Resolver, ...]
    shared: tuple[str, ...]                      # in the target's var order
    images: dict[str, np.ndarray]                # morphism -> (N_source, k) target digits
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    witnesses: list[dict[str, int]] = field(default_factory=list)  # source ids per offset
    fault: ResolverFault | None = None
    _weights: dict[str, int] = field(default_factory=dict)
    _memo: dict[Any, int] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.source for m in self.morphisms))

    def shared_part(self, ids: np.ndarray) -> np.ndarray:
        """The offset of the shared digits of each target id."""
        out = np.zeros(np.shape(ids), dtype=np.int64)
        for v in self.target.vars:
            if v.name in self.shared:
                w = self._weights[v.name]
                out += ((np.asarray(ids, dtype=np.int64) // w) % v.size) * w
        return out

    def base(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        return ids - self.shared_part(ids)

    def overwrite(self, offset: int | np.ndarray, ids: np.ndarray) -> np.ndarray:
        return self.base(ids) + offset

    def offset_at(self, source_ids: Mapping[str, int]) -> int:
        """The image offset given the sources' current state ids (the runtime path)."""
        rows = tuple((m.name, tuple(int(d) for d in self.images[m.name][source_ids[m.source]]))
                     for m in self.morphisms)
        got = self._memo.get(rows)
        if got is None:
            got = self._combine(dict(rows))
            if len(self._memo) < 1 << 16:
                self._memo[rows] = got
        return got

    def offset_of_rows(self, rows: Mapping[str, tuple[int, ...]]) -> int:
        """The image offset given each incoming morphism's shared digits
        (``{morphism: digits in its shared order}``), resolvers applied: the
        runtime path, where a target holds projections, not source states."""
        return self._combine(rows)

    def _combine(self, rows: Mapping[str, tuple[int, ...]]) -> int:
        tv = {v.name: v for v in self.target.vars}
        digits: dict[str, int] = {}
        for m in self.morphisms:
            for var, d in zip(m.shared, rows[m.name]):
                if any(var in r.vars for r in self.resolvers):
                    continue
                digits[var] = d
        for r in self.resolvers:
            proposals: dict[str, dict[str, Any]] = {}
            for m in self.morphisms:
                for var, d in zip(m.shared, rows[m.name]):
                    if var in r.vars:
                        proposals.setdefault(m.source, {})[var] = _natural(tv[var],
                                                                           tv[var].values[d])
            got = _call_resolver(r, proposals, tv)
            again = _call_resolver(r, proposals, tv)
            if got != again:
                raise _Fault(ResolverFault(
                    f"resolver {r.name!r} is not deterministic: it returned {got} then "
                    f"{again} for the same proposals", proposals))
            digits.update(got)
        return sum(digits[v] * self._weights[v] for v in self.shared)


class _Fault(Exception):
    def __init__(self, fault: ResolverFault) -> None:
        self.fault = fault


def _call_resolver(r: Resolver, proposals: dict[str, dict[str, Any]],
                   tv: dict[str, Var]) -> dict[str, int]:
    try:
        got = r.fn({k: dict(v) for k, v in proposals.items()})
    except Exception as exc:
        raise _Fault(ResolverFault(f"resolver {r.name!r} raised {exc!r}", proposals)) from exc
    if not isinstance(got, Mapping):
        raise _Fault(ResolverFault(f"resolver {r.name!r} returned {got!r}, expected "
                                   "{var: value}", proposals))
    keys = {k.name if isinstance(k, Var) else k: v for k, v in got.items()}
    if set(keys) != set(r.vars):
        raise _Fault(ResolverFault(
            f"resolver {r.name!r} writes {sorted(map(str, keys))}, expected exactly its vars "
            f"{list(r.vars)} (a resolver writes only the shared vars it resolves)", proposals))
    out = {}
    for var in r.vars:
        try:
            out[var] = tv[var].digit(keys[var])
        except ValueError as exc:
            raise _Fault(ResolverFault(f"resolver {r.name!r}: {exc}", proposals)) from None
    return out


def build_repair(fed: FederationSpec, members: Mapping[str, Member], target: str, *,
                 every_state: frozenset[str] = frozenset()) -> Repair:
    """Tabulate every incoming map and enumerate the images from valid source
    states: per source, the distinct joint proposals; across sources, their
    combinations (the sources' valid states vary independently).

    Sources named in ``every_state`` range over *all* their states instead of
    the valid ones: on an accepted cycle a source's state at the fixed point
    is only known to be valid once M1 holds, so the images are taken where
    nothing is assumed (sound, possibly conservative)."""
    tm = members[target]
    morphisms = fed.incoming(target)
    resolvers = tuple(r for r in fed.resolvers if r.target == target)
    owned = {v for m in morphisms for v in m.shared}
    shared = tuple(v.name for v in tm.vars if v.name in owned)
    images = {m.name: tabulate_map(m, members[m.source].vars, tm.vars) for m in morphisms}
    rep = Repair(tm, morphisms, resolvers, shared, images, _weights=tm.strides())
    for r in resolvers:
        unowned = [v for v in r.vars if v not in owned]
        if unowned:
            raise FederationError(f"resolver {r.name!r}: {unowned} of {target!r} have no "
                                  "source (no morphism is authoritative over them)")
    for var in shared:
        owners = [m.name for m in morphisms if var in m.shared]
        if len(owners) > 1 and fed.resolver_of(target, var) is None:
            rep.fault = ResolverFault(
                f"{target}.{var} has several sources ({', '.join(owners)}) and no resolver: "
                "the sources' authority conflicts")
            return rep
    # per source: distinct joint rows over its valid states, with a witness each
    per_source: list[tuple[str, list[tuple[dict[str, tuple[int, ...]], int]]]] = []
    total = 1
    for src in rep.sources:
        sm = members[src]
        ms = [m for m in morphisms if m.source == src]
        valid_ids = (np.flatnonzero(sm.valid) if sm.tabulated and src not in every_state
                     else np.arange(images[ms[0].name].shape[0]))
        joint = np.concatenate([images[m.name][valid_ids] for m in ms], axis=1)
        uniq, first = np.unique(joint, axis=0, return_index=True)
        choices = []
        for row, i in zip(uniq, first):
            split, k = {}, 0
            for m in ms:
                split[m.name] = tuple(int(d) for d in row[k:k + len(m.shared)])
                k += len(m.shared)
            choices.append((split, int(valid_ids[i])))
        per_source.append((src, choices))
        total *= len(choices)
    if total > MAX_COMBINATIONS:
        raise FederationError(
            f"target {target!r}: its sources can give {total} combinations of images "
            f"(more than {MAX_COMBINATIONS}); narrow the maps or split the target")
    seen: dict[int, dict[str, int]] = {}
    for combo in itertools.product(*(c for _, c in per_source)):
        rows: dict[str, tuple[int, ...]] = {}
        witness: dict[str, int] = {}
        for (src, _), (split, sid) in zip(per_source, combo):
            rows.update(split)
            witness[src] = sid
        try:
            off = rep._combine(rows)
        except _Fault as f:
            rep.fault = ResolverFault(f.fault.message, f.fault.proposals,
                                      {s: members[s].decode(i) for s, i in witness.items()})
            return rep
        seen.setdefault(off, witness)
    rep.offsets = np.array(sorted(seen), dtype=np.int64)
    rep.witnesses = [seen[int(o)] for o in rep.offsets]
    return rep
