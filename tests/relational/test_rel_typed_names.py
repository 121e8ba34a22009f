"""Typed state names: a ``StateNames`` enum gives constants, so a typo in a state
name fails at type-check time (mypy is run on a snippet), and the constants
work everywhere a name does at run time."""

from __future__ import annotations

import enum
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convergent.relational import Machine, Schema, SchemaError, State, StateNames

from .helpers import async_test


class S(StateNames):
    Start = enum.auto()
    Fetching = enum.auto()
    Idle = enum.auto()


SCHEMA = Schema.from_dict({
    S.Start: State(add=(S.Fetching,)),
    S.Fetching: State(require=(S.Start,), remove=(S.Idle,)),
    S.Idle: State(auto=True, require=(S.Start,), remove=(S.Fetching,)),
}, name="typed", names=S)


def test_members_are_their_names_and_schemas_store_plain_strings() -> None:
    assert S.Start == "Start" and str(S.Fetching) == "Fetching" and f"{S.Idle}" == "Idle"
    assert SCHEMA.names == ("Start", "Fetching", "Idle", "Exception")
    assert all(type(n) is str for n in SCHEMA.names)
    assert SCHEMA["Fetching"].require == ("Start",)
    assert type(SCHEMA["Fetching"].require[0]) is str
    assert SCHEMA == Schema.of(Start=State(add=("Fetching",)),
                               Fetching=State(require=("Start",), remove=("Idle",)),
                               Idle=State(auto=True, require=("Start",), remove=("Fetching",)),
                               name="typed")


@async_test
async def test_members_drive_a_machine() -> None:
    async with Machine(SCHEMA, active=(S.Start,)) as mach:
        assert (await mach.add(S.Fetching)).executed
        assert mach.is_active(S.Fetching) and mach.tick(S.Fetching) == 1
        await mach.remove(S.Fetching)
        await mach.when(S.Idle)
        assert mach.active_states == ("Start", "Idle")


def test_names_must_match_the_schema() -> None:
    class Other(StateNames):
        Start = enum.auto()
        Missing = enum.auto()

    with pytest.raises(SchemaError) as info:
        Schema.from_dict({S.Start: State(), S.Idle: State()}, names=Other)
    text = str(info.value)
    assert "Other.Missing is not a state" in text
    assert "state 'Idle' is not a member of" in text


def test_a_bare_member_is_not_a_sequence() -> None:
    with pytest.raises(SchemaError, match=r"e\.g\. \('Start',\)"):
        State(require=S.Start)  # type: ignore[arg-type]


SNIPPET = """
import enum
from convergent.relational import Machine, Schema, State, StateNames

class S(StateNames):
    Start = enum.auto()
    Fetching = enum.auto()

schema = Schema.from_dict({S.Start: State(add=(S.Fetching,)),
                           S.Fetching: State(require=(S.Start,))}, names=S)

async def main(mach: Machine) -> None:
    await mach.add(S.Start)
    await mach.add(S.%s)
"""


@pytest.mark.slow
def test_a_typo_fails_at_type_check_time(tmp_path: Path) -> None:
    """mypy accepts the right name and reports the typo (about 10 s, cold cache)."""
    pytest.importorskip("mypy")
    (tmp_path / "good.py").write_text(textwrap.dedent(SNIPPET % "Fetching"))
    (tmp_path / "typo.py").write_text(textwrap.dedent(SNIPPET % "Fetchng"))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "good.py", "typo.py", "--strict",
         "--ignore-missing-imports", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert lines == ['typo.py:14: error: "type[S]" has no attribute "Fetchng"  [attr-defined]'], \
        proc.stdout
