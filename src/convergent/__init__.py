"""convergent: state machines that stay correct when distributed.

Declare an entity as a finite machine (vars, invariants with repairs, events
with guards), prove at build time that every delivery order of concurrent
events converges to the same valid state, then run it as table lookups.
"""

from .engine import Report
from .engine.check import check
from .errors import (
    BuildError,
    ConvergenceError,
    ConvergentError,
    MachineUsageError,
    Problem,
    SpecError,
)
from .machine import Machine, State
from .spec.model import MachineSpec, StateView, Var
from .spec.registry import Registry

__version__ = "0.1.0"


def load_spec(path: str) -> MachineSpec:
    """Load a YAML or JSON spec file (see docs/spec-format.md)."""
    from .spec.loader import load_spec as _load
    return _load(path)


__all__ = [
    "BuildError",
    "ConvergenceError",
    "ConvergentError",
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
