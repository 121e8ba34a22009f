"""Ids to readable states, for counterexamples and messages."""

from __future__ import annotations

from typing import Any

from .compile import CompiledMachine
from .space import Space

__all__ = ["describe_state", "full_to_state", "local_to_state"]


def local_to_state(cm: CompiledMachine, space: Space, local: int) -> dict[str, Any]:
    """A local id of ``space`` as a full state, every var outside the space at
    its first value (the smallest full id with that projection)."""
    out: dict[str, Any] = {}
    for i, var in enumerate(cm.m.vars):
        d = (local // space.stride[i]) % var.size if i in space.stride else 0
        out[var.name] = _py(var.values[int(d)])
    return out


def full_to_state(cm: CompiledMachine, full_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var in cm.m.vars:
        full_id, d = divmod(int(full_id), var.size)
        out[var.name] = _py(var.values[d])
    return out


def _py(v: Any) -> Any:
    return bool(v) if hasattr(v, "dtype") and v.dtype == bool else v


def describe_state(state: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in state.items()) + "}"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
