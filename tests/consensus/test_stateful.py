"""Hypothesis drives the network: deliver, drop, duplicate, reorder, fire timers, equivocate.

Three honest cores and one byzantine key (n00, the first leader) under an adversarial
scheduler chosen by Hypothesis; the invariant is agreement, and that memory stays bounded.
The same machine runs with all-to-all messages and with linear communication, where n00,
collecting the votes of the views it leads, also forwards whatever certificates it can
make of them, to whomever it likes.
"""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from convergent.consensus.effects import Deliver, Start
from convergent.consensus.messages import (
    Certificate,
    Kind,
    Proposal,
    Vote,
    sign_aggregate,
    sign_proposal,
    sign_vote,
)
from convergent.consensus.sim.app import SimApp

from .conftest import CHAIN, Driver, make_core, make_keys, make_schedule


class Network(RuleBasedStateMachine):
    linear = False

    def __init__(self) -> None:
        super().__init__()
        self.keys = make_keys(4, seed="stateful")
        schedule = make_schedule(self.keys)
        self.byz = self.keys[0]
        self.nodes = [Driver(make_core(self.keys, schedule, i, linear=self.linear),
                             SimApp(f"n{i:02d}")) for i in (1, 2, 3)]
        self.pending: list[tuple[int, object]] = []
        self.to_byz: dict[tuple[Kind, int, int, bytes], dict[str, bytes]] = {}
        """Votes the honest nodes sent n00 (its collector's view), by kind, h, v, digest."""
        self.values: dict[bytes, tuple[int, int, bytes]] = {}
        for d in self.nodes:
            d.feed(Start())
            d.fire()
        self._collect()

    def _collect(self) -> None:
        for d in self.nodes:
            for send in d.sent:
                targets = [send.to] if send.to is not None else [
                    k.node_id for k in self.keys if k.node_id != d.core.node_id]
                for t in targets:
                    if t != "n00":
                        self.pending.append((int(t[1:]) - 1, send.message))
                    elif isinstance(send.message, Vote):
                        m = send.message
                        self.to_byz.setdefault((m.kind, m.height, m.view, m.digest), {})[
                            m.signer] = m.signature
                if isinstance(send.message, Proposal):
                    p = send.message
                    self.values[p.digest] = (p.height, p.view, p.value)
            d.sent.clear()

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.pending) - 1))
        dst, msg = self.pending.pop(i)
        self.nodes[dst].feed(Deliver(msg))
        self._collect()

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        self.pending.append(self.pending[data.draw(st.integers(0, len(self.pending) - 1))])

    @rule(node=st.integers(0, 2))
    def timeout(self, node: int) -> None:
        if self.nodes[node].timer is not None:
            self.nodes[node].fire()
            self._collect()

    @rule(data=st.data())
    def equivocate(self, data: st.DataObject) -> None:
        """n00 signs conflicting votes (and, when it leads a view 0, proposals)."""
        node = self.nodes[data.draw(st.integers(0, 2))].core
        h, v = node.height, node.view
        known = [d for d, (hh, vv, _) in self.values.items() if hh == h]
        fake = hashlib.sha256(b"fake" + bytes([h % 256, v % 256])).digest()
        digests = known + [fake]
        for kind in (Kind.PREVOTE, Kind.PRECOMMIT):
            for target in range(3):
                d = data.draw(st.sampled_from(digests))
                self.pending.append((target, sign_vote(self.byz, CHAIN, kind, 0, h, v, d)))
        if node.leader(h, v) == "n00" and v == 0:
            for value in (b"tx:left", b"tx:right"):
                self.values[hashlib.sha256(value).digest()] = (h, v, value)
            for target, value in ((0, b"tx:left"), (1, b"tx:right"), (2, b"tx:right")):
                self.pending.append((target, sign_proposal(self.byz, CHAIN, 0, h, v, value)))

    @rule(left=st.sets(st.integers(0, 2), min_size=1, max_size=2))
    def split_brain(self, left: set[int]) -> None:
        """The coordinated attack: one value to ``left``, another to the rest, with votes."""
        node = self.nodes[0].core
        h = node.height
        if node.leader(h, 0) != "n00":
            return
        for target in range(3):
            value = b"tx:left" if target in left else b"tx:right"
            d = hashlib.sha256(value).digest()
            self.values[d] = (h, 0, value)
            self.pending.append((target, sign_proposal(self.byz, CHAIN, 0, h, 0, value)))
            for kind in (Kind.PREVOTE, Kind.PRECOMMIT):
                self.pending.append((target, sign_vote(self.byz, CHAIN, kind, 0, h, 0, d)))

    @precondition(lambda self: self.to_byz)
    @rule(data=st.data(), to=st.sets(st.integers(0, 2), min_size=1))
    def forward(self, data: st.DataObject, to: set[int]) -> None:
        """n00 as collector: a certificate of the votes it got, plus its own for that value."""
        key = data.draw(st.sampled_from(sorted(self.to_byz)))
        kind, h, v, digest = key
        sigs = dict(self.to_byz[key])
        sigs["n00"] = sign_vote(self.byz, CHAIN, kind, 0, h, v, digest).signature
        cert = Certificate(kind, 0, h, v, digest, tuple(sorted(sigs.items())))
        value = self.values.get(digest, (0, 0, b""))[2] if kind is Kind.PRECOMMIT else b""
        for target in to:
            self.pending.append((target, sign_aggregate(self.byz, CHAIN, cert, value)))

    @invariant()
    def agreement(self) -> None:
        seen: dict[int, bytes] = {}
        for d in self.nodes:
            for h, dec in d.core.decisions.items():
                assert seen.setdefault(h, dec.digest) == dec.digest, f"height {h} disagrees"

    @invariant()
    def bounded(self) -> None:
        for d in self.nodes:
            assert d.core.memory_footprint() < 2000
        if len(self.pending) > 3000:
            del self.pending[:1000]


Network.TestCase.settings = settings(
    max_examples=40, stateful_step_count=80, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestNetwork = Network.TestCase


class LinearNetwork(Network):
    linear = True


LinearNetwork.TestCase.settings = Network.TestCase.settings
TestLinearNetwork = LinearNetwork.TestCase
