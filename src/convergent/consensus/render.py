"""Renderings of a ``MachineSpec``: mermaid, graphviz dot and a markdown table.

Drawn from the same table the core runs on, so a picture never disagrees with
the behaviour.
"""

from __future__ import annotations

from .machine import MachineSpec, Phase, Transition

__all__ = ["edge_label", "to_dot", "to_mermaid", "to_table"]


def _timeout_label(spec: MachineSpec, phase: Phase) -> str:
    cfg = spec.states.get(phase)
    if cfg is None or cfg.timeout is None:
        return ""
    scale = " x backoff^view" if cfg.scales_with_view else ""
    return f"{cfg.timeout:g} s{scale} -> {cfg.on_timeout}"


def _seconds(spec: MachineSpec, phase: Phase) -> str:
    """``1 s``, or ``1 s x 2^view (max x16)`` for a timeout that grows with the view."""
    cfg = spec.states.get(phase)
    if cfg is None or cfg.timeout is None:
        return ""
    if not cfg.scales_with_view:
        return f"{cfg.timeout:g} s"
    cap = spec.view_backoff ** spec.max_backoff_exponent
    return f"{cfg.timeout:g} s x {spec.view_backoff:g}^view (max x{cap:g})"


def edge_label(spec: MachineSpec, tr: Transition) -> str:
    """The event, then what the row means beyond it: the timeout that fires it (with its
    duration) and whether it moves to the next view or height."""
    label = tr.event.value
    notes = []
    if spec.timeout_event(tr.source) is tr.event and spec.timeout(tr.source) is not None:
        notes.append(_seconds(spec, tr.source))
    if tr.event in spec.view_change_on:
        notes.append("view + 1")
    if tr.event in spec.next_height_on:
        notes.append("height + 1")
    return f"{label} ({', '.join(notes)})" if notes else label


def to_mermaid(spec: MachineSpec, *, include_internal: bool = False) -> str:
    """A ``stateDiagram-v2`` block; internal (self, no re-entry) rows are left out by default.

    A timeout row's label carries its duration, e.g. ``voting_timeout (10 s x 2^view (max
    x16), view + 1)``; each phase's timeout is also a note beside it.
    """
    lines = ["stateDiagram-v2", f"    [*] --> {spec.initial.value}"]
    for tr in spec.transitions:
        if tr.internal and not include_internal:
            continue
        lines.append(f"    {tr.source.value} --> {tr.target.value}: {edge_label(spec, tr)}")
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
        lines.append(f'    "{tr.source.value}" -> "{tr.target.value}" '
                     f'[label="{edge_label(spec, tr)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_table(spec: MachineSpec) -> str:
    """A markdown table of every row, then one of every timeout."""
    out = ["| from | event | to | kind | after |", "| --- | --- | --- | --- | --- |"]
    for tr in spec.transitions:
        kind = "internal" if tr.internal else ""
        if tr.event in spec.view_change_on:
            kind = "view change"
        elif tr.event in spec.next_height_on:
            kind = "next height"
        after = ""
        if spec.timeout_event(tr.source) is tr.event:
            after = _seconds(spec, tr.source)
        out.append(f"| {tr.source.value} | {tr.event.value} | {tr.target.value} | {kind} "
                   f"| {after} |")
    out += ["", "| phase | timeout (s) | fires | grows with view |", "| --- | --- | --- | --- |"]
    for phase in Phase:
        cfg = spec.states.get(phase)
        if cfg is None or cfg.timeout is None:
            continue
        grows = "yes" if cfg.scales_with_view else "no"
        out.append(f"| {phase.value} | {cfg.timeout:g} | {cfg.on_timeout} | {grows} |")
    return "\n".join(out) + "\n"
