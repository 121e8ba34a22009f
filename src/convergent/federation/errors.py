"""The one error the federation layer raises on purpose.

A malformed federation (an unknown registry or var, a map that returns a value
outside a domain, two resolvers for one var) is bad input: ``FederationError``,
a ``SpecError`` (so a ``ValueError``), which the CLI turns into exit 2. A
federation that is well formed but fails a check is not an exception: it is a
``FederationReport`` whose verdict is ``fail``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConvergentError, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from .report import FederationReport

__all__ = ["FederationCheckError", "FederationError"]


class FederationError(SpecError):
    """A federation is declared wrongly; the message names the part and the value."""


class FederationCheckError(ConvergentError):
    """``build()`` on a federation that failed a check; ``.report`` says which."""

    def __init__(self, report: FederationReport) -> None:
        self.report = report
        super().__init__(report.summary())
