"""Replicas of a federation: each service runs its own registry on the replica
runtime and hands its targets *projections*, versioned.

Every registry of a federation is run by its own replicas (a
``convergent.runtime.Replica`` of that registry's machine, with whatever
store and transport the service uses): they alone own its vars and agree
among themselves as the runtime guarantees. A ``FederatedReplica`` wraps one
such replica with the federation around it:

* it **publishes** a ``Projection`` per outgoing morphism: the values the
  morphism's map gives at this service's federated view, with a version;
* it **accepts** a projection for an incoming morphism only if it is
  *newer* than the one it holds; stale, duplicate, concurrent and
  conflicting ones are refused and counted (``stats``), malformed ones are
  refused before they change anything (``ProjectionError``, counted);
* its **view** is its replica's own state with the shared vars overwritten
  by the images of the projections it holds (resolvers applied).

**Versions.** A service's view is a function of the set of events its own
replica applied (the runtime's theorem: the state is a function of the set)
and of the projections it holds, recursively. So a projection's version is
one version vector (``{replica: events applied}``) per *path* back through
the morphisms: ``""`` for the publishing registry's own events, ``"m"`` for
the events behind the projection of ``m`` it holds, ``"m/k"`` one step
further, and so on (the set of paths is fixed by the federation, which must
be acyclic). A version is newer when it is at least as large on every path
and origin and larger somewhere. Equal versions must carry equal values
(otherwise: evidence of a faulty or forged publisher, ``conflict``).
Versions of concurrent publishers are incomparable; once the sources settle,
each of their replicas publishes the final version, which is newer than
every earlier one, so every target ends with the same projections.

**What makes the views right.** With projection safety (XU) a target's
events act on its own state the same way whatever image it holds, so
overwriting at the end equals the ``FederatedMachine`` run: once every
replica applied the same events and the last projections are delivered,
each service's view is the federation's normal form. The federation must
pass every check *with XU*; ``FederatedReplica`` refuses one that was not
checked with it.

**Durability.** Projections are published only from a *clean* point of the
replica (everything it accepted is committed): a crash can never make a
service take back a version it published. Held projections live in memory;
after a restart a service holds the initial ones until its sources publish
again (they re-publish periodically, see ``nats_link``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from ..runtime import Change, Replica
from ..runtime.envelope import valid_replica_id
from ..spec.model import Var
from ._tables import _natural
from .errors import FederationError
from .machine import FederatedMachine
from .model import Morphism

__all__ = [
    "MAX_PROJECTION_BYTES",
    "PROJECTION_FORMAT",
    "FederatedReplica",
    "LocalProjectionBus",
    "Projection",
    "ProjectionError",
    "ProjectionLink",
    "ProjectionStats",
    "compare_versions",
]

PROJECTION_FORMAT = "convergent-projection/1"
#: a projection message larger than this is refused unread
MAX_PROJECTION_BYTES = 64 * 1024
#: origins per path of a version, at most
MAX_ORIGINS = 1024
MAX_SEQ = (1 << 53) - 1
#: paths of a version (paths back through the morphisms), at most
MAX_PATHS = 256

VersionT = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


class ProjectionError(FederationError):
    """A projection is malformed, of another federation, or not one this
    service can accept (unknown morphism, a value outside its domain or that
    the source's map never gives, a version of the wrong shape). It was
    refused before it changed anything."""


def _canon_version(v: Mapping[str, Mapping[str, int]]) -> VersionT:
    return tuple(sorted((p, tuple(sorted((o, int(n)) for o, n in vv.items() if n > 0)))
                        for p, vv in v.items()))


@dataclass(frozen=True)
class Projection:
    """What the source ``origin`` (a replica of registry ``source``) says the
    shared vars of ``target`` are, through ``morphism``, at ``version``."""

    federation: str
    digest: str
    morphism: str
    source: str
    target: str
    origin: str
    version: VersionT
    values: tuple[tuple[str, Any], ...]

    @property
    def version_dict(self) -> dict[str, dict[str, int]]:
        return {p: dict(vv) for p, vv in self.version}

    def to_dict(self) -> dict[str, Any]:
        return {"format": PROJECTION_FORMAT, "federation": self.federation,
                "digest": self.digest, "morphism": self.morphism, "source": self.source,
                "target": self.target, "origin": self.origin,
                "version": self.version_dict, "values": dict(self.values)}

    def to_wire(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_wire(cls, data: bytes | str) -> Projection:
        """Decode and check the *form* (types, names, bounds); what a given
        service accepts is checked by ``FederatedReplica.receive_projection``.

        Raises:
            ProjectionError: anything malformed."""
        if len(data) > MAX_PROJECTION_BYTES:
            raise ProjectionError(f"projection of {len(data)} bytes (max "
                                  f"{MAX_PROJECTION_BYTES})")
        try:
            doc = json.loads(data)
        except RecursionError:
            raise ProjectionError("projection nests too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProjectionError(f"projection is not JSON: {exc}") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> Projection:
        keys = ("format", "federation", "digest", "morphism", "source", "target", "origin",
                "version", "values")
        if not isinstance(doc, dict) or set(doc) != set(keys):
            got = sorted(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
            raise ProjectionError(f"projection must be an object with keys {list(keys)}, "
                                  f"got {got}")
        if doc["format"] != PROJECTION_FORMAT:
            raise ProjectionError(f"format={str(doc['format'])[:40]!r} (expected "
                                  f"{PROJECTION_FORMAT!r})")
        for k in ("federation", "morphism", "source", "target"):
            if not isinstance(doc[k], str) or not doc[k].isidentifier() or len(doc[k]) > 128:
                raise ProjectionError(f"{k}={str(doc[k])[:40]!r} (expected an identifier)")
        digest = doc["digest"]
        if not isinstance(digest, str) or len(digest) != 64 or not all(
                c in "0123456789abcdef" for c in digest):
            raise ProjectionError("digest must be 64 hex digits")
        if not valid_replica_id(doc["origin"]):
            raise ProjectionError(f"origin={str(doc['origin'])[:70]!r} is not a replica id")
        version = doc["version"]
        if not isinstance(version, dict) or not version or len(version) > MAX_PATHS:
            raise ProjectionError(f"version must be an object of 1 to {MAX_PATHS} paths")
        for path, vv in version.items():
            if not isinstance(path, str) or len(path) > 4096:
                raise ProjectionError("version paths must be strings")
            if not isinstance(vv, dict) or len(vv) > MAX_ORIGINS:
                raise ProjectionError(f"version[{path[:40]!r}] must be an object of at most "
                                      f"{MAX_ORIGINS} origins")
            for o, n in vv.items():
                if not valid_replica_id(o) or type(n) is not int or not 0 <= n <= MAX_SEQ:
                    raise ProjectionError(f"version[{path[:40]!r}]: {str(o)[:70]!r}: "
                                          f"{str(n)[:20]} (expected a replica id and an int "
                                          f"in [0, 2**53))")
        values = doc["values"]
        if not isinstance(values, dict) or not values or len(values) > 1000:
            raise ProjectionError("values must be an object of 1 to 1000 vars")
        for k, v in values.items():
            if not isinstance(k, str) or not isinstance(v, (bool, int, str)) or (
                    isinstance(v, str) and len(v) > 256):
                raise ProjectionError(f"values: {str(k)[:40]!r} must map to a bool, int or "
                                      "short string")
        return cls(doc["federation"], digest, doc["morphism"], doc["source"], doc["target"],
                   doc["origin"], _canon_version(version), tuple(sorted(values.items())))


def compare_versions(new: Mapping[str, Mapping[str, int]],
                     old: Mapping[str, Mapping[str, int]]) -> str:
    """``"newer"``, ``"equal"``, ``"older"`` or ``"concurrent"``: pointwise
    over every path and origin (a missing origin counts 0)."""
    ge = le = True
    for path in set(new) | set(old):
        a, b = new.get(path, {}), old.get(path, {})
        for o in set(a) | set(b):
            x, y = a.get(o, 0), b.get(o, 0)
            if x < y:
                ge = False
            elif x > y:
                le = False
    if ge and le:
        return "equal"
    if ge:
        return "newer"
    if le:
        return "older"
    return "concurrent"


@dataclass
class ProjectionStats:
    """Counters of one service's projections (``FederatedReplica.stats``)."""

    published: int = 0
    accepted: int = 0
    #: older than the one held (refused)
    stale: int = 0
    #: the same version and values again (refused, harmless)
    duplicate: int = 0
    #: neither older nor newer than the one held (refused; a newer one follows)
    concurrent: int = 0
    #: the same version with other values: a faulty or forged publisher
    conflict: int = 0
    #: malformed, another federation, or values the source cannot give
    refused: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ProjectionLink(Protocol):
    """Carries a service's projections to the replicas of its targets."""

    def publish(self, projections: Sequence[Projection]) -> None:
        """Send (or queue) the latest projections; must not block or raise for
        network trouble."""


@dataclass(frozen=True)
class _Clean:
    version: dict[str, int]
    state: int


@dataclass
class _Held:
    projection: Projection
    version: dict[str, dict[str, int]]
    digits: tuple[int, ...]


def _paths(machine: FederatedMachine, registry: str) -> tuple[str, ...]:
    """Every path back from ``registry`` through incoming morphisms ("" first)."""
    out = [""]
    for m in machine.spec.incoming(registry):
        for p in _paths(machine, m.source):
            out.append(m.name + ("/" + p if p else ""))
    return tuple(out)


def _path_registry(machine: FederatedMachine, start: str, path: str) -> str:
    """The registry whose events a version path counts ("" is ``start``)."""
    reg = start
    for name in filter(None, path.split("/")):
        reg = next(m.source for m in machine.spec.morphisms if m.name == name)
    return reg


class FederatedReplica:
    """One replica of one registry of a federation (see the module docstring).

    Args:
        machine: the ``FederatedMachine`` (checked with ``xu=True``, acyclic).
        registry: the registry this service runs.
        replica: a ``Replica`` of ``machine.machine(registry)`` (same policy).
        links: where to publish projections (``LocalProjectionBus.link``,
            ``NatsProjectionLink``); more can be attached later.
        members: ``{registry: replica ids}``, the replicas each registry may
            have. When given for a registry, a projection is refused if its
            ``origin`` (for its source) or an origin of its version (for the
            registry each path leads to) is not listed there: with signed
            messages, a replica can then speak only for its own registry.

    Raises:
        FederationError: the federation was not checked with XU, has a
            cycle, or the replica runs another machine.
    """

    def __init__(self, machine: FederatedMachine, registry: str, replica: Replica, *,
                 links: Iterable[ProjectionLink] = (),
                 members: Mapping[str, Iterable[str]] | None = None) -> None:
        if not isinstance(machine, FederatedMachine):
            raise FederationError(f"machine={machine!r} (expected a FederatedMachine)")
        if not machine.report.xu:
            raise FederationError(
                "replicas of a federation need projection safety: build the federation "
                "with xu=True (each service merges projections on arrival, between which it "
                "can hold any valid state; XU is what makes that safe)")
        if machine.cycles:
            raise FederationError(f"replicas of a federation need an acyclic one; cycles: "
                                  f"{machine.cycles}")
        own = machine.machine(registry)
        if not isinstance(replica, Replica) or replica.machine.policy_digest != \
                own.policy_digest or replica.machine.size != own.size:
            raise FederationError(f"replica {getattr(replica, 'id', replica)!r} does not run "
                                  f"the machine of {registry!r} (build it with "
                                  f"machine.machine({registry!r}))")
        self.machine = machine
        self.registry = registry
        self.replica = replica
        self.stats = ProjectionStats()
        self.incoming: tuple[Morphism, ...] = machine.spec.incoming(registry)
        self.outgoing: tuple[Morphism, ...] = tuple(
            m for m in machine.spec.morphisms if m.source == registry)
        self._links: list[ProjectionLink] = list(links)
        self._paths = {m.name: _paths(machine, m.source) for m in self.incoming}
        self._members = {k: frozenset(v) for k, v in (members or {}).items()}
        unknown = sorted(set(self._members) - set(machine.names))
        if unknown:
            raise FederationError(f"members: {unknown} are not registries of the federation")
        bad = sorted(i for ids in self._members.values() for i in ids
                     if not valid_replica_id(i))
        if bad:
            raise FederationError(f"members: {bad[:3]} are not replica ids")
        self._own_paths = _paths(machine, registry)
        if len(self._own_paths) > MAX_PATHS:
            raise FederationError(f"{registry!r} is reached by {len(self._own_paths)} paths "
                                  f"of morphisms (at most {MAX_PATHS}): its projections' "
                                  "versions would not fit a message")
        self._vars: dict[str, dict[str, Var]] = {
            n: {v.name: v for v in machine.machine(n).vars} for n in machine.names}
        rep = machine.repair(registry)
        self._allowed: dict[str, set[tuple[int, ...]]] = {}
        self._held: dict[str, _Held] = {}
        init = machine.initial
        for m in self.incoming:
            assert rep is not None
            table = rep.images[m.name]
            valid = machine.machine(m.source).valid_table
            self._allowed[m.name] = {tuple(int(d) for d in row)
                                     for row in np.unique(table[np.flatnonzero(valid)], axis=0)}
            digits = tuple(int(d) for d in table[init[m.source]])
            p = self._projection(m, "initial", {path: {} for path in self._paths[m.name]},
                                 digits)
            self._held[m.name] = _Held(p, p.version_dict, digits)
        self._clean = _Clean({}, own.initial.id)
        self._refresh_clean()
        self._unsubscribe: Callable[[], None] | None = replica.subscribe(self._on_change)

    # ------------------------------------------------------------ reading

    @property
    def view_id(self) -> int:
        """This service's federated state: its replica's state, shared vars
        overwritten with the images of the projections it holds."""
        return self._view_of(int(self.replica.state.id))

    @property
    def view(self) -> dict[str, Any]:
        return self.machine.machine(self.registry).decode(self.view_id)

    @property
    def held(self) -> dict[str, Projection]:
        """The projection held per incoming morphism."""
        return {k: h.projection for k, h in self._held.items()}

    def status(self) -> dict[str, Any]:
        return {"registry": self.registry, "replica": self.replica.id, "view": self.view,
                "held": {k: {"version": h.version, "values": dict(h.projection.values),
                             "origin": h.projection.origin}
                         for k, h in self._held.items()},
                "stats": self.stats.to_dict()}

    def _view_of(self, own: int) -> int:
        rep = self.machine.repair(self.registry)
        if rep is None:
            return own
        off = rep.offset_of_rows({k: h.digits for k, h in self._held.items()})
        return int(rep.overwrite(off, np.array([own], dtype=np.int64))[0])

    # ------------------------------------------------------------ publishing

    def attach(self, link: ProjectionLink) -> None:
        """Publish to ``link`` too (and send it the current projections)."""
        self._links.append(link)
        if self.outgoing:
            link.publish(self.projections())

    def _projection(self, m: Morphism, origin: str, version: Mapping[str, Mapping[str, int]],
                    digits: Sequence[int]) -> Projection:
        tv = self._vars[m.target]
        values = tuple(sorted((var, _natural(tv[var], tv[var].values[d]))
                              for var, d in zip(m.shared, digits)))
        return Projection(self.machine.spec.name, self.machine.digest, m.name, m.source,
                          m.target, origin, _canon_version(version), values)

    def projections(self) -> list[Projection]:
        """One projection per outgoing morphism, at the last clean point."""
        clean = self._clean
        view = self._view_of(clean.state)
        version: dict[str, dict[str, int]] = {"": dict(clean.version)}
        for k, h in self._held.items():
            for path, vv in h.version.items():
                version[k + ("/" + path if path else "")] = dict(vv)
        out = []
        for m in self.outgoing:
            rep = self.machine.repair(m.target)
            assert rep is not None
            digits = tuple(int(d) for d in rep.images[m.name][view])
            out.append(self._projection(m, self.replica.id, version, digits))
        return out

    def publish(self) -> int:
        """Send the current projections on every link; returns how many."""
        if not self.outgoing or not self._links:
            return 0
        ps = self.projections()
        for link in self._links:
            link.publish(ps)
        self.stats.published += len(ps)
        return len(ps)

    def _refresh_clean(self) -> bool:
        """Take the replica's state as the clean point when everything it
        accepted is committed; returns whether it moved."""
        r = self.replica
        accepted = {o: n for o, n in r.version.items() if n > 0}
        if accepted != r.report().version:
            return False
        if accepted == self._clean.version and r.state.id == self._clean.state:
            return False
        self._clean = _Clean(accepted, int(r.state.id))
        return True

    def refresh(self) -> bool:
        """Publish if the replica reached a new clean point since the last
        look (links call it every round: a commit whose notification found
        newer events still uncommitted is published once they are)."""
        if self._refresh_clean():
            self.publish()
            return True
        return False

    def _on_change(self, change: Change) -> None:
        self.refresh()

    # ------------------------------------------------------------ receiving

    def receive_projection(self, p: Projection) -> str:
        """Hold ``p`` if it is newer than the one held for its morphism.

        Returns ``"accepted"``, ``"stale"``, ``"duplicate"``, ``"concurrent"``
        or ``"conflict"`` (each counted in ``stats``).

        Raises:
            ProjectionError: ``p`` is not acceptable here (counted as refused);
                nothing changed."""
        try:
            digits, version = self._check(p)
        except ProjectionError:
            self.stats.refused += 1
            raise
        held = self._held[p.morphism]
        verdict = compare_versions(version, held.version)
        if verdict == "newer":
            self._held[p.morphism] = _Held(p, version, digits)
            self.stats.accepted += 1
            self.publish()                  # the view and the downstream versions moved
            return "accepted"
        if verdict == "equal":
            if digits == held.digits:
                self.stats.duplicate += 1
                return "duplicate"
            self.stats.conflict += 1
            return "conflict"
        if verdict == "older":
            self.stats.stale += 1
            return "stale"
        self.stats.concurrent += 1
        return "concurrent"

    def _check(self, p: Projection) -> tuple[tuple[int, ...], dict[str, dict[str, int]]]:
        if not isinstance(p, Projection):
            raise ProjectionError(f"expected a Projection, got {type(p).__name__}")
        if p.federation != self.machine.spec.name or p.digest != self.machine.digest:
            raise ProjectionError(f"projection of federation {p.federation!r} "
                                  f"({p.digest[:12]}...), this service runs "
                                  f"{self.machine.spec.name!r} ({self.machine.digest[:12]}...)")
        m = next((m for m in self.incoming if m.name == p.morphism), None)
        if m is None or p.target != self.registry or p.source != m.source:
            raise ProjectionError(f"projection {p.morphism!r} ({p.source} -> {p.target}) is "
                                  f"not a morphism into {self.registry!r}")
        values = dict(p.values)
        if set(values) != set(m.shared):
            raise ProjectionError(f"projection {m.name!r} carries {sorted(values)}, expected "
                                  f"exactly {list(m.shared)}")
        tv = self._vars[self.registry]
        try:
            digits = tuple(tv[var].digit(values[var]) for var in m.shared)
        except ValueError as exc:
            raise ProjectionError(f"projection {m.name!r}: {exc}") from None
        if digits not in self._allowed[m.name]:
            raise ProjectionError(f"projection {m.name!r}: {values} is not an image the map "
                                  f"gives at any valid state of {m.source!r}")
        version = p.version_dict
        want = set(self._paths[m.name])
        if not set(version) <= want:
            raise ProjectionError(f"projection {m.name!r}: version paths "
                                  f"{sorted(set(version) - want)[:5]} are not paths back "
                                  f"from {m.source!r}")
        for path, vv in version.items():
            reg = _path_registry(self.machine, m.source, path)
            allowed = self._members.get(reg)
            if allowed is not None and not set(vv) <= allowed:
                raise ProjectionError(f"projection {m.name!r}: version[{path!r}] names "
                                      f"{sorted(set(vv) - allowed)[:5]}, not replicas of "
                                      f"{reg!r}")
        allowed = self._members.get(m.source)
        if allowed is not None and p.origin not in allowed:
            raise ProjectionError(f"projection {m.name!r} from {p.origin!r}, not a replica of "
                                  f"{m.source!r}")
        return digits, {path: version.get(path, {}) for path in want}

    def close(self) -> None:
        """Stop listening to the replica (the replica itself stays open)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __repr__(self) -> str:
        return (f"FederatedReplica({self.registry!r}, replica={self.replica.id!r}, "
                f"held={len(self._held)}, out={len(self.outgoing)})")


@dataclass
class LocalProjectionBus:
    """In-process delivery of projections between ``FederatedReplica``s
    (tests, simulations): every message goes through the wire form, so it is
    decoded and checked exactly as one from the network.

    With ``hold=True`` messages wait in ``queue`` until ``deliver`` (a test
    can then reorder, duplicate or drop them)."""

    hold: bool = False
    queue: list[bytes] = field(default_factory=list)
    receivers: list[FederatedReplica] = field(default_factory=list)

    def link(self, replica: FederatedReplica) -> ProjectionLink:
        """Register ``replica`` as a receiver and attach a link publishing on
        this bus to it."""
        self.receivers.append(replica)
        bus = self

        class _Link:
            def publish(self, projections: Sequence[Projection]) -> None:
                bus.send([p.to_wire() for p in projections])

        link = _Link()
        replica.attach(link)
        return link

    def send(self, messages: Sequence[bytes]) -> None:
        if self.hold:
            self.queue.extend(messages)
        else:
            self.deliver(messages)

    def deliver(self, messages: Sequence[bytes] | None = None) -> dict[str, int]:
        """Hand ``messages`` (default: the queue, emptied) to every receiver
        of their target; returns the outcomes counted."""
        if messages is None:
            messages, self.queue = self.queue, []
        counts: dict[str, int] = {}
        for data in messages:
            try:
                p = Projection.from_wire(data)
            except ProjectionError:
                counts["malformed"] = counts.get("malformed", 0) + 1
                continue
            for r in self.receivers:
                if r.registry != p.target:
                    continue
                try:
                    got = r.receive_projection(p)
                except ProjectionError:
                    got = "refused"
                counts[got] = counts.get(got, 0) + 1
        return counts
