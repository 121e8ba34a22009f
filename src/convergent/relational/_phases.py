"""The handler phases of an observed transition: negotiation, final handlers,
the revert of a failed final phase, and the delivery of handler errors.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from . import _resolver as R
from ._base import MachineBase
from ._handlers import Bound
from .errors import HandlerTimeoutError
from .model import Event, LogLevel, Mutation, MutationType, Transition

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

ADD, REMOVE = R.ADD, R.REMOVE
_logger = logging.getLogger("convergent.relational")


class PhasesMixin(MachineBase):
    """Negotiation and final handlers (part of ``Machine``)."""

    async def _negotiate(self, tx: Transition) -> bool:
        """Exit, enter, self, pair and any_enter handlers; False cancels.

        In an auto transition a refusal of an auto state drops only that state
        (the reference's partial acceptance); a handler error always cancels.
        """
        h = self._handlers
        auto_tx = tx.mutation.is_auto
        auto = self._c.auto
        run = self._run_handlers
        for s in tx.exits:
            if h.exit[s] and await run(tx, h.exit[s], False) is not True:
                return False
        for s in tx.enters:
            if h.enter[s]:
                verdict = await run(tx, h.enter[s], False)
                if verdict is not True:
                    if verdict is False and auto_tx and auto[s]:
                        tx.targets = [t for t in tx.targets if t != s]
                        continue
                    return False
        if tx.mutation.kind != REMOVE:
            clock = self._clock
            for s in list(tx.targets):
                if h.self_[s] and clock[s] & 1:
                    verdict = await run(tx, h.self_[s], False)
                    if verdict is not True:
                        if verdict is False and auto_tx and auto[s]:
                            tx.targets = [t for t in tx.targets if t != s]
                            continue
                        return False
        if h.pairs:
            after = list(tx.targets)
            for b in tx.before:
                for a in after:
                    pair = h.pairs.get((b, a)) if a != b else None
                    if not pair:
                        continue
                    verdict = await run(tx, pair, False)
                    if verdict is not True:
                        if verdict is False and auto_tx and auto[a]:
                            tx.targets = [t for t in tx.targets if t != a]
                            continue
                        return False
        if auto_tx and not tx.targets:
            return False
        if h.any_enter:
            return await run(tx, h.any_enter, False) is True
        return True

    async def _finals(self, tx: Transition) -> bool:
        """End handlers of exited states, then state handlers of entered ones.

        When one fails (or the caller is cancelled meanwhile), the states whose
        final handlers did not run are reverted.
        """
        h = self._handlers
        exits, enters = tx.exits, tx.enters
        waiters = self._waiters
        args = tx.mutation.args
        pos = 0
        try:
            for pos, s in enumerate(exits):
                if h.end[s] and await self._run_handlers(tx, h.end[s], True) is not True:
                    self._revert_finals(tx, exits[pos:], enters)
                    return False
            pos = len(exits)
            for i, s in enumerate(enters):
                pos = len(exits) + i
                if h.state[s] and await self._run_handlers(tx, h.state[s], True) is not True:
                    self._revert_finals(tx, [], enters[i:])
                    return False
                if waiters.args_count:
                    waiters.on_enter(s, args)
        except asyncio.CancelledError:
            n = len(exits)
            self._revert_finals(tx, exits[pos:] if pos < n else [],
                                enters if pos < n else enters[pos - n:])
            raise
        return True

    def _revert_finals(self, tx: Transition, exits: list[int], enters: list[int]) -> None:
        """States whose final handlers did not run go back to where they were."""
        bset = set(tx.before)
        drop = {s for s in enters if s not in bset}
        active = [s for s in self._active if s not in drop] + [s for s in exits]
        clock = self._clock
        for s in drop:
            clock[s] += 1
        for s in exits:
            clock[s] += 1
        self._active = active
        if self._bound_tasks:
            self._cancel_bound([*drop, *exits])
        if self.log_level >= LogLevel.OPS:
            self._log(LogLevel.OPS, f"[recover] partial final states as ({self._n(active)})")

    async def _run_handlers(self, tx: Transition, group: tuple[Bound, ...],
                            final: bool) -> bool | None:
        """Run the callables bound to one handler name.

        Returns True to go on, False when a negotiation handler refused, None
        when a handler raised or timed out (the error is already delivered).
        """
        hooks = self._hooks
        for bound in group:
            if self.log_level >= LogLevel.OPS:
                self._log(LogLevel.OPS, f"[handler] {bound.name}")
            if hooks["handler_start"]:
                self._trace("handler_start", tx, bound.name)
            error: BaseException | None = None
            out: Any = None
            try:
                out = bound.fn(Event(bound.name, cast("Machine", self), tx))
                if bound.is_async or inspect.isawaitable(out):
                    timeout = asyncio.timeout(self.handler_timeout)
                    try:
                        async with timeout:
                            out = await out
                    except TimeoutError:
                        if not timeout.expired():
                            raise
                        error = HandlerTimeoutError(bound.name, self.handler_timeout)
            except asyncio.CancelledError:
                if hooks["handler_end"]:
                    self._trace("handler_end", tx, bound.name)
                raise
            except Exception as exc:
                error = exc
            if hooks["handler_end"]:
                self._trace("handler_end", tx, bound.name)
            if error is not None:
                self._handler_failed(tx, bound.name, error)
                return None
            if out is False and not final:
                if self.log_level >= LogLevel.OPS:
                    self._log(LogLevel.OPS, f"[cancel] ({self._n(tx.targets)}) by {bound.name}")
                return False
        return True

    def _handler_failed(self, tx: Transition, name: str, error: BaseException) -> None:
        self._err = error
        mut = tx.mutation
        _logger.warning("machine %s: handler %s failed on %s: %r", self.id, name,
                        mut.describe(self._names), error, exc_info=error)
        if self.log_level >= LogLevel.OPS:
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
        self._prepend(Mutation(ADD, [self._exception], args))
