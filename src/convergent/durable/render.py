"""Mermaid ``stateDiagram-v2`` text for a chart (paste into any Markdown
viewer that renders mermaid). Parallel regions are separated by ``--``;
history and sensitivity are shown as notes, timers as ``after <delay>``."""

from __future__ import annotations

from datetime import timedelta

from .chart import ROOT, Chart, Transition

__all__ = ["to_mermaid"]


def _delay(d: timedelta) -> str:
    s = d.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size and s % size == 0:
            return f"{int(s // size)}{unit}"
    return f"{s:g}s"


def _label(t: Transition) -> str:
    label = f"after {_delay(t.after)}" if t.after is not None else t.event
    if t.guard is not None:
        label += f" [{t.guard.text}]"
    if t.roles:
        label += " {" + ", ".join(sorted(t.roles)) + "}"
    return label.replace(":", "#58;")


def to_mermaid(chart: Chart) -> str:
    """The chart as mermaid text: states nested as declared, every transition
    with its event, guard and roles."""
    lines = ["stateDiagram-v2"]

    def body(name: str, indent: str) -> None:
        d = chart.states[name]
        if d.kind == "compound" and d.initial is not None:
            lines.append(f"{indent}[*] --> {d.initial}")
        for i, child in enumerate(d.children):
            if d.kind == "parallel" and i > 0:
                lines.append(f"{indent}--")
            c = chart.states[child]
            if c.kind in ("compound", "parallel"):
                lines.append(f"{indent}state {child} {{")
                body(child, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                lines.append(f"{indent}{child}")
            if c.kind == "final":
                lines.append(f"{indent}{child} --> [*]")
            notes = []
            if c.history != "none":
                notes.append(f"history: {c.history}")
            if c.sensitive or c.entry_roles:
                notes.append("sensitive" + (f" ({', '.join(sorted(c.entry_roles))})"
                                            if c.entry_roles else ""))
            if notes:
                lines.append(f"{indent}note right of {child} : {'; '.join(notes)}")

    body(ROOT, "  ")
    for t in chart.transitions:
        target = t.target if t.target is not None else t.source
        lines.append(f"  {t.source} --> {target} : {_label(t)}")
    return "\n".join(lines) + "\n"
