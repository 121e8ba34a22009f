"""Random small federations: every check's verdict equals the brute-force
reference's, and a federation that passes converges under every order of its
events in the product machine."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .generate import random_federation
from .reference import Reference


def _compare(seed: int) -> dict[str, bool]:
    """Check one federation both ways; returns the verdict of each code."""
    fed = random_federation(seed)
    spec = fed.spec()
    report = fed.check(xu=True)
    if not report.passed("REG"):
        return {}
    ref = Reference(spec)
    verdicts: dict[str, bool] = {}
    for target in spec.names:
        if not spec.incoming(target):
            continue
        got = {c.subject: c.ok for c in report.checks if c.subject.split(":")[0] == target}
        assert None not in got.values(), report.render_text()
        events = [e.name for e in spec.member(target).events]
        m1 = ref.m1(target)
        code = "R2" if report.results("R2") and any(
            c.subject == target for c in report.results("R2")) else "M1"
        assert got[target] == m1, report.render_text()
        verdicts[code] = verdicts.get(code, True) and m1
        for ev in events:
            want = ref.c1(target, ev)
            assert [c.ok for c in report.results("C1") if c.subject == f"{target}: {ev}"] \
                == [want], report.render_text()
            verdicts["C1"] = verdicts.get("C1", True) and want
            want_xu = ref.c1(target, ev, every_valid=True)
            assert [c.ok for c in report.results("XU") if c.subject == f"{target}: {ev}"] \
                == [want_xu], report.render_text()
        for a, b in spec.member(target).independent:
            want = ref.c2(target, a, b)
            assert [c.ok for c in report.results("C2") if c.subject == f"{target}: {a}, {b}"] \
                == [want], report.render_text()
            verdicts["C2"] = verdicts.get("C2", True) and want
    if report.ok:
        _converges(fed, ref, seed)
    return verdicts


def _converges(fed: object, ref: Reference, seed: int) -> None:
    """Every permutation of an event multiset ends in one state, in the
    reference product machine and in the FederatedMachine alike."""
    rng = random.Random(seed)
    spec = ref.fed
    alphabet = [(m.name, e.name) for m in spec.members for e in m.events]
    events = [rng.choice(alphabet) for _ in range(5)]
    machine = fed.build()   # type: ignore[attr-defined]
    want = ref.run(events)
    for _ in range(6):
        rng.shuffle(events)
        assert ref.run(events) == want, (events, want)
        assert machine.decode(machine.run(events)) == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6))
def test_checks_agree_with_the_brute_force_reference(seed: int) -> None:
    _compare(seed)


@pytest.mark.slow
def test_the_generator_reaches_passing_and_failing_federations() -> None:
    """A property over examples that all pass (or all fail) proves little:
    sample the generator and require both verdicts for M1, C1 and C2, and some
    federations that pass every check."""
    seen: Counter[tuple[str, bool]] = Counter()
    whole = Counter()
    for seed in range(120):
        verdicts = _compare(seed)
        for code, ok in verdicts.items():
            seen[(code if code != "R2" else "M1", ok)] += 1
        whole[bool(verdicts) and all(verdicts.values())] += 1
    for code in ("M1", "C1", "C2"):
        assert seen[(code, True)] > 0 and seen[(code, False)] > 0, seen
    assert whole[True] > 0 and whole[False] > 0, whole
