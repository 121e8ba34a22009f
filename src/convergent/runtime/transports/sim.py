"""A seeded, in-process simulated network for tests and experiments.

Every message gets a random delay (so messages overtake each other), may be
duplicated, may be dropped (the sender retries after ``retry_after``: at
least once), and is lost when it would cross a partition or reach a crashed
(detached) replica. ``heal()`` and a replica's (re)attachment run
anti-entropy: each side sends what the other's version vector lacks, preceded
by its compacted snapshot when the other lacks events that snapshot covers
(a new replica joins that way). Envelopes a replica turns away because its
pending buffer is full are counted (``stats.refused``) and come again with
the next anti-entropy round. Time is
an integer of milliseconds advanced by ``step``/``run``; ``clock(node)``
gives replicas skewed clocks on that time. The same seed and the same calls
give the same run.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BackpressureError, ReplicaError, TransportError
from .base import Transport

if TYPE_CHECKING:  # pragma: no cover
    from ..envelope import Envelope
    from ..model import Snapshot
    from ..replica import Replica

__all__ = ["SimNetwork", "SimStats", "SimTransport", "SnapshotOffer"]


@dataclass
class SimStats:
    sent: int = 0
    delivered: int = 0
    duplicated: int = 0
    dropped: int = 0
    lost: int = 0          # crossed a partition or reached a crashed replica
    synced: int = 0        # envelopes sent by anti-entropy
    snapshots: int = 0     # snapshots sent by anti-entropy
    installed: int = 0     # snapshots installed by their receiver
    refused: int = 0       # envelopes turned away by a full pending buffer


@dataclass(frozen=True)
class SnapshotOffer:
    """A message carrying a compacted snapshot (anti-entropy to a replica
    that lacks events it covers)."""

    snapshot: Snapshot


class SimNetwork:
    """Args: seed; delay ``(lo, hi)`` ms per message; ``duplicate`` and ``drop``
    probabilities per message; ``retry_after`` ms before a dropped message is
    sent again; ``split``: one message per envelope (more reordering) instead
    of one per broadcast."""

    def __init__(self, seed: int = 0, *, delay: tuple[int, int] = (1, 20),
                 duplicate: float = 0.0, drop: float = 0.0, retry_after: int = 50,
                 split: bool = True) -> None:
        lo, hi = delay
        if not 0 <= lo <= hi:
            raise TransportError(f"delay={delay!r} (expected 0 <= lo <= hi)")
        for name, p in (("duplicate", duplicate), ("drop", drop)):
            if not 0.0 <= p < 1.0:
                raise TransportError(f"{name}={p!r} (expected a probability in [0, 1))")
        self.rng = random.Random(seed)
        self.delay = (lo, hi)
        self.duplicate = duplicate
        self.drop = drop
        self.retry_after = retry_after
        self.split = split
        self.now = 0
        self.stats = SimStats()
        self._queue: list[tuple[int, int, str, str, tuple[Envelope, ...] | SnapshotOffer]] = []
        #: snapshots a replica refused to install (time, node, message)
        self.errors: list[tuple[int, str, str]] = []
        self._n = 0
        self._nodes: dict[str, SimTransport] = {}
        self._group: dict[str, int] | None = None

    # ------------------------------------------------------------ nodes

    def transport(self, node: str) -> SimTransport:
        """The transport of ``node`` (the same object across restarts)."""
        t = self._nodes.get(node)
        if t is None:
            t = self._nodes[node] = SimTransport(self, node)
        return t

    def clock(self, node: str, skew: int = 0) -> Callable[[], int]:
        """A millisecond clock for ``node``: simulated time plus ``skew``."""
        return lambda: self.now + skew

    @property
    def replicas(self) -> list[Replica]:
        return [t.replica for t in self._nodes.values() if t.replica is not None]

    # ------------------------------------------------------------ faults

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut the network into ``groups``; a node in no group is alone."""
        self._group = {}
        for i, g in enumerate(groups):
            for node in g:
                self._group[node] = i

    def heal(self) -> None:
        """Reconnect everything and run anti-entropy between every pair."""
        self._group = None
        self.anti_entropy()

    def connected(self, a: str, b: str) -> bool:
        if self._group is None:
            return True
        ga, gb = self._group.get(a), self._group.get(b)
        return ga is not None and ga == gb

    def anti_entropy(self, node: str | None = None) -> int:
        """Each connected pair (or each pair involving ``node``) sends the other
        what its version vector lacks (its snapshot first, when the other lacks
        compacted events); returns the messages' envelopes and snapshots
        scheduled."""
        total = 0
        live = [t for t in self._nodes.values() if t.replica is not None]
        for src in live:
            for dst in live:
                if src is dst or not self.connected(src.node, dst.node):
                    continue
                if node is not None and node not in (src.node, dst.node):
                    continue
                assert src.replica is not None and dst.replica is not None
                # dst asks with what it has; what it committed (and the clock
                # of that) is all src may build compaction on
                report = dst.replica.report()
                src.replica.observe_peer(dst.node, report.version, report.clock)
                version = dst.replica.version
                snap = src.replica.snapshot_for(version)
                if snap is not None:
                    total += 1
                    self.stats.snapshots += 1
                    self._schedule(src.node, dst.node, [SnapshotOffer(snap)])
                    for o, n in snap.version.items():
                        version[o] = max(version.get(o, 0), n)
                missing = src.replica.missing_for(version)
                if missing:
                    total += len(missing)
                    self._send(src.node, dst.node, missing)
        self.stats.synced += total
        return total

    # ------------------------------------------------------------ messages

    def _send(self, src: str, dst: str, envelopes: Sequence[Envelope]) -> None:
        msgs: list[tuple[Envelope, ...]] = ([(e,) for e in envelopes] if self.split
                                            else [tuple(envelopes)])
        self._schedule(src, dst, msgs)

    def _schedule(self, src: str, dst: str,
                  msgs: Sequence[tuple[Envelope, ...] | SnapshotOffer]) -> None:
        rng = self.rng
        lo, hi = self.delay
        for msg in msgs:
            self.stats.sent += 1
            t = self.now + rng.randint(lo, hi)
            while self.drop and rng.random() < self.drop:
                self.stats.dropped += 1
                t += self.retry_after + rng.randint(lo, hi)
            self._push(t, src, dst, msg)
            if self.duplicate and rng.random() < self.duplicate:
                self.stats.duplicated += 1
                self._push(self.now + rng.randint(lo, hi * 3 + 1), src, dst, msg)

    def _push(self, t: int, src: str, dst: str,
              msg: tuple[Envelope, ...] | SnapshotOffer) -> None:
        self._n += 1
        heapq.heappush(self._queue, (t, self._n, src, dst, msg))

    def broadcast(self, src: str, envelopes: Sequence[Envelope]) -> None:
        for dst in self._nodes:
            if dst != src:
                self._send(src, dst, envelopes)

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def step(self) -> bool:
        """Deliver the next message (advancing time); False when none is left."""
        if not self._queue:
            return False
        t, _, src, dst, msg = heapq.heappop(self._queue)
        self.now = max(self.now, t)
        target = self._nodes[dst].replica
        if target is None or not self.connected(src, dst):
            self.stats.lost += 1
            return True
        self.stats.delivered += 1
        if isinstance(msg, SnapshotOffer):
            try:
                if target.install_snapshot(msg.snapshot):
                    self.stats.installed += 1
            except ReplicaError as exc:  # a real transport logs it and goes on
                self.errors.append((self.now, dst, str(exc)))
            return True
        try:
            target.receive(msg)
        except BackpressureError as exc:  # anti-entropy sends them again
            self.stats.refused += len(exc.refused)
        return True

    def run(self, *, until: int | None = None, max_steps: int | None = None) -> int:
        """Deliver messages until none is left, simulated time passes
        ``until``, or ``max_steps`` were delivered; returns the steps taken."""
        n = 0
        q = self._queue
        while q and (until is None or q[0][0] <= until) and (max_steps is None or n < max_steps):
            self.step()
            n += 1
        if until is not None and self.now < until:
            self.now = until
        return n

    def settle(self, *, rounds: int = 10) -> None:
        """Heal, then alternate delivery and anti-entropy until nothing moves."""
        self.heal()
        for _ in range(rounds):
            self.run()
            if not self.anti_entropy():
                self.run()
                return
        raise TransportError(f"the simulated network did not settle in {rounds} rounds")


class SimTransport(Transport):
    """One node's port on a ``SimNetwork``; attaching a replica (a start or a
    restart) runs anti-entropy for that node."""

    def __init__(self, network: SimNetwork, node: str) -> None:
        self.network = network
        self.node = node
        self.replica = None

    def attach(self, replica: Replica) -> None:
        if replica.id != self.node:
            raise TransportError(f"transport of node {self.node!r} cannot carry replica "
                                 f"{replica.id!r}")
        self.replica = replica  # a restart replaces the crashed object
        self.network.anti_entropy(self.node)

    def crash(self) -> None:
        """Forget the attached replica without flushing it (a simulated kill -9):
        messages to this node are lost until a new replica attaches."""
        self.replica = None

    def broadcast(self, envelopes: Sequence[Envelope]) -> None:
        self.network.broadcast(self.node, envelopes)
