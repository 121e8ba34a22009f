"""Load a machine spec (YAML or JSON) into the neutral ``MachineSpec``.

The format is ``docs/spec-format.md``. Everything that can be checked without
the engine is checked here, and every problem found is collected, located as
``file:line:column`` (both 1-based), and raised together in one ``SpecError``
so a user fixes a spec in one pass.

Both YAML and JSON go through ruamel.yaml: JSON is YAML 1.2 flow syntax, so
one parser gives positions for both. YAML is read as 1.2 (only ``true`` and
``false`` are booleans; ``on``/``off``/``yes``/``no`` stay strings) and a
duplicate key is an error.

Decisions where the contract is silent:

* ``events`` is required (it may be an empty mapping); ``invariants`` is
  optional (default none); ``version`` is any int;
* names (machine, vars, events, invariants) are ASCII identifiers; a var may
  not be named by a keyword of the expression language;
* enum values are non-empty strings; one that is not an identifier can only
  be written quoted in expressions;
* an int range holds at most ``MAX_DOMAIN`` values (the engine enumerates it);
* in ``independent``, a repeated pair (in either orientation) is dropped
  silently; the first orientation is kept;
* a name listed twice in ``reads``/``writes``/``watches`` is an error.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from ..errors import Problem, SpecError
from .expr import KEYWORDS, CompiledExpr, Expected, _compile, expression_source
from .params import expand_family, expand_pairs
from .model import (
    MAX_DOMAIN,
    Assignment,
    Event,
    Family,
    Invariant,
    Location,
    MachineSpec,
    Predicate,
    Var,
    int_range_problem,
)

__all__ = ["MAX_DOMAIN", "load_spec", "loads_spec"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_TOP_KEYS = ("machine", "version", "vars", "initial", "invariants", "events", "independent")
_INVARIANT_KEYS = ("name", "holds", "repair", "watches")
_EVENT_KEYS = ("guard", "apply", "reads", "writes", "params")


def load_spec(path: str | os.PathLike[str]) -> MachineSpec:
    """Load the spec in the file at ``path`` (YAML or JSON, told by content).

    Raises:
        SpecError: the file cannot be read, or the spec is malformed (every
            problem found, each as ``file:line:column: message``).
    """
    filename = os.fspath(path)
    try:
        text = Path(filename).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise SpecError(Problem(f"cannot read the spec: {reason}", filename)) from None
    return loads_spec(text, filename)


def loads_spec(text: str, filename: str = "<string>") -> MachineSpec:
    """Load a spec from its text (YAML or JSON). ``filename`` is used in messages.

    Raises:
        SpecError: every problem found, each located.
    """
    data = _parse(text, filename)
    if isinstance(data, Mapping) and "collection" in data:
        from .collection import read_collection   # a collection; the rest is its template
        return read_collection(_Loader(filename, text), data)
    return _Loader(filename, text).machine(data)


# --------------------------------------------------------------------------- parsing


MAX_SPEC_CHARS = 4 * 2**20
"""A spec is read whole; a bigger file is refused before parsing."""
MAX_NESTING = 64
"""Collections nested in one another (flow ``[``/``{``, or block indentation):
a machine spec needs a handful; the YAML parser recurses on each level."""


# what YAML 1.2 calls non-printable (tab, LF and CR are allowed; splitlines
# already took the line breaks)
_NOT_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f"
                            "\ud800-\udfff\ufffe\uffff]")


def _check_shape(text: str, filename: str) -> None:
    """Refuse, before any parsing, a text too big or nested too deeply for
    the YAML parser to handle quickly and without recursing out of stack."""
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(Problem(f"the spec is {len(text):,} characters long "
                                f"(at most {MAX_SPEC_CHARS:,})", filename))
    depth = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip(" -?:\t"))
        if indent > 4 * MAX_NESTING:
            raise SpecError(Problem(f"nested too deeply: indented {indent} columns "
                                    f"(a spec nests at most {MAX_NESTING} levels)",
                                    filename, lineno, indent))
        bad = _NOT_PRINTABLE.search(line)
        if bad:
            raise SpecError(Problem(f"character U+{ord(bad.group()):04X} is not allowed in a "
                                    "spec (YAML allows printable characters, tab and newline)",
                                    filename, lineno, bad.start() + 1))
        for col, c in enumerate(line, 1):
            if c == "#" and (col == 1 or line[col - 2] in " \t"):
                break
            if c in "[{":
                depth += 1
                if depth > MAX_NESTING:
                    raise SpecError(Problem(f"nested too deeply: more than {MAX_NESTING} "
                                            "levels of [ ] or { }", filename, lineno, col))
            elif c in "]}":
                depth = max(0, depth - 1)


def _parse(text: str, filename: str) -> Any:
    _check_shape(text, filename)
    yaml = YAML(typ="rt", pure=True)
    yaml.version = (1, 2)
    try:
        return yaml.load(text)
    except RecursionError:  # pragma: no cover - _check_shape refuses such depth first
        raise SpecError(Problem("nested too deeply to parse", filename)) from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        message = _yaml_message(e)
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise SpecError(Problem(message, filename, line, column)) from None
    except YAMLError as e:
        line = column = None
        position = getattr(e, "position", None)
        if isinstance(position, int):
            before = text[:position]
            line = before.count("\n") + 1
            column = position - (before.rfind("\n") + 1) + 1
        raise SpecError(Problem(f"not valid YAML or JSON: {e}", filename, line or 1,
                                column)) from None


def _yaml_message(e: MarkedYAMLError) -> str:
    problem = str(e.problem or "")
    duplicate = re.search(r'found duplicate key "(.*?)"', problem)
    if duplicate:
        within = (f" (in the mapping that starts at line {e.context_mark.line + 1})"
                  if e.context_mark else "")
        return f"duplicate key '{duplicate.group(1)}'{within}"
    context = f"{e.context} " if e.context else ""
    return f"not valid YAML or JSON: {context}{problem}".strip()


def _plain(value: Any) -> Any:
    """A ruamel scalar as a plain Python value (ScalarBoolean is an int
    subclass, not a bool; ScalarInt, ScalarFloat and styled strings too)."""
    if isinstance(value, ScalarBoolean):
        return bool(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, (bool, ScalarBoolean))


def _show(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# --------------------------------------------------------------------------- loader


class _Loader:
    """One load: the file's lines (to pinpoint expression columns) and the
    problems collected so far. Each ``_section`` method checks one part of the
    document and returns what it could build."""

    def __init__(self, filename: str, text: str) -> None:
        self.file = filename
        self.lines = text.splitlines()
        self.problems: list[Problem] = []
        self.vars: dict[str, Var] = {}
        self.broken_vars: set[str] = set()
        self.params: dict[str, Var] = {}          # of the event being read
        self.families: dict[str, Family] = {}

    # -- locations
    def at(self, node: Any, key: Any = None, *, item: int | None = None,
           value: bool = False) -> Location:
        """The 1-based location of a node, of one of its keys (or the value of
        that key), or of one of its items; the node's own start if unknown."""
        lc = getattr(node, "lc", None)
        if lc is None:
            return Location(self.file, 1, 1)
        try:
            if item is not None:
                line, col = lc.item(item)
            elif key is not None:
                line, col = lc.value(key) if value else lc.key(key)
            else:
                line, col = lc.line, lc.col
        except (KeyError, IndexError, TypeError, AttributeError):
            line, col = lc.line, lc.col
        return Location(self.file, line + 1, col + 1)

    def problem(self, where: Location, message: str) -> None:
        self.problems.append(where.problem(message))

    def text_start(self, where: Location, text: str) -> tuple[Location, bool]:
        """Where ``text`` starts in the source, and whether it is verbatim
        there (plain or quoted scalar on one line), so that expression errors
        can point at the offending token; else the scalar's start."""
        if where.line is None or where.column is None or where.line > len(self.lines):
            return where, False
        line = self.lines[where.line - 1]
        col = where.column - 1
        if line.startswith(text, col):
            return where, True
        if line[col:col + 1] in ("'", '"') and line.startswith(text, col + 1):
            return Location(where.file, where.line, where.column + 1), True
        return where, False

    # -- generic shape checks
    def mapping(self, node: Any, where: Location, what: str) -> Mapping[str, Any] | None:
        if isinstance(node, Mapping):
            return node
        self.problem(where, f"{what} must be a mapping, got {_show(node)}")
        return None

    def keys(self, node: Mapping[str, Any], allowed: tuple[str, ...], required: tuple[str, ...],
             what: str) -> None:
        """Unknown keys are errors (a misspelled ``gaurd`` must not silently
        make an event unguarded); missing required keys too."""
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.problem(self.at(node, key),
                             f"unknown key '{key}' in {what} ({hint}expected: "
                             f"{', '.join(allowed)})")
        for key in required:
            if key not in node:
                self.problem(self.at(node), f"missing required key '{key}' in {what}")

    def identifier(self, name: Any, where: Location, what: str) -> bool:
        if isinstance(name, str) and _IDENT.fullmatch(name):
            return True
        self.problem(where, f"{what} name {_show(name)} is not an identifier "
                            f"(letters, digits and _, not starting with a digit)")
        return False

    def unique(self, seen: dict[str, Location], name: str, where: Location, what: str) -> None:
        if name in seen:
            self.problem(where, f"duplicate {what} name '{name}' (first at line {seen[name].line})")
        else:
            seen[name] = where

    # -- the document
    def machine(self, data: Any) -> MachineSpec:
        if data is None:
            raise SpecError(Problem("the spec is empty (expected a mapping with machine, "
                                    "vars and events)", self.file, 1, 1))
        top = self.mapping(data, Location(self.file, 1, 1), "the spec (top level)")
        if top is None:
            raise SpecError(self.problems)
        self.keys(top, _TOP_KEYS, ("machine", "vars", "events"), "the spec")
        name = _plain(top.get("machine"))
        if "machine" in top:
            self.identifier(name, self.at(top, "machine", value=True), "machine")
        version = _plain(top.get("version", 1))
        if not _is_int(version):
            self.problem(self.at(top, "version", value=True),
                         f"version must be an int, got {_show(version)}")
        vars_ = self.vars_section(top) if "vars" in top else ()
        initial = self.initial_section(top, vars_)
        invariants = self.invariants_section(top)
        events = self.events_section(top)
        independent, independent_all = self.independent_section(top, events)
        if self.problems:
            raise SpecError(self.problems)
        return MachineSpec(name=name, vars=vars_, invariants=invariants, events=events,
                           independent=independent, initial=initial, version=version,
                           independent_all=independent_all, source=self.file,
                           families=tuple(self.families.values()))

    # -- vars
    def vars_section(self, top: Mapping[str, Any]) -> tuple[Var, ...]:
        node = self.mapping(top["vars"], self.at(top, "vars", value=True), "vars")
        if node is None:
            return ()
        if not node:
            self.problem(self.at(top, "vars", value=True), "vars is empty: a machine needs "
                                                           "at least one var")
        out = []
        for name, decl in node.items():
            where = self.at(node, name)
            if not self.identifier(name, where, "var"):
                self.broken_vars.add(str(name))
                continue
            if name in KEYWORDS:
                self.problem(where, f"var name '{name}' is a keyword of the expression "
                                    f"language ({', '.join(sorted(KEYWORDS))})")
                self.broken_vars.add(name)
                continue
            var = self.var(name, decl, node)
            if var is None:
                self.broken_vars.add(name)
            else:
                out.append(var)
                self.vars[name] = var
        return tuple(out)

    def var(self, name: str, decl: Any, parent: Mapping[str, Any]) -> Var | None:
        where = self.at(parent, name, value=True)
        decl = _plain(decl)
        if decl == "bool":
            return Var.boolean(name)
        forms = "bool, {enum: [values...]} or {int: [low, high]}"
        if not isinstance(decl, Mapping):
            self.problem(where, f"var '{name}': expected {forms}, got {_show(decl)}")
            return None
        kinds = [k for k in ("enum", "int") if k in decl]
        if len(kinds) != 1:
            detail = "not both enum and int" if kinds else f"got {_show(decl)}"
            self.problem(where, f"var '{name}': expected {forms}, {detail}")
            return None
        before = len(self.problems)
        self.keys(decl, ("int", "overflow") if kinds == ["int"] else ("enum",), (),
                  f"var '{name}'")
        if len(self.problems) > before:
            return None
        if kinds == ["enum"]:
            return self.enum_var(name, decl)
        return self.int_var(name, decl)

    def enum_var(self, name: str, decl: Mapping[str, Any]) -> Var | None:
        where = self.at(decl, "enum", value=True)
        values = decl["enum"]
        if not isinstance(values, list):
            self.problem(where, f"var '{name}': enum takes a list of values, got {_show(values)}")
            return None
        if not values:
            self.problem(where, f"var '{name}': empty enum (an enum needs at least one value)")
            return None
        ok = True
        seen: dict[str, Location] = {}
        for i, value in enumerate(values):
            value = _plain(value)
            item_where = self.at(values, item=i)
            if not isinstance(value, str) or not value or "\n" in value:
                self.problem(item_where, f"var '{name}': enum value {_show(value)} is not a "
                                         f"string (quote it)")
                ok = False
            elif value in seen:
                self.problem(item_where, f"var '{name}': enum value '{value}' is listed twice")
                ok = False
            else:
                seen[value] = item_where
        return Var.enum(name, *map(str, values)) if ok else None

    def int_var(self, name: str, decl: Mapping[str, Any]) -> Var | None:
        where = self.at(decl, "int", value=True)
        bounds = decl["int"]
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(_is_int(b) for b in bounds)):
            self.problem(where, f"var '{name}': int takes [low, high] (two ints), "
                                f"got {_show(bounds)}")
            return None
        lo, hi = int(bounds[0]), int(bounds[1])
        ok = True
        if lo > hi:
            self.problem(where, f"var '{name}': empty int range [{lo}, {hi}] (low > high)")
            ok = False
        elif int_range_problem(lo, hi):
            self.problem(where, f"var '{name}': {int_range_problem(lo, hi)}")
            ok = False
        overflow = _plain(decl.get("overflow", "clamp"))
        if overflow not in ("clamp", "error"):
            self.problem(self.at(decl, "overflow", value=True),
                         f"var '{name}': overflow must be clamp or error, got {_show(overflow)}")
            ok = False
        return Var.integer(name, lo, hi, overflow) if ok else None

    # -- initial
    def initial_section(self, top: Mapping[str, Any], vars_: tuple[Var, ...]) -> dict[str, Any]:
        """The full initial state: given values checked against their domains,
        omitted vars at false / their first enum value / their low bound."""
        initial = {v.name: v.values[0] for v in vars_}
        if "initial" not in top or top["initial"] is None:
            return initial
        node = self.mapping(top["initial"], self.at(top, "initial", value=True), "initial")
        if node is None:
            return initial
        for name, value in node.items():
            value = _plain(value)
            where = self.at(node, name, value=True)
            if name in self.broken_vars:
                continue
            if name not in self.vars:
                self.problem(self.at(node, name), f"initial: unknown var '{name}' "
                                                  f"({self.known_vars(name)})")
                continue
            var = self.vars[name]
            try:
                var.digit(value)
            except ValueError as e:
                self.problem(where, f"initial: {e}")
                continue
            initial[name] = value
        return initial

    def known_vars(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), list(self.vars), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"{hint}known vars: {', '.join(self.vars) or 'none'}"

    # -- invariants
    def invariants_section(self, top: Mapping[str, Any]) -> tuple[Invariant, ...]:
        node = top.get("invariants")
        if node is None:
            return ()
        if not isinstance(node, list):
            self.problem(self.at(top, "invariants", value=True),
                         f"invariants must be a list, got {_show(node)}")
            return ()
        out = []
        seen: dict[str, Location] = {}
        for i, item in enumerate(node):
            where = self.at(node, item=i)
            inv = self.invariant(item, where, seen)
            if inv is not None:
                out.append(inv)
        return tuple(out)

    def invariant(self, item: Any, where: Location,
                  seen: dict[str, Location]) -> Invariant | None:
        node = self.mapping(item, where, "an invariant")
        if node is None:
            return None
        name = _plain(node.get("name"))
        label = f"invariant '{name}'" if isinstance(name, str) else "an invariant"
        self.keys(node, _INVARIANT_KEYS, ("name", "holds", "repair"), label)
        if "name" in node and self.identifier(name, self.at(node, "name", value=True),
                                              "invariant"):
            self.unique(seen, name, self.at(node, "name", value=True), "invariant")
        holds = self.predicate(node, "holds", f"holds of {label}")
        repair = self.assignment(node, "repair", f"repair of {label}")
        watches = self.names(node, "watches", f"watches of {label}")
        if holds is None or repair is None or not isinstance(name, str):
            return None
        return Invariant(name=name, holds=holds, repair=repair, watches=watches, where=where)

    # -- events
    def events_section(self, top: Mapping[str, Any]) -> tuple[Event, ...]:
        if "events" not in top:
            return ()
        node = self.mapping(top["events"], self.at(top, "events", value=True), "events")
        if node is None:
            return ()
        out = []
        for name, body in node.items():
            where = self.at(node, name)
            if not self.identifier(name, where, "event"):
                continue
            event = self.event(name, body, node, where)
            if event is None:
                continue
            params = self.params
            self.params = {}
            if params:
                family, instances = expand_family(event, tuple(params.values()))
                self.families[name] = family
                out.extend(instances)
            else:
                out.append(event)
        return tuple(out)

    def params_section(self, node: Mapping[str, Any], label: str) -> dict[str, Var] | None:
        """An event's ``params: {name: bool | {enum: [...]} | {int: [lo, hi]}}``."""
        where = self.at(node, "params", value=True)
        body = self.mapping(node["params"], where, f"params of {label}")
        if body is None:
            return None
        if not body:
            self.problem(where, f"params of {label} is empty (leave it out for a plain event)")
            return None
        out: dict[str, Var] = {}
        for pname, decl in body.items():
            pwhere = self.at(body, pname)
            if not self.identifier(pname, pwhere, "param"):
                return None
            if pname in KEYWORDS or pname in self.vars or pname in self.broken_vars:
                self.problem(pwhere, f"param '{pname}' of {label} has the name of a "
                                     f"{'keyword' if pname in KEYWORDS else 'var'}")
                return None
            var = self.var(pname, decl, body)
            if var is None:
                return None
            out[pname] = var
        return out

    def event(self, name: str, body: Any, parent: Mapping[str, Any],
              where: Location) -> Event | None:
        label = f"event '{name}'"
        node = self.mapping(body, self.at(parent, name, value=True), label)
        if node is None:
            return None
        self.keys(node, _EVENT_KEYS, ("apply",), label)
        self.params = {}
        if "params" in node:
            params = self.params_section(node, label)
            if params is None:
                return None
            self.params = params
        guard = self.predicate(node, "guard", f"guard of {label}") if "guard" in node else None
        apply = self.assignment(node, "apply", f"apply of {label}")
        reads = self.names(node, "reads", f"reads of {label}")
        writes = self.names(node, "writes", f"writes of {label}")
        if apply is None or ("guard" in node and guard is None):
            return None
        return Event(name=name, apply=apply, guard=guard, reads=reads, writes=writes, where=where)

    # -- expressions
    def expression(self, node: Mapping[str, Any], key: str, expected: Expected,
                   what: str) -> CompiledExpr | None:
        value = _plain(node[key])
        where = self.at(node, key, value=True)
        source = expression_source(value)
        if source is None or not source.strip():
            self.problem(where, f"{what}: expected an expression (a string, an int or a "
                                f"bool), got {_show(value)}")
            return None
        start, exact = self.text_start(where, source)
        try:
            scope = {**self.vars, **self.params} if self.params else self.vars
            return _compile(source, scope, expected, start, what, exact,
                            frozenset(self.broken_vars))
        except SpecError as e:
            self.problems.extend(e.problems)
            return None

    def predicate(self, node: Mapping[str, Any], key: str, what: str) -> Predicate | None:
        if key not in node:
            return None
        expr = self.expression(node, key, "bool", what)
        return Predicate(expr=expr, text=expr.text) if expr is not None else None

    def assignment(self, node: Mapping[str, Any], key: str, what: str) -> Assignment | None:
        """A ``{var: expression}`` mapping; each value typed by its target var."""
        if key not in node:
            return None
        body = self.mapping(node[key], self.at(node, key, value=True), what)
        if body is None:
            return None
        targets: list[str] = []
        exprs: list[CompiledExpr] = []
        ok = True
        for target in body:
            if target in self.broken_vars:
                ok = False
                continue
            if target in self.params:
                self.problem(self.at(body, target), f"{what} assigns to param '{target}': "
                                                    "params are read-only arguments")
                ok = False
                continue
            if target not in self.vars:
                self.problem(self.at(body, target), f"assignment to unknown var '{target}' "
                                                    f"in {what} ({self.known_vars(target)})")
                ok = False
                continue
            expr = self.expression(body, target, self.vars[target],
                                   f"the value of {target} in {what}")
            if expr is None:
                ok = False
            else:
                targets.append(target)
                exprs.append(expr)
        if not ok:
            return None
        text = "{" + ", ".join(f"{t}: {e.text}" for t, e in zip(targets, exprs)) + "}"
        return Assignment(targets=tuple(targets), exprs=tuple(exprs), text=text)

    def names(self, node: Mapping[str, Any], key: str, what: str) -> tuple[str, ...] | None:
        """A declared footprint (reads, writes, watches): known var names, once each."""
        if key not in node:
            return None
        items = node[key]
        if not isinstance(items, list):
            self.problem(self.at(node, key, value=True),
                         f"{what} must be a list of var names, got {_show(items)}")
            return None
        out: list[str] = []
        for i, name in enumerate(items):
            name = _plain(name)
            where = self.at(items, item=i)
            if not isinstance(name, str):
                self.problem(where, f"{what}: expected a var name, got {_show(name)}")
                continue
            if name in self.broken_vars:
                continue
            if name not in self.vars:
                self.problem(where, f"{what}: unknown var {_show(name)} "
                                    f"({self.known_vars(str(name))})")
            elif name in out:
                self.problem(where, f"{what}: '{name}' is listed twice")
            else:
                out.append(name)
        return tuple(out)

    # -- independent
    def independent_section(self, top: Mapping[str, Any], events: tuple[Event, ...]
                            ) -> tuple[tuple[tuple[str, str], ...], bool]:
        """The explicit list of pairs; ``all`` (or no key) is every pair of
        distinct events in event order."""
        node = _plain(top.get("independent", "all"))
        names = [e.name for e in events]
        families = dict(self.families)
        if node == "all":
            pairs = tuple((a, b) for i, a in enumerate(names) for b in names[i + 1:])
            return pairs, True
        if not isinstance(node, list):
            self.problem(self.at(top, "independent", value=True),
                         f"independent must be 'all' or a list of [event, event] pairs, "
                         f"got {_show(node)}")
            return (), False
        declared = self.declared_events(top)
        out: list[tuple[str, str]] = []
        for i, pair in enumerate(node):
            checked = self.pair(pair, self.at(node, item=i), declared, families)
            if checked is not None and checked not in out and checked[::-1] not in out:
                out.append(checked)
        return tuple(expand_pairs(out, families)), False

    def declared_events(self, top: Mapping[str, Any]) -> set[str]:
        """Event names as written, even those whose body has problems (so a
        pair naming a broken event is not reported as unknown)."""
        events = top.get("events")
        return {str(k) for k in events} if isinstance(events, Mapping) else set()

    def pair(self, pair: Any, where: Location, declared: set[str],
             families: Mapping[str, Family]) -> tuple[str, str] | None:
        if not isinstance(pair, list) or len(pair) != 2:
            self.problem(where, f"independent: expected a pair [event, event], got {_show(pair)}")
            return None
        a, b = (_plain(x) for x in pair)
        ok = True
        for i, name in enumerate((a, b)):
            if not isinstance(name, str) or name not in declared:
                close = difflib.get_close_matches(str(name), sorted(declared), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.problem(self.at(pair, item=i),
                             f"independent pair [{a}, {b}] names unknown event {_show(name)}{hint}")
                ok = False
        if ok and a == b and a not in families:
            self.problem(where, f"independent pair [{a}, {b}] names event '{a}' twice "
                                f"(an event always commutes with itself)")
            ok = False
        return (a, b) if ok else None

