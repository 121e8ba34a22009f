"""Static checks beyond the exhaustive limit: the analysis by independent parts.

The decomposed analysis is held to the exhaustive one (the engine over all 2^n
sets) on random schemas made of several parts, and a 64-state schema is
checked with findings planted in some of its parts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.relational import AnalysisLimitError, Schema, State, StaticReport, analyze
from convergent.relational._parts import parts_of

from .helpers import async_test
from .test_rel_static import CRAWLER, ROCK_PAPER, schemas


def signature(report: StaticReport) -> set[tuple[str, tuple[str, ...]]]:
    """What a report finds, without witnesses or wording: (code, states)."""
    return {(f.code, tuple(sorted(f.states))) for f in report.findings}


@st.composite
def parted_schemas(draw: Any) -> Schema:
    """Two to four groups of one to three states, related only inside their
    group (any relation, auto, multi); sometimes a group requires or removes
    Exception, which joins it to Exception's part."""
    groups = draw(st.integers(2, 4))
    states: list[tuple[str, State]] = []
    for g in range(groups):
        names = [f"G{g}S{i}" for i in range(draw(st.integers(1, 3)))]
        rel = st.lists(st.sampled_from(names), max_size=2, unique=True)
        for name in names:
            require = [s for s in draw(rel) if s != name]
            remove = [s for s in draw(rel) if s not in require]
            if g == 0 and draw(st.integers(0, 4)) == 0:
                (remove if draw(st.booleans()) else require).append("Exception")
            states.append((name, State(require=tuple(require), remove=tuple(remove),
                                       add=tuple(draw(rel)), after=tuple(draw(rel)),
                                       auto=draw(st.booleans()),
                                       multi=draw(st.booleans()))))
    return Schema(tuple(states), "parted")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parted_schemas())
def test_decomposed_analysis_finds_what_the_exhaustive_one_finds(schema: Schema) -> None:
    exhaustive = analyze(schema, method="exhaustive")
    try:
        decomposed = analyze(schema, method="decomposed")
    except AnalysisLimitError as exc:
        # parts that depend on each other are refused, never approximated
        assert "depends on mutations elsewhere" in str(exc) or "react to" in str(exc)
        return
    assert signature(decomposed) == signature(exhaustive)
    assert decomposed.ok == exhaustive.ok
    assert decomposed.states == exhaustive.states
    assert decomposed.events == exhaustive.events
    assert [f.code for f in decomposed.findings] == sorted(
        (f.code for f in decomposed.findings), key=["REL1", "REL2", "REL3", "REL4"].index)
    if decomposed.reachable_is_bound:
        assert decomposed.reachable >= exhaustive.reachable
        assert "at most" in decomposed.render_text()
    else:
        assert decomposed.reachable == exhaustive.reachable


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(parted_schemas(), schemas()))
def test_set_by_set_exploration_finds_what_the_tables_find(schema: Schema) -> None:
    """With ``max_states=2`` every part of three or more states (with its
    stand-in) is explored one reachable set at a time (``_explicit``)."""
    exhaustive = analyze(schema, method="exhaustive")
    try:
        explicit = analyze(schema, method="decomposed", max_states=2)
        tables = analyze(schema, method="decomposed")
    except AnalysisLimitError as exc:
        assert "depends on mutations elsewhere" in str(exc) or "react to" in str(exc)
        return
    assert signature(explicit) == signature(tables) == signature(exhaustive)
    assert explicit.reachable == tables.reachable
    assert [f.render() for f in explicit.findings] == [f.render() for f in tables.findings]


def test_decomposition_refuses_parts_that_depend_on_each_other() -> None:
    # a multi state re-adds what it adds on every mutation, anywhere
    schema = Schema.of(M=State(multi=True, add=("N",)), N=State(), Other=State())
    with pytest.raises(AnalysisLimitError, match="depends on mutations elsewhere"):
        analyze(schema, method="decomposed")
    assert analyze(schema).ok          # small enough: the exhaustive analysis runs


def test_parts_are_the_components_of_require_remove_and_add() -> None:
    schema = Schema.of(A=State(require=("B",)), B=State(), C=State(after=("A",)),
                       D=State(remove=("C",)), E=State(add=("Exception",)))
    assert [p.states for p in parts_of(schema)] == [("A", "B"), ("C", "D"),
                                                   ("E", "Exception")]


def _prefixed(schema: Schema, prefix: str) -> dict[str, State]:
    def ren(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n if n == "Exception" else prefix + n for n in names)

    return {prefix + name: State(require=ren(st.require), remove=ren(st.remove),
                                 add=ren(st.add), after=ren(st.after), auto=st.auto,
                                 multi=st.multi)
            for name, st in schema.items() if name != "Exception"}


WORKER = Schema.of(
    Start=State(),
    Idle=State(auto=True, require=("Start",), remove=("Busy",)),
    Busy=State(require=("Start",), remove=("Idle",), add=("Working",)),
    Working=State(require=("Busy",), after=("Busy",)),
    Ready=State(),
    Stopped=State(remove=("Start",)),
    Failed=State(require=("Exception",)),
)
BROKEN = Schema.of(Submit=State(require=("Valid",)), Valid=State(remove=("Submit",)))


def schema_64() -> Schema:
    """63 states and Exception: seven workers, a crawler, a rock-paper loop and
    a contradiction (the workers' ``Failed`` join Exception's part)."""
    states: dict[str, State] = {}
    for i in range(7):
        states.update(_prefixed(WORKER, f"W{i}"))
    states.update(_prefixed(CRAWLER, "Crawl"))
    states.update(_prefixed(ROCK_PAPER, "Rps"))
    states.update(_prefixed(BROKEN, "Form"))
    states.update({f"Flag{i}": State() for i in range(63 - len(states))})
    return Schema.from_dict(states, name="big")


def test_a_64_state_schema_is_checked_by_parts_in_seconds() -> None:
    schema = schema_64()
    assert len(schema) == 64
    t0 = time.perf_counter()
    report = analyze(schema)
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, elapsed           # about a second on a quiet machine
    assert report.states == schema.names
    found = signature(report)
    assert ("REL1", ("FormSubmit",)) in found
    assert ("REL2", ("RpsB", "RpsC", "RpsD")) in found
    # each planted finding is what the exhaustive analysis of that part finds
    alone = signature(analyze(Schema.from_dict(_prefixed(ROCK_PAPER, "Rps")),
                              method="exhaustive"))
    assert {f for f in found if f[1][0].startswith("Rps")} == alone
    assert not any(f[1][0].startswith(("W", "Crawl", "Flag")) for f in found)


@async_test
async def test_the_planted_contradiction_holds_at_run_time() -> None:
    from convergent.relational import Machine

    async with Machine(schema_64()) as mach:
        await mach.add("FormValid")
        assert (await mach.add("FormSubmit")).canceled
        await mach.remove("FormValid")
        await mach.add("FormSubmit")
        assert not mach.is_active("FormSubmit")


def modes_64() -> Schema:
    """64 related states: 60 modes that exclude each other, an auto state on
    one mode, one more on that, and a state requiring two modes at once."""
    modes = [f"Mode{i}" for i in range(60)]
    states = {m: State(remove=tuple(x for x in modes if x != m)) for m in modes}
    states["Online"] = State(require=("Mode0",), auto=True)
    states["Syncing"] = State(require=("Online",), remove=("Mode1",))
    states["Broken"] = State(require=("Mode2", "Mode3"))
    return Schema.from_dict(states, name="modes")


def test_a_64_state_part_is_explored_set_by_set() -> None:
    schema = modes_64()
    assert len(schema) == 64 and len(parts_of(schema)) == 2     # the modes, Exception
    report = analyze(schema)
    # {}, each mode but Mode0 alone (Online follows Mode0), Mode0 with Online,
    # and with Syncing; each with Exception on or off
    assert report.reachable == (1 + 59 + 2) * 2
    assert signature(report) == {("REL1", ("Broken",))}
    assert "Broken(-Mode2 -Mode3)" in report.render_text()


@async_test
async def test_the_modes_schema_behaves_as_reported() -> None:
    from convergent.relational import Machine

    async with Machine(modes_64()) as mach:
        await mach.add("Mode0")
        assert mach.is_active("Online")                 # auto, as the count says
        await mach.add("Syncing")
        await mach.add("Mode2")
        assert (await mach.add("Broken")).canceled
        assert mach.active_states == ("Mode2",)
