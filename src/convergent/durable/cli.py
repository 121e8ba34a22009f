"""``convergent audit ...`` and ``convergent entity ...``.

Exit codes, as for the rest of the CLI: 0 pass, 1 a check failed (the audit
chain is broken, the chart does not verify), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import ConvergentError, SpecError

__all__ = ["main", "register"]


def _key(args: argparse.Namespace) -> bytes | None:
    if not args.key_env:
        return None
    value = os.environ.get(args.key_env)
    if not value:
        raise ConvergentError(f"--key-env {args.key_env}: the variable is not set")
    return value.encode()


def _store(db: str) -> Any:
    from .store import open_store
    if not db.startswith(("postgresql://", "postgres://")) and not os.path.exists(db):
        raise ConvergentError(f"{db}: no such database")
    return open_store(db)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from .audit import audit_report
    store = _store(args.db)
    try:
        report = audit_report(store, key=_key(args))
    finally:
        store.close()
    problems, rows = report.problems, report.rows
    if args.json:
        print(json.dumps({"ok": not problems, "rows": rows, "problems": problems,
                          "heads": {c: {"seq": n, "hash": h}
                                    for c, (n, h) in sorted(report.heads.items())}}))
    elif problems:
        for p in problems:
            print(f"audit: {p}", file=sys.stderr)
        print(f"audit log BROKEN: {len(problems)} problem(s) in {rows} rows")
    else:
        print(f"audit log intact: {rows} rows")
    return 1 if problems else 0


def cmd_entity_check(args: argparse.Namespace) -> int:
    from .loader import load_chart
    from .verify import verify
    chart = load_chart(args.chart)
    report = verify(chart)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_entity_graph(args: argparse.Namespace) -> int:
    # drawn without the chart's Python functions (call: actions, guards):
    # a picture needs their names only
    from ..viz.chartfile import load_chart_file
    from .render import to_dot, to_mermaid
    draw = to_dot if args.format == "dot" else to_mermaid
    print(draw(load_chart_file(args.chart)), end="")
    return 0


def cmd_entity_history(args: argparse.Namespace) -> int:
    from .store import check_kind
    store = _store(args.db)
    try:
        check_kind(args.kind)
        with store.tx() as tx:
            rows = tx.all(f"SELECT version, event, from_leaves, to_leaves, recorded_at FROM "
                          f"dz_ev_{args.kind} WHERE entity = ? ORDER BY version", (args.entity,))
    finally:
        store.close()
    if not rows:
        raise ConvergentError(f"{args.kind}/{args.entity}: no events")
    for v, event, a, b, at in rows:
        print(json.dumps({"version": int(v), "event": event, "from": json.loads(a),
                          "to": json.loads(b), "at": float(at)}))
    return 0


def register(subparsers: Any) -> None:
    a = subparsers.add_parser(
        "audit", help="verify the hash-chained audit log of durable entities",
        description="Audit log commands. Example: convergent audit verify orders.db")
    asub = a.add_subparsers(dest="audit_command")
    v = asub.add_parser("verify", help="recompute the chain; exit 1 if any row was edited, "
                        "inserted or deleted",
                        description="Recompute the audit chain. Exit 0 intact, 1 broken, 2 bad "
                                    "input. Example: convergent audit verify orders.db")
    v.add_argument("db", help="a SQLite file or a postgresql:// URL")
    v.add_argument("--key-env", metavar="VAR", help="environment variable holding the HMAC key")
    v.add_argument("--json", action="store_true", help="one JSON object on stdout")
    v.set_defaults(func=cmd_audit_verify)

    e = subparsers.add_parser(
        "entity", help="durable entity charts and their stored events",
        description="Entity commands. Example: convergent entity check examples/order_saga/order.yaml")
    esub = e.add_subparsers(dest="entity_command")
    c = esub.add_parser("check", help="load a statechart and verify its finite part",
                        description="Exit 0 verified, 1 failed, 2 bad chart. Example: "
                                    "convergent entity check examples/order_saga/order.yaml")
    c.add_argument("chart")
    c.set_defaults(func=cmd_entity_check)
    g = esub.add_parser("graph", help="print a statechart as mermaid or graphviz text",
                        description="Example: convergent entity graph "
                                    "examples/order_saga/order.yaml --format dot | dot -Tsvg "
                                    "(an SVG directly: convergent diagram CHART --format svg)")
    g.add_argument("chart")
    g.add_argument("--format", choices=("mermaid", "dot"), default="mermaid",
                   help="mermaid stateDiagram-v2 (default) or a graphviz digraph")
    g.set_defaults(func=cmd_entity_graph)
    h = esub.add_parser("history", help="print an entity's events as JSON lines",
                        description="Example: convergent entity history orders.db order o-1")
    h.add_argument("db")
    h.add_argument("kind")
    h.add_argument("entity")
    h.set_defaults(func=cmd_entity_history)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m convergent.durable.cli``), same exit codes."""
    p = argparse.ArgumentParser(prog="convergent")
    register(p.add_subparsers(dest="command"))
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help()
        return 2
    try:
        return int(args.func(args))
    except SpecError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return 2
    except ConvergentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
