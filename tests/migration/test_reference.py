"""The classifier against a brute-force reference on random small pairs:
whatever it calls safe, random clusters of mixed-version replicas (random
issuing, delivery orders, duplicates, switch moments) never diverge; whatever
it calls not safe comes with two runs the reference replays to different
states. And the random pairs reach all three classes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from convergent.migration import DELIVERIES, classify_migration
from convergent.migration.model import Migration

from .helpers import check_report
from .machines import independent_sets, random_migrations

_SETTINGS = settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(random_migrations())
def test_classifier_agrees_with_the_reference(mig: Migration) -> None:
    report = classify_migration(mig)
    i1, i2 = independent_sets(mig)
    check_report(mig, report, i1, i2, sims=4, steps=24)


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_migrations())
def test_classifier_agrees_with_the_reference_at_length(mig: Migration) -> None:
    report = classify_migration(mig)
    i1, i2 = independent_sets(mig)
    check_report(mig, report, i1, i2, sims=12, steps=40)


@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize("outcome", ["online", "barrier", "unsafe"])
def test_the_generator_reaches_every_class(delivery: str, outcome: str) -> None:
    def lands(mig: Migration) -> bool:
        return classify_migration(mig, (delivery,)).verdicts[0].outcome == outcome  # type: ignore[arg-type]

    found = find(random_migrations(), lands,
                 settings=settings(max_examples=400, deadline=None, database=None,
                                   phases=[Phase.generate],
                                   suppress_health_check=list(HealthCheck)))
    assert lands(found)


def test_the_agreement_test_sees_every_class() -> None:
    """The examples the agreement test draws are not all of one class."""
    seen: set[tuple[str, str]] = set()

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(random_migrations())
    def collect(mig: Migration) -> None:
        for v in classify_migration(mig).verdicts:
            seen.add((v.delivery, v.outcome))

    collect()
    assert {o for _, o in seen} == {"online", "barrier", "unsafe"}, seen


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_migrations())
def test_the_switch_table_matches_one_state_evaluation(mig: Migration) -> None:
    """M over the reachable v1 states, as the vectorized tables compute it,
    equals the reference's state-by-state map then v2 normalization; and the
    same map written as a Python function classifies identically."""
    from convergent.migration.model import StateMap
    from convergent.migration.tables import build_tables

    from .reference import migrate

    t = build_tables(mig)
    for k, r in enumerate(t.reach1.tolist()):
        assert t.v2.state(int(t.image[k])) == migrate(mig, t.v1.state(r))
    exprs = mig.state_map.exprs
    assert exprs is not None
    names = [v.name for v in mig.v1.vars]

    def as_function(view: object) -> dict[str, object]:
        values = {n: view[n] for n in names}  # type: ignore[index]
        return {name: e.eval(values) for name, e in exprs.items()}

    by_fn = Migration(mig.v1, mig.v2, StateMap(fn=as_function), mig.events)
    assert ([v.to_dict() for v in classify_migration(by_fn).verdicts]
            == [v.to_dict() for v in classify_migration(mig).verdicts])
