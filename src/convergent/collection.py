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
   needs, and comes with a run that reaches it when one exists;
3. same-key commutation under the aggregates: every declared independent pair
   of the template, on one key, at every such configuration (the template's
   CC1 proves the pair commutes without aggregates, but a limit may admit one
   order's first step and refuse the other's).

Admission across replicas (``admission``): ``shared`` (each replica judges
against its whole collection; the verdict needs 1-3) or ``escrow`` (each
replica judges against its own share of every limit; the verdict needs 1).
The replica runtime is ``convergent.runtime.collection``; files are
``convergent.export.collection``; the spec-file block is
``convergent.spec.collection``. docs/collections.md has the arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MachineUsageError, SpecError
from .machine import Machine, State
from .spec.collection import ADMISSIONS, KEY_TYPES


__all__ = ["ADMISSIONS", "Aggregate", "Collection", "CollectionMachine", "CollectionReport",
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
    #: both events on one key (a declared independent pair of the template
    #: that an aggregate makes order-dependent); then key j is key i
    same_key: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"events": list(self.events), "same_key": self.same_key,
                "key_i": self.state_i, "key_j": self.state_j,
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
    #: ``"shared"``: every replica admits against the whole collection (the
    #: verdict needs cross-key commutation); ``"escrow"``: each replica admits
    #: against its own share of every limit (the verdict needs the template)
    admission: str = "shared"
    key: str = "key"
    #: why the cross-key check was not run (escrow only: its verdict does not
    #: need it), else None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.name, "verdict": self.verdict, "key": self.key,
                "admission": self.admission,
                "template": self.template.to_dict(), "aggregates": self.aggregates,
                "cross_key": {"ok": self.cross_key_ok, "skipped": self.skipped,
                              "pairs": self.pairs_checked,
                              "configurations": self.configurations,
                              "counterexample": (self.counterexample.to_dict()
                                                 if self.counterexample else None)},
                "seconds": {"total": self.seconds}}

    def to_json(self, indent: int | None = 2) -> str:
        import json
        return json.dumps(self.to_dict(), indent=indent)

    def summary(self) -> str:
        if self.ok:
            return f"{self.name}: pass"
        if self.counterexample is not None and self.admission != "escrow":
            a, b = self.counterexample.events
            where = "one key" if self.counterexample.same_key else "two keys"
            return (f"{self.name}: fail: {a} and {b} on {where} do not commute "
                    f"(an aggregate admits only one order)")
        return f"{self.name}: fail: {self.template.summary()}"

    def render_text(self) -> str:
        k = self.key
        lines = [f"{self.name}: {self.verdict.upper()}  (collection of "
                 f"{self.template.machine!r} per {k}, any number of {k}s, "
                 f"{self.admission} admission)"]
        lines.append(f"  template  {self.template.verdict}")
        if not self.template.ok:
            lines.append("            " + self.template.summary())
        for a in self.aggregates:
            lines.append(f"  aggregate {a}")
        c = self.counterexample
        if self.admission == "escrow" and self.aggregates:
            lines.append("  escrow    each replica admits only within its own share of "
                         "every limit: the limits hold and replicas converge")
            if self.skipped is not None:
                lines.append(f"            (cross-key races not computed: {self.skipped})")
            elif c is not None:
                where = f"one {k}" if c.same_key else f"two {k}s"
                lines.append(f"            (without escrow, {c.events[0]} and {c.events[1]} "
                             f"on {where} would race once {_keys(c.keys_needed, k)} exist)")
            return "\n".join(lines)
        if self.cross_key_ok:
            lines.append(f"  cross-key ok: {self.pairs_checked} event pairs commute on "
                         f"different {k}s at {self.configurations} configurations")
            return "\n".join(lines)
        assert c is not None
        e, f = c.events
        if c.same_key:
            lines.append(f"  same-key FAIL: {e} and {f} on one {k} do not commute under "
                         f"the aggregates (needs {_keys(c.keys_needed, k)})")
            lines.append(f"            {k} i: {c.state_i}; the other {k}s' totals: {c.others}")
            lines.append(f"            {e} then {f}: {c.order1[0]}")
            lines.append(f"            {f} then {e}: {c.order2[0]}")
        else:
            lines.append(f"  cross-key FAIL: {e} on {k} i and {f} on {k} j do not commute "
                         f"(needs {_keys(c.keys_needed, k)})")
            lines.append(f"            {k} i: {c.state_i}, {k} j: {c.state_j}; the other "
                         f"{k}s' totals: {c.others}")
            lines.append(f"            {e}@i then {f}@j: i {c.order1[0]}, j {c.order1[1]}")
            lines.append(f"            {f}@j then {e}@i: i {c.order2[0]}, j {c.order2[1]}")
        if c.run == []:
            lines.append(f"            reached with every {k} at its initial state")
        elif c.run is not None:
            names = {0: "i", 1: "j"} if not c.same_key else {0: "i"}
            steps = [f"{ev}@{names.get(key, f'{k}{key}')}" for key, ev in c.run]
            shown = steps if len(steps) <= 16 else steps[:12] + [
                f"... ({len(steps) - 14} more)"] + steps[-2:]
            lines.append("            reached by " + ", ".join(shown))
        return "\n".join(lines)


class Collection:
    """A template machine per key plus aggregates; ``check()`` then ``build()``."""

    def __init__(self, name: str, template: Any, *, key: str = "key",
                 key_type: str = "str", admission: str = "shared") -> None:
        from .spec.collection import CollectionSpec
        from .spec.model import MachineSpec
        from .spec.registry import Registry
        if isinstance(template, Registry):
            template = template.spec()
        if isinstance(template, CollectionSpec):
            template = template.template()
        if not isinstance(template, MachineSpec):
            raise SpecError(f"collection {name!r}: the template must be a Registry or a "
                            f"MachineSpec, got {template!r}")
        if key_type not in KEY_TYPES:
            raise SpecError(f"collection {name!r}: key_type={key_type!r} (expected one of: "
                            f"{', '.join(KEY_TYPES)})")
        self.name = name
        self.template = template
        self.key = key
        if admission not in ADMISSIONS:
            raise SpecError(f"collection {name!r}: admission={admission!r} (expected one of: "
                            f"{', '.join(ADMISSIONS)})")
        #: how replicas admit events against the aggregates (see CollectionReport)
        self.admission = admission
        #: what keys are: ``"str"`` or ``"int"`` (both cross a process boundary as JSON)
        self.key_type = key_type
        self.aggregates: list[Aggregate] = []

    @classmethod
    def from_spec(cls, spec: Any) -> Collection:
        """The collection a spec file declares (its ``collection:`` block; the
        rest of the file is the template). See ``convergent.spec.collection``."""
        from .spec.collection import CollectionSpec
        if not isinstance(spec, CollectionSpec):
            raise SpecError(f"spec {getattr(spec, 'name', spec)!r} has no collection block")
        return spec.to_collection()

    @staticmethod
    def declared_in(spec: Any) -> bool:
        """Whether a loaded spec declares a collection (a ``collection:`` block)."""
        from .spec.collection import collection_of
        return collection_of(spec) is not None

    def key_ok(self, key: Any) -> bool:
        """Whether ``key`` is a key of this collection's type (bool is no int)."""
        if self.key_type == "int":
            return isinstance(key, int) and not isinstance(key, bool)
        return isinstance(key, str)

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

    def build(self, *, allow_unverified: bool = False) -> CollectionMachine:
        """The runtime.

        Raises:
            ConvergenceError: the check fails (unless ``allow_unverified``:
                the machine then says ``verified`` False, and shared-admission
                replicas refuse it).
            BuildError: the template's repairs do not terminate (no tables).
        """
        from .engine.check import analyze
        from .errors import BuildError, ConvergenceError
        report = self.check()
        if not report.ok and not allow_unverified:
            raise ConvergenceError(report)  # type: ignore[arg-type]
        an = analyze(self.template)
        if an.step is None:
            raise BuildError(f"collection {self.name!r}: the template's repairs do not "
                             "terminate (WFC fails): there are no tables to run")
        return CollectionMachine(self, Machine._from_analysis(an), report)


def _keys(n: int, word: str = "key") -> str:
    return f"1 {word}" if n == 1 else f"{n} {word}s"


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
        self.collection: Collection | None = col
        self._setup(col.name, template, tuple(col.aggregates), contributions(col, template),
                    key=col.key, key_type=col.key_type, admission=col.admission,
                    report=report,
                    verification=report.to_dict() if report is not None else None)

    @classmethod
    def from_parts(cls, name: str, template: Machine, aggregates: Sequence[Aggregate],
                   contrib: Sequence[np.ndarray], *, key: str = "key", key_type: str = "str",
                   admission: str = "shared",
                   verification: Mapping[str, Any] | None = None) -> CollectionMachine:
        """A collection machine from its tables alone (no spec): what a file
        holds (``convergent.export.collection``). ``contrib`` gives, per
        aggregate, each template state's contribution."""
        if key_type not in KEY_TYPES or admission not in ADMISSIONS:
            raise SpecError(f"key_type={key_type!r}, admission={admission!r} (expected "
                            f"str|int and one of {', '.join(ADMISSIONS)})")
        if len(contrib) != len(aggregates):
            raise SpecError(f"{len(aggregates)} aggregates but {len(contrib)} contribution "
                            "tables")
        tables = []
        for a, c in zip(aggregates, contrib):
            arr = np.asarray(c, dtype=np.int64)
            if arr.shape != (template.size,) or (arr.size and arr.min() < 0):
                raise SpecError(f"aggregate {a.name!r}: contributions must be "
                                f"{template.size} ints >= 0")
            tables.append(arr)
        cm = cls.__new__(cls)
        cm.collection = None
        cm._setup(name, template, tuple(aggregates), tables, key=key, key_type=key_type,
                  admission=admission, report=None,
                  verification=dict(verification) if verification is not None else None)
        return cm

    def _setup(self, name: str, template: Machine, aggregates: tuple[Aggregate, ...],
               contrib: list[np.ndarray], *, key: str, key_type: str, admission: str,
               report: CollectionReport | None,
               verification: dict[str, Any] | None) -> None:
        self.name = name
        self.template = template
        self.report = report
        #: the report as a dict (``report.to_dict()``, or what a loaded file said)
        self.verification = verification
        self.aggregates = aggregates
        self.key = key
        self.key_type = key_type
        self.admission = admission
        for c in contrib:
            c.setflags(write=False)
        self._contrib = contrib
        self.initial = CollectionState({}, tuple(0 for _ in self.aggregates))
        init = template.initial.id
        self._init_contrib = tuple(int(c[init]) for c in self._contrib)
        # a key at the initial state already counting would make the totals
        # depend on how many keys exist: the collection must then be told its
        # keys, which it is not (apply refuses)
        self._keys_matter = any(v > 0 for v in self._init_contrib)

    @property
    def initial_counts(self) -> bool:
        """Whether a key at the template's initial state already counts in an
        aggregate (then totals depend on how many keys exist: ``apply`` and
        replicas refuse to run)."""
        return self._keys_matter

    @property
    def contributions(self) -> tuple[np.ndarray, ...]:
        """Per aggregate, each template state's contribution (read-only)."""
        return tuple(self._contrib)

    @property
    def verified(self) -> bool:
        """Whether the collection's check passed (as built, or as its file says)."""
        if self.report is not None:
            return self.report.ok
        return bool(self.verification and self.verification.get("verdict") == "pass")

    def contribution(self, state_id: int) -> tuple[int, ...]:
        """What one key at template state ``state_id`` adds to each aggregate."""
        return tuple(int(c[state_id]) for c in self._contrib)

    def key_ok(self, key: Any) -> bool:
        """Whether ``key`` is a key of this collection's type (bool is no int)."""
        if self.key_type == "int":
            return isinstance(key, int) and not isinstance(key, bool)
        return isinstance(key, str)

    def _content(self) -> tuple[Any, ...]:
        t = self.template
        return (self.name, self.key, self.key_type, self.admission, self.aggregates,
                tuple(c.tobytes() for c in self._contrib), t.name, t.version,
                tuple(repr(v.to_dict()) for v in t.vars), tuple(t.events),
                t.initial.id, np.asarray(t.tables, dtype=np.int64).tobytes(), self.verified)

    def __eq__(self, other: object) -> bool:
        """Same collection: name, key, admission, aggregates, contributions,
        template tables and verdict (not the timing of the check)."""
        if not isinstance(other, CollectionMachine):
            return NotImplemented
        return self._content() == other._content()

    def __hash__(self) -> int:
        return hash(self._content()[:4])

    def __repr__(self) -> str:
        return (f"CollectionMachine({self.name!r} of {self.template.name!r} per {self.key}, "
                f"{len(self.aggregates)} aggregates, {self.admission} admission)")

    def export(self, path: str, **options: Any) -> str:
        """Write this collection to a JSON file (``.gz``: gzip'd); returns the
        content hash. See ``convergent.export.collection.export_collection``."""
        from .export.collection import export_collection
        return export_collection(self, path, **options)

    @classmethod
    def load(cls, path: str, **options: Any) -> CollectionMachine:
        """Read a file written by ``export``; see
        ``convergent.export.collection.load_collection``."""
        from .export.collection import load_collection
        return load_collection(path, **options)

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
