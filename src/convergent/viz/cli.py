"""``convergent diagram``: draw a machine as mermaid, dot, svg or png."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .select import FORMATS
from .states import DEFAULT_MAX_STATES

__all__ = ["register"]

_SUFFIXES = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot",
             ".svg": "svg", ".png": "png"}


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output:
        suffix = os.path.splitext(args.output)[1].lower()
        if suffix in _SUFFIXES:
            return _SUFFIXES[suffix]
    return "mermaid"


def _diagram_bytes(args: argparse.Namespace, fmt: str) -> bytes:
    from ..errors import ConvergentError
    if args.consensus:
        if args.spec:
            raise ConvergentError("give a SPEC or --consensus, not both")
        from .consensus import consensus_diagram
        return consensus_diagram(args.consensus, fmt)
    if not args.spec:
        raise ConvergentError("a SPEC (or --consensus PRESET) is required")
    if os.path.isfile(args.spec) and not args.spec.endswith(".py"):
        from .chartfile import file_kind
        if file_kind(args.spec) == "statechart":
            return _statechart_bytes(args, fmt)
    from ..cli import _is_relational_schema, _load_target
    from ..durable.chart import Chart
    from ..spec.registry import Registry
    from .select import graph_for_spec, render, schema_graph_for
    target = _load_target(args.spec, also=(Chart,))
    if isinstance(target, Chart):
        from .statechart import statechart_graph
        return render(statechart_graph(target), fmt)
    if _is_relational_schema(target):
        return render(schema_graph_for(target), fmt)
    spec = target.spec() if isinstance(target, Registry) else target
    return render(graph_for_spec(spec, max_states=args.max_states, kind=args.kind), fmt)


def _statechart_bytes(args: argparse.Namespace, fmt: str) -> bytes:
    from ..errors import ConvergentError
    from .chartfile import load_chart_file
    from .select import render
    from .statechart import statechart_graph
    if args.kind != "auto" or args.max_states != DEFAULT_MAX_STATES:
        raise ConvergentError(f"{args.spec} is a statechart: it is drawn as its states and "
                              "transitions (--kind and --max-states apply to machine specs)")
    return render(statechart_graph(load_chart_file(args.spec)), fmt)


def cmd_diagram(args: argparse.Namespace) -> int:
    from ..errors import ConvergentError
    if args.max_states < 1:
        raise ConvergentError(f"--max-states {args.max_states} (expected at least 1)")
    fmt = _format(args)
    data = _diagram_bytes(args, fmt)
    if args.output:
        with open(args.output, "wb") as fh:
            fh.write(data)
        print(f"wrote {args.output} ({fmt}, {len(data)} bytes)", file=sys.stderr)
        return 0
    if fmt == "png" and sys.stdout.isatty():
        raise ConvergentError("--format png writes binary data: give -o FILE (or redirect)")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diagram", help="draw a machine: mermaid, dot, svg or png",
        description="Draw a machine. A spec gets its reachable state graph (states as "
                    "nodes, events as edges, repairs dashed, invalid intermediate states "
                    "marked) when it has at most --max-states nodes, else its footprint "
                    "graph (vars, events, invariants); a relational schema "
                    "(module:attr) its relation graph; a durable statechart file its states "
                    "(composite states as clusters, parallel regions, history, timers); "
                    "--consensus PRESET the consensus machine. svg and png need graphviz's "
                    "`dot`. The format follows -o's suffix (.mmd .dot .gv .svg .png) unless "
                    "--format is given. Example: convergent diagram examples/gsm_order.yaml "
                    "-o order.svg")
    p.add_argument("spec", nargs="?", help="a spec or statechart file, or "
                   "package.module:attr naming a Registry, MachineSpec or relational Schema")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="mermaid (default), dot, svg or png")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--kind", choices=("auto", "states", "footprint"), default="auto",
                   help="auto (default): the state graph when small enough, else the "
                        "footprint graph")
    p.add_argument("--max-states", type=int, default=DEFAULT_MAX_STATES, metavar="N",
                   help=f"the most nodes a state graph may have (default {DEFAULT_MAX_STATES})")
    p.add_argument("--consensus", choices=("default", "sim", "demo"), default=None,
                   metavar="PRESET", help="draw the consensus machine (default, sim, demo)")
    p.set_defaults(func=cmd_diagram)
