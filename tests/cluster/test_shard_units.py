"""The pieces the sharded check is built from: projections by lookup, the
visited bitmap, per-state maps over the reachable set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.engine.shard import _Bits, _Projector, _Sparse
from convergent.engine.space import Space


@st.composite
def spaces_and_ids(draw: st.DrawFn) -> tuple[Space, Space, np.ndarray]:
    radices = draw(st.lists(st.integers(1, 300), min_size=1, max_size=6))
    n = len(radices)
    src_vars = draw(st.sets(st.integers(0, n - 1), min_size=1))
    tgt_vars = draw(st.sets(st.sampled_from(sorted(src_vars))))
    src = Space(radices, src_vars)
    tgt = Space(radices, tgt_vars)
    ids = np.array(draw(st.lists(st.integers(0, src.size - 1), min_size=1, max_size=50)),
                   dtype=np.int64)
    return src, tgt, ids


@settings(max_examples=200, deadline=None)
@given(spaces_and_ids(), st.sampled_from([2, 16, 1 << 16]))
def test_projection_by_lookup_equals_the_engines(case: tuple[Space, Space, np.ndarray],
                                                 limit: int) -> None:
    src, tgt, ids = case
    proj = _Projector(src, tgt, group_limit=limit)   # small limits: many groups
    assert np.array_equal(proj(ids), src.project(tgt, ids).astype(np.int64))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_the_bitmap_holds_exactly_what_was_set(n: int, data: st.DataObject) -> None:
    chosen = data.draw(st.sets(st.integers(0, n - 1)))
    bits = _Bits(n)
    if chosen:
        bits.set(np.array(sorted(chosen), dtype=np.int64))
    got = bits.get(np.arange(n, dtype=np.int64))
    assert set(np.flatnonzero(got).tolist()) == chosen


def test_a_sparse_map_answers_only_for_its_states() -> None:
    m = _Sparse(np.array([3, 7, 42], dtype=np.int64), np.array([0, 1, 2], dtype=np.int32))
    assert m[7] == 1 and list(m[np.array([42, 3])]) == [2, 0]
    for absent in (0, 8, 43, np.array([3, 5])):
        with pytest.raises(KeyError):
            m[absent]
