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

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from .errors import AuditError
from .store import EntityStore, Tx

__all__ = ["COLUMNS", "AuditRecord", "AuditReport", "audit_report", "row_hash", "verify_audit"]

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


def row_hash(prev: str, fields: tuple[object, ...], key: bytes | None) -> str:
    """SHA-256 (HMAC-SHA256 with ``key``) over the previous hash and the
    row's fields as canonical JSON."""
    data = f"{prev}\n{_encode(list(fields))}".encode()
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


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
        if row_hash(row[-2], fields, key) != row[-1]:
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
