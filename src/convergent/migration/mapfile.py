"""Load a map file (YAML or JSON): the state map as spec expressions over
v1's vars, and the event map. Every problem is collected and located
(``map.yaml:4:10: ...``), as the spec loader does, and raised together.

Format::

    state:                 # v2 var: expression over v1's vars
      tier: "if balance >= 4 then gold else basic"
    events:                # v1 event: v2 event, or null (removed)
      withdraw: debit
      legacy_fee: null

Both sections are optional: a v2 var left out is copied from the v1 var of
its name, a v1 event left out keeps its name (or is removed when v2 has no
event of that name)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import Problem, SpecError
from ..spec.expr import expression_source
from ..spec.loader import _parse, _plain
from ..spec.model import Location, MachineSpec
from .build import compile_map_exprs, complete_events
from .model import Migration, StateMap

__all__ = ["MAX_MAP_CHARS", "load_map", "loads_map"]

MAX_MAP_CHARS = 1 << 20
"""A map file is read whole; a bigger one is refused before parsing."""

_TOP = ("state", "events")


def load_map(path: str | os.PathLike[str], v1: MachineSpec, v2: MachineSpec) -> Migration:
    """The migration from ``v1`` to ``v2`` the map file at ``path`` describes.

    Raises:
        SpecError: the file cannot be read, or has problems (all, located).
    """
    filename = os.fspath(path)
    try:
        text = Path(filename).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise SpecError(Problem(f"cannot read the map: {reason}", filename)) from None
    return loads_map(text, v1, v2, filename)


def loads_map(text: str, v1: MachineSpec, v2: MachineSpec,
              filename: str = "<map>") -> Migration:
    """As ``load_map``, from the file's text."""
    if len(text) > MAX_MAP_CHARS:
        raise SpecError(Problem(f"the map is {len(text):,} characters long (at most "
                                f"{MAX_MAP_CHARS:,})", filename))
    data = _parse(text, filename)
    lines = text.splitlines()
    problems: list[Problem] = []
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SpecError(Problem(f"a map must be a mapping with state: and events:, got "
                                f"{type(_plain(data)).__name__}", filename, 1, 1))
    for key in data:
        if key not in _TOP:
            problems.append(_at(filename, data, key).problem(
                f"unknown key {key!r} in the map (expected: {', '.join(_TOP)})"))
    state: dict[str, Any] = {}
    broken: set[str] = set()
    where: dict[str, Location] = {}
    pinpoint: dict[str, bool] = {}
    node = data.get("state")
    state_ok = node is None or isinstance(node, Mapping)
    if not state_ok:
        problems.append(_at(filename, data, "state", value=True).problem(
            "state: must be a mapping {v2 var: expression over v1's vars}"))
    elif node is not None:
        for name in node:
            value = _plain(node[name])
            loc = _at(filename, node, name, value=True)
            source = expression_source(value)
            if not isinstance(name, str):
                problems.append(_at(filename, node, name).problem(
                    f"state: {name!r} is not a var name"))
                continue
            if source is None or not source.strip():
                problems.append(loc.problem(f"state: {name}: expected an expression (a "
                                            f"string, an int or a bool), got {value!r}"))
                broken.add(name)
                continue
            where[name], pinpoint[name] = _start(lines, loc, source)
            state[name] = source
    events: dict[str, str | None] = {}
    ev_where: dict[str, Location] = {}
    node = data.get("events")
    if node is not None and not isinstance(node, Mapping):
        problems.append(_at(filename, data, "events", value=True).problem(
            "events: must be a mapping {v1 event: v2 event or null}"))
    elif node is not None:
        for name in node:
            value = _plain(node[name])
            ev_where[str(name)] = _at(filename, node, name)
            if value is not None and not isinstance(value, str):
                problems.append(_at(filename, node, name, value=True).problem(
                    f"events: {name}: expected a v2 event name or null, got {value!r}"))
                continue
            events[str(name)] = value
    exprs = None
    missing_where = (_at(filename, data, "state") if "state" in data
                     else Location(filename, 1, 1))
    try:
        exprs = compile_map_exprs(v1, v2, state, where, filename, pinpoint,
                                  frozenset(broken), missing_where)
    except SpecError as exc:
        # a malformed state: section says nothing about which vars are missing
        problems.extend(p for p in exc.problems
                        if state_ok or "has no value" not in p.message)
    resolved: dict[str, str | None] | None = None
    try:
        resolved = complete_events(v1, v2, events, ev_where, filename)
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems or exprs is None or resolved is None:
        raise SpecError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    return Migration(v1, v2, StateMap(exprs=exprs, where=where, source=filename), resolved,
                     filename, ev_where)


def _at(filename: str, node: Any, key: Any, *, value: bool = False) -> Location:
    lc = getattr(node, "lc", None)
    if lc is None:
        return Location(filename, 1, 1)
    try:
        line, col = lc.value(key) if value else lc.key(key)
    except (KeyError, IndexError, TypeError, AttributeError):
        line, col = lc.line, lc.col
    return Location(filename, line + 1, col + 1)


def _start(lines: list[str], where: Location, text: str) -> tuple[Location, bool]:
    """Where ``text`` starts verbatim on its line (so an expression problem
    points at its token), else the scalar's start."""
    if where.line is None or where.column is None or where.line > len(lines):
        return where, False
    line = lines[where.line - 1]
    col = where.column - 1
    if line.startswith(text, col):
        return where, True
    if line[col:col + 1] in ("'", '"') and line.startswith(text, col + 1):
        return Location(where.file, where.line, where.column + 1), True
    return where, False
