"""The numbers a classification runs on: both machines' verified tables, the
v1 states a replica can be in, and the switch ``M = nf2 . map`` on each.

Both machines are analysed by the engine (``analyze``: enumeration, the
reachable scope) and must pass their own checks. The map is evaluated once
per *reachable* v1 state, vectorized: an expression map over the digit
columns of those states, a Python map by the engine's traced evaluation
(one call per path of its decision tree, never one per state). A map that
fails or leaves a v2 domain at a reachable state is a ``MigrationError``
naming that state; what it does at unreachable states never matters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.check import Analysis, analyze
from ..engine.decode import describe_state
from ..engine.space import Space
from ..engine.tabulate import _nd, _nd_index, _trace, machine_of
from ..errors import ConvergentError
from ..machine import Machine
from ..spec.model import MachineSpec, StateView, Var
from .errors import MigrationError
from .model import Migration

__all__ = ["Side", "Tables", "build_tables"]


@dataclass
class Side:
    """One machine: its verified tables, event names and verified pairs."""

    spec: MachineSpec
    analysis: Analysis
    machine: Machine
    step: np.ndarray                      # (E, N) normalized step tables
    names: tuple[str, ...]
    index: dict[str, int]
    independent: frozenset[frozenset[int]]  # verified independent pairs, by index

    @property
    def size(self) -> int:
        return int(self.machine.size)

    def state(self, sid: int) -> dict[str, Any]:
        return self.machine.decode(int(sid))

    def commutes_declared(self, a: int, b: int) -> bool:
        return a == b or frozenset((a, b)) in self.independent


@dataclass
class Tables:
    """v1 reachable states (BFS order, so the first of any subset is a
    shallowest one), the switch on each, and the event translation."""

    mig: Migration
    v1: Side
    v2: Side
    s0: int                      # v1's initial state (normalized)
    reach1: np.ndarray           # reachable v1 ids, BFS order
    parent1: np.ndarray          # BFS parent of each reachable v1 id
    pev1: np.ndarray             # the event that led there
    raw: np.ndarray              # map(s) for s in reach1 (v2 ids, before normalization)
    image: np.ndarray            # M(s) = nf2(map(s)) for s in reach1
    M: np.ndarray                # full v1 table: M(s), or -1 where s is unreachable
    tau: np.ndarray              # (E1,) the v2 event each v1 event becomes, -1: dropped
    nf2: np.ndarray
    valid2: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def trace1(self, sid: int) -> list[str]:
        """A shortest run of v1 events from the initial state to ``sid``."""
        out: list[str] = []
        s = int(sid)
        while int(self.pev1[s]) >= 0:
            out.append(self.v1.names[int(self.pev1[s])])
            s = int(self.parent1[s])
        return out[::-1]

    def translate(self, e1: int, z: np.ndarray) -> np.ndarray:
        """A v1 event applied at v2 states ``z``: its translation, or nothing."""
        t = int(self.tau[e1])
        return z if t < 0 else self.v2.step[t][z]


def _side(spec: MachineSpec, label: str) -> Side:
    an = analyze(spec)
    if not an.report.ok or an.step is None or an.reach is None:
        raise MigrationError(f"{label} ({spec.name!r}) does not pass its own check: "
                             f"{an.report.summary()} (run `convergent check` on it); a "
                             "switch is classified between two verified machines")
    m = Machine._from_analysis(an)
    names = tuple(m.events)
    index = {n: i for i, n in enumerate(names)}
    pairs = frozenset(frozenset((index[a], index[b])) for a, b in an.independent)
    return Side(spec, an, m, an.step, names, index, pairs)


def build_tables(mig: Migration) -> Tables:
    """Analyse both machines and evaluate the switch on every reachable v1 state.

    Raises MigrationError when a machine fails its own check, or the map
    fails or leaves a v2 domain at a reachable v1 state."""
    import time
    t0 = time.perf_counter()
    v1, v2 = _side(mig.v1, "v1"), _side(mig.v2, "v2")
    t1 = time.perf_counter()
    an1 = v1.analysis
    assert an1.reach is not None and an1.parent is not None and an1.parent_event is not None
    assert an1.initial_id is not None
    reach1 = an1.reach
    if mig.state_map.exprs is not None:
        raw = _eval_exprs(mig, v1, v2, reach1)
    else:
        raw = _eval_fn(mig, v1, v2, reach1)
    nf2 = v2.machine.nf_table
    valid2 = v2.machine.valid_table
    image = nf2[raw]
    M = np.full(v1.size, -1, dtype=np.int64)
    M[reach1] = image
    tau = np.array([-1 if mig.events[n] is None else v2.index[str(mig.events[n])]
                    for n in v1.names], dtype=np.int64)
    t2 = time.perf_counter()
    return Tables(mig, v1, v2, int(an1.initial_id), reach1, an1.parent, an1.parent_event,
                  raw, image, M, tau, nf2, valid2,
                  {"machines": round(t1 - t0, 6), "map": round(t2 - t1, 6)})


# ---------------------------------------------------------------- expression maps

def _digits(side: Side, ids: np.ndarray, i: int) -> np.ndarray:
    w = side.machine._weights[i]
    return (ids.astype(np.int64) // w) % side.spec.vars[i].size


def _columns(side: Side, ids: np.ndarray) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for i, var in enumerate(side.spec.vars):
        d = _digits(side, ids, i)
        cols[var.name] = (d.astype(bool) if var.kind == "bool" else
                          d + var.lo if var.kind == "int" else d)
    return cols


def _fail_at(mig: Migration, v1: Side, sid: int, name: str, message: str) -> MigrationError:
    state = v1.state(sid)
    where = mig.state_map.where.get(name)
    return MigrationError(f"the map {message} at the reachable v1 state {describe_state(state)}",
                          file=where.file if where else mig.state_map.source,
                          line=where.line if where else None, state=state)


def _eval_exprs(mig: Migration, v1: Side, v2: Side, reach1: np.ndarray) -> np.ndarray:
    assert mig.state_map.exprs is not None
    cols = _columns(v1, reach1)
    n = len(reach1)
    raw = np.zeros(n, dtype=np.int64)
    for j, var in enumerate(v2.spec.vars):
        expr = mig.state_map.exprs[var.name]
        values, err = expr.eval_vec(cols, n=n)
        if err is not None and err.any():
            k = int(np.flatnonzero(err)[0])
            raise _fail_at(mig, v1, int(reach1[k]), var.name,
                           f"cannot evaluate {var.name} = {expr.text}")
        digits = _to_digits(mig, v1, var, expr.type, values, reach1)
        raw += digits * v2.machine._weights[j]
    return raw


def _to_digits(mig: Migration, v1: Side, var: Var, etype: Any, values: np.ndarray,
               reach1: np.ndarray) -> np.ndarray:
    if var.kind == "bool":
        return np.asarray(values).astype(bool).astype(np.int64)
    if var.kind == "int":
        low = np.less(values, var.lo)
        high = np.greater(values, var.hi)
        out = np.asarray(low | high, dtype=bool)
        if out.any():
            k = int(np.flatnonzero(out)[0])
            raise _fail_at(mig, v1, int(reach1[k]), var.name,
                           f"gives {var.name} = {values[k]}, outside v2's [{var.lo}, {var.hi}]")
        return np.asarray(values).astype(np.int64) - var.lo
    idx = np.asarray(values).astype(np.int64)
    if tuple(etype) == tuple(var.values):
        return idx
    lut = np.array([var.values.index(v) if v in var.values else -1 for v in etype],
                   dtype=np.int64)
    digits = lut[idx]
    bad = digits < 0
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise _fail_at(mig, v1, int(reach1[k]), var.name,
                       f"gives {var.name} = {etype[int(idx[k])]}, which v2's enum "
                       f"[{', '.join(map(str, var.values))}] lacks")
    return digits


# ---------------------------------------------------------------- Python maps

def _eval_fn(mig: Migration, v1: Side, v2: Side, reach1: np.ndarray) -> np.ndarray:
    """Trace the map over the v1 vars it reads (engine/tabulate.py ``_trace``:
    depth first over its decision tree, every path run twice to refuse a
    function that is not deterministic), then look every reachable state up."""
    fn = mig.state_map.fn
    assert fn is not None
    m1 = machine_of(tuple(mig.v1.vars))
    v1_names = {v.name for v in mig.v1.vars}
    v2_vars = mig.v2.vars
    weights2 = v2.machine._weights

    def wrapped(view: StateView) -> Any:
        out = fn(view)
        if not hasattr(out, "items"):
            return f"returned {out!r}, expected a {{v2 var: value}} mapping"
        given: dict[str, Any] = {}
        for key, value in out.items():
            name = key.name if isinstance(key, Var) else key
            given[name] = value
        sid = 0
        for var, w in zip(v2_vars, weights2):
            if var.name in given:
                value = given.pop(var.name)
            elif var.name in v1_names:
                value = view[var.name]
            else:
                return (f"gave no value for v2 var {var.name!r} (and v1 has no var of "
                        "that name to copy)")
            try:
                sid += var.digit(value) * w
            except ValueError as exc:
                return f"gives {exc} in v2"
        if given:
            return f"gives {', '.join(map(repr, given))}, not vars of v2"
        return sid

    what = "the state map"
    try:
        leaves = _trace(m1, wrapped, what, lambda out: out)
    except ConvergentError as exc:
        raise MigrationError(str(exc)) from None
    reads: set[int] = set()
    for leaf in leaves:
        reads |= set(leaf.path)
    space = Space(m1.radices, sorted(reads))
    which = np.zeros(space.size, dtype=np.int64)
    nd = _nd(space, which)
    for k, leaf in enumerate(leaves):
        nd[_nd_index(space, leaf.path)] = k
    full = Space(m1.radices, range(len(m1.radices)))
    leaf_of = which[full.project(space, reach1.astype(np.int64))]
    ok = np.array([not leaf.failed and isinstance(leaf.out, int) for leaf in leaves])
    bad = ~ok[leaf_of]
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        leaf = leaves[int(leaf_of[k])]
        why = (f"raised {type(leaf.out).__name__}: {leaf.out}" if leaf.failed else str(leaf.out))
        state = v1.state(int(reach1[k]))
        raise MigrationError(f"the state map {why} at the reachable v1 state "
                             f"{describe_state(state)}", state=state)
    values = np.array([leaf.out if ok[k] else -1 for k, leaf in enumerate(leaves)],
                      dtype=np.int64)
    return values[leaf_of]
