"""Helpers: deterministic keys, a validator set, and a driver that runs one core by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("cryptography")

from convergent.consensus.core import ConsensusCore, CoreConfig
from convergent.consensus.crypto import KeyPair
from convergent.consensus.effects import (
    Call,
    Deliver,
    Effect,
    EvidenceFound,
    FaultObserved,
    Finalized,
    Notify,
    ProviderDone,
    Send,
    SetTimer,
    Start,
    TimerFired,
    TransitionRecord,
)
from convergent.consensus.machine import Phase
from convergent.consensus.sim.app import SimApp
from convergent.consensus.sim.simulator import SIM_SPEC
from convergent.consensus.validators import EpochSchedule, Validator, ValidatorSet

CHAIN = "test"


def make_keys(n: int = 4, seed: str = "t") -> list[KeyPair]:
    return [KeyPair.from_seed(f"n{i:02d}", seed) for i in range(n)]


def make_schedule(keys: list[KeyPair], weights: list[int] | None = None) -> EpochSchedule:
    weights = weights or [1] * len(keys)
    return EpochSchedule.single(ValidatorSet(0, tuple(
        Validator(k.node_id, k.public_key, w) for k, w in zip(keys, weights, strict=True))))


@dataclass
class Driver:
    """Runs one core: answers provider calls at once (SimApp), records sends and notes."""

    core: ConsensusCore[bytes]
    app: SimApp = field(default_factory=lambda: SimApp("x"))
    sent: list[Send] = field(default_factory=list)
    notes: list[Any] = field(default_factory=list)
    timer: SetTimer | None = None
    auto: bool = True
    held: list[Call] = field(default_factory=list)
    now: float = 0.0

    def feed(self, inp: Any) -> list[Effect]:
        effects = self.core.handle(inp, self.now)
        for e in effects:
            if isinstance(e, Send):
                self.sent.append(e)
            elif isinstance(e, SetTimer):
                self.timer = e
            elif isinstance(e, Notify):
                self.notes.append(e.note)
            elif isinstance(e, Call):
                if self.auto:
                    result = getattr(self.app, e.method)(*e.args)
                    self.feed(ProviderDone(e.token, result))
                else:
                    self.held.append(e)
        return effects

    def fire(self) -> None:
        assert self.timer is not None
        t, self.timer = self.timer, None
        self.now += t.delay
        self.feed(TimerFired(t.token, t.event))

    def deliver(self, *messages: Any) -> None:
        for m in messages:
            self.feed(Deliver(m))

    def boot(self) -> None:
        """Start and run to ``liveness_check`` of height 0, view 0."""
        self.feed(Start())
        self.fire()  # starting -> loading -> collecting -> liveness_check
        assert self.core.phase is Phase.LIVENESS_CHECK, self.core.phase

    def sent_of(self, kind: type) -> list[Any]:
        return [s.message for s in self.sent if isinstance(s.message, kind)]

    def decisions(self) -> list[Any]:
        return [n.decision for n in self.notes if isinstance(n, Finalized)]

    def evidence(self) -> list[Any]:
        return [n.evidence for n in self.notes if isinstance(n, EvidenceFound)]

    def faults(self) -> list[FaultObserved]:
        return [n for n in self.notes if isinstance(n, FaultObserved)]

    def transitions(self) -> list[TransitionRecord]:
        return [n for n in self.notes if isinstance(n, TransitionRecord)]


@pytest.fixture
def keys() -> list[KeyPair]:
    return make_keys(4)


@pytest.fixture
def schedule(keys: list[KeyPair]) -> EpochSchedule:
    return make_schedule(keys)


def make_core(keys: list[KeyPair], schedule: EpochSchedule, index: int = 1,
              **config: Any) -> ConsensusCore[bytes]:
    """A core driven by hand. All-to-all by default: these tests feed it every peer's vote
    and liveness directly (the safety rules do not depend on the mode); the linear mode's
    own flow is tested in ``test_linear.py`` and by the simulator."""
    config.setdefault("linear", False)
    return ConsensusCore(keys[index], schedule, spec=SIM_SPEC,
                         config=CoreConfig(chain_id=CHAIN, **config))


@pytest.fixture
def driver(keys: list[KeyPair], schedule: EpochSchedule) -> Driver:
    """Node n01 (a follower at height 0: n00 leads view 0)."""
    return Driver(make_core(keys, schedule, 1), SimApp("n01"))
