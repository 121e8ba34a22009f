"""The asyncio relational machine: many states active at once, related by rules.

Lifecycle is explicit: build a ``Machine``, ``await machine.start()`` inside a
running loop (or ``async with machine``), and ``await machine.aclose()``.
Mutating or waiting before start, or after close, raises ``LifecycleError``.

Mutations are queued and never nested. ``await machine.add("Foo")`` runs the
queue when it is idle and returns the mutation's own result (executed or
canceled); when the queue is already running (the caller is a handler, or
another task is inside an async handler) it returns ``queued`` with the queue
tick to wait on. ``add_nowait`` and friends only enqueue and let the loop run
the queue soon after, for use in synchronous handlers and callbacks.

The machine is assembled from parts with one job each: ``_queue`` (enqueueing
and running mutations), ``_transition`` (the transition rules, and the fast and
observed paths that both run them), ``_phases`` (negotiation and final
handlers), on the fields declared in ``_base``; this module holds the public API, waiting, tasks, tracers,
breakpoints, snapshots and logs.

One transition runs at a time, in this order (the reference's):

1. relations resolve the target states (``_resolver``); a called state that is
   not a target cancels the mutation (auto mutations may be partly refused);
2. negotiation: ``X_exit``, ``X_enter``, self ``X_X``, pair ``X_Y``,
   ``any_enter``; returning ``False`` cancels the whole transition;
3. the clocks move: +1 for every activation and deactivation, +2 for a
   ``multi`` state called again while active (odd tick = active);
4. final handlers ``X_end`` then ``X_state``, then ``any_state``;
5. when a clock moved and the mutation was not itself auto, an auto mutation of
   the ``auto`` states is prepended to the queue.

A handler that raises (or an async handler that outlives ``handler_timeout``)
cancels the transition; in the final phase the states whose final handlers did
not run are reverted. The error is stored on ``machine.err`` and an ``add`` of
``Exception`` carrying ``args["err"]`` is prepended to the queue. Nothing a
handler does stops the loop. That ``Exception`` mutation brings no auto
mutation when it changed no active state (``Exception`` was already active),
so an auto state whose handler always raises is not retried forever.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import _resolver as R
from ._format import format_active, format_all, format_inspect
from ._handlers import HandlerTable, bind_handlers
from ._phases import PhasesMixin
from ._queue import QueueMixin
from ._schedule import Plan
from ._transition import TransitionMixin
from ._waiters import ALL_ACTIVE, ALL_INACTIVE, MIN_TIME, Waiters
from .errors import LifecycleError, SnapshotError, UnknownStateError
from .model import (
    CANCELED,
    LogLevel,
    MachineState,
    Mutation,
    MutationType,
    Result,
    Snapshot,
    Transition,
)
from .schema import EXCEPTION, Schema
from .tracers import HOOKS

# plain constants: an enum member lookup costs more than the test it feeds
_RUNNING = MachineState.RUNNING

__all__ = ["LogLevel", "Machine", "MachineState"]

T = TypeVar("T")
ADD, REMOVE, SET = R.ADD, R.REMOVE, R.SET
_logger = logging.getLogger("convergent.relational")
RESTORED = "MachineRestored"


@dataclass(frozen=True)
class _Breakpoint:
    added: frozenset[int]
    removed: frozenset[int]
    strict: bool
    callback: Callable[[Mutation], Any] | None


def _default_logger(level: int, message: str) -> None:
    _logger.debug(message)


class Machine(QueueMixin, TransitionMixin, PhasesMixin):
    """An asyncio state machine whose states are related by a ``Schema``.

    Args:
        schema: the states and their relations.
        handlers: an object, a ``{name: callable}`` mapping, or a list of them,
            bound once here by the naming convention (``Foo_enter``, ...).
        id: the machine id (used by ``export``/``load`` and in logs); random when omitted.
        handler_timeout: seconds an async handler may run. Synchronous handlers
            cannot be interrupted; like the reference's, they must not block.
        tracers: observers, see ``convergent.relational.tracers``.
        queue_limit: mutations beyond this many queued are canceled
            (an ``Exception`` still enters while the machine is not in ``Exception``).
        log_level / logger: the reference's log lines, sent to ``logger(level,
            message)``; by default to the ``convergent.relational`` logger.
        active: states active from the start, each at tick 1, set as given:
            no relation is resolved, no handler or tracer runs, no auto mutation
            follows (the fixture the reference's tests build by hand). The queue
            tick stays 1 and nothing counts as a transition.
    """

    def __init__(self, schema: Schema, *, handlers: object = None, id: str | None = None,
                 handler_timeout: float = 1.0, tracers: Iterable[object] = (),
                 queue_limit: int = 1000, log_level: int = LogLevel.NOTHING,
                 logger: Callable[[int, str], None] | None = None,
                 active: Iterable[str] = ()) -> None:
        if not isinstance(schema, Schema):
            raise TypeError(f"schema={schema!r} (expected a convergent.relational.Schema)")
        if handler_timeout <= 0:
            raise ValueError(f"handler_timeout={handler_timeout!r} (expected > 0)")
        if queue_limit < 1:
            raise ValueError(f"queue_limit={queue_limit!r} (expected >= 1)")
        self._c = R.compile_schema(schema)
        self._names = self._c.names
        self._index = self._c.index
        self._exception = self._index[EXCEPTION]
        self.id = id if id is not None else secrets.token_hex(4)
        self.handler_timeout = float(handler_timeout)
        self.queue_limit = queue_limit
        self.log_level = int(log_level)
        self._logger = logger or _default_logger
        self._handlers: HandlerTable = bind_handlers(self._names, handlers)

        n = len(self._names)
        self._clock: list[int] = [0] * n
        self._active: list[int] = []
        self._queue: deque[Mutation] = deque()
        self._queue_tick = 1
        self._pending_ticks = 0
        self._machine_tick = 0
        self._processing = False
        self._tx: Transition | None = None
        self._tx_ids = itertools.count(1)
        self._waiters = Waiters(n, self._clock)
        self._cache: dict[tuple[int, tuple[int, ...], tuple[int, ...]], list[int]] = {}
        self._plans: dict[tuple[int, tuple[int, ...], tuple[int, ...], bool], Plan] = {}
        self._err: BaseException | None = None
        self._breakpoints: list[_Breakpoint] = []
        self._tracers: list[object] = []
        self._hooks: dict[str, list[Callable[..., Any]]] = {h: [] for h in HOOKS}
        self._life = MachineState.NEW
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bound_tasks: dict[int, set[asyncio.Task[Any]]] = {}
        self._restore_pending = False
        if isinstance(active, str):
            raise TypeError(f"active={active!r} (expected a sequence of state names, "
                            f"e.g. ({active!r},))")
        for s in self._parse(list(active)):
            self._clock[s] = 1
            self._active.append(s)
        for tracer in tracers:
            self.bind_tracer(tracer)

    # ------------------------------------------------------------------ lifecycle

    @property
    def lifecycle(self) -> MachineState:
        return self._life

    async def start(self) -> Machine:
        """Bind the machine to the running loop; mutations are allowed from now on."""
        if self._life is MachineState.CLOSED:
            raise LifecycleError(f"machine {self.id} is closed; build a new one")
        if self._life is _RUNNING:
            return self
        self._loop = asyncio.get_running_loop()
        self._life = MachineState.RUNNING
        if self._restore_pending and RESTORED in self._index:
            self._restore_pending = False
            self.add_nowait(RESTORED)
        return self

    async def aclose(self) -> None:
        """Cancel forked tasks, drop the queue, fail pending waiters. Idempotent."""
        if self._life is MachineState.CLOSED:
            return
        self._life = MachineState.CLOSED
        for mut in self._queue:
            mut.result = CANCELED
        self._queue.clear()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current and not t.done()]
        runner = self._runner
        if runner is not None and runner is not current and not runner.done():
            tasks.append(runner)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._waiters.fail_all(lambda: LifecycleError(f"machine {self.id} was closed"))

    async def __aenter__(self) -> Machine:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _require_running(self) -> asyncio.AbstractEventLoop:
        if self._life is not _RUNNING:
            if self._life is MachineState.NEW:
                raise LifecycleError(f"machine {self.id} is not started; "
                                     "await machine.start() or use 'async with machine'")
            raise LifecycleError(f"machine {self.id} is closed")
        assert self._loop is not None
        return self._loop

    # ------------------------------------------------------------------ naming

    @property
    def schema(self) -> Schema:
        return self._c.schema

    @property
    def state_names(self) -> tuple[str, ...]:
        return self._names

    def _parse(self, states: Sequence[str]) -> list[int]:
        index = self._index
        try:
            called = [index[s] for s in states]
        except (KeyError, TypeError):
            bad = [s for s in states if not isinstance(s, str) or s not in index]
            raise UnknownStateError([str(b) for b in bad], self._names) from None
        if len(called) > 1:
            called = list(dict.fromkeys(called))
        return called

    def has(self, *states: str) -> bool:
        return all(s in self._index for s in states)

    # ------------------------------------------------------------------ reading

    def is_active(self, *states: str) -> bool:
        """True when every state named is active (the reference's ``Is``)."""
        clock = self._clock
        return all(clock[i] & 1 for i in self._parse(states))

    def not_active(self, *states: str) -> bool:
        """True when none of the states named is active (``Not``)."""
        clock = self._clock
        return not any(clock[i] & 1 for i in self._parse(states))

    def any_active(self, *groups: str | Sequence[str]) -> bool:
        """True when any group is fully active; a group is a name or a sequence (``Any``)."""
        return any(self.is_active(g) if isinstance(g, str) else self.is_active(*g)
                   for g in groups)

    @property
    def active_states(self) -> tuple[str, ...]:
        names = self._names
        return tuple(names[s] for s in self._active)

    @property
    def is_err(self) -> bool:
        return bool(self._clock[self._exception] & 1)

    @property
    def err(self) -> BaseException | None:
        """The last error delivered to the ``Exception`` state."""
        return self._err

    def tick(self, state: str) -> int:
        return self._clock[self._parse((state,))[0]]

    def clock(self, *states: str) -> dict[str, int]:
        """``{state: tick}`` for the states named, or all."""
        if not states:
            return dict(zip(self._names, self._clock, strict=True))
        return {self._names[i]: self._clock[i] for i in self._parse(states)}

    def time(self, *states: str) -> tuple[int, ...]:
        """Ticks in state order (all states when none named): the machine time."""
        if not states:
            return tuple(self._clock)
        return tuple(self._clock[i] for i in self._parse(states))

    def is_clock(self, clock: Mapping[str, int]) -> bool:
        """True when every state in ``clock`` still has that tick (nothing moved)."""
        idx = self._parse(list(clock))
        return all(self._clock[i] == t for i, t in zip(idx, clock.values(), strict=True))

    def is_time(self, time: Sequence[int], states: Sequence[str] | None = None) -> bool:
        idx = range(len(self._names)) if states is None else self._parse(states)
        return len(time) == len(idx) and all(
            self._clock[i] == t for i, t in zip(idx, time, strict=True))

    @property
    def queue_tick(self) -> int:
        return self._queue_tick

    @property
    def machine_tick(self) -> int:
        return self._machine_tick

    @property
    def transition(self) -> Transition | None:
        """The transition running now, if any."""
        return self._tx

    @property
    def queue(self) -> tuple[Mutation, ...]:
        return tuple(self._queue)

    @property
    def queue_len(self) -> int:
        return len(self._queue)

    def is_queued(self, kind: MutationType | int, *states: str, without_args_only: bool = False,
                  strict: bool = False) -> bool:
        """Whether a queued mutation of ``kind`` calls (at least, or exactly) ``states``."""
        wanted = set(self._parse(states))
        for mut in self._queue:
            if mut.kind != kind or (without_args_only and mut.args):
                continue
            called = set(mut.called)
            if wanted <= called and (not strict or len(called) == len(wanted)):
                return True
        return False

    def string(self) -> str:
        """``(Foo:1 Bar:3)``: active states with their ticks."""
        return format_active(self._names, self._clock)

    def string_all(self) -> str:
        """``(Foo:1) [Bar:2 Baz:0]``: every state, inactive ones in brackets."""
        return format_all(self._names, self._clock)

    def inspect(self, *states: str) -> str:
        """Activity, tick, properties and relations of each state."""
        idx = self._parse(states) if states else range(len(self._names))
        return format_inspect(self.schema, [self._names[i] for i in idx],
                              [self._clock[i] for i in idx])

    def __str__(self) -> str:
        return self.string()

    def __repr__(self) -> str:
        return f"<Machine {self.id} {self._life.value} {self.string()}>"

    # ------------------------------------------------------------------ dry runs

    def can_add(self, *states: str) -> bool:
        """Whether relations alone would accept adding ``states`` now (no handlers run)."""
        called = self._parse(states)
        targets = R.resolve(self._c, ADD, called, self._active)
        return R.accepted(ADD, called, targets, False)

    def can_remove(self, *states: str) -> bool:
        called = self._parse(states)
        targets = set(R.resolve(self._c, REMOVE, called, self._active))
        return not any(s in targets for s in called)

    # ------------------------------------------------------------------ mutations

    async def add(self, *states: str, args: Mapping[str, Any] | None = None) -> Result:
        """Activate ``states`` keeping the others; see the module doc for results."""
        return await self._mutate(ADD, states, args)

    async def remove(self, *states: str, args: Mapping[str, Any] | None = None) -> Result:
        """Deactivate ``states``."""
        return await self._mutate(REMOVE, states, args)

    async def set(self, *states: str, args: Mapping[str, Any] | None = None) -> Result:
        """Activate ``states`` and deactivate every other state."""
        return await self._mutate(SET, states, args)

    async def toggle(self, *states: str, args: Mapping[str, Any] | None = None) -> Result:
        """Remove ``states`` when all are active, add them otherwise."""
        kind = REMOVE if self.is_active(*states) else ADD
        return await self._mutate(kind, states, args)

    def add_nowait(self, *states: str, args: Mapping[str, Any] | None = None) -> Result:
        """Queue an ``add`` and return at once (``queued`` or ``canceled``)."""
        return self._mutate_nowait(ADD, states, args)

    def remove_nowait(self, *states: str, args: Mapping[str, Any] | None = None) -> Result:
        return self._mutate_nowait(REMOVE, states, args)

    def set_nowait(self, *states: str, args: Mapping[str, Any] | None = None) -> Result:
        return self._mutate_nowait(SET, states, args)

    async def add_err(self, err: BaseException, *states: str,
                      args: Mapping[str, Any] | None = None) -> Result:
        """Record ``err`` and add ``Exception`` (with ``states``, e.g. a detailed
        error state), passing ``args["err"]``."""
        kind, called, merged = self._err_mutation(err, states, args)
        return await self._mutate(kind, called, merged)

    def add_err_nowait(self, err: BaseException, *states: str,
                       args: Mapping[str, Any] | None = None) -> Result:
        kind, called, merged = self._err_mutation(err, states, args)
        return self._mutate_nowait(kind, called, merged)

    def _err_mutation(self, err: BaseException, states: Sequence[str],
                      args: Mapping[str, Any] | None
                      ) -> tuple[int, tuple[str, ...], dict[str, Any]]:
        if not isinstance(err, BaseException):
            raise TypeError(f"err={err!r} (expected an exception)")
        self._require_running()
        self._err = err
        merged = dict(args or {})
        merged["err"] = err
        return ADD, (*states, EXCEPTION), merged

    # ------------------------------------------------------------------ waiting

    def when(self, *states: str) -> asyncio.Future[None]:
        """A future resolved once every state named is active (now or later)."""
        loop = self._require_running()
        return self._waiters.add(loop, ALL_ACTIVE, tuple(self._parse(states)))

    def when_not(self, *states: str) -> asyncio.Future[None]:
        """A future resolved once none of the states named is active."""
        loop = self._require_running()
        return self._waiters.add(loop, ALL_INACTIVE, tuple(self._parse(states)))

    def when_time(self, clock: Mapping[str, int]) -> asyncio.Future[None]:
        """A future resolved once every state's tick is at least the one given."""
        loop = self._require_running()
        if not clock:
            raise ValueError("when_time needs at least one {state: tick}")
        states = tuple(self._parse(list(clock)))
        return self._waiters.add(loop, MIN_TIME, states, tuple(int(t) for t in clock.values()))

    def when_ticks(self, state: str, ticks: int = 1) -> asyncio.Future[None]:
        """A future resolved once ``state`` ticked ``ticks`` more times from now."""
        if ticks < 1:
            raise ValueError(f"ticks={ticks!r} (expected >= 1)")
        return self.when_time({state: self.tick(state) + ticks})

    def when_args(self, state: str, args: Mapping[str, Any]) -> asyncio.Future[None]:
        """A future resolved when ``state`` is activated by a mutation whose args
        include ``args`` (compared with ``==``); useful for ``multi`` states."""
        loop = self._require_running()
        return self._waiters.add_args(loop, self._parse((state,))[0], args)

    def when_err(self) -> asyncio.Future[None]:
        return self.when(EXCEPTION)

    def when_queue(self, tick: int | Result) -> asyncio.Future[None]:
        """A future resolved once the queue processed the mutation of ``tick``
        (a queued ``Result`` works too)."""
        loop = self._require_running()
        if isinstance(tick, Result):
            tick = tick.queue_tick
        if self._queue_tick >= tick:
            future: asyncio.Future[None] = loop.create_future()
            future.set_result(None)
            return future
        return self._waiters.add_queue(loop, tick)

    def when_queue_ends(self) -> asyncio.Future[None]:
        """A future resolved when the queue next runs empty (now, when idle)."""
        loop = self._require_running()
        if not self._processing and not self._queue:
            future: asyncio.Future[None] = loop.create_future()
            future.set_result(None)
            return future
        return self._waiters.add_queue_end(loop)

    # ------------------------------------------------------------------ tasks

    def fork(self, coro: Awaitable[T], *, state: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a task owned by the machine.

        With ``state``, the task is cancelled as soon as that state's tick moves
        (it deactivates, or a ``multi`` state is activated again): the asyncio
        form of the reference's state context. An exception escaping the task
        is delivered to the ``Exception`` state; ``aclose`` cancels the rest.
        """
        loop = self._require_running()
        task: asyncio.Task[T] = loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        if state is not None:
            idx = self._parse((state,))[0]
            self._bound_tasks.setdefault(idx, set()).add(task)
        task.add_done_callback(self._fork_done)
        return task

    def _fork_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        for bucket in self._bound_tasks.values():
            bucket.discard(task)
        if task.cancelled() or self._life is not _RUNNING:
            return
        exc = task.exception()
        if exc is not None:
            _logger.warning("machine %s: forked task %s failed: %r", self.id, task.get_name(),
                            exc, exc_info=exc)
            self.add_err_nowait(exc, args={"task": task.get_name()})

    def _cancel_bound(self, changed: list[int]) -> None:
        for s in changed:
            bucket = self._bound_tasks.pop(s, None)
            if bucket:
                for task in bucket:
                    task.cancel()

    # ------------------------------------------------------------------ tracers

    def bind_tracer(self, tracer: object) -> None:
        """Attach a tracer; its hooks are looked up now, once."""
        if tracer in self._tracers:
            raise ValueError(f"tracer {tracer!r} is already bound")
        hooks = {h: getattr(tracer, h) for h in HOOKS if callable(getattr(tracer, h, None))}
        if not hooks:
            raise TypeError(f"{tracer!r} implements no tracer hook ({', '.join(HOOKS)})")
        self._tracers.append(tracer)
        for name, fn in hooks.items():
            self._hooks[name].append(fn)

    def detach_tracer(self, tracer: object) -> None:
        if tracer not in self._tracers:
            raise ValueError(f"tracer {tracer!r} is not bound")
        self._tracers.remove(tracer)
        self._hooks = {h: [] for h in HOOKS}
        for t in self._tracers:
            for name in HOOKS:
                fn = getattr(t, name, None)
                if callable(fn):
                    self._hooks[name].append(fn)

    @property
    def tracers(self) -> tuple[object, ...]:
        return tuple(self._tracers)

    def _trace(self, hook: str, *args: Any) -> None:
        for fn in self._hooks[hook]:
            try:
                fn(*args)
            except Exception:
                _logger.exception("tracer hook %s failed on machine %s", hook, self.id)

    # ------------------------------------------------------------------ breakpoints

    def add_breakpoint(self, added: Iterable[str] = (), removed: Iterable[str] = (), *,
                       strict: bool = False,
                       callback: Callable[[Mutation], Any] | None = None) -> None:
        """Call ``callback`` (and log ``[breakpoint]``) when a mutation adding
        exactly ``added`` or removing exactly ``removed`` is queued, so a debugger
        break set in the callback shows who asked. ``strict`` skips mutations
        whose states are already active (or inactive)."""
        a = frozenset(self._parse(list(added)))
        r = frozenset(self._parse(list(removed)))
        if not a and not r:
            raise ValueError("a breakpoint needs added or removed states")
        self._breakpoints.append(_Breakpoint(a, r, strict, callback))

    def _check_breakpoints(self, mut: Mutation) -> None:
        called = frozenset(mut.called)
        clock = self._clock
        for bp in self._breakpoints:
            if mut.kind == ADD and bp.added and called == bp.added:
                if bp.strict and all(clock[s] & 1 for s in bp.added):
                    continue
            elif mut.kind == REMOVE and bp.removed and called == bp.removed:
                if bp.strict and not any(clock[s] & 1 for s in bp.removed):
                    continue
            else:
                continue
            self._log(LogLevel.CHANGES, f"[breakpoint] {mut.describe(self._names)}")
            if bp.callback is not None:
                bp.callback(mut)

    # ------------------------------------------------------------------ snapshots

    def export(self) -> Snapshot:
        """The active states with their clocks (the reference's ``Export``)."""
        return Snapshot(id=self.id, state_names=self._names, time=tuple(self._clock),
                        queue_tick=self._queue_tick, machine_tick=self._machine_tick)

    def load(self, snapshot: Snapshot) -> None:
        """Restore clocks and active states from a snapshot of this machine.

        Allowed while no transition runs; adds ``MachineRestored`` when the
        schema declares it. The machine tick counts restores.
        """
        if self._life is MachineState.CLOSED:
            raise LifecycleError(f"machine {self.id} is closed")
        if self._processing:
            raise LifecycleError("load() during a transition; call it from outside handlers")
        if snapshot.id != self.id:
            raise SnapshotError(f"snapshot of machine {snapshot.id!r}, this is {self.id!r}; "
                                f"build the machine with id={snapshot.id!r}")
        if set(snapshot.state_names) != set(self._names) or len(snapshot.state_names) != len(
                self._names):
            raise SnapshotError(f"snapshot states {list(snapshot.state_names)} differ from "
                                f"the schema's {list(self._names)}")
        if any(t < 0 for t in snapshot.time):
            raise SnapshotError("snapshot ticks must be >= 0")
        ticks = dict(zip(snapshot.state_names, snapshot.time, strict=True))
        for i, name in enumerate(self._names):
            self._clock[i] = ticks[name]
        self._active = [i for i in range(len(self._names)) if self._clock[i] & 1]
        self._queue_tick = snapshot.queue_tick
        self._machine_tick = snapshot.machine_tick + 1
        self._cache.clear()
        self._plans.clear()
        if self._waiters.count:
            self._waiters.on_ticks(list(range(len(self._names))))
        if RESTORED in self._index:
            if self._life is _RUNNING:
                self.add_nowait(RESTORED)
            else:
                self._restore_pending = True

    # ------------------------------------------------------------------ logging

    def _n(self, states: Iterable[int]) -> str:
        names = self._names
        return " ".join(names[s] for s in states)

    def _desc(self, kind: int, called: list[int]) -> str:
        return f"[{MutationType(kind)}] {self._n(called)}"

    def _log(self, level: int, message: str) -> None:
        if self.log_level >= level:
            self._logger(level, f"[{self.id}] {message}")

    def _log_change(self, tx: Transition, changed: list[int]) -> None:
        clock = self._clock
        added = [s for s in changed if clock[s] & 1]
        removed = [s for s in changed if not clock[s] & 1]
        parts = "".join(f" +{self._names[s]}" for s in added)
        parts += "".join(f" -{self._names[s]}" for s in removed)
        label = "auto_" if tx.mutation.is_auto else "state"
        self._log(LogLevel.CHANGES, f"[{label}]{parts}")

    def log(self, message: str) -> None:
        """Write a user message to the machine's log (the reference's external level)."""
        self._log(LogLevel.CHANGES, message)
