"""Turn state functions into exact tables over their footprint.

A spec expression is evaluated vectorized over the product of the domains of
the variables it mentions. A Python callable is *traced*: it runs against a
view that records every variable it reads; a first read of a variable branches
over that variable's values (depth first, re-running the function with the
choices made so far), so the function is called once per leaf of its decision
tree and never over variables it does not look at. Both give a table that is
exact for deterministic functions. The engine then measures the *semantic*
footprint on that table (which variables the result really depends on) and
drops the others, so a declared footprint is checked against what the code
does, not against what it mentions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BuildError, ConvergentError
from ..spec.model import (
    Assignment,
    Predicate,
    StateView,
    Var,
    as_bool,
    assignment_result,
)
from .space import Space

__all__ = ["AssignTable", "PredTable", "tabulate_assignment", "tabulate_predicate"]


@dataclass
class PredTable:
    """``value[id]`` over ``space``; ``err[id]`` where evaluation failed."""

    space: Space
    value: np.ndarray
    err: np.ndarray | None = None


@dataclass
class AssignTable:
    """``new[id]``: the id (same space) after the assignment; the space holds
    every written var. ``err``: overflow under ``error`` or an evaluation
    failure; ``sat``: an int value saturated at a bound."""

    space: Space
    new: np.ndarray
    writes: tuple[int, ...]
    err: np.ndarray | None = None
    sat: np.ndarray | None = None
    eval_err: np.ndarray | None = None   # the evaluation itself failed (a subset of err)
    sat_space: Space | None = None       # the space of ``sat`` when it differs from ``space``

    @property
    def sat_on(self) -> Space:
        return self.space if self.sat_space is None else self.sat_space


class _Machine:
    """What tabulation needs to know of the machine's vars."""

    def __init__(self, vars: tuple[Var, ...]) -> None:
        self.vars = vars
        self.index = {v.name: i for i, v in enumerate(vars)}
        self.by_name = {v.name: v for v in vars}
        self.radices = tuple(v.size for v in vars)
        # read once per compilation, not once per rule (it reads /proc/meminfo)
        self.rule_space_limit = _rule_space_limit()

    def space(self, names: frozenset[str] | set[str] | list[int]) -> Space:
        idx = [self.index[n] if isinstance(n, str) else n for n in names]
        size = 1
        for i in idx:
            size *= self.radices[i]
        if size > self.rule_space_limit:
            shape = " x ".join(f"{self.vars[i].name} ({self.radices[i]:,})" for i in sorted(idx))
            raise BuildError(f"a rule reads or writes {shape}: {size:,} combinations, more "
                             f"than one table can hold here ({self.rule_space_limit:,}); "
                             "narrow the ranges, or use only comparisons with constants and "
                             "copies on big ints (then they are abstracted)")
        return Space(self.radices, idx)


MAX_RULE_SPACE = 2**27
"""The most states one rule's table may span (its footprint's product)."""
_RULE_BYTES_PER_STATE = 96   # columns, ids, masks and temporaries while tabulating


def _rule_space_limit() -> int:
    """MAX_RULE_SPACE, or less when this machine's available memory cannot
    hold the temporaries of a table that big."""
    from .budget import available_memory
    avail = available_memory()
    if avail is None:
        return MAX_RULE_SPACE
    return max(1, min(MAX_RULE_SPACE, avail // (2 * _RULE_BYTES_PER_STATE)))


# ---------------------------------------------------------------- expressions

def _columns(m: _Machine, space: Space) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for v in space.vars:
        var = m.vars[v]
        d = space.digits(v)
        if var.kind == "bool":
            cols[var.name] = d.astype(bool)
        elif var.kind == "int":
            cols[var.name] = d.astype(np.int64) + var.lo
        else:
            cols[var.name] = d.astype(np.int64)
    return cols


def _to_digits(var: Var, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Digits for assigned values, and where an int value fell outside its range."""
    if var.kind == "bool":
        return values.astype(np.int64), None
    if var.kind == "enum":
        return values.astype(np.int64), None
    if values.dtype == object:
        # exact values of a wide expression (Python ints): compare and clamp
        # before anything narrows them
        low, high = np.less(values, var.lo), np.greater(values, var.hi)
        out = low | high
        v = np.where(low, var.lo, np.where(high, var.hi, values)).astype(np.int64)
        return v - var.lo, (out if out.any() else None)
    v = values.astype(np.int64)
    out = (v < var.lo) | (v > var.hi)
    return np.clip(v, var.lo, var.hi) - var.lo, (out if out.any() else None)


def _or(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _broadcast(values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        arr = np.broadcast_to(arr, (n,)).copy()
    return arr


def _expr_predicate(m: _Machine, pred: Predicate) -> PredTable:
    expr = pred.expr
    assert expr is not None
    space = m.space(set(expr.free_vars))
    values, err = expr.eval_vec(_columns(m, space), n=space.size)  # type: ignore[call-arg]
    value = _broadcast(values, space.size).astype(bool)
    if err is not None:
        err = _broadcast(err, space.size)
        # no value where evaluation fails: canonical False, as a traced
        # function that raises gets, so representations tabulate alike
        value = value & ~err
    return PredTable(space, value, err)


def _expr_assignment(m: _Machine, asg: Assignment) -> AssignTable:
    names: set[str] = set(asg.targets)
    for e in asg.exprs:
        names |= set(e.free_vars)
    space = m.space(names)
    cols = _columns(m, space)
    new = space.ids.astype(np.int64)
    err: np.ndarray | None = None
    sat: np.ndarray | None = None
    eval_err: np.ndarray | None = None
    for target, e in zip(asg.targets, asg.exprs):
        var = m.by_name[target]
        t = m.index[target]
        values, e_err = e.eval_vec(cols, n=space.size)  # type: ignore[call-arg]
        digits, outside = _to_digits(var, _broadcast(values, space.size))
        new += (digits - space.digits(t)) * space.stride[t]
        e_mask = None if e_err is None else _broadcast(e_err, space.size)
        err = _or(err, e_mask)
        eval_err = _or(eval_err, e_mask)
        if outside is not None:
            if var.overflow == "error":
                err = _or(err, outside)
            else:
                sat = _or(sat, outside)
    writes = tuple(sorted(m.index[t] for t in asg.targets))
    if eval_err is not None:  # canonical no-op where evaluation fails (as when traced)
        new = np.where(eval_err, space.ids, new)
    return AssignTable(space, new.astype(space.dtype), writes, err, sat, eval_err)


# ---------------------------------------------------------------- traced callables

@dataclass
class _Leaf:
    path: dict[int, int]      # var index -> digit, for every var read on this path
    out: Any                  # the function's result, or the exception it raised
    failed: bool


def _call_rule(fn: Callable[[StateView], Any], view: StateView, post: Callable[[Any], Any],
               m: _Machine, what: str, state: Callable[[], dict[str, Any]]) -> tuple[Any, bool]:
    """One evaluation of a user rule: (result, False) or (exception, True).

    A rule that exits the interpreter is a bug in the rule, not a verdict:
    ``SystemExit`` becomes a BuildError naming the rule and the state (it
    must never end a check as if it had passed). KeyboardInterrupt is the
    user's and propagates."""
    try:
        return post(fn(view)), False
    except BuildError as exc:
        if exc.state is not None:
            raise
        st = state()
        raise BuildError(f"{exc} (at {_describe(st)})", name=exc.name, state=st) from None
    except ConvergentError as exc:  # a wrong value, an unknown var: the rule's bug
        st = state()
        raise BuildError(f"{what} at {_describe(st)}: {exc}", state=st) from None
    except SystemExit as exc:
        raise BuildError(f"{what} raised SystemExit({exc.code!r}) at "
                         f"{_describe(state())}: a rule must return a value, not exit") from None
    except Exception as exc:  # a user function failing at some state
        return exc, True


def _describe(state: dict[str, Any]) -> str:
    if not state:
        return "every state (it read no var)"
    return "{" + ", ".join(f"{k}={'true' if v is True else 'false' if v is False else v}"
                           for k, v in state.items()) + "}"


def _trace(m: _Machine, fn: Callable[[StateView], Any], what: str,
           post: Callable[[Any], Any]) -> list[_Leaf]:
    """Depth-first enumeration of ``fn``'s decision tree over the vars it reads,
    then every leaf run again (see ``_replay``)."""
    leaves: list[_Leaf] = []
    prefix: list[tuple[int, int]] = []
    budget = 1 << 22
    while True:
        assigned = dict(prefix)
        order = [v for v, _ in prefix]

        def read(var: Var) -> Any:
            i = m.index[var.name]
            if i not in assigned:
                assigned[i] = 0
                order.append(i)
            return var.values[assigned[i]]

        out, failed = _call_rule(fn, StateView(m.by_name, read), post, m, what,
                                 lambda: _path_state(m, assigned))
        leaves.append(_Leaf(dict(assigned), out, failed))
        if len(leaves) > budget:
            raise BuildError(f"{what}: reads too many variables to tabulate "
                             f"(more than {budget} distinct paths)")
        while order:
            last = order.pop()
            d = assigned[last] + 1
            if d < m.radices[last]:
                prefix = [(v, assigned[v]) for v in order] + [(last, d)]
                break
        else:
            _replay(m, fn, what, post, leaves)
            return leaves


def _path_state(m: _Machine, path: Mapping[int, int]) -> dict[str, Any]:
    return {m.vars[i].name: m.vars[i].values[d] for i, d in sorted(path.items())}


_MIN_REPLAYS = 48


class _Nondeterministic(BaseException):
    """A replayed rule read a var its first run did not (a BaseException, so
    a rule's own ``except Exception`` cannot swallow it)."""


def _replay(m: _Machine, fn: Callable[[StateView], Any], what: str,
            post: Callable[[Any], Any], leaves: list[_Leaf]) -> None:
    """Run every leaf a second time, in a shuffled order, and refuse a rule
    whose answer changed: tables (and so the verdict) are sound only for
    functions of the state. This catches randomness, clocks, counters and
    caches that depend on call order; a closure whose captured data changes
    *between* builds is the caller's (nothing is cached across builds)."""
    rng = np.random.default_rng(len(leaves))
    # every leaf again, in another order; small tables get extra samples so a
    # coin-flip rule over few leaves is caught with near certainty
    order = np.concatenate([rng.permutation(len(leaves)),
                            rng.integers(0, len(leaves), size=max(0, _MIN_REPLAYS - len(leaves)))])
    for k in order:
        leaf = leaves[int(k)]
        path = leaf.path

        def read(var: Var) -> Any:
            i = m.index[var.name]
            if i not in path:
                raise _Nondeterministic(var.name)
            return var.values[path[i]]

        try:
            out, failed = _call_rule(fn, StateView(m.by_name, read), post, m, what,
                                     lambda: _path_state(m, path))
        except _Nondeterministic as extra:
            raise BuildError(
                f"{what} is not deterministic: run again at {_describe(_path_state(m, path))} "
                f"it read {extra} where the first run did not; rules must be pure functions "
                "of the state (no random, clock, counter or changing captured data)") from None
        same = (failed == leaf.failed
                and (type(out) is type(leaf.out) if failed else _same(out, leaf.out)))
        if not same:
            first = _show(leaf.out, leaf.failed)
            second = _show(out, failed)
            raise BuildError(
                f"{what} is not deterministic: at {_describe(_path_state(m, path))} it gave "
                f"{first}, then {second}; rules must be pure functions of the state "
                "(no random, clock, counter or changing captured data)")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # an exotic value whose comparison fails is not "the same"
        return False


def _show(out: Any, failed: bool) -> str:
    if failed:
        return f"{type(out).__name__}: {out}"
    if isinstance(out, dict):
        return "{" + ", ".join(f"{k}: {v!r}" for k, v in out.items()) + "}"
    return repr(out)


def _nd_index(space: Space, path: dict[int, int]) -> tuple[Any, ...]:
    # ids are C-ordered with the LAST var most significant: nd axes are reversed vars
    return tuple(path.get(v, slice(None)) for v in reversed(space.vars))


def _nd(space: Space, arr: np.ndarray) -> np.ndarray:
    return arr.reshape(tuple(reversed(space.radices)) or (1,)) if space.vars else arr


def _traced_predicate(m: _Machine, pred: Predicate, what: str) -> PredTable:
    assert pred.fn is not None
    leaves = _trace(m, pred.fn, what, lambda out: as_bool(out, what))
    reads = set().union(*(leaf.path for leaf in leaves))
    space = m.space(list(reads))
    value = np.zeros(space.size, dtype=bool)
    err = np.zeros(space.size, dtype=bool)
    nv, ne = _nd(space, value), _nd(space, err)
    for leaf in leaves:
        idx = _nd_index(space, leaf.path)
        if leaf.failed:
            ne[idx] = True
        else:
            nv[idx] = leaf.out
    return PredTable(space, value, err if err.any() else None)


def _traced_assignment(m: _Machine, asg: Assignment, what: str) -> AssignTable:
    assert asg.fn is not None
    leaves = _trace(m, asg.fn, what, lambda out: assignment_result(m.by_name, out, what))
    reads: set[int] = set()
    writes: set[int] = set()
    for leaf in leaves:
        reads |= set(leaf.path)
        if not leaf.failed:
            writes |= {m.index[n] for n in leaf.out}
    space = m.space(list(reads | writes))
    ids = space.ids.astype(np.int64)
    new = ids.copy()
    err = np.zeros(space.size, dtype=bool)
    sat = np.zeros(space.size, dtype=bool)
    ev_err = np.zeros(space.size, dtype=bool)
    n_ids, n_new, n_err, n_sat, n_ev = (_nd(space, a) for a in (ids, new, err, sat, ev_err))
    for leaf in leaves:
        idx = _nd_index(space, leaf.path)
        if leaf.failed:
            n_err[idx] = True
            n_ev[idx] = True
            continue
        sub_ids = n_ids[idx]
        delta = np.zeros(np.shape(sub_ids), dtype=np.int64)
        for name, value in leaf.out.items():
            t = m.index[name]
            var = m.vars[t]
            if var.kind == "int" and not var.lo <= value <= var.hi:
                if var.overflow == "error":
                    n_err[idx] = True
                else:
                    n_sat[idx] = True
                value = min(max(value, var.lo), var.hi)
            digit = var.digit(value)
            delta += (digit - (sub_ids // space.stride[t]) % var.size) * space.stride[t]
        n_new[idx] = sub_ids + delta
    return AssignTable(space, new.astype(space.dtype), tuple(sorted(writes)),
                       err if err.any() else None, sat if sat.any() else None,
                       ev_err if ev_err.any() else None)


def tabulate_predicate(m: _Machine, pred: Predicate, what: str) -> PredTable:
    if pred.expr is not None:
        return _expr_predicate(m, pred)
    return _traced_predicate(m, pred, what)


def tabulate_assignment(m: _Machine, asg: Assignment, what: str) -> AssignTable:
    if asg.fn is None:
        return _expr_assignment(m, asg)
    return _traced_assignment(m, asg, what)


def constant_true(m: _Machine) -> PredTable:
    space = m.space(set())
    return PredTable(space, np.ones(1, dtype=bool), None)


def varies(arr: np.ndarray, space: Space, var: int, mask: np.ndarray | None = None) -> bool:
    """Whether ``arr`` (over ``space``) changes with ``var`` alone, comparing
    only pairs of ids where ``mask`` holds on both sides."""
    if var not in space.stride:
        return False
    axis = len(space.vars) - 1 - space.vars.index(var)
    a = _nd(space, arr)
    k = _nd(space, mask) if mask is not None else None
    base = np.take(a, 0, axis=axis)
    kb = np.take(k, 0, axis=axis) if k is not None else None
    for j in range(1, space.all_radices[var]):
        other = np.take(a, j, axis=axis)
        diff = base != other
        if k is not None:
            diff &= kb & np.take(k, j, axis=axis)
        if diff.any():
            return True
    return False


Machine = _Machine


def machine_of(vars: tuple[Var, ...]) -> _Machine:
    return _Machine(vars)


def var_names(m: _Machine, idx: Mapping[int, Any] | set[int] | tuple[int, ...]) -> list[str]:
    return [m.vars[i].name for i in sorted(idx)]
