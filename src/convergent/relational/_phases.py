"""The handler phases of an observed transition: negotiation, final handlers,
the revert of a failed final phase, and the delivery of handler errors.

They are coroutines, but a handler written as a plain function never makes
them wait: the queue runs a transition by sending into its coroutine (see
``_queue``) and only hands it to the event loop when a handler awaits.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from types import MappingProxyType
from typing import Any

from . import _resolver as R
from ._base import MachineBase
from ._handlers import Bound, Handlers
from ._schedule import ANY, EXIT, PAIR, SELF, FinalStep, NegotiationStep
from .errors import HandlerTimeoutError
from .model import Event, LogLevel, Mutation, MutationType, Transition

# plain constants: an enum member lookup costs more than the test it feeds
_OPS = int(LogLevel.OPS)

ADD = R.ADD
_logger = logging.getLogger("convergent.relational")

Pending = tuple[int, int, Any]
"""Where final handlers stopped: (step, handler in the step's group, the
awaitable that handler returned)."""


class PhasesMixin(MachineBase):
    """Negotiation and final handlers (part of ``Machine``)."""

    async def _negotiate(self, tx: Transition, steps: tuple[NegotiationStep, ...]) -> bool:
        """Run the negotiation schedule (exit, enter, self, pair, any_enter);
        False cancels.

        In an auto transition a refusal by an enter, self or pair handler of an
        auto state drops only that state (the reference's partial acceptance):
        later self handlers skip it, and the pair phase walks the targets as
        they were when it started (transition.go ``emitStateStateEvents``). A
        handler error always cancels. With a ``handler_visit`` tracer the
        schedule holds every name, bound or not, and each is reported.
        """
        auto_tx = tx.mutation.is_auto
        auto = self._c.auto
        run = self._run_handlers
        visit = bool(self._hooks["handler_visit"])
        dropped: set[int] = set()
        before_pairs: set[int] | None = None
        emptiness_checked = False
        for phase, s, other, name, group in steps:
            if phase == SELF:
                if s in dropped:
                    continue
            elif phase == PAIR:
                if before_pairs is None:
                    before_pairs = set(dropped)
                if other in before_pairs:
                    continue
            elif phase == ANY:
                # none of the auto states was accepted: cancel before any_enter
                if auto_tx and not tx.targets:
                    return False
                emptiness_checked = True
            if visit:
                self._trace("handler_visit", tx, name)
            if not group:
                continue
            verdict = await run(tx, group, False)
            if verdict is True:
                continue
            target = other if phase == PAIR else s
            if (verdict is False and auto_tx and phase != EXIT and phase != ANY
                    and auto[target]):
                tx.targets = [t for t in tx.targets if t != target]
                dropped.add(target)
                continue
            return False
        return not (auto_tx and not emptiness_checked and not tx.targets)

    async def _finals(self, tx: Transition, steps: tuple[FinalStep, ...], visit: bool,
                      traced: bool, resume: Pending | None = None) -> bool:
        """End handlers of exited states, then state handlers of entered ones.

        When one fails (or the caller is cancelled meanwhile), the states whose
        final handlers did not run are reverted (see ``_revert_finals``).
        ``visit``: report every step to ``handler_visit`` tracers; ``traced``:
        log handlers or report them to ``handler_start`` / ``handler_end``.
        ``resume``: go on from where ``_finals_now`` stopped.
        """
        waiters = self._waiters
        args = tx.mutation.args
        call = self._call
        start, first, awaiting = resume if resume is not None else (0, 0, None)
        is_enter, pos = False, 0
        try:
            for k in range(start, len(steps)):
                is_enter, pos, s, name, group = steps[k]
                if visit:
                    self._trace("handler_visit", tx, name)
                verdict: Any = True
                for j in range(first if k == start else 0, len(group)):
                    bound = group[j]
                    # _run_handlers, unrolled: final handlers are the hot path
                    if awaiting is not None:
                        verdict, awaiting = awaiting, None
                    else:
                        verdict = call(tx, bound, True, traced)
                    if verdict is not True and verdict is not None:
                        verdict = await self._await_handler(tx, bound, verdict, True, traced)
                    if verdict is not True:
                        break
                if verdict is not True:
                    self._revert_from(tx, is_enter, pos)
                    return False
                if is_enter and waiters.args_count:
                    waiters.on_enter(s, args)
        except asyncio.CancelledError:
            self._revert_from(tx, is_enter, pos)
            raise
        return True

    def _finals_now(self, tx: Transition, steps: tuple[FinalStep, ...]) -> bool | Pending:
        """``_finals`` without tracers, logs or ``when_args`` waiters, run
        synchronously: True, False, or where a handler returned an awaitable
        (``_finals(resume=...)`` goes on from there)."""
        call = self._call
        for k, (is_enter, pos, _s, _name, group) in enumerate(steps):
            for j, bound in enumerate(group):
                verdict = call(tx, bound, True, False)
                if verdict is True:
                    continue
                if verdict is not None:
                    return (k, j, verdict)
                self._revert_from(tx, is_enter, pos)
                return False
        return True

    def _revert_from(self, tx: Transition, is_enter: bool, pos: int) -> None:
        """Revert from the final step that failed: the enter at ``pos`` and those
        after it, or the exit at ``pos``, those after it and the fresh enters."""
        if is_enter:
            self._revert_finals(tx, [], tx.enters[pos:])
        else:
            self._revert_finals(tx, tx.exits[pos:], self._fresh(tx, tx.enters))

    @staticmethod
    def _fresh(tx: Transition, enters: list[int]) -> list[int]:
        """The entered states that were inactive before the transition."""
        bset = set(tx.before)
        return [s for s in enters if s not in bset]

    def _revert_finals(self, tx: Transition, exits: list[int], drop: list[int]) -> None:
        """States whose final handlers did not run: ``exits`` become active again,
        ``drop`` inactive.

        A failed ``Foo_state`` drops Foo and every state entered after it, a
        ``multi`` state called again while active included: asyncmachine-go
        (``Machine.recoverFinalPhase``) removes each state from the failed enter
        on, whatever it was before. A failed ``Foo_end`` (the reference recovers
        nothing there) puts the exits back and drops only the newly entered
        states, so the machine is where it was.
        """
        dset = set(drop)
        active = [s for s in self._active if s not in dset] + list(exits)
        clock = self._clock
        for s in dset:
            if clock[s] & 1:
                clock[s] += 1
        for s in exits:
            clock[s] += 1
        self._active = active
        if self._bound_tasks:
            self._cancel_bound([*dset, *exits])
        if self.log_level >= _OPS:
            self._log(LogLevel.OPS, f"[recover] partial final states as ({self._n(active)})")

    async def _run_handlers(self, tx: Transition, group: Handlers,
                            final: bool) -> bool | None:
        """Run the callables bound to one handler name.

        Returns True to go on, False when a negotiation handler refused, None
        when a handler raised or timed out (the error is already delivered).
        """
        hooks = self._hooks
        traced = self.log_level >= _OPS or bool(hooks["handler_start"] or hooks["handler_end"])
        for bound in group:
            verdict = self._call(tx, bound, final, traced)
            if verdict is not True and verdict is not False and verdict is not None:
                verdict = await self._await_handler(tx, bound, verdict, final, traced)
            if verdict is not True:
                return verdict
        return True

    def _call(self, tx: Transition, bound: Bound, final: bool, traced: bool) -> Any:
        """Call one handler: its verdict (True, False, None as for
        ``_run_handlers``), or the awaitable it returned, still to await."""
        if traced:
            if self.log_level >= _OPS:
                self._log(LogLevel.OPS, f"[handler] {bound.name}")
            if self._hooks["handler_start"]:
                self._trace("handler_start", tx, bound.name)
        try:
            out = bound.fn(Event(bound.name, self, tx))  # type: ignore[arg-type]
        except Exception as exc:
            return self._handler_done(tx, bound.name, None, exc, final, traced)
        if bound.is_async or (out is not None and out.__class__ is not bool
                              and inspect.isawaitable(out)):
            return out
        if not traced and (final or out is not False):
            return True  # _handler_done's answer, without the call
        return self._handler_done(tx, bound.name, out, None, final, traced)

    async def _await_handler(self, tx: Transition, bound: Bound, awaitable: Any,
                             final: bool, traced: bool) -> bool | None:
        """Await what a handler returned, at most ``handler_timeout`` seconds."""
        error: BaseException | None = None
        out: Any = None
        try:
            timeout = asyncio.timeout(self.handler_timeout)
            try:
                async with timeout:
                    out = await awaitable
            except TimeoutError:
                if not timeout.expired():
                    raise
                error = HandlerTimeoutError(bound.name, self.handler_timeout)
        except asyncio.CancelledError:
            if traced and self._hooks["handler_end"]:
                self._trace("handler_end", tx, bound.name)
            raise
        except Exception as exc:
            error = exc
        return self._handler_done(tx, bound.name, out, error, final, traced)

    def _handler_done(self, tx: Transition, name: str, out: object,
                      error: BaseException | None, final: bool, traced: bool) -> bool | None:
        if traced and self._hooks["handler_end"]:
            self._trace("handler_end", tx, name)
        if error is not None:
            self._handler_failed(tx, name, error)
            return None
        if out is False and not final:
            if self.log_level >= _OPS:
                self._log(LogLevel.OPS, f"[cancel] ({self._n(tx.targets)}) by {name}")
            return False
        return True

    def _handler_failed(self, tx: Transition, name: str, error: BaseException) -> None:
        self._err = error
        mut = tx.mutation
        _logger.warning("machine %s: handler %s failed on %s: %r", self.id, name,
                        mut.describe(self._names), error, exc_info=error)
        if self.log_level >= _OPS:
            self._log(LogLevel.OPS, f"[error:{MutationType(mut.kind)}] "
                                    f"{self._n(mut.called)} ({name}: {error!r})")
            self._log(LogLevel.OPS, f"[cancel] ({self._n(tx.targets)}) by recover")
        if self._exception in mut.called:
            # an error while handling an error: record it, never loop
            _logger.error("machine %s: %s raised while handling an error: %r",
                          self.id, name, error)
            return
        args = MappingProxyType({"err": error, "handler": name,
                                 "called": tx.called_states,
                                 "states_before": tx.states_before})
        self._prepend(Mutation(ADD, [self._exception], args, is_recovery=True))
