"""A machine checked by components exports (its components, each a machine
file, in one JSON document) and loads back to a machine that runs the same;
edited, inconsistent or unverified files are refused before anything runs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convergent import Registry
from convergent.composed import ComposedMachine
from convergent.engine.check import analyze_any
from convergent.engine.compose import ComposedAnalysis
from convergent.errors import BuildError
from convergent.export import ExportError, MachineFileError
from convergent.export.composed import composed_document, composed_from_document
from strategies import GMachine
from test_compose import composite, counters, shared_composite


def region() -> Registry:
    r = Registry("region")
    r.bool("eu")
    r.enum("tier", "free", "paid")      # no rule touches it: a constant
    for k in range(3):
        r.int(f"n{k}", 0, 7)
        r.invariant(f"cap{k}", holds=f"not eu or n{k} <= 5", repair={f"n{k}": 5})
        r.event(f"add{k}", guard=f"n{k} < 7", apply={f"n{k}": f"n{k} + 1"})
    r.independent("add0", "add1")
    r.independent("add1", "add2")
    return r


def _same_runs(a: ComposedMachine, b: ComposedMachine, runs: list[list[int]]) -> None:
    assert a.vars == b.vars and a.events == b.events
    assert a.independent == b.independent and a.policy_digest == b.policy_digest
    assert a.decode(a.initial) == b.decode(b.initial)
    for run in runs:
        sa, sb = a.initial, b.initial
        for k in run:
            e = a.events[k % len(a.events)]
            sa, sb = a.apply(sa, e), b.apply(sb, e)
            assert a.decode(sa) == b.decode(sb)
            assert a.is_valid(sa) == b.is_valid(sb)
            assert a.enabled(sa) == b.enabled(sb)
        assert sa.id == sb.id


def test_round_trip_with_shared_vars_and_constants(tmp_path: Path) -> None:
    m = region().build(method="compose")
    assert isinstance(m, ComposedMachine)
    assert m.report.to_dict()["method"]["shared_read_only"] == ["eu"]
    for name in ("m.json", "m.json.gz"):
        h = m.export(str(tmp_path / name))
        back = ComposedMachine.load(str(tmp_path / name))
        assert back.report.to_dict() == m.report.to_dict()
        assert back.decode(back.initial)["tier"] == "free"
        assert composed_document(back)["hash"] == h
        _same_runs(m, back, [[0, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0], [2] * 9])


def test_two_to_the_64_states_export_small(tmp_path: Path) -> None:
    m = counters(32).build()
    m.export(str(tmp_path / "c.json.gz"))
    assert (tmp_path / "c.json.gz").stat().st_size < 40_000
    back = ComposedMachine.load(str(tmp_path / "c.json.gz"))
    assert back.size == 2**64
    _same_runs(m, back, [[3, 3, 31, 3, 3], list(range(64))])


def _built(spec: Any) -> ComposedMachine | None:
    an = analyze_any(spec, method="compose")
    if not isinstance(an, ComposedAnalysis) or not an.report.ok:
        return None
    return ComposedMachine._from_analysis(an)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=st.one_of(composite(), shared_composite()),
       runs=st.lists(st.lists(st.integers(0, 50), max_size=12), min_size=1, max_size=4))
def test_round_trip_of_generated_machines(g: GMachine, runs: list[list[int]]) -> None:
    try:
        m = _built(g.to_spec())
    except BuildError:  # a machine the check refuses has nothing to export
        m = None
    assume(m is not None)
    assert m is not None
    back = composed_from_document(json.loads(json.dumps(composed_document(m))))
    _same_runs(m, back, runs)


def _doc(tmp_path: Path) -> dict[str, Any]:
    region().build(method="compose").export(str(tmp_path / "m.json"))
    return json.loads((tmp_path / "m.json").read_text())


def test_edits_are_refused(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    edited = json.loads(json.dumps(doc))
    edited["name"] = "other"
    with pytest.raises(MachineFileError, match="hash") as info:
        composed_from_document(edited)
    assert info.value.reason == "hash"
    edited = json.loads(json.dumps(doc))
    row = edited["components"][1]["step"][0]
    row[0] = (row[0] + 1) % len(row)
    with pytest.raises(MachineFileError, match="hash"):
        composed_from_document(edited)
    (tmp_path / "t.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode())[:-20])
    with pytest.raises(MachineFileError, match="gzip") as info:
        ComposedMachine.load(str(tmp_path / "t.json.gz"))
    assert info.value.path == str(tmp_path / "t.json.gz")


def test_components_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    doc = _doc(tmp_path)
    # the same event in two components
    two = json.loads(json.dumps(doc))
    two["components"].append(two["components"][0])
    with pytest.raises(MachineFileError, match="two components"):
        composed_from_document(two, verify=False)
    # a component missing: its vars and events are in none
    gone = json.loads(json.dumps(doc))
    gone["components"].pop()
    with pytest.raises(MachineFileError, match="in no component|are in none"):
        composed_from_document(gone, verify=False)
    # a var with another encoding than the machine declares
    enc = json.loads(json.dumps(doc))
    enc["vars"] = [dict(v, max=9, domain=10) if v["name"] == "n0" else v for v in enc["vars"]]
    with pytest.raises(MachineFileError, match="encoding"):
        composed_from_document(enc, verify=False)
    bad = json.loads(json.dumps(doc))
    bad["constants"] = {"tier": "gold"}
    with pytest.raises(MachineFileError, match="constant"):
        composed_from_document(bad, verify=False)
    with pytest.raises(MachineFileError, match="unknown keys"):
        composed_from_document({**doc, "extra": 1}, verify=False)


def test_a_component_that_writes_a_shared_var_is_refused(tmp_path: Path) -> None:
    """Two machines that write the var they share cannot be a product: a file
    that claims so (built by hand, hashes redone) is refused."""
    from convergent.export._document import machine_document as _machine_document
    from convergent.export.composed import _hash
    r = Registry("w")
    r.bool("flag")
    r.int("a", 0, 1)
    r.event("set", apply={"flag": "true", "a": 1})
    part = r.build()
    doc = _doc(tmp_path)
    evil = json.loads(json.dumps(doc))
    evil["vars"] = [{"name": "flag", "kind": "bool", "domain": 2},
                    {"name": "a", "kind": "int", "domain": 2, "min": 0, "max": 1,
                     "overflow": "clamp"}]
    evil["constants"] = {}
    evil["events"] = ["set", "set2"]
    evil["independent"] = []
    r2 = Registry("w2")
    r2.bool("flag")
    r2.event("set2", guard="flag", apply={})
    evil["components"] = [_machine_document(part), _machine_document(r2.build())]
    evil["hash"] = _hash(evil)
    with pytest.raises(MachineFileError, match="changes a var it shares"):
        composed_from_document(evil)


def test_unverified_and_binary(tmp_path: Path) -> None:
    r = Registry("bad")
    for k in range(2):
        r.int(f"x{k}", 0, 2)
        r.event(f"inc{k}", apply={f"x{k}": f"min(x{k} + 1, 2)"})
        r.event(f"dbl{k}", apply={f"x{k}": f"min(x{k} * 2, 2)"})
    r.independent("inc0", "dbl0")
    an = analyze_any(r.spec(), method="compose")
    assert isinstance(an, ComposedAnalysis) and an.report.verdict == "fail"
    m = ComposedMachine._from_analysis(an)
    with pytest.raises(ExportError, match="did not pass"):
        m.export(str(tmp_path / "b.json"))
    m.export(str(tmp_path / "b.json"), allow_unverified=True)
    with pytest.raises(MachineFileError, match="did not pass") as info:
        ComposedMachine.load(str(tmp_path / "b.json"))
    assert info.value.reason == "unverified"
    back = ComposedMachine.load(str(tmp_path / "b.json"), allow_unverified=True)
    assert back.report.verdict == "fail"
    good = region().build(method="compose")
    with pytest.raises(ExportError, match="json"):
        good.export(str(tmp_path / "m.cvm"))


def test_cli_exports_a_machine_checked_by_components(tmp_path: Path) -> None:
    from convergent.cli import main
    from convergent.export import load_machine
    spec = tmp_path / "big.yaml"
    lines = ["machine: counters", "vars:"] + [f"  c{i}: {{int: [0, 3]}}" for i in range(16)]
    lines += ["events:"] + [f'  inc{i}: {{apply: {{c{i}: "min(c{i} + 1, 3)"}}}}'
                            for i in range(16)]
    spec.write_text("\n".join(lines) + "\n")
    out = tmp_path / "big.json"
    assert main(["export", str(spec), "-o", str(out)]) == 0
    m = ComposedMachine.load(str(out))
    assert m.size == 4**16 and len(m.components) == 16
    assert m.decode(m.run(["inc3", "inc3", "inc15"]))["c3"] == 2
    with pytest.raises(MachineFileError, match="ComposedMachine.load"):
        load_machine(str(out))
    assert main(["export", str(spec), "-o", str(tmp_path / "big.cvm")]) == 2
