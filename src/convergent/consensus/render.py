"""Renderings of a ``MachineSpec``: mermaid, graphviz dot and a markdown table.

Drawn from the same table the core runs on, so a picture never disagrees with
the behaviour.
"""

from __future__ import annotations

from .machine import MachineSpec, Phase

__all__ = ["to_dot", "to_mermaid", "to_table"]


def _timeout_label(spec: MachineSpec, phase: Phase) -> str:
    cfg = spec.states.get(phase)
    if cfg is None or cfg.timeout is None:
        return ""
    scale = " x backoff^view" if cfg.scales_with_view else ""
    return f"{cfg.timeout:g} s{scale} -> {cfg.on_timeout}"


def to_mermaid(spec: MachineSpec, *, include_internal: bool = False) -> str:
    """A ``stateDiagram-v2`` block; internal (self, no re-entry) rows are left out by default."""
    lines = ["stateDiagram-v2", f"    [*] --> {spec.initial.value}"]
    for tr in spec.transitions:
        if tr.internal and not include_internal:
            continue
        lines.append(f"    {tr.source.value} --> {tr.target.value}: {tr.event.value}")
    for phase in Phase:
        label = _timeout_label(spec, phase)
        if label:
            lines.append(f"    note right of {phase.value}: timeout {label}")
    return "\n".join(lines) + "\n"


def to_dot(spec: MachineSpec, *, include_internal: bool = False) -> str:
    """A graphviz ``digraph``; timeouts appear in the node labels."""
    lines = ["digraph consensus {", "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    for phase in Phase:
        label = phase.value
        extra = _timeout_label(spec, phase)
        if extra:
            label += f"\\n({extra})"
        shape = ", peripheries=2" if phase is spec.initial else ""
        lines.append(f'    "{phase.value}" [label="{label}"{shape}];')
    for tr in spec.transitions:
        if tr.internal and not include_internal:
            continue
        style = ", style=dashed" if tr.internal else ""
        lines.append(
            f'    "{tr.source.value}" -> "{tr.target.value}" [label="{tr.event.value}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_table(spec: MachineSpec) -> str:
    """A markdown table of every row, then one of every timeout."""
    out = ["| from | event | to | kind |", "| --- | --- | --- | --- |"]
    for tr in spec.transitions:
        kind = "internal" if tr.internal else ""
        if tr.event in spec.view_change_on:
            kind = "view change"
        elif tr.event in spec.next_height_on:
            kind = "next height"
        out.append(f"| {tr.source.value} | {tr.event.value} | {tr.target.value} | {kind} |")
    out += ["", "| phase | timeout (s) | fires | grows with view |", "| --- | --- | --- | --- |"]
    for phase in Phase:
        cfg = spec.states.get(phase)
        if cfg is None or cfg.timeout is None:
            continue
        grows = "yes" if cfg.scales_with_view else "no"
        out.append(f"| {phase.value} | {cfg.timeout:g} | {cfg.on_timeout} | {grows} |")
    return "\n".join(out) + "\n"
