"""Mixed-radix state spaces and sub-spaces.

A *space* is the product of the domains of some variables (a subset of the
machine's, kept in machine order, first var least significant). The full state
space is the space of all vars; a function that only reads and writes a few
variables is tabulated once over their small sub-space and then *lifted* to
any larger space by projecting ids (a gather), which is what keeps the engine
fast: the work per function is proportional to its footprint, except for the
one unavoidable pass that writes a full table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np

__all__ = ["Space", "id_dtype"]

# Chunk size (elements) for passes over full tables: big enough to amortize
# Python overhead, small enough that temporaries stay in cache.
CHUNK = 1 << 18


def id_dtype(n: int) -> np.dtype:
    """The narrowest signed int type that holds ids 0..n-1 (and n as a sentinel)."""
    return np.dtype(np.int32) if n < 2**31 - 1 else np.dtype(np.int64)


class Space:
    """The product of the domains of ``vars`` (indices into the machine's vars)."""

    def __init__(self, radices: Sequence[int], vars: Iterable[int]) -> None:
        self.all_radices = tuple(int(r) for r in radices)
        self.vars: tuple[int, ...] = tuple(sorted(set(vars)))
        self.radices = tuple(self.all_radices[v] for v in self.vars)
        strides = []
        acc = 1
        for r in self.radices:
            strides.append(acc)
            acc *= r
        self.size = acc
        self.stride = dict(zip(self.vars, strides))
        self.dtype = id_dtype(self.size)

    def __repr__(self) -> str:
        return f"Space(vars={self.vars}, size={self.size})"

    @cached_property
    def ids(self) -> np.ndarray:
        return np.arange(self.size, dtype=self.dtype)

    def digits(self, var: int) -> np.ndarray:
        """The digit of ``var`` at every id of this space (cached)."""
        cache = self.__dict__.setdefault("_digits", {})
        col = cache.get(var)
        if col is None:
            r = self.all_radices[var]
            col = ((self.ids // self.stride[var]) % r).astype(np.int64 if r > 127 else np.int8)
            cache[var] = col
        return col

    def digits_of(self, ids: np.ndarray, var: int) -> np.ndarray:
        """Digits of ``var`` at arbitrary ids of this space."""
        return (ids // self.stride[var]) % self.all_radices[var]

    def project(self, target: Space, ids: np.ndarray | None = None) -> np.ndarray:
        """For ids of this space (all of them by default), the id in ``target``
        of the same assignment to ``target``'s vars, which must be ours too."""
        if ids is None:
            cache = self.__dict__.setdefault("_proj", {})
            got = cache.get(target.vars)
            if got is None:
                got = np.zeros(self.size, dtype=target.dtype)
                for v in target.vars:
                    got += self.digits(v).astype(target.dtype) * target.dtype.type(
                        target.stride[v])
                got.setflags(write=False)
                cache[target.vars] = got
            return got
        out = np.zeros(len(ids), dtype=np.int64)
        for v in target.vars:
            out += self.digits_of(ids, v) * target.stride[v]
        return out.astype(target.dtype, copy=False)

    def restride(self, new_ids: np.ndarray, target: Space) -> np.ndarray:
        """Turn a map ``id -> new_ids[id]`` on this space into id *deltas* in
        the larger space ``target``: ``delta[id] = sum_v (d'_v - d_v) * stride'_v``.
        Lifting a map then costs one gather and one add per target id."""
        delta = np.zeros(self.size, dtype=np.int64)
        for v in self.vars:
            d = self.digits(v).astype(np.int64)
            nd = d[new_ids]
            delta += (nd - d) * target.stride[v]
        return delta

    def embed(self, ids: np.ndarray, full: Space) -> np.ndarray:
        """Ids of ``full`` for these sub-space ids, every other var at digit 0."""
        out = np.zeros(len(ids), dtype=np.int64)
        for v in self.vars:
            out += self.digits_of(ids, v).astype(np.int64) * full.stride[v]
        return out


class Lifter:
    """Writes full tables fast: splits the full space into a low block of vars
    (ids ``l`` < ``width``) and a high block (``h``), so that the projection of
    id = h*width + l onto any sub-space is ``projH[h] + projL[l]``; a full
    table is then one broadcast gather per chunk of rows."""

    def __init__(self, full: Space, low_limit: int = 4096) -> None:
        self.full = full
        nlow = 0
        width = 1
        for r in full.radices:
            if width * r > low_limit and nlow > 0:
                break
            width *= r
            nlow += 1
        self.low = Space(full.all_radices, full.vars[:nlow])
        self.high = Space(full.all_radices, full.vars[nlow:])
        self.width = width
        self.rows = full.size // width

    def _proj(self, sub: Space) -> tuple[np.ndarray, np.ndarray]:
        lo_vars = [v for v in sub.vars if v in self.low.stride]
        hi_vars = [v for v in sub.vars if v in self.high.stride]
        pl = np.zeros(self.low.size, dtype=np.int64)
        for v in lo_vars:
            pl += self.low.digits(v).astype(np.int64) * sub.stride[v]
        ph = np.zeros(self.high.size, dtype=np.int64)
        for v in hi_vars:
            ph += self.high.digits(v).astype(np.int64) * sub.stride[v]
        return ph.astype(sub.dtype), pl.astype(sub.dtype)

    def gather(self, sub: Space, table: np.ndarray, out: np.ndarray | None = None,
               add_ids: bool = False) -> np.ndarray:
        """``out[id] = table[proj_sub(id)]`` (+ id when ``add_ids``) for every full id."""
        full = self.full
        if out is None:
            dt = full.dtype if add_ids else table.dtype
            out = np.empty(full.size, dtype=dt)
        out2 = out.reshape(self.rows, self.width)
        ph, pl = self._proj(sub)
        tab = table.astype(out.dtype, copy=False) if add_ids else table
        step_rows = max(1, CHUNK // self.width)
        if add_ids:
            low_ids = np.arange(self.width, dtype=out.dtype)
        for r0 in range(0, self.rows, step_rows):
            r1 = min(self.rows, r0 + step_rows)
            idx = ph[r0:r1, None] + pl[None, :]
            block = out2[r0:r1]
            np.take(tab, idx, out=block)
            if add_ids:
                base = (np.arange(r0, r1, dtype=out.dtype) * out.dtype.type(self.width))
                block += base[:, None]
                block += low_ids[None, :]
        return out
