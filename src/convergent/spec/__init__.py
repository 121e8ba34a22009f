"""The machine spec: the neutral model, the YAML/JSON loader and the
expression language that both the loader and the ``Registry`` compile with."""

from .expr import compile_assignment, compile_expr, compile_predicate
from .loader import load_spec, loads_spec
from .model import (
    Assignment,
    EvalError,
    Event,
    Invariant,
    Location,
    MachineSpec,
    Predicate,
    StateView,
    Var,
)
from .registry import Registry

__all__ = [
    "Assignment",
    "EvalError",
    "Event",
    "Invariant",
    "Location",
    "MachineSpec",
    "Predicate",
    "Registry",
    "StateView",
    "Var",
    "compile_assignment",
    "compile_expr",
    "compile_predicate",
    "load_spec",
    "loads_spec",
]
