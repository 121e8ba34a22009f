"""Static checks: the finite transition function, the findings, the MachineSpec,
and ``load_schema`` for ``convergent check``.

``reference_analyze`` below is the original checker: a plain BFS over bitmasks
with the per-state resolver (``FiniteModel.step``), kept only to hold the
engine-backed ``analyze`` to it on random schemas."""

from __future__ import annotations

import json
import sys
import textwrap
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.relational import (
    AnalysisLimitError,
    Schema,
    SchemaError,
    SchemaLoadError,
    State,
    analyze,
    load_schema,
    to_machine_spec,
)
from convergent.relational import _resolver as R
from convergent.relational.static import (
    Finding,
    FiniteModel,
    StaticReport,
    _engine_analysis,
    _reasons,
    _require_sccs,
    _transition_tables,
)
from convergent.spec.model import MachineSpec

from .helpers import assert_states, async_test, started

CRAWLER = Schema.of(
    Start=State(add=("Fetching",)),
    Fetching=State(require=("Start",), remove=("Idle",)),
    Idle=State(auto=True, require=("Start",), remove=("Fetching",)),
    Done=State(remove=("Fetching", "Idle")),
)

# three auto states chasing each other: B drops D, C drops B, D drops C
ROCK_PAPER = Schema.of(
    Tick=State(multi=True),
    B=State(auto=True, remove=("D",)),
    C=State(auto=True, remove=("B",)),
    D=State(auto=True, remove=("C",)),
)

# Run removes what Job requires: adding Run always fails, yet Input brings Job
# and (second hop of add) Run, whose removals the resolver no longer applies
TWO_HOP = Schema.of(
    Job=State(require=("Input", "Config"), add=("Run",)),
    Input=State(add=("Job", "Config")),
    Config=State(),
    Run=State(require=("Job",), remove=("Input", "Config")),
)


def test_clean_schema_has_no_findings() -> None:
    report = analyze(CRAWLER)
    assert report.ok and report.findings == ()
    assert report.states == ("Start", "Fetching", "Idle", "Done", "Exception")
    assert report.events == 10 and report.space == 32
    assert 1 < report.reachable < report.space
    assert report.to_dict()["verdict"] == "pass"
    assert report.render_text().endswith("verdict: pass (0 errors, 0 warnings)")


def test_contradiction_is_reported_with_reasons() -> None:
    schema = Schema.of(Submit=State(require=("Valid",)), Valid=State(remove=("Submit",)),
                       Final=State(require=("Submit",)))
    report = analyze(schema)
    assert not report.ok
    assert [f.states for f in report.contradictions] == [("Submit",), ("Final",)]
    submit, final = report.contradictions
    assert submit.code == "REL1" and "Submit can never be active" in submit.message
    assert any("[rel:remove] Submit by Valid" in d for d in submit.details)
    assert "requires Submit, never active either" in final.message
    assert report.always_cancelled == ()  # subsumed by the contradictions


def test_auto_loop_is_reported_and_real() -> None:
    report = analyze(ROCK_PAPER)
    assert [f.code for f in report.findings] == ["REL2"]
    loop = report.auto_loops[0]
    assert loop.states == ("B", "C", "D")
    assert "(B) -> (C) -> (D) -> (B)" in loop.message
    assert loop.witness == ("add_D -> (B)",)


@async_test
async def test_auto_loop_flips_at_run_time() -> None:
    mach = await started(ROCK_PAPER)
    await mach.add("D")
    assert_states(mach, "B")
    seen = []
    for _ in range(3):
        await mach.add("Tick")  # any clock move triggers the auto mutation
        seen.append([s for s in mach.active_states if s != "Tick"])
    assert seen == [["C"], ["D"], ["B"]]


def test_require_cycle_is_a_warning_and_group_add_reaches_it() -> None:
    schema = Schema.of(Left=State(require=("Right",)), Right=State(require=("Left",)),
                       Other=State())
    report = analyze(schema)
    assert report.ok
    (cycle,) = report.require_cycles
    assert cycle.code == "REL3" and cycle.severity == "warning"
    assert cycle.states == ("Left", "Right") and "add_Left+Right" in cycle.message
    assert report.contradictions == ()
    model = FiniteModel(schema)
    assert "add_Left+Right" in model.event_names


def test_always_cancelled_mutation_of_a_reachable_state() -> None:
    report = analyze(TWO_HOP)
    assert report.contradictions == ()
    (finding,) = report.always_cancelled
    assert finding.code == "REL4" and finding.states == ("Run",)
    assert finding.message.startswith("add_Run is cancelled")
    model = FiniteModel(TWO_HOP)
    names = model.names
    after = model.step(0, model.event_names.index("add_Input")).after
    assert {names[i] for i in range(len(names)) if after >> i & 1} == {
        "Input", "Job", "Config", "Run"}


@async_test
async def test_two_hop_example_matches_run_time() -> None:
    mach = await started(TWO_HOP)
    assert (await mach.add("Run")).canceled
    await mach.add("Input")
    assert_states(mach, "Input", "Job", "Config", "Run")
    before = mach.time()
    assert (await mach.add("Run")).canceled  # refused even while active
    assert mach.time() == before


def test_report_serializes() -> None:
    report = analyze(ROCK_PAPER)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["version"] == 1 and data["verdict"] == "fail"
    assert data["findings"][0]["code"] == "REL2"
    text = report.render_text()
    assert "REL2 auto-loop" in text and "verdict: fail (1 error, 0 warnings)" in text


def test_analysis_limit() -> None:
    big = Schema(tuple((f"S{i}", State()) for i in range(20)))
    with pytest.raises(AnalysisLimitError, match="21 states"):
        analyze(big, method="exhaustive")
    assert analyze(big).reachable == 1 << 21        # decomposed: 21 independent parts
    # one part of 20 related states: explored set by set (a chain reaches 21 sets)
    chain = Schema(tuple((f"S{i}", State(require=(f"S{i - 1}",) if i else ()))
                         for i in range(20)))
    report = analyze(chain)
    assert report.reachable == 21 * 2 and report.ok     # x Exception on or off
    # 20 states that all add the first one: related, and 2^19 sets reachable
    wide = Schema(tuple((f"S{i}", State(add=("S0",) if i else ())) for i in range(20)))
    with pytest.raises(AnalysisLimitError, match="max_sets=500"):
        analyze(wide, max_sets=500)
    small = Schema(tuple((f"S{i}", State()) for i in range(6)))
    with pytest.raises(AnalysisLimitError):
        analyze(small, max_states=6, method="exhaustive")
    assert analyze(small, max_states=6).reachable == 1 << 7
    assert analyze(small, max_states=7).reachable == 1 << 7
    with pytest.raises(ValueError, match="method="):
        analyze(small, method="symbolic")
    with pytest.raises(AnalysisLimitError, match="21 states"):
        to_machine_spec(big)
    with pytest.raises(TypeError):
        analyze({"A": State()})  # type: ignore[arg-type]


def test_machine_spec_is_valid_and_matches_the_model() -> None:
    spec = to_machine_spec(CRAWLER)
    assert isinstance(spec, MachineSpec)
    assert [v.name for v in spec.vars] == list(CRAWLER.names)
    assert all(v.kind == "bool" for v in spec.vars)
    assert [e.name for e in spec.events][:4] == ["add_Start", "remove_Start", "add_Fetching",
                                                "remove_Fetching"]
    assert spec.initial == {n: False for n in CRAWLER.names}
    model = FiniteModel(CRAWLER)
    var_map = spec.var_map
    for mask in range(1 << len(spec.vars)):
        values = {n: bool(mask >> i & 1) for i, n in enumerate(CRAWLER.names)}
        for e, event in enumerate(spec.events):
            step = model.step(mask, e)
            assert event.guard is not None
            assert event.guard.evaluate(var_map, values) == step.accepted
            out = event.apply.evaluate(var_map, values)
            assert out == {n: bool(step.after >> i & 1) for i, n in enumerate(CRAWLER.names)}


@pytest.mark.parametrize("schema", [CRAWLER, ROCK_PAPER, TWO_HOP], ids=lambda s: str(len(s)))
def test_machine_spec_reachability_agrees_with_reference_checker(schema: Schema) -> None:
    tests_dir = str(Path(__file__).resolve().parents[1])
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    reference = pytest.importorskip("reference")
    result = reference.reference_check(to_machine_spec(schema))
    assert result.reachable_count == analyze(schema).reachable


def test_load_schema_from_file_and_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    path = tmp_path / "states.py"
    path.write_text(textwrap.dedent("""
        from convergent.relational import Schema, State
        Schema_ = Schema.of(A=State(), B=State(require=("A",)))
        AsDict = {"A": State(), "B": {"remove": ["A"]}}
        def make():
            return Schema_
        NotOne = 42
    """))
    assert load_schema(f"{path}:Schema_").names == ("A", "B", "Exception")
    as_dict = load_schema(f"{path}:AsDict")
    assert as_dict.name == "AsDict" and as_dict["B"].remove == ("A",)
    assert load_schema(f"{path}:make") == load_schema(f"{path}:Schema_")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_schema("states:Schema_").names == ("A", "B", "Exception")
    with pytest.raises(SchemaLoadError, match="expected a Schema"):
        load_schema(f"{path}:NotOne")
    with pytest.raises(SchemaLoadError, match="no attribute"):
        load_schema(f"{path}:Missing")
    with pytest.raises(SchemaLoadError, match="module_or_path:Name"):
        load_schema(str(path))
    with pytest.raises(SchemaLoadError, match="no such file"):
        load_schema(f"{tmp_path / 'nope.py'}:X")
    with pytest.raises(SchemaLoadError, match="cannot import module"):
        load_schema("no_such_module_xyz:X")


def test_load_schema_reports_schema_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from convergent.relational import Schema, State\n"
                   "S = Schema.of(A=State(require=('Nope',)))\n")
    with pytest.raises(SchemaError, match="unknown state 'Nope'"):
        load_schema(f"{bad}:S")
    broken = tmp_path / "broken.py"
    broken.write_text("this is not python\n")
    with pytest.raises(SchemaLoadError, match="failed"):
        load_schema(f"{broken}:S")


# ---------------------------------------------------------------- the slow reference


def _path(parent: dict[int, tuple[int, int] | None], mask: int,
          model: FiniteModel) -> list[str]:
    steps: list[str] = []
    while parent.get(mask) is not None:
        prev, event = parent[mask]  # type: ignore[misc]
        steps.append(f"{model.events[event][0]} -> {model.describe(mask)}")
        mask = prev
    steps.reverse()
    return steps


def _reference_auto_loops(model: FiniteModel, reachable: list[int],
                          parent: dict[int, tuple[int, int] | None]) -> list[Finding]:
    """Cycles of length >= 2 of the auto map among reachable sets."""
    color: dict[int, int] = {}
    found: list[Finding] = []
    seen_cycles: set[frozenset[int]] = set()
    seen_states: set[tuple[str, ...]] = set()
    for start in reachable:
        path: list[int] = []
        on_path: dict[int, int] = {}
        mask = start
        while mask not in color and mask not in on_path:
            on_path[mask] = len(path)
            path.append(mask)
            nxt = model.auto(mask)
            if nxt == mask:
                break
            mask = nxt
        if mask in on_path and model.auto(mask) != mask:
            cycle = path[on_path[mask]:]
            key = frozenset(cycle)
            if len(cycle) > 1 and key not in seen_cycles:
                seen_cycles.add(key)
                first = min(cycle, key=lambda m: (len(_path(parent, m, model)), m))
                pos = cycle.index(first)
                cycle = cycle[pos:] + cycle[:pos]
                loop = " -> ".join(model.describe(m) for m in cycle + cycle[:1])
                states = tuple(sorted({model.names[s] for m in cycle
                                       for s in _bits(m ^ model.auto(m))},
                                      key=model.names.index))
                if states in seen_states:
                    continue
                seen_states.add(states)
                found.append(Finding(
                    "auto-loop",
                    f"auto states never settle: {loop}; every transition that moves a clock "
                    "flips them again",
                    states, witness=tuple(_path(parent, first, model))))
        for m in path:
            color[m] = 1
    return found


def _bits(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def reference_analyze(schema: Schema) -> StaticReport:
    """Every reachable set by a BFS over ``FiniteModel.step``, one set and one
    mutation at a time (the checker before the engine took over)."""
    model = FiniteModel(schema)
    names = model.names
    n = len(names)
    n_events = len(model.events)
    parent: dict[int, tuple[int, int] | None] = {model.initial: None}
    todo = deque([model.initial])
    executed_somewhere = [False] * n_events
    while todo:
        mask = todo.popleft()
        for e in range(n_events):
            step = model.step(mask, e)
            if step.executed:
                executed_somewhere[e] = True
            if step.after not in parent:
                parent[step.after] = (mask, e)
                todo.append(step.after)
    reachable = list(parent)
    ever = 0
    for mask in reachable:
        ever |= mask

    findings: list[Finding] = []
    never = [i for i in range(n) if not ever >> i & 1]
    never_set = set(never)
    for i in never:
        reasons = _reasons(model, reachable, R.ADD, [i])
        blocked_by = [names[r] for r in model.compiled.require[i] if r in never_set]
        message = f"{names[i]} can never be active"
        if blocked_by:
            message += f" (it requires {', '.join(blocked_by)}, never active either)"
        findings.append(Finding("contradiction", message, (names[i],), details=reasons))
    findings += _reference_auto_loops(model, reachable, parent)
    for comp in _require_sccs(schema):
        findings.append(Finding(
            "require-cycle",
            f"{' -> '.join(comp + comp[:1])} require each other: they can only be added "
            f"together (add_{'+'.join(comp)}), and handler order among them is undefined",
            tuple(comp), severity="warning"))
    for e, (name, kind, called) in enumerate(model.events):
        if executed_somewhere[e] or (kind == R.ADD and any(s in never_set for s in called)):
            continue
        findings.append(Finding(
            "always-cancelled", f"{name} is cancelled by the relations in every reachable "
            "set of active states", tuple(names[s] for s in called),
            details=_reasons(model, reachable, kind, called)))
    return StaticReport(schema=schema.name, states=names, events=n_events,
                        reachable=len(reachable), findings=tuple(findings))


# ---------------------------------------------------------------- engine vs reference

NAMES = ("A", "B", "C", "D", "E", "F")
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def schemas(draw: Any, max_states: int = 6) -> Schema:
    """Random relations: requires (cycles included), removes, adds, after,
    auto and multi states, so that every finding kind shows up."""
    n = draw(st.integers(1, max_states))
    names = NAMES[:n]
    rel = st.lists(st.sampled_from(names), max_size=2, unique=True)
    states = []
    for name in names:
        require = [s for s in draw(rel) if s != name]
        remove = [s for s in draw(rel) if s not in require]
        states.append((name, State(require=tuple(require), remove=tuple(remove),
                                   add=tuple(draw(rel)), after=tuple(draw(rel)),
                                   auto=draw(st.booleans()), multi=draw(st.booleans()))))
    return Schema(tuple(states))


@st.composite
def looping_schemas(draw: Any) -> Schema:
    """A ring of three or four auto states, each removing the previous one (an
    auto loop when reachable), with random extra states and relations."""
    k = draw(st.integers(3, 4))
    ring = NAMES[:k]
    names = ring + NAMES[k:k + draw(st.integers(0, 2))]
    rel = st.lists(st.sampled_from(names), max_size=1)
    states = [("Tick", State(multi=True))] if draw(st.booleans()) else []
    for i, name in enumerate(names):
        remove = ([ring[i - 1]] if name in ring else []) + [s for s in draw(rel) if s != name]
        require = [s for s in draw(rel) if s != name and s not in remove]
        states.append((name, State(require=tuple(require), remove=tuple(dict.fromkeys(remove)),
                                   add=tuple(draw(rel)), after=tuple(draw(rel)),
                                   auto=name in ring or draw(st.booleans()),
                                   multi=draw(st.booleans()))))
    return Schema(tuple(states))


ANY_SCHEMA = st.one_of(schemas(), looping_schemas())


@PROPERTY
@given(ANY_SCHEMA)
def test_vectorized_tables_are_the_resolver_at_every_set(schema: Schema) -> None:
    model = FiniteModel(schema)
    tables = _transition_tables(model)
    masks = range(1 << len(model.names))
    assert tables.auto.tolist() == [model.auto(m) for m in masks]
    for e, (_name, kind, _called) in enumerate(model.events):
        steps = [model.step(m, e) for m in masks]
        assert tables.accepted[e].tolist() == [s.accepted for s in steps]
        assert tables.after[e].tolist() == [s.after for s in steps]
        # what REL4 relies on: an accepted mutation is executed, and a removal
        # is always accepted
        assert all(s.executed == s.accepted for s in steps)
        assert kind != R.REMOVE or all(s.accepted for s in steps)


@PROPERTY
@given(ANY_SCHEMA)
def test_engine_backed_analyze_matches_the_reference(schema: Schema) -> None:
    ours = analyze(schema)
    ref = reference_analyze(schema)
    assert ours.reachable == ref.reachable
    assert ours.findings == ref.findings
    assert ours.to_dict() == ref.to_dict()


@pytest.mark.parametrize("schema", [CRAWLER, ROCK_PAPER, TWO_HOP], ids=lambda s: str(len(s)))
def test_engine_tables_are_the_compiled_tables(schema: Schema) -> None:
    model = FiniteModel(schema)
    tables = _transition_tables(model)
    an = _engine_analysis(model, tables)
    assert an.step is not None and an.reach is not None and an.report.findings is not None
    assert np.array_equal(an.step, tables.after)
    assert [e.name for e in an.compiled.events] == list(model.event_names)
    reach = set(an.reach.tolist())
    assert len(reach) == reference_analyze(schema).reachable == analyze(schema).reachable
    never_fire = {model.event_names[e] for e in range(len(model.events))
                  if not tables.accepted[e][list(reach)].any()}
    assert set(an.report.findings.never_fire) == never_fire


def test_reference_agrees_on_the_named_examples() -> None:
    for schema in (CRAWLER, ROCK_PAPER, TWO_HOP):
        assert analyze(schema) == reference_analyze(schema)
