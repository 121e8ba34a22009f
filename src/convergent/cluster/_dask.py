"""The Dask executor: shard tasks as futures on a ``distributed`` cluster.

Failure handling is Dask's plus ours: a task whose worker dies is
rescheduled by the scheduler on another worker (up to its
``allowed-failures``, then ``KilledWorker``); a task that raises is retried
``retries`` times; anything still failing, and any result that is not a
valid answer, ends the check with ``ShardError`` (no verdict). Results are
gathered all at once per phase, so a lost shard can never be skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle  # type: ignore[import-untyped, unused-ignore]

from ..engine.shard import ShardError, Task
from ._worker import MAX_SPEC_BYTES, run_remote, spec_token

__all__ = ["DaskExecutor"]


class DaskExecutor:
    """Runs tasks on the workers of ``client`` (a ``distributed.Client``)."""

    def __init__(self, client: Any, spec: Any, *, retries: int = 1,
                 runner: Callable[[str, bytes, Task], Any] = run_remote,
                 no_workers_grace: float = 120.0, poll: float = 2.0) -> None:
        """``retries``: reruns of a task that raised (a lost worker is
        rescheduled by Dask regardless). ``runner``: the function the workers
        call, ``run_remote`` unless a test injects faults around it.
        ``no_workers_grace``: seconds without any worker before the check
        fails (long enough for a nanny or an autoscaler to bring one back)."""
        self.client = client
        self.runner = runner
        self.blob = cloudpickle.dumps(spec)
        if len(self.blob) > MAX_SPEC_BYTES:
            raise ShardError(f"the spec pickles to {len(self.blob)} bytes, more than "
                             f"{MAX_SPEC_BYTES}")
        self.token = spec_token(self.blob)
        self.retries = retries
        self.no_workers_grace = no_workers_grace
        self.poll = poll
        self.seconds_waiting = 0.0
        info = client.scheduler_info()
        self._workers = max(1, len(info.get("workers", {})))

    @property
    def workers(self) -> int:
        return self._workers

    def _wait(self, futures: list[Any]) -> None:
        """Until every task is done or one failed (then ``gather`` raises).
        A cluster left without any worker for ``no_workers_grace`` seconds
        ends the check: Dask would keep the tasks waiting forever."""
        alone_since: float | None = None
        nap = 0.001
        checked = time.monotonic()
        while True:
            states = {f.status for f in futures}
            if "error" in states or "cancelled" in states or states <= {"finished"}:
                return
            time.sleep(nap)
            nap = min(self.poll, nap * 2)
            now = time.monotonic()
            if now - checked < self.poll:
                continue
            checked = now
            if self.client.scheduler_info().get("workers"):
                alone_since = None
                continue
            alone_since = now if alone_since is None else alone_since
            if now - alone_since > self.no_workers_grace:
                raise ShardError(f"the cluster has had no worker for {self.no_workers_grace:g} "
                                 "s while shard tasks wait; the check has no verdict")

    def map(self, tasks: Sequence[Task]) -> list[Any]:
        if not tasks:
            return []
        n = len(tasks)
        futures = self.client.map(self.runner, [self.token] * n, [self.blob] * n, list(tasks),
                                  pure=False, retries=self.retries)
        t0 = time.perf_counter()
        try:
            self._wait(futures)
            out = self.client.gather(futures, errors="raise")
        except ShardError:
            raise
        except Exception as exc:
            raise ShardError(f"a shard task failed on the cluster ({type(exc).__name__}: "
                             f"{exc}); the check has no verdict") from exc
        finally:
            self.seconds_waiting += time.perf_counter() - t0
            self.client.cancel(futures)
        if not isinstance(out, list) or len(out) != n:
            raise ShardError(f"the cluster returned {type(out).__name__} for {n} tasks")
        return out
