"""Events issued in bulk are kept as rows (plain tuples of the envelope's
layout) and read as ``Envelope`` objects; a burst names no dependency after
its first event. Each test fails if a row escapes where an ``Envelope`` is
promised, or if the shorter dependencies lose causality or convergence."""

from __future__ import annotations

import gc
import random
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.runtime import Change, Envelope, MemoryStore, Replica, SQLiteStore
from convergent.runtime.envelope import Envelopes

from .helpers import canonical_state, machine


def test_emit_many_returns_envelopes_read_from_its_rows() -> None:
    m = machine("account")
    a = Replica(m, id="a", autoflush=False)
    first = a.emit("deposit")
    envs = a.emit_many(["deposit", "freeze", "unfreeze"])
    assert isinstance(envs, Envelopes) and len(envs) == 3
    assert all(type(e) is not tuple and isinstance(e, Envelope) for e in envs)
    assert [e.id for e in envs] == ["a:2", "a:3", "a:4"]
    assert envs[0].deps == (first.id,)                 # the heads before the burst
    assert envs[1].deps == () and envs[2].deps == ()   # implied by seq
    assert envs == list(a.log[1:]) and envs == tuple(a.log[1:]) and envs != a.log
    assert envs[1:] == [envs[1], envs[2]] and envs[-1].id == "a:4"
    assert [e.id for e in reversed(envs)] == ["a:4", "a:3", "a:2"]
    assert (envs + [first])[-1] is first and ([first] + envs)[0] is first
    assert "a:2" in repr(envs) and a.emit_many([]) == []
    assert a.heads == ("a:4",)


def test_logged_rows_leave_the_collector_and_read_as_envelopes() -> None:
    m = machine("account")
    a = Replica(m, id="a", autoflush=False)
    a.emit_many([m.events[i % 5] for i in range(1000)])
    # a row is dropped once its key tuple is: one full collection, or two
    # (a pass may reach the key after the row that holds it)
    gc.collect()
    gc.collect()
    assert not any(gc.is_tracked(e) for e in a._log)  # noqa: SLF001 (the reason for rows)
    log = a.log
    assert len(log) == 1000 and all(isinstance(e, Envelope) for e in log)
    assert all(isinstance(s.envelope, Envelope) for s in a.explain(limit=5).steps)
    assert all(isinstance(e, Envelope) for e in a.missing_for({}))


class _Recording(MemoryStore):
    """A store written outside this package: it reads envelopes by name."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, tuple[str, ...]]] = []

    def append(self, envelopes: Sequence[Envelope]) -> None:
        self.seen.extend((e.id, e.deps) for e in envelopes)
        super().append(list(envelopes))


def test_stores_subscribers_and_restarts_see_envelopes(tmp_path: Path) -> None:
    m = machine("account")
    store = _Recording()
    a = Replica(m, id="a", store=store)
    changes: list[Change] = []
    a.subscribe(changes.append)
    a.emit_many(["deposit", "deposit", "withdraw"])
    assert store.seen == [("a:1", ()), ("a:2", ()), ("a:3", ())]
    assert [e.id for e in changes[0].events] == ["a:1", "a:2", "a:3"]
    assert all(isinstance(e, Envelope) for e in changes[0].events)
    assert all(isinstance(e, Envelope) for e in MemoryStore.load(store)[1])
    # a restart from SQLite rebuilds the same log, heads and state
    db = f"sqlite:///{tmp_path / 'a.db'}"
    b = Replica(m, id="b", store=db)
    b.emit("deposit")
    b.emit_many(["withdraw", "freeze", "unfreeze", "deposit"])
    log, heads, state = b.log, b.heads, b.state
    b.close()
    again = Replica(m, id="b", store=SQLiteStore(tmp_path / "a.db"))
    assert again.log == log and again.heads == heads == ("b:5",) and again.state == state
    assert again.emit("deposit").deps == ("b:5",)


def _expected_heads(envs: Sequence[Envelope]) -> set[str]:
    depended = {d for e in envs for d in e.deps}
    depended |= {f"{e.origin}:{e.seq - 1}" for e in envs if e.seq > 1}
    return {e.id for e in envs} - depended


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_bursts_delivered_in_any_order_converge_with_causality_kept(seed: int) -> None:
    """Three replicas emit bursts and single events and gossip part of what
    they have; every envelope then reaches a fresh replica in a random order
    (duplicates included, in random chunks). It must apply an event only
    after its origin's previous one and its deps, end with nothing pending,
    the canonical state and the heads of the causal graph."""
    m = machine("account")
    rng = random.Random(seed)
    now = [1000]

    def clock() -> int:
        now[0] += rng.randint(0, 2)
        return now[0]

    reps = [Replica(m, id=f"r{k}", clock=clock, autoflush=False) for k in range(3)]
    sent: list[Envelope] = []
    for step in range(rng.randint(4, 12)):
        src = rng.choice(reps)
        if step == 0 or rng.random() < 0.6:
            sent.extend(src.emit_many([rng.choice(m.events) for _ in range(rng.randint(2, 6))]))
        else:
            sent.append(src.emit(rng.choice(m.events)))
        dst = rng.choice(reps)
        if dst is not src and rng.random() < 0.5:
            dst.receive([e for e in sent if e.origin == src.id])
    bursts = sum(1 for e in sent if e.seq > 1 and not e.deps)
    assert bursts >= 1  # the generator reaches the shortened dependencies
    shuffled = sent + rng.sample(sent, k=len(sent) // 3)
    rng.shuffle(shuffled)
    d = Replica(m, id="d", autoflush=False)
    applied: list[str] = []
    d.subscribe(lambda ch: applied.extend(e.id for e in ch.events))
    i = 0
    while i < len(shuffled):
        k = rng.randint(1, 8)
        d.receive(shuffled[i:i + k])
        d.flush()
        i += k
    assert d.pending == ()
    assert sorted(applied) == sorted(e.id for e in sent)   # each exactly once
    pos = {eid: n for n, eid in enumerate(applied)}
    for e in sent:
        if e.seq > 1:
            assert pos[f"{e.origin}:{e.seq - 1}"] < pos[e.id]
        for dep in e.deps:
            assert pos[dep] < pos[e.id]
    assert d.state == canonical_state(m, sent)
    assert set(d.heads) == _expected_heads(sent)
    for r in reps:  # every replica's own view agrees on what it holds
        assert r.state == canonical_state(m, r.log)


def test_what_only_larger_limits_allow_is_checked_again_by_a_default_receiver() -> None:
    """Issued envelopes skip the receiver's checks only when they fit the
    default limits; an issuer with larger limits can issue a meta the
    default refuses, and an in-process receiver must refuse it too."""
    from convergent.runtime import Limits, ProtocolError
    m = machine("account")
    big = {"note": "x" * 30_000}   # over the default max_meta_bytes (16 KiB)
    a = Replica(m, id="a", autoflush=False, limits=Limits(max_meta_bytes=100_000))
    single = a.emit("deposit", meta=big)
    burst = a.emit_many(["deposit", "withdraw"], meta=big)
    small = a.emit_many(["deposit"], meta={"note": "ok"})
    b = Replica(m, id="b", autoflush=False)
    for envs in ([single], burst):
        try:
            b.receive(envs)
        except ProtocolError as exc:
            assert "meta" in str(exc)
        else:
            raise AssertionError("a meta over the receiver's limits was accepted")
    assert b.log == () and b.version == {}
    roomy = Replica(m, id="c", autoflush=False, limits=Limits(max_meta_bytes=100_000))
    assert roomy.receive([single, *burst, *small]) == 4


def test_a_view_built_outside_a_replica_is_checked_by_receivers() -> None:
    from convergent.runtime import ProtocolError
    m = machine("account")
    a = Replica(m, id="a", autoflush=False)
    good = tuple(a.emit_many(["deposit", "deposit"]))
    forged = list(map(tuple, good))
    forged[1] = (*forged[1][:3], 2**70, *forged[1][4:])   # a seq no check allows
    b = Replica(m, id="b", autoflush=False)
    try:
        b.receive(Envelopes(forged))
    except ProtocolError as exc:
        assert "seq" in str(exc)
    else:
        raise AssertionError("a forged row was trusted")
    assert b.log == ()
    assert b.receive(Envelopes([tuple(e) for e in good])) == 2 and b.log == good
