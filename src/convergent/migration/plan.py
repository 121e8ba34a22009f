"""``plan_switch``: the steps that carry a set of replicas from v1 to v2, in
the class the report found (online: one by one; barrier: stop, drain to one
version vector, switch, resume). Unsafe has no plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .model import Delivery, Outcome
from .report import MigrationReport

__all__ = ["Plan", "plan_switch"]


@dataclass(frozen=True)
class Plan:
    """Numbered steps for ``replicas`` (empty when the switch is unsafe)."""

    v1: str
    v2: str
    delivery: Delivery
    outcome: Outcome
    replicas: tuple[str, ...]
    steps: tuple[str, ...]
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "unsafe"

    def to_dict(self) -> dict[str, Any]:
        return {"v1": self.v1, "v2": self.v2, "delivery": self.delivery,
                "outcome": self.outcome, "replicas": list(self.replicas),
                "steps": list(self.steps), "reason": self.reason}

    def render_text(self) -> str:
        head = {"online": "switch online, one replica at a time",
                "barrier": "switch behind a barrier",
                "unsafe": "do not switch: unsafe"}[self.outcome]
        out = [f"{self.v1} -> {self.v2} under {self.delivery} delivery: {head}"]
        if self.reason:
            out.append(f"  {self.reason}")
        out += [f"  {i}. {s}" for i, s in enumerate(self.steps, 1)]
        return "\n".join(out)


def _translations(report: MigrationReport) -> str:
    renamed = [f"{k} as {v}" for k, v in report.events.items() if v is not None and v != k]
    dropped = [k for k, v in report.events.items() if v is None]
    parts = []
    if renamed:
        parts.append("renamed: " + ", ".join(renamed))
    if dropped:
        parts.append("dropped: " + ", ".join(dropped))
    return f" ({'; '.join(parts)})" if parts else ""


def plan_switch(report: MigrationReport, replicas: Sequence[str],
                delivery: Delivery = "causal") -> Plan:
    """The steps for ``replicas`` under ``delivery`` (which the report must
    have classified)."""
    if not replicas:
        raise ValueError("a plan needs at least one replica")
    if len(set(replicas)) != len(replicas):
        raise ValueError(f"replica names repeat: {', '.join(replicas)}")
    v = report.verdict(delivery)
    names = tuple(replicas)
    listed = ", ".join(names)
    dedup = ("" if delivery == "at-least-once" else
             " Keep deduplication on (events are applied exactly once)."
             if delivery == "exactly-once" else
             " Keep causal delivery with deduplication on.")
    if v.outcome == "unsafe":
        w = v.barrier_witness
        why = w.summary if w is not None else "a barrier condition fails"
        return Plan(report.v1, report.v2, delivery, "unsafe", names, (),
                    f"even behind a barrier two replicas diverge ({why}); fix the map or v2 "
                    "and check again")
    if v.outcome == "online":
        steps = [f"Deploy v2 ({report.v2}) with the state map and the event map next to v1 "
                 f"on every replica ({listed}), not yet active.{dedup}"]
        for r in names:
            steps.append(f"Switch {r}: migrate its current state with the map and normalize "
                         "it under v2; from now on it emits v2 events. v1 events still "
                         f"reaching {r} are applied as their v2 translation"
                         f"{_translations(report)}.")
        steps.append("Meanwhile a replica not yet switched does not accept v2 events: it "
                     "receives them again after its switch (anti-entropy resends what its "
                     "version vector does not cover).")
        steps.append(f"When every replica has switched and every v1 event has reached all of "
                     f"{listed} (each version vector covers each origin's last v1 event), "
                     "retire v1.")
        return Plan(report.v1, report.v2, delivery, "online", names, tuple(steps))
    w = v.online_witness
    why = f"not online: {w.summary}" if w is not None else ""
    steps = [
        f"Deploy v2 ({report.v2}) with the state map next to v1 on every replica ({listed}), "
        "not yet active.",
        f"Stop: every replica ({listed}) stops emitting v1 events; each notes the last "
        "sequence number it emitted.",
        "Drain: exchange version vectors until every replica has applied every v1 event and "
        f"all of {listed} report the same version vector: that is the cut.",
        "Switch: every replica migrates its state at the cut with the map and normalizes it "
        "under v2; compare the migrated states' digests: they must be equal.",
        "Resume: replicas emit v2 events. A v1 event arriving after the switch is covered "
        f"by the cut (already applied) and is dropped.{dedup}",
    ]
    return Plan(report.v1, report.v2, delivery, "barrier", names, tuple(steps), why)
