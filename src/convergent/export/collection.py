"""Collection machines as files (docs/export.md, docs/collections.md).

One JSON document (optionally gzip'd)::

    {"format": "convergent-collection", "format_version": 1,
     "name": ..., "key": ..., "key_type": "str" | "int",
     "admission": "shared" | "escrow",
     "aggregates": [{"name", "kind": "count" | "sum", "source", "limit"}],
     "contributions": [[int per template state], ...],    # one row per aggregate
     "verification": {...},        # the collection report, as check --json prints it
     "template": {...},            # the template, exactly as a machine JSON export
     "hash": "<sha256>"}

``template`` is a whole machine file (its own tables and content hash), so
the template loads and verifies with the machine code. ``contributions``
carries what each template state adds to each aggregate, so a runtime in
another language applies the admission rule without an expression
evaluator. ``hash`` is SHA-256 over the canonical JSON of every other key,
with ``template`` replaced by the template's own content hash (which covers
its tables).
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
    import argparse

    from ..collection import Collection, CollectionMachine

__all__ = ["COLLECTION_FORMAT", "COLLECTION_FORMAT_VERSION", "MAX_COLLECTION_BYTES",
           "cli_export", "collection_document", "collection_from_document",
           "export_collection", "load_collection"]

COLLECTION_FORMAT = "convergent-collection"
COLLECTION_FORMAT_VERSION = 1
MAX_COLLECTION_BYTES = 1 << 30
"""A collection file is read whole (JSON); a bigger one is refused unread."""

_KEYS = ("format", "format_version", "name", "key", "key_type", "admission", "aggregates",
         "contributions", "verification", "template", "hash")


def _hash(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k not in ("hash", "template")}
    body["template_hash"] = doc["template"]["hash"]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def collection_document(cm: CollectionMachine, *,
                        allow_unverified: bool = False) -> dict[str, Any]:
    """The file's content as a JSON-ready dict.

    Raises:
        ExportError: the collection's check did not pass (unless
            ``allow_unverified``: the document then says so).
    """
    from ..collection import CollectionMachine
    if not isinstance(cm, CollectionMachine):
        raise ExportError(f"export_collection needs a CollectionMachine, got "
                          f"{type(cm).__name__}")
    if not cm.verified and not allow_unverified:
        raise ExportError(f"collection {cm.name!r} did not pass its check; export it anyway "
                          "with allow_unverified=True, and its file will say so")
    doc: dict[str, Any] = {
        "format": COLLECTION_FORMAT,
        "format_version": COLLECTION_FORMAT_VERSION,
        "name": cm.name,
        "key": cm.key,
        "key_type": cm.key_type,
        "admission": cm.admission,
        "aggregates": [{"name": a.name, "kind": "sum" if a.field is not None else "count",
                        "source": a.field if a.field is not None else a.where,
                        "limit": a.limit} for a in cm.aggregates],
        "contributions": [c.tolist() for c in cm.contributions],
        "verification": {"verified": cm.verified,
                         "report": cm.verification if cm.verification is not None else None},
        "template": machine_document(cm.template),
    }
    doc["hash"] = _hash(doc)
    return doc


def export_collection(cm: CollectionMachine, path: str | os.PathLike[str], *,
                      allow_unverified: bool = False, compresslevel: int = 6) -> str:
    """Write ``cm`` to ``path`` (gzip'd when the name ends in ``.gz``), through
    a temporary file renamed into place; returns the content hash.

    Raises:
        ExportError: unverified (see ``collection_document``), bad level.
    """
    if not 1 <= compresslevel <= 9:
        raise ExportError(f"compresslevel={compresslevel!r} (expected 1..9)")
    doc = collection_document(cm, allow_unverified=allow_unverified)
    path = os.fspath(path)
    write_document(path, doc, gz=path.lower().endswith(".gz"), compresslevel=compresslevel)
    return str(doc["hash"])


def load_collection(path: str | os.PathLike[str], *, verify: bool = True,
                    allow_unverified: bool = False) -> CollectionMachine:
    """Read a collection file written by ``export_collection``.

    Raises:
        MachineFileError: not such a file, corrupt, edited (hash), unverified.
        OSError: the file cannot be read.
    """
    return read_document(os.fspath(path), max_bytes=MAX_COLLECTION_BYTES,
                         build=lambda doc: collection_from_document(
                             doc, verify=verify, allow_unverified=allow_unverified))


def _bad(what: str) -> MachineFileError:
    return MachineFileError(f"not a valid collection file: {what}", reason="format")


def collection_from_document(doc: Any, *, verify: bool = True,
                             allow_unverified: bool = False) -> CollectionMachine:
    """The CollectionMachine a document describes; every field is checked
    before anything is built.

    Raises:
        MachineFileError: see ``load_collection``.
    """
    from ..collection import Aggregate, CollectionMachine
    from ..errors import SpecError
    from ._json import machine_from_json
    doc = check_header(doc, fmt=COLLECTION_FORMAT, version=COLLECTION_FORMAT_VERSION, keys=_KEYS, what="collection")
    for k in ("name", "key", "key_type", "admission", "hash"):
        if not isinstance(doc[k], str):
            raise _bad(f"{k} must be a string")
    if not isinstance(doc["template"], Mapping) or not isinstance(doc["template"].get("hash"),
                                                                   str):
        raise _bad("template must be a machine document with its hash")
    if verify and _hash(doc) != doc["hash"]:
        raise MachineFileError(f"content hash mismatch: the file says {doc['hash']}, its "
                               "content gives another (edited or corrupt)", reason="hash")
    ver = doc["verification"]
    if not isinstance(ver, Mapping) or not isinstance(ver.get("verified"), bool):
        raise _bad("verification must say whether the collection is verified")
    if not ver["verified"] and not allow_unverified:
        raise MachineFileError(f"collection {doc['name']!r} did not pass its check; load it "
                               "anyway with allow_unverified=True", reason="unverified")
    report = ver.get("report")
    if report is not None and not isinstance(report, Mapping):
        raise _bad("verification.report must be an object or null")
    aggs = doc["aggregates"]
    if not isinstance(aggs, list):
        raise _bad("aggregates must be a list")
    aggregates = []
    for a in aggs:
        if not isinstance(a, Mapping) or set(a) != {"name", "kind", "source", "limit"} \
                or a["kind"] not in ("count", "sum") or not isinstance(a["name"], str) \
                or not isinstance(a["source"], str) or isinstance(a["limit"], bool) \
                or not isinstance(a["limit"], int) or a["limit"] < 0:
            raise _bad(f"aggregate {a!r} (expected name, kind count|sum, source, limit >= 0)")
        aggregates.append(Aggregate(a["name"], a["limit"],
                                    where=a["source"] if a["kind"] == "count" else None,
                                    field=a["source"] if a["kind"] == "sum" else None))
    try:
        template = machine_from_json(doc["template"], verify=verify,
                                     allow_unverified=allow_unverified, extra_meta={})
    except MachineFileError:
        raise
    except lite.LiteError as exc:
        raise MachineFileError(f"template: {exc}", reason=exc.reason) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"template ({exc!r})") from None
    rows = doc["contributions"]
    if not isinstance(rows, list) or len(rows) != len(aggregates) or not all(
            isinstance(r, list) and len(r) == template.size
            and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**53
                    for x in r) for r in rows):
        raise _bad(f"contributions must be {len(aggregates)} lists of {template.size} ints "
                   "in [0, 2**53)")
    names = {v.name for v in template.vars}
    for a in aggregates:
        if a.field is not None and a.field not in names:
            raise _bad(f"aggregate {a.name!r} sums {a.field!r}, not a template var")
    try:
        return CollectionMachine.from_parts(
            doc["name"], template, aggregates, [np.asarray(r, dtype=np.int64) for r in rows],
            key=doc["key"], key_type=doc["key_type"], admission=doc["admission"],
            verification=(dict(report) if report is not None
                          else {"verdict": "pass" if ver["verified"] else "fail"}))
    except SpecError as exc:
        raise _bad(str(exc)) from None


def cli_export(col: Collection, args: argparse.Namespace) -> int:
    """``convergent export`` of a spec file with a ``collection:`` block: check
    it and write the collection file. Exit 0 written, 1 the check failed (and
    no ``--allow-unverified``), 2 bad input (raised as ExportError)."""
    import sys
    low = str(args.output).lower()
    if args.format not in (None, "json", "json.gz") or not (
            low.endswith(".json") or low.endswith(".json.gz") or args.format):
        raise ExportError(f"a collection is written as JSON: name the file .json or "
                          f".json.gz (got {args.output!r}, format {args.format!r})")
    cm = col.build(allow_unverified=True)
    if not cm.verified and not args.allow_unverified:
        assert cm.report is not None
        print(f"error: {cm.report.summary()}", file=sys.stderr)
        print("not exported: the collection did not pass its check; --allow-unverified "
              "writes it anyway, marked unverified", file=sys.stderr)
        return 1
    path = str(args.output)
    if args.format == "json.gz" and not low.endswith(".gz"):
        path += ".gz"
    digest = export_collection(cm, path, allow_unverified=args.allow_unverified)
    status = "verified" if cm.verified else "UNVERIFIED"
    print(f"wrote {path} (collection {cm.name!r} of {cm.template.name!r}, "
          f"{len(cm.aggregates)} aggregates, {os.path.getsize(path)} bytes, {status}, "
          f"{digest})")
    return 0
