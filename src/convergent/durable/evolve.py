"""Schema evolution: run a candidate chart beside the live one.

``Shadow`` is an observer: after each committed transition of the live
service it applies the same event (payload and actor id) to the candidate
chart, on a shadow config it keeps in memory, and records every divergence
— the candidate ends in other leaves, or other values of the vars both
declare, or refuses or fails where the live chart did not. It writes
nothing: shadow results never reach the store, the outbox or the audit log.
A shadow config starts, the first time an entity is seen, from the live
config just before the event, passed through ``migration`` (or taken as is
when the candidate accepts it).

``check_upgrade`` is the gate before a new version may go live: it must
verify, and every state the old version can be in must either exist in the
new one or be handled by the migration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.report import Report
from ._semantics import Config, initial_step, step
from .chart import Actor, Chart
from .errors import DurableError
from .observe import Observer, TransitionRecord
from .service import EntityService

__all__ = ["Divergence", "Shadow", "check_upgrade"]

Migration = Callable[[Config], Mapping[str, Any]]


@dataclass(frozen=True)
class Divergence:
    """One event on which the candidate disagreed with the live chart."""

    entity: str
    version: int
    event: str
    live: tuple[str, ...]
    candidate: tuple[str, ...]
    detail: str


@dataclass
class Shadow(Observer):
    """Shadow-execute ``candidate`` beside ``service`` (add it to the
    service's observers). ``divergences`` lists what differed; ``compared``
    counts the events looked at."""

    service: EntityService
    candidate: Chart
    migration: Migration | None = None
    divergences: list[Divergence] = field(default_factory=list)
    compared: int = 0
    _configs: dict[str, Config] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _start(self, rec: TransitionRecord) -> Config | None:
        if rec.event == "$create":
            return None
        live = self.service.load_at(rec.entity, rec.version - 1).config
        raw = dict(self.migration(live)) if self.migration else live.to_dict()
        return Config.from_dict(self.candidate, raw)

    def transition(self, rec: TransitionRecord) -> None:
        if rec.kind != self.service.kind or rec.event == "$migrate":
            return
        with self._lock:
            self.compared += 1
            try:
                cfg = self._configs.get(rec.entity)
                if cfg is None and rec.event != "$create":
                    cfg = self._start(rec)
                actor = Actor(rec.actor)
                if rec.event == "$create":
                    st = initial_step(self.candidate, entity=rec.entity, actor=actor,
                                      extra=rec.payload)
                elif rec.event not in self.candidate.events:
                    self._diverge(rec, (), "the candidate does not declare this event")
                    return
                else:
                    assert cfg is not None
                    st = step(self.candidate, cfg, rec.event, payload=rec.payload,
                              actor=actor, entity=rec.entity)
                    if not st.changed:
                        self._diverge(rec, tuple(cfg.leaves(self.candidate)),
                                      "no transition of the candidate is enabled")
                        self._configs[rec.entity] = cfg
                        return
                self._configs[rec.entity] = st.config
                got = tuple(st.config.leaves(self.candidate))
                if got != rec.to_leaves:
                    self._diverge(rec, got, "the candidate ends in other states")
                    return
                live = self.service.load_at(rec.entity, rec.version).config
                shared = set(live.vars) & set(st.config.vars)
                diff = {k for k in shared if live.vars[k] != st.config.vars[k]}
                if diff:
                    self._diverge(rec, got, "vars differ: " + ", ".join(
                        f"{k}={live.vars[k]!r} vs {st.config.vars[k]!r}" for k in sorted(diff)))
            except Exception as exc:  # a failing candidate is a finding, never a live failure
                self._configs.pop(rec.entity, None)
                self._diverge(rec, (), f"the candidate raised {type(exc).__name__}: {exc}")

    def _diverge(self, rec: TransitionRecord, got: tuple[str, ...], detail: str) -> None:
        self.divergences.append(Divergence(rec.entity, rec.version, rec.event,
                                           rec.to_leaves, got, detail))


def check_upgrade(old: Chart, new: Chart, *, migration: Migration | None = None) -> Report:
    """The gate before ``new`` may go live: ``verify(new)`` must pass (the
    report is returned), ``new.version`` must be greater, and without a
    migration every leaf state of ``old`` must exist in ``new`` (an entity
    resting there must land somewhere). Raises ``DurableError`` otherwise."""
    from .verify import verify
    if new.name != old.name or new.version <= old.version:
        raise DurableError(f"{new.name} v{new.version} does not succeed {old.name} "
                           f"v{old.version}")
    report = verify(new)
    if not report.ok:
        raise DurableError(f"{new.name} v{new.version} does not verify: {report.summary()}")
    if migration is None:
        lost = [s for s in old.leaves() if s not in new.states]
        if lost:
            raise DurableError(f"{new.name} v{new.version} drops states {lost} and no "
                               "migration says where their entities go")
    return report
