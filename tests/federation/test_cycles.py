"""Cycle diagnosis: settles, orbits with a section elsewhere, obstructed."""

from __future__ import annotations

from convergent import Registry
from convergent.federation import Federation, diagnose_cycle


def _loop(back: str, size: int = 2) -> Federation:
    """A copies ``fa`` into B's ``fb``; B sends ``back`` (an expression over
    ``fb``) into A's ``fa``."""
    a = Registry("a")
    a.int("fa", 0, size - 1)
    a.bool("la")
    a.event("ta", apply={"la": "not la"})
    b = Registry("b")
    b.int("fb", 0, size - 1)
    b.event("noop_b", apply={"fb": "fb"})
    fed = Federation("loop").registry(a).registry(b)
    fed.morphism("a", "b", shared=["fb"], map={"fb": "fa"})
    fed.morphism("b", "a", shared=["fa"], map={"fa": back})
    return fed


def test_copy_back_settles() -> None:
    d = diagnose_cycle(_loop("fb").spec())
    assert d is not None and d.settles and d.section is not None
    assert d.section["a"]["fa"] == d.section["b"]["fb"]
    assert not d.obstructed and d.verdict == "settles"


def test_negation_is_obstructed_from_every_seed() -> None:
    d = diagnose_cycle(_loop("1 - fb").spec())
    assert d is not None and not d.settles and d.section is None
    assert d.all_seeds and d.obstructed and len(d.orbit) == 2
    assert {o["a"]["fa"] for o in d.orbit} == {0, 1}


def test_an_orbit_from_one_seed_is_not_an_obstruction() -> None:
    """Swap 0 and 1, keep 2: the initial seed (0) orbits, seed 2 is a section."""
    d = diagnose_cycle(_loop("if fb == 2 then 2 else 1 - fb", size=3).spec())
    assert d is not None and not d.settles and not d.obstructed
    assert d.section is not None and d.section["a"]["fa"] == 2
    assert "section exists" in d.verdict


def test_the_acyclic_check_carries_the_diagnosis_and_an_acyclic_one_has_none() -> None:
    report = _loop("1 - fb").check()
    (res,) = report.results("ACYCLIC")
    assert res.ok is False and res.details is not None
    assert res.details["diagnosis"]["obstructed"] is True
    assert len(res.details["coordination_plan"]) == 1
    text = report.render_text()
    assert "coordinate (fewest)" in text and "obstructed" in text
    a = Registry("a")
    a.bool("x")
    assert diagnose_cycle(Federation("f").registry(a).spec()) is None
