"""The verifier: exact tables, WFC, reachability, CC1, CC2 and the Report.

Internal by design (like hypothesis' ``internal/conjecture``): the public
entry points are ``convergent.check`` / ``Registry.check`` / ``Registry.build``.
"""

from .check import Analysis, analyze, check
from .report import (
    CC1Counterexample,
    CC1Result,
    CC2Counterexample,
    CC2Result,
    Findings,
    Report,
    StateCounts,
    WFCCounterexample,
    WFCResult,
)

__all__ = [
    "Analysis",
    "CC1Counterexample",
    "CC1Result",
    "CC2Counterexample",
    "CC2Result",
    "Findings",
    "Report",
    "StateCounts",
    "WFCCounterexample",
    "WFCResult",
    "analyze",
    "check",
]
