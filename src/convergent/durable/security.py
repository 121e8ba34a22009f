"""Who may do what: the event is authorized, not the state.

* a transition lists the ``roles`` that may fire it (none: anyone) and may
  add an ``actor_guard(actor, payload)``;
* a state with ``entry_roles`` can only be entered by an actor holding one
  of them (checked on every state a step enters, however it got there);
* a ``sensitive`` state reads as ``NEUTRAL`` for an actor without its
  entry roles, and the chart's ``sensitive_fields`` are redacted in views
  and logs.

Envelopes carry requests across a process boundary. ``Envelope.from_dict``
bounds and types every field before anything else looks at it; the policy
refuses stale ones (older than ``max_age``, or from the future beyond
``max_skew``) and, with a key, unsigned or badly signed ones; the service
refuses a second envelope with the same id (recorded in the same
transaction as the transition it caused).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .chart import Actor, Chart, Transition
from .errors import EnvelopeRejected
from .store import dumps

__all__ = ["NEUTRAL", "Envelope", "EnvelopePolicy", "denial", "masked_leaves", "redact"]

NEUTRAL = "restricted"
REDACTED = "***"
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_DEPTH = 16
_ID = re.compile(r"^[A-Za-z0-9_.:@/-]{1,200}$")


def denial(chart: Chart, fired: tuple[Transition, ...], entered: tuple[str, ...],
           actor: Actor, payload: Mapping[str, Any]) -> str | None:
    """Why ``actor`` may not cause this step (None: allowed). Internal
    transitions (``done.*``) and timers act for the system and are not
    checked against the actor; states they enter are."""
    for t in fired:
        if t.event.startswith(("done.", "after:")):
            continue
        if t.roles and not (t.roles & actor.roles):
            return (f"event {t.event!r} from {t.source!r} needs one of the roles "
                    f"{', '.join(sorted(t.roles))}")
        if t.actor_guard is not None:
            try:
                ok = t.actor_guard(actor, payload)
            except Exception as exc:  # a failing guard denies; the reason says why
                return f"actor guard of {t.id} raised {type(exc).__name__}: {exc}"
            if ok is not True:
                return f"actor guard of {t.id} refused actor {actor.id!r}"
    if "$system" in actor.roles:
        return None
    for s in entered:
        need = chart.states[s].entry_roles
        if need and not (need & actor.roles):
            return f"entering {s!r} needs one of the roles {', '.join(sorted(need))}"
    return None


def masked_leaves(chart: Chart, leaves: list[str], actor: Actor | None) -> list[str]:
    """The active leaves as ``actor`` may see them: a sensitive state (or a
    leaf inside one) the actor has no entry role for reads as ``NEUTRAL``."""
    out = []
    for leaf in leaves:
        shown = leaf
        for s in (leaf, *chart.ancestors(leaf)):
            d = chart.states.get(s)
            if d is not None and d.sensitive and (
                    actor is None or not (d.entry_roles & actor.roles)):
                shown = NEUTRAL
                break
        out.append(shown)
    return out


def redact(value: Any, fields: frozenset[str], depth: int = 0) -> Any:
    """A copy of ``value`` with every key in ``fields`` replaced by ``***``."""
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: (REDACTED if k in fields else redact(v, fields, depth + 1))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, fields, depth + 1) for v in value]
    return value


@dataclass(frozen=True)
class EnvelopePolicy:
    """How envelopes are checked: ``max_age`` and ``max_skew`` in seconds;
    ``key`` (HMAC-SHA256) makes a valid signature mandatory, and lets the
    envelope carry the actor's roles (unsigned envelopes cannot)."""

    max_age: float = 300.0
    max_skew: float = 30.0
    key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Envelope:
    """A request from outside: ``id`` (unique, for replay detection),
    ``entity``, ``event``, ``payload``, ``actor`` and ``roles``, ``issued_at``
    (unix seconds), ``request_key`` (idempotency), ``meta`` (trace context),
    ``signature`` (hex HMAC over everything else)."""

    id: str
    entity: str
    event: str
    payload: Mapping[str, Any]
    actor: str
    roles: tuple[str, ...]
    issued_at: float
    request_key: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    signature: str | None = None

    def signing_bytes(self) -> bytes:
        return dumps({"id": self.id, "entity": self.entity, "event": self.event,
                      "payload": self.payload, "actor": self.actor, "roles": list(self.roles),
                      "issued_at": self.issued_at, "request_key": self.request_key,
                      "meta": dict(self.meta)}).encode()

    def signed(self, key: bytes) -> Envelope:
        sig = hmac.new(key, self.signing_bytes(), hashlib.sha256).hexdigest()
        return Envelope(self.id, self.entity, self.event, self.payload, self.actor,
                        self.roles, self.issued_at, self.request_key, self.meta, sig)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "entity": self.entity, "event": self.event,
                "payload": dict(self.payload), "actor": self.actor, "roles": list(self.roles),
                "issued_at": self.issued_at, "request_key": self.request_key,
                "meta": dict(self.meta), "signature": self.signature}

    @staticmethod
    def from_dict(d: Any) -> Envelope:
        """Validate shape, types and sizes; raises ``EnvelopeRejected``."""
        def bad(why: str) -> EnvelopeRejected:
            return EnvelopeRejected(f"malformed envelope: {why}", reason="malformed")
        if not isinstance(d, Mapping):
            raise bad("expected a mapping")
        try:
            size = len(dumps(d))
        except (TypeError, ValueError, RecursionError):
            raise bad("not JSON data") from None
        if size > MAX_ENVELOPE_BYTES:
            raise bad(f"{size:,} bytes (at most {MAX_ENVELOPE_BYTES:,})")
        extra = set(d) - {"id", "entity", "event", "payload", "actor", "roles", "issued_at",
                          "request_key", "meta", "signature"}
        if extra:
            raise bad(f"unknown fields {sorted(extra)}")
        for k in ("id", "entity", "event", "actor"):
            v = d.get(k)
            if not isinstance(v, str) or not _ID.match(v):
                raise bad(f"{k}={v!r} (expected 1-200 of [A-Za-z0-9_.:@/-])")
        payload = d.get("payload", {})
        if not isinstance(payload, Mapping) or _depth(payload) > MAX_DEPTH:
            raise bad("payload must be a mapping nested at most 16 deep")
        roles = d.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) and _ID.match(r)
                                                  for r in roles) or len(roles) > 64:
            raise bad("roles must be a list of at most 64 names")
        at = d.get("issued_at")
        if isinstance(at, bool) or not isinstance(at, (int, float)) or at != at:
            raise bad(f"issued_at={at!r} (expected unix seconds)")
        rk = d.get("request_key")
        if rk is not None and (not isinstance(rk, str) or not _ID.match(rk)):
            raise bad(f"request_key={rk!r}")
        meta = d.get("meta", {})
        if not isinstance(meta, Mapping) or len(meta) > 16 or not all(
                isinstance(k, str) and isinstance(v, str) and len(k) < 64 and len(v) < 512
                for k, v in meta.items()):
            raise bad("meta must map at most 16 short strings to strings")
        sig = d.get("signature")
        if sig is not None and (not isinstance(sig, str) or not re.fullmatch(r"[0-9a-f]{64}",
                                                                              sig)):
            raise bad("signature must be 64 hex digits")
        return Envelope(d["id"], d["entity"], d["event"], dict(payload), d["actor"],
                        tuple(roles), float(at), rk, dict(meta), sig)

    def check(self, policy: EnvelopePolicy, now: float) -> Actor:
        """Age and signature; returns the actor the envelope may speak for."""
        if self.issued_at < now - policy.max_age:
            raise EnvelopeRejected(f"envelope {self.id}: stale (issued {now - self.issued_at:.0f}"
                                   f" s ago, at most {policy.max_age:.0f})", reason="stale")
        if self.issued_at > now + policy.max_skew:
            raise EnvelopeRejected(f"envelope {self.id}: issued in the future",
                                   reason="future")
        if policy.key is not None:
            want = hmac.new(policy.key, self.signing_bytes(), hashlib.sha256).hexdigest()
            if self.signature is None or not hmac.compare_digest(want, self.signature):
                raise EnvelopeRejected(f"envelope {self.id}: bad or missing signature",
                                       reason="signature")
            return Actor(self.actor, frozenset(self.roles))
        if self.roles:
            raise EnvelopeRejected(f"envelope {self.id}: an unsigned envelope cannot claim "
                                   "roles (configure a key, or pass the actor)",
                                   reason="unsigned-roles")
        return Actor(self.actor)


def _depth(v: Any, d: int = 0) -> int:
    if d > MAX_DEPTH:
        return d
    if isinstance(v, Mapping):
        return max((_depth(x, d + 1) for x in v.values()), default=d + 1)
    if isinstance(v, list):
        return max((_depth(x, d + 1) for x in v), default=d + 1)
    return d
