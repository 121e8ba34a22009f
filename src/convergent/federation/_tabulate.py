"""Tabulating a morphism's map over its source's states, without a Python
call per state.

A callable map is run against a view that records each source var it reads;
a read of a var not yet fixed branches over that var's values (depth first),
so the calls made are one per leaf of the map's decision tree, usually a
handful. The leaves partition the source space, and each is written into the
full table with one vectorized assignment. Expression maps compile to numpy
over the digit columns directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..spec.expr import compile_expr
from ..spec.model import Var
from .errors import FederationError
from .model import Morphism

__all__ = ["MAX_LEAVES", "digit_columns", "tabulate_map"]

#: a map reading so many combinations is refused (it is no longer a small
#: function of its source; tabulating it would be a loop over states)
MAX_LEAVES = 1 << 20


class _Need(BaseException):
    """Raised inside a map to ask for a var's value (a BaseException so that a
    map's ``except Exception`` cannot swallow it)."""

    def __init__(self, index: int) -> None:
        self.index = index


class _RecordingView(Mapping[str, Any]):
    """A read-only source state in which only some vars are fixed."""

    def __init__(self, vars: tuple[Var, ...], index: dict[str, int], fixed: dict[int, int]
                 ) -> None:
        self._vars = vars
        self._index = index
        self._fixed = fixed

    def __getitem__(self, key: Any) -> Any:
        name = key.name if isinstance(key, Var) else key
        i = self._index.get(name) if isinstance(name, str) else None
        if i is None:
            raise FederationError(f"map reads {key!r}, not a var of the source (known: "
                                  f"{', '.join(self._index)})")
        d = self._fixed.get(i)
        if d is None:
            raise _Need(i)
        return self._vars[i].values[d]

    def __iter__(self) -> Any:
        raise FederationError("a map must read vars by name (s['var']), not iterate the state")

    def __len__(self) -> int:
        return len(self._vars)


def digit_columns(vars: tuple[Var, ...], ids: np.ndarray) -> list[np.ndarray]:
    """The digit of every var at each id (mixed radix, first var least significant)."""
    cols = []
    w = 1
    for v in vars:
        cols.append((ids // w) % v.size)
        w *= v.size
    return cols


def _strides(vars: tuple[Var, ...]) -> list[int]:
    out, w = [], 1
    for v in vars:
        out.append(w)
        w *= v.size
    return out


def tabulate_map(m: Morphism, source: tuple[Var, ...], target: tuple[Var, ...]) -> np.ndarray:
    """``out[s, k]``: the digit of ``m.shared[k]`` in the target that ``m``
    gives at every source state id ``s`` (shape (N_source, len(shared)))."""
    n = 1
    for v in source:
        n *= v.size
    tvars = {v.name: v for v in target}
    shared = [tvars[name] for name in m.shared]
    table = getattr(m.fn, "table", None)
    if isinstance(table, np.ndarray) and table.shape == (n, len(shared)):
        return table                  # a certified map: its table, checked at load
    out = np.zeros((n, len(shared)), dtype=np.int64)
    ids = np.arange(n, dtype=np.int64)
    if m.exprs:
        svars = {v.name: v for v in source}
        cols = digit_columns(source, ids)
        named: dict[str, np.ndarray] = {}
        for v, c in zip(source, cols):
            named[v.name] = (c.astype(bool) if v.kind == "bool" else
                             c + v.lo if v.kind == "int" else c)
        for k, (var_name, text) in enumerate(m.exprs):
            var = tvars[var_name]
            expr = compile_expr(text, svars, var, what=f"map of morphism {m.name!r}")
            values, err = expr.eval_vec(named, n)
            if err is not None and err.any():
                s = int(np.flatnonzero(err)[0])
                raise FederationError(f"morphism {m.name!r}: {var_name} := {text} fails to "
                                      f"evaluate at source state {_describe(source, s)}")
            if var.kind == "int":
                vals = np.asarray(values).astype(np.int64)
                bad = (vals < var.lo) | (vals > var.hi)
                if bad.any():
                    s = int(np.flatnonzero(bad)[0])
                    raise FederationError(
                        f"morphism {m.name!r}: {var_name} := {text} gives {int(vals[s])}, "
                        f"outside [{var.lo}, {var.hi}], at source state {_describe(source, s)}")
                out[:, k] = vals - var.lo
            else:
                out[:, k] = np.asarray(values).astype(np.int64)
        return out
    assert m.fn is not None
    index = {v.name: i for i, v in enumerate(source)}
    strides = _strides(source)
    stack: list[dict[int, int]] = [{}]
    leaves = 0
    while stack:
        fixed = stack.pop()
        try:
            got = m.fn(_RecordingView(source, index, fixed))
        except _Need as need:
            for d in range(source[need.index].size - 1, -1, -1):
                stack.append({**fixed, need.index: d})
            continue
        except FederationError:
            raise
        except Exception as exc:
            raise FederationError(f"morphism {m.name!r}: the map raised {exc!r} at source "
                                  f"values {_partial(source, fixed)}") from exc
        leaves += 1
        if leaves > MAX_LEAVES:
            raise FederationError(f"morphism {m.name!r}: the map reads more than "
                                  f"{MAX_LEAVES} combinations of source values")
        row = _row(m, shared, got, source, fixed)
        # the ids whose fixed digits match: free vars vary, fixed ones are pinned
        sel = np.zeros(1, dtype=np.int64)
        for i, v in enumerate(source):
            if i in fixed:
                sel = sel + fixed[i] * strides[i]
            else:
                sel = (sel[:, None] + (np.arange(v.size, dtype=np.int64) * strides[i])[None, :]
                       ).ravel()
        out[sel] = row
    return out


def _row(m: Morphism, shared: list[Var], got: Any, source: tuple[Var, ...],
         fixed: dict[int, int]) -> np.ndarray:
    where = f"morphism {m.name!r} at source values {_partial(source, fixed)}"
    if not isinstance(got, Mapping):
        raise FederationError(f"{where}: the map returned {got!r}, expected {{var: value}}")
    keys = {k.name if isinstance(k, Var) else k: v for k, v in got.items()}
    if set(keys) != {v.name for v in shared}:
        raise FederationError(f"{where}: the map returned {sorted(map(str, keys))}, expected "
                              f"exactly the shared vars {[v.name for v in shared]}")
    row = np.zeros(len(shared), dtype=np.int64)
    for k, var in enumerate(shared):
        try:
            row[k] = var.digit(keys[var.name])
        except ValueError as exc:
            raise FederationError(f"{where}: {exc}") from None
    return row


def _partial(source: tuple[Var, ...], fixed: dict[int, int]) -> str:
    if not fixed:
        return "{} (it read nothing)"
    return "{" + ", ".join(f"{source[i].name}: {source[i].values[d]!r}"
                           for i, d in sorted(fixed.items())) + "}"


def _describe(source: tuple[Var, ...], s: int) -> str:
    cols = digit_columns(source, np.array([s], dtype=np.int64))
    return "{" + ", ".join(f"{v.name}: {v.values[int(c[0])]!r}"
                           for v, c in zip(source, cols)) + "}"
