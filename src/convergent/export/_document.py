"""Files that are one JSON document holding whole machine files (composed
machines, collections): the embedded machine document, the atomic write,
and the bounded, located read."""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .. import lite
from .._files import atomic_write
from ._errors import MachineFileError

if TYPE_CHECKING:  # pragma: no cover
    from ..machine import Machine

T = TypeVar("T")


def machine_document(m: Machine) -> dict[str, Any]:
    """``m`` as the machine JSON export writes it, as a dict (its own tables
    and content hash, so it loads with the machine code)."""
    from . import _tables
    from ._json import write_json
    meta, nf, step, fires = _tables(m, None)
    out = io.StringIO()
    write_json(out, meta, nf, step, fires)
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def write_document(path: str, doc: Mapping[str, Any], *, gz: bool,
                   compresslevel: int) -> None:
    """Write ``doc`` (gzip'd if ``gz``) next to ``path`` and rename it into
    place: a reader never sees half a file (``convergent._files``)."""
    data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    if gz:
        data = gzip.compress(data, compresslevel=compresslevel)
    atomic_write(path, data)


def read_document(path: str, *, max_bytes: int, build: Callable[[Any], T]) -> T:
    """``build`` of the JSON document in ``path`` (gzip'd or not). A file over
    ``max_bytes`` is refused unread; every MachineFileError names ``path``."""
    if os.path.getsize(path) > max_bytes:
        raise MachineFileError(f"bigger than {max_bytes} bytes", reason="format", path=path)
    with open(path, "rb") as f:
        data = f.read()
    with located(path):
        return build(lite.parse_json(gunzipped(data)))


GZIP_MAGIC = b"\x1f\x8b"


def gunzipped(data: bytes) -> bytes:
    """``data`` decompressed when it is gzip'd, else as it is; a corrupt or
    truncated stream is a MachineFileError."""
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise MachineFileError(f"corrupt or truncated gzip data ({exc})",
                               reason="truncated") from None


@contextmanager
def located(path: str) -> Iterator[None]:
    """Every MachineFileError (or lite.LiteError) raised inside names
    ``path``, once."""
    try:
        yield
    except lite.LiteError as exc:
        raise MachineFileError(str(exc), reason=exc.reason, path=path) from None
    except MachineFileError as exc:
        if exc.path is None:
            raise MachineFileError(str(exc), reason=exc.reason, path=path) from None
        raise


def check_header(doc: Any, *, fmt: str, version: int, keys: tuple[str, ...],
                 what: str) -> Mapping[str, Any]:
    """``doc`` as a mapping of format ``fmt``, version ``version`` and
    exactly ``keys``; else a MachineFileError ("not a valid <what> file")."""
    if not isinstance(doc, Mapping) or doc.get("format") != fmt:
        raise MachineFileError(f"not a valid {what} file: format is not {fmt!r}",
                               reason="format")
    if doc.get("format_version") != version:
        raise MachineFileError(f"format_version {doc.get('format_version')!r} (this version "
                               f"reads {version})", reason="version")
    unknown = sorted(set(doc) - set(keys))
    missing = [k for k in keys if k not in doc]
    if unknown or missing:
        raise MachineFileError(f"not a valid {what} file: unknown keys {unknown}, missing "
                               f"keys {missing}", reason="format")
    return doc
