"""The ``collection:`` block of a spec file: a machine per key, plus
aggregates across keys (docs/collections.md).

A spec with a top-level ``collection`` key describes a collection whose
template (the machine of one key) is the spec itself: its ``machine``,
``vars``, ``initial``, ``invariants``, ``events`` and ``independent`` keep
exactly the meaning they have in any spec. The block adds only this::

    collection:
      name: accounts              # required, identifier
      key: customer               # required: the key's name (keys are strings),
                                  # or {name: customer, type: int}
      admission: escrow           # optional: shared (default) | escrow
      aggregates:                 # optional list (none: keys never interact)
        - name: capacity
          sum: credit             # an int var of the template, never negative
          at_most: 10
        - name: open_accounts
          count: status == 'open' # a predicate of the template
          at_most: 3

A spec without the key loads exactly as before (the loader hands the
document here only when the key is present), so the addition is purely
additive. Every problem is collected with its ``file:line:column``, together
with the template's own problems, and raised in one ``SpecError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .loader import _Loader, _plain, _show
from .model import EvalError, Location, MachineSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..collection import Collection

__all__ = ["ADMISSIONS", "AggregateDecl", "CollectionDecl", "CollectionSpec", "KEY_TYPES",
           "collection_of", "read_collection"]

KEY_TYPES = ("str", "int")
"""What a key may be: both cross process boundaries as JSON scalars."""

ADMISSIONS = ("shared", "escrow")
"""How replicas admit an event against the aggregates (docs/collections.md)."""

_BLOCK_KEYS = ("name", "key", "admission", "aggregates")
_KEY_KEYS = ("name", "type")
_AGGREGATE_KEYS = ("name", "count", "sum", "at_most")


@dataclass(frozen=True)
class AggregateDecl:
    """``count: <predicate>`` or ``sum: <int var>``, ``at_most: <int >= 0>``."""

    name: str
    kind: str                     # "count" | "sum"
    source: str                   # the predicate's text, or the summed var's name
    limit: int
    where: Location = Location()


@dataclass(frozen=True)
class CollectionDecl:
    """The ``collection:`` block, validated."""

    name: str
    key: str
    key_type: str = "str"
    admission: str = "shared"
    aggregates: tuple[AggregateDecl, ...] = ()
    where: Location = Location()


@dataclass(frozen=True)
class CollectionSpec(MachineSpec):
    """A spec file with a ``collection:`` block: the spec itself is the
    template (every inherited field means what it means in any spec), and
    ``collection`` says how keys and aggregates are declared."""

    collection: CollectionDecl | None = None

    def template(self) -> MachineSpec:
        """The template as a plain ``MachineSpec`` (the collection block removed)."""
        return MachineSpec(**{f.name: getattr(self, f.name) for f in fields(MachineSpec)})

    def to_collection(self) -> Collection:
        """The ``Collection`` this file declares (aggregates in file order)."""
        from ..collection import Collection
        decl = self.collection
        if decl is None:
            raise SpecError(f"spec {self.name!r} declares no collection")
        col = Collection(decl.name, self.template(), key=decl.key, key_type=decl.key_type,
                         admission=decl.admission)
        for a in decl.aggregates:
            if a.kind == "sum":
                col.sum(a.name, a.source, at_most=a.limit)
            else:
                col.count(a.name, a.source, at_most=a.limit)
        return col


def collection_of(spec: Any) -> CollectionDecl | None:
    """The collection a loaded spec declares, or None for any other spec."""
    return spec.collection if isinstance(spec, CollectionSpec) else None


def read_collection(loader: _Loader, data: Mapping[str, Any]) -> CollectionSpec:
    """Load a document whose top level has a ``collection`` key: the rest is
    the template, loaded by the ordinary loader, and the block is checked
    against it; all problems of both are raised together."""
    top: Any = data
    block = top["collection"]
    block_at = loader.at(top, "collection")
    del top["collection"]     # the template must not see a key it does not know
    spec: MachineSpec | None
    try:
        spec = loader.machine(top)
    except SpecError:
        spec = None           # its problems are in loader.problems; carry on checking
    loader.params = {}
    node = loader.mapping(block, _value_at(loader, block, block_at), "collection")
    decl = None
    if node is not None:
        decl = _block(loader, node, block_at, spec)
    if loader.problems or spec is None or decl is None:
        raise SpecError(loader.problems)
    values = {f.name: getattr(spec, f.name) for f in fields(MachineSpec)}
    return CollectionSpec(**values, collection=decl)


def _value_at(loader: _Loader, node: Any, fallback: Location) -> Location:
    """Where a block's value starts (its own position when it has one)."""
    return loader.at(node) if getattr(node, "lc", None) is not None else fallback


def _block(loader: _Loader, node: Mapping[str, Any], where: Location,
           spec: MachineSpec | None) -> CollectionDecl | None:
    loader.keys(node, _BLOCK_KEYS, ("name", "key"), "the collection block")
    ok = True
    name = _plain(node.get("name"))
    if "name" in node:
        ok &= loader.identifier(name, loader.at(node, "name", value=True), "collection")
    else:
        ok = False
    key, key_type = "key", "str"
    if "key" in node:
        got = _key(loader, node)
        if got is None:
            ok = False
        else:
            key, key_type = got
    else:
        ok = False
    admission = _plain(node.get("admission", "shared"))
    if admission not in ADMISSIONS:
        loader.problem(loader.at(node, "admission", value=True),
                       f"admission {_show(admission)} (expected one of: {', '.join(ADMISSIONS)})")
        ok = False
    aggregates: list[AggregateDecl] = []
    if "aggregates" in node:
        items = node["aggregates"]
        at = loader.at(node, "aggregates", value=True)
        if not isinstance(items, list):
            loader.problem(at, f"aggregates must be a list, got {_show(items)}")
            ok = False
        else:
            seen: dict[str, Location] = {}
            for i, item in enumerate(items):
                agg = _aggregate(loader, item, loader.at(items, item=i), spec, seen)
                if agg is None:
                    ok = False
                else:
                    aggregates.append(agg)
    if not ok:
        return None
    return CollectionDecl(name=name, key=key, key_type=key_type, admission=admission,
                          aggregates=tuple(aggregates), where=where)


def _key(loader: _Loader, node: Mapping[str, Any]) -> tuple[str, str] | None:
    value = node["key"]
    at = loader.at(node, "key", value=True)
    if isinstance(value, Mapping):
        loader.keys(value, _KEY_KEYS, ("name",), "the collection's key")
        if "name" not in value:
            return None
        name = _plain(value["name"])
        if not loader.identifier(name, loader.at(value, "name", value=True), "key"):
            return None
        kind = _plain(value.get("type", "str"))
        if kind not in KEY_TYPES:
            loader.problem(loader.at(value, "type", value=True),
                           f"key type {_show(kind)} (expected one of: {', '.join(KEY_TYPES)})")
            return None
        return name, kind
    name = _plain(value)
    if not loader.identifier(name, at, "key"):
        return None
    return name, "str"


def _aggregate(loader: _Loader, item: Any, at: Location, spec: MachineSpec | None,
               seen: dict[str, Location]) -> AggregateDecl | None:
    node = loader.mapping(item, at, "an aggregate")
    if node is None:
        return None
    loader.keys(node, _AGGREGATE_KEYS, ("name", "at_most"), "an aggregate")
    name = _plain(node.get("name"))
    ok = "name" in node and loader.identifier(name, loader.at(node, "name", value=True),
                                              "aggregate")
    if ok:
        loader.unique(seen, name, loader.at(node, "name", value=True), "aggregate")
    label = f"aggregate '{name}'" if ok else "an aggregate"
    limit = _plain(node.get("at_most"))
    if "at_most" in node and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        loader.problem(loader.at(node, "at_most", value=True),
                       f"{label}: at_most={_show(limit)} (expected an int >= 0)")
        ok = False
    kinds = [k for k in ("count", "sum") if k in node]
    if len(kinds) != 1:
        loader.problem(at, f"{label}: give exactly one of 'count: <predicate>' or "
                           f"'sum: <int var>' (got {len(kinds)})")
        return None
    kind = kinds[0]
    value_at = loader.at(node, kind, value=True)
    initial = spec.initial if spec is not None else None
    if kind == "sum":
        field = _plain(node["sum"])
        var = loader.vars.get(field) if isinstance(field, str) else None
        if var is None:
            if not (isinstance(field, str) and field in loader.broken_vars):
                loader.problem(value_at, f"{label}: sum of {_show(field)}, which is not a "
                                         f"var of the template ({loader.known_vars(str(field))})")
            return None
        if var.kind != "int":
            loader.problem(value_at, f"{label}: sum of '{field}', a {var.kind} var "
                                     "(expected an int var)")
            return None
        if var.lo < 0:
            loader.problem(value_at, f"{label}: sum of '{field}', whose range starts at "
                                     f"{var.lo} (the field must never be negative)")
            return None
        if initial is not None and initial.get(field, 0) != 0:
            loader.problem(value_at, f"{label}: '{field}' is {initial[field]} at the initial "
                                     "state, so the total would depend on how many keys "
                                     "exist (a key nobody touched must contribute 0)")
            return None
        source = field
    else:
        pred = loader.predicate(node, "count", label)
        if pred is None:
            return None
        source = pred.text
        if spec is not None:
            try:
                counts = pred.evaluate(spec.var_map, spec.initial)
            except EvalError:   # (a division by zero there) the engine reports it
                counts = False
            if counts:
                loader.problem(value_at, f"{label}: '{source}' holds at the initial state, so "
                                         "the count would depend on how many keys exist "
                                         "(count a state keys reach by an event)")
                return None
    if not ok:
        return None
    return AggregateDecl(name=name, kind=kind, source=source, limit=limit, where=at)
