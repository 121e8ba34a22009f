"""Transitions: one set of rules, run by two paths.

The rules (which states a mutation activates and deactivates, whether it is
accepted, how a partly refused auto mutation is resolved again, how the clocks
move, which auto states follow, what the caller gets back) are the methods
``_plan``, ``_settle_auto``, ``_apply``, ``_conclude`` and ``_outcome``. Both
paths call them, in the same order:

* ``_fast_transition`` runs them back to back; the queue uses it when nothing
  can observe a transition from the inside (no handler, tracer, log level or
  ``when_args`` waiter);
* ``_transition`` runs them with the observable steps around them: the
  ``Transition`` object, logs, tracer hooks, negotiation and final handlers
  (``_phases``), which may cancel or revert.

A property test runs random schemas through both paths and holds them equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from . import _resolver as R
from ._base import MachineBase
from .model import (
    CANCELED,
    EMPTY_ARGS,
    EXECUTED,
    LogLevel,
    MachineState,
    Mutation,
    MutationType,
    Result,
    Transition,
)

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

ADD, REMOVE = R.ADD, R.REMOVE
CACHE_LIMIT = 4096


def accepts(kind: int, called: list[int], targets: list[int], is_auto: bool) -> bool:
    """Relations accept a mutation when its called states are targets (any one
    for auto mutations); removals are always accepted."""
    if kind == REMOVE:
        return True
    if len(called) == 1 and not is_auto:
        return called[0] in targets
    return R.accepted(kind, called, targets, is_auto)


class TransitionMixin(MachineBase):
    """The transition rules and the two paths running them (part of ``Machine``)."""

    # ------------------------------------------------------------------ the rules

    def _resolve(self, kind: int, called: list[int], before: list[int],
                 is_auto: bool = False) -> list[int]:
        """The target states, memoized per (kind, called, before) unless logging."""
        if self.log_level >= LogLevel.OPS:
            trace: list[str] = []
            targets = R.resolve(self._c, kind, called, before, trace)
            for line in trace:
                self._log(LogLevel.DECISIONS if is_auto else LogLevel.OPS, line)
            return targets
        key = (kind, tuple(called), tuple(before))
        cache = self._cache
        hit = cache.get(key)
        if hit is None:
            if len(cache) >= CACHE_LIMIT:
                cache.clear()
            hit = cache[key] = R.resolve(self._c, kind, called, before)
        return hit

    def _plan(self, mut: Mutation, before: list[int]) -> tuple[list[int], bool]:
        """Resolve ``mut`` from ``before``: the targets, and whether relations accept it."""
        targets = self._resolve(mut.kind, mut.called, before, mut.is_auto)
        return targets, accepts(mut.kind, mut.called, targets, mut.is_auto)

    def _settle_auto(self, called: list[int], targets: list[int],
                     before: list[int]) -> list[int]:
        """An auto mutation accepted in part is resolved again without its refused
        states; returns ``targets`` itself when nothing was refused."""
        tset = set(targets)
        if any(s not in tset for s in called):
            return self._resolve(ADD, [s for s in called if s in tset], before, True)
        return targets

    def _apply(self, targets: list[int], before: list[int],
               called: list[int]) -> list[int]:
        """Move the clocks to ``targets`` (+1 per activation and deactivation, +2 for
        a ``multi`` state called again) and cancel tasks bound to the states that
        moved; returns those states."""
        clock = self._clock
        changed: list[int] = []
        if before:
            bset = set(before)
            multi = self._c.multi
            for s in targets:
                if s not in bset:
                    clock[s] += 1
                    changed.append(s)
                elif multi[s] and s in called:
                    clock[s] += 2
                    changed.append(s)
            if len(targets) - len(changed) != len(before):
                tset = set(targets)
                for s in before:
                    if s not in tset:
                        clock[s] += 1
                        changed.append(s)
        else:
            for s in targets:
                clock[s] += 1
            changed = list(targets)
        self._active = targets
        if changed and self._bound_tasks:
            # before final handlers, so tasks they fork for the new ticks live
            self._cancel_bound(changed)
        return changed

    def _conclude(self, mut: Mutation, ok: bool, changed: list[int]) -> None:
        """After the clocks moved: queue the auto states first (when an accepted,
        non-auto mutation moved a clock), then wake the waiters."""
        if not changed:
            return
        c = self._c
        if (ok and not mut.is_auto and c.auto_states
                and self._life is MachineState.RUNNING):
            candidates = R.auto_candidates(c, self._active)
            if candidates:
                if self.log_level >= LogLevel.OPS:
                    self._log(LogLevel.OPS, "[auto] " + self._n(candidates))
                self._prepend(Mutation(ADD, candidates, EMPTY_ARGS, is_auto=True))
        if self._waiters.count:
            self._waiters.on_ticks(changed)

    def _outcome(self, mut: Mutation, ok: bool, before: list[int]) -> Result:
        """What the caller gets: a removal is executed when its states are inactive,
        an auto mutation when it activated something."""
        if not ok:
            return CANCELED
        if mut.kind == REMOVE:
            clock = self._clock
            return CANCELED if any(clock[s] & 1 for s in mut.called) else EXECUTED
        if mut.is_auto:
            return EXECUTED if len(self._active) > len(before) else CANCELED
        return EXECUTED

    # ------------------------------------------------------------------ the paths

    def _fast_transition(self, mut: Mutation) -> Result:
        """The rules alone, for when nothing can observe the transition."""
        next(self._tx_ids)
        before = self._active
        targets, ok = self._plan(mut, before)
        if not ok:
            return CANCELED
        if mut.is_auto:
            targets = self._settle_auto(mut.called, targets, before)
        changed = self._apply(targets, before, mut.called)
        self._conclude(mut, True, changed)
        return self._outcome(mut, True, before)

    async def _transition(self, mut: Mutation) -> Result:
        """The rules with logs, tracer hooks and handlers around them."""
        kind = mut.kind
        called = mut.called
        is_auto = mut.is_auto
        before = self._active
        clock = self._clock
        log = self.log_level
        tx = Transition(next(self._tx_ids), cast("Machine", self), mut, before, tuple(clock),
                        self._names)
        self._tx = tx
        if log >= LogLevel.OPS:
            self._log(LogLevel.DECISIONS if is_auto else LogLevel.OPS,
                      f"[{MutationType(kind)}{':auto' if is_auto else ''}] "
                      + " ".join(self._names[s] for s in called))
        targets, ok = self._plan(mut, before)
        tx.targets = targets
        handlers = self._handlers
        # enters and exits drive handlers; without handlers or tracers no one reads them
        detailed = not handlers.empty or bool(self._tracers) or self._waiters.args_count > 0
        if ok:
            if detailed:
                self._setup_exit_enter(tx)
            if log >= LogLevel.OPS:
                implied = [s for s in targets if s not in called and s not in before]
                if implied:
                    self._log(LogLevel.OPS, "[implied] " + self._n(implied))
        elif log >= LogLevel.OPS:
            tset = set(targets)
            self._log(LogLevel.OPS, "[cancel:reject] "
                      + self._n([s for s in called if s not in tset]))
        hooks = self._hooks
        if hooks["transition_start"]:
            self._trace("transition_start", tx)

        if ok and not handlers.empty:
            ok = await self._negotiate(tx)
        if ok and is_auto:
            settled = self._settle_auto(called, tx.targets, before)
            if settled is not tx.targets:
                tx.targets = settled
                if detailed:
                    self._setup_exit_enter(tx)

        changed: list[int] = []
        if ok:
            changed = self._apply(tx.targets, before, called)
            tx.time_after = tuple(clock)
            if log >= LogLevel.CHANGES and changed:
                self._log_change(tx, changed)
            if detailed:
                finals_ok = await self._finals(tx)
                if not finals_ok:
                    ok = False
                    changed = [s for s in range(len(clock)) if clock[s] != tx.time_before[s]]
                    tx.time_after = tuple(clock)
                elif handlers.any_state:
                    ok = await self._run_handlers(tx, handlers.any_state, True) is True
        tx.accepted = ok
        tx.completed = True

        self._conclude(mut, ok, changed)
        if hooks["transition_end"]:
            self._trace("transition_end", tx)
        return self._outcome(mut, ok, before)

    def _setup_exit_enter(self, tx: Transition) -> None:
        """The states whose handlers run: exits sorted for handlers, enters in
        target order (a ``multi`` state called again enters again)."""
        targets = tx.targets
        before = tx.before
        tset = set(targets)
        exits = [s for s in before if s not in tset]
        tx.exits = R.sort_states(self._c, exits) if len(exits) > 1 else exits
        if before:
            bset = set(before)
            multi = self._c.multi
            called = tx.mutation.called
            tx.enters = [s for s in targets if s not in bset or (multi[s] and s in called)]
        else:
            tx.enters = targets
