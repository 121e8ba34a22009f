"""Checks shared by the class tests and the property tests: a verdict's
witnesses replay in the reference to the states the report names, their two
runs apply the same events, and random clusters agree with a safe class."""

from __future__ import annotations

from collections import Counter

from convergent.migration import MigrationReport, Witness
from convergent.migration.model import Migration, Step

from .reference import Cluster, concurrent_ok, run


def events_of(steps: tuple[Step, ...]) -> list[tuple[str, str]]:
    return [(s.kind, s.event) for s in steps if s.kind != "switch"]


def check_witness(mig: Migration, w: Witness, delivery: str,
                  i1: set[frozenset[str]], i2: set[frozenset[str]]) -> None:
    a, b = run(mig, w.run_a), run(mig, w.run_b)
    assert a != b, "the witness does not diverge in the reference"
    assert a == w.result_a and b == w.result_b
    ea, eb = events_of(w.run_a), events_of(w.run_b)
    if delivery == "at-least-once":
        assert set(ea) == set(eb)
    else:
        assert Counter(ea) == Counter(eb), "the two runs apply other events"
    if w.barrier:
        for steps in (w.run_a, w.run_b):
            after = steps[[s.kind for s in steps].index("switch") + 1:]
            assert all(s.kind == "v2" for s in after), "a barrier run applies v1 after the cut"
    if delivery == "causal":
        for steps in (w.run_a, w.run_b):
            seen: list[tuple[int, str]] = []
            for s in steps:
                if s.kind == "switch":
                    continue
                me = (1 if s.kind == "v1" else 2, s.event)
                if me[0] == 1:
                    # a v1 event after a v2 event was concurrent with it
                    for other in seen:
                        if other[0] == 2:
                            assert concurrent_ok(mig, i1, i2, me, other), (me, other)
                seen.append(me)


def check_report(mig: Migration, report: MigrationReport, i1: set[frozenset[str]],
                 i2: set[frozenset[str]], *, sims: int = 6, steps: int = 30) -> None:
    for v in report.verdicts:
        if v.outcome == "online":
            assert v.online_witness is None and v.barrier_witness is None
        else:
            assert v.online_witness is not None
            check_witness(mig, v.online_witness, v.delivery, i1, i2)
        if v.outcome == "unsafe":
            assert v.barrier_witness is not None and v.barrier_witness.barrier
            check_witness(mig, v.barrier_witness, v.delivery, i1, i2)
        else:
            assert v.barrier_witness is None
        for seed in range(sims):
            if v.outcome == "online":
                finals = Cluster(mig, v.delivery, i1, i2, seed).online(steps)
                assert all(f == finals[0] for f in finals), (v.delivery, seed, finals)
            if v.outcome in ("online", "barrier"):
                finals = Cluster(mig, v.delivery, i1, i2, seed).barrier(steps)
                assert all(f == finals[0] for f in finals), (v.delivery, seed, finals)
