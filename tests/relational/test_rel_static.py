"""Static checks: the finite transition function, the findings, the MachineSpec,
and ``load_schema`` for ``convergent check``."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

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
from convergent.relational.static import FiniteModel
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
        analyze(big)
    small = Schema(tuple((f"S{i}", State()) for i in range(6)))
    with pytest.raises(AnalysisLimitError):
        analyze(small, max_states=6)
    assert analyze(small, max_states=7).reachable == 1 << 7
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
