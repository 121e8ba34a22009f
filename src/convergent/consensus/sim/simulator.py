"""A deterministic simulation of n consensus nodes on a hostile network.

Each node is the real ``ConsensusCore`` with real ed25519 keys; the simulator
interprets its effects against a virtual clock: messages go through the
seeded ``NetworkModel``, timers and provider calls become scheduled events,
byzantine nodes filter what they send through a ``Strategy``. The same seed
gives the same run, event for event, so a failing seed is a reproducible
counterexample (``Simulation(config).run()`` again, and read ``trace``).

Verification is memoized across nodes by default (``shared_verifier``): a
signature is checked once per simulation rather than once per receiver. It is
the same deterministic answer, so it changes cost, not behaviour.

Two more kinds of fault: *crash-restart* (``crashes``, ``random_crashes``): an
honest node loses its core - books, timers, calls in flight - and comes back
after a while as a new core on the same signing-guard store (its "disk") and
the same application state; and *validator-set changes* (``epochs``): each
epoch has its own set, nodes outside it follow as observers.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..byzantine import AdversaryContext, Strategy, make_strategy
from ..core import ConsensusCore, CoreConfig
from ..crypto import KeyPair, Verifier
from ..applies import MemoryApplyLog
from ..effects import (
    Call,
    CancelCall,
    CertifiedValue,
    Decision,
    Deliver,
    Effect,
    EvidenceFound,
    FaultObserved,
    Finalized,
    Notify,
    ProviderDone,
    ProviderFailed,
    Send,
    SetTimer,
    Start,
    TimerFired,
)
from ..errors import ConfigError, SafetyViolation
from ..evidence import ConflictKey, Equivocation, conflict_key, signed_content
from ..guard import MemorySafetyStore
from ..machine import Event, MachineSpec
from ..messages import Aggregate, Message
from ..trace import TraceRecord
from ..validators import EpochSchedule, Validator, ValidatorSet
from .app import SimApp
from .network import NetworkConfig, NetworkModel
from .scheduler import Scheduler

__all__ = ["SIM_SPEC", "Crash", "ProviderFaults", "SimConfig", "SimResult", "Simulation",
           "simulate"]

NodeId = str

SIM_SPEC = MachineSpec.default().with_timeouts(
    starting=0.01, loading=5.0, collecting=0.5, liveness_check=1.0, proving=2.0,
    publishing=0.5, voting=1.0, finalizing=1.0, verifying=0.5, stopping=1.0)
"""The reference machine with timeouts sized for a simulated LAN (Delta = 50 ms)."""


@dataclass(frozen=True)
class ProviderFaults:
    """Honest nodes' providers: latency, and how often a call raises or never returns."""

    raise_rate: float = 0.0
    hang_rate: float = 0.0
    min_latency: float = 0.0002
    max_latency: float = 0.004
    methods: frozenset[str] | None = None
    """Methods that may fail (None: all of them)."""
    nodes: frozenset[int] | None = None
    """Indexes of the nodes whose providers may fail (None: every honest node)."""
    slow: tuple[tuple[str, float], ...] = ()
    """``(method, seconds)``: that method of every honest node (of ``nodes``, when given)
    takes exactly this long, e.g. ``(("finalize_votes", 2.0),)``: an application slower
    than the verifying timeout."""


@dataclass(frozen=True)
class Crash:
    """Node ``node`` (an index) crashes at virtual time ``at`` and restarts ``down`` s later."""

    node: int
    at: float
    down: float


@dataclass(frozen=True)
class SimConfig:
    n: int = 4
    byzantine: tuple[str, ...] = ()
    """One strategy name per byzantine node (see ``byzantine.STRATEGIES``)."""
    byzantine_nodes: tuple[int, ...] | None = None
    """Indexes of the byzantine nodes; by default drawn from the seed."""
    heights: int = 3
    seed: int = 0
    network: NetworkConfig = field(default_factory=NetworkConfig)
    spec: MachineSpec = SIM_SPEC
    core: CoreConfig = field(
        default_factory=lambda: CoreConfig(chain_id="sim", report_internal=False))
    faults: ProviderFaults = field(default_factory=ProviderFaults)
    weights: tuple[int, ...] | None = None
    sybils: int = 2
    max_time: float = 600.0
    drain: float = 0.0
    """Virtual seconds to keep running after every honest node reached ``heights``
    (lets messages in flight arrive, e.g. before counting evidence)."""
    max_events: int = 5_000_000
    shared_verifier: bool = True
    epochs: tuple[tuple[int, ...], ...] | None = None
    """The validator set of each epoch as node indexes (epoch ``e`` covers heights
    ``[e * epoch_length, (e + 1) * epoch_length)``, the last set stays); None: all nodes."""
    epoch_length: int | None = None
    crashes: tuple[Crash, ...] = ()
    random_crashes: int = 0
    """Crashes drawn from the seed: an honest node, a time in ``[0, crash_window]``, a
    downtime in ``downtime``."""
    crash_window: float = 4.0
    downtime: tuple[float, float] = (0.05, 1.5)
    guard: bool = True
    """A restarted node keeps its signing guard. False: it comes back with an empty one and
    starts at its application's height - the unsafe setup the guard exists to prevent."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n={self.n!r} (expected >= 1)")
        if len(self.byzantine) > self.n:
            raise ConfigError(f"{len(self.byzantine)} byzantine strategies for n={self.n}")
        if self.byzantine_nodes is not None and len(self.byzantine_nodes) != len(self.byzantine):
            raise ConfigError("byzantine_nodes must name one node per strategy")
        if self.weights is not None and len(self.weights) != self.n:
            raise ConfigError(f"{len(self.weights)} weights for n={self.n}")
        if self.epochs is not None:
            if not self.epochs or any(not e for e in self.epochs):
                raise ConfigError("epochs must list at least one non-empty set")
            if any(not 0 <= i < self.n for e in self.epochs for i in e):
                raise ConfigError(f"epochs name nodes outside 0..{self.n - 1}")
            if len(self.epochs) > 1 and (self.epoch_length is None or self.epoch_length < 1):
                raise ConfigError("several epochs need epoch_length >= 1")
        for c in self.crashes:
            if not 0 <= c.node < self.n or c.at < 0 or c.down < 0:
                raise ConfigError(f"bad crash {c!r}")
        if self.random_crashes < 0 or not 0 <= self.downtime[0] <= self.downtime[1]:
            raise ConfigError("random_crashes >= 0 and 0 <= downtime[0] <= downtime[1]")


@dataclass
class SimResult:
    config: SimConfig
    honest: tuple[NodeId, ...]
    byzantine: tuple[NodeId, ...]
    decisions: dict[NodeId, dict[int, tuple[bytes, float]]]
    violations: list[tuple[int, NodeId, bytes, NodeId, bytes]]
    evidence: dict[NodeId, set[ConflictKey]]
    evidence_sample: list[Equivocation]
    equivocations: set[ConflictKey]
    faults: dict[NodeId, list[FaultObserved]]
    rejected: Counter[str]
    messages_sent: int
    messages_delivered: int
    events: int
    signatures_checked: int
    virtual_time: float
    wall_time: float
    max_memory: int
    traces: dict[NodeId, str]
    restarts: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Signatures the honest nodes' signing guards refused, by message kind."""
    double_signed: list[Equivocation] = field(default_factory=list)
    """Pairs of conflicting messages an honest node sent (seen at the sender, whether or not
    any peer received both): must stay empty."""

    @property
    def safe(self) -> bool:
        return not self.violations

    @property
    def blamed_honest(self) -> set[ConflictKey]:
        """Equivocation evidence, found by any honest node, against an honest node."""
        honest = set(self.honest)
        return {k for keys in self.evidence.values() for k in keys if k[4] in honest}

    def check(self) -> SimResult:
        """Raise ``SafetyViolation`` if two honest nodes finalized different values."""
        if self.violations:
            h, a, da, b, db = self.violations[0]
            raise SafetyViolation(
                f"height {h}: {a} finalized {da.hex()[:12]}, {b} finalized {db.hex()[:12]} "
                f"(seed {self.config.seed})", height=h)
        return self

    def finalized(self, node: NodeId) -> int:
        """How many consecutive heights from 0 ``node`` finalized."""
        got = self.decisions.get(node, {})
        h = 0
        while h in got:
            h += 1
        return h

    @property
    def min_finalized(self) -> int:
        return min((self.finalized(n) for n in self.honest), default=0)

    def decide_gaps_after(self, t: float) -> list[float]:
        """Per honest node and height: time from the previous decision (or ``t``) to this one,
        for heights finalized after ``t`` whose previous decision was also after ``t``."""
        gaps: list[float] = []
        for node in self.honest:
            got = self.decisions.get(node, {})
            for h in sorted(got):
                prev = got.get(h - 1)
                if prev is not None and prev[1] >= t:
                    gaps.append(got[h][1] - prev[1])
        return gaps


class _Node:
    __slots__ = ("app", "applies", "cancelled", "core", "finalized", "index", "life", "node_id",
                 "retired", "store", "strategy", "up")

    def __init__(self, index: int, node_id: NodeId, core: ConsensusCore[bytes], app: SimApp,
                 strategy: Strategy | None, store: MemorySafetyStore) -> None:
        self.index = index
        self.node_id = node_id
        self.core = core
        self.app = app
        self.strategy = strategy
        self.finalized = 0
        self.store = store
        """The signing guard's store: the node's disk, it survives a crash."""
        self.applies = MemoryApplyLog()
        """The apply log: on the same disk."""
        self.cancelled: set[int] = set()
        """Provider calls the core cancelled: they never run (a cancelled task)."""
        self.life = 0
        """Incarnation: events scheduled for an earlier one are dropped."""
        self.up = True
        self.retired: list[ConsensusCore[bytes]] = []


class Simulation:
    """One seeded run. ``run()`` returns a ``SimResult``; the object keeps the nodes for
    inspection (``nodes[i].core.trace``)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self._net_rng = random.Random(rng.getrandbits(64))
        self._app_rng = random.Random(rng.getrandbits(64))
        adv_rng = random.Random(rng.getrandbits(64))
        width = max(2, len(str(config.n - 1)))
        ids = [f"n{i:0{width}d}" for i in range(config.n)]
        b = len(config.byzantine)
        byz_idx = (list(config.byzantine_nodes) if config.byzantine_nodes is not None
                   else sorted(rng.sample(range(config.n), b)))
        self.byzantine = tuple(ids[i] for i in byz_idx)
        self.honest = tuple(i for i in ids if i not in self.byzantine)
        keys = [KeyPair.from_seed(i, f"sim-{config.seed}") for i in ids]
        self._keys = keys
        weights = config.weights or (1,) * config.n
        members = config.epochs or (tuple(range(config.n)),)
        self.schedule = EpochSchedule(
            {e: ValidatorSet(e, tuple(Validator(keys[i].node_id, keys[i].public_key, weights[i])
                                      for i in sorted(set(m))))
             for e, m in enumerate(members)},
            config.epoch_length if len(members) > 1 and config.epoch_length else 1 << 62)
        shared = Verifier() if config.shared_verifier else None
        self._verifiers: list[Verifier] = []
        self.sched = Scheduler()
        self.network = NetworkModel(config.network, self._net_rng, ids, self.byzantine)
        self._ids = ids
        self._others = [[j for j in ids if j != i] for i in ids]
        self._index = {i: k for k, i in enumerate(ids)}
        self._ledgers: dict[NodeId, dict[int, Decision[bytes]]] = {i: {} for i in self.honest}
        self._first: dict[int, tuple[NodeId, bytes]] = {}
        self.violations: list[tuple[int, NodeId, bytes, NodeId, bytes]] = []
        self.equivocations: set[ConflictKey] = set()
        self.faults: dict[NodeId, list[FaultObserved]] = {i: [] for i in self.honest}
        self.sent = 0
        self._done = 0
        self._decided_at: dict[tuple[NodeId, int], float] = {}
        sybils = tuple(KeyPair.from_seed(f"sybil-{j}", f"sim-{config.seed}")
                       for j in range(config.sybils))
        self.nodes: list[_Node] = []
        board: dict[Any, dict[NodeId, bytes]] = {}  # the coalition's shared notes
        for k, node_id in enumerate(ids):
            verifier = shared or Verifier()
            if verifier not in self._verifiers:
                self._verifiers.append(verifier)
            store = MemorySafetyStore()
            applies = MemoryApplyLog()
            core: ConsensusCore[bytes] = ConsensusCore(
                keys[k], self.schedule, spec=config.spec, config=config.core, verifier=verifier,
                guard=store, applies=applies)
            strategy = None
            if node_id in self.byzantine:
                name = config.byzantine[self.byzantine.index(node_id)]
                ctx = AdversaryContext(keys[k], config.core.chain_id, self.honest,
                                       self.byzantine, random.Random(adv_rng.getrandbits(64)),
                                       self.equivocations.add, sybils, self.schedule, board)
                strategy = make_strategy(name, ctx)
            node = _Node(k, node_id, core, SimApp(node_id, self._archive), strategy, store)
            node.applies = applies
            self.nodes.append(node)
        self.restarts = 0
        self._cut = False
        self._signed: dict[ConflictKey, Message] = {}
        self.double_signed: list[Equivocation] = []
        crash_rng = random.Random(f"crash-{config.seed}")  # apart: other draws stay as they were
        honest_idx = [k for k, i in enumerate(ids) if i in self.honest]
        self.crashes = list(config.crashes)
        for _ in range(config.random_crashes if honest_idx else 0):
            self.crashes.append(Crash(crash_rng.choice(honest_idx),
                                      crash_rng.uniform(0, config.crash_window),
                                      crash_rng.uniform(*config.downtime)))

    # -------------------------------------------------------------- running

    def run(self) -> SimResult:
        cfg = self.config
        started = time.perf_counter()
        for node in self.nodes:
            self.sched.at(self._app_rng.uniform(0, 0.01), self._input, node, node.life, Start())
        for c in self.crashes:
            self.sched.at(c.at, self._crash, self.nodes[c.node], c.down)
        target = len(self.honest)
        self.sched.run(until=cfg.max_time, stop=lambda: self._done >= target,
                       max_events=cfg.max_events)
        if cfg.drain > 0 and self._done >= target:
            self.sched.run(until=self.sched.now + cfg.drain, max_events=cfg.max_events)
        wall = time.perf_counter() - started
        return self._result(wall)

    def quiesce(self, duration: float) -> None:
        """After ``run``: cut the network and keep the clock going for ``duration`` seconds.

        Nothing new can finalize (no message arrives), while timers and provider calls in
        flight - applies above all - run to completion: what a test of "every finalized
        height is applied" needs, since a slow application never catches up with a live
        network.
        """
        self._cut = True
        self.sched.run(until=self.sched.now + duration, max_events=self.config.max_events)

    def _input(self, node: _Node, life: int, inp: Any) -> None:
        if life == node.life:
            self._apply(node, node.core.handle(inp, self.sched.now))

    def _deliver(self, node: _Node, message: Message) -> None:
        if not node.up:
            return
        if node.strategy is not None:
            node.strategy.incoming(message)
            extra = node.strategy.react(message)
            if extra:
                self._route(node, extra)
        self._apply(node, node.core.handle(Deliver(message), self.sched.now))

    def _timer(self, node: _Node, life: int, token: int, event: Event) -> None:
        # cheap skip of stale timers; the core checks too
        if life == node.life and token == node.core.timer_token:
            self._apply(node, node.core.handle(TimerFired(token, event), self.sched.now))

    def _crash(self, node: _Node, down: float) -> None:
        """The process dies: its core and everything in flight for it are gone."""
        if not node.up or node.strategy is not None:
            return
        node.up = False
        node.life += 1
        core = node.core
        core.trace.append(TraceRecord(self.sched.now, node.node_id, core.height, core.view,
                                      core.phase, f"CRASH (down for {down:.3f} s)"))
        self.sched.after(down, self._restart, node)

    def _restart(self, node: _Node) -> None:
        """A new process: same keys, same application state, same guard store if durable."""
        old = node.core
        node.retired.append(old)
        if not self.config.guard:
            node.store = MemorySafetyStore()  # the disk was lost (or never written)
        node.cancelled.clear()
        node.core = ConsensusCore(
            self._keys[node.index], self.schedule, spec=old.spec, config=old.config,
            verifier=old.verifier, guard=node.store, start_height=node.app.next_height,
            applies=node.applies)
        for record in node.core.trace:  # one trace per node across its lives
            old.trace.append(record)
        node.core.trace = old.trace
        node.up = True
        node.app.boots += 1
        self.restarts += 1
        self._input(node, node.life, Start())

    def _route(self, node: _Node, routed: Sequence[tuple[Message, NodeId]]) -> None:
        if self._cut:
            return
        sched = self.sched
        for msg, dst in routed:
            self.sent += 1
            d = self.network.delay(node.node_id, dst, sched.now)
            if d is not None:
                sched.after(d, self._deliver, self.nodes[self._index[dst]], msg)

    def _apply(self, node: _Node, effects: Sequence[Effect]) -> None:
        sched = self.sched
        for e in effects:
            if isinstance(e, Send):
                if e.to is not None:
                    recipients: Sequence[NodeId] = (e.to,)
                else:
                    recipients = self._others[node.index]
                if node.strategy is not None:
                    routed = node.strategy.outgoing(e.message, recipients)
                else:
                    routed = [(e.message, r) for r in recipients]
                    if e.message.signer == node.node_id:
                        self._audit(e.message)
                self._route(node, routed)
            elif isinstance(e, SetTimer):
                sched.after(e.delay, self._timer, node, node.life, e.token, e.event)
            elif isinstance(e, Call):
                self._call(node, e)
            elif isinstance(e, CancelCall):
                node.cancelled.add(e.token)
            elif isinstance(e, Notify):
                self._notify(node, e.note)

    def _audit(self, message: Message) -> None:
        """The oracle for double signing: every message an honest node sends, by conflict key.

        An aggregate is not audited as such (two forwards, say before and after a restart,
        are two valid quorums, not a conflict), but the collector's own vote inside it is:
        in linear mode that is the only way the collector's vote leaves the node.
        """
        if isinstance(message, Aggregate):
            for vote in message.certificate.votes():
                if vote.signer == message.signer:
                    self._audit(vote)
            return
        key = conflict_key(message)
        prior = self._signed.get(key)
        if prior is None:
            self._signed[key] = message
        elif signed_content(prior) != signed_content(message):
            self.double_signed.append(Equivocation.of(prior, message))

    def _call(self, node: _Node, call: Call) -> None:
        f = self.config.faults
        rng = self._app_rng
        latency = rng.uniform(f.min_latency, f.max_latency)
        honest = node.strategy is None
        targeted = honest and (f.nodes is None or node.index in f.nodes)
        if targeted and (f.methods is None or call.method in f.methods):
            r = rng.random()
            if r < f.raise_rate:
                self.sched.after(latency, self._input, node, node.life,
                                 ProviderFailed(call.token, "RuntimeError('injected')"))
                return
            if r < f.raise_rate + f.hang_rate:
                return  # never answers
        if targeted:
            latency = dict(f.slow).get(call.method, latency)
        # The work happens at the end of the call, unless the core cancelled it meanwhile
        # or the process crashed: a cancelled or killed apply has not applied anything.
        self.sched.after(latency, self._finish_call, node, node.life, call)

    def _finish_call(self, node: _Node, life: int, call: Call) -> None:
        if life != node.life or call.token in node.cancelled:
            node.cancelled.discard(call.token)
            return
        result = getattr(node.app, call.method)(*call.args)
        self._apply(node, node.core.handle(ProviderDone(call.token, result), self.sched.now))

    def _notify(self, node: _Node, note: Any) -> None:
        if node.strategy is not None:
            return
        if isinstance(note, Finalized):
            d = note.decision
            ledger = self._ledgers[node.node_id]
            ledger[d.height] = d
            self._decided_at[(node.node_id, d.height)] = note.time
            first = self._first.get(d.height)
            if first is None:
                self._first[d.height] = (node.node_id, d.digest)
            elif first[1] != d.digest:
                self.violations.append((d.height, first[0], first[1], node.node_id, d.digest))
            while node.finalized in ledger:
                node.finalized += 1
                if node.finalized == self.config.heights:
                    self._done += 1
        elif isinstance(note, FaultObserved):
            self.faults[node.node_id].append(note)
        elif isinstance(note, EvidenceFound):
            pass  # read from the core's pool at the end

    def _archive(self, asker: NodeId, height: int) -> Sequence[CertifiedValue]:
        peers = [n for n in self.honest if n != asker and self._ledgers[n]]
        if not peers:
            return ()
        ledger = self._ledgers[self._app_rng.choice(peers)]
        out: list[CertifiedValue] = []
        h = height
        while h in ledger and len(out) < 64:
            d = ledger[h]
            out.append(CertifiedValue(h, d.raw, d.certificate))
            h += 1
        return out

    # -------------------------------------------------------------- results

    def _result(self, wall: float) -> SimResult:
        honest_nodes = [n for n in self.nodes if n.strategy is None]
        evidence = {n.node_id: {e.key for c in (*n.retired, n.core) for e in c.evidence}
                    for n in honest_nodes}
        sample: list[Equivocation] = []
        for n in honest_nodes:
            sample.extend(list(n.core.evidence)[:4])
        rejected: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        for n in honest_nodes:
            for c in (*n.retired, n.core):
                rejected.update(c.stats.rejected)
                refused.update(c.stats.refused)
        decisions = {i: {h: (d.digest, self._decided_at[(i, h)])
                         for h, d in self._ledgers[i].items()} for i in self.honest}
        return SimResult(
            config=self.config,
            honest=self.honest,
            byzantine=self.byzantine,
            decisions=decisions,
            violations=list(self.violations),
            evidence=evidence,
            evidence_sample=sample,
            equivocations=set(self.equivocations),
            faults=dict(self.faults),
            rejected=rejected,
            messages_sent=self.sent,
            messages_delivered=self.network.delivered,
            events=self.sched.processed,
            signatures_checked=sum(v.checks for v in self._verifiers),
            virtual_time=self.sched.now,
            wall_time=wall,
            max_memory=max((n.core.memory_footprint() for n in honest_nodes), default=0),
            traces={},
            restarts=self.restarts,
            refused=refused,
            double_signed=list(self.double_signed),
        )

    def trace(self, node: NodeId, n: int | None = None) -> str:
        return self.nodes[self._index[node]].core.trace.format(n)

    def ledger(self, node: NodeId) -> dict[int, Decision[bytes]]:
        """Every decision an honest node reported (across its restarts), by height."""
        return dict(self._ledgers[node])


def simulate(**kwargs: Any) -> SimResult:
    """Shorthand: ``simulate(n=4, byzantine=("equivocate",), seed=3)``."""
    return Simulation(SimConfig(**kwargs)).run()
