"""Clocks, string formats and snapshots."""

from __future__ import annotations

import json
import textwrap

import pytest

from convergent.relational import (
    EXCEPTION,
    Machine,
    Schema,
    Snapshot,
    SnapshotError,
    State,
)

from .helpers import NOREL, RELS, assert_states, async_test, schema_with, started


@async_test
async def test_ticks_follow_activations_and_multi() -> None:
    mach = await started(schema_with(B=State(multi=True)))
    steps = [
        ("add", ("A", "B"), ("A", "B"), (1, 1, 0, 0)),
        ("add", ("A", "B"), ("A", "B"), (1, 3, 0, 0)),
        ("add", ("A", "B", "C"), ("A", "B", "C"), (1, 5, 1, 0)),
        ("set", ("D",), ("D",), (2, 6, 2, 1)),
        ("add", ("D", "C"), ("D", "C"), (2, 6, 3, 1)),
        ("remove", ("B", "C"), ("D",), (2, 6, 4, 1)),
        ("add", ("A", "B"), ("D", "A", "B"), (3, 7, 4, 1)),
    ]
    for kind, states, active, time in steps:
        await getattr(mach, kind)(*states)
        assert_states(mach, *active)
        assert mach.time("A", "B", "C", "D") == time, (kind, states)
    before = mach.time()
    await mach.add("C")
    assert mach.time("A", "B", "C", "D") == (3, 7, 5, 1)
    assert sum(mach.time()) == 16 and sum(before) == 15
    assert mach.clock() == {"A": 3, "B": 7, "C": 5, "D": 1, EXCEPTION: 0}
    assert mach.clock("A", "B") == {"A": 3, "B": 7}
    assert mach.tick("A") == 3


@async_test
async def test_is_clock_and_is_time() -> None:
    mach = await started()
    c_a = mach.clock("A")
    c_all = mach.clock()
    t_a = mach.time("A")
    await mach.add("A", "B")
    assert not mach.is_clock(c_all) and not mach.is_clock(c_a)
    c_a["A"] += 1
    assert mach.is_clock(c_a)
    assert not mach.is_time(t_a, ["A"])
    assert mach.is_time(mach.time())
    assert mach.is_time((1,), ["A"])


@async_test
async def test_string_formats() -> None:
    mach = await started(initial=["A", "B"])
    assert mach.string() == "(A:1 B:1)" == str(mach)
    assert mach.string_all() == "(A:1 B:1) [C:0 D:0 Exception:0]"
    assert "running" in repr(mach)


@async_test
async def test_inspect_format() -> None:
    mach = await started(RELS, ["A", "C"])
    expected = """\
        1 A
            |Tick     1
            |Auto     true
            |Require  C
        0 B
            |Tick     0
            |Multi    true
            |Add      C
        1 C
            |Tick     1
            |After    D
        0 D
            |Tick     0
            |Add      C B
        0 Exception
            |Tick     0
            |Multi    true
        """
    assert mach.inspect() == textwrap.dedent(expected)
    await mach.remove("C")
    await mach.add("B")
    await mach.add("D")
    assert mach.string_all() == "(A:3 B:1 C:3 D:1) [Exception:0]"
    assert mach.inspect("D") == "1 D\n    |Tick     1\n    |Add      C B\n"


@async_test
async def test_export_and_load_restore_clocks() -> None:
    m1 = await started(initial=["A"])
    await m1.remove("B")
    await m1.add("A")
    await m1.add("B")
    await m1.add("C")
    snap = m1.export()
    assert snap.active == ("A", "B", "C")
    data = json.loads(json.dumps(snap.to_dict()))
    restored = Snapshot.from_dict(data)
    assert restored == snap

    m2 = await started()
    with pytest.raises(SnapshotError, match="id="):
        m2.load(restored)
    m3 = await started(id=m1.id)
    m3.load(restored)
    assert m3.string() == m1.string() == "(A:1 B:1 C:1)"
    assert m3.machine_tick == 1 and m3.queue_tick == m1.queue_tick
    await m3.remove("A")
    assert m3.tick("A") == 2


@async_test
async def test_load_checks_states_and_adds_machine_restored() -> None:
    schema = Schema.of(A=State(), MachineRestored=State())
    m1 = await started(schema, ["A"], id="x")
    m2 = await started(schema, id="x")
    m2.load(m1.export())
    await m2.when("MachineRestored")
    assert_states(m2, "A", "MachineRestored")
    with pytest.raises(SnapshotError, match="differ"):
        m2.load(Snapshot("x", ("A", "B"), (1, 0)))
    with pytest.raises(ValueError):
        Snapshot("x", ("A",), (1, 0))


def test_load_before_start_defers_machine_restored() -> None:
    import asyncio

    schema = Schema.of(A=State(), MachineRestored=State())

    async def main() -> None:
        mach = Machine(schema, id="y")
        mach.load(Snapshot("y", ("A", "MachineRestored", EXCEPTION), (3, 0, 0)))
        assert mach.is_active("A") and mach.tick("A") == 3
        async with mach:
            await mach.when("MachineRestored")
        assert mach.is_active("MachineRestored")

    asyncio.run(main())


def test_reads_work_before_start() -> None:
    mach = Machine(NOREL)
    assert mach.not_active("A") and mach.string_all() == "() [A:0 B:0 C:0 D:0 Exception:0]"
    assert mach.export().time == (0, 0, 0, 0, 0)
