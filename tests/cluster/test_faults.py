"""Sound before fast: a task that fails, a result that is lost, cut short or
malformed, a worker that dies — the check raises or retries, it never gives
a verdict on a space it did not fully check."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]
import numpy as np
import pytest

from convergent.cluster import ShardError, ShardPlan, analyze_sharded, check_sharded
from convergent.cluster._dask import DaskExecutor
from convergent.cluster._worker import run_remote
from convergent.engine.check import analyze
from convergent.engine.shard import (
    LocalExecutor,
    ShardContext,
    Task,
    _require_tiling,
    run_task,
    split_range,
)
from convergent.spec.loader import load_spec

from conftest import ROOT

PLAN = ShardPlan(shards=3, chunk=4, local_below=0)


@pytest.fixture(scope="module")
def spec() -> Any:
    return load_spec(str(ROOT / "examples" / "bank_account.yaml"))


@pytest.fixture(scope="module")
def failing_spec() -> Any:
    return load_spec(str(ROOT / "examples" / "gsm_order.yaml"))


class Tampering:
    """Runs tasks in process, then lets ``tamper`` change what comes back."""

    def __init__(self, spec: Any, tamper: Callable[[Task, Any], Any],
                 kinds: Sequence[str] = ("expand", "sweep", "esweep", "at", "eat")) -> None:
        self.inner = LocalExecutor(ShardContext.from_spec(spec))
        self.tamper = tamper
        self.kinds = kinds
        self.calls = 0

    @property
    def workers(self) -> int:
        return 2

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        out = self.inner.map(tasks)
        self.calls += 1
        return [self.tamper(t, r) if t.kind in self.kinds else r for t, r in zip(tasks, out)]


def test_split_range_tiles_exactly() -> None:
    for size in (0, 1, 5, 7, 100, 2**31 + 3):
        for parts in (1, 2, 3, 8, 1000):
            ranges = split_range(size, parts)
            if size:
                _require_tiling(ranges, size)
            assert len(ranges) == min(parts, size)


@pytest.mark.parametrize("ranges", [[(0, 4), (5, 10)], [(0, 6), (5, 10)], [(0, 4), (4, 9)],
                                    [(1, 10)], [], [(0, 5), (5, 5), (5, 10)]])
def test_a_gap_or_overlap_in_the_shards_is_refused(ranges: list[tuple[int, int]]) -> None:
    with pytest.raises(ShardError, match="cover"):
        _require_tiling(ranges, 10)


def test_the_unharmed_tampering_executor_agrees(spec: Any) -> None:
    ex = Tampering(spec, lambda t, r: r)
    got = analyze_sharded(spec, executor=ex, plan=PLAN).to_dict()
    want = analyze(spec).report.to_dict()
    for d in (got, want):
        d.pop("seconds")
        d.pop("method")
    assert got == want and ex.calls > 3


def _shift_range(t: Task, r: Any) -> Any:
    return (r[0] + 1, r[1], r[2])


def _claim_other_id(t: Task, r: Any) -> Any:
    return (r[0], r[1], tuple(r[1] for _ in r[2]))    # hi is outside [lo, hi)


def _drop_a_pair(t: Task, r: Any) -> Any:
    return (r[0], r[1], r[2][:-1])


def _escape_the_space(t: Task, r: Any) -> Any:
    r = r.copy()
    r[0, 0] = 10**9
    return r


def _wrong_dtype(t: Task, r: Any) -> Any:
    return r.astype(np.int32)


def _foreign_state(t: Task, r: Any) -> Any:
    return tuple((0, -5) for _ in r)


@pytest.mark.parametrize("tamper,kinds", [
    (_shift_range, ("sweep",)), (_shift_range, ("esweep",)),
    (_claim_other_id, ("sweep",)), (_claim_other_id, ("esweep",)),
    (_drop_a_pair, ("sweep",)), (_drop_a_pair, ("esweep",)),
    (_escape_the_space, ("expand",)), (_wrong_dtype, ("expand",)),
    (lambda t, r: None, ("sweep",)), (lambda t, r: "pass", ("esweep",)),
])
def test_a_malformed_result_ends_the_check(spec: Any, tamper: Any, kinds: Any) -> None:
    with pytest.raises(ShardError):
        analyze_sharded(spec, executor=Tampering(spec, tamper, kinds), plan=PLAN)


def test_a_foreign_state_in_a_reachable_fact_ends_the_check(failing_spec: Any) -> None:
    # gsm_order fails CC1: its pairs' reachable facts are asked for
    with pytest.raises(ShardError, match="not one of its states"):
        analyze_sharded(failing_spec, executor=Tampering(failing_spec, _foreign_state, ("at",)),
                        plan=PLAN)


class Losing(Tampering):
    """Returns one result fewer than it was given tasks."""

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        return super().map(tasks)[:-1]


class Raising(Tampering):
    def map(self, tasks: Sequence[Task]) -> list[Any]:
        raise ConnectionError("scheduler went away")


@pytest.mark.parametrize("cls", [Losing, Raising])
def test_a_lost_result_or_a_failing_executor_ends_the_check(spec: Any, cls: Any) -> None:
    with pytest.raises(ShardError):
        analyze_sharded(spec, executor=cls(spec, lambda t, r: r), plan=PLAN)


def test_a_malformed_task_is_refused_on_the_worker(spec: Any) -> None:
    ctx = ShardContext.from_spec(spec)
    space = tuple(range(len(ctx.cm.radices)))
    bad = [Task("sweep", (space, ((0, 1),), 0, 10**12)),
           Task("sweep", (space, ((0, 99),), 0, 1)),
           Task("sweep", (space, (), 0, 1)),
           Task("expand", (np.array([-1]),)),
           Task("expand", (np.array([0.5]),)),
           Task("esweep", (space, 99, 0, 1)),
           Task("at", (space, ((0, 1),), np.array([0, 1]), np.array([0]))),
           Task("drop_tables", ()),
           Task("sweep", (space,))]
    for t in bad:
        with pytest.raises(ShardError):
            run_task(ctx, t)


def test_a_task_failing_on_a_dask_worker_ends_the_check(dask_client: Any, spec: Any) -> None:
    ex = DaskExecutor(dask_client, spec, retries=0)
    ex.token = "0" * 64          # the workers refuse a spec that does not match its token
    with pytest.raises(ShardError, match="does not match its token"):
        analyze_sharded(spec, executor=ex, plan=PLAN)


def test_an_unreachable_scheduler_is_an_error(spec: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import convergent.cluster.check as cc
    monkeypatch.setattr(cc, "CONNECT_SECONDS", 1)
    with pytest.raises(ShardError, match="cannot reach"):
        check_sharded(spec, "tcp://127.0.0.1:9")


# ---------------------------------------------------------------- dying workers

def _die_once(marker: str, token: str, blob: bytes, task: Task) -> Any:
    """Kill this worker process the first time any worker runs a task."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return run_remote(token, blob, task)
    os.close(fd)
    os._exit(1)


def _always_die(token: str, blob: bytes, task: Task) -> Any:
    os._exit(1)


@pytest.fixture(scope="module")
def process_client() -> Any:
    distributed = pytest.importorskip("distributed")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        yield client
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_worker_that_dies_has_its_shard_rerun(process_client: Any, spec: Any,
                                                tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    ex = DaskExecutor(process_client, spec, runner=functools.partial(_die_once, marker))
    got = analyze_sharded(spec, executor=ex, plan=PLAN).to_dict()
    assert os.path.exists(marker)        # a worker did die
    want = analyze(spec).report.to_dict()
    for d in (got, want):
        d.pop("seconds")
        d.pop("method")
    assert got == want


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_workers_that_keep_dying_end_the_check(process_client: Any, spec: Any) -> None:
    ex = DaskExecutor(process_client, spec, runner=_always_die)
    with pytest.raises(ShardError, match="KilledWorker|failed"):
        analyze_sharded(spec, executor=ex, plan=ShardPlan(shards=1, local_below=0))


# ---------------------------------------------------------------- false witnesses

def _claim_failure_everywhere(t: Task, r: Any) -> Any:
    return (r[0], r[1], tuple(r[0] for _ in r[2]))


def _reverse_columns(t: Task, r: Any) -> Any:
    return r[:, ::-1].copy()


@pytest.mark.parametrize("tamper,kinds", [
    (_claim_failure_everywhere, ("sweep",)), (_claim_failure_everywhere, ("esweep",)),
    (_reverse_columns, ("expand",)),
])
def test_a_witness_that_does_not_fail_is_refused(spec: Any, tamper: Any, kinds: Any) -> None:
    # bank_account passes: no state fails, so any claimed witness is false
    with pytest.raises(ShardError, match="does not fail|other states"):
        analyze_sharded(spec, executor=Tampering(spec, tamper, kinds), plan=PLAN)


def test_a_false_reachable_witness_is_refused(failing_spec: Any) -> None:
    def shallowest_first_state(t: Task, r: Any) -> Any:
        ids, depths = t.payload[2], t.payload[3]
        return tuple((int(depths[0]), int(ids[0])) for _ in r)
    # the first state of some chunk is not where the pair fails
    with pytest.raises(ShardError, match="does not fail"):
        analyze_sharded(failing_spec, plan=PLAN, executor=Tampering(
            failing_spec, shallowest_first_state, ("at",)))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_cluster_without_workers_ends_the_check(spec: Any) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        ex = DaskExecutor(client, spec, no_workers_grace=2.0, poll=0.5)
        with pytest.raises(ShardError, match="no worker"):
            analyze_sharded(spec, executor=ex, plan=PLAN)
