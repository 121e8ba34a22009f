"""Observers: what the service tells the outside after each commit.

* ``PrometheusMetrics`` (prometheus-client): transitions by outcome,
  time-in-state histograms, transition latency, a stuck-entities gauge;
  everything registered on the ``CollectorRegistry`` you pass (none global).
* ``OtelTracing`` (opentelemetry-api): a span per transition, child of the
  trace context found in the request's meta (``traceparent``), whose own
  context is stored in the event's meta and the outbox commands' meta, so a
  consumer continues the trace.
* ``JsonLog`` (structlog): one JSON line per transition or rejection, with
  the chart's sensitive fields and sensitive states redacted.

Each is optional: importing this module needs none of those packages; an
observer whose package is missing raises ImportError naming the pip line.
An observer that raises is logged by the service's caller, never hidden:
observers run after the commit, so their failure cannot undo a transition.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .chart import Chart
    from .service import EntityService

__all__ = ["JsonLog", "Observer", "OtelTracing", "PrometheusMetrics", "TransitionRecord"]


@dataclass(frozen=True)
class TransitionRecord:
    """One committed transition (or a rejected attempt). ``time_in`` maps
    each leaf state left to the seconds spent in it."""

    kind: str
    entity: str
    event: str
    version: int
    transition_id: str
    from_leaves: tuple[str, ...]
    to_leaves: tuple[str, ...]
    time_in: Mapping[str, float]
    outcome: str
    seconds: float
    actor: str
    trace_id: str
    reason: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)


class Observer:
    """Base observer: every hook does nothing. ``carry`` may add trace
    context to the meta stored with the event (called inside the write
    transaction, just before the rows are written)."""

    def carry(self, meta: dict[str, str]) -> dict[str, str]:
        return meta

    def transition(self, rec: TransitionRecord) -> None:
        """A transition committed."""

    def rejected(self, rec: TransitionRecord) -> None:
        """An attempt was refused (already recorded in the audit log)."""

    def ignored(self, kind: str, entity: str, event: str) -> None:
        """No transition was enabled; nothing was written."""


def _need(module: str, pip: str) -> Any:
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"{module} is needed: pip install {pip} (or 'convergent[durable]')",
                          name=exc.name) from exc


_BUCKETS = (0.1, 1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400, float("inf"))


class PrometheusMetrics(Observer):
    """prometheus-client metrics on ``registry`` (a ``CollectorRegistry``)."""

    def __init__(self, registry: Any, *, namespace: str = "convergent") -> None:
        prom = _need("prometheus_client", "prometheus-client")
        self.registry = registry
        self.transitions = prom.Counter(
            "durable_transitions", "Transitions by entity kind, event and outcome",
            ["kind", "event", "outcome"], namespace=namespace, registry=registry)
        self.time_in_state = prom.Histogram(
            "durable_time_in_state_seconds", "Seconds an entity spent in a state before "
            "leaving it", ["kind", "state"], namespace=namespace, registry=registry,
            buckets=_BUCKETS)
        self.latency = prom.Histogram(
            "durable_transition_seconds", "Wall time of a transition, commit included",
            ["kind"], namespace=namespace, registry=registry)
        self.stuck = prom.Gauge(
            "durable_stuck_entities", "Entities in a state longer than its stuck_after",
            ["kind", "state"], namespace=namespace, registry=registry)

    def transition(self, rec: TransitionRecord) -> None:
        self.transitions.labels(rec.kind, rec.event, rec.outcome).inc()
        self.latency.labels(rec.kind).observe(rec.seconds)
        for state, seconds in rec.time_in.items():
            self.time_in_state.labels(rec.kind, state).observe(max(0.0, seconds))

    def rejected(self, rec: TransitionRecord) -> None:
        self.transitions.labels(rec.kind, rec.event, "rejected").inc()

    def ignored(self, kind: str, entity: str, event: str) -> None:
        self.transitions.labels(kind, event, "ignored").inc()

    def refresh_stuck(self, service: EntityService, *, now: float | None = None) -> int:
        """Recount stuck entities of ``service``'s kind; returns the total.
        Call it periodically (the example service does it on each scrape)."""
        counts: dict[str, int] = {s.name: 0 for s in service.chart.states.values()
                                  if s.stuck_after is not None}
        for _, state, _ in service.stuck(now=now):
            counts[state] = counts.get(state, 0) + 1
        for state, n in counts.items():
            self.stuck.labels(service.kind, state).set(n)
        return sum(counts.values())


class OtelTracing(Observer):
    """A span per transition through ``tracer`` (an OpenTelemetry Tracer)."""

    def __init__(self, tracer: Any) -> None:
        self._otel_trace = _need("opentelemetry.trace", "opentelemetry-api")
        self._propagate = _need("opentelemetry.propagate", "opentelemetry-api")
        self.tracer = tracer
        self._local = threading.local()

    def carry(self, meta: dict[str, str]) -> dict[str, str]:
        self._end(error="abandoned")  # a span left open by a failed write
        parent = self._propagate.extract(dict(meta))
        span = self.tracer.start_span("durable.transition", context=parent)
        self._local.span = span
        out = dict(meta)
        ctx = self._otel_trace.set_span_in_context(span)
        self._propagate.inject(out, context=ctx)
        return out

    def _end(self, *, error: str | None = None,
             attrs: Mapping[str, Any] | None = None) -> None:
        span = getattr(self._local, "span", None)
        if span is None:
            return
        self._local.span = None
        for k, v in (attrs or {}).items():
            span.set_attribute(k, v)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    def transition(self, rec: TransitionRecord) -> None:
        self._end(attrs={"durable.kind": rec.kind, "durable.entity": rec.entity,
                         "durable.event": rec.event, "durable.version": rec.version,
                         "durable.transition_id": rec.transition_id,
                         "durable.from": ",".join(rec.from_leaves),
                         "durable.to": ",".join(rec.to_leaves),
                         "durable.outcome": rec.outcome})

    def rejected(self, rec: TransitionRecord) -> None:
        span = self.tracer.start_span("durable.rejected")
        span.set_attribute("durable.entity", rec.entity)
        span.set_attribute("durable.event", rec.event)
        span.set_attribute("durable.reason", rec.reason)
        span.end()


@dataclass
class JsonLog(Observer):
    """JSON lines through structlog to ``stream`` (default stderr). Keys in
    ``chart.sensitive_fields`` are redacted wherever they appear, and
    sensitive states show as the neutral value."""

    chart: Chart
    stream: IO[str] = field(default_factory=lambda: sys.stderr)

    def __post_init__(self) -> None:
        structlog = _need("structlog", "structlog")
        from .security import redact
        fields = self.chart.sensitive_fields

        def redactor(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = redact(event, fields)
            return out

        self.log = structlog.wrap_logger(
            structlog.PrintLogger(self.stream),
            processors=[structlog.processors.add_log_level,
                        structlog.processors.TimeStamper(fmt="iso", utc=True), redactor,
                        structlog.processors.JSONRenderer(sort_keys=True)])

    def _states(self, leaves: tuple[str, ...]) -> list[str]:
        from .security import masked_leaves
        return masked_leaves(self.chart, list(leaves), None)

    def transition(self, rec: TransitionRecord) -> None:
        self.log.info("transition", kind=rec.kind, entity=rec.entity, event_name=rec.event,
                      version=rec.version, transition_id=rec.transition_id,
                      from_state=self._states(rec.from_leaves),
                      to_state=self._states(rec.to_leaves), actor=rec.actor,
                      payload=dict(rec.payload),
                      trace=rec.trace_id, seconds=round(rec.seconds, 6))

    def rejected(self, rec: TransitionRecord) -> None:
        self.log.warning("rejected", kind=rec.kind, entity=rec.entity, event_name=rec.event,
                         actor=rec.actor, reason=rec.reason, trace=rec.trace_id)

    def note(self, message: str, **fields: Any) -> None:
        """Any other structured line, redacted the same way."""
        self.log.info(message, **fields)
