"""Errors of the diagram layer (both are ``ConvergentError``: exit 2 in the CLI)."""

from __future__ import annotations

from ..errors import ConvergentError

__all__ = ["DiagramError", "GraphvizError"]


class DiagramError(ConvergentError):
    """The diagram asked for cannot be drawn (e.g. a state graph past its cap)."""


class GraphvizError(DiagramError):
    """graphviz's ``dot`` is missing, failed, or took too long."""
