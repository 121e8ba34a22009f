"""One stored row per committed batch: the layout both SQL stores share.

A batch's events are one JSON array of rows ``[origin, seq, hlc, event,
deps, meta]`` (the wire's row shape), kept with the smallest and largest hlc
of the batch and its size. A commit is then one insert, however many events
it holds: no per-event row, index entry or statement. Recovery stays exact
because a row is written by one transaction (all of a batch or nothing) and
compaction rewrites a batch that straddles the horizon in the same
transaction as the snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import itemgetter
from sys import intern
from typing import Any

from ..._bulk import BULK, bulk
from ..envelope import Envelope, _Checked, rows_of

__all__ = ["check_fresh", "decode_rows", "encode_kept", "encode_rows", "rows_above"]

_ORIGIN = itemgetter(2)
_SEQ = itemgetter(3)
_HLC = itemgetter(4)
# the rows are fresh JSON values (validated envelopes): no cycle to look for
_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def check_fresh(top: dict[str, int], envelopes: Sequence[Envelope]) -> dict[str, int] | str:
    """The largest seq of each origin once ``envelopes`` are stored on top of
    ``top``; or the id of the first envelope already stored (an origin's
    numbers must only grow: no event is stored twice)."""
    envelopes = rows_of(envelopes)
    first = envelopes[0]
    origin, seq0 = first[2], first[3]
    n = len(envelopes)
    last = envelopes[-1]
    # the usual batch (emit_many, one origin's stream): one origin, numbered
    # on from the stored top without gaps, checked in C
    if (last[2] == origin and last[3] == seq0 + n - 1 and seq0 > top.get(origin, 0)
            and list(map(_SEQ, envelopes)) == list(range(seq0, seq0 + n))
            and list(map(_ORIGIN, envelopes)).count(origin) == n):
        seen = dict(top)
        seen[origin] = last[3]
        return seen
    seen = dict(top)
    get = seen.get
    for e in envelopes:
        if e[3] <= get(e[2], 0):
            return str(e[1])
        seen[e[2]] = e[3]
    return seen


def encode_rows(envelopes: Sequence[Envelope]) -> tuple[int, int, int, str]:
    """``(lo, hi, n, data)`` of a batch: its smallest and largest hlc, its
    size and its rows as JSON."""
    envelopes = rows_of(envelopes)
    with bulk(len(envelopes)):
        data = _ENCODE([e[2:8] for e in envelopes])
    hlcs = list(map(_HLC, envelopes))
    return min(hlcs), max(hlcs), len(envelopes), data


def decode_rows(data: str | bytes, policy: str) -> list[Envelope]:
    """The envelopes of one stored batch; ValueError or TypeError when the
    row is unreadable."""
    new = tuple.__new__
    items = json.loads(data)
    with bulk(len(items) if len(items) >= BULK else 0):
        return [new(_Checked, ((h, o, q), f"{o}:{q}", intern(o), q, h, intern(ev), tuple(d),
                               meta, policy))
                for o, q, h, ev, d, meta in items]


def rows_above(data: str | bytes, horizon: int) -> tuple[list[Any], int]:
    """The rows of a stored batch with hlc above ``horizon``, and how many
    were dropped (compaction of a batch that straddles the horizon)."""
    items = json.loads(data)
    keep = [it for it in items if it[2] > horizon]
    return keep, len(items) - len(keep)


def encode_kept(rows: list[Any]) -> tuple[int, int, str]:
    """``(lo, n, data)`` of the rows ``rows_above`` kept."""
    return min(it[2] for it in rows), len(rows), _ENCODE(rows)


def drop_compacted(execute: Any, replica: str, horizon: int, ph: str = "?") -> int:
    """Inside the caller's transaction: delete ``replica``'s events with hlc
    at or below ``horizon`` (per-event rows of the old layout and batch rows,
    trimming a batch that straddles the horizon); how many were deleted.
    ``execute(sql, params)`` is the connection's, ``ph`` its placeholder."""
    def q(sql: str) -> str:
        return sql.replace("?", ph)
    r, h = replica, horizon
    n = int(execute(q("DELETE FROM cv_events WHERE replica = ? AND hlc <= ?"), (r, h)).rowcount)
    for pos, data in execute(q("SELECT pos, data FROM cv_batches WHERE replica = ? AND lo <= ? "
                               "AND hi > ?"), (r, h, h)).fetchall():
        keep, dropped = rows_above(data, h)
        n += dropped
        execute(q("UPDATE cv_batches SET lo = ?, n = ?, data = ? WHERE pos = ?"),
                (*encode_kept(keep), pos))
    n += int(execute(q("SELECT coalesce(sum(n), 0) FROM cv_batches WHERE replica = ? "
                       "AND hi <= ?"), (r, h)).fetchone()[0])
    execute(q("DELETE FROM cv_batches WHERE replica = ? AND hi <= ?"), (r, h))
    return n


def stored_log(policy: str, rows: Sequence[Sequence[Any]],
               batches: Sequence[Sequence[Any]], where: str) -> list[Envelope]:
    """The retained log from the per-event rows of the old layout, then the
    batch rows (each ``(data,)``), in stored order; an unreadable batch is a
    StoreError naming ``where`` (the store and the replica)."""
    from ..errors import StoreError
    from .base import row_envelope
    out = [row_envelope(policy, *row) for row in rows]
    with bulk(len(batches) * BULK):  # one pause of the collector for the whole log
        for (data,) in batches:
            try:
                out.extend(decode_rows(data, policy))
            except (ValueError, TypeError) as exc:
                raise StoreError(f"{where} is unreadable: {exc}") from None
    return out
