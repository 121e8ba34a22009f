"""``check_migration``: from a ``Migration`` to a ``MigrationReport``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .build import make_migration
from .classify import classify
from .model import DELIVERIES, Delivery, Migration, StateMap
from .report import MapFacts, MigrationReport
from .tables import Tables, build_tables

__all__ = ["check_migration", "classify_migration"]


def classify_migration(mig: Migration,
                       deliveries: tuple[Delivery, ...] = DELIVERIES) -> MigrationReport:
    """Classify the switch ``mig`` under each delivery model.

    Raises:
        MigrationError: a machine fails its own check, the map fails or leaves
            a v2 domain at a reachable v1 state, or a closure is too big.
    """
    t0 = time.perf_counter()
    t = build_tables(mig)
    verdicts = classify(t, deliveries)
    seconds = dict(t.seconds)
    seconds["total"] = round(time.perf_counter() - t0, 6)
    return MigrationReport(mig.v1.name, mig.v2.name, dict(mig.events), mig.added,
                           map_facts(t), tuple(verdicts), seconds)


def map_facts(t: Tables) -> MapFacts:
    repaired = ~t.valid2[t.raw]
    example = None
    if repaired.any():
        k = int(np.flatnonzero(repaired)[0])
        example = {"v1": t.v1.state(int(t.reach1[k])), "mapped": t.v2.state(int(t.raw[k])),
                   "normal": t.v2.state(int(t.image[k]))}
    return MapFacts(len(t.reach1), int(repaired.sum()), len(np.unique(t.image)), example)


def check_migration(v1: Any, v2: Any,
                    state_map: StateMap | Mapping[str, Any] | Callable[..., Any] | None = None,
                    *, events: Mapping[str, str | None] | None = None,
                    delivery: Delivery | tuple[Delivery, ...] | str = "all"
                    ) -> MigrationReport:
    """Classify a live switch from ``v1`` to ``v2`` (MachineSpecs, Registries or
    built Machines): safe online, safe behind a barrier, or unsafe with a
    replayed witness, under each delivery model (``"all"``: the three).

    ``state_map``: ``{v2 var: expression over v1's vars}``, a callable taking a
    v1 ``StateView`` and returning ``{v2 var: value}``, or None; a v2 var left
    out is copied from the v1 var of its name. ``events``: ``{v1 event: v2
    event, or None if removed}``; a v1 event left out keeps its name (or is
    removed when v2 has no event of that name).

    >>> from convergent import Registry
    >>> r1 = Registry("counter"); n = r1.int("n", 0, 3)
    >>> _ = r1.event("inc", apply={"n": "n + 1"})
    >>> r2 = Registry("counter"); m = r2.int("n", 0, 3); big = r2.bool("big")
    >>> _ = r2.event("inc", apply={"n": "n + 1", "big": "n + 1 >= 2"})
    >>> check_migration(r1, r2, {"big": "n >= 2"}, delivery="causal").verdicts[0].outcome
    'online'
    """
    mig = make_migration(v1, v2, state_map, events)
    return classify_migration(mig, deliveries_of(delivery))


def deliveries_of(delivery: Delivery | tuple[Delivery, ...] | str) -> tuple[Delivery, ...]:
    if delivery == "all":
        return DELIVERIES
    if isinstance(delivery, str):
        if delivery not in DELIVERIES:
            raise ValueError(f"delivery={delivery!r} (expected 'all' or one of "
                             f"{', '.join(DELIVERIES)})")
        return (delivery,)
    for d in delivery:
        if d not in DELIVERIES:
            raise ValueError(f"delivery={d!r} (expected one of {', '.join(DELIVERIES)})")
    return tuple(delivery)
