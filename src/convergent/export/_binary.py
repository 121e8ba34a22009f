"""The binary format for big machines: ``CVM1``, a length-prefixed JSON header,
then the tables as raw little-endian arrays at 64-byte aligned offsets, read
back through one read-only memory map (no copy, no parse)."""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from .. import lite
from ._errors import MachineFileError
from ._format import build_machine, hash_tables


def _align(n: int) -> int:
    return -(-n // lite.ALIGN) * lite.ALIGN


def write_binary(f: IO[bytes], meta: Mapping[str, Any], nf: np.ndarray, valid: np.ndarray,
                 step: np.ndarray, fires: np.ndarray | None) -> None:
    arrays = [("nf", nf), ("valid", valid), ("step", step)]
    if fires is not None:
        arrays.append(("fires", fires))
    base = len(json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    data_start = _align(8 + base + 256)
    while True:  # the header holds the offsets, which depend on its length
        layout: dict[str, dict[str, Any]] = {}
        off = data_start
        for name, a in arrays:
            layout[name] = {"offset": off, "dtype": a.dtype.str, "shape": list(a.shape)}
            off = _align(off + a.nbytes)
        end = layout[arrays[-1][0]]["offset"] + arrays[-1][1].nbytes
        header = {**meta, "arrays": layout, "file_size": end}
        hb = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if 8 + len(hb) + 1 <= data_start:
            break
        data_start = _align(8 + len(hb) + 1)
    hb += b"\n" + b" " * (data_start - 8 - len(hb) - 1)
    f.write(lite.MAGIC + struct.pack("<I", len(hb)) + hb)
    pos = data_start
    for name, a in arrays:
        f.write(b"\0" * (layout[name]["offset"] - pos))
        f.write(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
        pos = layout[name]["offset"] + a.nbytes


def machine_from_binary(path: str, *, verify: bool, allow_unverified: bool,
                        extra_meta: dict[str, Any]) -> Any:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise MachineFileError(f"truncated: {size} bytes", reason="truncated")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    header = lite.parse_binary_header(mm, size)
    vars_, n = lite.check_header(header)
    n_events = len(header["events"])
    layout = lite.binary_arrays(header, n_events, n)

    def arr(name: str) -> np.ndarray:
        off, dtype, shape = layout[name]
        count = shape[0] * (shape[1] if len(shape) > 1 else 1)
        return np.frombuffer(mm, dtype=dtype, count=count, offset=off).reshape(shape)

    nf, valid, step = arr("nf"), arr("valid").view(bool), arr("step")
    fires = arr("fires") if "fires" in layout else None
    if verify:
        got = hash_tables(header, nf, step, fires)
        if got != header["hash"]:
            raise MachineFileError(f"content hash mismatch: the file says {header['hash']}, "
                                   f"its content gives {got} (edited or corrupt)",
                                   reason="hash")
        if not np.array_equal(valid, nf == np.arange(n, dtype=nf.dtype)):
            raise MachineFileError("the valid table disagrees with nf (corrupt)",
                                   reason="hash")
    lite.check_verified(header, allow_unverified)
    return build_machine(header, vars_, nf=nf, step=step,
                         fires=None if fires is None else fires.view(bool), valid=valid,
                         extra_meta={**extra_meta, "content_hash": header["hash"]})
