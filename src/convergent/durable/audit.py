"""The hash-chained audit log: one row per transition and per rejected
attempt, each row's hash covering its fields and the previous row's hash.

There is one chain per entity kind (``dz_audit.chain`` is the kind), each
anchored by a head row in ``dz_audit_heads`` (its last seq and hash),
created with the kind and moved in the same transaction as each append.
Writers of different kinds never wait for each other's chain; writers of one
kind take its head's lock only for the end of their transaction.

``verify_audit`` recomputes every chain and reports every break: an edited
row (its hash no longer matches), a deleted, inserted or reordered row (a
gap in ``seq`` or a ``prev`` that does not match), a truncated tail (the
head is ahead of the last row), a chain whose head is gone, and a kind with
an event table but no chain head (rows and head both deleted).

Without a key the chain detects accidental and naive edits; anyone with
write access could recompute every hash after an edit. With ``key`` (an
HMAC-SHA256 secret kept outside the database) a forger also needs the key.
Someone who deletes the last rows *and* rewinds the head to an earlier row
is not detectable from inside the database: compare the heads with a copy
kept elsewhere (``convergent audit verify --json`` prints them). The table
itself refuses UPDATE and DELETE by trigger.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import AuditError
from .store import EntityStore, Tx

__all__ = ["CHAIN_VERSION", "COLUMNS", "AuditRecord", "AuditReport", "audit_report", "hash_rows",
           "row_hash", "verify_audit"]

COLUMNS = ("seq", "at", "kind", "entity", "transition_id", "actor", "event", "from_state",
            "to_state", "trace_id", "outcome", "reason")


@dataclass(frozen=True)
class AuditRecord:
    """What one audit row says (``seq``, ``at`` and the hashes are added on
    append). ``outcome`` is ``applied``, ``rejected`` or ``created``."""

    kind: str
    entity: str
    transition_id: str
    actor: str
    event: str
    from_state: str
    to_state: str
    trace_id: str
    outcome: str
    reason: str = ""


# the same bytes as ``dumps`` for a flat list of scalars, without building an
# encoder per row (hashing is on every transition's path)
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

CHAIN_VERSION = 2
"""The encoding new rows are hashed with. Version 1 (every row written
before 2026-12-03): SHA-256 over ``prev``, a newline and the fields as
canonical JSON; its hashes are 64 hex digits. Version 2: the same over the
fields as text joined by the unit separator U+001F, a NULL written as a lone
U+001E (JSON again for the rare row with a field that holds either character
or is neither text nor NULL, told apart by its leading ``[``: a joined row
starts with the digits of ``seq``), and the hash is written ``2:`` + 64 hex
digits. A chain may hold both (rows before and after an
upgrade); each row is verified under the version its hash names. Joining
costs a fraction of encoding JSON per row, and the version prefix is
covered by the next row's hash like the rest of ``prev``."""

_SEP = "\x1f"
_V2 = "2:"


_NULL = "\x1e"


def _text_v2(fields: tuple[object, ...]) -> str:
    """Version 2's injective text of a row: ``seq`` (an int) and the other
    fields (text, or NULL written as a lone U+001E) joined by U+001F when no
    text field holds either character; else the fields as canonical JSON
    (which starts with ``[`` where the joined form starts with a digit), so
    that no two different rows, NULLs and types included, share a text.
    Raises TypeError for a field JSON cannot hold (a blob written over a
    text column): the verifier reports that row as edited."""
    if type(fields[0]) is int:
        parts = [str(fields[0])]
        for f in fields[1:]:
            if f is None:
                parts.append(_NULL)
            elif type(f) is str and _SEP not in f and _NULL not in f:
                parts.append(f)
            else:
                break
        else:
            return _SEP.join(parts)
    return _encode(list(fields))


def _digest(data: bytes, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return _mac(key)(data)


@functools.lru_cache(maxsize=16)
def _mac(key: bytes) -> Callable[[bytes], str]:
    """HMAC-SHA256 under ``key`` (RFC 2104; equal to ``hmac.new(key, data,
    sha256).hexdigest()``) with the padded key's inner and outer states
    hashed once: per row only two state copies, where ``hmac`` sets the key
    up again for every message (several microseconds through OpenSSL 3)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def mac(data: bytes) -> str:
        i = inner.copy()
        i.update(data)
        o = outer.copy()
        o.update(i.digest())
        return o.hexdigest()

    return mac


def row_hash(prev: str, fields: tuple[object, ...], key: bytes | None,
             version: int = CHAIN_VERSION) -> str:
    """SHA-256 (HMAC-SHA256 with ``key``) over the previous hash and the
    row's fields, under chain ``version`` (see ``CHAIN_VERSION``)."""
    if version == 1:
        return _digest(f"{prev}\n{_encode(list(fields))}".encode(), key)
    if version != 2:
        raise ValueError(f"audit chain version {version} (known: 1, 2)")
    return _V2 + _digest(f"{prev}\n{_text_v2(fields)}".encode(), key)


def hash_rows(prev: str, seq: int, rows: list[tuple[str, ...]], chain: str,
              key: bytes | None) -> tuple[list[tuple[object, ...]], int, str]:
    """Number and hash queued rows (each the fields after ``seq``, all
    text) after ``(seq, prev)``, under the current version: the rows to
    insert (``chain``, fields, ``prev``, ``hash``), the last seq and hash.
    The same as ``row_hash`` row by row, in one loop."""
    sep, count, null = _SEP, len(COLUMNS) - 1, _NULL
    digest = (lambda data: hashlib.sha256(data).hexdigest()) if key is None else _mac(key)
    out: list[tuple[object, ...]] = []
    append = out.append
    for queued in rows:
        seq += 1
        try:
            text = f"{seq}{sep}{sep.join(queued)}"
        except TypeError:  # a field that is not text: as the verifier reads it back
            text = _text_v2((seq, *queued))
        else:
            if text.count(sep) != count or null in text:
                text = _text_v2((seq, *queued))
        h = _V2 + digest(f"{prev}\n{text}".encode())
        append((chain, seq, *queued, prev, h))
        prev = h
    return out, seq, prev


def verify_audit(store: EntityStore, *, key: bytes | None = None,
                 raise_on_error: bool = False) -> list[str]:
    """Every break in every chain, as messages naming the chain and row
    (empty: intact)."""
    return audit_report(store, key=key, raise_on_error=raise_on_error).problems


@dataclass(frozen=True)
class AuditReport:
    """What ``audit_report`` found: ``rows`` checked, each chain's head as
    stored (``chain -> (seq, hash)``: keep a copy outside the database to
    detect a truncation that also rewinds the head), and the ``problems``."""

    rows: int
    heads: dict[str, tuple[int, str]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_report(store: EntityStore, *, key: bytes | None = None,
                 raise_on_error: bool = False) -> AuditReport:
    """Recompute every chain (one per entity kind, and ``''`` for rows
    written before chains were per kind) against its head row. Every kind
    with an event table must have a head: it is created, at seq 0, with the
    kind, so deleting a whole chain (rows and head) is reported too."""
    problems: list[str] = []
    with store.tx() as tx:
        rows = tx.all(f"SELECT chain, {', '.join(COLUMNS)}, prev, hash FROM dz_audit "
                      "ORDER BY chain, seq")
        heads = {str(c): (int(n), str(h)) for c, n, h in
                 tx.all("SELECT chain, seq, hash FROM dz_audit_heads")}
        kinds = _event_table_kinds(tx)
    by_chain: dict[str, list[Any]] = {}
    for row in rows:
        by_chain.setdefault(str(row[0]), []).append(row[1:])
    for kind in sorted(kinds - heads.keys()):
        problems.append(f"chain {kind!r}: its head row is missing (the kind has an event "
                        "table; its chain's anchor was deleted)")
    for chain in sorted(by_chain.keys() | heads.keys()):
        problems.extend(_check_chain(chain, by_chain.get(chain, []), heads.get(chain), key))
    if problems and raise_on_error:
        raise AuditError(problems)
    return AuditReport(len(rows), heads, problems)


def _check_chain(chain: str, rows: list[Any], head: tuple[int, str] | None,
                 key: bytes | None) -> list[str]:
    problems: list[str] = []
    name = f"chain {chain!r}"
    prev = ""
    expected = 1
    for row in rows:
        seq = int(row[0])
        fields = (seq, *row[1:len(COLUMNS)])
        if seq != expected:
            problems.append(f"{name} row seq {seq}: expected seq {expected} (rows deleted or "
                            "inserted before it)")
        if row[-2] != prev:
            problems.append(f"{name} row seq {seq}: prev hash does not match the row before it")
        stored = str(row[-1])
        try:
            ok = row_hash(row[-2], fields, key, 2 if stored.startswith(_V2) else 1) == stored
        except (TypeError, ValueError):  # a field no encoding holds (a blob): edited
            ok = False
        if not ok:
            problems.append(f"{name} row seq {seq}: hash does not match its fields (edited)")
        prev = row[-1]
        expected = seq + 1
    last = int(rows[-1][0]) if rows else 0
    if head is None:
        problems.append(f"{name}: {len(rows)} rows but no head row (the anchor was deleted)")
    elif head[0] != last or head[1] != prev:
        problems.append(f"{name}: the head says {head[0]} rows ending in {head[1][:12]}, "
                        f"the table ends at seq {last} (rows deleted at the end)")
    return problems


def _event_table_kinds(tx: Tx) -> set[str]:
    """Kinds with an event table (``dz_ev_<kind>``), from the catalog."""
    if tx.dialect == "postgres":
        names = tx.all("SELECT table_name FROM information_schema.tables WHERE "
                       "table_schema = current_schema() AND table_name LIKE 'dz\\_ev\\_%'")
    else:
        names = tx.all("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                       "name LIKE 'dz\\_ev\\_%' ESCAPE '\\'")
    return {str(n[0])[len("dz_ev_"):] for n in names}
