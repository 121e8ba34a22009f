"""From what a user gives (specs or Registries, a map as expressions or a
callable, an event map) to the neutral ``Migration``, every name checked.

The map file loader (``mapfile``) builds the same ``Migration`` with located
problems; this module is the Python API's way in and holds the rules both
share: which v2 vars default to a copy, how an event map is completed."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import Problem, SpecError
from ..spec.expr import CompiledExpr, compile_expr
from ..spec.model import Location, MachineSpec, Var
from ..spec.params import instance_name
from ..spec.registry import Registry
from .model import Migration, StateMap

__all__ = ["as_spec", "compile_state_expr", "complete_events", "make_migration"]


def as_spec(machine: Any, label: str) -> MachineSpec:
    """A MachineSpec from a MachineSpec, a Registry or a built Machine's spec."""
    if isinstance(machine, MachineSpec):
        return machine
    if isinstance(machine, Registry):
        return machine.spec()
    an = getattr(machine, "_analysis", None)
    if an is not None and hasattr(an, "compiled"):
        spec: MachineSpec = an.compiled.spec
        return spec
    raise TypeError(f"{label} must be a MachineSpec, a Registry or a built Machine, "
                    f"got {type(machine).__name__}")


def compile_state_expr(text: Any, v1: MachineSpec, target: Var, *,
                       where: Location = Location(), pinpoint: bool = True
                       ) -> CompiledExpr:
    """One map entry: an expression over v1's vars whose value is assigned to
    the v2 var ``target``. An enum value may come from a v1 enum of other
    values (a v2 enum that gained or lost values): it is translated by name,
    and a value v2 lacks is reported at the reachable state that produces it."""
    what = f"the map's value of {target.name}"
    try:
        return compile_expr(text, v1.vars, target, where=where, what=what, pinpoint=pinpoint)
    except SpecError as first:
        if target.kind != "enum":
            raise
        try:
            loose = compile_expr(text, v1.vars, None, where=where, what=what,
                                 pinpoint=pinpoint)
        except SpecError:
            raise first from None
        if isinstance(loose.type, tuple):
            return loose
        raise first from None


def complete_events(v1: MachineSpec, v2: MachineSpec, given: Mapping[str, str | None],
                    where: Mapping[str, Location] | None = None,
                    source: str | None = None) -> dict[str, str | None]:
    """Every v1 event's fate: ``given`` (a v1 event or family name -> a v2
    event or family name, or None for removed) completed by the default (the
    v2 event of the same name, else removed). Unknown names are problems."""
    where = where or {}
    v1_names = [e.name for e in v1.events]
    v2_names = {e.name for e in v2.events}
    fam1 = {f.name: f for f in v1.families}
    fam2 = {f.name: f for f in v2.families}
    problems: list[Problem] = []
    explicit: dict[str, str | None] = {}
    for key, target in given.items():
        loc = where.get(key, Location(source))
        if target is not None and not isinstance(target, str):
            problems.append(loc.problem(f"events: {key}: expected a v2 event name or null, "
                                        f"got {target!r}"))
            continue
        if key in fam1:
            fam = fam1[key]
            if target is None:
                for inst in fam.instances:
                    explicit[inst] = None
                continue
            if target not in fam2:
                problems.append(loc.problem(
                    f"events: family {key!r} maps to {target!r}, which is not an event "
                    f"family of {v2.name!r}{_hint(target, list(fam2))}"))
                continue
            for ev in v1.events:
                if ev.family == key:
                    inst = instance_name(target, ev.args)
                    if inst not in v2_names:
                        problems.append(loc.problem(
                            f"events: {ev.name} would become {inst}, which {v2.name!r} "
                            "does not have (its params differ): map instances one by one"))
                    explicit[ev.name] = inst
            continue
        if key not in v1_names:
            problems.append(loc.problem(f"events: {key!r} is not an event of {v1.name!r}"
                                        f"{_hint(key, v1_names + list(fam1))}"))
            continue
        if target is not None and target not in v2_names:
            problems.append(loc.problem(f"events: {key} maps to {target!r}, which is not an "
                                        f"event of {v2.name!r}{_hint(target, sorted(v2_names))}"))
            continue
        explicit[key] = target
    if problems:
        raise SpecError(problems)
    return {name: explicit[name] if name in explicit else (name if name in v2_names else None)
            for name in v1_names}


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def make_migration(v1: Any, v2: Any,
                   state_map: StateMap | Mapping[str, Any] | Callable[..., Any] | None = None,
                   events: Mapping[str, str | None] | None = None) -> Migration:
    """The Python API's way to a ``Migration``.

    ``state_map``: a callable taking a v1 ``StateView`` and returning
    ``{v2 var: value}``, a mapping ``{v2 var: expression over v1's vars}``, a
    ``StateMap``, or None (every v2 var copied from the v1 var of its name).
    ``events``: ``{v1 event: v2 event or None}``, completed by same names.

    Raises SpecError for unknown names and expressions that do not compile."""
    s1, s2 = as_spec(v1, "v1"), as_spec(v2, "v2")
    if isinstance(state_map, StateMap):
        smap = state_map
    elif state_map is None or isinstance(state_map, Mapping):
        smap = StateMap(exprs=compile_map_exprs(s1, s2, dict(state_map or {})))
    elif callable(state_map):
        smap = StateMap(fn=state_map)
    else:
        raise TypeError(f"state_map must be a callable, a mapping of expressions or a "
                        f"StateMap, got {type(state_map).__name__}")
    return Migration(s1, s2, smap, complete_events(s1, s2, dict(events or {})))


def compile_map_exprs(v1: MachineSpec, v2: MachineSpec, given: Mapping[str, Any],
                      where: Mapping[str, Location] | None = None,
                      source: str | None = None,
                      pinpoint: Mapping[str, bool] | None = None,
                      broken: frozenset[str] = frozenset(),
                      missing_where: Location | None = None) -> dict[str, CompiledExpr]:
    """Every v2 var's expression: the given ones, then a copy of the v1 var of
    the same name for the others (a v2 var with neither is a problem, unless
    it is in ``broken``: named with a value already reported)."""
    where = where or {}
    pinpoint = pinpoint or {}
    v1_vars = {v.name: v for v in v1.vars}
    v2_vars = {v.name: v for v in v2.vars}
    problems: list[Problem] = []
    out: dict[str, CompiledExpr] = {}
    for name, text in given.items():
        loc = where.get(name, Location(source))
        if name not in v2_vars:
            problems.append(loc.problem(f"state: {name!r} is not a var of {v2.name!r}"
                                        f"{_hint(name, list(v2_vars))}"))
            continue
        try:
            out[name] = compile_state_expr(text, v1, v2_vars[name], where=loc,
                                           pinpoint=pinpoint.get(name, True))
        except SpecError as exc:
            problems.extend(exc.problems)
    missing = missing_where or Location(source, 1 if source else None)
    for var in v2.vars:
        if var.name in given or var.name in broken:
            continue
        if var.name not in v1_vars:
            problems.append(missing.problem(
                f"state: v2 var {var.name!r} has no value: {v1.name!r} has no var of that "
                "name to copy; give one under state:"))
            continue
        try:
            out[var.name] = compile_state_expr(var.name, v1, var)
        except SpecError:
            problems.append(missing.problem(
                f"state: v2 var {var.name!r} ({var.describe()}) cannot be copied from v1's "
                f"{v1_vars[var.name].describe()}; give its value under state:"))
    if problems:
        raise SpecError(problems)
    return {v.name: out[v.name] for v in v2.vars if v.name in out}
