"""Run graphviz's ``dot`` to turn DOT text into SVG or PNG.

``dot`` comes from the operating system (Debian: ``apt-get install
graphviz``); when it is missing the error says so and names the text formats
that need nothing. It runs with a time limit and without a shell, reading
the graph on stdin.
"""

from __future__ import annotations

import shutil
import subprocess

from .errors import GraphvizError

__all__ = ["GraphvizError", "graphviz_available", "render_dot"]

#: seconds ``dot`` may take before it is stopped
TIMEOUT = 60.0
IMAGE_FORMATS = ("svg", "png")


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render_dot(dot_text: str, fmt: str, *, timeout: float = TIMEOUT) -> bytes:
    """``dot -T<fmt>`` on ``dot_text``: the SVG or PNG bytes."""
    if fmt not in IMAGE_FORMATS:
        raise GraphvizError(f"format={fmt!r} (expected one of {', '.join(IMAGE_FORMATS)})")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(
            f"--format {fmt} needs graphviz's `dot`, which is not installed "
            "(Debian: apt-get install graphviz); --format dot or mermaid need nothing")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"graphviz's dot took longer than {timeout:g} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()[:2000]
        raise GraphvizError(f"graphviz's dot failed (exit {done.returncode}): {err}")
    return done.stdout
