"""Errors of ``convergent.export``.

::

    ConvergentError
    +-- ExportError                       a machine cannot be exported: it failed
    |                                     verification (without allow_unverified), WFC
    |                                     fails so it has no tables, unknown format
    +-- MachineFileError (ValueError)     a machine file cannot be loaded: not a machine
                                          file, wrong format version, truncated, edited
                                          (content hash mismatch), unverified
"""

from __future__ import annotations

from ..errors import ConvergentError

__all__ = ["ExportError", "MachineFileError"]


class ExportError(ConvergentError):
    """A machine cannot be written: the message says why and what to pass."""


class MachineFileError(ConvergentError, ValueError):
    """A machine file was refused by ``Machine.load``.

    ``reason`` says why: ``"format"`` (not a machine file, or malformed),
    ``"version"`` (a format version this convergent does not read),
    ``"truncated"``, ``"hash"`` (the content does not match the file's content
    hash: edited or corrupt) or ``"unverified"`` (the machine failed
    verification; load it with ``allow_unverified=True``). ``path`` is the file.
    """

    def __init__(self, message: str, *, reason: str = "format", path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
