"""Symbolic verification with z3: machines whose int ranges are too wide to
enumerate (balances up to 2^31 and beyond) checked for WFC, CC1 and CC2 by
satisfiability questions over one symbolic state (see ``check.py`` and
docs/symbolic.md). The result is the engine's ``Report`` with
``method={"kind": "symbolic", ...}``."""

from .check import DEFAULT_MAX_DEPTH, SymbolicUndecided, check_symbolic
from .encode import SymbolicUnsupported

__all__ = ["DEFAULT_MAX_DEPTH", "SymbolicUndecided", "SymbolicUnsupported", "check_symbolic"]
