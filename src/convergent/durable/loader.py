"""Load a statechart from YAML (or JSON) into the same ``Chart`` the Python
builder produces; every problem is reported at once with file:line:column.

Functions (opaque guards, ``call`` actions) cannot live in a data file: the
file names them and the caller passes them in ``functions``; an unknown name
is a located error at load, never a failure at run time. Enum values such as
``on``/``off``/``yes``/``no`` stay strings (YAML 1.2).

Shape::

    statechart: order
    version: 1
    vars: {paid: bool, attempts: {int: [0, 3]}, tier: {enum: [basic, gold]}}
    sensitive_fields: [card]
    initial: cart
    states:
      cart:
        on:
          submit: {target: paying, guard: "not paid", roles: [customer],
                   actions: [{emit: payment.charge}]}
          cancel: cancelled
        after: [{delay: 30m, target: abandoned}]
      paying: {initial: authorizing, history: shallow, states: {...}}
      checks: {parallel: true, states: {...}}
      done: {final: true}
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from ..errors import Problem
from ..spec.model import Location
from .chart import Action, Chart, Statechart, assign, call, emit
from .errors import ChartError

__all__ = ["load_chart", "loads_chart", "parse_delay"]

MAX_CHART_CHARS = 1 << 20
MAX_DEPTH = 32

_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

_STATE_KEYS = {"on", "after", "states", "initial", "history", "final", "parallel", "entry",
               "exit", "sensitive", "entry_roles", "stuck_after"}
_TRANSITION_KEYS = {"target", "guard", "actions", "roles", "actor_guard", "internal",
                    "priority"}


def parse_delay(value: Any) -> timedelta:
    """``30m``, ``2h``, ``45s``, ``500ms``, ``1d`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"delay={value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DELAY.match(str(value))
        if not m:
            raise ValueError(f"delay={value!r} (expected e.g. 30m, 2h, 45s, 500ms, 1d)")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"delay={value!r} (expected a positive duration)")
    return timedelta(seconds=seconds)


def load_chart(path: str | os.PathLike[str], *,
               functions: Mapping[str, Callable[..., Any]] | None = None) -> Chart:
    """Load the chart in the file at ``path``; raises ``ChartError``."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read(MAX_CHART_CHARS + 1)
    except OSError as exc:
        raise ChartError(Problem(f"cannot read: {exc.strerror}", name)) from None
    return loads_chart(text, filename=name, functions=functions)


def loads_chart(text: str, *, filename: str = "<chart>",
                functions: Mapping[str, Callable[..., Any]] | None = None) -> Chart:
    """Load a chart from YAML/JSON text; ``filename`` is used in messages."""
    if len(text) > MAX_CHART_CHARS:
        raise ChartError(Problem(f"the chart is over {MAX_CHART_CHARS:,} characters", filename))
    yaml = YAML(typ="rt", pure=True)
    yaml.version = (1, 2)
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ChartError(Problem(f"not valid YAML: {e.problem or e}", filename,
                                 mark.line + 1 if mark else None,
                                 mark.column + 1 if mark else None)) from None
    except (YAMLError, RecursionError) as e:
        raise ChartError(Problem(f"not valid YAML: {e}", filename)) from None
    return _Reader(filename, dict(functions or {})).read(doc)


class _Reader:
    def __init__(self, filename: str, functions: dict[str, Callable[..., Any]]) -> None:
        self.file = filename
        self.functions = functions
        self.problems: list[Problem] = []

    def at(self, node: Any, key: Any = None) -> Location:
        lc = getattr(node, "lc", None)
        if lc is None:
            return Location(self.file)
        try:
            if key is not None:
                line, col = lc.key(key) if isinstance(node, Mapping) else lc.item(key)
            else:
                line, col = lc.line, lc.col
        except (KeyError, IndexError, TypeError, AttributeError):
            line, col = lc.line, lc.col
        return Location(self.file, line + 1, col + 1)

    def bad(self, where: Location, message: str) -> None:
        self.problems.append(where.problem(message))

    def read(self, doc: Any) -> Chart:
        if not isinstance(doc, Mapping):
            raise ChartError(Problem("a chart is a mapping with 'statechart' and 'states'",
                                     self.file, 1, 1))
        allowed = {"statechart", "version", "vars", "initial", "states", "independent",
                   "sensitive_fields"}
        for k in doc:
            if k not in allowed:
                self.bad(self.at(doc, k), f"unknown key {k!r} (expected one of "
                                          f"{', '.join(sorted(allowed))})")
        name = doc.get("statechart")
        version = doc.get("version", 1)
        try:
            sc = Statechart(str(name) if name is not None else "", version=int(version)
                            if isinstance(version, int) and not isinstance(version, bool)
                            else -1)
        except ChartError as exc:
            self.bad(self.at(doc, "statechart" if "statechart" in doc else None),
                     exc.problems[0].message)
            raise ChartError(self.problems) from None
        self.vars(sc, doc.get("vars") or {}, doc)
        for f in doc.get("sensitive_fields") or []:
            sc.sensitive_fields(str(f))
        states = doc.get("states")
        if not isinstance(states, Mapping) or not states:
            self.bad(self.at(doc, "states" if "states" in doc else None),
                     "'states' must be a non-empty mapping")
        else:
            self.states(sc, states, None, 1)
        if "initial" in doc:
            sc.initial(str(doc["initial"]), where=self.at(doc, "initial"))
        for i, pair in enumerate(doc.get("independent") or []):
            if isinstance(pair, list) and len(pair) == 2:
                sc.independent(str(pair[0]), str(pair[1]))
            else:
                self.bad(self.at(doc["independent"], i), "an independent pair is [a, b]")
        try:
            chart = sc.build()
        except ChartError as exc:
            raise ChartError(self.problems + exc.problems) from None
        if self.problems:
            raise ChartError(self.problems)
        return chart

    def vars(self, sc: Statechart, node: Any, doc: Any) -> None:
        if not isinstance(node, Mapping):
            self.bad(self.at(doc, "vars"), "'vars' is a mapping of name -> type")
            return
        for name, decl in node.items():
            where = self.at(node, name)
            n = str(name)
            if decl == "bool":
                sc.bool(n, where=where)
            elif isinstance(decl, Mapping) and "bool" in decl:
                sc.bool(n, initial=bool(decl.get("initial", False)), where=where)
            elif isinstance(decl, Mapping) and "enum" in decl:
                values = [str(v) for v in (decl["enum"] or [])]
                init = decl.get("initial")
                sc.enum(n, *values, initial=None if init is None else str(init), where=where)
            elif isinstance(decl, Mapping) and "int" in decl:
                rng = decl["int"]
                if not (isinstance(rng, list) and len(rng) == 2
                        and all(isinstance(x, int) and not isinstance(x, bool) for x in rng)):
                    self.bad(where, f"var {n!r}: int range must be [lo, hi]")
                    continue
                sc.int(n, int(rng[0]), int(rng[1]), initial=decl.get("initial"), where=where)
            else:
                self.bad(where, f"var {n!r}: expected bool, {{enum: [...]}} or "
                                "{int: [lo, hi]}")

    def states(self, sc: Statechart, node: Mapping[str, Any], parent: str | None,
               depth: int) -> None:
        if depth > MAX_DEPTH:
            self.bad(self.at(node), f"states nested deeper than {MAX_DEPTH} levels")
            return
        for name, body in node.items():
            where = self.at(node, name)
            n = str(name)
            if body is None:
                body = {}
            if not isinstance(body, Mapping):
                self.bad(where, f"state {n!r}: expected a mapping")
                continue
            for k in body:
                if k not in _STATE_KEYS:
                    self.bad(self.at(body, k), f"state {n!r}: unknown key {k!r} (expected "
                                               f"one of {', '.join(sorted(_STATE_KEYS))})")
            entry = self.actions(body.get("entry"), body, "entry")
            exit_ = self.actions(body.get("exit"), body, "exit")
            if body.get("parallel"):
                sc.parallel(n, parent=parent, entry=entry, exit=exit_, where=where)
            else:
                stuck = None
                if "stuck_after" in body:
                    try:
                        stuck = parse_delay(body["stuck_after"])
                    except ValueError as exc:
                        self.bad(self.at(body, "stuck_after"), str(exc))
                history = body.get("history", "none")
                sc.state(n, parent=parent, initial=None if body.get("initial") is None
                         else str(body["initial"]), history=str(history),  # type: ignore[arg-type]
                         final=bool(body.get("final", False)), entry=entry, exit=exit_,
                         sensitive=bool(body.get("sensitive", False)),
                         entry_roles=[str(r) for r in body.get("entry_roles") or []],
                         stuck_after=stuck, where=where)
            kids = body.get("states")
            if kids is not None:
                if isinstance(kids, Mapping):
                    self.states(sc, kids, n, depth + 1)
                else:
                    self.bad(self.at(body, "states"), f"state {n!r}: 'states' is a mapping")
            self.transitions(sc, n, body)

    def transitions(self, sc: Statechart, source: str, body: Mapping[str, Any]) -> None:
        on = body.get("on") or {}
        if not isinstance(on, Mapping):
            self.bad(self.at(body, "on"), f"state {source!r}: 'on' maps events to targets")
            on = {}
        for event, spec in on.items():
            where = self.at(on, event)
            alternatives = spec if isinstance(spec, list) else [spec]
            for i, alt in enumerate(alternatives):
                w = self.at(spec, i) if isinstance(spec, list) else where
                if alt is None or isinstance(alt, str):
                    sc.on(source, str(event), None if alt is None else str(alt), where=w)
                    continue
                if not isinstance(alt, Mapping):
                    self.bad(w, f"{source} --{event}-->: expected a target or a mapping")
                    continue
                for k in alt:
                    if k not in _TRANSITION_KEYS:
                        self.bad(self.at(alt, k), f"{source} --{event}-->: unknown key {k!r}")
                guard = self.guard(alt, source, str(event))
                ag = None
                if "actor_guard" in alt:
                    ag = self.function(alt, "actor_guard")
                prio = alt.get("priority")
                sc.on(source, str(event), None if alt.get("target") is None
                      else str(alt["target"]), guard=guard,
                      actions=self.actions(alt.get("actions"), alt, "actions"),
                      roles=[str(r) for r in alt.get("roles") or []], actor_guard=ag,
                      internal=bool(alt.get("internal", False)),
                      priority=prio if isinstance(prio, int) else None, where=w)
        timers = body.get("after") or []
        if not isinstance(timers, list):
            self.bad(self.at(body, "after"), f"state {source!r}: 'after' is a list")
            return
        for i, t in enumerate(timers):
            w = self.at(timers, i)
            if not isinstance(t, Mapping) or "delay" not in t or "target" not in t:
                self.bad(w, f"state {source!r}: a timer is {{delay: 30m, target: state}}")
                continue
            try:
                delay = parse_delay(t["delay"])
            except ValueError as exc:
                self.bad(self.at(t, "delay"), str(exc))
                continue
            g = t.get("guard")
            sc.after(source, delay, str(t["target"]),
                     actions=self.actions(t.get("actions"), t, "actions"),
                     guard=None if g is None else str(g), where=w)

    def guard(self, alt: Mapping[str, Any], source: str, event: str) -> Any:
        g = alt.get("guard")
        if g is None:
            return None
        if isinstance(g, str):
            return g
        if isinstance(g, Mapping) and "call" in g:
            return self.function(g, "call")
        self.bad(self.at(alt, "guard"), f"{source} --{event}-->: guard is an expression "
                                        "string or {call: name}")
        return None

    def function(self, node: Mapping[str, Any], key: str) -> Callable[..., Any] | None:
        name = str(node[key])
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(self.functions) or "none"
            self.bad(self.at(node, key), f"unknown function {name!r} (pass it in "
                                         f"functions=; known: {known})")
        return fn

    def actions(self, node: Any, parent: Any, key: str) -> list[Action]:
        if node is None:
            return []
        if not isinstance(node, list):
            self.bad(self.at(parent, key), f"{key!r} is a list of actions")
            return []
        out: list[Action] = []
        for i, a in enumerate(node):
            w = self.at(node, i)
            if isinstance(a, Mapping) and len(a) >= 1:
                if "set" in a and isinstance(a["set"], Mapping):
                    out.append(assign({str(k): v for k, v in a["set"].items()}))
                    continue
                if "emit" in a:
                    body = a.get("body")
                    if body is not None and not isinstance(body, Mapping):
                        self.bad(w, "emit body must be a mapping")
                        continue
                    try:
                        out.append(emit(str(a["emit"]), None if body is None else
                                        _plain(body)))
                    except ValueError as exc:
                        self.bad(w, str(exc))
                    continue
                if "call" in a:
                    fn = self.function(a, "call")
                    if fn is not None:
                        out.append(call(fn, name=str(a["call"])))
                    continue
            self.bad(w, "an action is {set: {var: expr}}, {emit: topic, body: {...}} or "
                        "{call: name}")
        return out


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, (bool, ScalarBoolean)):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return None if node is None else str(node)
