"""The mutation queue: enqueueing (limits, duplicates, breakpoints) and running it.

Mutations never nest: one transition runs to its end before the next. The
queue runs synchronously (``_drain``, with ``_fast_transition``) when nothing
can observe a transition, and as a coroutine (``_process``, with
``_transition``) otherwise; both take mutations off it with ``_pop``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ._base import MachineBase
from .model import (
    CANCELED,
    EMPTY_ARGS,
    LogLevel,
    MachineState,
    Mutation,
    MutationType,
    Outcome,
    Result,
)


class QueueMixin(MachineBase):
    """Enqueueing and running mutations (part of ``Machine``)."""

    async def _mutate(self, kind: int, states: Sequence[str],
                      args: Mapping[str, Any] | None) -> Result:
        mut = self._enqueue(kind, states, args)
        if mut is None:
            return CANCELED
        if self._processing:
            if self.log_level >= LogLevel.OPS:
                self._log(LogLevel.OPS, f"[postpone] queue running ({len(self._queue)} "
                                        f"item{'s' if len(self._queue) != 1 else ''})")
            return Result(Outcome.QUEUED, mut.queue_tick)
        if self._observed():
            await self._process()
        else:
            self._drain()
        return mut.result or CANCELED

    def _mutate_nowait(self, kind: int, states: Sequence[str],
                       args: Mapping[str, Any] | None) -> Result:
        mut = self._enqueue(kind, states, args)
        if mut is None:
            return CANCELED
        if not self._processing:
            self._schedule()
        return Result(Outcome.QUEUED, mut.queue_tick)

    def _enqueue(self, kind: int, states: Sequence[str],
                 args: Mapping[str, Any] | None) -> Mutation | None:
        self._require_running()
        called = self._parse(states)
        queue = self._queue
        exc = self._exception
        # a full queue refuses everything but an Exception, while not in Exception
        if len(queue) >= self.queue_limit and (exc not in called or self._clock[exc] & 1):
            if self.log_level >= LogLevel.OPS:
                self._log(LogLevel.OPS, f"[queue:full] {self._desc(kind, called)}")
            return None
        if queue and not args:
            multi = self._c.multi
            if not any(multi[s] for s in called):
                wanted = set(called)
                for queued in queue:
                    if (queued.queue_tick and queued.kind == kind and not queued.args
                            and len(queued.called) == len(called)
                            and wanted.issuperset(queued.called)):
                        if self.log_level >= LogLevel.OPS:
                            self._log(LogLevel.OPS, "[queue:skipped] Duplicate detected for "
                                                    f"{self._desc(kind, called)}")
                        return queued
        frozen = MappingProxyType(dict(args)) if args else EMPTY_ARGS
        self._pending_ticks += 1
        mut = Mutation(kind, called, frozen, queue_tick=self._pending_ticks + self._queue_tick)
        queue.append(mut)
        if self._processing and self.log_level >= LogLevel.OPS:
            self._log(LogLevel.OPS, f"[queue:{MutationType(kind)}] "
                                    + " ".join(self._names[s] for s in called))
        if self._hooks["mutation_queued"]:
            self._trace("mutation_queued", self, mut)
        if self._breakpoints:
            self._check_breakpoints(mut)
        return mut

    def _prepend(self, mut: Mutation) -> None:
        self._queue.appendleft(mut)
        if self._hooks["mutation_queued"]:
            self._trace("mutation_queued", self, mut)

    def _schedule(self) -> None:
        runner = self._runner
        if runner is None or runner.done():
            assert self._loop is not None
            self._runner = self._loop.create_task(self._run_soon(), name=f"{self.id}-queue")

    async def _run_soon(self) -> None:
        if self._observed():
            await self._process()
        elif not self._processing:
            self._drain()

    # ------------------------------------------------------------------ running

    def _pop(self) -> Mutation:
        """The next mutation; a ticked one moves the queue tick."""
        mut = self._queue.popleft()
        if mut.queue_tick:
            self._pending_ticks -= 1
            self._queue_tick += 1
        return mut

    async def _process(self) -> None:
        if self._processing:
            return
        self._processing = True
        queue = self._queue
        waiters = self._waiters
        try:
            while queue and self._life is MachineState.RUNNING:
                mut = self._pop()
                mut.result = await self._transition(mut)
                if waiters._queue:
                    waiters.on_queue_tick(self._queue_tick)
        finally:
            self._processing = False
            self._tx = None
            if queue and self._life is MachineState.RUNNING:
                # interrupted (a cancelled caller): keep the queue going
                self._schedule()
        if self._hooks["queue_end"]:
            self._trace("queue_end", self)
        waiters.on_queue_end()

    def _observed(self) -> bool:
        """Whether anything can see a transition from the inside (handlers,
        tracers, logs, ``when_args``); if not, the synchronous path runs."""
        return (not self._handlers.empty or bool(self._tracers) or self.log_level > 0
                or self._waiters.args_count > 0)

    def _drain(self) -> None:
        """Run the queue synchronously with ``_fast_transition``: the rules of
        ``_transition`` without the handler, tracer and log steps around them."""
        self._processing = True
        queue = self._queue
        waiters = self._waiters
        try:
            while queue and self._life is MachineState.RUNNING:
                mut = self._pop()
                mut.result = self._fast_transition(mut)
                if waiters._queue:
                    waiters.on_queue_tick(self._queue_tick)
        finally:
            self._processing = False
        waiters.on_queue_end()
