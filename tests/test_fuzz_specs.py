"""Issue 11: no input is a traceback. Mutated specs (text edits and
structural replacements of real examples) either verify or are refused with
a located SpecError/BuildError: never another exception, never a hang."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from conftest import ROOT, shared_path
from convergent.engine import check
from convergent.errors import BuildError, SpecError
from convergent.spec.loader import loads_spec

FILE = "fuzz.yaml"
SOURCES = sorted((ROOT / "examples").glob("*.yaml")) + sorted(
    p for p in shared_path("conformance", "specs").glob("*.yaml") if "_error_" not in p.name)
TEXTS = [p.read_text() for p in SOURCES]

NASTY = ["[[x]]", "{x: 1}", "100000000000000000000", "-", "((((", "not not", "'", '"', ":",
         "- ", "\t", "&a", "*a", "!!python/object:os.system", "%", "1e9", "null", "~", "[",
         "}", "é", "٣", "\x00", "{", "[x, [y]]", "if", "then", "else", "min(", "abs()",
         "true", "false", "0", "-1", "1 // 0", "x % 0", "a.b", "---", "...", "? x", "|",
         ">", "#", "0x10", "1_000", "'on'", "yes", "[]", "{}", "all", "2147483648",
         "-9223372036854775809", "9" * 30, "(" * 45, "not " * 50, "1 + " * 130 + "1"]
SETTINGS = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "300")),
                    deadline=None, suppress_health_check=list(HealthCheck))


def _text_mutation(text: str, data: st.DataObject) -> str:
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        kind = data.draw(st.sampled_from(["replace", "insert", "delete", "dup", "swap"]))
        i = data.draw(st.integers(0, max(0, len(lines) - 1)))
        if not lines:
            lines = [""]
        line = lines[i]
        if kind in ("replace", "insert"):
            a = data.draw(st.integers(0, len(line)))
            b = a if kind == "insert" else data.draw(st.integers(a, len(line)))
            token = data.draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=6)))
            lines[i] = line[:a] + token + line[b:]
        elif kind == "delete":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, line)
        else:
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], line
    return "\n".join(lines) + "\n"


VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
              st.sampled_from(NASTY), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)


def _structural_mutation(text: str, data: st.DataObject) -> str:
    yaml = YAML(typ="rt", pure=True)
    yaml.version = (1, 2)
    doc = yaml.load(text)
    node, path = doc, []
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans(), label="deeper"):
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        k = data.draw(st.sampled_from(keys))
        path.append((node, k))
        node = node[k]
    if not path:
        return text
    parent, k = path[-1]
    parent[k] = data.draw(VALUES, label="value")
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _assert_refused_or_checked(text: str) -> None:
    try:
        spec = loads_spec(text, FILE)
    except SpecError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file == FILE, p
            assert p.line is not None, f"no line in {p}"
        return
    try:
        report = check(spec)
    except BuildError as exc:
        assert exc.file == FILE, exc
        assert str(exc).startswith(FILE), exc
        return
    assert report.verdict in ("pass", "fail")
    json.dumps(report.to_dict())


@SETTINGS
@given(src=st.sampled_from(TEXTS), data=st.data())
def test_text_mutations_never_crash(src: str, data: st.DataObject) -> None:
    _assert_refused_or_checked(_text_mutation(src, data))


@SETTINGS
@given(src=st.sampled_from(TEXTS), data=st.data())
def test_structural_mutations_never_crash(src: str, data: st.DataObject) -> None:
    _assert_refused_or_checked(_structural_mutation(src, data))


DEEP = {
    "parens": "guard: " + "(" * 500 + "true" + ")" * 500,
    "not": "guard: " + "not " * 2000 + "true",
    "minus": "guard: " + "-" * 2000 + "1 > 0",
    "sum": "guard: " + " + ".join(["balance"] * 1000) + " > 0",
    "reads_nested": "reads: [[balance]]",
    "reads_map": "reads: [{balance: 1}]",
    "long_int": "guard: balance < " + "9" * 5000,
}


def _bank_with(line: str) -> str:
    text = (ROOT / "examples" / "bank_account.yaml").read_text()
    return text.replace("guard: not hold and balance > 0", line)


@pytest.mark.parametrize("name", sorted(DEEP))
def test_pathological_rules_are_located_errors(name: str) -> None:
    with pytest.raises(SpecError) as info:
        loads_spec(_bank_with(DEEP[name]), FILE)
    p = info.value.problems[0]
    assert p.file == FILE and p.line == 18, p


@pytest.mark.parametrize("depth", [1000, 5000, 100_000])
def test_deep_yaml_is_refused_before_parsing(depth: int) -> None:
    for text in ("machine: m\nvars: " + "[" * depth + "]" * depth + "\n",
                 "machine: m\nvars: " + "{a: " * depth + "1" + "}" * depth + "\n",
                 "machine: m\nvars:\n" + "".join("  " * i + "- \n" for i in range(1, 300))):
        with pytest.raises(SpecError, match="nested too deeply") as info:
            loads_spec(text, FILE)
        assert info.value.problems[0].line is not None


@pytest.mark.parametrize("name", ["sum", "reads_nested"])
def test_cli_json_error_object_and_exit_2(tmp_path: Path, name: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(_bank_with(DEEP[name]))
    run = subprocess.run([sys.executable, "-m", "convergent", "check", str(spec), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    err = json.loads(run.stdout)["error"]
    assert err["kind"] == "spec"
    assert err["problems"][0]["file"] == str(spec) and err["problems"][0]["line"] == 18
    assert f"{spec}:18:" in run.stderr


def test_build_error_names_file_and_rule(tmp_path: Path) -> None:
    spec = tmp_path / "bank.yaml"
    spec.write_text("machine: bank\nvars:\n  credit: {int: [0, 3], overflow: error}\n"
                    "events:\n  add:\n    apply: {credit: credit + 1}\n")
    run = subprocess.run([sys.executable, "-m", "convergent", "check", str(spec), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    err = json.loads(run.stdout)["error"]
    assert err["kind"] == "build"
    assert err["problems"][0]["line"] == 5
    assert f"{spec}:5:3: event 'add' assigns credit = 4" in run.stderr
