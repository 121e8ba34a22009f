"""The neutral model of a migration: the two machines' specs, the state map,
the event map, and the runs the switch is judged on.

A *state map* sends a v1 state to a v2 state. It is either spec expressions
(one per v2 var, over v1's vars: what a map file holds) or a Python callable
taking a v1 ``StateView`` and returning ``{v2 var: value}``; in both forms a
v2 var left out is copied from the v1 var of the same name. The switch then
normalizes the result under v2 (``M(s) = nf2(map(s))``): v2 replicas only
ever hold normal forms, and a map may rely on v2's repairs (the report says
where it does).

An *event map* says what a v1 event becomes at a v2 replica: a v2 event
(same name by default, or renamed), or nothing (``None``: removed in v2, the
event is dropped when it reaches a v2 replica).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..spec.expr import CompiledExpr
from ..spec.model import Location, MachineSpec, StateView

__all__ = [
    "DELIVERIES",
    "Delivery",
    "Migration",
    "Outcome",
    "StateMap",
    "Step",
]

Delivery = Literal["exactly-once", "at-least-once", "causal"]
DELIVERIES: tuple[Delivery, ...] = ("exactly-once", "at-least-once", "causal")
"""The delivery models a switch is classified under (docs/migration.md)."""

Outcome = Literal["online", "barrier", "unsafe"]

MapFunction = Callable[[StateView], Mapping[Any, Any]]


@dataclass(frozen=True)
class StateMap:
    """v1 state -> v2 state: ``exprs`` (v2 var name -> expression over v1's
    vars) or ``fn``; ``where`` locates each expression in its map file."""

    exprs: Mapping[str, CompiledExpr] | None = None
    fn: MapFunction | None = field(default=None, compare=False)
    where: Mapping[str, Location] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        if (self.exprs is None) == (self.fn is None):
            raise ValueError("a StateMap has exactly one of exprs= or fn=")


@dataclass(frozen=True)
class Migration:
    """Everything a classification reads: both specs, the state map, and the
    event map resolved for every v1 event (``None``: removed, dropped at v2
    replicas)."""

    v1: MachineSpec
    v2: MachineSpec
    state_map: StateMap
    events: Mapping[str, str | None]
    source: str | None = None
    events_where: Mapping[str, Location] = field(default_factory=dict)

    @property
    def removed(self) -> list[str]:
        return [e for e, t in self.events.items() if t is None]

    @property
    def renamed(self) -> dict[str, str]:
        return {e: t for e, t in self.events.items() if t is not None and t != e}

    @property
    def added(self) -> list[str]:
        """v2 events no v1 event becomes."""
        targets = {t for t in self.events.values() if t is not None}
        return [e.name for e in self.v2.events if e.name not in targets]


@dataclass(frozen=True)
class Step:
    """One step of a replica's run: a v1 event (applied under v1 before the
    replica's switch, as its translation after it), the switch, or a v2 event
    (only after the switch)."""

    kind: Literal["v1", "switch", "v2"]
    event: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "event": self.event} if self.event else {"kind": self.kind}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Step:
        kind = d.get("kind")
        if kind not in ("v1", "switch", "v2"):
            raise ValueError(f"step kind={kind!r} (expected 'v1', 'switch' or 'v2')")
        return Step(kind, str(d.get("event", "")))
