"""``check_sharded``: verify a machine by enumeration split over a Dask cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..engine.check import Progress
from ..engine.report import Report
from ..engine.shard import ShardError, ShardPlan, analyze_sharded
from ..spec.model import MachineSpec

__all__ = ["check_sharded"]

#: shards per worker when ``shards`` is not given: a few per worker so that
#: a slow or replaced worker does not hold the whole phase
SHARDS_PER_WORKER = 4
#: seconds to wait for a scheduler given by address
CONNECT_SECONDS = 20


def _spec_of(spec: Any) -> MachineSpec:
    from ..spec.registry import Registry
    if isinstance(spec, Registry):
        return spec.spec()
    if isinstance(spec, MachineSpec):
        return spec
    raise TypeError(f"spec={type(spec).__name__} (expected a MachineSpec or a Registry)")


@contextlib.contextmanager
def _client(client: Any, workers: int) -> Iterator[Any]:
    """The given client, a client connected to a scheduler address, or a
    local cluster of ``workers`` processes on loopback (closed after)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the extra is in the test deps
        raise ShardError("a sharded check needs Dask: pip install 'convergent[cluster]' "
                         f"({exc})") from None
    if client is None:
        if not isinstance(workers, int) or not 1 <= workers <= 1024:
            raise ValueError(f"workers={workers!r} (expected an int in 1..1024)")
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
                Client(cluster) as c:
            yield c
        return
    if isinstance(client, str):
        try:
            c = Client(client, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise ShardError(f"cannot reach the Dask scheduler at {client!r}: {exc}") from None
        with c:
            yield c
        return
    yield client


def check_sharded(spec: Any, client: Any = None, *, shards: int | None = None,
                  workers: int = 2, scope: str = "reachable", strict: bool = False,
                  independent: str = "declared", chunk: int = 1 << 20,
                  local_below: int = 1 << 16, progress: Progress | None = None) -> Report:
    """Verify ``spec`` (a MachineSpec or Registry) by whole enumeration, its
    full-space work sharded over Dask workers: the report is the one
    ``convergent.engine.check.check(spec, method="enumerate")`` gives, with
    ``report.method["sharded"]`` saying how it was cut.

    ``client``: a ``distributed.Client``, a scheduler address
    (``"tcp://host:8786"``), or None for a local cluster of ``workers``
    processes. ``shards``: contiguous ranges per swept space (default: 4 per
    worker). ``chunk``: most states per reachability task; tasks of fewer than
    ``local_below`` states run here instead (0: ship every task).

    Raises BuildError as ``check`` does, ShardError when a task fails or a
    worker is lost for good: never a verdict on a partly checked space.
    """
    from ._dask import DaskExecutor
    machine = _spec_of(spec)
    with _client(client, workers) as c:
        ex = DaskExecutor(c, machine)
        plan = ShardPlan(shards=shards if shards is not None
                         else SHARDS_PER_WORKER * ex.workers,
                         chunk=chunk, local_below=local_below)
        return analyze_sharded(machine, executor=ex, plan=plan, scope=scope, strict=strict,
                               independent=independent, progress=progress)
