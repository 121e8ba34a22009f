"""``convergent consensus ...``: the consensus layer's subcommands."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import main
    return main(list(getattr(args, "extra", [])))


def _render(args: argparse.Namespace) -> int:
    from .machine import MachineSpec
    from .render import to_dot, to_mermaid, to_table
    spec = MachineSpec.default()
    print({"mermaid": to_mermaid, "dot": to_dot, "table": to_table}[args.format](spec))
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
    r = csub.add_parser("render", help="print the machine as mermaid, dot or a table")
    r.add_argument("--format", choices=("mermaid", "dot", "table"), default="mermaid")
    r.set_defaults(func=_render)
