"""For each check, a federation that fails exactly that check and one that
passes; every verdict is also compared with the brute-force reference."""

from __future__ import annotations

import json

import pytest

from convergent import Registry
from convergent.federation import Federation, FederationError, topological_order

from . import fixtures
from .reference import Reference


def test_reg_fails_when_a_member_fails_its_own_check() -> None:
    bad = fixtures.own_failure(fails=True).check()
    assert bad.failed_codes() == ("REG",)
    (reg,) = [c for c in bad.results("REG") if c.ok is False]
    assert reg.subject == "counter"
    assert fixtures.own_failure(fails=False).check().ok


def test_acyclic_reports_the_cycle_and_the_order() -> None:
    bad = fixtures.cyclic(cycle=True).check()
    assert bad.failed_codes() == ("ACYCLIC", "MONO")
    (res,) = bad.results("ACYCLIC")
    assert set(res.cycle) == {"a_to_b", "b_to_a"} and bad.order is None
    good = fixtures.cyclic(cycle=False).check()
    assert good.ok and good.order == ("a", "b")
    looped = fixtures.cyclic(cycle=True, monotone=True).check()
    assert looped.ok and looped.order == ("a", "b"), looped.render_text()
    (res,) = looped.results("ACYCLIC")
    assert res.details == {"cycles": [["a", "b"]]}


def test_topological_order_puts_every_source_first() -> None:
    regs = [Registry(n) for n in "dcba"]
    for r in regs:
        r.bool("x")
        r.bool("y")
    fed = Federation("chain")
    for r in regs:
        fed.registry(r)
    fed.morphism("a", "b", shared=["x"], map={"x": "x"})
    fed.morphism("b", "c", shared=["x"], map={"x": "x"})
    fed.morphism("a", "d", shared=["y"], map={"y": "x"})
    fed.morphism("c", "d", shared=["x"], map={"x": "y"})
    order, cycle = topological_order(fed.spec())
    assert order is not None and cycle == ()
    for m in fed.spec().morphisms:
        assert order.index(m.source) < order.index(m.target)


@pytest.mark.parametrize("kind", [None, "flaky", "wide"])
def test_r1_fails_for_a_resolver_that_is_not_a_function_of_its_sources(kind: str | None
                                                                        ) -> None:
    report = fixtures.door(resolver=kind).check()
    assert report.failed_codes() == ("R1",)
    (r1,) = report.results("R1")
    assert r1.ok is False and r1.message
    # the checks that need the repair say they could not run
    assert [c.ok for c in report.results("R2")] == [None]


def test_r1_and_r2_pass_for_an_and_resolver() -> None:
    fed = fixtures.door(resolver="and")
    report = fed.check()
    assert report.ok, report.render_text()
    assert report.passed("R1") and report.passed("R2") and report.results("R2")
    ref = Reference(fed.spec())
    assert ref.m1("door")


def test_r2_fails_when_the_resolved_image_breaks_the_target() -> None:
    fed = fixtures.door(resolver="alarmed")
    report = fed.check()
    assert report.failed_codes() == ("R2",)
    (r2,) = report.results("R2")
    cx = r2.counterexample
    assert cx is not None and cx.state["alarm"] is True and cx.state["access"] is False
    assert cx.trace[-1].state["access"] is True and cx.trace[-1].state["alarm"] is True
    assert not Reference(fed.spec()).m1("door")


def test_m1_fails_exactly_and_passes() -> None:
    bad = fixtures.stocked(breaks=True)
    report = bad.check()
    assert report.failed_codes() == ("M1",)
    cx = report.results("M1")[0].counterexample
    assert cx is not None and cx.sources == {"maker": {"recalled": False}}
    assert cx.state["stock"] == 0 and cx.trace[-1].state["listed"] is True
    assert not Reference(bad.spec()).m1("shop")
    good = fixtures.stocked(breaks=False)
    assert good.check().ok and Reference(good.spec()).m1("shop")


def test_c1_fails_exactly_and_passes() -> None:
    bad = fixtures.supply(sell_reads_listed=True, unlist=False)
    assert bad.check().failed_codes() == ("C1",)
    assert not Reference(bad.spec()).c1("shop", "sell")
    good = fixtures.supply(unlist=False)
    assert good.check().ok and Reference(good.spec()).c1("shop", "sell")


def test_c2_fails_exactly_and_passes() -> None:
    bad = fixtures.swap_audit()
    assert bad.check().failed_codes() == ("C2",)
    assert not Reference(bad.spec()).c2("slots", "swap", "audit")
    good = fixtures.supply()
    report = good.check()
    assert report.ok and report.results("C2")
    assert Reference(good.spec()).c2("shop", "sell", "unlist")


def test_xu_is_opt_in_and_fails_where_only_inconsistent_states_differ() -> None:
    fed = fixtures.swap_audit(audit=False)
    assert fed.check().ok                       # without XU: nothing fails
    report = fed.check(xu=True)
    assert report.failed_codes() == ("XU",)
    cx = report.results("XU")[0].counterexample
    assert cx is not None and cx.state["slot_a"] is True    # not an image: slot_a is closed
    ref = Reference(fed.spec())
    assert ref.c1("slots", "swap") and not ref.c1("slots", "swap", every_valid=True)
    assert fixtures.supply().check(xu=True).passed("XU")


def test_report_shape_round_trips_through_json() -> None:
    report = fixtures.supply(sell_reads_listed=True).check(xu=True)
    data = json.loads(report.to_json())
    assert data["verdict"] == "fail" and data["format_version"] == 1
    assert data["failed"] == list(report.failed_codes())
    codes = {c["code"] for c in data["checks"]}
    assert {"REG", "ACYCLIC", "M1", "C1", "XU"} <= codes
    failing = [c for c in data["checks"] if c["ok"] is False]
    assert all(c["counterexample"] or c["details"] for c in failing)
    text = report.render_text()
    assert "FAIL" in text and "order1" in text and "order2" in text


def test_malformed_declarations_raise_federation_error() -> None:
    maker = Registry("maker")
    maker.bool("recalled")
    shop = Registry("shop")
    shop.bool("listed")
    shop.int("n", 0, 1)
    fed = Federation("f").registry(maker).registry(shop)
    with pytest.raises(FederationError, match="unknown registry"):
        fed.morphism("nobody", "shop", shared=["listed"], map={"listed": "true"})
    with pytest.raises(FederationError, match="not a var"):
        fed.morphism("maker", "shop", shared=["nope"], map={"nope": "true"})
    with pytest.raises(FederationError, match="exactly the shared vars"):
        fed.morphism("maker", "shop", shared=["listed"], map={"n": "1"})
    with pytest.raises(FederationError):
        fed.morphism("maker", "shop", shared=["listed"], map={"listed": "recalled + 1"})
    with pytest.raises(FederationError, match="duplicate registry"):
        fed.registry(maker)
    fed.morphism("maker", "shop", shared=["n"], map=lambda s: {"n": 5})
    with pytest.raises(FederationError, match="n=5"):
        fed.check()


def test_callable_maps_are_tabulated_by_what_they_read() -> None:
    src = Registry("src")
    for i in range(12):
        src.bool(f"b{i}")
    dst = Registry("dst")
    dst.bool("x")
    dst.bool("y")
    dst.event("flip_y", apply={"y": "not y"})
    calls = {"n": 0}

    def m(s: object) -> dict[str, bool]:
        calls["n"] += 1
        return {"x": s["b3"] and s["b7"]}   # type: ignore[index]

    fed = Federation("wide").registry(src).registry(dst)
    fed.morphism("src", "dst", shared=["x"], map=m)
    report = fed.check()
    assert report.ok
    assert calls["n"] <= 8                 # a few leaves, not 4096 states


def test_a_member_without_tables_fails_reg_and_skips_its_targets() -> None:
    """A member whose repairs loop (no WFC) has no step tables: REG fails and
    the checks of its target say they did not run (a report, not a crash)."""
    src = Registry("looping")
    src.bool("a")
    src.invariant("i1", holds="a", repair={"a": "false"})
    src.event("touch", apply={"a": "true"})
    dst = Registry("dst")
    dst.bool("x")
    dst.event("e", apply={"x": "not x"})
    fed = Federation("f").registry(src).registry(dst)
    fed.morphism("looping", "dst", shared=["x"], map={"x": "a"})
    report = fed.check()
    assert report.failed_codes() == ("REG",)
    assert [c.ok for c in report.results("M1")] == [None]
    assert report.verdict == "fail"
