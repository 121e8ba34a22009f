"""The public surface of convergent.durable is pinned."""

from __future__ import annotations

import re

import convergent.durable as durable
from convergent.durable.cli import main as cli_main

EXPECTED = [
    "NEUTRAL", "SYSTEM", "ActionContext", "Actor", "AsyncEntityService", "AuditError",
    "AuditRecord", "Chart", "ChartError", "ConcurrencyError", "Config", "Dispatcher",
    "Divergence", "DurableError", "DurableStoreError", "EffectError", "Entity",
    "EntityService", "EntityStore", "Envelope", "EnvelopePolicy", "EnvelopeRejected",
    "GuardContext", "JsonLog", "NotAuthorized", "Observer", "OtelTracing", "OutboxMessage",
    "PrometheusMetrics", "ReplayError", "Result", "Shadow", "Statechart", "Step", "Transition",
    "TransitionRecord", "UnknownEventError", "assign", "call", "check_upgrade", "emit",
    "load_chart", "loads_chart", "nats_publisher", "open_store", "to_dot", "to_mermaid", "to_registry",
    "verify", "verify_audit",
]


def test_all_is_pinned_and_sorted() -> None:
    assert durable.__all__ == EXPECTED
    assert durable.__all__ == sorted(durable.__all__, key=lambda n: (not n.isupper(),
                                                                     n[0].islower(), n))
    for name in durable.__all__:
        assert getattr(durable, name) is not None


def test_errors_descend_from_the_project_root() -> None:
    from convergent.errors import ConvergentError, SpecError
    assert issubclass(durable.ChartError, SpecError)
    for e in (durable.ConcurrencyError, durable.NotAuthorized, durable.EnvelopeRejected,
              durable.EffectError, durable.DurableStoreError, durable.AuditError,
              durable.UnknownEventError):
        assert issubclass(e, durable.DurableError) and issubclass(e, ConvergentError)


def test_entity_cli_check_graph_history(tmp_path, capsys) -> None:
    from pathlib import Path
    good = tmp_path / "door.yaml"
    good.write_text("statechart: door\nstates:\n  shut: {on: {open: opened}}\n"
                    "  opened: {on: {close: shut}}\n")
    assert cli_main(["entity", "check", str(good)]) == 0
    assert "door: pass" in capsys.readouterr().out
    assert cli_main(["entity", "graph", str(good)]) == 0
    out = capsys.readouterr().out
    ids = dict(re.findall(r'state "([^"<]+)" as (\w+)', out))
    assert f"{ids['shut']} --> {ids['opened']} : open" in out
    # a chart naming Python functions is drawn without them
    saga = Path(__file__).resolve().parents[2] / "examples" / "order_saga" / "order.yaml"
    assert cli_main(["entity", "graph", str(saga)]) == 0
    assert "stateDiagram-v2" in capsys.readouterr().out
    assert cli_main(["entity", "graph", str(good), "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph ") and re.search(r'\[label="opened"', out)
    assert re.search(r"n\d+ -> n\d+ \[label=\"open\"", out)
    bad = tmp_path / "bad.yaml"
    bad.write_text("statechart: door\nstates:\n  shut: {on: {open: nowhere}}\n")
    assert cli_main(["entity", "check", str(bad)]) == 2
    assert f"{bad}:3" in capsys.readouterr().err
    db = tmp_path / "d.db"
    svc = durable.EntityService(durable.load_chart(good), durable.open_store(str(db)))
    svc.create("d1", actor=durable.Actor.of("a"))
    svc.send("d1", "open", actor=durable.Actor.of("a"))
    svc.store.close()
    assert cli_main(["entity", "history", str(db), "door", "d1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and '"to": ["opened"]' in lines[1]
    assert cli_main(["entity", "history", str(db), "Bad-Kind", "d1"]) == 2
    assert Path(db).exists()
