"""A small Dask cluster for the sharded check: two in-process workers (threads
of this process, over TCP on loopback so a scheduler address is also real),
shared by one module's tests. Module scope, not session: its threads must
not outlive these tests (Hypothesis warns when background threads use
``random`` while it generates data for other suites' tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

distributed = pytest.importorskip("distributed", reason="the 'cluster' extra is not installed")


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def dask_client(dask_cluster: Any) -> Iterator[Any]:
    with distributed.Client(dask_cluster) as client:
        yield client
