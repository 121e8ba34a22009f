"""``convergent export``: verify a machine and write it for the runtimes."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import FORMATS, _export_analysis, _format_for

__all__ = ["register"]


def cmd_export(args: argparse.Namespace) -> int:
    from ..cli import _load_target
    from ..engine.check import Analysis, analyze_any
    from ..spec.registry import Registry
    target = _load_target(args.spec)
    spec = target.spec() if isinstance(target, Registry) else target
    from ..collection import Collection
    if Collection.declared_in(spec):      # a spec file with a collection: block
        from .collection import cli_export
        return cli_export(Collection.from_spec(spec), args)
    fmt = _format_for(args.output, args.format)  # bad names fail before the proof runs
    an = analyze_any(spec, scope=args.scope, strict=args.strict)
    if not isinstance(an, Analysis):
        return _export_other(an, args, fmt)
    if an.step is not None and not an.report.ok and not args.allow_unverified:
        # a failed proof is a finding (exit 1, as for `check`), not bad input (2)
        print(f"error: {an.report.summary()}", file=sys.stderr)
        print("not exported: the machine did not pass verification; --allow-unverified "
              "writes it anyway, marked unverified", file=sys.stderr)
        return 1
    info = _export_analysis(an, args.output, format=fmt,
                            allow_unverified=args.allow_unverified)
    status = "verified" if info.verified else "UNVERIFIED"
    print(f"wrote {info.path} ({info.format}, {info.states} states, {info.events} events, "
          f"{info.bytes} bytes, {status}, {info.content_hash})")
    return 0


def _export_other(an: Any, args: argparse.Namespace, fmt: str) -> int:
    """A machine checked by components is written as one document of its
    components' tables; one checked by z3 or by abstraction has no tables."""
    from ..composed import ComposedMachine
    from ..engine.compose import ComposedAnalysis
    from ..errors import ConvergentError
    if not isinstance(an, ComposedAnalysis) or not an.tabulated:
        how = an.report.to_dict().get("method", {}).get("kind", "another method")
        raise ConvergentError(f"{an.report.machine!r} was verified by {how}, which gives no "
                              "tables over concrete values to export")
    if not an.report.ok and not args.allow_unverified:
        print(f"error: {an.report.summary()}", file=sys.stderr)
        print("not exported: the machine did not pass verification; --allow-unverified "
              "writes it anyway, marked unverified", file=sys.stderr)
        return 1
    if fmt not in ("json", "json.gz"):
        raise ConvergentError(f"{an.report.machine!r} was verified by components: it is "
                              "written as json or json.gz (one document of the components' "
                              "tables), not as one binary table")
    m = ComposedMachine._from_analysis(an)
    digest = m.export(args.output, format=fmt, allow_unverified=args.allow_unverified)
    status = "verified" if an.report.ok else "UNVERIFIED"
    print(f"wrote {args.output} ({fmt}, composed: {len(m.components)} components, "
          f"{m.size} states, {len(m.events)} events, {status}, {digest})")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="verify a machine and write it as JSON or binary tables",
        description="Verify a machine and write its tables for the runtimes "
                    "(Machine.load, convergent.lite, runtimes/js). The format follows "
                    "the file name (.json, .json.gz, .cvm) unless --format is given. "
                    "Exit 0 written, 1 verification failed, 2 bad input. "
                    "Example: convergent export examples/order_fulfillment.yaml -o order.json")
    p.add_argument("spec", help="a spec file, or package.module:attr naming a Registry")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="json, json.gz or binary (default: from the file name)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="export a machine whose verification fails; its file says so")
    p.add_argument("--scope", choices=("reachable", "all"), default="reachable",
                   help="states where CC1 must hold (default: reachable)")
    p.add_argument("--strict", action="store_true",
                   help="also require CC2 and CC1 at every valid state")
    p.set_defaults(func=cmd_export)

