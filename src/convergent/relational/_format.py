"""The reference's string formats for active states, clocks and relations.

``(Foo:1 Bar:3)``             active states with their ticks (``Machine.string``)
``(Foo:1) [Bar:2 Baz:0]``     all states, inactive in brackets (``string_all``)
``inspect``                   one block per state: activity, tick, properties, relations
"""

from __future__ import annotations

from collections.abc import Sequence

from .schema import Schema

__all__ = ["format_active", "format_all", "format_inspect"]


def format_active(names: Sequence[str], clock: Sequence[int]) -> str:
    return "(" + " ".join(f"{n}:{t}" for n, t in zip(names, clock, strict=True) if t & 1) + ")"


def format_all(names: Sequence[str], clock: Sequence[int]) -> str:
    inactive = " ".join(f"{n}:{t}" for n, t in zip(names, clock, strict=True) if not t & 1)
    return format_active(names, clock) + " [" + inactive + "]"


def format_inspect(schema: Schema, names: Sequence[str], ticks: Sequence[int]) -> str:
    lines: list[str] = []
    for name, tick in zip(names, ticks, strict=True):
        state = schema[name]
        lines.append(f"{tick & 1} {name}")
        lines.append(f"    |Tick     {tick}")
        if state.auto:
            lines.append("    |Auto     true")
        if state.multi:
            lines.append("    |Multi    true")
        for label, rel in (("Add", state.add), ("Require", state.require),
                           ("Remove", state.remove), ("After", state.after)):
            if rel:
                lines.append(f"    |{label:<9}" + " ".join(rel))
    return "\n".join(lines) + ("\n" if lines else "")
