"""convergent._files: the one write-then-rename used by exports,
certificates, the consensus guard and apply log, and status files."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from convergent import _files
from convergent._files import atomic_write, replacing


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    atomic_write(target, b"one")
    atomic_write(str(target), b"two, longer")
    assert target.read_bytes() == b"two, longer"
    assert _leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        Path(tmp).write_bytes(b"half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_permissions_follow_the_umask_or_stay_private(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "public", b"x")
        atomic_write(tmp_path / "private", b"x", mode=0o600)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_a_missing_directory_is_an_error_unless_asked_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "no" / "such" / "f", b"x")
    atomic_write(tmp_path / "made" / "here" / "f", b"x", mkdirs=True)
    assert (tmp_path / "made" / "here" / "f").read_bytes() == b"x"


@pytest.mark.parametrize("durable", [True, False])
def test_fsync_file_and_directory_only_when_durable(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   durable: bool) -> None:
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(_files.os, "fsync", counting)
    atomic_write(tmp_path / "f", b"x", fsync=durable)
    assert len(synced) == (2 if durable else 0)  # the file, then its directory


def test_a_reader_sees_the_old_or_the_new_file_never_a_mix(tmp_path: Path) -> None:
    target = tmp_path / "big"
    a, b = b"a" * 300_000, b"b" * 200_000
    atomic_write(target, a)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(60):
                atomic_write(target, a if i % 2 else b, fsync=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    t = threading.Thread(target=write)
    t.start()
    while not stop.is_set():
        got = target.read_bytes()
        assert got in (a, b), (len(got), got[:1], got[-1:])
    t.join(30)
    assert not errors
    assert target.read_bytes() in (a, b)
    assert _leftovers(tmp_path) == []
