"""Durable entity workflows on convergent's core: statecharts whose finite
part the engine verifies, event-sourced entities in SQLite or PostgreSQL,
a transactional outbox, durable timers, authorization of events, a
hash-chained audit log, and metrics/traces/logs.

>>> from convergent.durable import Statechart
>>> c = Statechart("door")
>>> _ = c.state("closed"); _ = c.state("open")
>>> _ = c.on("closed", "open", "open"); _ = c.on("open", "close", "closed")
>>> sorted(c.build().events)
['close', 'open']
"""

from __future__ import annotations

from ._semantics import Config, Step
from .aio import AsyncEntityService
from .audit import AuditRecord, verify_audit
from .chart import (
    ActionContext,
    Actor,
    Chart,
    GuardContext,
    Statechart,
    Transition,
    assign,
    call,
    emit,
)
from .evolve import Divergence, Shadow, check_upgrade
from .errors import (
    AuditError,
    ChartError,
    ConcurrencyError,
    DurableError,
    DurableStoreError,
    EffectError,
    EnvelopeRejected,
    NotAuthorized,
    ReplayError,
    UnknownEventError,
)
from .loader import load_chart, loads_chart
from .observe import JsonLog, Observer, OtelTracing, PrometheusMetrics, TransitionRecord
from .outbox import Dispatcher, OutboxMessage, nats_publisher
from .render import to_dot, to_mermaid
from .security import NEUTRAL, Envelope, EnvelopePolicy
from .service import SYSTEM, Entity, EntityService, Result
from .store import EntityStore, open_store
from .verify import to_registry, verify

__all__ = [
    "NEUTRAL",
    "SYSTEM",
    "ActionContext",
    "Actor",
    "AsyncEntityService",
    "AuditError",
    "AuditRecord",
    "Chart",
    "ChartError",
    "ConcurrencyError",
    "Config",
    "Dispatcher",
    "Divergence",
    "DurableError",
    "DurableStoreError",
    "EffectError",
    "Entity",
    "EntityService",
    "EntityStore",
    "Envelope",
    "EnvelopePolicy",
    "EnvelopeRejected",
    "GuardContext",
    "JsonLog",
    "NotAuthorized",
    "Observer",
    "OtelTracing",
    "OutboxMessage",
    "PrometheusMetrics",
    "ReplayError",
    "Result",
    "Shadow",
    "Statechart",
    "Step",
    "Transition",
    "TransitionRecord",
    "UnknownEventError",
    "assign",
    "call",
    "check_upgrade",
    "emit",
    "load_chart",
    "loads_chart",
    "nats_publisher",
    "open_store",
    "to_dot",
    "to_mermaid",
    "to_registry",
    "verify",
    "verify_audit",
]
