"""From a MachineSpec to exact local tables: events, invariants, footprints.

Each event becomes one table over its *semantic* footprint K_e (the vars its
guard and assigned values really depend on, plus the vars it may change);
each invariant a ``holds`` table and a ``repair`` table. Declared footprints
(``reads``/``writes``/``watches``) are compared with these: smaller is a lie
(BuildError), larger is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import BuildError
from ..spec.model import Event, Invariant, MachineSpec
from .space import Space
from .tabulate import (
    AssignTable,
    PredTable,
    _Machine,
    constant_true,
    tabulate_assignment,
    tabulate_predicate,
    varies,
)

__all__ = ["CompiledEvent", "CompiledInvariant", "CompiledMachine", "compile_machine"]


@dataclass
class CompiledEvent:
    name: str
    index: int
    space: Space               # K_e: semantic reads | writes
    new: np.ndarray            # id in ``space`` after the event (guard applied)
    fires: np.ndarray          # guard value over ``space``
    err: np.ndarray | None     # guard true and the assignment failed/overflowed
    sat: np.ndarray | None     # guard true and an int saturated, over ``sat_space``
    eval_err: np.ndarray | None  # the guard, or the assignment where the guard holds,
                                 # cannot be evaluated (division by zero, an exception)
    reads: frozenset[int]
    writes: frozenset[int]
    source: Event
    # saturation depends on the values assigned, not on the footprint: a var
    # clamped back to its own value is neither read nor changed, yet where it
    # saturates depends on it. ``sat`` keeps the vars it varies over.
    sat_space: Space | None = None
    # every var the rule's code touches (reads on some path, or assigns),
    # before the semantic reduction: what a sub-machine must hold to run it
    syntactic: frozenset[int] = frozenset()

    @property
    def sat_on(self) -> Space:
        return self.space if self.sat_space is None else self.sat_space


@dataclass
class CompiledInvariant:
    name: str
    index: int
    holds: PredTable           # over its semantic reads
    repair: AssignTable        # over its semantic reads | writes
    reads: frozenset[int]
    source: Invariant
    syntactic: frozenset[int] = frozenset()


@dataclass
class CompiledMachine:
    spec: MachineSpec
    m: _Machine
    events: list[CompiledEvent]
    invariants: list[CompiledInvariant]
    warnings: list[str] = field(default_factory=list)

    @property
    def radices(self) -> tuple[int, ...]:
        return self.m.radices

    def names(self, idx: frozenset[int] | set[int]) -> list[str]:
        return [self.m.vars[i].name for i in sorted(idx)]


def _lift_pred(t: PredTable, space: Space) -> tuple[np.ndarray, np.ndarray | None]:
    p = space.project(t.space)
    return t.value[p], (None if t.err is None else t.err[p])


def _lift_assign(t: AssignTable, space: Space) -> tuple[np.ndarray, np.ndarray | None,
                                                         np.ndarray | None]:
    p = space.project(t.space)
    delta = t.space.restride(t.new, space)
    new = space.ids.astype(np.int64) + delta[p]
    return (new, None if t.err is None else t.err[p], None if t.sat is None else t.sat[p])


def _reduce(space: Space, keep: set[int], arrays: list[np.ndarray | None],
            new: np.ndarray | None = None) -> tuple[Space, list[np.ndarray | None],
                                                     np.ndarray | None]:
    """Restrict tables over ``space`` to the vars in ``keep`` (the slice where
    every dropped var is at digit 0): sound because nothing depends on them."""
    if keep == set(space.vars):
        return space, arrays, new
    small = Space(space.all_radices, sorted(keep))
    sel = small.embed(small.ids, space)
    out = [None if a is None else a[sel] for a in arrays]
    new_small = None
    if new is not None:
        new_small = space.project(small, new[sel].astype(np.int64))
    return small, out, new_small


def _sat_table(space: Space, sat: np.ndarray | None,
               keep: set[int]) -> tuple[Space | None, np.ndarray | None]:
    """``sat`` restricted to ``keep`` plus the vars it really varies over
    (exact, unlike restricting it to the footprint alone)."""
    if sat is None or not sat.any():
        return None, None
    sat_keep = keep | {v for v in space.vars if varies(sat, space, v)}
    small, (out,), _ = _reduce(space, sat_keep, [sat])
    return small, out


def _compile_event(m: _Machine, ev: Event, index: int) -> CompiledEvent:
    what = f"event {ev.name!r}"
    g = (tabulate_predicate(m, ev.guard, f"guard of {what}") if ev.guard is not None
         else constant_true(m))
    a = tabulate_assignment(m, ev.apply, f"apply of {what}")
    space = Space(m.radices, set(g.space.vars) | set(a.space.vars))
    fires, g_err = _lift_pred(g, space)
    a_new, a_err, a_sat = _lift_assign(a, space)
    a_ev = None if a.eval_err is None else a.eval_err[space.project(a.space)]
    ids = space.ids.astype(np.int64)
    new = np.where(fires, a_new, ids)
    err = g_err
    if a_err is not None:
        err = (a_err & fires) if err is None else (err | (a_err & fires))
    sat = None if a_sat is None else (a_sat & fires)
    eval_err = g_err
    if a_ev is not None:
        eval_err = (a_ev & fires) if eval_err is None else (eval_err | (a_ev & fires))
    if eval_err is not None:
        # no value where evaluation fails: a canonical no-op, so that the same
        # rules give the same tables (and digest) however they are written
        new = np.where(eval_err, ids, new)
    # semantic footprint, over the states where the event fires and can be
    # evaluated: an evaluation error yields no value (wherever it would be used
    # the check stops with a BuildError), and where it happens is a footprint
    # fact of its own, through ``eval_err``. Overflowing states stay: their
    # clamped values are what CC2 uses at invalid states.
    reads: set[int] = set()
    writes: set[int] = set()
    ok = fires if eval_err is None else (fires & ~eval_err)
    for w in a.writes:
        nd = space.digits_of(a_new, w)
        if (ok & (nd != space.digits(w))).any():
            writes.add(w)
    new_digits = {w: space.digits_of(a_new, w) for w in writes}
    for v in space.vars:
        if varies(fires, space, v) or (err is not None and varies(err, space, v)) \
                or (eval_err is not None and varies(eval_err, space, v)):
            reads.add(v)
            continue
        for w in writes:  # a var never changed needs no input: its value stays
            if varies(new_digits[w], space, v, mask=ok):
                reads.add(v)
                break
    keep = reads | writes
    small, (fires_s, err_s, ev_s), new_s = _reduce(space, keep, [fires, err, eval_err], new)
    sat_space, sat_s = _sat_table(space, sat, keep)
    if new_s is None:
        new_s = new
    return CompiledEvent(ev.name, index, small, new_s.astype(small.dtype), fires_s,  # type: ignore[arg-type]
                         err_s if err_s is not None and err_s.any() else None,
                         sat_s,
                         ev_s if ev_s is not None and ev_s.any() else None,
                         frozenset(reads), frozenset(writes), ev, sat_space,
                         frozenset(space.vars))


def _compile_invariant(m: _Machine, inv: Invariant, index: int) -> CompiledInvariant:
    what = f"invariant {inv.name!r}"
    h = tabulate_predicate(m, inv.holds, f"holds of {what}")
    syntactic = set(h.space.vars)
    reads = {v for v in h.space.vars
             if varies(h.value, h.space, v) or (h.err is not None and varies(h.err, h.space, v))}
    hs, (hv, he), _ = _reduce(h.space, reads, [h.value, h.err])
    h = PredTable(hs, hv, he)  # type: ignore[arg-type]
    r = tabulate_assignment(m, inv.repair, f"repair of {what}")
    syntactic |= set(r.space.vars)
    if r.eval_err is not None:  # canonical no-op where the repair cannot be evaluated
        r.new = np.where(r.eval_err, r.space.ids, r.new).astype(r.new.dtype)
    r_reads = set()
    r_writes = set()
    r_ok = None if r.eval_err is None else ~r.eval_err
    for w in r.writes:
        changed = r.space.digits_of(r.new, w) != r.space.digits(w)
        if (changed if r_ok is None else changed & r_ok).any():
            r_writes.add(w)
    r_digits = {w: r.space.digits_of(r.new, w) for w in r_writes}
    for v in r.space.vars:
        if r.err is not None and varies(r.err, r.space, v):
            r_reads.add(v)
            continue
        if any(varies(r_digits[w], r.space, v, mask=r_ok) for w in r_writes):
            r_reads.add(v)
    rs, (re_,), rnew = _reduce(r.space, r_reads | r_writes, [r.err], r.new)
    sat_space, rsat = _sat_table(r.space, r.sat, r_reads | r_writes)
    r = AssignTable(rs, (rnew if rnew is not None else r.new).astype(rs.dtype),
                    tuple(sorted(r_writes)), re_, rsat, None, sat_space)
    return CompiledInvariant(inv.name, index, h, r, frozenset(reads), inv, frozenset(syntactic))


def _check_declared(cm: CompiledMachine) -> None:
    """Declared footprints: smaller than the real one is an error, larger a warning."""
    problems: list[str] = []
    names = cm.m.index

    def compare(kind: str, owner: str, declared: tuple[str, ...] | None,
                real: frozenset[int]) -> None:
        if declared is None:
            return
        unknown = [d for d in declared if d not in names]
        if unknown:
            problems.append(f"{owner} declares {kind} of unknown var(s) {', '.join(unknown)}")
            return
        dec = {names[d] for d in declared}
        missing = real - dec
        extra = dec - real
        if missing:
            problems.append(
                f"{owner} declares {kind}: [{', '.join(declared)}] but really {kind} "
                f"{', '.join(cm.names(missing))} (inferred {kind}: "
                f"[{', '.join(cm.names(real))}])")
        if extra:
            cm.warnings.append(
                f"{owner} declares {kind} {', '.join(cm.names(extra))} that it does not "
                f"really {kind.rstrip('s') if kind != 'watches' else 'watch'} "
                f"(inferred: [{', '.join(cm.names(real))}])")

    for e in cm.events:
        compare("reads", f"event {e.name!r}", e.source.reads, e.reads)
        compare("writes", f"event {e.name!r}", e.source.writes, e.writes)
    for i in cm.invariants:
        compare("watches", f"invariant {i.name!r}", i.source.watches, i.reads)
    if problems:
        raise BuildError("declared footprint smaller than the real one:\n  "
                         + "\n  ".join(problems))


def compile_machine(spec: MachineSpec) -> CompiledMachine:
    m = _Machine(spec.vars)
    events, invariants = [], []
    for i, e in enumerate(spec.events):
        try:
            events.append(_compile_event(m, e, i))
        except BuildError as exc:
            raise exc.at(e.where.file, e.where.line, e.where.column) from exc.__cause__
    for i, inv in enumerate(spec.invariants):
        try:
            invariants.append(_compile_invariant(m, inv, i))
        except BuildError as exc:
            raise exc.at(inv.where.file, inv.where.line, inv.where.column) from exc.__cause__
    cm = CompiledMachine(spec, m, events, invariants)
    _check_declared(cm)
    return cm
