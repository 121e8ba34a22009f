"""``convergent``: the command line. Thin by design: each command calls one
library function; errors become a message and an exit code in one place.

Exit codes: 0 pass, 1 fail (a proof failed), 2 bad input (spec, options,
build error), 130 interrupted. When stdout is closed before the report is
written (``convergent check spec.yaml | head -1``), the command's own code
stands if it is not 0; a command that would have succeeded exits 141 (the
shell's code for a writer whose pipe closed): output that was not delivered
is not success.

Starting is cheap: ``--help``, ``--version``, ``explain`` import nothing but
this module and ``convergent.errors``; the outer layers (export, replicas,
consensus) are imported only when their command is named.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

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
        "normalizes lazily (applies several events, then repairs) needs. A replica "
        "that repairs after every event, as convergent's do, does not: a machine "
        "where repairs and events do not commute still converges. Only required with "
        "--strict."),
}


@dataclass(frozen=True)
class Command:
    """A subcommand of an outer layer: the module that registers it (with
    ``register(subparsers)``), its one-line help, and the extra whose
    dependencies it needs (None: the core install suffices)."""

    module: str
    help: str
    extra: str | None = None


# Only the module of the command named on the command line is imported, so
# `convergent check` and `convergent --help` do not pay for the runtime or the
# consensus layers; the help line lets `--help` list them without importing.
EXTENSIONS = {
    "export": Command("convergent.export.cli",
                      "verify a machine and write it as JSON or binary tables"),
    "replica": Command("convergent.runtime.cli",
                       "run a replica over NATS, or show one's status", "replica"),
    "emit": Command("convergent.runtime.cli", "emit an event at a replica", "replica"),
    "consensus": Command("convergent.consensus.cli", "the BFT consensus state machine",
                         "consensus"),
    "diagram": Command("convergent.viz.cli", "draw a machine: mermaid, dot, svg or png"),
    "serve": Command("convergent.web.cli",
                     "start the local web inspector (read-only, 127.0.0.1)", "web"),
    "audit": Command("convergent.durable.cli",
                     "verify the hash-chained audit log of durable entities"),
    "entity": Command("convergent.durable.cli",
                      "durable entity charts and their stored events"),
    "federation": Command("convergent.federation.cli",
                          "check registries owned by different services, together"),
    "cluster": Command("convergent.cluster.cli",
                       "check a machine too big for one host, sharded over Dask", "cluster"),
    "migrate": Command("convergent.migration.cli",
                       "classify a live switch from one machine version to the next"),
}
CORE = ("check", "explain")

#: optional third-party modules, by the extra that installs them
OPTIONAL_MODULES = {"nats": "replica", "psycopg": "replica", "cryptography": "consensus",
                    "starlette": "web", "uvicorn": "web", "prometheus_client": "durable",
                    "structlog": "durable", "opentelemetry": "durable",
                    "dask": "cluster", "distributed": "cluster"}

EPILOG = """\
examples:
  convergent check examples/order_fulfillment.yaml     passes (exit 0)
  convergent check examples/gsm_order.yaml             fails, with a counterexample (exit 1)
  convergent check examples/bank_account.py:registry   a machine declared in Python
  convergent explain CC1
  convergent export examples/order_fulfillment.yaml -o order.json
"""

#: seconds between progress lines when stderr is not a terminal
PROGRESS_INTERVAL = 5.0
#: seconds between redraws of the progress bar on a terminal
TTY_INTERVAL = 0.5
#: a check whose estimated time exceeds this announces its budget first
ANNOUNCE_SECONDS = 5.0


class _MissingExtra(ConvergentError):
    """A command needs a module from an optional extra that is not installed."""

    def __init__(self, command: str, extra: str, module: str) -> None:
        super().__init__(f"'convergent {command}' needs the {extra!r} extra (missing module "
                         f"{module!r}): pip install 'convergent[{extra}]'")


# ------------------------------------------------------------------ targets

def _load_target(target: str, *, also: tuple[type, ...] = ()) -> Any:
    """A spec file, or ``package.module:attr`` / ``path/file.py:attr`` naming a
    Registry / MachineSpec (or a zero-argument callable returning one); a
    command that draws or runs other objects names their types in ``also``."""
    if ":" in target and not os.path.exists(target):
        return _load_python_target(target, also)
    if not os.path.exists(target):
        raise ConvergentError(f"{target}: no such file")
    if target.endswith(".py"):
        raise ConvergentError(_python_file_without_attr(target))
    from .spec.loader import load_spec
    return load_spec(target)


def _load_python_target(target: str, also: tuple[type, ...] = ()) -> Any:
    import importlib
    import importlib.util

    from .spec.model import MachineSpec
    from .spec.registry import Registry
    mod_name, _, attr = target.rpartition(":")
    if not attr:
        raise ConvergentError(f"{target}: name the object after the colon, as "
                              f"{mod_name}:registry")
    if mod_name.endswith(".py") or os.sep in mod_name:
        path = os.path.abspath(mod_name)
        if not os.path.exists(path):
            raise ConvergentError(f"{mod_name}: no such file")
        spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(path))[0], path)
        if spec is None or spec.loader is None:
            raise ConvergentError(f"{mod_name}: not a Python module")
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
    if not isinstance(obj, (Registry, MachineSpec, *also)) and callable(obj) \
            and not isinstance(obj, type):
        try:
            obj = obj()
        except ConvergentError:
            raise
        except Exception as exc:
            raise ConvergentError(f"{target}: calling it (to get the object it returns) "
                                  f"failed: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, (Registry, MachineSpec, *also)) or _is_relational_schema(obj):
        return obj
    kinds = ", ".join(["a Registry", "a MachineSpec", "a relational Schema"]
                      + [f"a {t.__name__}" for t in also])
    raise ConvergentError(f"{target} is a {type(obj).__name__}, expected {kinds}")


def _python_file_without_attr(path: str) -> str:
    """The message for ``check file.py``: name the object, and guess which
    (module-level names bound to ``Registry(...)``, ``Schema(...)`` or a
    ``MachineSpec``, found without running the file)."""
    import ast
    names: list[str] = []
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        tree = None
    for node in tree.body if tree is not None else []:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            fn = node.value.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if called in ("Registry", "Schema", "MachineSpec", "load_spec"):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    hint = (f" (this file defines {', '.join(names)}: try {path}:{names[0]})" if names
            else f" (as {path}:registry)")
    return (f"{path} is a Python file: name the Registry, MachineSpec or Schema in it "
            f"after a colon{hint}")


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


# ------------------------------------------------------------------ progress

class _Progress:
    """Progress of a long check on stderr, from the engine's ticks and a clock.

    On a terminal: one line redrawn in place, shown only once the check has
    run for a second. Elsewhere (a CI log, a pipe): a plain line every
    ``interval`` seconds, so a long build is never silent. Disabled under
    ``--json``. A daemon thread does the writing, so phases that do not tick
    still show the elapsed time."""

    def __init__(self, enabled: bool, *, tty: bool | None = None, name: str = "",
                 interval: float | None = None, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval if interval is not None else (
            TTY_INTERVAL if self.tty else PROGRESS_INTERVAL)
        self.name = name
        self.start = time.monotonic()
        self.shown = False
        self.phase: tuple[str, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="convergent-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, phase: str, done: int, total: int) -> None:
        """The engine's tick: remember it; on a terminal, draw it now."""
        self.phase = (phase, done, total)
        if self.enabled and self.tty:
            self._draw()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def _text(self) -> str:
        elapsed = time.monotonic() - self.start
        if self.phase is None:
            what = "compiling and normalizing"
        else:
            phase, done, total = self.phase
            if self.tty:
                width = 30
                filled = int(width * done / max(total, 1))
                what = f"{phase:<8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
            else:
                what = f"{phase} {done}/{total}"
        who = f"{self.name}: " if self.name else ""
        return f"{who}{what}, {elapsed:.0f} s elapsed"

    def _draw(self) -> None:
        if not self.enabled or time.monotonic() - self.start < (
                1.0 if self.tty else self.interval):
            return
        with self._lock:
            if self._stop.is_set():
                return
            try:
                if self.tty:
                    self.stream.write(f"\r{self._text():<78}")
                else:
                    self.stream.write(f"convergent: {self._text()}\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr went away: progress is optional
                self.enabled = False
                return
            self.shown = True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self.shown and self.tty:
                try:
                    self.stream.write("\r" + " " * 78 + "\r")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass


# ------------------------------------------------------------------ commands

def _announce(spec: Any, quiet: bool) -> None:
    """Before anything is enumerated: estimate states, memory and time from
    the spec, and say so on stderr when the check will be long or may not
    fit (unless ``quiet``). Refusing is the engine's: it knows what it will
    really enumerate (a machine that splits into independent parts is
    checked part by part) and refuses a space that cannot fit in the memory
    available (engine/budget.py), before its tables are built."""
    if quiet:
        return
    from .engine.budget import estimate, format_bytes, warning
    from .engine.compose import COMPOSE_ABOVE
    states = 1
    for v in spec.vars:
        states *= v.size
    if states > COMPOSE_ABOVE:
        # the engine checks such a machine by parts or regions when it can
        # (the report's "method" says which) and refuses, with the estimate,
        # one it would have to enumerate whole and cannot fit
        return
    b = estimate(states, len(spec.events))
    caution = warning(b)
    if b.seconds_high < ANNOUNCE_SECONDS and caution is None and b.table_bytes < 2**30:
        return
    text = f"{b.describe()}" + (f"; {caution}" if caution else "")
    if b.seconds_high < ANNOUNCE_SECONDS and caution is None:
        text = f"{format_bytes(b.table_bytes)} of step tables"
    print(f"convergent: {spec.name}: {text}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from .spec.registry import Registry
    target = _load_target(args.spec)
    if _is_relational_schema(target):
        from .relational.static import analyze as analyze_schema
        rel = analyze_schema(target)
        print(json.dumps(rel.to_dict(), indent=2) if args.json else rel.render_text())
        return 0 if rel.ok else 1
    spec = target.spec() if isinstance(target, Registry) else target
    from .collection import Collection
    if Collection.declared_in(spec):      # a spec file with a collection: block
        col_report = Collection.from_spec(spec).check()
        print(col_report.to_json() if args.json else col_report.render_text())
        return 0 if col_report.ok else 1
    _announce(spec, quiet=args.json)
    from .engine.check import check
    with _Progress(enabled=not args.json, name=spec.name) as progress:
        report = check(spec, scope=args.scope, strict=args.strict, progress=progress,
                       independent=args.independent, method=args.method)
    print(report.to_json() if args.json else report.render_text())
    return 0 if report.ok else 1


def cmd_explain(args: argparse.Namespace) -> int:
    code = args.code.upper()
    if code not in EXPLAIN:
        raise ConvergentError(f"unknown code {args.code!r} (known: {', '.join(EXPLAIN)})")
    print(f"{code}: {EXPLAIN[code]}")
    return 0


# ------------------------------------------------------------------ parser

class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's example lines as written; commands on one line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            # argparse measures the command names at their parent's indentation,
            # two columns short: a long name would push its help to the next line
            self._action_max_length += 2


def _parser(command: str | None) -> argparse.ArgumentParser:
    """The parser, with the real subparser of ``command`` (importing its
    layer when it is an outer one) and help-only entries for the others."""
    p = argparse.ArgumentParser(
        prog="convergent",
        description="Prove that replicated state machines converge, then run them.",
        epilog=EPILOG, formatter_class=_HelpFormatter)
    p.add_argument("--version", action="version", version=f"convergent {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    c = sub.add_parser(
        "check", help="verify a machine (exit 0 pass, 1 fail, 2 bad spec)",
        description="Verify a machine spec (YAML/JSON file) or a Python-declared machine "
                    "(package.module:attr or path/file.py:attr naming a Registry). "
                    "Examples: convergent check examples/order_fulfillment.yaml; "
                    "convergent check examples/bank_account.py:registry --json")
    c.add_argument("spec", help="a spec file, or package.module:attr naming a Registry")
    c.add_argument("--json", action="store_true", help="print the JSON report")
    add_verdict_options(c)
    c.add_argument("--method", choices=("auto", "enumerate", "compose", "abstract",
                                        "symbolic"),
                   default="auto",
                   help="auto (default): enumerate, or when too big check independent parts "
                        "(compose) or compare-and-copy ints by regions (abstract), and parts "
                        "enumeration cannot afford by z3 (the report says which); symbolic: "
                        "z3 over "
                        "linear integer arithmetic of any range")
    c.set_defaults(func=cmd_check)
    e = sub.add_parser("explain", help="explain a check code (WFC, CC1, CC2)",
                       description="Explain a check code. Example: convergent explain CC1")
    e.add_argument("code")
    e.set_defaults(func=cmd_explain)
    registered: set[str] = set()
    if command in EXTENSIONS:
        registered = _register(sub, command)
    for name, cmd in EXTENSIONS.items():
        if name not in registered and _layer_present(cmd.module):
            # listed in --help without importing its layer
            sub.add_parser(name, help=cmd.help, add_help=False)
    return p


def add_verdict_options(c: argparse.ArgumentParser) -> None:
    """--scope, --strict and --independent: what a verdict means, the same
    for every command that gives one (check, cluster check)."""
    c.add_argument("--scope", choices=("reachable", "all"), default="reachable",
                   help="states where CC1 must hold (default: reachable)")
    c.add_argument("--strict", action="store_true",
                   help="also require CC2 and CC1 at every valid state")
    c.add_argument("--independent", choices=("declared", "auto"), default="declared",
                   help="declared: check the spec's pairs (default); auto: find every pair "
                        "that commutes and report the rest as causal-order obligations")


def _layer_present(module: str) -> bool:
    """Whether an outer layer ships in this install, without importing it (a
    build may leave a layer out: its commands are then absent)."""
    # a file test: find_spec would import the layer's package (its __init__)
    parts = module.split(".")[1:]
    base = os.path.join(os.path.dirname(os.path.abspath(__file__)), *parts)
    return os.path.exists(base + ".py") or os.path.isdir(base)


def _register(sub: Any, command: str) -> set[str]:
    """Import the layer of ``command`` and let it add its subcommands; the
    names it added. A missing optional dependency is a ``_MissingExtra``."""
    import importlib
    cmd = EXTENSIONS[command]
    try:
        mod = importlib.import_module(cmd.module)
    except ModuleNotFoundError as exc:
        _raise_if_optional(exc, command)
        if exc.name and cmd.module.startswith(exc.name):
            raise ConvergentError(f"'convergent {command}' is not part of this install "
                                  f"({cmd.module} is missing)") from None
        raise
    before = set(sub.choices)
    register: Callable[[Any], None] = getattr(mod, "register")
    register(sub)
    return set(sub.choices) - before


def _raise_if_optional(exc: ModuleNotFoundError, command: str) -> None:
    """Turn the import error of an optional dependency into the install line
    of the extra that provides it."""
    root = (exc.name or "").partition(".")[0]
    if root in OPTIONAL_MODULES:
        cmd = EXTENSIONS.get(command)
        extra = cmd.extra if cmd is not None and cmd.extra else OPTIONAL_MODULES[root]
        raise _MissingExtra(command, extra, root) from None


def _command_of(args: Sequence[str]) -> str | None:
    """The subcommand named on the command line: the first argument that is
    not an option (the top-level options take no values)."""
    return next((a for a in args if not a.startswith("-")), None)


def _unknown_command(command: str) -> str:
    import difflib
    known = [*CORE, *EXTENSIONS]
    close = difflib.get_close_matches(command, known, n=1, cutoff=0.6)
    if close:
        return f"unknown command {command!r}; did you mean {close[0]!r}?"
    return f"unknown command {command!r} (commands: {', '.join(known)})"


def _version() -> str:
    from . import __version__
    return __version__


# ------------------------------------------------------------------ stdout

class _Stdout:
    """``sys.stdout`` that survives its reader going away: the first
    ``BrokenPipeError`` is remembered, the file descriptor is pointed at
    /dev/null (so the interpreter's final flush cannot fail either) and the
    rest of the output is dropped. The command then finishes and its exit
    code decides (see the module docstring)."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if self.closed_pipe:
            return len(text)
        try:
            return int(self._wrapped.write(text))
        except BrokenPipeError:
            self._closed()
            return len(text)

    def flush(self) -> None:
        if self.closed_pipe:
            return
        try:
            self._wrapped.flush()
        except BrokenPipeError:
            self._closed()

    def _closed(self) -> None:
        self.closed_pipe = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._wrapped.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # not a real file (a test's capture): nothing to flush at exit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


# ------------------------------------------------------------------ main

def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; the exit code (see the module docstring)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(args_list)
    if command is not None and command not in CORE and command not in EXTENSIONS:
        print("usage: convergent [-h] [--version] COMMAND ...", file=sys.stderr)
        print(f"convergent: error: {_unknown_command(command)}", file=sys.stderr)
        return 2
    json_mode = "--json" in args_list
    out = _Stdout(sys.stdout)
    saved, sys.stdout = sys.stdout, out
    try:
        code = _run(args_list, command, json_mode)
        out.flush()
    finally:
        sys.stdout = saved
    if out.closed_pipe and code == 0:
        return 141
    return code


def _run(args_list: list[str], command: str | None, json_mode: bool) -> int:
    try:
        parser = _parser(command)
        args, extra = parser.parse_known_args(args_list)
        if extra:
            if not getattr(args, "pass_through", False):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.extra = extra
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        try:
            return int(args.func(args))
        except ModuleNotFoundError as exc:
            _raise_if_optional(exc, command or "")
            raise
    except SpecError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        _json_error(json_mode, "spec", exc, [_problem_json(p) for p in exc.problems])
        return 2
    except ConvergentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        problems = []
        if isinstance(exc, BuildError):
            problems = [{"message": exc.message, "file": exc.file, "line": exc.line,
                         "column": exc.column}]
        _json_error(json_mode, "build" if isinstance(exc, BuildError) else "error", exc,
                    problems)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _problem_json(p: Any) -> dict[str, Any]:
    return {"message": p.message, "file": p.file, "line": p.line, "column": p.column}


def _json_error(json_mode: bool, kind: str, exc: Exception,
                problems: list[dict[str, Any]]) -> None:
    """Under ``--json`` stdout carries one JSON object, also when the input is
    bad: ``{"error": {"kind", "message", "problems": [...]}}`` (exit 2); the
    located messages are on stderr as well."""
    if not json_mode:
        return
    import json
    print(json.dumps({"error": {"kind": kind, "message": str(exc), "problems": problems}},
                     indent=2))
