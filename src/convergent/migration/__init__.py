"""Migration safety: is a live switch from machine v1 to machine v2, with a
state map and an event map, safe online (replicas switch one by one while
events of both versions are in flight), safe only behind a barrier (every
replica stops, drains and switches at one cut), or unsafe (two replicas that
applied the same events end in different states; the report replays them)?
Each answer is given per delivery model: exactly-once, at-least-once, causal.
See docs/migration.md."""

from .check import check_migration, classify_migration
from .classify import Condition, Verdict
from .errors import MigrationError
from .model import DELIVERIES, Delivery, Migration, Outcome, StateMap, Step
from .plan import Plan, plan_switch
from .report import MapFacts, MigrationReport
from .witness import Witness

__all__ = [
    "DELIVERIES",
    "Condition",
    "Delivery",
    "MapFacts",
    "Migration",
    "MigrationError",
    "MigrationReport",
    "Outcome",
    "Plan",
    "StateMap",
    "Step",
    "Verdict",
    "Witness",
    "check_migration",
    "classify_migration",
    "plan_switch",
]
