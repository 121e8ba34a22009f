"""convergent: state machines that stay correct when distributed.

Declare an entity as a finite machine (vars, invariants with repairs, events
with guards), prove at build time that every delivery order of concurrent
events converges to the same valid state, then run it as table lookups.

Names are imported lazily, so ``import convergent.lite`` (the dependency-free
runtime) works where numpy is not installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BuildError,
    ConvergenceError,
    ConvergentError,
    MachineUsageError,
    Problem,
    SpecError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .engine.check import check
    from .engine.report import Report
    from .machine import Machine, State
    from .spec.model import MachineSpec, StateView, Var
    from .spec.registry import Registry

_LAZY = {
    "Machine": ".machine",
    "State": ".machine",
    "ComposedMachine": ".composed",
    "ComposedState": ".composed",
    "Collection": ".collection",
    "CollectionMachine": ".collection",
    "Family": ".spec.model",
    "MachineSpec": ".spec.model",
    "StateView": ".spec.model",
    "Var": ".spec.model",
    "Registry": ".spec.registry",
    "Report": ".engine.report",
    "check": ".engine.check",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'convergent' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_spec(path: str) -> MachineSpec:
    """Load a YAML or JSON spec file (see docs/spec.md)."""
    from .spec.loader import load_spec as _load
    return _load(path)


__all__ = [
    "BuildError",
    "Collection",
    "CollectionMachine",
    "ComposedMachine",
    "ComposedState",
    "ConvergenceError",
    "ConvergentError",
    "Family",
    "Machine",
    "MachineSpec",
    "MachineUsageError",
    "Problem",
    "Registry",
    "Report",
    "SpecError",
    "State",
    "StateView",
    "Var",
    "__version__",
    "check",
    "load_spec",
]
