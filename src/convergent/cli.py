"""``convergent``: the command line. Thin by design: each command calls one
library function; errors become a message and an exit code in one place.

Exit codes: 0 pass, 1 fail (a proof failed), 2 bad input (spec, options,
build error).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .errors import BuildError, ConvergentError, SpecError

__all__ = ["main"]

EXPLAIN = {
    "WFC": (
        "Weak finite convergence: from every state, applying the repair of the first "
        "failing invariant, again and again, ends in a valid state. If repairs loop, "
        "the normal form of a state is undefined and nothing else can be proved. "
        "Fix: make repairs move toward states that satisfy earlier invariants, or "
        "reorder the invariants (list order is repair priority)."),
    "CC1": (
        "Commutation of concurrent events: for every declared independent pair (a, b) "
        "and every state in scope, a then b and b then a give the same normalized "
        "state. This is what lets replicas apply concurrent events in any order. "
        "Fix: make the events write different variables and not read what the other "
        "writes, make them idempotent joins (set a flag, raise to a max), remove the "
        "pair from `independent` (then deliver them in causal order), or add an "
        "invariant whose repair reconciles both outcomes."),
    "CC2": (
        "Compensation commutes with events: at every invalid state s, nf(e(s)) equals "
        "nf(e(rho(s))), rho being one repair step. It is what a replica that "
        "normalizes lazily (applies several events, then repairs) needs. Only "
        "required with --strict."),
}


# Modules of the outer layers that add subcommands with ``register(subparsers)``,
# by the commands they add: only the one a command line needs is imported, so
# `convergent check` does not pay for importing the runtime or consensus layers.
EXTENSIONS = {
    "export": "convergent.export.cli",
    "replica": "convergent.runtime.cli",
    "emit": "convergent.runtime.cli",
    "consensus": "convergent.consensus.cli",
    "diagram": "convergent.viz.cli",
    "serve": "convergent.web.cli",
    "audit": "convergent.durable.cli",
    "entity": "convergent.durable.cli",
}


def _load_target(target: str) -> Any:
    """A spec file, or ``package.module:attr`` naming a Registry / MachineSpec
    (or a zero-argument callable returning one)."""
    from .spec.model import MachineSpec
    from .spec.registry import Registry
    if ":" in target and not os.path.exists(target):
        mod_name, _, attr = target.partition(":")
        if mod_name.endswith(".py") or os.sep in mod_name:
            path = os.path.abspath(mod_name)
            if not os.path.exists(path):
                raise ConvergentError(f"{mod_name}: no such file")
            spec = importlib.util.spec_from_file_location(
                os.path.splitext(os.path.basename(path))[0], path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            try:
                spec.loader.exec_module(module)
            except ConvergentError:
                raise
            except Exception as exc:
                raise ConvergentError(_located(exc, f"cannot load {mod_name}")) from None
        else:
            sys.path.insert(0, os.getcwd())
            try:
                module = importlib.import_module(mod_name)
            except ImportError as exc:
                raise ConvergentError(f"cannot import {mod_name!r}: {exc}") from None
            except ConvergentError:
                raise
            except Exception as exc:
                raise ConvergentError(_located(exc, f"cannot import {mod_name!r}")) from None
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise ConvergentError(f"module {mod_name!r} has no attribute {attr!r}") from None
        if not isinstance(obj, (Registry, MachineSpec)) and callable(obj) \
                and not isinstance(obj, type):
            obj = obj()
        if isinstance(obj, (Registry, MachineSpec)) or _is_relational_schema(obj):
            return obj
        raise ConvergentError(f"{target} is a {type(obj).__name__}, expected a Registry, "
                              "a MachineSpec or a relational Schema")
    if not os.path.exists(target):
        raise ConvergentError(f"{target}: no such file")
    from .spec.loader import load_spec
    return load_spec(target)


def _located(exc: BaseException, what: str) -> str:
    """``file:line: what: ExcType: message`` from the innermost frame of the
    user's code, instead of a traceback."""
    import traceback
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename] or frames
    where = f"{user[-1].filename}:{user[-1].lineno}: " if user else ""
    return f"{where}{what}: {type(exc).__name__}: {exc}"


def _is_relational_schema(obj: Any) -> bool:
    # only touch the relational layer for objects that come from it: checking a
    # YAML spec must not depend on that layer importing
    if not type(obj).__module__.startswith("convergent.relational"):
        return False
    try:
        from .relational.schema import Schema
    except ImportError:  # pragma: no cover - the layer is part of the package
        return False
    return isinstance(obj, Schema)


class _Progress:
    """A one-line progress display on stderr, shown only for builds longer
    than a second and only on a terminal-like stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled or time.monotonic() - self.start < 1.0:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{phase:<8} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def cmd_check(args: argparse.Namespace) -> int:
    from .engine.check import check
    from .spec.registry import Registry
    target = _load_target(args.spec)
    if _is_relational_schema(target):
        from .relational.static import analyze as analyze_schema
        rel = analyze_schema(target)
        print(json.dumps(rel.to_dict(), indent=2) if args.json else rel.render_text())
        return 0 if rel.ok else 1
    spec = target.spec() if isinstance(target, Registry) else target
    progress = _Progress(enabled=not args.json and sys.stderr.isatty())
    try:
        report = check(spec, scope=args.scope, strict=args.strict, progress=progress,
                       independent=args.independent)
    finally:
        progress.close()
    if args.json:
        print(report.to_json())
    else:
        print(report.render_text())
    return 0 if report.ok else 1


def cmd_explain(args: argparse.Namespace) -> int:
    code = args.code.upper()
    if code not in EXPLAIN:
        raise ConvergentError(f"unknown code {args.code!r} (known: {', '.join(EXPLAIN)})")
    print(f"{code}: {EXPLAIN[code]}")
    return 0


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convergent",
        description="Prove that replicated state machines converge, then run them.")
    p.add_argument("--version", action="version", version=f"convergent {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    c = sub.add_parser(
        "check", help="verify a machine (exit 0 pass, 1 fail, 2 bad spec)",
        description="Verify a machine spec (YAML/JSON file) or a Python-declared machine "
                    "(package.module:registry). Example: convergent check examples/order.yaml",
    )
    c.add_argument("spec", help="a spec file, or package.module:attr naming a Registry")
    c.add_argument("--json", action="store_true", help="print the JSON report")
    c.add_argument("--scope", choices=("reachable", "all"), default="reachable",
                   help="states where CC1 must hold (default: reachable)")
    c.add_argument("--strict", action="store_true",
                   help="also require CC2 and CC1 at every valid state")
    c.add_argument("--independent", choices=("declared", "auto"), default="declared",
                   help="declared: check the spec's pairs (default); auto: find every pair "
                        "that commutes and report the rest as causal-order obligations")
    c.set_defaults(func=cmd_check)
    e = sub.add_parser("explain", help="explain a check code (WFC, CC1, CC2)",
                       description="Explain a check code. Example: convergent explain CC1")
    e.add_argument("code")
    e.set_defaults(func=cmd_explain)
    _extend(sub, argv)
    return p


def _extend(sub: Any, argv: Sequence[str] | None) -> None:
    """Subcommands of the outer layers: the one named on the command line, or
    all of them when no known command is named (help, errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args if not a.startswith("-")), None)
    if command in ("check", "explain"):
        return
    wanted = ([EXTENSIONS[command]] if command in EXTENSIONS
              else list(dict.fromkeys(EXTENSIONS.values())))
    for modname in wanted:
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            if exc.name and not exc.name.startswith("convergent"):
                continue  # an optional dependency is missing: the command is absent
            if exc.name and (modname == exc.name or modname.startswith(exc.name + ".")):
                continue  # the layer is not installed
            raise
        register: Callable[[Any], None] = getattr(mod, "register")
        register(sub)


def _version() -> str:
    from . import __version__
    return __version__


def _problem_json(p: Any) -> dict[str, Any]:
    return {"message": p.message, "file": p.file, "line": p.line, "column": p.column}


def _json_error(args: Any, kind: str, exc: Exception, problems: list[dict[str, Any]]) -> None:
    """Under ``--json`` stdout carries one JSON object, also when the input is
    bad: ``{"error": {"kind", "message", "problems": [...]}}`` (exit 2)."""
    if not getattr(args, "json", False):
        return
    print(json.dumps({"error": {"kind": kind, "message": str(exc), "problems": problems}},
                     indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "pass_through", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.extra = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except SpecError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        _json_error(args, "spec", exc, [_problem_json(p) for p in exc.problems])
        return 2
    except ConvergentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        problems = []
        if isinstance(exc, BuildError):
            problems = [{"message": exc.message, "file": exc.file, "line": exc.line,
                         "column": exc.column}]
        _json_error(args, "build" if isinstance(exc, BuildError) else "error", exc, problems)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0

