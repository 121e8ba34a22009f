"""Crash-safe file replacement, shared by every shell that writes a file a
reader may open at any moment (exports, certificates, the consensus guard
and apply log, a replica's status file).

The new content goes to a temporary file in the target's directory, is
flushed (and fsynced, unless told otherwise), then renamed over the target;
the directory is fsynced after the rename. A reader sees the old file or the
new one, never half of one; after a crash the same holds on disk. A failure
at any step removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "replacing"]


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], *, fsync: bool = True, mkdirs: bool = False,
              mode: int = 0o666) -> Iterator[str]:
    """The name of a temporary file to write in full; when the block ends
    without an exception it replaces ``path`` (for writers that open files
    by name). ``mkdirs``: create missing parent directories first (else a
    missing directory is an error, as for ``open``). ``mode``: the new
    file's permissions before the umask (0o600: private to the owner)."""
    target = Path(path)
    directory = target.parent
    if mkdirs:
        directory.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = str(directory / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        fsync_dir(directory)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True,
                 mkdirs: bool = False, mode: int = 0o666) -> None:
    """Replace ``path`` by ``data`` atomically (and durably unless
    ``fsync=False``)."""
    with replacing(path, fsync=fsync, mkdirs=mkdirs, mode=mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename inside ``directory`` durable (where the platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)
