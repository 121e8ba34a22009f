"""Transitions: one set of rules, run by two paths.

The rules (which states a mutation activates and deactivates, whether it is
accepted, how a partly refused auto mutation is resolved again, how the clocks
move, which auto states follow, what the caller gets back) are the methods
``_plan``, ``_settle_auto``, ``_apply``, ``_conclude`` and ``_outcome``.
``_plan_of`` memoizes their outcome for a mutation at a set of active states
as a ``_schedule.Plan`` (with the handler schedules), and ``_apply_plan``
replays it; ``_apply`` and ``_outcome`` run when handlers or a partly refused
auto mutation changed the targets. Every path calls them, in the same order:

* ``_fast_transition`` runs them back to back; the queue uses it when nothing
  can observe a transition from the inside (no handler, tracer, log level or
  ``when_args`` waiter);
* ``_transition`` runs them with the observable steps around them: the
  ``Transition`` object, logs, tracer hooks, negotiation and final handlers
  (``_phases``), which may cancel or revert;
* ``_plain_transition`` is ``_transition`` for the common case where handlers
  alone observe and a plan has only final handlers: the same steps without
  the coroutine, unless a handler returns something to await.

Property tests run random schemas through the paths and hold them equal.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from . import _resolver as R
from ._base import MachineBase
from ._handlers import ANY_STATE
from ._phases import Pending
from ._schedule import Plan, exits_enters, final_steps, negotiation_steps, plan_effects
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

# plain constants: an enum member lookup costs more than the test it feeds
_CHANGES = int(LogLevel.CHANGES)
_OPS = int(LogLevel.OPS)
_RUNNING = MachineState.RUNNING

ADD, REMOVE = R.ADD, R.REMOVE
CACHE_LIMIT = 4096


def _same_states(before: list[int], after: list[int]) -> bool:
    """Whether a transition left the set of active states as it was."""
    return len(before) == len(after) and set(before) == set(after)


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
        if self.log_level >= _OPS:
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

    def _settle_auto(self, called: list[int], targets: list[int], before: list[int],
                     negotiated: bool = False) -> list[int]:
        """An auto mutation is resolved again from its called states that are
        still targets (asyncmachine-go ``Transition.emitEvents``, "recheck auto
        txs"): refused called states are left out, and a state a handler refused
        but a surviving state implies comes back, so no survivor is left without
        a state it requires. ``negotiated``: handlers may have changed
        ``targets``. Returns ``targets`` itself when resolving again cannot
        change it (nothing refused, by relations or by handlers)."""
        tset = set(targets)
        clean = [s for s in called if s in tset]
        if negotiated or len(clean) != len(called):
            return self._resolve(ADD, clean, before, True)
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

    def _apply_plan(self, plan: Plan) -> list[int]:
        """``_apply`` of a plan's own targets, with the clock moves it holds."""
        clock = self._clock
        for s, d in plan.deltas:
            clock[s] += d
        self._active = plan.targets
        changed = plan.changed
        if changed and self._bound_tasks:
            self._cancel_bound(changed)
        return changed

    def _conclude(self, mut: Mutation, ok: bool, changed: list[int], before: list[int],
                  candidates: list[int] | None = None) -> None:
        """After the clocks moved: queue the auto states first (when an accepted,
        non-auto mutation moved a clock), then wake the waiters. ``candidates``:
        the auto states, when a plan already knows them.

        The ``Exception`` mutation of a failed handler queues no auto states when
        it activated and deactivated nothing (only the ``multi`` ``Exception``
        ticked again): the rule of asyncmachine-go's first transition code
        (``transition.go``, auto states follow ``HasStateChanged(StatesBefore)``),
        kept for errors only. Otherwise an auto state whose handler always raises
        is retried after each of its own errors, forever."""
        if not changed:
            return
        c = self._c
        if (ok and not mut.is_auto and c.auto_states
                and self._life is _RUNNING
                and not (mut.is_recovery and _same_states(before, self._active))):
            if candidates is None:
                candidates = R.auto_candidates(c, self._active)
            if candidates:
                if self.log_level >= _OPS:
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
        plan = self._plan_of(mut, before, False)
        if not plan.ok:
            return CANCELED
        if mut.is_auto:
            targets = self._settle_auto(mut.called, plan.targets, before)
            if targets is not plan.targets:
                changed = self._apply(targets, before, mut.called)
                self._conclude(mut, True, changed, before)
                return self._outcome(mut, True, before)
        self._conclude(mut, True, self._apply_plan(plan), before, plan.auto)
        return plan.result

    def _plan_of(self, mut: Mutation, before: list[int], visit: bool) -> Plan:
        """The resolution of ``mut`` at ``before`` with its handler schedules,
        memoized like ``_resolve`` (not while logging resolver decisions, and
        not for a ``handler_visit`` tracer, whose schedules list every name)."""
        memo = self.log_level < _OPS and not visit
        if memo:
            key = (mut.kind, tuple(mut.called), tuple(before), mut.is_auto)
            hit = self._plans.get(key)
            if hit is not None:
                return hit
        targets, ok = self._plan(mut, before)
        if ok:
            plan = self._schedule_plan(mut, before, targets, True, visit)
            plan_effects(self._c, plan, mut.kind, mut.called, before, mut.is_auto)
        else:
            plan = Plan(targets, False, [], [], (), ())
        if memo:
            if len(self._plans) >= CACHE_LIMIT:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _schedule_plan(self, mut: Mutation, before: list[int], targets: list[int], ok: bool,
                       visit: bool) -> Plan:
        c = self._c
        exits, enters = exits_enters(c, before, targets, mut.called)
        h = self._handlers
        names = self._names
        plan = Plan(targets, ok, exits, enters,
                    negotiation_steps(h, names, mut.kind, before, targets, exits, enters, visit),
                    final_steps(h, names, exits, enters))
        plan.plain = not mut.is_auto and not plan.negotiation and not h.any_state
        return plan

    def _plain_transition(self, mut: Mutation, plan: Plan
                          ) -> Result | Coroutine[Any, Any, Result]:
        """``_transition`` for a plan with final handlers only (``Plan.plain``),
        while no tracer, log level or ``when_args`` waiter observes: the same
        steps, synchronously. Returns the result, or when a handler returned an
        awaitable, a coroutine that awaits it and finishes the transition."""
        before = self._active
        tx = Transition(next(self._tx_ids), self, mut, before,  # type: ignore[arg-type]
                        tuple(self._clock), self._names, plan.targets, plan.exits,
                        plan.enters)
        self._tx = tx
        changed = self._apply_plan(plan)
        tx.time_after = tuple(self._clock)
        if plan.final_calls:
            done = self._finals_now(tx, plan.final_calls)
            if done is not True and done is not False:
                return self._plain_rest(mut, plan, tx, done)
            return self._plain_end(mut, plan, tx, done)
        return self._plain_end(mut, plan, tx, True)

    async def _plain_rest(self, mut: Mutation, plan: Plan, tx: Transition,
                          resume: Pending) -> Result:
        ok = await self._finals(tx, plan.final_calls, False, False, resume)
        return self._plain_end(mut, plan, tx, ok)

    def _plain_end(self, mut: Mutation, plan: Plan, tx: Transition, ok: bool) -> Result:
        """The end of ``_transition`` for a plain plan."""
        if ok:
            changed = plan.changed
        else:
            clock = self._clock
            changed = [s for s in range(len(clock)) if clock[s] != tx.time_before[s]]
            tx.time_after = tuple(clock)
        tx.accepted = ok
        tx.completed = True
        self._conclude(mut, ok, changed, tx.before, plan.auto if ok else None)
        return plan.result if ok else CANCELED

    async def _transition(self, mut: Mutation) -> Result:
        """The rules with logs, tracer hooks and handlers around them."""
        called = mut.called
        is_auto = mut.is_auto
        before = self._active
        clock = self._clock
        log = self.log_level
        hooks = self._hooks
        traced = bool(self._tracers)
        visit = traced and bool(hooks["handler_visit"])
        if log >= _OPS:
            self._log(LogLevel.DECISIONS if is_auto else LogLevel.OPS,
                      f"[{MutationType(mut.kind)}{':auto' if is_auto else ''}] "
                      + " ".join(self._names[s] for s in called))
        plan = self._plan_of(mut, before, visit)
        targets = plan.targets
        ok = plan.ok
        tx = Transition(next(self._tx_ids), self, mut, before,  # type: ignore[arg-type]
                        tuple(clock), self._names, targets, plan.exits, plan.enters)
        self._tx = tx
        if log >= _OPS:
            if ok:
                implied = [s for s in targets if s not in called and s not in before]
                if implied:
                    self._log(LogLevel.OPS, "[implied] " + self._n(implied))
            else:
                tset = set(targets)
                self._log(LogLevel.OPS, "[cancel:reject] "
                          + self._n([s for s in called if s not in tset]))
        if traced and hooks["transition_start"]:
            self._trace("transition_start", tx)

        negotiated = ok and bool(plan.negotiation)
        if negotiated:
            ok = await self._negotiate(tx, plan.negotiation)
        schedule = plan
        if ok and is_auto:
            settled = self._settle_auto(called, tx.targets, before, negotiated)
            tx.targets = settled
            if settled != targets:
                # exits, enters and final handlers follow the settled targets
                schedule = self._schedule_plan(mut, before, settled, True, visit)
                tx.exits, tx.enters = schedule.exits, schedule.enters
        finals = (schedule.finals if visit or self._waiters.args_count
                  else schedule.final_calls)

        changed: list[int] = []
        as_planned = tx.targets is targets
        if ok:
            if as_planned:
                changed = self._apply_plan(plan)
            else:
                changed = self._apply(tx.targets, before, called)
            tx.time_after = tuple(clock)
            if log >= _CHANGES and changed:
                self._log_change(tx, changed)
            if finals and not await self._finals(
                    tx, finals, visit, log >= _OPS or (traced and bool(
                        hooks["handler_start"] or hooks["handler_end"]))):
                ok = False
                changed = [s for s in range(len(clock)) if clock[s] != tx.time_before[s]]
                tx.time_after = tuple(clock)
            else:
                if visit:
                    self._trace("handler_visit", tx, ANY_STATE)
                any_state = self._handlers.any_state
                if any_state:
                    ok = await self._run_handlers(tx, any_state, True) is True
        tx.accepted = ok
        tx.completed = True

        as_planned = as_planned and ok
        self._conclude(mut, ok, changed, before, plan.auto if as_planned else None)
        if traced and hooks["transition_end"]:
            self._trace("transition_end", tx)
        return plan.result if as_planned else self._outcome(mut, ok, before)
