"""The batched paths of issue 12's speed part: deferred replays (several
repairs, one replay), anti-entropy answers applied as one batch, and the
stores' bulk writes. Each test fails on the code before it: it counts the
work done, not only the result."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent.runtime import Envelope, Replica, SQLiteStore, decode_batch, encode_batch
from convergent.runtime.envelope import decode_batch_part
from convergent.runtime.errors import ProtocolError

from .helpers import canonical_state, machine
from .servers import NatsServer


def _lagging_stream(origins: int, lag: int, ms: int) -> list[list[Envelope]]:
    """``origins`` replicas emitting one event per ms each; the first one's
    events arrive ``lag`` ms late (so they sort before applied events)."""
    m = machine("account")
    now = [0]
    reps = [Replica(m, id=f"o{k}", clock=lambda: now[0], autoflush=False)
            for k in range(origins)]
    out: list[list[Envelope]] = [[] for _ in range(ms + lag + 1)]
    for t in range(ms):
        now[0] = t
        for k, rep in enumerate(reps):
            out[t + (lag if k == 0 else 0)].append(rep.emit(m.events[(t + k) % 5]))
    return out


def test_repairs_of_many_receives_cost_one_replay() -> None:
    """One origin 20 ms late: every delivery of it needs a repair, but the
    replays are deferred to the next read of the state: one replay of the
    tail, not one per receive call (before: 800 replays of ~60 events)."""
    m = machine("account")
    batches = _lagging_stream(origins=3, lag=20, ms=800)
    r = Replica(m, id="lag", autoflush=False)
    for b in batches:
        if b:
            r.receive(b)
    assert r.stats.repairs > 500          # decided per insertion, as before
    assert r.stats.replays == 0           # nobody read the state yet
    state = r.state
    assert r.stats.replays == 1
    assert r.stats.replayed <= len(r.log)
    assert state == canonical_state(m, r.log)
    ex = r.explain()
    assert len(ex.repairs) == 1 and len(ex.repairs[0].inserted) == r.stats.repairs
    # reading again replays nothing more
    assert r.state == state and r.stats.replays == 1


def test_a_deferred_replay_runs_before_subscribers_hear_of_it() -> None:
    m = machine("account")
    batches = _lagging_stream(origins=2, lag=10, ms=50)
    r = Replica(m, id="lag", autoflush=False)
    seen: list[Any] = []
    r.subscribe(seen.append)
    for b in batches[:30]:
        if b:
            r.receive(b)
    r.flush()
    assert r.stats.replays == 1 and seen[-1].repaired
    assert seen[-1].after == canonical_state(m, r.log)


def test_a_subscriber_that_comes_late_starts_from_the_current_state() -> None:
    m = machine("account")
    batches = _lagging_stream(origins=2, lag=10, ms=60)
    r = Replica(m, id="lag", autoflush=False)
    for b in batches[:30]:
        if b:
            r.receive(b)
    r.flush()                              # no subscriber: the replay stays deferred
    assert r.stats.replays == 0
    seen: list[Any] = []
    r.subscribe(seen.append)
    before = r.state
    for b in batches[30:]:
        if b:
            r.receive(b)
    r.flush()
    assert seen[-1].before == before
    assert seen[-1].after == canonical_state(m, r.log)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), reads=st.integers(0, 6))
def test_deferred_replays_keep_the_canonical_fold(seed: int, reads: int) -> None:
    """Emits, lagging receives, commits and reads interleaved at random:
    the state read is always the canonical fold of the log (Theorem 1)."""
    m = machine("account")
    rng = random.Random(seed)
    batches = _lagging_stream(origins=3, lag=rng.randint(1, 30), ms=60)
    now = [10_000]
    r = Replica(m, id="me", clock=lambda: now[0], autoflush=False,
                peers=["me", "o0", "o1", "o2"])
    for i, b in enumerate(batches):
        if b:
            r.receive(b)
        if rng.random() < 0.2:
            r.emit(rng.choice(m.events))
        if rng.random() < 0.1:
            r.emit_many([rng.choice(m.events) for _ in range(rng.randint(1, 4))])
        if reads and rng.random() < reads / 20:
            assert r.state == canonical_state(m, r.log)
        if rng.random() < 0.05:
            r.flush()
    r.flush()
    assert r.state == canonical_state(m, r.log)


# ---------------------------------------------------------------- wire parts


def test_parts_round_trip_and_are_checked() -> None:
    m = machine("account")
    r = Replica(m, id="a", autoflush=False)
    envs = r.emit_many(["deposit", "freeze"])
    data = encode_batch(m.name, m.policy_digest, envs, part=("abc123", 1, 3))
    assert decode_batch_part(data)[3] == ("abc123", 1, 3)
    assert decode_batch(data)[2] == envs             # a receiver that ignores parts
    assert decode_batch_part(encode_batch(m.name, m.policy_digest, envs))[3] is None
    for bad in ([1, 0, 2], ["a:b", 0, 2], ["t", 2, 2], ["t", -1, 2], ["t", 0, 10**9], "t"):
        raw = data.replace(b'"part":["abc123",1,3]', f'"part":{_json(bad)}'.encode())
        with pytest.raises(ProtocolError, match="part"):
            decode_batch_part(raw)


def _json(x: object) -> str:
    import json
    return json.dumps(x)


# ---------------------------------------------------------------- NATS


@pytest.mark.server
def test_an_anti_entropy_answer_is_one_receive(nats_server: NatsServer, tmp_path: Path) -> None:
    """a has 2,500 events the stream never carried; b gets them from a's
    answer, sent as three messages of 1,000: b applies them in ONE receive
    call (before: one per message)."""
    from convergent.runtime import NatsTransport, ReplicaService
    m = machine("account")
    with Replica(m, id="a", store=SQLiteStore(tmp_path / "a.db")) as offline:
        offline.emit_many([m.events[k % 5] for k in range(2500)])

    calls: list[int] = []

    async def main() -> tuple[Replica, Any]:
        ta = NatsTransport(nats_server.url, sync_interval=60, inflight_grace=0.0,
                           max_events=1000)
        a = Replica(m, id="a", store=SQLiteStore(tmp_path / "a.db"), transport=ta,
                    autoflush=False)
        tb = NatsTransport(nats_server.url, sync_interval=60, inflight_grace=0.0)
        b = Replica(m, id="b", transport=tb, autoflush=False)
        receive = b.receive

        def counting(envs: Any) -> int:
            envs = list(envs) if not isinstance(envs, Envelope) else [envs]
            calls.append(len(envs))
            return receive(envs)
        b.receive = counting  # type: ignore[method-assign]
        sa, sb = ReplicaService(a, ta), ReplicaService(b, tb)
        await sa.start()
        await sb.start()
        deadline = time.monotonic() + 20
        while b.accepted < 2500:
            assert time.monotonic() < deadline, f"b has {b.accepted}"
            await asyncio.sleep(0.02)
        await sa.aclose()
        await sb.aclose()
        return b, tb

    b, tb = asyncio.run(main())
    assert [n for n in calls if n] == [2500]
    assert tb.counters["answers_received"] == 1 and tb.counters["answers_incomplete"] == 0
    assert b.stats.accepted == 2500


@pytest.mark.server
def test_an_answer_missing_a_part_is_applied_after_the_timeout(nats_server: NatsServer) -> None:
    """A lost part must not hold the others for good: after answer_timeout
    what came is applied (events lacking dependencies wait in the buffer)."""
    from convergent.runtime import NatsTransport, ReplicaService
    m = machine("account")
    src = Replica(m, id="a", autoflush=False)
    envs = src.emit_many([m.events[k % 5] for k in range(30)])

    async def main() -> tuple[Replica, Any]:
        tb = NatsTransport(nats_server.url, sync_interval=60)
        b = Replica(m, id="b", transport=tb, autoflush=False)
        sb = ReplicaService(b, tb)
        await sb.start()
        tb.answer_timeout = 0.3
        subject = tb.subject("direct", "b")
        for i in (0, 2):                               # part 1 of 3 never comes
            await tb.nc.publish(subject, encode_batch(
                m.name, m.policy_digest, envs[i * 10:(i + 1) * 10], part=("lost1", i, 3)))
        await tb.nc.flush()
        await asyncio.sleep(0.15)
        assert b.accepted == 0                         # waiting for part 1
        deadline = time.monotonic() + 10
        while tb.counters["answers_incomplete"] < 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        await sb.aclose()
        return b, tb

    b, tb = asyncio.run(main())
    assert b.accepted == 10 and len(b.pending) == 10   # part 2 waits for part 1


def test_answers_waiting_for_parts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that starts answers and never finishes them cannot make a
    replica hold more than MAX_ANSWER_EVENTS envelopes or MAX_OPEN_ANSWERS
    answers: past either bound, what came is applied, and the later parts of
    a cut answer go straight to the replica."""
    pytest.importorskip("nats")
    from convergent.runtime import NatsTransport
    from convergent.runtime.transports import nats as nats_mod
    monkeypatch.setattr(nats_mod, "MAX_ANSWER_EVENTS", 25)
    monkeypatch.setattr(nats_mod, "MAX_OPEN_ANSWERS", 3)
    m = machine("account")
    src = Replica(m, id="a", autoflush=False)
    envs = src.emit_many([m.events[k % 5] for k in range(40)])
    applied: list[int] = []

    async def main() -> None:
        t = NatsTransport("nats://127.0.0.1:1")
        Replica(m, id="b", transport=t, autoflush=False)

        async def apply(got: list[Envelope]) -> None:
            applied.append(len(got))
        t._apply_answer = apply  # type: ignore[method-assign]
        # one answer of 4 parts of 10: the third part passes the bound
        assert t._assemble(None, ("big", 0, 4), envs[0:10]) == []
        assert t._assemble(None, ("big", 1, 4), envs[10:20]) == []
        assert t._assemble(None, ("big", 2, 4), envs[20:30]) == []
        await asyncio.sleep(0)
        assert applied == [30] and not t._answers
        assert t._assemble(None, ("big", 3, 4), envs[30:40]) == envs[30:40]  # at once
        # four answers open at once: the oldest is applied as it is
        for k in range(4):
            t._assemble(None, (f"x{k}", 0, 2), envs[k:k + 1])
        await asyncio.sleep(0)
        assert len(t._answers) == 3 and applied == [30, 1]
        assert t.counters["answers_incomplete"] == 2
        await t.aclose()

    asyncio.run(main())
