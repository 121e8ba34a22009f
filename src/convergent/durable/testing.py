"""Testing helpers: drive an entity with random events (hypothesis
stateful testing) and find entities stuck past a horizon.

``entity_machine(make_service, chart)`` returns a
``RuleBasedStateMachine`` class; run it with ``run_state_machine_as_test``
or assign ``TestX = entity_machine(...).TestCase``. Its invariants:

* every active leaf is a declared state of the chart;
* a top-level final state is absorbing (no event changes anything after);
* a request repeated with the same key returns the first result and
  changes nothing;
* the entity rebuilt from its events equals the one the service holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .chart import Actor, Chart
from .errors import NotAuthorized
from .service import EntityService

__all__ = ["entity_machine", "reconcile"]


def entity_machine(make_service: Callable[[], EntityService], chart: Chart, *,
                   actor: Actor | None = None, entity: str = "e") -> type:
    """A hypothesis state machine that sends random events of ``chart``."""
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

    events = sorted(e for e in chart.events if not e.startswith(("after:", "done.")))
    who = actor or Actor("tester", frozenset(
        r for t in chart.transitions for r in t.roles) | frozenset(
        r for s in chart.states.values() for r in s.entry_roles))

    class EntityMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.svc = make_service()
            self.svc.create(entity, actor=who)
            self.finished = False
            self.n = 0

        @rule(event=st.sampled_from(events), repeat=st.booleans())
        def send(self, event: str, repeat: bool) -> None:
            self.n += 1
            key = f"req-{self.n}"
            before = self.svc.load(entity)
            try:
                first = self.svc.send(entity, event, actor=who, request_key=key)
            except NotAuthorized:
                assert self.svc.load(entity).version == before.version
                return
            if self.finished:
                assert first.outcome == "ignored", f"{event} moved a finished entity"
            if repeat:
                again = self.svc.send(entity, event, actor=who, request_key=key)
                assert again.replayed and again.version == first.version
                assert self.svc.load(entity).version == first.version
            after = self.svc.load(entity)
            if first.outcome == "ignored":
                assert after.config == before.config and after.version == before.version
            self.finished = after.done

        @rule(ahead=st.floats(0, 7 * 86400))
        def time_passes(self, ahead: float) -> None:
            self.svc.fire_due_timers(now=time.time() + ahead)
            self.finished = self.svc.load(entity).done

        @invariant()
        def leaves_are_declared(self) -> None:
            e = self.svc.load(entity)
            for leaf in e.leaves:
                assert leaf in chart.states and chart.states[leaf].kind in ("atomic", "final")

        @invariant()
        def rebuild_equals_live(self) -> None:
            e = self.svc.load(entity)
            assert self.svc.load_at(entity, e.version).config == e.config

        def teardown(self) -> None:
            self.svc.store.close()

    EntityMachine.__name__ = f"{chart.name.title()}Machine"
    return EntityMachine


def reconcile(service: EntityService, handle: Callable[[str, str, float], Any], *,
              now: float | None = None) -> list[tuple[str, str, float]]:
    """Call ``handle(entity, state, seconds)`` for every entity stuck past its
    state's ``stuck_after`` horizon (e.g. send a nudge, open a ticket); the
    list of what was found. A handler that raises stops the sweep (fix and
    rerun: handlers should be idempotent)."""
    found = service.stuck(now=now)
    for entity, state, seconds in found:
        handle(entity, state, seconds)
    return found
