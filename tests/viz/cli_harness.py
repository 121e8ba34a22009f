"""Run a layer's ``register(subparsers)`` command the way ``convergent.cli``
does (errors to stderr and exit 2), without depending on which commands the
main parser routes today."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from convergent.errors import ConvergentError


def run(register: Callable[[Any], None], argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="convergent")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConvergentError as exc:
        import sys
        print(f"error: {exc}", file=sys.stderr)
        return 2
