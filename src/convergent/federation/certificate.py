"""Certificates: a verified sub-federation as tables plus a digest.

A team that owns several registries verifies them together once and hands
out a certificate: each registry's tables (its normal form and its step per
event), each morphism's image table, each resolver's table over every
combination of proposals, and a SHA-256 digest over all of it *and* over the
names (registries, vars and their domains, events, morphisms, resolvers) and
the declared independent pairs. Another team embeds it
(``Federation.embed``) without the first team's source code.

Nothing in a certificate is trusted. Loading validates every field, bound
and table range (the file is hostile input); embedding re-checks it:

1. the digest is recomputed from the content (an edited table, a renamed var
   or a changed pair set with the old digest is refused);
2. the digest is compared with the one the embedder pinned, when given
   (the same edits with a recomputed digest are refused);
3. every registry is re-verified on its tables (the normal form idempotent
   onto the valid states, every step landing in a valid state, the initial
   state valid, every declared pair commuting at every reachable state) and
   every federated check is run again on the certified sub-federation.

The digest follows ``engine/digest.py``: canonical JSON of the names, then
each table's bytes, length-prefixed, little-endian.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._files import atomic_write
from ..machine import Machine
from ..spec.model import Var
from ._tables import MAX_COMBINATIONS, Member, _call_resolver, _natural, build_members
from ._tabulate import tabulate_map
from .errors import FederationCheckError, FederationError
from .model import Federation, FederationSpec, Morphism, Resolver

__all__ = [
    "CERTIFICATE_FORMAT",
    "MAX_CERTIFICATE_BYTES",
    "MAX_STATES",
    "Certificate",
    "CertificateError",
    "TableMap",
    "CertifiedRegistry",
    "certified_member",
    "certify",
    "load_certificate",
    "loads_certificate",
    "save_certificate",
]

CERTIFICATE_FORMAT = "convergent-federation-certificate"
FORMAT_VERSION = 1
#: a certificate file larger than this (after decompression) is refused
MAX_CERTIFICATE_BYTES = 256 << 20
#: states per certified registry, at most
MAX_STATES = 1 << 22
#: registries, morphisms, resolvers, events, vars: each list at most this long
MAX_ITEMS = 1000
MAX_NAME = 128


class CertificateError(FederationError):
    """A certificate is malformed, does not match its digest or the pinned
    one, or fails its re-check; the message says which and where."""


def _ids(a: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=np.int64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class CertifiedRegistry:
    """One registry as tables: ``nf[N]`` and ``step[E][N]`` (state ids in the
    usual mixed radix over ``vars``, first var least significant)."""

    name: str
    vars: tuple[Var, ...]
    events: tuple[str, ...]
    independent: tuple[tuple[str, str], ...]
    initial: int
    nf: np.ndarray = field(compare=False, repr=False)
    step: np.ndarray = field(compare=False, repr=False)

    @property
    def size(self) -> int:
        n = 1
        for v in self.vars:
            n *= v.size
        return n


@dataclass(frozen=True)
class TableMap:
    """A morphism's map given as its image table (a certificate's form):
    ``table[source id]`` holds the digits of the shared vars. Tabulating it
    is free (``tabulate_map`` returns the table); calling it on a state
    reads every source var."""

    source: tuple[Var, ...]
    shared: tuple[Var, ...]
    table: np.ndarray = field(compare=False, repr=False)

    def __call__(self, s: Mapping[str, Any]) -> Mapping[str, Any]:
        sid, w = 0, 1
        for v in self.source:
            sid += v.digit(s[v.name]) * w
            w *= v.size
        row = self.table[sid]
        return {v.name: _natural(v, v.values[int(d)]) for v, d in zip(self.shared, row)}


@dataclass(frozen=True)
class _TableResolver:
    """A resolver given as its table over every combination of proposals:
    row ``sum(digit_k * stride_k)`` over ``coords`` (``(source, var)`` in
    order) holds the digits of its output vars."""

    coords: tuple[tuple[str, str], ...]
    vars: tuple[Var, ...]               # the target's vars, by name order of ``coords``
    out: tuple[Var, ...]                # the resolved vars
    table: np.ndarray = field(compare=False, repr=False)

    def __call__(self, proposals: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        idx, w = 0, 1
        by_name = {v.name: v for v in self.vars}
        for src, var in self.coords:
            if src not in proposals or var not in proposals[src]:
                raise FederationError(f"certified resolver: no proposal from {src} for {var}")
            idx += by_name[var].digit(proposals[src][var]) * w
            w *= by_name[var].size
        row = self.table[idx]
        return {v.name: _natural(v, v.values[int(d)]) for v, d in zip(self.out, row)}


@dataclass(frozen=True)
class Certificate:
    """A verified sub-federation: its registries, morphisms and resolvers as
    tables, and ``digest`` over names, declared pairs and every table."""

    name: str
    xu: bool
    registries: tuple[CertifiedRegistry, ...]
    morphisms: tuple[Morphism, ...]
    resolvers: tuple[Resolver, ...]
    digest: str

    def compute_digest(self) -> str:
        """The digest of the content as it is now (compare with ``digest``)."""
        return _digest(self)

    def spec(self) -> FederationSpec:
        """The certified sub-federation on its own (table members only)."""
        return FederationSpec(self.name, (), self.morphisms, self.resolvers,
                              certified=self.registries)

    def recheck(self, *, digest: str | None = None) -> None:
        """Everything embedding re-checks (the module docstring, 1 to 3).

        Raises:
            CertificateError: which step failed, and why."""
        got = self.compute_digest()
        if got != self.digest:
            raise CertificateError(
                f"certificate {self.name!r}: its content gives digest {got[:16]}..., the "
                f"certificate says {self.digest[:16]}...: a table, a name or the pair set "
                "was changed after it was certified")
        if digest is not None and digest != self.digest:
            raise CertificateError(
                f"certificate {self.name!r} has digest {self.digest[:16]}..., expected "
                f"{digest[:16]}...: it is another certificate (renamed registries or vars, "
                "other declared pairs or other tables than the one pinned)")
        from .check import check_federation
        try:
            report = check_federation(self.spec(), xu=self.xu)
        except CertificateError:
            raise
        except FederationError as exc:
            raise CertificateError(f"certificate {self.name!r} fails its re-check: {exc}"
                                   ) from None
        if not report.ok:
            raise CertificateError(
                f"certificate {self.name!r} fails its re-check: {report.summary()}\n"
                f"{report.render_text()}")

    def to_dict(self) -> dict[str, Any]:
        head = _head(self)
        tables = {
            "registries": {r.name: {"nf": _b64(r.nf), "step": [_b64(s) for s in r.step]}
                           for r in self.registries},
            "morphisms": {m.name: _b64(_map_table(m)) for m in self.morphisms},
            "resolvers": {r.name: _b64(_resolver_table(r).table) for r in self.resolvers},
        }
        return {**head, "digest": self.digest, "tables": tables}


# ------------------------------------------------------------ the digest

def _var_entry(v: Var) -> dict[str, Any]:
    if v.kind == "bool":
        return {"name": v.name, "kind": "bool"}
    if v.kind == "enum":
        return {"name": v.name, "kind": "enum", "labels": list(v.values)}
    return {"name": v.name, "kind": "int", "min": v.lo, "max": v.hi, "overflow": v.overflow}


def _map_table(m: Morphism) -> np.ndarray:
    if not isinstance(m.fn, TableMap):
        raise FederationError(f"morphism {m.name!r} of a certificate has no table")
    return m.fn.table


def _resolver_table(r: Resolver) -> _TableResolver:
    if not isinstance(r.fn, _TableResolver):
        raise FederationError(f"resolver {r.name!r} of a certificate has no table")
    return r.fn


def _head(c: Certificate) -> dict[str, Any]:
    return {
        "format": CERTIFICATE_FORMAT, "format_version": FORMAT_VERSION,
        "name": c.name, "xu": c.xu,
        "registries": [{"name": r.name, "vars": [_var_entry(v) for v in r.vars],
                        "events": list(r.events),
                        "independent": sorted(sorted(p) for p in r.independent),
                        "initial": r.initial} for r in c.registries],
        "morphisms": [{"name": m.name, "source": m.source, "target": m.target,
                       "shared": list(m.shared)} for m in c.morphisms],
        "resolvers": [{"name": r.name, "target": r.target, "vars": list(r.vars),
                       "proposals": [list(p) for p in _resolver_table(r).coords]}
                      for r in c.resolvers],
    }


def _le(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<u4").tobytes()


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(_le(a)).decode("ascii")


def _digest(c: Certificate) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(_head(c), sort_keys=True, separators=(",", ":")).encode())
    arrays: list[np.ndarray] = []
    for r in c.registries:
        arrays.append(r.nf)
        arrays.extend(r.step)
    arrays.extend(_map_table(m) for m in c.morphisms)
    arrays.extend(_resolver_table(r).table for r in c.resolvers)
    for a in arrays:
        b = _le(a)
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


# ------------------------------------------------------------ certify

def certify(federation: Federation | FederationSpec, *, xu: bool = False) -> Certificate:
    """Check a federation and, when every check holds, package it.

    Raises:
        FederationCheckError: a check fails (``.report`` says which).
        FederationError: the federation is malformed."""
    from .check import check_federation
    spec = federation.spec() if isinstance(federation, Federation) else federation
    members = build_members(spec)
    report = check_federation(spec, xu=xu, members=members)
    if not report.ok:
        raise FederationCheckError(report)
    regs = []
    for name in spec.names:
        mem = members[name]
        assert mem.machine is not None
        regs.append(CertifiedRegistry(
            name, mem.vars, mem.events, tuple(mem.independent),
            int(mem.machine.initial.id), _ids(mem.nf), _ids(mem.step)))
    morphisms = tuple(
        Morphism(m.name, m.source, m.target, m.shared, fn=TableMap(
            members[m.source].vars, _shared_vars(members[m.target].vars, m.shared),
            _ids(tabulate_map(m, members[m.source].vars, members[m.target].vars))))
        for m in spec.morphisms)
    resolvers = tuple(_tabulate_resolver(spec, members, r) for r in spec.resolvers)
    draft = Certificate(spec.name, xu, tuple(regs), morphisms, resolvers, "")
    return Certificate(spec.name, xu, tuple(regs), morphisms, resolvers, _digest(draft))


def _shared_vars(target: Sequence[Var], shared: Sequence[str]) -> tuple[Var, ...]:
    tv = {v.name: v for v in target}
    return tuple(tv[s] for s in shared)


def _tabulate_resolver(spec: FederationSpec, members: Mapping[str, Member],
                       r: Resolver) -> Resolver:
    tm = members[r.target]
    tv = {v.name: v for v in tm.vars}
    coords = tuple((m.source, var) for m in spec.incoming(r.target) for var in m.shared
                   if var in r.vars)
    sizes = [tv[var].size for _, var in coords]
    total = int(np.prod(sizes, dtype=np.int64)) if sizes else 1
    if total > MAX_COMBINATIONS:
        raise FederationError(f"resolver {r.name!r}: {total} combinations of proposals "
                              f"(more than {MAX_COMBINATIONS}) to tabulate")
    out = [tv[v] for v in r.vars]
    table = np.zeros((total, len(out)), dtype=np.int64)
    # row index: first coordinate least significant (itertools varies the last fastest)
    for digits in itertools.product(*(range(z) for z in reversed(sizes))):
        ds = digits[::-1]
        proposals: dict[str, dict[str, Any]] = {}
        for (src, var), d in zip(coords, ds):
            proposals.setdefault(src, {})[var] = _natural(tv[var], tv[var].values[d])
        got = _call_resolver(r, proposals, tv)     # R1 passed: it does not raise
        idx, w = 0, 1
        for d, z in zip(ds, sizes):
            idx += d * w
            w *= z
        table[idx] = [got[v.name] for v in out]
    fn = _TableResolver(coords, tuple(tv[var] for _, var in coords), tuple(out), _ids(table))
    return Resolver(r.target, r.vars, fn, r.name)


# ------------------------------------------------------------ re-checking a registry

def _reachable(step: np.ndarray, initial: int) -> np.ndarray:
    seen = np.zeros(step.shape[1], dtype=bool)
    seen[initial] = True
    frontier = np.array([initial], dtype=np.int64)
    while frontier.size:
        nxt = np.unique(step[:, frontier].ravel())
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        frontier = nxt
    return np.flatnonzero(seen)


def certified_member(reg: CertifiedRegistry) -> Member:
    """A ``Member`` over a certified registry's tables, re-verified on them:
    the same conditions the core engine proves (WFC's outcome, validity of
    every step, CC1 of the declared pairs at the reachable states)."""
    n = reg.size
    nf, step = reg.nf, reg.step
    valid = nf == np.arange(n, dtype=np.int64)
    valid.setflags(write=False)
    problems: list[str] = []

    def at(i: int) -> str:
        return str(_decode(reg.vars, int(i)))

    if not valid[nf].all():
        i = int(np.flatnonzero(~valid[nf])[0])
        problems.append(f"nf is not a normal form: nf[{at(i)}] = {at(int(nf[i]))} is not "
                        "its own normal form")
    for e, row in zip(reg.events, step):
        if not valid[row].all():
            i = int(np.flatnonzero(~valid[row])[0])
            problems.append(f"step of {e} at {at(i)} gives {at(int(row[i]))}, not a valid "
                            "state (a step includes the registry's repairs)")
    if not valid[reg.initial]:
        problems.append(f"the initial state {at(reg.initial)} is not valid")
    if not problems:
        reach = _reachable(step, reg.initial)
        index = {e: i for i, e in enumerate(reg.events)}
        for a, b in reg.independent:
            sa, sb = step[index[a]], step[index[b]]
            bad = sb[sa[reach]] != sa[sb[reach]]
            if bad.any():
                s = int(reach[np.flatnonzero(bad)[0]])
                problems.append(f"declared pair ({a}, {b}) does not commute at the reachable "
                                f"state {at(s)}: {at(int(sb[sa[s]]))} against "
                                f"{at(int(sa[sb[s]]))}")
    ok = not problems
    machine = Machine._from_tables(
        name=reg.name, version=1, vars=reg.vars, events=reg.events, step=reg.step,
        initial_id=reg.initial, report=None, nf=reg.nf, valid=valid,
        independent=reg.independent if ok else ())
    summary = (f"{reg.name}: pass (certified tables re-checked)" if ok
               else f"{reg.name}: fail ({'; '.join(problems)})")
    return Member(reg.name, reg.vars, reg.events, reg.independent, machine, ok,
                  "pass" if ok else "fail", summary,
                  None if ok else {"certified": True, "problems": problems})


def _decode(vars: Sequence[Var], sid: int) -> dict[str, Any]:
    out = {}
    for v in vars:
        out[v.name] = _natural(v, v.values[sid % v.size])
        sid //= v.size
    return out


# ------------------------------------------------------------ files

def save_certificate(cert: Certificate, path: str | os.PathLike[str], *,
                     compresslevel: int = 6) -> int:
    """Write ``cert`` as JSON (gzip'd at ``compresslevel`` when the name ends
    in ``.gz``), next to ``path`` then renamed into place; returns the bytes
    written."""
    filename = os.fspath(path)
    body = json.dumps(cert.to_dict(), separators=(",", ":")).encode()
    if len(body) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(f"certificate {cert.name!r} is {len(body)} bytes, more than "
                               f"{MAX_CERTIFICATE_BYTES}")
    if not 1 <= compresslevel <= 9:
        raise CertificateError(f"compresslevel={compresslevel!r} (expected 1..9)")
    data = (gzip.compress(body, compresslevel=compresslevel, mtime=0)
            if filename.endswith(".gz") else body)
    atomic_write(filename, data)  # a reader never sees half a file
    return len(data)


def load_certificate(path: str | os.PathLike[str], *,
                     max_bytes: int = MAX_CERTIFICATE_BYTES) -> Certificate:
    """Read and validate a certificate file (JSON, or gzip'd JSON by content).

    Validation checks the form (every field, type, bound and table range),
    not the meaning: call ``Certificate.recheck`` (``Federation.embed`` does)
    before trusting it.

    Raises:
        CertificateError: unreadable, too large, malformed."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise CertificateError(f"{filename}: cannot read the certificate: {exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                raw = gz.read(max_bytes + 1)
        except (OSError, EOFError) as exc:
            raise CertificateError(f"{filename}: corrupt gzip: {exc}") from None
    if len(raw) > max_bytes:
        raise CertificateError(f"{filename}: more than {max_bytes} bytes")
    return loads_certificate(raw, filename)


def loads_certificate(data: bytes | str, filename: str = "<certificate>") -> Certificate:
    """A certificate from its JSON text, validated field by field."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(f"{filename}: more than {MAX_CERTIFICATE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except RecursionError:
        raise CertificateError(f"{filename}: nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CertificateError(f"{filename}: not JSON: {exc}") from None
    try:
        return _from_doc(doc)
    except CertificateError as exc:
        raise CertificateError(f"{filename}: {exc}") from None


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise CertificateError(what)


def _obj(x: Any, keys: Sequence[str], what: str) -> Mapping[str, Any]:
    _need(isinstance(x, dict), f"{what} must be an object")
    extra = sorted(set(x) - set(keys))
    missing = [k for k in keys if k not in x]
    _need(not extra, f"{what}: unknown key(s) {extra[:5]}")
    _need(not missing, f"{what}: missing key(s) {missing}")
    return x


def _name(x: Any, what: str) -> str:
    _need(isinstance(x, str) and 0 < len(x) <= MAX_NAME and x.isidentifier(),
          f"{what} must be an identifier of at most {MAX_NAME} characters, got "
          f"{str(x)[:40]!r}")
    return str(x)


def _items(x: Any, what: str) -> list[Any]:
    _need(isinstance(x, list) and len(x) <= MAX_ITEMS,
          f"{what} must be a list of at most {MAX_ITEMS}")
    return list(x)


def _int(x: Any, lo: int, hi: int, what: str) -> int:
    _need(type(x) is int and lo <= x <= hi, f"{what} must be an int in [{lo}, {hi}]")
    return int(x)


def _var(x: Any, what: str) -> Var:
    _need(isinstance(x, dict), f"{what} must be an object")
    kind = x.get("kind")
    name = _name(x.get("name"), f"{what}.name")
    try:
        if kind == "bool":
            _obj(x, ("name", "kind"), what)
            return Var.boolean(name)
        if kind == "enum":
            _obj(x, ("name", "kind", "labels"), what)
            labels = _items(x["labels"], f"{what}.labels")
            _need(bool(labels) and len(set(labels)) == len(labels)
                  and all(isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in labels),
                  f"{what}.labels must be distinct non-empty strings")
            return Var.enum(name, *labels)
        if kind == "int":
            _obj(x, ("name", "kind", "min", "max", "overflow"), what)
            lo = _int(x["min"], -(1 << 62), 1 << 62, f"{what}.min")
            hi = _int(x["max"], lo, lo + MAX_STATES - 1, f"{what}.max")
            _need(x["overflow"] in ("clamp", "error"), f"{what}.overflow must be clamp|error")
            return Var.integer(name, lo, hi, x["overflow"])
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CertificateError):
            raise
        raise CertificateError(f"{what}: {exc}") from None
    raise CertificateError(f"{what}.kind must be bool, int or enum, got {str(kind)[:20]!r}")


def _table(x: Any, rows: int, cols: int, limits: Sequence[int], what: str) -> np.ndarray:
    _need(isinstance(x, str), f"{what} must be a base64 string")
    want = rows * cols * 4
    _need(len(x) <= 4 * ((want + 2) // 3) + 4, f"{what} is longer than {rows}x{cols} ids")
    try:
        raw = base64.b64decode(x, validate=True)
    except ValueError:
        raise CertificateError(f"{what} is not base64") from None
    _need(len(raw) == want, f"{what} holds {len(raw)} bytes, expected {want} "
                            f"({rows}x{cols} little-endian uint32)")
    a = np.frombuffer(raw, dtype="<u4").astype(np.int64).reshape(rows, cols)
    for k, lim in enumerate(limits):
        if rows and int(a[:, k].max()) >= lim:
            raise CertificateError(f"{what}: column {k} holds a value >= {lim}")
    return _ids(a)


def _from_doc(doc: Any) -> Certificate:
    top = _obj(doc, ("format", "format_version", "name", "xu", "registries", "morphisms",
                     "resolvers", "digest", "tables"), "the certificate")
    _need(top["format"] == CERTIFICATE_FORMAT,
          f"format must be {CERTIFICATE_FORMAT!r}, got {str(top['format'])[:40]!r}")
    _need(top["format_version"] == FORMAT_VERSION,
          f"format_version {top['format_version']!r} is not supported (this reader: "
          f"{FORMAT_VERSION})")
    name = _name(top["name"], "name")
    _need(isinstance(top["xu"], bool), "xu must be true or false")
    digest = top["digest"]
    _need(isinstance(digest, str) and len(digest) == 64
          and all(c in "0123456789abcdef" for c in digest), "digest must be 64 hex digits")
    tables = _obj(top["tables"], ("registries", "morphisms", "resolvers"), "tables")
    for k in ("registries", "morphisms", "resolvers"):
        _need(isinstance(tables[k], dict), f"tables.{k} must be an object")
    regs: list[CertifiedRegistry] = []
    by_name: dict[str, CertifiedRegistry] = {}
    total = 0
    for i, r in enumerate(_items(top["registries"], "registries")):
        what = f"registries[{i}]"
        r = _obj(r, ("name", "vars", "events", "independent", "initial"), what)
        rname = _name(r["name"], f"{what}.name")
        _need(rname not in by_name, f"{what}: duplicate registry {rname!r}")
        vars_ = tuple(_var(v, f"{what}.vars[{j}]")
                      for j, v in enumerate(_items(r["vars"], f"{what}.vars")))
        _need(bool(vars_) and len({v.name for v in vars_}) == len(vars_),
              f"{what}.vars must be non-empty with distinct names")
        size = 1
        for v in vars_:
            size *= v.size
            _need(size <= MAX_STATES, f"{what}: more than {MAX_STATES} states")
        total += size
        _need(total <= 4 * MAX_STATES, f"registries: more than {4 * MAX_STATES} states in all")
        events = tuple(_name(e, f"{what}.events[{j}]")
                       for j, e in enumerate(_items(r["events"], f"{what}.events")))
        _need(len(set(events)) == len(events), f"{what}.events repeats a name")
        pairs = []
        for j, p in enumerate(_items(r["independent"], f"{what}.independent")):
            _need(isinstance(p, list) and len(p) == 2 and all(
                isinstance(e, str) and e in events for e in p) and p[0] != p[1],
                f"{what}.independent[{j}] must name two distinct events")
            pairs.append((str(p[0]), str(p[1])))
        initial = _int(r["initial"], 0, size - 1, f"{what}.initial")
        tab = tables["registries"].get(rname)
        tab = _obj(tab, ("nf", "step"), f"tables.registries.{rname}")
        nf = _table(tab["nf"], size, 1, (size,), f"tables.registries.{rname}.nf")[:, 0]
        steps = _items(tab["step"], f"tables.registries.{rname}.step")
        _need(len(steps) == len(events),
              f"tables.registries.{rname}.step has {len(steps)} rows for {len(events)} events")
        step = np.stack([_table(s, size, 1, (size,), f"tables.registries.{rname}.step[{j}]")
                         [:, 0] for j, s in enumerate(steps)]) if events else \
            np.zeros((0, size), dtype=np.int64)
        reg = CertifiedRegistry(rname, vars_, events, tuple(pairs), initial, _ids(nf),
                                _ids(step))
        regs.append(reg)
        by_name[rname] = reg
    _need(set(tables["registries"]) == set(by_name), "tables.registries names other registries")
    morphisms: list[Morphism] = []
    for i, m in enumerate(_items(top["morphisms"], "morphisms")):
        what = f"morphisms[{i}]"
        m = _obj(m, ("name", "source", "target", "shared"), what)
        mname = _name(m["name"], f"{what}.name")
        _need(mname not in {x.name for x in morphisms}, f"{what}: duplicate name {mname!r}")
        src, dst = _name(m["source"], f"{what}.source"), _name(m["target"], f"{what}.target")
        _need(src in by_name and dst in by_name, f"{what}: source and target must be "
                                                  "registries of the certificate")
        tv = {v.name: v for v in by_name[dst].vars}
        shared = tuple(_name(v, f"{what}.shared[{j}]")
                       for j, v in enumerate(_items(m["shared"], f"{what}.shared")))
        _need(bool(shared) and all(s in tv for s in shared) and len(set(shared)) == len(shared),
              f"{what}.shared must name distinct vars of {dst!r}")
        table = _table(tables["morphisms"].get(mname), by_name[src].size, len(shared),
                       [tv[s].size for s in shared], f"tables.morphisms.{mname}")
        morphisms.append(Morphism(mname, src, dst, tuple(map(str, shared)), fn=TableMap(
            by_name[src].vars, _shared_vars(by_name[dst].vars, shared), table)))
    _need(set(tables["morphisms"]) == {m.name for m in morphisms},
          "tables.morphisms names other morphisms")
    resolvers: list[Resolver] = []
    for i, r in enumerate(_items(top["resolvers"], "resolvers")):
        what = f"resolvers[{i}]"
        r = _obj(r, ("name", "target", "vars", "proposals"), what)
        rname = _name(r["name"], f"{what}.name")
        _need(rname not in {x.name for x in resolvers}, f"{what}: duplicate name {rname!r}")
        dst = _name(r["target"], f"{what}.target")
        _need(dst in by_name, f"{what}.target must be a registry of the certificate")
        tv = {v.name: v for v in by_name[dst].vars}
        rvars = tuple(_name(v, f"{what}.vars[{j}]")
                      for j, v in enumerate(_items(r["vars"], f"{what}.vars")))
        _need(bool(rvars) and all(v in tv for v in rvars) and len(set(rvars)) == len(rvars),
              f"{what}.vars must name distinct vars of {dst!r}")
        coords = []
        for j, p in enumerate(_items(r["proposals"], f"{what}.proposals")):
            _need(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                  and p[0] in by_name and p[1] in rvars,
                  f"{what}.proposals[{j}] must be [source registry, resolved var]")
            coords.append((str(p[0]), str(p[1])))
        rows = 1
        for _, cvar in coords:
            rows *= tv[cvar].size
            _need(rows <= MAX_COMBINATIONS, f"{what}: more than {MAX_COMBINATIONS} rows")
        out = tuple(tv[v] for v in rvars)
        table = _table(tables["resolvers"].get(rname), rows, len(out), [v.size for v in out],
                       f"tables.resolvers.{rname}")
        fn = _TableResolver(tuple(coords), tuple(tv[v] for _, v in coords), out, table)
        resolvers.append(Resolver(dst, tuple(map(str, rvars)), fn, rname))
    _need(set(tables["resolvers"]) == {r.name for r in resolvers},
          "tables.resolvers names other resolvers")
    return Certificate(name, bool(top["xu"]), tuple(regs), tuple(morphisms), tuple(resolvers),
                       digest)
