"""The FederatedMachine: its normal form is the federation's."""

from __future__ import annotations

import pytest

from convergent import Registry
from convergent.federation import Federation, FederationCheckError, FederationError

from . import fixtures
from .reference import Reference


def _chain(length: int) -> Federation:
    """A flag raised at the head travels down a chain of registries."""
    fed = Federation("chain")
    for i in range(length):
        r = Registry(f"r{i}")
        r.bool("flag")
        r.bool("local")
        r.event("toggle", apply={"local": "not local"})
        if i == 0:
            r.event("raise_flag", apply={"flag": "true"})
        fed.registry(r)
    for i in range(length - 1):
        fed.morphism(f"r{i}", f"r{i + 1}", shared=["flag"], map={"flag": "flag"})
    return fed


def test_a_flag_propagates_down_a_chain_in_one_normalization() -> None:
    m = _chain(10).build()
    s = m.apply(m.initial, "r0", "raise_flag")
    assert all(v["flag"] for v in m.decode(s).values())
    ref = Reference(_chain(4).spec())
    small = _chain(4).build()
    events = [("r0", "raise_flag"), ("r2", "toggle"), ("r3", "toggle")]
    assert small.decode(small.run(events)) == ref.run(events)


def test_the_target_own_write_to_a_shared_var_is_overwritten() -> None:
    m = fixtures.supply().build()
    s = m.apply(m.initial, "shop", "unlist")
    assert m.decode(s)["shop"]["listed"] is True        # the maker has not recalled


def test_machine_refuses_a_failing_federation_and_bad_names() -> None:
    with pytest.raises(FederationCheckError) as info:
        fixtures.cyclic(cycle=True).build()
    assert info.value.report.failed_codes() == ("ACYCLIC", "MONO")
    m = fixtures.supply().build()
    with pytest.raises(FederationError):
        m.apply(m.initial, "nobody", "sell")
    with pytest.raises(FederationError):
        m.apply(m.initial, "shop", "fly")


def test_normalize_repairs_an_inconsistent_state() -> None:
    m = fixtures.supply().build()
    s = m.encode({"maker": {"recalled": True}, "shop": {"listed": True, "sold": 2}})
    assert m.decode(m.normalize(s))["shop"] == {"listed": False, "sold": 2}
