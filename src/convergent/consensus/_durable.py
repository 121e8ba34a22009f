"""Crash-safe file replacement for the signing guard and the apply log: the
project's one implementation (``convergent._files``), with the parent
directory created on first use and the file private to its owner."""

from __future__ import annotations

from pathlib import Path

from .._files import atomic_write as _atomic_write
from .._files import fsync_dir

__all__ = ["atomic_write", "fsync_dir"]


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace ``path`` by ``data`` atomically (and durably unless ``fsync=False``)."""
    _atomic_write(path, data, fsync=fsync, mkdirs=True, mode=0o600)
