"""Collections: one template machine per key (an account per customer), with
aggregate constraints across keys (at most k keys in some state, the sum of a
field at most a capacity), checked once for any number of keys.

Semantics. Every key runs the template machine from its initial state; an
event names its key. An aggregate is an *admission* rule: an event on a key
applies only if, after it (normalized), every aggregate still holds over all
keys; otherwise it is refused (a no-op), like a false guard.

What is proved (``Collection.check``):

1. the template machine itself (WFC, CC1 of its declared pairs for events on
   the same key, CC2), by the engine;
2. cross-key commutation: for every two events e, f (e = f included) on two
   different keys, e on i then f on j and f on j then e on i give the same
   collection, at every configuration the aggregates allow. Events on
   different keys touch different template states, so they can disagree only
   through the aggregates. Such a configuration is two keys' template states
   (each reachable in the template) and the aggregate totals of all other
   keys, which are sums of the contributions of reachable template states
   within the limits: finitely many, whatever the number of keys. So one
   check covers every number of keys; a counterexample says how many keys it
   needs, and comes with a run that reaches it when one exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MachineUsageError, SpecError
from .machine import Machine, State

__all__ = ["Aggregate", "Collection", "CollectionMachine", "CollectionReport",
           "CollectionState", "CrossKeyCounterexample"]


@dataclass(frozen=True)
class Aggregate:
    """``count(where) <= limit`` (``field`` None) or ``sum(field) <= limit``
    over all keys; ``where`` is a spec-language predicate of the template."""

    name: str
    limit: int
    where: str | None = None
    field: str | None = None

    def describe(self) -> str:
        if self.field is not None:
            return f"sum({self.field}) <= {self.limit}"
        return f"count({self.where}) <= {self.limit}"


@dataclass(frozen=True)
class CrossKeyCounterexample:
    """Two events on two keys that do not commute: the keys' states, the
    aggregate totals of the other keys, both outcomes, the number of keys it
    needs and (when found) a run from all keys initial that reaches it."""

    events: tuple[str, str]
    state_i: dict[str, Any]
    state_j: dict[str, Any]
    others: dict[str, int]
    order1: tuple[dict[str, Any], dict[str, Any]]
    order2: tuple[dict[str, Any], dict[str, Any]]
    keys_needed: int
    run: list[tuple[int, str]] | None

    def to_dict(self) -> dict[str, Any]:
        return {"events": list(self.events), "key_i": self.state_i, "key_j": self.state_j,
                "other_keys_totals": self.others,
                "order1": {"key_i": self.order1[0], "key_j": self.order1[1]},
                "order2": {"key_i": self.order2[0], "key_j": self.order2[1]},
                "keys_needed": self.keys_needed,
                "run": None if self.run is None else [[k, e] for k, e in self.run]}


@dataclass(frozen=True)
class CollectionReport:
    name: str
    verdict: str
    template: Any                     # the template's Report
    aggregates: list[str]
    cross_key_ok: bool
    pairs_checked: int
    configurations: int
    counterexample: CrossKeyCounterexample | None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.name, "verdict": self.verdict,
                "template": self.template.to_dict(), "aggregates": self.aggregates,
                "cross_key": {"ok": self.cross_key_ok, "pairs": self.pairs_checked,
                              "configurations": self.configurations,
                              "counterexample": (self.counterexample.to_dict()
                                                 if self.counterexample else None)},
                "seconds": {"total": self.seconds}}

    def summary(self) -> str:
        if self.ok:
            return f"{self.name}: pass"
        if self.counterexample is not None:
            a, b = self.counterexample.events
            return (f"{self.name}: fail: {a} and {b} on two keys do not commute "
                    f"(an aggregate admits only one)")
        return f"{self.name}: fail: {self.template.summary()}"

    def render_text(self) -> str:
        lines = [f"{self.name}: {self.verdict.upper()}  (collection of "
                 f"{self.template.machine!r}, any number of keys)"]
        lines.append(f"  template  {self.template.verdict}")
        for a in self.aggregates:
            lines.append(f"  aggregate {a}")
        if self.cross_key_ok:
            lines.append(f"  cross-key ok: {self.pairs_checked} event pairs commute on "
                         f"different keys at {self.configurations} configurations")
        else:
            c = self.counterexample
            assert c is not None
            lines.append(f"  cross-key FAIL: {c.events[0]} on key i and {c.events[1]} on "
                         f"key j do not commute (needs {c.keys_needed} keys)")
            lines.append(f"            key i {c.state_i}, key j {c.state_j}, "
                         f"other keys {c.others}")
            lines.append(f"            {c.events[0]} then {c.events[1]}: {c.order1}")
            lines.append(f"            {c.events[1]} then {c.events[0]}: {c.order2}")
            if c.run is not None:
                lines.append("            reached by " + ", ".join(
                    f"{e}@key{k}" for k, e in c.run))
        return "\n".join(lines)


class Collection:
    """A template machine per key plus aggregates; ``check()`` then ``build()``."""

    def __init__(self, name: str, template: Any) -> None:
        from .spec.model import MachineSpec
        from .spec.registry import Registry
        if isinstance(template, Registry):
            template = template.spec()
        if not isinstance(template, MachineSpec):
            raise SpecError(f"collection {name!r}: the template must be a Registry or a "
                            f"MachineSpec, got {template!r}")
        self.name = name
        self.template = template
        self.aggregates: list[Aggregate] = []

    def count(self, name: str, where: str, *, at_most: int) -> Collection:
        """At most ``at_most`` keys whose template state satisfies ``where``."""
        from .spec.expr import compile_predicate
        compile_predicate(where, self.template.var_map)   # typed now: errors point here
        self._add(Aggregate(name, _limit(name, at_most), where=where))
        return self

    def sum(self, name: str, field: str, *, at_most: int) -> Collection:
        """The sum over keys of the int var ``field`` is at most ``at_most``."""
        var = self.template.var_map.get(field)
        if var is None or var.kind != "int":
            raise SpecError(f"aggregate {name!r}: {field!r} is not an int var of the template")
        if var.lo < 0:
            raise SpecError(f"aggregate {name!r}: sum({field}) needs a field that is never "
                            f"negative (its range starts at {var.lo})")
        self._add(Aggregate(name, _limit(name, at_most), field=field))
        return self

    def _add(self, agg: Aggregate) -> None:
        if any(a.name == agg.name for a in self.aggregates):
            raise SpecError(f"duplicate aggregate name {agg.name!r}")
        self.aggregates.append(agg)

    def check(self) -> CollectionReport:
        from .engine.collection import check_collection
        return check_collection(self)

    def build(self) -> CollectionMachine:
        """The runtime; raises ConvergenceError when the check fails."""
        from .errors import ConvergenceError
        report = self.check()
        if not report.ok:
            raise ConvergenceError(report)  # type: ignore[arg-type]
        from .machine import Machine as _M
        return CollectionMachine(self, _M.from_spec(self.template), report)


def _limit(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"aggregate {name!r}: at_most must be an int >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class CollectionState:
    """Immutable: the template state id of every key that left its initial
    state (keys never touched are at the template's initial state), and the
    aggregate totals."""

    ids: Mapping[Any, int]
    totals: tuple[int, ...]

    def __hash__(self) -> int:
        return hash((frozenset(self.ids.items()), self.totals))


class CollectionMachine:
    """Applies events to keys with the template's tables and the aggregates'
    admission rule: ``apply(state, key, event)`` is O(1) in the number of keys."""

    def __init__(self, col: Collection, template: Machine, report: CollectionReport) -> None:
        self.collection = col
        self.template = template
        self.report = report
        self.aggregates = tuple(col.aggregates)
        self._contrib = contributions(col, template)
        self.initial = CollectionState({}, tuple(0 for _ in self.aggregates))
        init = template.initial.id
        self._init_contrib = tuple(int(c[init]) for c in self._contrib)
        if any(v > 0 for v in self._init_contrib):
            # a key at the initial state already counts: totals depend on how
            # many keys exist, so the collection must be told its keys
            self._keys_matter = True
        else:
            self._keys_matter = False

    def state_of(self, state: CollectionState, key: Any) -> State:
        return self.template.state(state.ids.get(key, self.template.initial.id))

    def apply(self, state: CollectionState, key: Any, event: str, *args: Any) -> CollectionState:
        """The collection after ``event`` on ``key``; unchanged when refused by
        an aggregate (or a false guard)."""
        if self._keys_matter:
            raise MachineUsageError("the template's initial state counts in an aggregate: "
                                    "the totals depend on the number of keys, which this "
                                    "collection does not fix")
        t = self.template
        old = state.ids.get(key, t.initial.id)
        if args:
            event = t.instance(event, *args)
        new = t.apply_id(old, event)
        if new == old:
            return state
        totals = tuple(tot - int(c[old]) + int(c[new])
                       for tot, c in zip(state.totals, self._contrib))
        if any(tot > a.limit for tot, a in zip(totals, self.aggregates)):
            return state
        ids = dict(state.ids)
        if new == t.initial.id:
            ids.pop(key, None)
        else:
            ids[key] = new
        return CollectionState(ids, totals)

    def run(self, steps: Iterable[tuple[Any, str]],
            state: CollectionState | None = None) -> CollectionState:
        s = self.initial if state is None else state
        for key, event in steps:
            s = self.apply(s, key, event)
        return s

    def decode(self, state: CollectionState) -> dict[Any, dict[str, Any]]:
        return {k: self.template.decode(i) for k, i in state.ids.items()}


def contributions(col: Collection, template: Machine) -> list[np.ndarray]:
    """Per aggregate, each template state's contribution (0/1 for a count,
    the field's value for a sum), over the template's state ids."""
    from .engine.space import Space
    from .engine.tabulate import _columns, machine_of
    from .spec.expr import compile_predicate
    out = []
    spec = col.template
    n = template.size
    tm = machine_of(tuple(template.vars))
    # the engine's own columns: values in the mixed-radix order of state ids
    cols = _columns(tm, Space(tm.radices, range(len(tm.radices))))
    for a in col.aggregates:
        if a.field is not None:
            out.append(cols[a.field].astype(np.int64))
        else:
            pred = compile_predicate(a.where or "true", spec.var_map)
            assert pred.expr is not None
            values, err = pred.expr.eval_vec(cols, n=n)  # type: ignore[call-arg]
            if err is not None and err.any():
                raise SpecError(f"aggregate {a.name!r}: '{a.where}' cannot be evaluated at "
                                "some state")
            out.append(np.asarray(values, dtype=np.int64))
    return out
