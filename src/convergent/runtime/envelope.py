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
from sys import intern
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from .errors import PolicyMismatchError, ProtocolError

__all__ = ["Envelope", "decode_batch", "encode_batch", "valid_replica_id"]

WIRE_FORMAT = "convergent-envelopes/1"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def valid_replica_id(name: object) -> bool:
    """Whether ``name`` may name a replica: 1 to 64 of ``A-Z a-z 0-9 _ . -``
    (no ``:`` and no ``,``, which separate ids in the wire and the stores)."""
    return isinstance(name, str) and _ID.match(name) is not None


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
        except KeyError as exc:
            raise ProtocolError(f"envelope lacks field {exc.args[0]!r}: {dict(data)!r}") from None
        check_envelope(env)
        if "id" in data and data["id"] != env.id:
            raise ProtocolError(f"envelope id {data['id']!r} does not match origin:seq {env.id!r}")
        return env

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProtocolError(f"envelope is not JSON: {exc}") from None
        return cls.from_dict(data)


def check_envelope(env: Envelope) -> None:
    """Raise ProtocolError unless every field has its type and range."""
    _, _, origin, seq, hlc, event, deps, meta, policy = env
    if not valid_replica_id(origin):
        raise ProtocolError(f"envelope origin={origin!r} (expected a replica id: 1 to 64 of "
                            "A-Z a-z 0-9 _ . -)")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ProtocolError(f"envelope {origin}: seq={seq!r} (expected an int >= 1)")
    if isinstance(hlc, bool) or not isinstance(hlc, int) or not 0 <= hlc < 2 ** 63:
        raise ProtocolError(f"envelope {env.id}: hlc={hlc!r} (expected an int in [0, 2**63))")
    if not isinstance(event, str) or not event:
        raise ProtocolError(f"envelope {env.id}: event={event!r} (expected an event name)")
    for d in deps:
        if not isinstance(d, str):
            raise ProtocolError(f"envelope {env.id}: dependency {d!r} is not an id")
        split_id(d)
    if meta is not None and not isinstance(meta, Mapping):
        raise ProtocolError(f"envelope {env.id}: meta={meta!r} (expected a JSON object or null)")
    if not isinstance(policy, str):
        raise ProtocolError(f"envelope {env.id}: policy={policy!r} (expected a hex digest)")


def encode_batch(machine: str, policy: str, envelopes: Sequence[Envelope]) -> bytes:
    """Several envelopes of one machine policy as one wire message (JSON).

    The policy digest is written once, in the header; every decoded envelope
    carries it again."""
    rows = []
    for e in envelopes:
        if e[8] != policy:
            raise PolicyMismatchError(
                f"cannot send {e[1]} (policy {e[8][:12]}) in a batch of policy {policy[:12]}",
                expected=policy, got=e[8])
        rows.append([e[2], e[3], e[4], e[5], e[6], e[7]])
    return json.dumps({"format": WIRE_FORMAT, "machine": machine, "policy": policy,
                       "events": rows}, separators=(",", ":")).encode()


def decode_batch(data: bytes | str) -> tuple[str, str, list[Envelope]]:
    """``(machine, policy, envelopes)`` of an ``encode_batch`` message;
    raises ProtocolError when malformed."""
    try:
        msg = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"wire message is not JSON: {exc}") from None
    if not isinstance(msg, dict) or msg.get("format") != WIRE_FORMAT:
        fmt = msg.get("format") if isinstance(msg, dict) else type(msg).__name__
        raise ProtocolError(f"wire message format={fmt!r} (expected {WIRE_FORMAT!r})")
    machine, policy, rows = msg.get("machine"), msg.get("policy"), msg.get("events")
    if not isinstance(machine, str) or not isinstance(policy, str) or not isinstance(rows, list):
        raise ProtocolError("wire message needs string 'machine' and 'policy' and a list 'events'")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 6:
            raise ProtocolError(f"wire event {row!r} is not [origin, seq, hlc, event, deps, meta]")
        if not isinstance(row[4], list):
            raise ProtocolError(f"wire event {row!r}: deps must be a list of ids")
        origin, event = row[0], row[3]
        if isinstance(origin, str) and isinstance(event, str):  # shared, not one per envelope
            origin, event = intern(origin), intern(event)
        env = Envelope(origin, row[1], row[2], event, row[4], row[5], policy)
        check_envelope(env)
        out.append(env)
    return machine, policy, out
