"""The public surface: exports, the check entry point for the CLI, the example."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import convergent.relational as rel
from convergent.errors import ConvergentError, SpecError
from convergent.relational import SchemaError, check

ROOT = Path(__file__).resolve().parents[2]


def test_exports_are_pinned() -> None:
    assert rel.__all__ == sorted(rel.__all__, key=lambda n: (not n.isupper(), n))
    assert set(rel.__all__) == {
        "CANCELED", "EXCEPTION", "EXECUTED", "AnalysisLimitError", "Event", "Finding",
        "HandlerBindingError", "HandlerTimeoutError", "HandlerTrace", "HistoryTracer",
        "LifecycleError",
        "LogLevel", "Machine", "MachineState", "Mutation", "MutationType", "Outcome",
        "RelationalError", "Result", "Schema", "SchemaError", "SchemaLoadError", "Snapshot",
        "SnapshotError", "State", "StateNames", "StaticReport", "Tracer", "Transition", "TransitionRecord",
        "UnknownStateError", "analyze", "check", "load_schema", "to_machine_spec"}
    for name in rel.__all__:
        assert hasattr(rel, name), name


def test_errors_derive_from_the_project_root() -> None:
    for name in rel.__all__:
        obj = getattr(rel, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, ConvergentError), name
    assert issubclass(SchemaError, SpecError) and issubclass(SchemaError, ValueError)


def test_check_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text("from convergent.relational import Schema, State\n"
                    "S = Schema.of(A=State(), B=State(require=('A',)))\n")
    bad = tmp_path / "bad.py"
    bad.write_text("from convergent.relational import Schema, State\n"
                   "S = Schema.of(A=State(require=('B',)), B=State(remove=('A',)))\n")
    code, text = check(f"{good}:S")
    assert code == 0 and "verdict: pass" in text
    code, text = check(f"{bad}:S")
    assert code == 1 and "REL1" in text
    code, text = check(f"{bad}:S", as_json=True)
    assert code == 1 and json.loads(text)["verdict"] == "fail"
    code, text = check(f"{good}:Missing")
    assert code == 2 and text.startswith("error:")
    # past max_states by parts; parts that depend on each other are too large
    code, text = check(f"{good}:S", max_states=2)
    assert code == 0 and "verdict: pass" in text
    coupled = tmp_path / "coupled.py"
    coupled.write_text("from convergent.relational import Schema, State\n"
                       "S = Schema.of(M=State(multi=True, add=('N',)), N=State(), O=State())\n")
    code, text = check(f"{coupled}:S", max_states=2)
    assert code == 2 and "depends on mutations elsewhere" in text
    assert check(f"{coupled}:S")[0] == 0
    code, text = check("nonsense", as_json=True)
    assert code == 2 and json.loads(text)["error"] == "SchemaLoadError"


def test_example_agent_crawls_the_site() -> None:
    path = ROOT / "examples" / "relational_agent.py"
    spec = importlib.util.spec_from_file_location("relational_agent_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        out = module.run_for_tests()
    finally:
        sys.modules.pop(spec.name, None)
    assert out["pages"] == ["/", "/about", "/blog", "/blog/1", "/blog/2", "/docs",
                            "/docs/api", "/docs/start"]
    assert out["errors"] == 1
    assert "Done:1" in out["string_all"] and "[Fetching:2]" in out["string_all"]
    assert rel.analyze(module.CRAWLER).ok


def test_first_docs_example_runs_as_written(capsys: object) -> None:
    import re

    text = (ROOT / "docs" / "relational.md").read_text()
    block = re.search(r"```python\n(import asyncio.*?)```", text, re.S)
    assert block is not None
    expected = re.findall(r"print\(mach\.string_all\(\)\)\s+# (.*)", block.group(1))
    assert len(expected) == 2
    exec(compile(block.group(1), "docs/relational.md", "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
    assert out == expected
