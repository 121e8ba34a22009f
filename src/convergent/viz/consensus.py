"""The consensus machine's diagram: ``convergent.consensus.render`` already
draws it (timeouts included); this only picks a preset and sends the DOT text
through graphviz for svg/png."""

from __future__ import annotations

import argparse

from .graphviz import IMAGE_FORMATS, render_dot

__all__ = ["PRESETS", "consensus_diagram"]

PRESETS = ("default", "sim", "demo")


def consensus_diagram(preset: str, fmt: str, *, include_internal: bool = False) -> bytes:
    from ..consensus.cli import _spec
    from ..consensus.render import to_dot, to_mermaid
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} (expected one of {', '.join(PRESETS)})")
    # the consensus CLI's own preset resolution, so both commands draw the same machine
    spec = _spec(argparse.Namespace(machine=preset, spec=None, timeout=None, scale=None))
    if fmt == "mermaid":
        return to_mermaid(spec, include_internal=include_internal).encode("utf-8")
    dot = to_dot(spec, include_internal=include_internal)
    if fmt == "dot":
        return dot.encode("utf-8")
    if fmt in IMAGE_FORMATS:
        return render_dot(dot, fmt)
    raise ValueError(f"format={fmt!r}")
