"""Enumeration in shards: the engine's check with its full-space work split
into tasks that any number of processes (or hosts) can run.

Whole enumeration (``check.py``) writes one step table of N ids per event
and keeps per-state arrays for reachability; past ~2^28 states that no longer
fits one host. Here nothing of size N is ever built:

* every full-space quantity is a **per-state function** computed on the fly
  from the compiled rules (each a table over its own footprint, small) and
  the normalizer (over the invariants' vars D, small): ``step_e(s) =
  nf(raw_e(s))`` is two gathers and two projections of ``s``;
* a pair's commutation facts over all valid states are swept over the
  pair's space in **contiguous id ranges** (one task per range); the
  smallest failing id of the space is the minimum of the shards' minima, so
  the counterexample is the one whole enumeration chooses;
* reachability is a **level-synchronous BFS**: each level's frontier is cut
  into chunks whose successors the tasks compute; the coordinator merges
  them exactly as ``_Checker._reach`` does (event by event, first
  occurrence wins), so levels, parents and traces are identical. It keeps a
  visited *bitmap* (N/8 bytes) and the reachable states only;
* the pairs' reachable facts are evaluated on chunks of the reachable set.

Everything else (compilation, normalization, WFC, CC2, overflow checks,
findings, the delivery contract) is the engine's own code, unchanged, run by
the coordinator on sub-spaces, so the report is the whole-enumeration report.

Soundness: every task result is validated before it is used (shape, ranges,
and the id ranges it covered), the ranges of a sweep must tile the space
exactly, and a task that fails or is lost raises: a verdict is only ever
given when every state of its scope was checked. The executor (local, or a
Dask cluster in ``convergent.cluster``) only runs tasks; this module is pure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from ..errors import BuildError, ConvergentError
from ..spec.model import MachineSpec
from .check import Analysis, Progress, _Checker
from .compile import CompiledEvent, CompiledMachine, compile_machine
from .decode import describe_state, local_to_state
from .delivery import delivery
from .normalize import Normalizer
from .report import (
    CC2Counterexample,
    CC2Result,
    Report,
)
from .space import Space

__all__ = [
    "BLOCK",
    "EVENT_FACTS",
    "SHARD_MAX_STATES",
    "Executor",
    "LocalExecutor",
    "ShardContext",
    "ShardError",
    "ShardPlan",
    "Task",
    "analyze_sharded",
    "run_task",
    "split_range",
]

#: the largest state space a sharded check accepts (ids stay int64; the
#: coordinator's visited bitmap is N/8 bytes: 128 GiB at this size)
SHARD_MAX_STATES = 2**40

#: states evaluated at once inside a task. Small on purpose: each temporary
#: (8 bytes a state) stays under glibc's mmap threshold, so it is reused from
#: the heap; Dask workers run with MALLOC_TRIM_THRESHOLD_ set, under which
#: bigger temporaries are mapped and unmapped on every call (4x slower, with
#: a page fault per page), and small blocks also stay in cache
BLOCK = 1 << 13


class ShardError(ConvergentError):
    """A shard task failed, was lost, or returned something that is not a
    valid answer to the task it was given: the check has no verdict."""


@dataclass(frozen=True)
class Task:
    """One unit of work. ``kind``:

    * ``"expand"``: ``payload = (ids,)``: the step of every event at these
      full ids, an ``(E, len(ids))`` int64 array;
    * ``"sweep"``: ``payload = (space_vars, pairs, lo, hi)``: for each pair
      ``(a, b)`` of event indices, the smallest local id in ``[lo, hi)`` of
      the space of ``space_vars`` where the pair does not commute at a valid
      state (-1 if none), as ``(lo, hi, mins)``;
    * ``"at"``: ``payload = (space_vars, pairs, ids, depths)``: for each pair,
      ``(depth, id)`` of the shallowest, then smallest, full id of ``ids``
      (sorted, with their BFS depths) where it does not commute, or (-1, -1);
    * ``"esweep"``: ``payload = (space_vars, event, lo, hi)``: an event's facts
      over a range of its space (``EVENT_FACTS``), as ``(lo, hi, mins)``;
    * ``"eat"``: ``payload = (space_vars, event, ids, depths)``: where at
      ``ids`` the event is not idempotent, as ``((depth, id),)``.
    """

    kind: str
    payload: tuple[Any, ...]

    @property
    def size(self) -> int:
        """States the task evaluates (to decide where it runs)."""
        if self.kind == "expand":
            return len(self.payload[0])
        if self.kind in ("sweep", "esweep"):
            return int(self.payload[3]) - int(self.payload[2])
        return len(self.payload[2])


class Executor(Protocol):
    """Runs tasks, returning their results in order, or raising."""

    @property
    def workers(self) -> int: ...

    def map(self, tasks: Sequence[Task]) -> list[Any]: ...


@dataclass(frozen=True)
class ShardPlan:
    """How work is cut: ``shards`` contiguous ranges per swept space;
    BFS frontiers in chunks of at most ``chunk`` states; any task of fewer
    than ``local_below`` states runs in the coordinator (a round trip costs
    more than the work); 0 ships everything (tests)."""

    shards: int = 8
    chunk: int = 1 << 20
    local_below: int = 1 << 16

    def __post_init__(self) -> None:
        if not isinstance(self.shards, int) or self.shards < 1 or self.shards > 1 << 20:
            raise ValueError(f"shards={self.shards!r} (expected an int in 1..2^20)")
        if not isinstance(self.chunk, int) or self.chunk < 1:
            raise ValueError(f"chunk={self.chunk!r} (expected an int >= 1)")
        if not isinstance(self.local_below, int) or self.local_below < 0:
            raise ValueError(f"local_below={self.local_below!r} (expected an int >= 0)")


def split_range(size: int, parts: int) -> list[tuple[int, int]]:
    """``[0, size)`` in at most ``parts`` contiguous, non-empty, near-equal ranges."""
    parts = max(1, min(parts, size))
    return [(size * k // parts, size * (k + 1) // parts) for k in range(parts)
            if size * k // parts < size * (k + 1) // parts]


# ---------------------------------------------------------------- per-state functions

class _Projector:
    """Ids of ``src`` to ids of ``target`` (a sub-space: the same digits of
    fewer vars) by lookups instead of a division and a modulo per var: the
    vars of ``src`` are cut into consecutive groups of at most
    ``GROUP_LIMIT`` joint values; group g's digits of an id are ``(id //
    stride_g) % size_g``, and a table maps them to their part of the target
    id. A projection is then one division (and modulo) per group, not per
    var, and groups without target vars cost nothing."""

    GROUP_LIMIT = 1 << 16

    def __init__(self, src: Space, target: Space, group_limit: int = GROUP_LIMIT) -> None:
        self.parts: list[tuple[int, int | None, np.ndarray]] = []
        self.empty = not target.vars
        vars_ = list(src.vars)
        k = 0
        while k < len(vars_):
            group = [vars_[k]]
            size = src.all_radices[vars_[k]]
            k += 1
            while k < len(vars_) and size * src.all_radices[vars_[k]] <= group_limit:
                size *= src.all_radices[vars_[k]]
                group.append(vars_[k])
                k += 1
            mine = [v for v in group if v in target.stride]
            if not mine:
                continue
            g = Space(src.all_radices, group)
            table = np.zeros(g.size, dtype=np.int64)
            for v in mine:
                table += g.digits(v).astype(np.int64) * target.stride[v]
            # narrow tables stay in cache: target ids fit the target's dtype
            table = table.astype(target.dtype)
            stride = src.stride[group[0]]
            # the most significant group needs no modulo
            modulo = None if stride * g.size == src.size else g.size
            self.parts.append((stride, modulo, table))

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        out: np.ndarray | None = None
        for stride, modulo, table in self.parts:
            x = ids if stride == 1 else ids // stride
            if modulo is not None:
                x = x % modulo
            t = table[x]
            out = t if out is None else out + t
        return np.zeros(len(ids), dtype=np.int64) if out is None else out


class ShardContext:
    """What a task needs: the compiled machine and its normalizer (both
    built from the spec, deterministic, and small: rule footprints and the
    invariants' vars), with the per-state functions of the check."""

    def __init__(self, cm: CompiledMachine, norm: Normalizer) -> None:
        self.cm = cm
        self.norm = norm
        self.full = Space(cm.radices, range(len(cm.radices)))
        self._spaces: dict[tuple[int, ...], Space] = {}
        self._deltas: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self._projectors: dict[tuple[tuple[int, ...], tuple[int, ...]], _Projector] = {}

    @classmethod
    def from_spec(cls, spec: MachineSpec) -> ShardContext:
        cm = compile_machine(spec)
        norm = Normalizer(cm)
        if norm.wfc_failure is not None:
            raise ShardError(f"{spec.name!r}: repairs loop (WFC fails); no shard task "
                             "runs on such a machine")
        return cls(cm, norm)

    def space(self, vars: Sequence[int]) -> Space:
        key = tuple(sorted(int(v) for v in vars))
        got = self._spaces.get(key)
        if got is None:
            if any(v < 0 or v >= len(self.cm.radices) for v in key):
                raise ShardError(f"space vars {key} outside the machine's "
                                 f"{len(self.cm.radices)} vars")
            got = self._spaces[key] = (self.full if len(key) == len(self.cm.radices)
                                       else Space(self.cm.radices, key))
        return got

    def event(self, index: int) -> CompiledEvent:
        if not 0 <= index < len(self.cm.events):
            raise ShardError(f"event index {index} outside 0..{len(self.cm.events) - 1}")
        return self.cm.events[index]

    def project(self, sp: Space, target: Space, ids: np.ndarray) -> np.ndarray:
        """``sp.project(target, ids)``, by table lookups (see ``_Projector``)."""
        key = (sp.vars, target.vars)
        got = self._projectors.get(key)
        if got is None:
            got = self._projectors[key] = _Projector(sp, target)
        return got(ids)

    def step(self, sp: Space, e: CompiledEvent, ids: np.ndarray) -> np.ndarray:
        """``nf(raw_e(s))`` at ids of ``sp`` (which holds e's vars and D's),
        exactly the engine's ``event_on(e, sp).step[ids]``."""
        key = (e.index, sp.vars)
        delta = self._deltas.get(key)
        if delta is None:
            delta = self._deltas[key] = e.space.restride(e.new, sp).astype(sp.dtype)
        nf = self._deltas.get((-1, sp.vars))
        if nf is None:
            nf = self._deltas[(-1, sp.vars)] = self.norm.nf_delta(sp).astype(sp.dtype)
        raw = ids + delta[self.project(sp, e.space, ids)]
        return raw + nf[self.project(sp, self.norm.space, raw)]

    def valid(self, sp: Space, ids: np.ndarray) -> np.ndarray:
        return self.norm.valid[self.project(sp, self.norm.space, ids)]

    def bad_pairs(self, sp: Space, pairs: Sequence[tuple[int, int]],
                  ids: np.ndarray) -> Iterator[np.ndarray]:
        """For each pair, where (at these ids of ``sp``) it does not commute
        at a valid state: ``step_b(step_a(s)) != step_a(step_b(s))``."""
        valid = self.valid(sp, ids)
        once: dict[int, np.ndarray] = {}

        def first(i: int) -> np.ndarray:
            got = once.get(i)
            if got is None:
                got = once[i] = self.step(sp, self.event(i), ids)
            return got

        for a, b in pairs:
            ea, eb = self.event(a), self.event(b)
            ab = self.step(sp, eb, first(a))
            ba = self.step(sp, ea, first(b))
            yield (ab != ba) & valid


def _as_ids(x: Any, n: int, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype.kind not in "iu":
        raise ShardError(f"{what}: expected a 1-d int array")
    ids = x.astype(np.int64, copy=False)
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise ShardError(f"{what}: ids outside 0..{n - 1}")
    return ids


def _as_pairs(x: Any, events: int) -> list[tuple[int, int]]:
    if not isinstance(x, tuple) or not x:
        raise ShardError("pairs: expected a non-empty tuple")
    out = []
    for p in x:
        if (not isinstance(p, tuple) or len(p) != 2
                or not all(isinstance(i, int) and 0 <= i < events for i in p)):
            raise ShardError(f"pairs: {p!r} is not a pair of event indices")
        out.append((p[0], p[1]))
    return out


#: what an event sweep reports, in this order (smallest local ids, -1 if none)
EVENT_FACTS = ("idempotence", "cc2", "overflow", "eval_error")


def _range(p: tuple[Any, ...], size: int) -> tuple[int, int]:
    lo, hi = p[2], p[3]
    if not (type(lo) is int and type(hi) is int and 0 <= lo <= hi <= size):
        raise ShardError(f"sweep range [{lo!r}, {hi!r}) outside [0, {size})")
    return lo, hi


def _event_index(x: Any, ctx: ShardContext) -> CompiledEvent:
    if type(x) is not int:
        raise ShardError(f"event index {x!r} is not an int")
    return ctx.event(x)


def _expand(ctx: ShardContext, p: tuple[Any, ...]) -> np.ndarray:
    ids = _as_ids(p[0], ctx.full.size, "expand")
    out = np.empty((len(ctx.cm.events), len(ids)), dtype=np.int64)
    for b0 in range(0, len(ids), BLOCK):
        blk = ids[b0:b0 + BLOCK]
        for e in ctx.cm.events:
            out[e.index, b0:b0 + len(blk)] = ctx.step(ctx.full, e, blk)
    return out


def _sweep(ctx: ShardContext, p: tuple[Any, ...]) -> tuple[int, int, tuple[int, ...]]:
    sp = ctx.space(p[0])
    pairs = _as_pairs(p[1], len(ctx.cm.events))
    lo, hi = _range(p, sp.size)
    mins = [-1] * len(pairs)
    for b0 in range(lo, hi, BLOCK):
        open_ = [k for k in range(len(pairs)) if mins[k] < 0]
        if not open_:
            break      # every pair has its smallest failing id: blocks ascend
        ids = np.arange(b0, min(hi, b0 + BLOCK), dtype=np.int64)
        for k, bad in zip(open_, ctx.bad_pairs(sp, [pairs[k] for k in open_], ids)):
            hit = np.flatnonzero(bad)
            if len(hit):
                mins[k] = b0 + int(hit[0])
    return (lo, hi, tuple(mins))


def _event_sweep(ctx: ShardContext, p: tuple[Any, ...]) -> tuple[int, int, tuple[int, ...]]:
    """For one event over a range of its space (e's vars and D's), the
    smallest local id where: applying it twice differs from once at a valid
    state; it does not commute with a repair at an invalid state (CC2); it
    overflows under ``error`` at a valid state; it cannot be evaluated at an
    invalid state or after one repair of it (EVENT_FACTS order)."""
    sp = ctx.space(p[0])
    e = _event_index(p[1], ctx)
    lo, hi = _range(p, sp.size)
    norm = ctx.norm
    mins = [-1] * len(EVENT_FACTS)
    if e.err is None:
        mins[2] = -2          # nothing to look for (reported as -1)
    if e.eval_err is None:
        mins[3] = -2
    rho_delta = norm.rho_delta(sp)
    for b0 in range(lo, hi, BLOCK):
        if all(m != -1 for m in mins):
            break
        ids = np.arange(b0, min(hi, b0 + BLOCK), dtype=np.int64)
        pd = ctx.project(sp, norm.space, ids)
        valid = norm.valid[pd]
        found: list[np.ndarray | None] = [None] * len(EVENT_FACTS)
        if mins[0] == -1 or mins[1] == -1:
            st = ctx.step(sp, e, ids)
            if mins[0] == -1:
                found[0] = valid & (ctx.step(sp, e, st) != st)
            if mins[1] == -1:
                inv = np.flatnonzero(~valid)
                bad = np.zeros(len(ids), dtype=bool)
                if len(inv):
                    rho = ids[inv] + rho_delta[pd[inv]]
                    bad[inv] = st[inv] != ctx.step(sp, e, rho)
                found[1] = bad
        if mins[2] == -1:
            assert e.err is not None
            found[2] = valid & e.err[ctx.project(sp, e.space, ids)]
        if mins[3] == -1:
            assert e.eval_err is not None
            ev = e.eval_err
            rho_all = ids + rho_delta[pd]
            found[3] = ~valid & (ev[ctx.project(sp, e.space, ids)]
                                | ev[ctx.project(sp, e.space, rho_all)])
        for k, f in enumerate(found):
            if f is not None:
                hit = np.flatnonzero(f)
                if len(hit):
                    mins[k] = b0 + int(hit[0])
    return (lo, hi, tuple(-1 if m == -2 else m for m in mins))


def _at_checked(ctx: ShardContext, p: tuple[Any, ...]) -> tuple[Space, np.ndarray, np.ndarray]:
    sp = ctx.space(p[0])
    ids = _as_ids(p[2], ctx.full.size, "at")
    depths = p[3]
    if not isinstance(depths, np.ndarray) or depths.shape != ids.shape:
        raise ShardError("at: depths do not match ids")
    return sp, ids, depths


def _best(best: tuple[int, int], bad: np.ndarray, blk: np.ndarray,
          dep: np.ndarray) -> tuple[int, int]:
    """The shallowest, then smallest, id where ``bad``, against ``best``."""
    if not bad.any():
        return best
    ds = dep[bad]
    dmin = int(ds.min())
    cand = (dmin, int(blk[bad][ds == dmin].min()))
    return cand if best[0] < 0 or cand < best else best


def _at(ctx: ShardContext, p: tuple[Any, ...]) -> tuple[tuple[int, int], ...]:
    pairs = _as_pairs(p[1], len(ctx.cm.events))
    sp, ids, depths = _at_checked(ctx, p)
    best: list[tuple[int, int]] = [(-1, -1)] * len(pairs)
    for b0 in range(0, len(ids), BLOCK):
        blk, dep = ids[b0:b0 + BLOCK], depths[b0:b0 + BLOCK]
        local = blk if sp is ctx.full else ctx.project(ctx.full, sp, blk)
        for k, bad in enumerate(ctx.bad_pairs(sp, pairs, local)):
            best[k] = _best(best[k], bad, blk, dep)
    return tuple(best)


def _event_at(ctx: ShardContext, p: tuple[Any, ...]) -> tuple[tuple[int, int]]:
    """Idempotence at reachable states: the shallowest, then smallest, id
    of ``ids`` where applying the event twice differs from once."""
    e = _event_index(p[1], ctx)
    sp, ids, depths = _at_checked(ctx, p)
    best = (-1, -1)
    for b0 in range(0, len(ids), BLOCK):
        blk, dep = ids[b0:b0 + BLOCK], depths[b0:b0 + BLOCK]
        local = blk if sp is ctx.full else ctx.project(ctx.full, sp, blk)
        st = ctx.step(sp, e, local)
        best = _best(best, ctx.valid(sp, local) & (ctx.step(sp, e, st) != st), blk, dep)
    return (best,)


_KINDS = {"expand": _expand, "sweep": _sweep, "esweep": _event_sweep, "at": _at,
          "eat": _event_at}


def run_task(ctx: ShardContext, task: Task) -> Any:
    """Run one task (on a worker, or in the coordinator). Its payload is
    checked first: a task is data that crossed a process boundary."""
    if not isinstance(task, Task) or not isinstance(task.payload, tuple):
        raise ShardError(f"not a task: {type(task).__name__}")
    fn = _KINDS.get(task.kind)
    if fn is None:
        raise ShardError(f"unknown task kind {task.kind!r}")
    want = 1 if task.kind == "expand" else 4
    if len(task.payload) != want:
        raise ShardError(f"a {task.kind!r} task has {len(task.payload)} fields, not {want}")
    return fn(ctx, task.payload)


class LocalExecutor:
    """Runs every task in this process (one worker): the reference the
    distributed executors must agree with, and the coordinator's own runner
    for tasks too small to ship."""

    def __init__(self, ctx: ShardContext) -> None:
        self.ctx = ctx

    @property
    def workers(self) -> int:
        return 1

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        return [run_task(self.ctx, t) for t in tasks]


# ---------------------------------------------------------------- validation

def _check_expand(task: Task, got: Any, events: int, n: int) -> np.ndarray:
    want = (events, len(task.payload[0]))
    if not isinstance(got, np.ndarray) or got.shape != want or got.dtype != np.int64:
        raise ShardError(f"an expand task returned {_what(got)}, expected int64 {want}")
    if got.size and (int(got.min()) < 0 or int(got.max()) >= n):
        raise ShardError("an expand task returned ids outside the state space")
    return got


def _check_sweep(task: Task, got: Any) -> tuple[int, ...]:
    _, what, lo, hi = task.payload
    n = len(what) if task.kind == "sweep" else len(EVENT_FACTS)
    if (not isinstance(got, tuple) or len(got) != 3 or got[0] != lo or got[1] != hi
            or not isinstance(got[2], tuple) or len(got[2]) != n):
        raise ShardError(f"a sweep task for [{lo}, {hi}) returned {_what(got)}")
    for m in got[2]:
        if type(m) is not int or not (m == -1 or lo <= m < hi):
            raise ShardError(f"a sweep task for [{lo}, {hi}) returned the id {m!r}")
    return cast(tuple[int, ...], got[2])


def _check_at(task: Task, got: Any) -> tuple[tuple[int, int], ...]:
    _, what, ids, depths = task.payload
    n = len(what) if task.kind == "at" else 1
    if not isinstance(got, tuple) or len(got) != n:
        raise ShardError(f"an 'at' task returned {_what(got)}")
    for x in got:
        if (not isinstance(x, tuple) or len(x) != 2
                or not all(type(v) is int for v in x)):
            raise ShardError(f"an 'at' task returned {x!r}")
        if x == (-1, -1):
            continue
        k = int(np.searchsorted(ids, x[1]))
        if k >= len(ids) or int(ids[k]) != x[1] or int(depths[k]) != x[0]:
            raise ShardError(f"an 'at' task returned {x!r}, not one of its states")
    return cast(tuple[tuple[int, int], ...], got)


def _what(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"an array {x.dtype} {x.shape}"
    return type(x).__name__


# ---------------------------------------------------------------- sparse per-state maps

class _Sparse:
    """A per-state array defined on the reachable states only (sorted ids),
    indexable like the engine's full arrays by one id or an id array; an id
    outside raises, never reads a default."""

    def __init__(self, sorted_ids: np.ndarray, values: np.ndarray) -> None:
        self.ids = sorted_ids
        self.values = values

    def __getitem__(self, key: Any) -> Any:
        arr = np.asarray(key, dtype=np.int64)
        k = np.searchsorted(self.ids, arr)
        k = np.minimum(k, len(self.ids) - 1)
        if not np.all(self.ids[k] == arr):
            raise KeyError("a state outside the reachable set")
        out = self.values[k]
        return out if arr.ndim else out.item()


class _Bits:
    """N visited flags in N/8 bytes."""

    def __init__(self, n: int) -> None:
        self.bits = np.zeros((n + 7) // 8, dtype=np.uint8)

    def get(self, ids: np.ndarray) -> np.ndarray:
        return ((self.bits[ids >> 3] >> (ids & 7).astype(np.uint8)) & 1).astype(bool)

    def set(self, ids: np.ndarray) -> None:
        np.bitwise_or.at(self.bits, ids >> 3, (1 << (ids & 7)).astype(np.uint8))


class _LazyRow:
    def __init__(self, ctx: ShardContext, e: CompiledEvent) -> None:
        self.ctx, self.e = ctx, e

    def __getitem__(self, s: Any) -> Any:
        arr = np.asarray(s, dtype=np.int64)
        out = self.ctx.step(self.ctx.full, self.e, arr.reshape(-1))
        return out.reshape(arr.shape) if arr.ndim else int(out[0])


class _LazyStep:
    """Stands for the (E, N) step tables where the engine reads a few
    entries (counterexamples): ``step[e][s]`` computed on demand."""

    def __init__(self, ctx: ShardContext) -> None:
        self.ctx = ctx
        self.shape = (len(ctx.cm.events), ctx.full.size)

    def __getitem__(self, e: int) -> _LazyRow:
        return _LazyRow(self.ctx, self.ctx.cm.events[int(e)])


# ---------------------------------------------------------------- the checker

Fact = tuple[int | None, tuple[int, int] | None]


class _ShardedChecker(_Checker):
    """The engine's checker with its full-space phases (step tables,
    reachability, pair sweeps) replaced by sharded ones."""

    def __init__(self, spec: MachineSpec, scope: str, strict: bool, progress: Progress | None,
                 independent: str, executor: Executor | None, plan: ShardPlan) -> None:
        super().__init__(spec, scope, strict, progress, independent)
        self.executor = executor
        self.plan = plan
        self.tasks_shipped = 0
        self.tasks_local = 0

    # -- running tasks

    def _run(self, tasks: list[Task]) -> list[Any]:
        local = LocalExecutor(self.ctx)
        remote = self.executor
        ship = [k for k, t in enumerate(tasks)
                if remote is not None and t.size >= self.plan.local_below]
        out: list[Any] = [None] * len(tasks)
        if ship:
            assert remote is not None
            try:
                got = remote.map([tasks[k] for k in ship])
            except ShardError:
                raise
            except Exception as exc:
                raise ShardError(f"a shard task failed ({type(exc).__name__}: {exc}); "
                                 "the check has no verdict") from exc
            if not isinstance(got, list) or len(got) != len(ship):
                raise ShardError(f"the executor returned {_what(got)} for {len(ship)} tasks")
            for k, g in zip(ship, got):
                self._vet(tasks[k], g)
                out[k] = g
            self.tasks_shipped += len(ship)
        rest = sorted(set(range(len(tasks))) - set(ship))
        for k in rest:
            out[k] = local.map([tasks[k]])[0]
        self.tasks_local += len(rest)
        return out

    def _vet(self, task: Task, got: Any) -> None:
        """A shipped result, before it is used: its shape and ranges, then
        every witness it claims recomputed here (one state each), and for
        successors the first and last column: a result that belongs to
        another task or was corrupted is refused. (A missed failure cannot
        be spotted without redoing the work: workers run this same code.)"""
        ctx, p = self.ctx, task.payload
        if task.kind == "expand":
            ids = p[0]
            _check_expand(task, got, len(self.cm.events), self.full.size)
            if len(ids):
                ends = np.array([0, len(ids) - 1])
                if not np.array_equal(_expand(ctx, (ids[ends],)), got[:, ends]):
                    raise ShardError("an expand task returned the successors of other states")
            return
        if task.kind in ("sweep", "esweep"):
            mins = _check_sweep(task, got)
            for k, m in enumerate(mins):
                if m < 0:
                    continue
                if task.kind == "sweep":
                    again = _sweep(ctx, (p[0], (p[1][k],), m, m + 1))[2][0]
                else:
                    again = _event_sweep(ctx, (p[0], p[1], m, m + 1))[2][k]
                if again != m:
                    raise ShardError(f"a {task.kind} task claimed a failure at {m} that "
                                     "does not fail")
            return
        best = _check_at(task, got)
        ids, depths = p[2], p[3]
        for k, x in enumerate(best):
            if x == (-1, -1):
                continue
            i = int(np.searchsorted(ids, x[1]))
            one = (p[0], (p[1][k],) if task.kind == "at" else p[1], ids[i:i + 1],
                   depths[i:i + 1])
            redo = (_at(ctx, one) if task.kind == "at" else _event_at(ctx, one))[0]
            if redo != x:
                raise ShardError(f"an {task.kind!r} task claimed a failure at {x[1]} that "
                                 "does not fail")

    # -- the run: check.py's _Checker.run, with the sharded phases as its hooks

    def _refuse_size(self, spec: MachineSpec) -> None:
        size = math.prod(v.size for v in spec.vars)
        if size > SHARD_MAX_STATES:
            raise BuildError(f"{spec.name!r} has {size:,} states; a sharded check supports "
                             f"up to {SHARD_MAX_STATES:,}")
        from .budget import available_memory, format_bytes
        avail = available_memory()
        if avail is not None and size // 8 > avail * 0.9:
            raise BuildError(f"{spec.name!r} has {size:,} states: the coordinator's visited "
                             f"bitmap alone needs {format_bytes(size // 8)}, more than the "
                             f"{format_bytes(avail)} available here")

    def _compiled(self) -> None:
        """No full table is built here: the workers' context instead."""
        self.ctx = ShardContext(self.cm, self.norm)

    def _step_table(self) -> np.ndarray:
        return cast(np.ndarray, _LazyStep(self.ctx))

    def _run_delivery(self, facts: Any, reach: np.ndarray,
                      pairs: list[tuple[str, str]]) -> Any:
        """delivery.delivery with the sharded idempotence (the same dict)."""
        return delivery(self, facts, None, pairs, idem=self._idempotence())

    def _analysis(self, report: Report, step: np.ndarray, s0: int, reach: np.ndarray,
                  pairs: list[tuple[str, str]], parent: np.ndarray,
                  pev: np.ndarray) -> Analysis:
        # no step table, parents or events kept: they live in the workers
        return Analysis(report, self.cm, self.norm, self.full, None, s0, reach, list(pairs),
                        None, None)

    # -- reachability: level-synchronous BFS, merged as the engine merges

    def _reach(self, step: np.ndarray, s0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                        np.ndarray]:
        n = self.full.size
        E = len(self.cm.events)
        visited = _Bits(n)
        visited.set(np.array([s0], dtype=np.int64))
        frontier = np.array([s0], dtype=np.int64)
        levels = [frontier]
        parents = [np.array([-1], dtype=np.int64)]
        events = [np.array([-1], dtype=np.int16 if E < 32767 else np.int32)]
        d = 0
        while len(frontier):
            d += 1
            chunks = [Task("expand", (frontier[k:k + self.plan.chunk],))
                      for k in range(0, len(frontier), self.plan.chunk)]
            got = self._run(chunks)
            succ = np.concatenate([_check_expand(t, g, E, n) for t, g in zip(chunks, got)],
                                  axis=1)
            found, fpar, fev = [], [], []
            for e in range(E):
                nxt = succ[e]
                new = ~visited.get(nxt)
                if not new.any():
                    continue
                cand = nxt[new]
                src = frontier[new]
                cand_u, first = np.unique(cand, return_index=True)
                visited.set(cand_u)
                found.append(cand_u)
                fpar.append(src[first])
                fev.append(np.full(len(cand_u), e, dtype=events[0].dtype))
            frontier = np.concatenate(found) if found else frontier[:0]
            if len(frontier):
                levels.append(frontier)
                parents.append(np.concatenate(fpar))
                events.append(np.concatenate(fev))
            self.tick("reachability", d, d + (1 if len(frontier) else 0))
        reach = np.concatenate(levels)
        depth = np.concatenate([np.full(len(lv), k, dtype=np.int32)
                                for k, lv in enumerate(levels)])
        order = np.argsort(reach, kind="stable")
        ids = reach[order]
        self._reach_sorted = (ids, depth[order])
        as_arr = (lambda v: cast(np.ndarray, _Sparse(ids, v[order])))
        reach_out = reach.astype(self.full.dtype)
        return (reach_out, as_arr(np.concatenate(parents)), as_arr(np.concatenate(events)),
                as_arr(depth))

    # -- pairs: sweeps over all valid states, then the reachable states

    def _all_pairs(self, step: np.ndarray, reach: np.ndarray, depth: np.ndarray
                   ) -> dict[frozenset[str], Fact]:
        evs = self.cm.events
        out: dict[frozenset[str], Fact] = {}
        groups: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for i in range(len(evs)):
            for j in range(i + 1, len(evs)):
                sp = self.space_of(evs[i].space.vars, evs[j].space.vars)
                if sp.size < self.plan.local_below and sp.size < self.full.size:
                    # a small sub-space: the engine's own tables, in the coordinator
                    out[frozenset((evs[i].name, evs[j].name))] = self._pair(
                        step, reach, depth, evs[i], evs[j])
                else:
                    groups.setdefault(sp.vars, []).append((i, j))
        tasks: list[Task] = []
        for vars_, prs in groups.items():
            sp = self.ctx.space(vars_)
            for lo, hi in split_range(sp.size, self.plan.shards):
                tasks.append(Task("sweep", (vars_, tuple(prs), lo, hi)))
        got = self._run(tasks)
        fmin: dict[tuple[int, int], int | None] = {}
        covered: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for t, g in zip(tasks, got):
            mins = _check_sweep(t, g)
            vars_, prs, lo, hi = t.payload
            covered.setdefault(vars_, []).append((lo, hi))
            for p, m in zip(prs, mins):
                if m >= 0 and (fmin.get(p) is None or m < cast(int, fmin[p])):
                    fmin[p] = m
                else:
                    fmin.setdefault(p, None)
        for vars_, ranges in covered.items():
            _require_tiling(sorted(ranges), self.ctx.space(vars_).size)
        failing: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        full_min: dict[tuple[int, int], int | None] = {}
        for vars_, prs in groups.items():
            sp = self.ctx.space(vars_)
            for p in prs:
                if p not in fmin:
                    raise ShardError(f"no sweep result for the pair {p}")
                loc = fmin[p]
                full_min[p] = None
                if loc is not None:
                    # smallest local id = smallest full id (the other vars at 0)
                    full_min[p] = int(sp.embed(np.array([loc], dtype=np.int64), self.full)[0])
                    failing.setdefault(vars_, []).append(p)
        rbest = self._reach_facts(failing)
        for vars_, prs in groups.items():
            for p in prs:
                out[frozenset((evs[p[0]].name, evs[p[1]].name))] = (full_min[p], rbest.get(p))
        self.tick("pairs", len(out), len(out))
        return out

    def _reach_facts(self, failing: dict[tuple[int, ...], list[tuple[int, int]]]
                     ) -> dict[tuple[int, int], tuple[int, int]]:
        """For the pairs failing somewhere: the shallowest, then smallest,
        reachable state where they fail (as the engine's ``_pair``)."""
        if not failing:
            return {}
        ids, depths = self._reach_sorted
        tasks = []
        for vars_, prs in failing.items():
            for k in range(0, len(ids), self.plan.chunk):
                tasks.append(Task("at", (vars_, tuple(prs), ids[k:k + self.plan.chunk],
                                         depths[k:k + self.plan.chunk])))
        best: dict[tuple[int, int], tuple[int, int]] = {}
        for t, g in zip(tasks, self._run(tasks)):
            for p, x in zip(t.payload[1], _check_at(t, g)):
                if x != (-1, -1) and (p not in best or x < best[p]):
                    best[p] = x
        return best

    # -- per-event facts: overflow, CC2, idempotence, on the event's space

    def _event_facts(self) -> dict[int, tuple[int, ...]]:
        """For every event, EVENT_FACTS as smallest local ids of its space
        (e's vars and D's), swept in shards once and kept."""
        got = getattr(self, "_efacts", None)
        if got is not None:
            return got
        tasks = []
        for e in self.cm.events:
            sp = self.space_of(e.space.vars)
            parts = self.plan.shards if sp.size >= self.plan.local_below else 1
            for lo, hi in split_range(sp.size, parts):
                tasks.append(Task("esweep", (sp.vars, e.index, lo, hi)))
        mins: dict[int, list[int]] = {e.index: [-1] * len(EVENT_FACTS) for e in self.cm.events}
        covered: dict[int, list[tuple[int, int]]] = {}
        for t, g in zip(tasks, self._run(tasks)):
            vals = _check_sweep(t, g)
            _, ei, lo, hi = t.payload
            covered.setdefault(ei, []).append((lo, hi))
            cur = mins[ei]
            for k, m in enumerate(vals):
                if m >= 0 and (cur[k] < 0 or m < cur[k]):
                    cur[k] = m
        for e in self.cm.events:
            _require_tiling(sorted(covered.get(e.index, [])), self.space_of(e.space.vars).size)
        self._efacts = {k: tuple(v) for k, v in mins.items()}
        return self._efacts

    def _check_overflow(self) -> None:
        """The engine's overflow check (first event in order, its smallest
        local state), from the sharded sweeps."""
        from .check import _explain_error
        facts = self._event_facts()
        for e in self.cm.events:
            local = facts[e.index][2]
            if e.err is None or local < 0:
                continue
            state = local_to_state(self.cm, self.space_of(e.space.vars), local)
            detail = _explain_error(self.cm, e, state)
            raise BuildError(f"event {e.name!r} {detail} at the valid state "
                             f"{describe_state(state)}", name=e.name, state=state)

    def _cc2(self) -> CC2Result:
        """The engine's CC2 (evaluation errors first, then the first event
        in order that does not commute with a repair, at its smallest
        state), from the sharded sweeps."""
        cm, facts = self.cm, self._event_facts()
        for e in cm.events:
            local = facts[e.index][3]
            if e.eval_err is None or local < 0:
                continue
            state = local_to_state(cm, self.space_of(e.space.vars), local)
            raise BuildError(f"event {e.name!r} cannot be evaluated at the invalid "
                             f"state {describe_state(state)} (or after one repair "
                             "of it), which CC2 needs", name=e.name, state=state)
        for e in cm.events:
            local = facts[e.index][1]
            if local < 0:
                continue
            sp = self.space_of(e.space.vars)
            at = np.array([local], dtype=np.int64)
            rho = at + self.norm.rho_delta(sp)[sp.project(self.norm.space, at)]
            after = int(self.ctx.step(sp, e, at)[0])
            repaired = int(self.ctx.step(sp, e, rho)[0])
            return CC2Result(False, CC2Counterexample(
                e.name, local_to_state(cm, sp, local), local_to_state(cm, sp, after),
                local_to_state(cm, sp, repaired)))
        return CC2Result(True, None)

    def _idempotence(self) -> dict[str, tuple[int | None, int | None]]:
        """delivery.idempotence, sharded: per event, the smallest valid
        state (full id) and the shallowest, then smallest, reachable state
        where applying it twice differs from once."""
        facts = self._event_facts()
        ids, depths = self._reach_sorted
        tasks = []
        for e in self.cm.events:
            if facts[e.index][0] < 0:
                continue
            vars_ = self.space_of(e.space.vars).vars
            for k in range(0, len(ids), self.plan.chunk):
                tasks.append(Task("eat", (vars_, e.index, ids[k:k + self.plan.chunk],
                                          depths[k:k + self.plan.chunk])))
        best: dict[int, tuple[int, int]] = {}
        for t, g in zip(tasks, self._run(tasks)):
            x = _check_at(t, g)[0]
            ei = t.payload[1]
            if x != (-1, -1) and (ei not in best or x < best[ei]):
                best[ei] = x
        out: dict[str, tuple[int | None, int | None]] = {}
        for e in self.cm.events:
            local = facts[e.index][0]
            if local < 0:
                out[e.name] = (None, None)
                continue
            sp = self.space_of(e.space.vars)
            fmin = int(sp.embed(np.array([local], dtype=np.int64), self.full)[0])
            r = best.get(e.index)
            out[e.name] = (fmin, None if r is None else r[1])
        return out

    def _full_valid(self) -> np.ndarray:  # pragma: no cover - never on the full space
        raise ShardError("a sharded check never builds a full-space table")


def _require_tiling(ranges: list[tuple[int, int]], size: int) -> None:
    """The ranges a sweep's results cover must be exactly [0, size): a gap
    would be states never checked, an overlap a confused executor."""
    at = 0
    for lo, hi in ranges:
        if lo != at or hi <= lo:
            raise ShardError(f"the shards of a sweep cover {ranges}, not [0, {size})")
        at = hi
    if at != size:
        raise ShardError(f"the shards of a sweep cover {ranges}, not [0, {size})")


def analyze_sharded(spec: MachineSpec, *, executor: Executor | None = None,
                    plan: ShardPlan | None = None, scope: str = "reachable",
                    strict: bool = False, independent: str = "declared",
                    progress: Progress | None = None) -> Report:
    """Verify ``spec`` by whole enumeration cut into tasks run by
    ``executor`` (None: this process). The report is the one ``analyze``
    gives (``method`` adds the sharding), for any executor and plan.

    Raises BuildError as ``analyze`` does, ShardError when a task fails or
    returns something invalid (never a verdict on a partial check)."""
    from .check import _locate
    plan = plan or ShardPlan()
    t0 = time.perf_counter()
    ck = _ShardedChecker(spec, scope, strict, progress, independent, executor, plan)
    try:
        report = ck.run().report
    except BuildError as exc:
        raise _locate(spec, exc) from exc.__cause__
    method = {"kind": "enumeration",
              "sharded": {"shards": plan.shards,
                          "workers": executor.workers if executor is not None else 1,
                          "tasks_shipped": ck.tasks_shipped, "tasks_local": ck.tasks_local,
                          "seconds": round(time.perf_counter() - t0, 6)}}
    from dataclasses import replace
    return replace(report, method=method)

