"""Machines as files: run a verified machine without the verifier.

Three formats (docs/export.md has the details, the hash included):

* ``json``: gsm's keys (``name``, ``version``, ``vars``, ``events``, ``nf``,
  ``step``, ``verification``) plus ``initial``, the encoding and a content
  hash; a runtime of twenty lines in any language reads it;
* ``json.gz``: the same, gzip'd;
* ``binary`` (``.cvm``): a small JSON header and the tables as raw
  little-endian arrays of the narrowest unsigned int type, memory-mapped by
  ``Machine.load``, for machines of 2**20 states and more.

``Machine.load`` also reads JSON files exported by gsm (Go). See
``convergent.lite`` for a runtime without numpy, and ``runtimes/js`` for one in
JavaScript.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import lite
from .._files import replacing
from ._document import GZIP_MAGIC, gunzipped, located
from ._errors import ExportError, MachineFileError

if TYPE_CHECKING:  # pragma: no cover
    from ..machine import Machine

__all__ = [
    "ExportError",
    "ExportInfo",
    "FORMATS",
    "MachineFileError",
    "content_hash",
    "export_machine",
    "export_registry",
    "load_machine",
]

FORMATS = ("json", "json.gz", "binary")


@dataclass(frozen=True)
class ExportInfo:
    """What ``export_machine`` wrote."""

    path: str
    format: str
    content_hash: str
    bytes: int
    states: int
    events: int
    verified: bool


def _format_for(path: str, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise ExportError(f"format={format!r} (expected one of {', '.join(FORMATS)})")
        return format
    low = path.lower()
    if low.endswith(".gz"):
        return "json.gz"
    if low.endswith(".json"):
        return "json"
    if low.endswith((".cvm", ".bin")):
        return "binary"
    raise ExportError(f"cannot tell the format from the name {path!r}: end it in .json, "
                      ".json.gz or .cvm, or pass format= (one of " + ", ".join(FORMATS) + ")")


def _tables(machine: Machine, fires: bool | None) -> tuple[dict[str, Any], Any, Any, Any]:
    from ._format import file_tables, has_fires, hash_tables, metadata
    available = has_fires(machine)
    if fires is None:
        fires = available
    elif fires and not available:
        raise ExportError(f"machine {machine.name!r} has no fires tables (it was loaded from "
                          "a file without them); export with fires=False")
    meta = metadata(machine, fires=fires)
    nf, step, f = file_tables(machine, fires=fires)
    meta["hash"] = hash_tables(meta, nf, step, f)
    return meta, nf, step, f


def content_hash(machine: Machine, *, fires: bool | None = None) -> str:
    """The content hash ``export`` would write for ``machine`` (it does not
    depend on the format)."""
    return _tables(machine, fires)[0]["hash"]


def export_machine(machine: Machine, path: str | os.PathLike[str], *,
                   format: str | None = None, allow_unverified: bool = False,
                   fires: bool | None = None, compresslevel: int = 6) -> ExportInfo:
    """Write ``machine`` to ``path``.

    Args:
        format: ``"json"``, ``"json.gz"`` or ``"binary"``; by default from the
            name (``.json``, ``.json.gz``, ``.cvm``).
        allow_unverified: write a machine whose verification did not pass; its
            file says ``"verified": false`` and ``Machine.load`` refuses it
            unless also given ``allow_unverified=True``.
        fires: include the guard tables (``Machine.enabled`` needs them);
            default: when the machine has them.
        compresslevel: gzip level for ``json.gz``.

    Returns:
        An ExportInfo (path, format, content hash, size in bytes, ...).

    Raises:
        ExportError: unverified machine, unknown format, missing tables.

    The file is written next to ``path`` and renamed into place, so a reader
    never sees half a file.
    """
    from ..machine import Machine
    if not isinstance(machine, Machine):
        raise ExportError(f"export_machine needs a Machine, got {type(machine).__name__}")
    path = os.fspath(path)
    fmt = _format_for(path, format)
    report = machine.report
    verified = report is not None and report.ok
    if not verified and not allow_unverified:
        why = report.summary() if report is not None else "it has no verification report"
        raise ExportError(f"machine {machine.name!r} did not pass verification ({why}); "
                          "export it anyway with allow_unverified=True (CLI: "
                          "--allow-unverified), and its file will say it is unverified")
    if not 1 <= compresslevel <= 9:
        raise ExportError(f"compresslevel={compresslevel!r} (expected 1..9)")
    meta, nf, step, f = _tables(machine, fires)
    with replacing(path) as tmp:  # a reader never sees half a file
        if fmt == "binary":
            from ._binary import write_binary
            from ._format import valid_from_nf
            valid = valid_from_nf(nf).view("u1")
            with open(tmp, "wb") as out:
                write_binary(out, meta, nf, valid, step, f)
        else:
            from ._json import open_json, write_json
            with open_json(tmp, gz=fmt == "json.gz", compresslevel=compresslevel) as out:
                write_json(out, meta, nf, step, f)
    return ExportInfo(path=path, format=fmt, content_hash=meta["hash"],
                      bytes=os.path.getsize(path), states=machine.size,
                      events=len(machine.events), verified=verified)


def export_registry(target: Any, path: str | os.PathLike[str], *,
                    allow_unverified: bool = False, scope: str = "reachable",
                    strict: bool = False, **options: Any) -> ExportInfo:
    """Verify a Registry or MachineSpec and export it, even when verification
    fails if ``allow_unverified`` (``Registry.build`` would refuse).

    Raises ExportError when verification fails (without ``allow_unverified``)
    or when WFC fails: then normalization does not terminate and there are no
    tables to export. ``options`` go to ``export_machine``."""
    from ..engine.check import analyze
    from ..spec.model import MachineSpec
    from ..spec.registry import Registry
    if isinstance(target, Registry):
        an = target.analyze(scope=scope, strict=strict)
    elif isinstance(target, MachineSpec):
        an = analyze(target, scope=scope, strict=strict)
    else:
        raise ExportError(f"export_registry needs a Registry or a MachineSpec, got "
                          f"{type(target).__name__}")
    return _export_analysis(an, path, allow_unverified=allow_unverified, **options)


def _export_analysis(an: Any, path: str | os.PathLike[str], *, allow_unverified: bool,
                     **options: Any) -> ExportInfo:
    from ..machine import Machine
    if an.step is None:
        raise ExportError(f"machine {an.report.machine!r} cannot be exported: normalization "
                          "does not terminate (WFC fails), so it has no step tables; run "
                          "`convergent check` for the repair cycle")
    if not an.report.ok and not allow_unverified:
        raise ExportError(f"machine {an.report.machine!r} did not pass verification "
                          f"({an.report.summary()}); export it anyway with "
                          "allow_unverified=True (CLI: --allow-unverified)")
    machine = Machine._from_analysis(an)
    return export_machine(machine, path, allow_unverified=allow_unverified, **options)


def load_machine(path: str | os.PathLike[str], *, verify: bool = True,
                 allow_unverified: bool = False) -> Machine:
    """Load a machine file: convergent JSON, ``.json.gz`` or binary, or a gsm
    JSON export. The format is read from the content, not the name.

    Args:
        verify: check the content hash (reads every table byte once; a
            2**20-state binary file takes a few tens of ms). ``False`` checks
            the header, the version and the sizes only.
        allow_unverified: accept a machine whose verification did not pass.

    Raises:
        MachineFileError: its ``reason`` is ``format``, ``version``,
            ``truncated``, ``hash`` or ``unverified``.
        OSError: the file cannot be read.
    """
    path = os.fspath(path)
    with located(path):
        with open(path, "rb") as f:
            magic = f.read(3)
            if magic == lite.MAGIC[:3]:
                from ._binary import machine_from_binary
                return machine_from_binary(path, verify=verify,
                                           allow_unverified=allow_unverified,
                                           extra_meta={"path": path, "format": "binary"})
            data = magic + f.read()
        fmt = "json.gz" if data[:2] == GZIP_MAGIC else "json"
        doc = lite.parse_json(gunzipped(data))
        if isinstance(doc, dict) and doc.get("format") == "convergent-composed":
            raise MachineFileError("this file holds a machine checked by components: load it "
                                   "with ComposedMachine.load(path)", reason="format")
        if lite.is_gsm(doc):
            from ._gsm import machine_from_gsm
            return machine_from_gsm(doc, allow_unverified=allow_unverified,
                                    extra_meta={"path": path, "format": "gsm"})
        from ._json import machine_from_json
        return machine_from_json(doc, verify=verify, allow_unverified=allow_unverified,
                                 extra_meta={"path": path, "format": fmt})
