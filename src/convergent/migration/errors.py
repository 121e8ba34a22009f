"""The migration layer's error: a switch that cannot be classified at all.

::

    ConvergentError
    +-- MigrationError            the inputs cannot be classified: a machine that
                                  fails its own check, a map that leaves a domain or
                                  raises at a reachable state, a closure too big to
                                  decide (a bad map *file* is a located SpecError)

A switch that is not safe is not an error: it is a ``MigrationReport`` whose
verdict says ``unsafe``, with a witness.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConvergentError

__all__ = ["MigrationError"]


class MigrationError(ConvergentError):
    """The migration cannot be classified; the message says why and where.

    ``file``/``line`` locate the map entry at fault when it comes from a map
    file (``account_map.yaml:4: the map sends ...``); ``state`` is the v1 state
    where a map failed, when there is one."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 state: dict[str, Any] | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.state = state
        super().__init__(f"{file}:{line}: {message}" if file and line else
                         f"{file}: {message}" if file else message)
