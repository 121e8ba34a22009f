"""Reading a JSON file written by gsm's ``Machine.Export`` (Go).

gsm packs a state into bits: var i takes ``bits(domain_i)`` bits (the fewest
holding ``domain_i - 1``; a bool takes one) at the offset where the bits of the
vars before it end, first var least significant; a digit is the value's index
(enums: in ``labels``; ints: value - min; bools: 0/1). Its tables have
``2 ** total_bits`` entries, including encodings with a digit past the domain
(unused). convergent numbers the same states in mixed radix, so each table is
gathered at the packed id of every convergent state and its entries are
converted back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import lite
from ._errors import MachineFileError
from ._format import build_machine, valid_from_nf


def _packed_table(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        a = np.asarray([])
    if a.shape != shape or (a.size and (a.dtype.kind not in "iu" or a.min() < 0)):
        raise MachineFileError(f"gsm file: {what} must be {' x '.join(map(str, shape))} "
                               "non-negative ints")
    return a.astype(np.int64, copy=False)


def machine_from_gsm(doc: Mapping[str, Any], *, allow_unverified: bool,
                     extra_meta: dict[str, Any]) -> Any:
    vars_, offsets, packed = lite.gsm_layout(doc["vars"])
    events = doc["events"]
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events) \
            or len(set(events)) != len(events):
        raise MachineFileError("gsm file: events must be a list of distinct names")
    nf_p = _packed_table(doc["nf"], (packed,), "nf")
    step_p = _packed_table(doc["step"], (len(events), packed), "step")
    ver = doc.get("verification") or {}
    verified = bool(ver.get("wfc")) and bool(ver.get("cc"))
    if not verified and not allow_unverified:
        raise MachineFileError(f"gsm machine {doc['name']!r} is not marked verified (wfc "
                               "and cc); pass allow_unverified=True to load it anyway",
                               reason="unverified")
    sizes = [v["domain"] for v in vars_]
    weights = np.cumprod([1] + sizes[:-1]).astype(np.int64) if sizes else np.ones(0, np.int64)
    n = int(np.prod(sizes)) if sizes else 1
    width = lite.table_width(n)
    ids = np.arange(n, dtype=np.int64)
    to_packed = np.zeros(n, dtype=np.int64)
    for size, w, off in zip(sizes, weights, offsets):
        to_packed |= ((ids // w) % size) << off

    def to_ids(p: np.ndarray, what: str) -> np.ndarray:
        bad = MachineFileError(f"gsm file: {what} leads a state to an encoding outside "
                               "the domains")
        if p.size and p.max() >= packed:
            raise bad
        out = np.zeros(p.shape, dtype=np.int64)
        for size, w, off in zip(sizes, weights, offsets):
            digit = (p >> off) & ((1 << (size - 1).bit_length()) - 1)
            if np.any(digit >= size):
                raise bad
            out += digit * w
        return out.astype(f"<u{width}")

    nf = to_ids(nf_p[to_packed], "nf")
    step = np.empty((len(events), n), dtype=f"<u{width}")
    for e in range(len(events)):
        step[e] = to_ids(step_p[e, to_packed], f"step[{events[e]!r}]")
    nf.setflags(write=False)
    meta = {
        "name": doc["name"], "version": doc.get("version", 1), "events": events, "initial": 0,
        "independent": [], "policy_digest": "",
        "verification": {"verified": verified, "verdict": "pass" if verified else "fail",
                         "wfc": ver.get("wfc"), "cc": ver.get("cc"),
                         "max_repair_depth": ver.get("max_repair_depth")},
    }
    if not isinstance(meta["name"], str) or not isinstance(meta["version"], int):
        raise MachineFileError("gsm file: name must be a string and version an int")
    m = build_machine(meta, vars_, nf=nf, step=step, fires=None, valid=valid_from_nf(nf),
                      extra_meta={**extra_meta, "gsm": {k: v for k, v in doc.items()
                                                        if k not in ("nf", "step")}})
    assert m.report is not None  # build_machine always attaches a report
    m.report.warnings[:] = ["imported from a gsm export: verified by gsm, not by convergent"]
    return m
