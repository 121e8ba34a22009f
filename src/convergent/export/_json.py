"""The JSON format (optionally gzip'd): gsm's keys plus convergent's metadata."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from .. import lite
from ._errors import MachineFileError
from ._format import build_machine, hash_tables, valid_from_nf


def _row(a: np.ndarray) -> str:
    return "[" + ",".join(map(str, a.tolist())) + "]"


def write_json(f: IO[str], meta: Mapping[str, Any], nf: np.ndarray, step: np.ndarray,
               fires: np.ndarray | None) -> None:
    """One key per line, one table row per line: diffable and streamable."""
    f.write("{\n")
    for key, value in meta.items():
        f.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
    f.write(f'  "nf": {_row(nf)},\n  "step": [')
    for i, row in enumerate(step):
        f.write(("\n    " if i == 0 else ",\n    ") + _row(row))
    f.write("\n  ]" if len(step) else "]")
    if fires is not None:
        f.write(',\n  "fires": [')
        for i, row in enumerate(fires):
            f.write(("\n    " if i == 0 else ",\n    ") + _row(row))
        f.write("\n  ]" if len(fires) else "]")
    f.write("\n}\n")


def open_json(path: str, *, gz: bool, compresslevel: int) -> IO[str]:
    if gz:
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=compresslevel)
    return open(path, "w", encoding="utf-8")


def _table(value: Any, shape: tuple[int, ...], limit: int, dtype: np.dtype,
           what: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        a = np.asarray([])
    if a.shape != shape or (a.size and a.dtype.kind not in "iu") \
            or (a.size and (a.min() < 0 or a.max() >= limit)):
        dims = " x ".join(map(str, shape))
        raise MachineFileError(f"{what} must be {dims} ints in [0, {limit})")
    out = np.ascontiguousarray(a, dtype=dtype)
    out.setflags(write=False)
    return out


def machine_from_json(doc: Mapping[str, Any], *, verify: bool, allow_unverified: bool,
                      extra_meta: dict[str, Any]) -> Any:
    vars_, size = lite.check_header(doc)
    n_events = len(doc["events"])
    dt = np.dtype(f"<u{doc['tables']['width']}")
    nf = _table(doc.get("nf"), (size,), size, dt, "nf")
    step = _table(doc.get("step"), (n_events, size), size, dt, "step")
    fires = None
    if doc["tables"]["fires"]:
        fires = _table(doc.get("fires"), (n_events, size), 2, np.dtype(np.uint8), "fires")
    if verify:
        got = hash_tables(doc, nf, step, fires)
        if got != doc["hash"]:
            raise MachineFileError(f"content hash mismatch: the file says {doc['hash']}, "
                                   f"its content gives {got} (edited or corrupt)",
                                   reason="hash")
    lite.check_verified(doc, allow_unverified)
    return build_machine(doc, vars_, nf=nf, step=step,
                         fires=None if fires is None else fires.view(bool),
                         valid=valid_from_nf(nf),
                         extra_meta={**extra_meta, "content_hash": doc["hash"]})
