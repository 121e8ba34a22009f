"""Handler schedules: which handler names a transition reaches, in order.

A transition's handlers are a pure function of the mutation, the states active
before it and the resolved targets, so the machine builds the schedule once per
(mutation, active states) and keeps it with the resolution (``_transition``).
The order is asyncmachine-go's ``Transition.emitEvents``: exits, enters, self
(``emitSelfEvents``), state to state (``emitStateStateEvents``), ``any_enter``;
then ``emitFinalEvents`` (ends of the exits, states of the enters) and
``any_state``.

Without a ``handler_visit`` tracer a negotiation schedule lists only the names
with a bound handler; with one, every name (the tracer sees them all). A final
schedule always lists every exit and enter, because ``when_args`` waiters are
told about each entered state.
"""

from __future__ import annotations

from . import _resolver as R
from ._handlers import ANY_ENTER, Handlers, HandlerTable
from .model import CANCELED, EXECUTED, Result

__all__ = ["ANY", "ENTER", "EXIT", "PAIR", "SELF", "FinalStep", "NegotiationStep", "Plan",
           "exits_enters", "final_steps", "negotiation_steps", "plan_effects"]

EXIT, ENTER, SELF, PAIR, ANY = range(5)

NegotiationStep = tuple[int, int, int, str, Handlers]
"""(phase, state, other state or -1, handler name, bound handlers)"""
FinalStep = tuple[bool, int, int, str, Handlers]
"""(is an enter, position in exits or enters, state, handler name, bound handlers)"""


class Plan:
    """A resolved mutation at one set of active states: its targets, its handler
    schedules, and what applying it unchanged does (the clock moves, the auto
    candidates that follow, the caller's result), so a repeated mutation only
    looks the plan up."""

    __slots__ = ("auto", "changed", "deltas", "enters", "exits", "final_calls", "finals",
                 "negotiation", "ok", "plain", "result", "targets")

    def __init__(self, targets: list[int], ok: bool, exits: list[int], enters: list[int],
                 negotiation: tuple[NegotiationStep, ...],
                 finals: tuple[FinalStep, ...]) -> None:
        self.targets = targets
        self.ok = ok
        self.exits = exits
        self.enters = enters
        self.negotiation = negotiation
        self.finals = finals
        self.final_calls = tuple(step for step in finals if step[4])
        """The final steps with a bound handler (all steps matter only to
        ``handler_visit`` tracers and ``when_args`` waiters)."""
        self.deltas: tuple[tuple[int, int], ...] = ()
        """(state, tick increment) for every state whose clock moves."""
        self.changed: list[int] = []
        self.auto: list[int] = []
        """The auto mutation prepended after it (empty: none)."""
        self.result: Result = CANCELED
        self.plain = False
        """Not auto, and its only handlers are final ones (no ``any_state``):
        the queue may run it synchronously (``_plain_transition``)."""


def plan_effects(c: R.Compiled, plan: Plan, kind: int, called: list[int], before: list[int],
                 is_auto: bool) -> None:
    """Fill ``plan``'s clock moves, auto candidates and result (an accepted plan)."""
    targets = plan.targets
    bset = set(before)
    tset = set(targets)
    multi = c.multi
    deltas: list[tuple[int, int]] = []
    for s in targets:
        if s not in bset:
            deltas.append((s, 1))
        elif multi[s] and s in called:
            deltas.append((s, 2))
    deltas += [(s, 1) for s in before if s not in tset]
    plan.deltas = tuple(deltas)
    plan.changed = [s for s, _d in deltas]
    if plan.changed and not is_auto and c.auto_states:
        plan.auto = R.auto_candidates(c, targets)
    if kind == R.REMOVE:
        plan.result = CANCELED if any(s in tset for s in called) else EXECUTED
    elif is_auto:
        plan.result = EXECUTED if len(targets) > len(before) else CANCELED
    else:
        plan.result = EXECUTED


def exits_enters(c: R.Compiled, before: list[int], targets: list[int],
                 called: list[int]) -> tuple[list[int], list[int]]:
    """The states whose handlers run (transition.go ``setupExitEnter``): exits
    sorted for handlers, enters in target order, a ``multi`` state called
    again while active entering again."""
    if not before:
        return [], targets
    tset = set(targets)
    exits = [s for s in before if s not in tset]
    if len(exits) > 1:
        exits = R.sort_states(c, exits)
    bset = set(before)
    multi = c.multi
    enters = [s for s in targets if s not in bset or (multi[s] and s in called)]
    return exits, enters


def negotiation_steps(h: HandlerTable, names: tuple[str, ...], kind: int, before: list[int],
                      targets: list[int], exits: list[int], enters: list[int],
                      visit: bool) -> tuple[NegotiationStep, ...]:
    """The negotiation handlers in call order (all names when ``visit``)."""
    steps: list[NegotiationStep] = []
    for s in exits:
        if visit or h.exit[s]:
            steps.append((EXIT, s, -1, f"{names[s]}_exit", h.exit[s]))
    for s in enters:
        if visit or h.enter[s]:
            steps.append((ENTER, s, -1, f"{names[s]}_enter", h.enter[s]))
    if kind != R.REMOVE:
        bset = set(before)
        for s in targets:
            if s in bset and (visit or h.self_[s]):
                steps.append((SELF, s, -1, f"{names[s]}_{names[s]}", h.self_[s]))
    if h.pairs or visit:
        for b in before:
            for a in targets:
                if a == b:
                    continue
                group = h.pairs.get((b, a), ())
                if visit or group:
                    steps.append((PAIR, b, a, f"{names[b]}_{names[a]}", group))
    if visit or h.any_enter:
        steps.append((ANY, -1, -1, ANY_ENTER, h.any_enter))
    return tuple(steps)


def final_steps(h: HandlerTable, names: tuple[str, ...], exits: list[int],
                enters: list[int]) -> tuple[FinalStep, ...]:
    """``Foo_end`` of every exit, then ``Foo_state`` of every enter."""
    steps: list[FinalStep] = [(False, i, s, f"{names[s]}_end", h.end[s])
                              for i, s in enumerate(exits)]
    steps += [(True, i, s, f"{names[s]}_state", h.state[s]) for i, s in enumerate(enters)]
    return tuple(steps)
