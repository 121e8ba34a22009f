"""Composed machines as files (docs/export.md, docs/composition.md).

A machine checked by components has no product table (2^64 states would not
fit anywhere), so its file holds the components, each a whole machine file
with its own tables and content hash, and what ties them together::

    {"format": "convergent-composed", "format_version": 1,
     "name": ..., "version": ...,
     "vars": [...],                  # every var, in spec order, as machine files write them
     "constants": {var: value},      # vars no rule touches
     "events": [...],                # every event, in spec order
     "independent": [[a, b], ...],   # the declared pairs
     "families": {...} | null,
     "verification": {"verified": bool, "report": {...}},   # the whole report
     "components": [{...}, ...],     # machine files, as ``export`` writes them in JSON
     "hash": "<sha256>"}

A runtime applies an event with one lookup in the table of the component that
holds it; a var is read from any component that holds it (read-only vars
shared by components hold the same value in each). ``hash`` is SHA-256 over
the canonical JSON of every other key, with each component replaced by its
own content hash (which covers its tables). The loader checks every field,
every component's hash, and that the components fit: each var of a component
is a var of the machine with the same encoding, each event is in exactly one
component, every var is in a component or a constant, and a var held by
several components is never written by any of them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import lite
from ._document import check_header, machine_document, read_document, write_document
from ._errors import ExportError, MachineFileError

if TYPE_CHECKING:  # pragma: no cover
    from ..composed import ComposedMachine
    from ..machine import Machine

__all__ = ["COMPOSED_FORMAT", "COMPOSED_FORMAT_VERSION", "MAX_COMPOSED_BYTES",
           "composed_document", "composed_from_document", "export_composed",
           "load_composed"]

COMPOSED_FORMAT = "convergent-composed"
COMPOSED_FORMAT_VERSION = 1
MAX_COMPOSED_BYTES = 1 << 30
"""A composed file is read whole (JSON); a bigger one is refused unread."""
MAX_COMPONENTS = 1 << 16

_KEYS = ("format", "format_version", "name", "version", "vars", "constants", "events",
         "independent", "families", "verification", "components", "hash")


def _hash(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k not in ("hash", "components")}
    body["component_hashes"] = [c.get("hash") if isinstance(c, Mapping) else None
                                for c in doc["components"]]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def composed_document(m: ComposedMachine, *, allow_unverified: bool = False
                      ) -> dict[str, Any]:
    """The file's content as a JSON-ready dict.

    Raises:
        ExportError: the machine's check did not pass (unless
            ``allow_unverified``: the document then says so).
    """
    from ..composed import ComposedMachine
    from ._format import var_entry
    if not isinstance(m, ComposedMachine):
        raise ExportError(f"export_composed needs a ComposedMachine, got {type(m).__name__}")
    verified = m.report.ok
    if not verified and not allow_unverified:
        raise ExportError(f"machine {m.name!r} did not pass verification "
                          f"({m.report.summary()}); export it anyway with "
                          "allow_unverified=True, and its file will say it is unverified")
    families = {f.name: {"params": [var_entry(p) for p in f.params],
                         "instances": list(f.instances)} for f in m.families.values()}
    doc: dict[str, Any] = {
        "format": COMPOSED_FORMAT,
        "format_version": COMPOSED_FORMAT_VERSION,
        "name": m.name,
        "version": m.version,
        "vars": [var_entry(v) for v in m.vars],
        "constants": {k: _plain(v) for k, v in m._constants.items()},
        "events": list(m.events),
        "independent": [list(p) for p in _declared_pairs(m)],
        "families": families or None,
        "verification": {"verified": verified, "report": m.report.to_dict()},
        "components": [machine_document(c) for c in m.components],
    }
    doc["hash"] = _hash(doc)
    return doc


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _declared_pairs(m: ComposedMachine) -> list[tuple[str, str]]:
    at = {e: i for i, e in enumerate(m.events)}
    pairs = [tuple(sorted(p, key=at.__getitem__)) for p in m.independent]
    return sorted(((a, b) for a, b in pairs), key=lambda p: (at[p[0]], at[p[1]]))


def export_composed(m: ComposedMachine, path: str | os.PathLike[str], *,
                    format: str | None = None, allow_unverified: bool = False,
                    compresslevel: int = 6) -> str:
    """Write ``m`` to ``path`` as JSON (gzip'd when the name ends in ``.gz`` or
    ``format="json.gz"``), through a temporary file renamed into place;
    returns the content hash.

    Raises:
        ExportError: unverified, a format other than JSON, a bad level.
    """
    path = os.fspath(path)
    if format is None:
        low = path.lower()
        format = "json.gz" if low.endswith(".gz") else "json" if low.endswith(".json") else None
        if format is None:
            raise ExportError(f"a composed machine is written as JSON: end {path!r} in "
                              ".json or .json.gz (the binary .cvm format holds one table)")
    if format not in ("json", "json.gz"):
        raise ExportError(f"format={format!r}: a composed machine is written as json or "
                          "json.gz (its components are small; the binary format holds one "
                          "table)")
    if not 1 <= compresslevel <= 9:
        raise ExportError(f"compresslevel={compresslevel!r} (expected 1..9)")
    doc = composed_document(m, allow_unverified=allow_unverified)
    write_document(path, doc, gz=format == "json.gz", compresslevel=compresslevel)
    return str(doc["hash"])


def load_composed(path: str | os.PathLike[str], *, verify: bool = True,
                  allow_unverified: bool = False) -> ComposedMachine:
    """Read a file written by ``export_composed``.

    Raises:
        MachineFileError: not such a file, corrupt, edited (hash), components
            that do not fit together, unverified.
        OSError: the file cannot be read.
    """
    return read_document(os.fspath(path), max_bytes=MAX_COMPOSED_BYTES,
                         build=lambda doc: composed_from_document(
                             doc, verify=verify, allow_unverified=allow_unverified))


def _bad(what: str) -> MachineFileError:
    return MachineFileError(f"not a valid composed machine file: {what}", reason="format")


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _bad(f"{what} must be a list of strings")
    if len(set(value)) != len(value):
        raise _bad(f"{what} holds a name twice")
    return value


def composed_from_document(doc: Any, *, verify: bool = True,
                           allow_unverified: bool = False) -> ComposedMachine:
    """The ComposedMachine a document describes; every field is checked, and
    the components are checked to fit together, before anything is built.

    Raises:
        MachineFileError: see ``load_composed``.
    """
    from ..composed import ComposedMachine
    from ._format import families_from_meta, report_from_dict, var_entry, var_from_entry
    from ._json import machine_from_json
    doc = check_header(doc, fmt=COMPOSED_FORMAT, version=COMPOSED_FORMAT_VERSION, keys=_KEYS, what="composed machine")
    if not isinstance(doc["name"], str) or not isinstance(doc["hash"], str):
        raise _bad("name and hash must be strings")
    if isinstance(doc["version"], bool) or not isinstance(doc["version"], int):
        raise _bad("version must be an int")
    comps = doc["components"]
    if not isinstance(comps, list) or not 1 <= len(comps) <= MAX_COMPONENTS or not all(
            isinstance(c, Mapping) and isinstance(c.get("hash"), str) for c in comps):
        raise _bad(f"components must be 1..{MAX_COMPONENTS} machine documents with hashes")
    if verify and _hash(doc) != doc["hash"]:
        raise MachineFileError(f"content hash mismatch: the file says {doc['hash']}, its "
                               "content gives another (edited or corrupt)", reason="hash")
    ver = doc["verification"]
    if not isinstance(ver, Mapping) or not isinstance(ver.get("verified"), bool) \
            or not isinstance(ver.get("report"), Mapping):
        raise _bad("verification must hold verified (a bool) and the report")
    if not ver["verified"] and not allow_unverified:
        raise MachineFileError(f"machine {doc['name']!r} did not pass verification; load it "
                               "anyway with allow_unverified=True", reason="unverified")
    events = _strings(doc["events"], "events")
    if not isinstance(doc["vars"], list):
        raise _bad("vars must be a list")
    try:
        entries = [lite._check_var(d, i) for i, d in enumerate(doc["vars"])]
        vars_ = tuple(var_from_entry(v) for v in entries)
    except lite.LiteError as exc:
        raise _bad(f"vars ({exc})") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"vars ({exc!r})") from None
    by_name = {v.name: v for v in vars_}
    if len(by_name) != len(vars_):
        raise _bad("vars holds a name twice")
    constants = doc["constants"]
    if not isinstance(constants, Mapping):
        raise _bad("constants must be an object")
    for k, value in constants.items():
        if k not in by_name or value not in by_name[k].values:
            raise _bad(f"constant {k!r} = {value!r} is not a value of a var of the machine")
    try:
        machines = [machine_from_json(c, verify=verify, allow_unverified=allow_unverified,
                                      extra_meta={}) for c in comps]
    except lite.LiteError as exc:
        raise MachineFileError(f"component: {exc}", reason=exc.reason) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"component ({exc!r})") from None
    # the components must fit together
    holders: dict[str, int] = {}
    owner: dict[str, int] = {}
    for k, m in enumerate(machines):
        for v in m.vars:
            if v.name not in by_name or var_entry(v) != var_entry(by_name[v.name]):
                raise _bad(f"component {k} holds var {v.name!r}, which the machine does "
                           "not declare with that encoding")
            if v.name in constants:
                raise _bad(f"var {v.name!r} is both a constant and held by component {k}")
            holders[v.name] = holders.get(v.name, 0) + 1
        for e in m.events:
            if e not in events or e in owner:
                raise _bad(f"event {e!r} of component {k} is not an event of the machine, "
                           "or is held by two components")
            owner[e] = k
    missing_vars = [v.name for v in vars_ if v.name not in holders and v.name not in constants]
    if missing_vars or set(owner) != set(events):
        raise _bad(f"vars {missing_vars} are in no component, or events "
                   f"{sorted(set(events) - set(owner))} are in none")
    for k, m in enumerate(machines):
        shared = [i for i, v in enumerate(m.vars) if holders[v.name] > 1]
        if shared and _writes_any(m, shared):
            raise _bad(f"component {k} changes a var it shares with another component")
    pairs = doc["independent"]
    if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and set(p) <= set(events) for p in pairs):
        raise _bad("independent must be a list of [event, event] pairs")
    try:
        report = report_from_dict(ver["report"], events)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"corrupt verification report ({exc!r})") from None
    method = ver["report"].get("method")
    if isinstance(method, Mapping):
        import dataclasses
        report = dataclasses.replace(report, method=dict(method))
    out = ComposedMachine._from_parts(
        name=doc["name"], version=doc["version"], vars=vars_, events=tuple(events),
        report=report, components=tuple(machines), constants=dict(constants),
        independent=[(a, b) for a, b in pairs],
        families=families_from_meta(doc["families"], events))
    for k, m in enumerate(machines):
        ids = out.initial.ids
        shared_vals = {v.name: m.decode(ids[k])[v.name] for v in m.vars
                       if holders[v.name] > 1}
        for j, other in enumerate(machines[:k]):
            theirs = other.decode(ids[j])
            if any(theirs.get(n, x) != x for n, x in shared_vals.items()):
                raise _bad(f"components {j} and {k} start from different values of a "
                           "shared var")
    return out


def _writes_any(m: Machine, cols: list[int]) -> bool:
    """Whether a step or normal form of ``m`` changes one of these vars."""
    ids = np.arange(m.size, dtype=np.int64)
    tables = [np.asarray(m.nf_table, dtype=np.int64)] + [
        np.asarray(row, dtype=np.int64) for row in m._step]
    for i in cols:
        w = int(m._weights[i])
        r = m.vars[i].size
        before = (ids // w) % r
        if any(((t // w) % r != before).any() for t in tables):
            return True
    return False
