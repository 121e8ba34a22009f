"""Plain values the runtime hands out: snapshots, changes, repairs, the
explanation of a state, counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ProtocolError

if TYPE_CHECKING:  # pragma: no cover
    from ..machine import State
    from .envelope import Envelope

__all__ = ["Change", "Explanation", "Repair", "ReplicaStats", "Snapshot", "Step", "SyncReport"]


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Snapshot:
    """The state after a set of events, and what is needed to continue from it.

    ``version`` maps each origin to the number of its events covered (they are
    numbered 1..n without gaps); ``horizon`` is the largest hlc covered when the
    snapshot ends a compacted prefix (every event with ``hlc <= horizon`` is in
    it), else -1; ``heads`` are the covered events no other covered event
    depends on; ``clocks`` the last hlc seen from each origin; ``hlc`` the
    replica's clock.
    """

    replica: str
    machine: str
    policy: str
    state: dict[str, Any]
    digest: str
    version: dict[str, int]
    events: int
    horizon: int = -1
    heads: tuple[str, ...] = ()
    clocks: dict[str, int] = field(default_factory=dict)
    hlc: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["heads"] = list(self.heads)
        d["format"] = "convergent-snapshot/1"
        return d

    def validate(self) -> None:
        """Raise ProtocolError unless every field has its type and range, and
        ``events`` is the number of events ``version`` covers (a snapshot
        crosses process boundaries: nothing in it is trusted before this)."""
        from .envelope import MAX_HLC, MAX_SEQ, split_id, valid_replica_id

        def bad(what: str) -> ProtocolError:
            return ProtocolError(f"snapshot of {str(self.replica)[:64]!r}: {what}")

        if not valid_replica_id(self.replica):
            raise bad("replica is not a replica id")
        for name in ("machine", "policy", "digest"):
            v = getattr(self, name)
            if not isinstance(v, str) or len(v) > 256:
                raise bad(f"{name}={v!r:.60} (expected a short string)")
        if not isinstance(self.state, dict) or not all(isinstance(k, str) for k in self.state):
            raise bad("state is not an object of variables")
        total = 0
        for table, top in ((self.version, MAX_SEQ), (self.clocks, MAX_HLC)):
            if not isinstance(table, dict):
                raise bad("version and clocks must be objects")
            for k, v in table.items():
                if not valid_replica_id(k) or type(v) is not int or not 0 <= v <= top:
                    raise bad(f"entry {k!r:.70}: {v!r:.30} out of range")
                if table is self.version:
                    total += v
        for name, lo in (("events", 0), ("horizon", -1), ("hlc", 0)):
            v = getattr(self, name)
            if type(v) is not int or not lo <= v <= max(MAX_HLC, MAX_SEQ):
                raise bad(f"{name}={v!r:.30} out of range")
        if self.events != total:
            raise bad(f"events={self.events} but its version covers {total}")
        if self.horizon > self.hlc:
            raise bad(f"horizon {self.horizon} is above its clock {self.hlc}")
        if not isinstance(self.heads, tuple) or len(self.heads) > len(self.version):
            raise bad("heads must be at most one event id per origin")
        for h in self.heads:
            if not isinstance(h, str):
                raise bad(f"head {h!r:.60} is not an event id")
            o, n = split_id(h)
            if self.version.get(o, 0) < n:
                raise bad(f"head {h} is not covered by its version")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        if not isinstance(data, Mapping) or data.get("format") != "convergent-snapshot/1":
            raise ProtocolError("not a convergent-snapshot/1 object")
        try:
            return cls(replica=data["replica"], machine=data["machine"], policy=data["policy"],
                       state=dict(data["state"]), digest=data["digest"],
                       version={str(k): int(v) for k, v in data["version"].items()},
                       events=int(data["events"]), horizon=int(data["horizon"]),
                       heads=tuple(_list(data["heads"])),
                       clocks={str(k): int(v) for k, v in data["clocks"].items()},
                       hlc=int(data["hlc"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"malformed snapshot: {exc!r}") from None


@dataclass(frozen=True)
class SyncReport:
    """What a replica tells its peers in anti-entropy: only **durable** facts.

    ``version`` counts, per origin, the events this replica has committed
    (not merely accepted); ``clock`` is the largest hlc of anything it has
    committed. A restart loads every committed event and observes its clock,
    so no event this replica issues later, crash or not, carries a clock at
    or below ``clock``: a peer may build its compaction bound on it. (An
    accepted but uncommitted event can be lost in a crash, and the clock it
    pushed forward with it: reporting it would let a peer compact past
    events this replica is still going to issue.)"""

    replica: str
    version: dict[str, int]
    clock: int


@dataclass(frozen=True)
class Change:
    """What a subscriber is told after a committed batch: the state before
    and after, the events accepted in the batch (delivery order) and whether
    a canonical reordering (a repair) happened in it, or a peer's snapshot
    replaced the state of an already non-empty replica."""

    before: State
    after: State
    events: tuple[Envelope, ...]
    repaired: bool

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class Repair:
    """One rollback and replay: events ``inserted`` sorted before already
    applied events they do not commute with (``against``: at most five of
    those the first insertion passed); the replica rolled back to the state
    before position ``position`` of the canonical log and replayed
    ``replayed`` events. A replay is deferred until the state is read, so one
    record may cover the insertions of several ``receive`` calls."""

    inserted: tuple[str, ...]
    against: tuple[str, ...]
    position: int
    replayed: int
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One event of the canonical log and the state it led to."""

    envelope: Envelope
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def changed(self) -> dict[str, tuple[Any, Any]]:
        return {k: (v, self.after[k]) for k, v in self.before.items() if self.after[k] != v}


@dataclass
class ReplicaStats:
    """Counters since the replica object was created (``accepted`` and
    ``compacted`` include what was loaded from the store)."""

    #: events accepted (applied), ever, including the compacted ones
    accepted: int = 0
    #: emitted here
    emitted: int = 0
    #: applied at the end of the canonical log (the common case)
    appended: int = 0
    #: sorted before applied events, but commuting with all of them: applied
    #: in arrival order, no extra work (a verified independent pair)
    commuted: int = 0
    #: insertions that need a rollback to an earlier state and a replay
    #: (non-commuting concurrent events)
    repairs: int = 0
    #: replays run for them: one per read of the state after any number of
    #: repairs (the replay is deferred until the state is needed)
    replays: int = 0
    #: events re-applied by those replays
    replayed: int = 0
    #: envelopes received again (dropped by id)
    duplicates: int = 0
    #: envelopes that had to wait for a dependency
    buffered: int = 0
    #: envelopes refused for good (below the compaction horizon, of a retired
    #: peer past its final event, or malformed)
    rejected: int = 0
    #: envelopes turned away, or evicted, because the pending buffer was full
    #: (not accepted: anti-entropy sends them again)
    refused: int = 0
    #: events removed from the log by compaction
    compacted: int = 0
    #: peers' snapshots installed (a join, or a catch-up past their compaction)
    installed: int = 0
    #: envelopes whose clock is further ahead of the local wall clock than
    #: ``Limits.max_drift_ms`` (not accepted now: anti-entropy sends them again)
    ahead: int = 0
    #: evidence of a faulty or hostile peer: an id seen with two different
    #: contents, or an envelope claiming this replica's own id that it never
    #: issued (the first content wins; see ``Replica.evidence``)
    equivocations: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Explanation:
    """Forensics: how the current state came about.

    ``base`` is the snapshot the retained log starts from (None: the initial
    state), ``steps`` the retained log in canonical order with the state after
    each event, ``repairs`` the latest rollbacks (bounded history), ``rejected``
    the latest refused envelopes with the reason, ``stats`` the counters."""

    replica: str
    machine: str
    initial: dict[str, Any]
    base: Snapshot | None
    steps: tuple[Step, ...]
    repairs: tuple[Repair, ...]
    rejected: tuple[tuple[str, str], ...]
    stats: ReplicaStats
    state: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "replica": self.replica, "machine": self.machine, "initial": self.initial,
            "base": None if self.base is None else self.base.to_dict(),
            "steps": [{"id": s.envelope.id, "event": s.envelope.event, "hlc": s.envelope.hlc,
                       "deps": list(s.envelope.deps), "meta": s.envelope.meta,
                       "changed": {k: list(v) for k, v in s.changed.items()}}
                      for s in self.steps],
            "repairs": [asdict(r) for r in self.repairs],
            "rejected": [list(r) for r in self.rejected],
            "stats": self.stats.to_dict(), "state": self.state,
        }

    def render(self, *, limit: int = 50) -> str:
        """A human-readable account: start, the last ``limit`` steps, repairs."""
        lines = [f"replica {self.replica} of {self.machine}: state {self.state}"]
        if self.base is None:
            lines.append(f"from the initial state {self.initial}")
        else:
            lines.append(f"from a snapshot of {self.base.events} events "
                         f"(hlc <= {self.base.horizon}): {self.base.state}")
        steps = self.steps[-limit:] if limit else self.steps
        if len(steps) < len(self.steps):
            lines.append(f"... {len(self.steps) - len(steps)} earlier steps")
        for s in steps:
            ch = ", ".join(f"{k} {a!r}->{b!r}" for k, (a, b) in s.changed.items()) or "no change"
            lines.append(f"  {s.envelope.id:<14} {s.envelope.event:<16} {ch}")
        st = self.stats
        lines.append(f"{st.accepted} accepted, {st.appended} appended, {st.commuted} commuted, "
                     f"{st.repairs} repairs ({st.replayed} replayed), {st.duplicates} "
                     f"duplicates, {st.rejected} rejected")
        for r in self.repairs[-limit:]:
            lines.append(f"  repair: {', '.join(r.inserted[:5])} sorted before "
                         f"{', '.join(r.against)}; replayed {r.replayed} from position "
                         f"{r.position}")
        for eid, why in self.rejected[-limit:]:
            lines.append(f"  rejected {eid}: {why}")
        return "\n".join(lines)
