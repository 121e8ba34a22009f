"""``convergent consensus ...``: the consensus layer's subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]

PRESETS = ("default", "sim", "demo")


def _demo(args: argparse.Namespace) -> int:
    from .demo import main
    return main(list(getattr(args, "extra", [])))


def _spec(args: argparse.Namespace) -> Any:
    """The machine to render: a preset, then a JSON description, then flag overrides."""
    from .errors import ConfigError
    from .machine import MachineSpec
    if args.machine == "sim":
        from .sim.simulator import SIM_SPEC
        spec = SIM_SPEC
    elif args.machine == "demo":
        from .demo import DEMO_SPEC
        spec = DEMO_SPEC
    else:
        spec = MachineSpec.default()
    if args.spec:
        try:
            with open(args.spec, encoding="utf-8") as fh:
                doc = json.load(fh)
        except OSError as exc:
            raise ConfigError(f"--spec {args.spec}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--spec {args.spec}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
        spec = MachineSpec.from_dict(doc, spec)
    overrides: dict[str, object] = {"timeouts": {}}
    for item in args.timeout or ():
        name, sep, value = item.partition("=")
        try:
            seconds: float | None = None if value.lower() in ("none", "null") else float(value)
        except ValueError:
            seconds = -1.0  # reported below with the other problems
        if not sep:
            raise ConfigError(f"--timeout {item!r} (expected PHASE=SECONDS)")
        overrides["timeouts"][name] = seconds  # type: ignore[index]
    if args.scale is not None:
        overrides["scale"] = args.scale
    return MachineSpec.from_dict(overrides, spec)


def _render(args: argparse.Namespace) -> int:
    from .render import to_dot, to_mermaid, to_table
    spec = _spec(args)
    if args.format == "table":
        print(to_table(spec), end="")
    else:
        render = to_mermaid if args.format == "mermaid" else to_dot
        print(render(spec, include_internal=args.include_internal), end="")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("consensus", help="the BFT consensus state machine",
                       description="The round-based BFT consensus state machine. "
                                   "Example: convergent consensus demo --rounds 5")
    csub = p.add_subparsers(dest="consensus_command", metavar="COMMAND", required=True)
    d = csub.add_parser("demo", help="4 validator processes on loopback, one byzantine",
                        description="Start validator processes on 127.0.0.1 and show rounds "
                                    "finalizing (options: --nodes --byzantine --strategy "
                                    "--rounds --timeout --seed --state-dir --verbose).",
                        add_help=False)
    d.set_defaults(func=_demo, pass_through=True)
    r = csub.add_parser(
        "render", help="print the machine (with its timeouts) as mermaid, dot or a table",
        description="Print a consensus machine: a preset, changed by a JSON description "
                    "(--spec) and by flags. Timeout rows are labelled with their durations. "
                    "Example: convergent consensus render --machine sim --timeout voting=2 "
                    "--format table")
    r.add_argument("--format", choices=("mermaid", "dot", "table"), default="mermaid")
    r.add_argument("--machine", choices=PRESETS, default="default",
                   help="the starting machine: the reference design (default), the "
                        "simulator's or the demo's timeouts")
    r.add_argument("--spec", metavar="FILE.json",
                   help='a machine description: {"scale": 0.5, "timeouts": {"voting": 2}, '
                        '"remove": [[source, event]], "add": [{"source": .., "event": .., '
                        '"target": .., "internal": false}], "view_backoff": 2, '
                        '"max_backoff_exponent": 4}')
    r.add_argument("--timeout", action="append", metavar="PHASE=SECONDS",
                   help="set one phase's timeout (repeatable; 'none' removes it)")
    r.add_argument("--scale", type=float, help="multiply every timeout by this factor")
    r.add_argument("--include-internal", action="store_true",
                   help="also draw internal rows (messages counted without leaving a phase)")
    r.set_defaults(func=_render)
