"""The paper's counterexamples to its uncorrected federation theorem must be
reported as failures of the check that the correction adds, and really
diverge when run."""

from __future__ import annotations

import pytest

from convergent.federation import FederationCheckError

from . import fixtures
from .reference import Reference


def test_audit_counterexample_fails_c1_only() -> None:
    """Two registries in a tree, M1 holds, each registry passes on its own,
    yet recall/sell diverge: sold = 0 against sold = 1."""
    fed = fixtures.supply(sell_reads_listed=True, unlist=False)
    report = fed.check()
    assert report.failed_codes() == ("C1",)
    (c1,) = report.results("C1")
    cx = c1.counterexample
    assert cx is not None and cx.events == ("sell",)
    assert cx.order1 != cx.order2
    assert {cx.order1["sold"], cx.order2["sold"]} == {0, 1}
    # the divergence is real in the product machine (the reference runs it)
    ref = Reference(fed.spec())
    a = ref.run([("maker", "recall"), ("shop", "sell")])
    b = ref.run([("shop", "sell"), ("maker", "recall")])
    assert a["shop"]["sold"] == 0 and b["shop"]["sold"] == 1
    with pytest.raises(FederationCheckError):
        fed.build()


def test_c2_counterexample_fails_c2_only() -> None:
    """C1 and each registry's own CC hold; swap/audit still diverge."""
    fed = fixtures.swap_audit()
    report = fed.check()
    assert report.failed_codes() == ("C2",)
    (c2,) = report.results("C2")
    assert c2.counterexample is not None
    assert c2.counterexample.order1 != c2.counterexample.order2
    ref = Reference(fed.spec())
    a = ref.run([("slots", "audit"), ("slots", "swap")])
    b = ref.run([("slots", "swap"), ("slots", "audit")])
    assert a["slots"] == {"slot_a": False, "slot_b": False, "audit": True}
    assert b["slots"] == {"slot_a": False, "slot_b": False, "audit": False}


def test_supply_instance_passes_every_check_including_xu() -> None:
    """The audit's non-vacuity instance: its target event writes the shared
    var, and every check holds (XU included)."""
    fed = fixtures.supply()
    report = fed.check(xu=True)
    assert report.ok, report.render_text()
    assert report.results("XU") and report.passed("XU")
    m = fed.build()
    a = m.run([("maker", "recall"), ("shop", "sell"), ("shop", "unlist")])
    b = m.run([("shop", "unlist"), ("shop", "sell"), ("maker", "recall")])
    assert a == b
    assert m.decode(a)["shop"] == {"listed": False, "sold": 1}


def test_monotone_cycle_counterexample_is_refused() -> None:
    """The audit's ``cyc_counterexample``: a two-registry cycle whose repair
    is monotone (each shared flag is ``other's alarm or other's flag``), on
    which ``latch_a; raise_b`` and ``raise_b; latch_a`` diverge. Monotonicity
    alone does not make events converge (PAPER-MAP finding 2): the cycle is
    monotone, so its repair is accepted (MONO, ACYCLIC), and the federation
    is still refused, by C1 on ``latch_a`` (it reads the value travelling
    around the cycle)."""
    from convergent import Registry
    from convergent.federation import Federation

    a = Registry("a")
    a.bool("la")
    a.bool("sa")
    a.event("latch_a", apply={"la": "la or sa"})
    b = Registry("b")
    b.bool("lb")
    b.bool("sb")
    b.event("raise_b", apply={"lb": "true"})
    fed = Federation("cyc").registry(a).registry(b)
    fed.morphism("b", "a", shared=["sa"], map={"sa": "lb or sb"})
    fed.morphism("a", "b", shared=["sb"], map={"sb": "la or sa"})
    report = fed.check()
    assert not report.ok and report.failed_codes() == ("C1",), report.render_text()
    assert report.passed("ACYCLIC") and report.passed("MONO")
    (bad,) = [c for c in report.results("C1") if c.ok is False]
    assert bad.subject == "a: latch_a"
    with pytest.raises(FederationCheckError):
        fed.build()
    from .reference import Reference
    ref = Reference(fed.spec())
    assert ref.run([("a", "latch_a"), ("b", "raise_b")]) != \
        ref.run([("b", "raise_b"), ("a", "latch_a")])
