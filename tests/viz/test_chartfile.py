"""``convergent diagram`` on statechart files: telling a chart from a
machine spec, drawing charts whose functions live in Python, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convergent.errors import ConvergentError
from convergent.viz import DiagramError
from convergent.viz.chartfile import file_kind, function_names, load_chart_file
from convergent.viz.cli import register

from .cli_harness import run

ROOT = Path(__file__).resolve().parents[2]
ORDER = str(ROOT / "examples" / "order_saga" / "order.yaml")
GSM = str(ROOT / "examples" / "gsm_order.yaml")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's dot is not installed")


def test_file_kind_tells_charts_from_specs(tmp_path: Path) -> None:
    assert file_kind(ORDER) == "statechart"
    assert file_kind(GSM) == "machine"
    js = tmp_path / "chart.json"
    js.write_text('{"statechart": "t", "states": {"a": {}}}')
    assert file_kind(js) == "statechart"


@pytest.mark.parametrize("text, says", [
    ("name: x\nstates: {a: {}}\n", "its top-level keys are name, states"),
    ("- a\n- b\n", "is a list"),
    ("{}\n", "the mapping is empty"),
    ("machine: m\nstatechart: c\n", "both a 'machine' and a 'statechart' key"),
])
def test_neither_is_a_clear_error(tmp_path: Path, text: str, says: str) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(text)
    with pytest.raises(DiagramError) as info:
        file_kind(f)
    assert says in str(info.value)
    assert "both" in says or "'machine: NAME'" in str(info.value)


def test_unparseable_is_left_to_the_loader(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("machine: [unclosed\n")
    assert file_kind(f) is None
    assert file_kind(tmp_path / "missing.yaml") is None
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000 + "]" * 5000)
    assert file_kind(deep) is None


def test_function_names_are_found_at_any_depth() -> None:
    doc = {"states": {"a": {"entry": [{"call": "f"}], "on": {"go": [
        {"target": "b", "guard": {"call": "g"}, "actor_guard": "h"}]}},
        "b": {"states": {"c": {"exit": [{"call": "f"}, {"emit": "x"}]}}}}}
    assert function_names(doc) == {"f", "g", "h"}


@given(st.recursive(st.none() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["call", "on", "x", "actor_guard"]),
                                      inner, max_size=4), max_leaves=30))
def test_function_names_never_fail(doc: object) -> None:
    names = function_names(doc)
    assert all(isinstance(n, str) for n in names)


def test_functions_become_placeholders_that_refuse_to_run() -> None:
    chart = load_chart_file(ORDER)  # names request_payment and compensate
    call = next(a for a in chart.states["processing"].entry if a.kind == "call")
    assert call.text == "request_payment"
    assert call.fn is not None
    with pytest.raises(DiagramError, match="placeholder"):
        call.fn(None)  # type: ignore[arg-type]


def test_cli_draws_a_statechart(capsysbinary: pytest.CaptureFixture[bytes],
                                tmp_path: Path) -> None:
    assert run(register, ["diagram", ORDER]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "stateDiagram-v2" in out and 'state "processing" as' in out
    target = tmp_path / "order.gv"
    assert run(register, ["diagram", ORDER, "-o", str(target)]) == 0
    assert "subgraph cluster_" in target.read_text()


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_cli_statechart_images(tmp_path: Path, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"order.{fmt}"
    assert run(register, ["diagram", ORDER, "--format", fmt, "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(magic)
    if fmt == "svg":
        assert b"cluster_" in data and b"after 15m" in data


def test_cli_refuses_neither(capsysbinary: pytest.CaptureFixture[bytes],
                             tmp_path: Path) -> None:
    f = tmp_path / "notes.yaml"
    f.write_text("title: shopping list\nitems: [milk]\n")
    assert run(register, ["diagram", str(f)]) == 2
    err = capsysbinary.readouterr().err.decode()
    assert "neither a machine spec nor a statechart" in err


def test_cli_reports_a_malformed_chart_with_its_location(
        capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    f = tmp_path / "chart.yaml"
    f.write_text("statechart: t\nstates:\n  a:\n    on: {go: nowhere}\n")
    assert run(register, ["diagram", str(f)]) == 2
    err = capsysbinary.readouterr().err.decode()
    assert f"{f}:4:" in err and "nowhere" in err


def test_cli_machine_options_do_not_apply_to_charts(
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert run(register, ["diagram", ORDER, "--kind", "footprint"]) == 2
    assert "is a statechart" in capsysbinary.readouterr().err.decode()
    assert run(register, ["diagram", ORDER, "--max-states", "5"]) == 2


def test_errors_are_convergent_errors() -> None:
    assert issubclass(DiagramError, ConvergentError)


def test_a_chart_named_in_python_is_drawn(tmp_path) -> None:
    """``diagram module.py:factory`` draws a Chart a function returns; a
    function that needs arguments is a clear error, not a traceback."""
    from convergent.cli import main
    out = tmp_path / "o.mmd"
    chart = ROOT / "examples" / "order_saga" / "chart.py"
    assert main(["diagram", f"{chart}:order_chart", "--format", "mermaid",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert "stateDiagram-v2" in text and "placed" in text
    assert main(["diagram", f"{chart}:request_payment"]) == 2
