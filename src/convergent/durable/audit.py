"""The hash-chained audit log: one row per transition and per rejected
attempt, each row's hash covering its fields and the previous row's hash.

``verify_audit`` recomputes the chain and reports every break: an edited
row (its hash no longer matches), a deleted or inserted row (a gap in
``seq`` or a ``prev`` that does not match), a truncated tail (the head row,
updated in the same transaction as each append, is ahead of the last row).

Without a key the chain detects accidental and naive edits; anyone with
write access could recompute every hash after an edit. With ``key`` (an
HMAC-SHA256 secret kept outside the database) a forger also needs the key.
The table itself refuses UPDATE and DELETE by trigger.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .errors import AuditError
from .store import EntityStore, dumps

__all__ = ["COLUMNS", "AuditRecord", "row_hash", "verify_audit"]

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


def row_hash(prev: str, fields: tuple[object, ...], key: bytes | None) -> str:
    data = (prev + "\n" + dumps(list(fields))).encode()
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def verify_audit(store: EntityStore, *, key: bytes | None = None,
                 raise_on_error: bool = False) -> list[str]:
    """Every break in the chain, as messages naming the row (empty: intact)."""
    problems: list[str] = []
    with store.tx() as tx:
        rows = tx.all(f"SELECT {', '.join(COLUMNS)}, prev, hash FROM dz_audit ORDER BY seq")
        head = tx.one("SELECT seq, hash FROM dz_audit_head WHERE id = 1")
    prev = ""
    expected = 1
    for row in rows:
        fields = tuple(row[:len(COLUMNS)])
        seq = int(fields[0])
        if seq != expected:
            problems.append(f"row seq {seq}: expected seq {expected} (rows deleted or "
                            "inserted before it)")
        if row[-2] != prev:
            problems.append(f"row seq {seq}: prev hash does not match the row before it")
        fields = (seq, *fields[1:])
        if row_hash(row[-2], fields, key) != row[-1]:
            problems.append(f"row seq {seq}: hash does not match its fields (edited)")
        prev = row[-1]
        expected = seq + 1
    if head is None:
        problems.append("the audit head row is missing")
    else:
        last = int(rows[-1][0]) if rows else 0
        if int(head[0]) != last or head[1] != prev:
            problems.append(f"the head says {int(head[0])} rows ending in {str(head[1])[:12]}, "
                            f"the table ends at seq {last} (rows deleted at the end)")
    if problems and raise_on_error:
        raise AuditError(problems)
    return problems
