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
from ..effects import (
    Call,
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
from ..evidence import ConflictKey, Equivocation
from ..machine import Event, MachineSpec
from ..messages import Message
from ..validators import EpochSchedule, Validator, ValidatorSet
from .app import SimApp
from .network import NetworkConfig, NetworkModel
from .scheduler import Scheduler

__all__ = ["SIM_SPEC", "ProviderFaults", "SimConfig", "SimResult", "Simulation", "simulate"]

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

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n={self.n!r} (expected >= 1)")
        if len(self.byzantine) > self.n:
            raise ConfigError(f"{len(self.byzantine)} byzantine strategies for n={self.n}")
        if self.byzantine_nodes is not None and len(self.byzantine_nodes) != len(self.byzantine):
            raise ConfigError("byzantine_nodes must name one node per strategy")
        if self.weights is not None and len(self.weights) != self.n:
            raise ConfigError(f"{len(self.weights)} weights for n={self.n}")


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

    @property
    def safe(self) -> bool:
        return not self.violations

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
    __slots__ = ("app", "core", "finalized", "index", "node_id", "strategy")

    def __init__(self, index: int, node_id: NodeId, core: ConsensusCore[bytes], app: SimApp,
                 strategy: Strategy | None) -> None:
        self.index = index
        self.node_id = node_id
        self.core = core
        self.app = app
        self.strategy = strategy
        self.finalized = 0


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
        weights = config.weights or (1,) * config.n
        vset = ValidatorSet(0, tuple(Validator(k.node_id, k.public_key, w)
                                     for k, w in zip(keys, weights, strict=True)))
        self.schedule = EpochSchedule.single(vset)
        shared = Verifier() if config.shared_verifier else None
        self._verifiers: list[Verifier] = []
        self.sched = Scheduler()
        self.network = NetworkModel(config.network, self._net_rng, ids)
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
        for k, node_id in enumerate(ids):
            verifier = shared or Verifier()
            if verifier not in self._verifiers:
                self._verifiers.append(verifier)
            core: ConsensusCore[bytes] = ConsensusCore(
                keys[k], self.schedule, spec=config.spec, config=config.core, verifier=verifier)
            strategy = None
            if node_id in self.byzantine:
                name = config.byzantine[self.byzantine.index(node_id)]
                ctx = AdversaryContext(keys[k], config.core.chain_id, self.honest,
                                       self.byzantine, random.Random(adv_rng.getrandbits(64)),
                                       self.equivocations.add, sybils)
                strategy = make_strategy(name, ctx)
            self.nodes.append(_Node(k, node_id, core, SimApp(node_id, self._archive), strategy))

    # -------------------------------------------------------------- running

    def run(self) -> SimResult:
        cfg = self.config
        started = time.perf_counter()
        for node in self.nodes:
            self.sched.at(self._app_rng.uniform(0, 0.01), self._input, node, Start())
        target = len(self.honest)
        self.sched.run(until=cfg.max_time, stop=lambda: self._done >= target,
                       max_events=cfg.max_events)
        if cfg.drain > 0 and self._done >= target:
            self.sched.run(until=self.sched.now + cfg.drain, max_events=cfg.max_events)
        wall = time.perf_counter() - started
        return self._result(wall)

    def _input(self, node: _Node, inp: Any) -> None:
        self._apply(node, node.core.handle(inp, self.sched.now))

    def _deliver(self, node: _Node, message: Message) -> None:
        if node.strategy is not None:
            node.strategy.incoming(message)
        self._apply(node, node.core.handle(Deliver(message), self.sched.now))

    def _timer(self, node: _Node, token: int, event: Event) -> None:
        if token == node.core.timer_token:  # cheap skip of stale timers; the core checks too
            self._apply(node, node.core.handle(TimerFired(token, event), self.sched.now))

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
                for msg, dst in routed:
                    self.sent += 1
                    d = self.network.delay(node.node_id, dst, sched.now)
                    if d is not None:
                        sched.after(d, self._deliver, self.nodes[self._index[dst]], msg)
            elif isinstance(e, SetTimer):
                sched.after(e.delay, self._timer, node, e.token, e.event)
            elif isinstance(e, Call):
                self._call(node, e)
            elif isinstance(e, Notify):
                self._notify(node, e.note)

    def _call(self, node: _Node, call: Call) -> None:
        f = self.config.faults
        rng = self._app_rng
        latency = rng.uniform(f.min_latency, f.max_latency)
        honest = node.strategy is None
        if honest and (f.methods is None or call.method in f.methods) and (
                f.nodes is None or node.index in f.nodes):
            r = rng.random()
            if r < f.raise_rate:
                self.sched.after(latency, self._input, node,
                                 ProviderFailed(call.token, "RuntimeError('injected')"))
                return
            if r < f.raise_rate + f.hang_rate:
                return  # never answers
        result = getattr(node.app, call.method)(*call.args)
        self.sched.after(latency, self._input, node, ProviderDone(call.token, result))

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
        evidence = {n.node_id: {e.key for e in n.core.evidence} for n in honest_nodes}
        sample: list[Equivocation] = []
        for n in honest_nodes:
            sample.extend(list(n.core.evidence)[:4])
        rejected: Counter[str] = Counter()
        for n in honest_nodes:
            rejected.update(n.core.stats.rejected)
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
        )

    def trace(self, node: NodeId, n: int | None = None) -> str:
        return self.nodes[self._index[node]].core.trace.format(n)


def simulate(**kwargs: Any) -> SimResult:
    """Shorthand: ``simulate(n=4, byzantine=("equivocate",), seed=3)``."""
    return Simulation(SimConfig(**kwargs)).run()
