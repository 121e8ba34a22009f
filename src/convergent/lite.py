"""A dependency-free runtime for exported machines: standard library only.

Load a file written by ``Machine.export`` (JSON, ``.json.gz`` or the binary
``.cvm``) or by gsm's ``Machine.Export``, then apply events, normalize and
decode states, with no numpy and no verifier::

    from convergent import lite

    m = lite.load("order.json")
    s = m.apply(m.initial, "pay")          # states are plain ints
    m.decode(s)                            # {'status': 'paid', 'paid': True, ...}

This file imports nothing outside the standard library, so it can be copied
on its own into a deployment (``import lite``). It is also where the file
format is defined in code (constants, canonical JSON, the content hash), and
``convergent.export`` builds on it; docs/export.md is the prose version.

State ids are convergent's: mixed radix over the vars in order, first var
least significant, the digit of a value being its index in the var's domain.
A gsm file is converted to this encoding when it is loaded.
"""

from __future__ import annotations

import array
import gzip
import hashlib
import json
import mmap
import struct
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LiteError",
    "LiteMachine",
    "MAGIC",
    "canonical_json",
    "content_hash",
    "load",
    "loads",
]

FORMAT = "convergent-machine"
FORMAT_VERSION = 1
MAGIC = b"CVM1"                  # binary files: b"CVM" + the format version digit
HASH_PREFIX = b"convergent-machine/1\n"
ALIGN = 64                       # binary arrays start at multiples of this
MAX_HEADER = 64 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class LiteError(ValueError):
    """A machine file cannot be loaded, or a lite machine was misused.

    ``reason`` is one of ``"format"`` (not a machine file, malformed),
    ``"version"`` (unsupported format version), ``"truncated"``, ``"hash"``
    (content hash mismatch: edited or corrupt), ``"unverified"`` (the machine
    failed verification and ``allow_unverified`` was not given) or ``"usage"``.
    """

    def __init__(self, message: str, reason: str = "format") -> None:
        self.reason = reason
        super().__init__(message)


# ---------------------------------------------------------------- format core

def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes the content hash covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def table_width(states: int) -> int:
    """Bytes per state id in tables: the narrowest unsigned int holding ``states - 1``."""
    for width in (1, 2, 4):
        if states <= 1 << (8 * width):
            return width
    return 8


def hash_head(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata the content hash covers, taken from a JSON document or a
    binary header (both carry these keys)."""
    ver = doc.get("verification")
    ver = ver if isinstance(ver, Mapping) else {}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": doc["name"],
        "version": doc["version"],
        "vars": doc["vars"],
        "events": doc["events"],
        "initial": doc["initial"],
        "states": doc["states"],
        "independent": doc.get("independent", []),
        "policy_digest": doc.get("policy_digest", ""),
        "verified": bool(ver.get("verified", False)),
        "verdict": ver.get("verdict", "unknown"),
        "tables": {"width": doc["tables"]["width"], "fires": bool(doc["tables"]["fires"])},
        # event families (parameterized events) are covered when a file has them
        **({"families": doc["families"]} if "families" in doc else {}),
    }


def content_hash(head: Mapping[str, Any], tables: Iterable[Any]) -> str:
    """``"sha256:" + hex``: SHA-256 over ``HASH_PREFIX``, the canonical JSON of
    ``head``, a newline, then each table's little-endian bytes (nf, step rows,
    fires rows) in order. ``tables`` yields bytes-like objects."""
    h = hashlib.sha256(HASH_PREFIX)
    h.update(canonical_json(head))
    h.update(b"\n")
    for t in tables:
        h.update(t)
    return "sha256:" + h.hexdigest()


_TYPECODES = {w: next(c for c in "BHILQ" if array.array(c).itemsize == w) for w in (1, 2, 4, 8)}


def _to_bytes(values: Sequence[int], width: int) -> bytes:
    a = array.array(_TYPECODES[width], values)
    if sys.byteorder == "big" and width > 1:
        a.byteswap()
    return a.tobytes()


def _from_bytes(data: bytes | memoryview, width: int) -> array.array:
    a = array.array(_TYPECODES[width])
    a.frombytes(data)
    if sys.byteorder == "big" and width > 1:
        a.byteswap()
    return a


def _fail(message: str, reason: str = "format") -> LiteError:
    return LiteError(message, reason)


def _check_var(d: Any, i: int, *, gsm: bool = False) -> dict[str, Any]:
    """A var entry, validated and completed: name, kind, domain, plus labels
    (enum) or min/max (int); ``values`` lists the domain."""
    if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
        raise _fail(f"vars[{i}] is not a {{name, kind, ...}} object")
    name, kind = d["name"], d.get("kind")
    if kind == "bool":
        values: list[Any] = [False, True]
        out = {"name": name, "kind": "bool", "domain": 2}
    elif kind == "enum":
        labels = d.get("labels")
        if not isinstance(labels, list) or not labels \
                or not all(isinstance(x, str) for x in labels):
            raise _fail(f"var {name!r}: labels must be a non-empty list of strings")
        values = list(labels)
        out = {"name": name, "kind": "enum", "domain": len(values), "labels": values}
    elif kind == "int":
        # gsm writes min/max with omitempty: an absent bound is 0
        lo, hi = d.get("min", 0 if gsm else None), d.get("max", 0 if gsm else None)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (lo, hi)) \
                or lo > hi:
            raise _fail(f"var {name!r}: int needs min <= max, got min={lo!r} max={hi!r}")
        if hi - lo >= 1 << 32:
            raise _fail(f"var {name!r}: an int range of {hi - lo + 1} values is implausible")
        values = list(range(lo, hi + 1))
        out = {"name": name, "kind": "int", "domain": len(values), "min": lo, "max": hi}
        if not gsm:
            out["overflow"] = d.get("overflow", "clamp")
    else:
        raise _fail(f"var {name!r}: kind={kind!r} (expected bool, enum or int)")
    if "domain" in d and d["domain"] != out["domain"]:
        raise _fail(f"var {name!r}: domain={d['domain']!r} (expected {out['domain']})")
    out["values"] = values
    return out


def check_header(doc: Any) -> tuple[list[dict[str, Any]], int]:
    """Validate the metadata of a convergent document or binary header; returns
    (completed vars, number of states). Raises LiteError."""
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise _fail("not a convergent machine file (no \"format\": "
                    f"\"{FORMAT}\")")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(f"format version {version!r} is not supported (this runtime reads "
                    f"version {FORMAT_VERSION})", "version")
    for key in ("name", "version", "vars", "events", "initial", "states", "tables", "hash"):
        if key not in doc:
            raise _fail(f"missing key {key!r}")
    if not isinstance(doc["name"], str) or not isinstance(doc["version"], int):
        raise _fail("name must be a string and version an int")
    raw_vars = doc["vars"]
    if not isinstance(raw_vars, list):
        raise _fail("vars must be a list")
    vars_ = [_check_var(d, i) for i, d in enumerate(raw_vars)]
    names = [v["name"] for v in vars_]
    if len(set(names)) != len(names):
        raise _fail("duplicate var names")
    events = doc["events"]
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events) \
            or len(set(events)) != len(events):
        raise _fail("events must be a list of distinct names")
    size = 1
    for v in vars_:
        size *= v["domain"]
    if doc["states"] != size:
        raise _fail(f"states={doc['states']!r} but the vars give {size}")
    init = doc["initial"]
    if not isinstance(init, int) or isinstance(init, bool) or not 0 <= init < size:
        raise _fail(f"initial={init!r} (expected a state id in [0, {size}))")
    enc = doc.get("encoding")
    if enc is not None and (not isinstance(enc, Mapping) or enc.get("type") != "mixed-radix"
                            or enc.get("radix") != [v["domain"] for v in vars_]
                            or enc.get("least_significant") != "first"):
        raise _fail("encoding must be mixed-radix over the var domains, first var least "
                    "significant")
    tables = doc["tables"]
    if not isinstance(tables, Mapping) or tables.get("width") != table_width(size):
        raise _fail(f"tables.width must be {table_width(size)} for {size} states")
    try:
        canonical_json(hash_head(doc))
    except (TypeError, ValueError) as exc:
        raise _fail(f"metadata that cannot be hashed ({exc})") from None
    return vars_, size


def check_verified(doc: Mapping[str, Any], allow_unverified: bool) -> None:
    ver = doc.get("verification")
    ver = ver if isinstance(ver, Mapping) else {}
    if not ver.get("verified") and not allow_unverified:
        raise _fail(f"machine {doc.get('name')!r} did not pass verification (verdict "
                    f"{ver.get('verdict', 'unknown')!r}); pass allow_unverified=True to "
                    "load it anyway", "unverified")


def parse_binary_header(buf: bytes | mmap.mmap, file_size: int) -> dict[str, Any]:
    """The JSON header of a binary file, with its sizes checked against ``file_size``."""
    if buf[:3] != MAGIC[:3]:
        raise _fail("not a convergent binary machine file (bad magic)")
    if file_size < 8:
        raise _fail(f"truncated: {file_size} bytes", "truncated")
    if buf[:4] != MAGIC:
        got = bytes(buf[3:4]).decode("latin-1")
        raise _fail(f"binary format version {got!r} is not supported (this runtime reads "
                    f"version {FORMAT_VERSION})", "version")
    (hlen,) = struct.unpack("<I", buf[4:8])
    if hlen > MAX_HEADER:
        raise _fail(f"header length {hlen} is implausible")
    if 8 + hlen > file_size:
        raise _fail(f"truncated: {file_size} bytes, the header alone needs {8 + hlen}",
                    "truncated")
    try:
        header = json.loads(bytes(buf[8:8 + hlen]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(f"corrupt header: {exc}") from None
    if not isinstance(header, dict):
        raise _fail("corrupt header: not an object")
    if header.get("format_version") != FORMAT_VERSION:
        raise _fail(f"format version {header.get('format_version')!r} is not supported "
                    f"(this runtime reads version {FORMAT_VERSION})", "version")
    expected = header.get("file_size")
    if not isinstance(expected, int):
        raise _fail("corrupt header: no file_size")
    if file_size < expected:
        raise _fail(f"truncated: {file_size} bytes, expected {expected}", "truncated")
    if file_size > expected:
        raise _fail(f"{file_size - expected} unexpected trailing bytes (expected "
                    f"{expected} bytes)")
    return header


def binary_arrays(header: Mapping[str, Any], n_events: int,
                  size: int) -> dict[str, tuple[int, str, tuple[int, ...]]]:
    """``{name: (offset, dtype, shape)}`` of the arrays in a binary file, checked
    against the expected shapes and the file size."""
    width = header["tables"]["width"]
    ids = "|u1" if width == 1 else f"<u{width}"    # numpy's spelling of the dtypes
    want = {"nf": (ids, (size,)), "valid": ("|u1", (size,)), "step": (ids, (n_events, size))}
    if header["tables"]["fires"]:
        want["fires"] = ("|u1", (n_events, size))
    arrays = header.get("arrays")
    if not isinstance(arrays, Mapping) or set(arrays) != set(want):
        raise _fail(f"corrupt header: arrays must be {sorted(want)}")
    out = {}
    for name, (dtype, shape) in want.items():
        a = arrays[name]
        if not isinstance(a, Mapping) or a.get("dtype") != dtype \
                or tuple(a.get("shape", ())) != shape or not isinstance(a.get("offset"), int):
            raise _fail(f"corrupt header: array {name!r} must be {dtype} of shape {shape}")
        nbytes = int(dtype[2:]) * (shape[0] * (shape[1] if len(shape) > 1 else 1))
        if a["offset"] < 8 or a["offset"] % ALIGN or a["offset"] + nbytes > header["file_size"]:
            raise _fail(f"corrupt header: array {name!r} lies outside the file")
        out[name] = (a["offset"], dtype, shape)
    return out


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise _fail(f"{path}: corrupt or truncated gzip data ({exc})", "truncated") from None
    return data


def parse_json(data: bytes, where: str = "<json>") -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        pos = getattr(exc, "pos", 0)
        cut = pos >= len(data.rstrip())       # the text stops mid-document
        raise _fail(f"{where}: {'truncated' if cut else 'not valid'} JSON ({exc})",
                    "truncated" if cut else "format") from None


def is_gsm(doc: Any) -> bool:
    """A gsm export: gsm's keys and no convergent ``format`` marker."""
    return isinstance(doc, Mapping) and "format" not in doc \
        and all(k in doc for k in ("name", "vars", "events", "nf", "step"))


def gsm_layout(raw_vars: Any) -> tuple[list[dict[str, Any]], list[int], int]:
    """gsm packs var i into ``bits(domain)`` bits at the offset of the bits of
    the vars before it (first var least significant). Returns (vars, offsets,
    packed table length)."""
    if not isinstance(raw_vars, list):
        raise _fail("gsm file: vars must be a list")
    vars_ = [_check_var(d, i, gsm=True) for i, d in enumerate(raw_vars)]
    offsets, total = [], 0
    for v in vars_:
        offsets.append(total)
        total += (v["domain"] - 1).bit_length()
    return vars_, offsets, 1 << total


# ---------------------------------------------------------------- the runtime

class LiteMachine:
    """An exported machine in plain Python. States are ints (see the module
    docstring); ``apply`` is one list lookup."""

    def __init__(self, *, name: str, version: int, vars: list[dict[str, Any]],
                 events: list[str], initial: int, nf: Sequence[int],
                 step: Sequence[Sequence[int]], fires: Sequence[Sequence[int]] | None,
                 verification: Mapping[str, Any], content_hash: str | None) -> None:
        self.name = name
        self.version = version
        self.vars = vars
        self.events = list(events)
        self.initial = initial
        self.nf = nf
        self.step = step
        self.fires = fires
        self.verification = dict(verification)
        self.content_hash = content_hash
        self._event_index = {e: i for i, e in enumerate(self.events)}
        self._weights = []
        acc = 1
        for v in vars:
            self._weights.append(acc)
            acc *= v["domain"]
        self.size = acc

    def _event(self, event: str | int) -> int:
        i = self._event_index.get(event) if isinstance(event, str) else None
        if i is None:
            if isinstance(event, int) and not isinstance(event, bool) \
                    and 0 <= event < len(self.events):
                return event
            raise LiteError(f"unknown event {event!r} (known: {', '.join(self.events)})",
                            "usage")
        return i

    def _state(self, state: int) -> int:
        if not isinstance(state, int) or isinstance(state, bool) \
                or not 0 <= state < self.size:
            raise LiteError(f"state id {state!r} is outside [0, {self.size})", "usage")
        return state

    def apply(self, state: int, event: str | int) -> int:
        """The normalized state after ``event`` (a no-op when its guard is false)."""
        return int(self.step[self._event(event)][self._state(state)])

    def run(self, events: Iterable[str | int], state: int | None = None) -> int:
        s = self.initial if state is None else self._state(state)
        for e in events:
            s = int(self.step[self._event(e)][s])
        return s

    def normalize(self, state: int) -> int:
        return int(self.nf[self._state(state)])

    def is_valid(self, state: int) -> bool:
        return int(self.nf[self._state(state)]) == state

    def enabled(self, state: int) -> list[str]:
        """Events whose guard holds at ``state`` (needs the fires tables)."""
        if self.fires is None:
            raise LiteError("this file has no fires tables", "usage")
        s = self._state(state)
        return [e for i, e in enumerate(self.events) if self.fires[i][s]]

    def decode(self, state: int) -> dict[str, Any]:
        s = self._state(state)
        return {v["name"]: v["values"][(s // w) % v["domain"]]
                for v, w in zip(self.vars, self._weights)}

    def encode(self, values: Mapping[str, Any]) -> int:
        """The state id of ``{var name: value}``; every var must be given."""
        s = 0
        for v, w in zip(self.vars, self._weights):
            if v["name"] not in values:
                raise LiteError(f"encode: missing var {v['name']!r}", "usage")
            x = values[v["name"]]
            kind = {"bool": bool, "enum": str, "int": int}[v["kind"]]
            if not isinstance(x, kind) or (kind is int and isinstance(x, bool)) \
                    or x not in v["values"]:
                raise LiteError(f"encode: {v['name']}={x!r} is outside its domain", "usage")
            s += v["values"].index(x) * w
        unknown = set(values) - {v["name"] for v in self.vars}
        if unknown:
            raise LiteError(f"encode: unknown var(s) {', '.join(sorted(unknown))}", "usage")
        return s

    def __repr__(self) -> str:
        return (f"LiteMachine({self.name!r}, vars={len(self.vars)}, "
                f"events={len(self.events)}, states={self.size})")


def _check_table(rows: Any, n_rows: int | None, size: int, what: str, limit: int) -> None:
    def row_ok(row: Any) -> bool:
        return isinstance(row, list) and len(row) == size and all(
            isinstance(x, int) and 0 <= x < limit for x in row)
    if n_rows is None:
        ok = row_ok(rows)
    else:
        ok = isinstance(rows, list) and len(rows) == n_rows and all(map(row_ok, rows))
    if not ok:
        shape = f"{n_rows} x {size}" if n_rows is not None else f"{size}"
        raise _fail(f"{what} must be {shape} ints in [0, {limit})")


def _from_doc(doc: Any, *, verify: bool, allow_unverified: bool) -> LiteMachine:
    if is_gsm(doc):
        return _from_gsm(doc, allow_unverified=allow_unverified)
    vars_, size = check_header(doc)
    n_events = len(doc["events"])
    fires = doc.get("fires") if doc["tables"]["fires"] else None
    _check_table(doc.get("nf"), None, size, "nf", size)
    _check_table(doc.get("step"), n_events, size, "step", size)
    if doc["tables"]["fires"]:
        _check_table(fires, n_events, size, "fires", 2)
    width = doc["tables"]["width"]
    digest = doc["hash"]
    if verify:
        def tables() -> Iterable[bytes]:
            yield _to_bytes(doc["nf"], width)
            for row in doc["step"]:
                yield _to_bytes(row, width)
            for row in fires or ():
                yield bytes(row)
        got = content_hash(hash_head(doc), tables())
        if got != digest:
            raise _fail(f"content hash mismatch: the file says {digest}, its content "
                        f"gives {got} (edited or corrupt)", "hash")
    check_verified(doc, allow_unverified)
    return LiteMachine(name=doc["name"], version=doc["version"], vars=vars_,
                       events=doc["events"], initial=doc["initial"], nf=doc["nf"],
                       step=doc["step"], fires=fires,
                       verification=doc.get("verification") or {}, content_hash=digest)


def _from_gsm(doc: Mapping[str, Any], *, allow_unverified: bool) -> LiteMachine:
    vars_, offsets, packed = gsm_layout(doc["vars"])
    events = doc["events"]
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise _fail("gsm file: events must be a list of names")
    _check_table(doc["nf"], None, packed, "gsm nf", packed)
    _check_table(doc["step"], len(events), packed, "gsm step", packed)
    ver = doc.get("verification") or {}
    if not (ver.get("wfc") and ver.get("cc")) and not allow_unverified:
        raise _fail(f"gsm machine {doc['name']!r} is not marked verified (wfc and cc)",
                    "unverified")
    weights, acc = [], 1
    for v in vars_:
        weights.append(acc)
        acc *= v["domain"]
    size = acc

    def pack(s: int) -> int:
        return sum(((s // w) % v["domain"]) << off
                   for v, w, off in zip(vars_, weights, offsets))

    def unpack(p: int) -> int:
        s = 0
        for v, w, off in zip(vars_, weights, offsets):
            d = (p >> off) & ((1 << (v["domain"] - 1).bit_length()) - 1)
            if d >= v["domain"]:
                raise _fail(f"gsm file: a table entry ({p}) is not a valid encoding")
            s += d * w
        return s

    packed_ids = [pack(s) for s in range(size)]
    nf = [unpack(doc["nf"][p]) for p in packed_ids]
    step = [[unpack(row[p]) for p in packed_ids] for row in doc["step"]]
    verification = {"verified": bool(ver.get("wfc") and ver.get("cc")), "source": "gsm", **ver}
    return LiteMachine(name=doc["name"], version=doc.get("version", 1), vars=vars_,
                       events=events, initial=0, nf=nf, step=step, fires=None,
                       verification=verification, content_hash=None)


def _from_binary(data: bytes | mmap.mmap, *, verify: bool,
                 allow_unverified: bool) -> LiteMachine:
    header = parse_binary_header(data, len(data))
    vars_, size = check_header(header)
    n_events = len(header["events"])
    arrays = binary_arrays(header, n_events, size)
    mv = memoryview(data)

    def raw(name: str) -> memoryview:
        off, dtype, shape = arrays[name]
        n = int(dtype[2:]) * shape[0] * (shape[1] if len(shape) > 1 else 1)
        return mv[off:off + n]

    if verify:
        parts = [raw("nf"), raw("step")] + ([raw("fires")] if "fires" in arrays else [])
        got = content_hash(hash_head(header), parts)
        if got != header["hash"]:
            raise _fail(f"content hash mismatch: the file says {header['hash']}, its "
                        f"content gives {got} (edited or corrupt)", "hash")
    check_verified(header, allow_unverified)
    width = header["tables"]["width"]
    nf = _from_bytes(raw("nf"), width)
    flat = _from_bytes(raw("step"), width)
    step = [flat[i * size:(i + 1) * size] for i in range(n_events)]
    fires = None
    if "fires" in arrays:
        fb = bytes(raw("fires"))
        fires = [fb[i * size:(i + 1) * size] for i in range(n_events)]
    if verify and (max(nf, default=0) >= size or max(flat, default=0) >= size):
        raise _fail("a table entry is outside the state space")
    return LiteMachine(name=header["name"], version=header["version"], vars=vars_,
                       events=header["events"], initial=header["initial"], nf=nf,
                       step=step, fires=fires, verification=header.get("verification") or {},
                       content_hash=header["hash"])


def loads(data: bytes | str | Mapping[str, Any], *, verify: bool = True,
          allow_unverified: bool = False) -> LiteMachine:
    """A machine from file contents (JSON text, gzip'd JSON, binary) or an
    already parsed JSON document."""
    if isinstance(data, Mapping):
        return _from_doc(data, verify=verify, allow_unverified=allow_unverified)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    if data[:3] == MAGIC[:3]:
        return _from_binary(data, verify=verify, allow_unverified=allow_unverified)
    return _from_doc(parse_json(data), verify=verify, allow_unverified=allow_unverified)


def load(path: str, *, verify: bool = True, allow_unverified: bool = False) -> LiteMachine:
    """Load a machine file: convergent JSON (optionally gzip'd), convergent
    binary, or a gsm JSON export.

    ``verify`` checks the content hash (gsm files have none). A machine that
    failed verification is refused unless ``allow_unverified``. Raises
    LiteError (see its ``reason``) or OSError."""
    data = _read(path)
    try:
        return loads(data, verify=verify, allow_unverified=allow_unverified)
    except LiteError as exc:
        raise LiteError(f"{path}: {exc}", exc.reason) from None
