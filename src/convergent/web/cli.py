"""``convergent serve``: the local web inspector."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]

DEFAULT_PORT = 8765


def cmd_serve(args: argparse.Namespace) -> int:
    from ..cli import _is_relational_schema, _load_target
    from ..errors import ConvergentError
    from ..spec.registry import Registry
    from .inspection import inspect_spec
    from .server import check_host, run
    check_host(args.host, args.allow_remote)  # before the (maybe long) proofs
    inspections = []
    for i, target_name in enumerate(args.spec):
        target = _load_target(target_name)
        if _is_relational_schema(target):
            raise ConvergentError(f"{target_name}: the inspector shows machine specs; draw a "
                                  "relational schema with `convergent diagram`")
        spec = target.spec() if isinstance(target, Registry) else target
        insp = inspect_spec(i, target_name, spec, max_states=args.max_states)
        print(f"{target_name}: {insp.report.summary()}", file=sys.stderr)
        inspections.append(insp)
    run(inspections, host=args.host, port=args.port, allow_remote=args.allow_remote,
        replica_status=args.replica_status or ())
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="start the local web inspector (read-only, 127.0.0.1)",
        description="Verify machines and show them in a browser: the report, a "
                    "counterexample player, an explorer of the reachable states and a "
                    "diagram. Read-only; binds to 127.0.0.1 unless --host names another "
                    "address (which needs --allow-remote). "
                    "Example: convergent serve examples/gsm_order.yaml")
    p.add_argument("spec", nargs="+", help="spec files, or package.module:attr naming a "
                   "Registry or MachineSpec")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host that is not a loopback address")
    p.add_argument("--max-states", type=int, default=200, metavar="N",
                   help="the most nodes the diagram's state graph may have (default 200)")
    p.add_argument("--replica-status", action="append", metavar="FILE",
                   help="a status file written by `convergent replica run --status-file`: "
                        "the Replicas tab shows it live (repeatable)")
    p.set_defaults(func=cmd_serve)
