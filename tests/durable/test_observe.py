"""Metrics, traces and logs of transitions."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest

from convergent.durable import (
    Actor,
    EntityService,
    EntityStore,
    JsonLog,
    NotAuthorized,
    OtelTracing,
    PrometheusMetrics,
)

from .charts import order_chart

ALICE = Actor.of("alice", "customer")


class Clock:
    def __init__(self) -> None:
        self.t = 5_000_000.0

    def __call__(self) -> float:
        return self.t


def test_prometheus_counts_outcomes_times_states_and_finds_stuck_entities(
        make_store: Callable[[], EntityStore]) -> None:
    prom = pytest.importorskip("prometheus_client")
    reg = prom.CollectorRegistry()
    metrics = PrometheusMetrics(reg)
    clock = Clock()
    svc = EntityService(order_chart(), make_store(), clock=clock, observers=(metrics,))
    for e in ("o1", "o2", "o3"):
        svc.create(e, actor=ALICE)
    clock.t += 42
    svc.send("o1", "submit", actor=ALICE)
    svc.send("o2", "submit", actor=ALICE)
    svc.send("o1", "ship", actor=ALICE)          # ignored: not in captured
    with pytest.raises(NotAuthorized):
        svc.send("o3", "submit", actor=Actor.of("eve"))

    def value(name: str, **labels: str) -> float:
        v = reg.get_sample_value(name, labels)
        return 0.0 if v is None else v

    assert value("convergent_durable_transitions_total", kind="order", event="submit",
                 outcome="applied") == 2
    assert value("convergent_durable_transitions_total", kind="order", event="ship",
                 outcome="ignored") == 1
    assert value("convergent_durable_transitions_total", kind="order", event="submit",
                 outcome="rejected") == 1
    assert value("convergent_durable_time_in_state_seconds_count", kind="order",
                 state="cart") == 2
    assert value("convergent_durable_time_in_state_seconds_sum", kind="order",
                 state="cart") == pytest.approx(84)
    assert metrics.refresh_stuck(svc) == 0
    clock.t += 601                                # paying: stuck_after 10 min
    assert metrics.refresh_stuck(svc) == 2
    assert value("convergent_durable_stuck_entities", kind="order", state="paying") == 2
    assert sorted(e for e, _, _ in svc.stuck()) == ["o1", "o2"]
    text = prom.generate_latest(reg).decode()
    assert "convergent_durable_transition_seconds_bucket" in text


def test_otel_span_per_transition_continues_the_callers_trace(
        make_store: Callable[[], EntityStore]) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.propagate import inject
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import set_span_in_context

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    store = make_store()
    svc = EntityService(order_chart(), store, observers=(OtelTracing(tracer),))
    parent = tracer.start_span("http request")
    carrier: dict[str, str] = {}
    inject(carrier, context=set_span_in_context(parent))
    svc.create("o", actor=ALICE, meta=carrier)
    svc.send("o", "submit", actor=ALICE, meta=carrier)
    parent.end()
    spans = [s for s in exporter.get_finished_spans() if s.name == "durable.transition"]
    assert len(spans) == 2
    for s in spans:
        assert s.parent is not None and s.parent.span_id == parent.context.span_id
        assert s.context.trace_id == parent.context.trace_id
    submit = spans[1]
    assert submit.attributes["durable.event"] == "submit"
    assert submit.attributes["durable.to"] == "authorizing"
    stored = svc.history("o")[1]["meta"]["traceparent"]
    assert f"{submit.context.span_id:016x}" in stored  # the event carries its span
    with store.tx() as tx:
        meta = json.loads(tx.one("SELECT meta FROM dz_outbox")[0])
    assert meta["traceparent"] == stored


def test_json_logs_redact_sensitive_fields_and_states(
        make_store: Callable[[], EntityStore]) -> None:
    pytest.importorskip("structlog")
    out = io.StringIO()
    chart = order_chart()
    svc = EntityService(chart, make_store(), observers=(JsonLog(chart, out),))
    svc.create("o", actor=ALICE, extra={"card": "4111"})
    svc.send("o", "submit", {"card": "4242-4242", "qty": 2}, actor=ALICE)
    svc.send("o", "flag", actor=Actor.of("f", "fraud"))
    with pytest.raises(NotAuthorized):
        svc.send("o", "clear", {"card": "1"}, actor=ALICE)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["transition", "transition", "transition",
                                           "rejected"]
    assert lines[1]["payload"] == {"card": "***", "qty": 2}
    assert lines[2]["to_state"] == ["restricted"] and lines[2]["level"] == "info"
    assert lines[3]["level"] == "warning" and "fraud" in lines[3]["reason"]
    assert "4242" not in out.getvalue() and "4111" not in out.getvalue()


def test_a_failing_observer_is_logged_and_the_result_still_returned(
        make_store: Callable[[], EntityStore], caplog: pytest.LogCaptureFixture) -> None:
    from convergent.durable import Observer

    class Broken(Observer):
        def transition(self, rec):  # type: ignore[no-untyped-def]
            raise RuntimeError("exporter down")

    svc = EntityService(order_chart(), make_store(), observers=(Broken(),))
    assert svc.create("o", actor=ALICE).outcome == "created"
    assert svc.send("o", "submit", actor=ALICE).version == 2
    assert "observer" in caplog.text and "exporter down" in caplog.text
