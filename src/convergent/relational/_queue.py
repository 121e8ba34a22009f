"""The mutation queue: enqueueing (limits, duplicates, breakpoints) and running it.

Mutations never nest: one transition runs to its end before the next. The
queue runs synchronously (``_drain``): with ``_fast_transition`` when nothing
can observe a transition, ``_plain_transition`` when handlers alone observe
and only final handlers run, else by sending into the ``_transition`` coroutine,
which ends at once unless a handler really waits (plain-function handlers
never do). Then the run is suspended: ``_resume`` continues that coroutine in
the awaiting task (``_Resume``) and drains on. Mutations leave the queue by
``_pop``.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ._base import MachineBase
from ._resolver import REMOVE
from .model import (
    CANCELED,
    EMPTY_ARGS,
    EXECUTED,
    LogLevel,
    MachineState,
    Mutation,
    MutationType,
    Outcome,
    Result,
)

# plain constants: an enum member lookup costs more than the test it feeds
_OPS = int(LogLevel.OPS)
_RUNNING = MachineState.RUNNING


class _Suspended:
    """A transition whose coroutine waits on ``pending`` (what it yielded)."""

    __slots__ = ("coro", "mut", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Result], mut: Mutation, pending: Any) -> None:
        self.coro = coro
        self.mut = mut
        self.pending = pending


class _Resume:
    """Awaiting it continues a coroutine that already yielded ``pending``, in
    the awaiting task: what the coroutine yields goes to the task, what the
    task sends or throws (a cancellation) goes to the coroutine."""

    __slots__ = ("coro", "pending")

    def __init__(self, sus: _Suspended) -> None:
        self.coro = sus.coro
        self.pending = sus.pending

    def __await__(self) -> Generator[Any, Any, Result]:
        coro = self.coro
        value = self.pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    result: Result = stop.value
                    return result
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    result = stop.value
                    return result


def _start(coro: Coroutine[Any, Any, Result], mut: Mutation) -> _Suspended | None:
    """Send into a transition's coroutine: it ends at once (``mut.result`` is
    set) unless a handler waits (then the suspended transition)."""
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        mut.result = stop.value
        return None
    return _Suspended(coro, mut, pending)


class QueueMixin(MachineBase):
    """Enqueueing and running mutations (part of ``Machine``)."""

    async def _mutate(self, kind: int, states: Sequence[str],
                      args: Mapping[str, Any] | None) -> Result:
        mut = self._enqueue(kind, states, args)
        if isinstance(mut, Result):
            return mut
        if self._processing:
            if self.log_level >= _OPS:
                self._log(LogLevel.OPS, f"[postpone] queue running ({len(self._queue)} "
                                        f"item{'s' if len(self._queue) != 1 else ''})")
            return Result(Outcome.QUEUED, mut.queue_tick)
        # _run_queue, inlined: this is the path of every awaited mutation
        sus = self._drain()
        while sus is not None:
            sus = await self._resume(sus)
        return mut.result or CANCELED

    def _mutate_nowait(self, kind: int, states: Sequence[str],
                       args: Mapping[str, Any] | None) -> Result:
        mut = self._enqueue(kind, states, args)
        if isinstance(mut, Result):
            return mut
        if not self._processing:
            self._schedule()
        return Result(Outcome.QUEUED, mut.queue_tick)

    def _enqueue(self, kind: int, states: Sequence[str],
                 args: Mapping[str, Any] | None) -> Mutation | Result:
        """Queue a mutation and return it, or return the result of one that is
        not queued: ``canceled`` past the queue limit, ``executed`` for a
        duplicate or a skipped removal (asyncmachine-go ``Machine.Add``,
        ``Machine.Remove``, ``Machine.queueMutation``)."""
        if self._life is not _RUNNING:
            self._require_running()
        called = self._parse(states)
        queue = self._queue
        exc = self._exception
        clock = self._clock
        # a full queue refuses everything but an Exception, while not in Exception
        if len(queue) >= self.queue_limit and (exc not in called or clock[exc] & 1):
            if self.log_level >= _OPS:
                self._log(LogLevel.OPS, f"[queue:full] {self._desc(kind, called)}")
            return CANCELED
        if (kind == REMOVE and not queue and self._tx is not None
                and not any(clock[s] & 1 for s in called)):
            # from inside a transition, with nothing queued, removing states that
            # are all inactive is done already: skipped, not queued
            if self.log_level >= _OPS:
                self._log(LogLevel.OPS, f"[queue:skipped] inactive {self._desc(kind, called)}")
            return EXECUTED
        if queue and not args:
            multi = self._c.multi
            if not any(multi[s] for s in called):
                wanted = set(called)
                for queued in queue:
                    if (queued.queue_tick and queued.kind == kind and not queued.args
                            and len(queued.called) == len(called)
                            and wanted.issuperset(queued.called)):
                        if self.log_level >= _OPS:
                            self._log(LogLevel.OPS, "[queue:skipped] Duplicate detected for "
                                                    f"{self._desc(kind, called)}")
                        return EXECUTED
        frozen = MappingProxyType(dict(args)) if args else EMPTY_ARGS
        self._pending_ticks += 1
        mut = Mutation(kind, called, frozen, queue_tick=self._pending_ticks + self._queue_tick)
        queue.append(mut)
        if self._processing and self.log_level >= _OPS:
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
        await self._run_queue()

    # ------------------------------------------------------------------ running

    def _pop(self) -> Mutation:
        """The next mutation; a ticked one moves the queue tick."""
        mut = self._queue.popleft()
        if mut.queue_tick:
            self._pending_ticks -= 1
            self._queue_tick += 1
        return mut

    async def _run_queue(self) -> None:
        """Run the queue to its end: synchronously while handlers return at once,
        awaiting whatever a handler returns to await."""
        if self._processing:
            return
        sus = self._drain()
        while sus is not None:
            sus = await self._resume(sus)

    def _observed(self) -> bool:
        """Whether anything can see a transition from the inside (handlers,
        tracers, logs, ``when_args``); if not, ``_fast_transition`` runs."""
        return (not self._handlers.empty or bool(self._tracers) or self.log_level > 0
                or self._waiters.args_count > 0)

    def _drain(self) -> _Suspended | None:
        """Run queued mutations synchronously: ``_fast_transition`` when nothing
        observes them, else by sending into the ``_transition`` coroutine. Stops
        at a transition whose handler waits and returns it, the queue still
        marked running (``_resume`` goes on)."""
        self._processing = True
        queue = self._queue
        waiters = self._waiters
        try:
            # nothing can start observing during a run that nothing observes
            observed = self._observed()
            while queue and self._life is _RUNNING:
                mut = self._pop()
                if observed:
                    plan = None
                    if not (self._tracers or self.log_level or waiters.args_count):
                        # handlers alone observe: a plain plan runs synchronously
                        plan = self._plan_of(mut, self._active, False)
                    if plan is not None and plan.ok and plan.plain:
                        out = self._plain_transition(mut, plan)
                        if isinstance(out, Result):
                            mut.result = out
                            sus = None
                        else:
                            sus = _start(out, mut)
                    else:
                        sus = _start(self._transition(mut), mut)
                    if sus is not None:
                        return sus
                else:
                    mut.result = self._fast_transition(mut)
                if waiters._queue:
                    waiters.on_queue_tick(self._queue_tick)
        except BaseException:
            self._interrupted()
            raise
        self._processing = False
        self._tx = None
        if self._hooks["queue_end"]:
            self._trace("queue_end", self)
        waiters.on_queue_end()
        return None

    async def _resume(self, sus: _Suspended) -> _Suspended | None:
        """Finish a suspended transition, then drain on."""
        try:
            result = await _Resume(sus)
        except BaseException:
            self._interrupted()
            raise
        sus.mut.result = result
        if self._waiters._queue:
            self._waiters.on_queue_tick(self._queue_tick)
        return self._drain()

    def _interrupted(self) -> None:
        """The queue run ended early (a cancelled caller): keep the queue going."""
        self._processing = False
        self._tx = None
        if self._queue and self._life is _RUNNING:
            self._schedule()
