"""``convergent cluster check SPEC``: whole enumeration sharded over Dask."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def cmd_check(args: argparse.Namespace) -> int:
    from ..cli import _load_target
    from ..errors import ConvergentError
    from ..spec.registry import Registry
    from .check import check_sharded
    target = _load_target(args.spec)
    if isinstance(target, Registry):
        target = target.spec()
    from ..spec.model import MachineSpec
    if not isinstance(target, MachineSpec):
        raise ConvergentError(f"{args.spec}: a sharded check takes a machine, not a "
                              f"{type(target).__name__}")
    report = check_sharded(target, args.scheduler, shards=args.shards, workers=args.workers,
                           scope=args.scope, strict=args.strict, independent=args.independent)
    print(report.to_json() if args.json else report.render_text())
    return 0 if report.ok else 1


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= n <= 1 << 20:
        raise argparse.ArgumentTypeError(f"{n} (expected 1..1048576)")
    return n


def register(subparsers: Any) -> None:
    from ..cli import add_verdict_options
    p = subparsers.add_parser(
        "cluster", help="check a machine too big for one host, sharded over Dask",
        description="Whole enumeration with its full-space work (pair sweeps, "
                    "reachability) split into tasks on a Dask cluster: the same report "
                    "as 'convergent check --method enumerate'. See docs/cluster.md.")
    sub = p.add_subparsers(dest="cluster_command", required=True)
    c = sub.add_parser(
        "check", help="verify a machine on a Dask cluster (exit 0 pass, 1 fail, 2 bad input)",
        description="Verify a machine spec, its state space sharded over Dask workers: a "
                    "running scheduler (--scheduler), or a local cluster of --workers "
                    "processes on 127.0.0.1. A task that fails or a worker lost for good "
                    "ends the check with an error, never a verdict. "
                    "Example: convergent cluster check examples/bank_account.yaml --workers 2")
    c.add_argument("spec", help="a spec file, or package.module:attr naming a Registry "
                                "(its module must be importable on the workers)")
    where = c.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR", default=None,
                       help="a Dask scheduler address, as tcp://host:8786")
    where.add_argument("--workers", type=_positive, default=2,
                       help="processes of a local cluster (default: 2)")
    c.add_argument("--shards", type=_positive, default=None,
                   help="contiguous ranges per swept space (default: 4 per worker)")
    add_verdict_options(c)
    c.add_argument("--json", action="store_true", help="print the JSON report")
    c.set_defaults(func=cmd_check)
