"""``convergent migrate check|plan V1 V2 --map MAP``: classify a switch, or
print the steps that carry replicas across it. Exit 0 safe (online or
behind a barrier), 1 unsafe under a delivery model asked for, 2 bad input."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]

_DELIVERY = ("exactly-once", "at-least-once", "causal", "all")


def _inputs(args: argparse.Namespace) -> Any:
    from ..cli import _load_target
    from ..spec.registry import Registry
    from .build import as_spec
    from .mapfile import load_map
    specs = []
    for label, target in (("v1", args.v1), ("v2", args.v2)):
        obj = _load_target(target)
        specs.append(as_spec(obj.spec() if isinstance(obj, Registry) else obj, label))
    return load_map(args.map, specs[0], specs[1])


def cmd_check(args: argparse.Namespace) -> int:
    from .check import classify_migration, deliveries_of
    report = classify_migration(_inputs(args), deliveries_of(args.delivery))
    print(report.to_json() if args.json else report.render_text())
    return 0 if report.ok else 1


def cmd_plan(args: argparse.Namespace) -> int:
    from ..errors import ConvergentError
    from .check import classify_migration
    from .plan import plan_switch
    replicas = [r.strip() for r in args.replicas.split(",") if r.strip()]
    if not replicas:
        raise ConvergentError("--replicas: name at least one replica (a,b,c)")
    report = classify_migration(_inputs(args), (args.delivery,))
    try:
        plan = plan_switch(report, replicas, args.delivery)
    except ValueError as exc:
        raise ConvergentError(f"--replicas: {exc}") from None
    if args.json:
        print(json.dumps({"plan": plan.to_dict(), "report": report.to_dict()}, indent=2,
                         default=str))
    else:
        print(plan.render_text())
    return 0 if plan.ok else 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "migrate", help="classify a live switch from one machine version to the next",
        description="Is a switch from machine v1 to machine v2, with a state map, safe "
                    "online, safe behind a barrier, or unsafe? See docs/migration.md.")
    sub = p.add_subparsers(dest="migrate_command", required=True)

    def common(c: argparse.ArgumentParser) -> None:
        c.add_argument("v1", help="the running machine: a spec file, or module:attr naming "
                                  "a Registry")
        c.add_argument("v2", help="the next machine, likewise")
        c.add_argument("--map", required=True,
                       help="the map file (YAML/JSON): state: {v2 var: expression over v1's "
                            "vars}, events: {v1 event: v2 event or null}")
        c.add_argument("--json", action="store_true", help="print JSON")

    c = sub.add_parser(
        "check", help="classify the switch under each delivery model",
        description="Classify the switch: safe online, safe behind a barrier, or unsafe "
                    "with two replayed runs that diverge. Exit 0 safe, 1 unsafe under a "
                    "model asked for, 2 bad input. Example: convergent migrate check "
                    "examples/migration/account_v1.yaml examples/migration/account_v2.yaml "
                    "--map examples/migration/account_map.yaml --delivery causal")
    common(c)
    c.add_argument("--delivery", choices=_DELIVERY, default="all",
                   help="the delivery model(s) to classify under (default: all)")
    c.set_defaults(func=cmd_check)
    pl = sub.add_parser(
        "plan", help="print the steps that switch a set of replicas",
        description="The steps for the replicas, in the class found: online (one by one) "
                    "or behind a barrier (stop, drain to one version vector, switch, "
                    "resume). Exit 0 with a plan, 1 unsafe, 2 bad input. Example: "
                    "convergent migrate plan examples/migration/account_v1.yaml "
                    "examples/migration/account_v2.yaml --map "
                    "examples/migration/account_map.yaml --replicas a,b,c")
    common(pl)
    pl.add_argument("--replicas", required=True, help="replica names, comma-separated")
    pl.add_argument("--delivery", choices=_DELIVERY[:3], default="causal",
                    help="the delivery model the replicas run (default: causal)")
    pl.set_defaults(func=cmd_plan)
