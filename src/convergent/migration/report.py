"""The migration report: one value for the text, ``--json`` and the plan."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..engine.decode import describe_state
from .classify import Verdict
from .witness import Witness, render_run

__all__ = ["JSON_VERSION", "MapFacts", "MigrationReport"]

JSON_VERSION = 1
"""The version of ``to_dict``'s layout; it changes when a key changes meaning."""

_OUTCOME = {"online": "SAFE ONLINE", "barrier": "SAFE BEHIND A BARRIER", "unsafe": "UNSAFE"}


@dataclass(frozen=True)
class MapFacts:
    """What the map does on the reachable v1 states: how many there are, how
    many it sends to an invalid v2 state that the switch then repairs (with
    one example), and how many v2 states they land on."""

    reachable: int
    repaired: int
    images: int
    example: dict[str, Any] | None = None     # {"v1": state, "mapped": state, "normal": state}

    def to_dict(self) -> dict[str, Any]:
        return {"reachable_v1_states": self.reachable, "repaired": self.repaired,
                "distinct_images": self.images, "repaired_example": self.example}


@dataclass(frozen=True)
class MigrationReport:
    """The classification of a switch from ``v1`` to ``v2`` under each delivery
    model asked for. ``ok``: no model found it unsafe (exit 0)."""

    v1: str
    v2: str
    events: dict[str, str | None]
    added: list[str]
    map: MapFacts
    verdicts: tuple[Verdict, ...]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v.outcome != "unsafe" for v in self.verdicts)

    def verdict(self, delivery: str) -> Verdict:
        for v in self.verdicts:
            if v.delivery == delivery:
                return v
        raise KeyError(delivery)

    def to_dict(self) -> dict[str, Any]:
        return {"version": JSON_VERSION, "v1": self.v1, "v2": self.v2,
                "events": dict(self.events), "added": list(self.added),
                "map": self.map.to_dict(), "ok": self.ok,
                "verdicts": [v.to_dict() for v in self.verdicts],
                "seconds": dict(self.seconds)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def render_text(self) -> str:
        out = [f"{self.v1} -> {self.v2}: "
               + "; ".join(f"{_OUTCOME[v.outcome]} under {v.delivery}" for v in self.verdicts)]
        m = self.map
        line = (f"  map       {m.reachable:,} reachable v1 state(s) onto {m.images:,} v2 "
                f"state(s)")
        if m.repaired:
            line += f"; {m.repaired:,} needed v2's repairs"
        out.append(line)
        if m.example is not None:
            out.append(f"            e.g. {describe_state(m.example['v1'])} maps to "
                       f"{describe_state(m.example['mapped'])}, repaired to "
                       f"{describe_state(m.example['normal'])}")
        renamed = {k: v for k, v in self.events.items() if v is not None and v != k}
        dropped = [k for k, v in self.events.items() if v is None]
        parts = []
        if renamed:
            parts.append("renamed " + ", ".join(f"{k} -> {v}" for k, v in renamed.items()))
        if dropped:
            parts.append("dropped at v2 replicas " + ", ".join(dropped))
        if self.added:
            parts.append("new in v2 " + ", ".join(self.added))
        if parts:
            out.append("  events    " + "; ".join(parts))
        for v in self.verdicts:
            out.append(f"  {v.delivery:<13} {_OUTCOME[v.outcome]}")
            for mode in ("online", "barrier"):
                for c in v.conditions:
                    if c.mode != mode:
                        continue
                    mark = "ok  " if c.ok else "FAIL"
                    out.append(f"    {mode:<8}{mark} {c.code}: {c.text}")
                    if c.detail:
                        out.append(f"                  ({c.detail})")
            if v.online_witness is not None:
                out += _witness(v.online_witness, "why not online", self.events)
            if v.barrier_witness is not None and v.barrier_witness is not v.online_witness:
                out += _witness(v.barrier_witness, "why unsafe", self.events)
            elif v.barrier_witness is not None:
                out.append("              (the same runs show it unsafe: both switch behind "
                           "a barrier)")
        out.append(f"  time      {self.seconds.get('total', 0.0):.3f} s")
        return "\n".join(out)


def _witness(w: Witness, title: str, events: dict[str, str | None]) -> list[str]:
    ind = "              "
    lines = [f"    {title} ({w.condition}): {w.summary}",
             f"{ind}from        {describe_state(w.start)}",
             f"{ind}replica A   {render_run(w.run_a, events)}",
             f"{ind}replica B   {render_run(w.run_b, events)}",
             f"{ind}A ends in   {describe_state(w.result_a)}",
             f"{ind}B ends in   {describe_state(w.result_b)}"]
    diff = [f"{k}: {_v(w.result_a[k])} vs {_v(w.result_b[k])}"
            for k in w.result_a if w.result_a[k] != w.result_b[k]]
    lines.append(f"{ind}they differ in {', '.join(diff)}")
    return lines


def _v(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
