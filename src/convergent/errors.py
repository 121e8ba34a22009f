"""Every exception convergent raises on purpose.

::

    ConvergentError
    +-- SpecError (ValueError)         a spec or a Registry declaration is malformed
    +-- BuildError                     the machine cannot be built: overflow under
    |                                  ``overflow: error``, a declared footprint that lies,
    |                                  a user function that raises where it is evaluated
    +-- ConvergenceError               ``build()`` on a machine whose proof failed
    +-- MachineUsageError (ValueError) a built machine was misused: unknown event,
    |                                  value outside a domain, a state of another machine
    +-- ExportError                    (convergent.export) a machine cannot be exported
    +-- MachineFileError (ValueError)  (convergent.export) a machine file is truncated,
    |                                  edited, of another version, or foreign
    +-- SchemaError (SpecError)        (convergent.relational) a bad relational schema
    +-- ConsensusError                 (convergent.consensus)
    +-- StoreError, TransportError     (convergent.runtime)

A failed proof is not an exception: ``Registry.check()`` returns a ``Report``
whose verdict says ``fail``. Only ``build()`` turns it into ``ConvergenceError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .engine.report import Report

__all__ = [
    "BuildError",
    "ConvergenceError",
    "ConvergentError",
    "MachineUsageError",
    "Problem",
    "SpecError",
]


class ConvergentError(Exception):
    """Root of every error raised by convergent on purpose."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a spec: ``file:line:column: message``."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.file is None and self.line is None:
            return self.message  # declared in Python: the traceback says where
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class SpecError(ConvergentError, ValueError):
    """A spec (YAML/JSON or a Registry declaration) is malformed.

    Carries every problem found, each with its file, line and column, so a user
    fixes them all in one pass instead of one per run.
    """

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def file(self) -> str | None:
        return self.problems[0].file if self.problems else None

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None


class BuildError(ConvergentError):
    """The machine cannot be tabulated: the message names the function and the state."""

    def __init__(self, message: str, *, name: str | None = None,
                 state: dict[str, Any] | None = None, value: Any = None,
                 file: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.name = name
        self.state = state
        self.value = value
        self.message = message
        self.file, self.line, self.column = file, line, column
        super().__init__(message)

    def at(self, file: str | None, line: int | None, column: int | None) -> BuildError:
        """Locate the error at the rule it is about (a spec file's line), once:
        the first, innermost location wins."""
        if self.file is None and file is not None:
            self.file, self.line, self.column = file, line, column
            self.args = (str(self),)
        return self

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        return str(Problem(self.message, self.file, self.line, self.column))


class ConvergenceError(ConvergentError):
    """``build()`` was asked for a machine whose convergence proof failed.

    The full report, with its counterexample, is on ``.report``.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(report.summary())


class MachineUsageError(ConvergentError, ValueError):
    """A built machine was used wrongly (unknown event or var, foreign state...)."""
