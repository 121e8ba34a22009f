"""What the parts of ``Machine`` share: its fields, and the methods one part
calls on another (declared for type checkers; ``Machine`` defines them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import asyncio
    from collections import deque
    from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence

    from . import _resolver as R
    from ._handlers import Handlers, HandlerTable
    from ._phases import Pending
    from ._schedule import FinalStep, NegotiationStep, Plan
    from ._waiters import Waiters
    from .model import MachineState, Mutation, Result, Transition


class MachineBase:
    """The fields of a machine, set by ``Machine.__init__``."""

    _c: R.Compiled
    _names: tuple[str, ...]
    _index: dict[str, int]
    _exception: int
    id: str
    handler_timeout: float
    queue_limit: int
    log_level: int
    _handlers: HandlerTable
    _clock: list[int]
    _active: list[int]
    _queue: deque[Mutation]
    _queue_tick: int
    _pending_ticks: int
    _machine_tick: int
    _processing: bool
    _tx: Transition | None
    _tx_ids: Iterator[int]
    _waiters: Waiters
    _cache: dict[tuple[int, tuple[int, ...], tuple[int, ...]], list[int]]
    _plans: dict[tuple[int, tuple[int, ...], tuple[int, ...], bool], Plan]
    _err: BaseException | None
    _breakpoints: list[Any]
    _tracers: list[object]
    _hooks: dict[str, list[Callable[..., Any]]]
    _life: MachineState
    _loop: asyncio.AbstractEventLoop | None
    _runner: asyncio.Task[None] | None
    _bound_tasks: dict[int, set[asyncio.Task[Any]]]

    if TYPE_CHECKING:  # pragma: no cover
        # machine.py
        def _parse(self, states: Sequence[str]) -> list[int]: ...
        def _require_running(self) -> asyncio.AbstractEventLoop: ...
        def _cancel_bound(self, changed: list[int]) -> None: ...
        def _check_breakpoints(self, mut: Mutation) -> None: ...
        def _trace(self, hook: str, *args: Any) -> None: ...
        def _n(self, states: Iterable[int]) -> str: ...
        def _desc(self, kind: int, called: list[int]) -> str: ...
        def _log(self, level: int, message: str) -> None: ...
        def _log_change(self, tx: Transition, changed: list[int]) -> None: ...

        # _queue.py
        def _prepend(self, mut: Mutation) -> None: ...
        def _enqueue(self, kind: int, states: Sequence[str],
                     args: Mapping[str, Any] | None) -> Mutation | Result: ...

        # _transition.py
        async def _transition(self, mut: Mutation) -> Result: ...
        def _plan_of(self, mut: Mutation, before: list[int], visit: bool) -> Plan: ...
        def _plain_transition(self, mut: Mutation, plan: Plan
                              ) -> Result | Coroutine[Any, Any, Result]: ...
        def _fast_transition(self, mut: Mutation) -> Result: ...

        # _phases.py
        async def _negotiate(self, tx: Transition,
                             steps: tuple[NegotiationStep, ...]) -> bool: ...
        async def _finals(self, tx: Transition, steps: tuple[FinalStep, ...], visit: bool,
                          traced: bool, resume: Pending | None = None) -> bool: ...
        def _finals_now(self, tx: Transition,
                        steps: tuple[FinalStep, ...]) -> bool | Pending: ...
        async def _run_handlers(self, tx: Transition, group: Handlers,
                                final: bool) -> bool | None: ...
