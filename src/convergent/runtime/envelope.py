"""Envelopes: one accepted event, and how it travels.

An envelope is an immutable value (a tuple underneath, so building, sorting
and comparing millions of them stays cheap). Its identity is ``origin:seq``:
``seq`` counts the events of one origin from 1 without gaps, which is what
lets a replica deduplicate with a version vector instead of a set of ids.
Its position in the canonical order is ``key = (hlc, origin, seq)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from sys import intern
from operator import itemgetter
from typing import Any, overload

from .._bulk import bulk
from .errors import PolicyMismatchError, ProtocolError

__all__ = ["DEFAULT_LIMITS", "Envelope", "Envelopes", "Limits", "as_envelope", "check_envelope",
           "check_meta_value", "decode_batch", "decode_batch_part", "encode_batch", "loads_bounded",
           "rows_of", "valid_replica_id"]

WIRE_FORMAT = "convergent-envelopes/1"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


#: ids already found valid (a replica sees few origins, each many times);
#: bounded, and a pure memo: it changes no answer
_VALID_IDS: set[str] = set()


def valid_replica_id(name: object) -> bool:
    """Whether ``name`` may name a replica: 1 to 64 of ``A-Z a-z 0-9 _ . -``
    (no ``:`` and no ``,``, which separate ids in the wire and the stores)."""
    if type(name) is str and name in _VALID_IDS:
        return True
    if not isinstance(name, str) or _ID.match(name) is None:
        return False
    if len(_VALID_IDS) < 4096:
        _VALID_IDS.add(name)
    return True


def split_id(event_id: str) -> tuple[str, int]:
    """``"r1:17"`` -> ``("r1", 17)``; raises ProtocolError on anything else."""
    origin, sep, seq = event_id.rpartition(":")
    if not sep or not origin or not seq.isdigit():
        raise ProtocolError(f"event id {event_id!r} is not 'origin:seq'")
    return origin, int(seq)


class Envelope(tuple):  # type: ignore[type-arg,unused-ignore]
    """One event as accepted by a replica.

    Fields: ``id`` (``origin:seq``), ``origin`` (the replica that issued it),
    ``seq`` (its 1-based number at that origin), ``hlc`` (hybrid logical
    clock timestamp), ``event`` (the machine event name), ``deps`` (ids of
    the events its issuer had applied and that nothing else it had applied
    depended on: the causal frontier), ``meta`` (a JSON object or None; do
    not mutate it), ``policy`` (the machine's policy digest) and ``key``
    (``(hlc, origin, seq)``, its place in the canonical order).
    """

    __slots__ = ()

    def __new__(cls, origin: str, seq: int, hlc: int, event: str,
                deps: Iterable[str] = (), meta: Mapping[str, Any] | None = None,
                policy: str = "") -> Envelope:
        return tuple.__new__(cls, ((hlc, origin, seq), f"{origin}:{seq}", origin, seq, hlc,
                                   event, tuple(deps), meta, policy))

    key: tuple[int, str, int] = property(itemgetter(0))  # type: ignore[assignment]
    id: str = property(itemgetter(1))  # type: ignore[assignment]
    origin: str = property(itemgetter(2))  # type: ignore[assignment]
    seq: int = property(itemgetter(3))  # type: ignore[assignment]
    hlc: int = property(itemgetter(4))  # type: ignore[assignment]
    event: str = property(itemgetter(5))  # type: ignore[assignment]
    deps: tuple[str, ...] = property(itemgetter(6))  # type: ignore[assignment]
    meta: Mapping[str, Any] | None = property(itemgetter(7))  # type: ignore[assignment]
    policy: str = property(itemgetter(8))  # type: ignore[assignment]

    def __hash__(self) -> int:  # meta may be a dict: hash the identity
        return hash(self[1])

    def __repr__(self) -> str:
        deps = ",".join(self[6])
        return f"Envelope({self[1]} {self[5]} hlc={self[4]} deps=[{deps}])"

    def __reduce__(self) -> Any:
        return (Envelope, (self[2], self[3], self[4], self[5], self[6], self[7], self[8]))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of one envelope (policy digest included)."""
        return {"id": self[1], "origin": self[2], "seq": self[3], "hlc": self[4],
                "event": self[5], "deps": list(self[6]), "meta": self[7], "policy": self[8]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Envelope:
        """Parse ``to_dict`` output; raises ProtocolError when malformed."""
        if not isinstance(data, Mapping):
            raise ProtocolError(f"an envelope must be a JSON object, got {type(data).__name__}")
        deps = data.get("deps") or ()
        if not isinstance(deps, (list, tuple)):
            raise ProtocolError(f"envelope deps={deps!r} (expected a list of ids)")
        try:
            env = cls(data["origin"], data["seq"], data["hlc"], data["event"],
                      deps, data.get("meta"), data.get("policy", ""))
        except (KeyError, TypeError) as exc:
            raise ProtocolError(f"envelope lacks field {exc.args[0]!r}: {dict(data)!r}") from None
        check_envelope(env)
        if "id" in data and data["id"] != env.id:
            raise ProtocolError(f"envelope id {data['id']!r} does not match origin:seq {env.id!r}")
        return env

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        return cls.from_dict(loads_bounded(text, what="envelope"))


class _Checked(Envelope):
    """An envelope whose fields are known to be well formed (with the default
    limits): decoded by ``decode_batch`` or issued by a replica. ``receive``
    does not check it again, which keeps the hot path cheap; anything built
    through the public ``Envelope(...)`` is checked."""

    __slots__ = ()



_new = tuple.__new__


def as_envelope(row: tuple[Any, ...]) -> Envelope:
    """The ``Envelope`` of a replica's log row. A replica keeps the events it
    issues in bulk as plain tuples of the envelope's layout: the cyclic
    collector stops tracking a plain tuple of immutable fields after a pass
    or two (once its key tuple is dropped), while it walks every
    tuple-subclass instance at every full collection (a log of millions of envelopes made each collection cost
    that much). Only for rows a replica made: the result is trusted."""
    return row if type(row) is not tuple else _new(_Checked, row)  # type: ignore[return-value]


def _as_unchecked(row: tuple[Any, ...]) -> Envelope:
    return row if isinstance(row, Envelope) else _new(Envelope, row)


class Envelopes(Sequence[Envelope]):
    """Envelopes read from rows (``emit_many``'s result, what a store's
    ``append`` and a transport's ``broadcast`` are given): a read-only
    sequence that builds each ``Envelope`` when it is read, so that a caller
    that drops the result, or a store that only encodes fields, never pays
    for envelope objects it does not use. Compares equal to a list or tuple
    of the same envelopes. Built from rows outside a replica, it yields
    envelopes a receiver checks like any other."""

    __slots__ = ("_read", "_rows")

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._rows = rows
        self._read = _as_unchecked

    @classmethod
    def _issued(cls, rows: Sequence[tuple[Any, ...]]) -> Envelopes:
        """A view of a replica's own rows (valid by construction)."""
        view = cls(rows)
        view._read = as_envelope
        return view

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> Envelope: ...
    @overload
    def __getitem__(self, i: slice) -> Envelopes: ...
    def __getitem__(self, i: int | slice) -> Envelope | Envelopes:
        if isinstance(i, slice):
            view = Envelopes(self._rows[i])
            view._read = self._read
            return view
        return self._read(self._rows[i])

    def __iter__(self) -> Iterator[Envelope]:
        return map(self._read, self._rows)

    def __reversed__(self) -> Iterator[Envelope]:
        return map(self._read, reversed(self._rows))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Envelopes):
            other = other._rows
        if isinstance(other, (list, tuple)):
            return len(other) == len(self._rows) and all(
                a == b for a, b in zip(self._rows, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Iterable[Envelope]) -> list[Envelope]:
        return [*self, *other]

    def __radd__(self, other: Iterable[Envelope]) -> list[Envelope]:
        return [*other, *self]

    def __repr__(self) -> str:
        head = ", ".join(repr(e) for e in self[:3])
        more = f", ... ({len(self)} in all)" if len(self) > 3 else ""
        return f"Envelopes([{head}{more}])"


def rows_of(envelopes: Sequence[Envelope]) -> Sequence[Any]:
    """The rows under ``envelopes`` (an ``Envelopes`` view) or ``envelopes``
    itself: the stores and transports of this package read fields by
    position, which rows and envelopes share."""
    return envelopes._rows if type(envelopes) is Envelopes else envelopes


@dataclass(frozen=True)
class Limits:
    """Bounds on what a replica accepts from outside (an envelope, a wire
    message, a snapshot). Anything past them is refused at the boundary,
    before it can change state: one hostile or broken message must not be
    able to poison a replica.

    Args:
        max_drift_ms: how far (milliseconds) the physical part of an hlc may
            be ahead of this replica's wall clock. A further-ahead envelope is
            not accepted *now* (``stats.ahead``); anti-entropy sends it again,
            and it is accepted once the local clock caught up, so no
            committed event is refused for good. Default 5 minutes.
        max_meta_bytes: the JSON size of one event's ``meta``.
        max_meta_depth: how deeply ``meta`` may nest (objects and lists).
        max_deps: dependencies one envelope may name.
        max_message_bytes: one wire message (a batch, a snapshot offer, a
            sync request): larger ones are refused before decoding.
    """

    max_drift_ms: int = 300_000
    max_meta_bytes: int = 16_384
    max_meta_depth: int = 16
    max_deps: int = 1024
    max_message_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_drift_ms", "max_meta_bytes", "max_meta_depth", "max_deps",
                     "max_message_bytes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ProtocolError(f"Limits.{name}={v!r} (expected an int >= 1)")


DEFAULT_LIMITS = Limits()
#: an hlc above this is refused whatever the clocks say: ``tick`` adds to it,
#: and stores keep it in a signed 64-bit column
MAX_HLC = (1 << 62) - 1
#: ``seq`` fits a signed 64-bit column with room to count on
MAX_SEQ = (1 << 53) - 1
_EVENT = re.compile(r"^[^\x00-\x1f]{1,256}$")
_VALID_EVENTS: set[str] = set()


def _event_ok(event: str) -> bool:
    if _EVENT.match(event) is None:
        return False
    if len(_VALID_EVENTS) < 4096:
        _VALID_EVENTS.add(event)
    return True


def _depth_ok(value: Any, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` containers deep (iterative:
    a hostile value cannot exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            if d > limit:
                return False
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, (list, tuple)):
            if d > limit:
                return False
            stack.extend((x, d + 1) for x in v)
    return True


def check_meta_value(meta: Any, limits: Limits = DEFAULT_LIMITS, *,
                     where: str = "meta") -> None:
    """Raise ProtocolError unless ``meta`` is None or a JSON object within
    the size and depth limits (checked before anything serializes it)."""
    if meta is None:
        return
    if not isinstance(meta, Mapping):
        raise ProtocolError(f"{where}={meta!r:.80} (expected a JSON object or null)")
    if not _depth_ok(meta, limits.max_meta_depth):
        raise ProtocolError(f"{where} nests deeper than max_meta_depth="
                            f"{limits.max_meta_depth}")
    try:
        text = json.dumps(meta, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"{where} is not JSON-serializable: {exc}") from None
    if len(text) > limits.max_meta_bytes:
        raise ProtocolError(f"{where} is {len(text)} bytes of JSON (max_meta_bytes="
                            f"{limits.max_meta_bytes})")
    if not all(isinstance(k, str) for k in meta):
        raise ProtocolError(f"{where} has a key that is not a string")


def check_envelope(env: Envelope, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise ProtocolError unless every field has its type and range (the
    clock's drift is the replica's business: it needs its wall clock)."""
    if not isinstance(env, Envelope) or len(env) != 9:
        raise ProtocolError(f"{env!r:.80} is not an Envelope")
    key, eid, origin, seq, hlc, event, deps, meta, policy = env
    if not valid_replica_id(origin):
        raise ProtocolError(f"envelope origin={origin!r:.80} (expected a replica id: 1 to 64 "
                            "of A-Z a-z 0-9 _ . -)")
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise ProtocolError(f"envelope {origin}: seq={seq!r:.40} (expected an int in "
                            f"[1, {MAX_SEQ}])")
    if type(hlc) is not int or not 0 <= hlc <= MAX_HLC:
        raise ProtocolError(f"envelope {origin}:{seq}: hlc={hlc!r:.40} (expected an int in "
                            f"[0, 2**62))")
    if key != (hlc, origin, seq) or eid != f"{origin}:{seq}":
        raise ProtocolError(f"envelope {origin}:{seq}: key or id does not match its fields")
    if type(event) is not str or (event not in _VALID_EVENTS and not _event_ok(event)):
        raise ProtocolError(f"envelope {eid}: event={event!r:.80} (expected an event name)")
    if not isinstance(deps, tuple) or len(deps) > limits.max_deps:
        raise ProtocolError(f"envelope {eid}: more than max_deps={limits.max_deps} "
                            "dependencies")
    for d in deps:
        if not isinstance(d, str):
            raise ProtocolError(f"envelope {eid}: dependency {d!r:.80} is not an id")
        o, n = split_id(d)
        if not valid_replica_id(o) or not 1 <= n <= MAX_SEQ:
            raise ProtocolError(f"envelope {eid}: dependency {d!r:.80} is not an event id")
        if o == origin and n >= seq:
            raise ProtocolError(f"envelope {eid}: depends on its own or a later event {d}")
    if meta is not None:
        check_meta_value(meta, limits, where=f"envelope {eid}: meta")
    if not isinstance(policy, str) or len(policy) > 128:
        raise ProtocolError(f"envelope {eid}: policy={policy!r:.80} (expected a hex digest)")


def loads_bounded(data: bytes | str, limits: Limits = DEFAULT_LIMITS, *,
                  what: str = "wire message") -> Any:
    """``json.loads`` that refuses oversized input and turns a nesting bomb
    (RecursionError) into a ProtocolError, so a decoding failure is always a
    per-message failure."""
    if len(data) > limits.max_message_bytes:
        raise ProtocolError(f"{what} is {len(data)} bytes (max_message_bytes="
                            f"{limits.max_message_bytes})")
    try:
        return json.loads(data)
    except RecursionError:
        raise ProtocolError(f"{what} nests too deeply to decode") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from None


#: parts a multi-message answer may have (``encode_batch(part=...)``)
MAX_PARTS = 100_000
_PART_TAG = re.compile(r"^[A-Za-z0-9]{1,32}$")


def encode_batch(machine: str, policy: str, envelopes: Sequence[Envelope], *,
                 part: tuple[str, int, int] | None = None) -> bytes:
    """Several envelopes of one machine policy as one wire message (JSON).

    The policy digest is written once, in the header; every decoded envelope
    carries it again. ``part=(tag, i, n)`` marks the message as part ``i``
    (from 0) of ``n`` of one answer named ``tag`` (1 to 32 letters or
    digits), which a receiver applies as one batch once all parts are in
    (``decode_batch_part``); receivers that do not know the field ignore it."""
    envelopes = rows_of(envelopes)
    for e in envelopes:
        if e[8] != policy:
            raise PolicyMismatchError(
                f"cannot send {e[1]} (policy {e[8][:12]}) in a batch of policy {policy[:12]}",
                expected=policy, got=e[8])
    rows = [e[2:8] for e in envelopes]  # (origin, seq, hlc, event, deps, meta): a JSON row
    msg: dict[str, Any] = {"format": WIRE_FORMAT, "machine": machine, "policy": policy,
                           "events": rows}
    if part is not None:
        _check_part(list(part))
        msg["part"] = list(part)
    return json.dumps(msg, separators=(",", ":")).encode()


def _check_part(part: object) -> tuple[str, int, int]:
    if (not isinstance(part, list) or len(part) != 3 or not isinstance(part[0], str)
            or _PART_TAG.match(part[0]) is None or type(part[1]) is not int
            or type(part[2]) is not int or not 0 <= part[1] < part[2] <= MAX_PARTS):
        raise ProtocolError(f"wire message part={part!r:.80} (expected [tag, i, n] with a tag "
                            f"of 1 to 32 letters or digits and 0 <= i < n <= {MAX_PARTS})")
    return part[0], part[1], part[2]


def decode_batch(data: bytes | str,
                 limits: Limits = DEFAULT_LIMITS) -> tuple[str, str, list[Envelope]]:
    """``(machine, policy, envelopes)`` of an ``encode_batch`` message;
    raises ProtocolError when malformed (oversized, nested too deeply, a
    field of the wrong type or out of range): nothing of it is returned."""
    with bulk(len(data) // 64):
        machine, policy, envelopes, _ = _decode_batch(data, limits)
    return machine, policy, envelopes


def decode_batch_part(data: bytes | str, limits: Limits = DEFAULT_LIMITS
                      ) -> tuple[str, str, list[Envelope], tuple[str, int, int] | None]:
    """``decode_batch`` and the message's ``part`` (``(tag, i, n)``, or None
    for a whole answer); raises ProtocolError when malformed."""
    with bulk(len(data) // 64):
        return _decode_batch(data, limits)


def _decode_batch(data: bytes | str, limits: Limits
                  ) -> tuple[str, str, list[Envelope], tuple[str, int, int] | None]:
    msg = loads_bounded(data, limits)
    if not isinstance(msg, dict) or msg.get("format") != WIRE_FORMAT:
        fmt = msg.get("format") if isinstance(msg, dict) else type(msg).__name__
        raise ProtocolError(f"wire message format={fmt!r:.80} (expected {WIRE_FORMAT!r})")
    machine, policy, rows = msg.get("machine"), msg.get("policy"), msg.get("events")
    if not isinstance(machine, str) or not isinstance(policy, str) or not isinstance(rows, list):
        raise ProtocolError("wire message needs string 'machine' and 'policy' and a list 'events'")
    out: list[Envelope] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 6:
            raise ProtocolError(f"wire event {row!r:.80} is not [origin, seq, hlc, event, deps, "
                                "meta]")
        if not isinstance(row[4], list):
            raise ProtocolError(f"wire event {row!r:.80}: deps must be a list of ids")
        origin, event = row[0], row[3]
        if isinstance(origin, str) and isinstance(event, str):  # shared, not one per envelope
            origin, event = intern(origin), intern(event)
        try:
            env = _Checked(origin, row[1], row[2], event, row[4], row[5], policy)
        except TypeError as exc:
            raise ProtocolError(f"wire event {row!r:.80}: {exc}") from None
        check_envelope(env, limits)
        out.append(env)
    part = msg.get("part")
    return machine, policy, out, None if part is None else _check_part(part)
