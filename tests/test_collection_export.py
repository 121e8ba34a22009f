"""Collection machines as files (issue 15, item 4): export, load back to an
equal machine that behaves the same, and refuse edited or malformed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.collection import Collection, CollectionMachine
from convergent.errors import BuildError, SpecError
from convergent.export import ExportError, MachineFileError
from convergent.export.collection import (
    collection_document,
    collection_from_document,
    export_collection,
    load_collection,
)
from convergent.machine import Machine
from test_collection import collections, subscription


def built(col: Collection) -> CollectionMachine | None:
    """The collection's machine, verified or not (None when it has no tables)."""
    try:
        report = col.check()
    except (SpecError, BuildError):
        return None
    if not report.template.wfc.ok:
        return None
    from convergent.engine.check import analyze
    return CollectionMachine(col, Machine._from_analysis(analyze(col.template)), report)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(col=collections(), runs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20)),
                                        max_size=30),
       gz=st.booleans())
def test_export_then_load_gives_an_equal_machine(tmp_path_factory: Any, col: Collection,
                                                 runs: list[tuple[int, int]],
                                                 gz: bool) -> None:
    cm = built(col)
    if cm is None:
        return
    path = tmp_path_factory.mktemp("c") / ("c.json.gz" if gz else "c.json")
    digest = export_collection(cm, path, allow_unverified=True)
    back = load_collection(path, allow_unverified=True)
    assert back == cm and back.verified == cm.verified
    assert back.key == cm.key and back.admission == cm.admission
    assert [a.describe() for a in back.aggregates] == [a.describe() for a in cm.aggregates]
    # the same behaviour, event by event
    events = cm.template.events
    steps = [(k, events[e % len(events)]) for k, e in runs] if events else []
    assert back.decode(back.run(steps)) == cm.decode(cm.run(steps))
    # and the same file again
    assert collection_document(back, allow_unverified=True)["hash"] == digest


def test_an_unverified_collection_needs_consent(tmp_path: Path) -> None:
    col = Collection("subs", subscription()).count("two", "status == active", at_most=2)
    cm = built(col)
    assert cm is not None and not cm.verified
    with pytest.raises(ExportError, match="did not pass"):
        export_collection(cm, tmp_path / "c.json")
    export_collection(cm, tmp_path / "c.json", allow_unverified=True)
    with pytest.raises(MachineFileError, match="did not pass") as info:
        load_collection(tmp_path / "c.json")
    assert info.value.reason == "unverified"
    assert load_collection(tmp_path / "c.json", allow_unverified=True) == cm


def test_a_built_escrow_collection_round_trips_through_its_methods(tmp_path: Path) -> None:
    col = Collection("seats", subscription(), key="user", admission="escrow").sum(
        "cap", "seats", at_most=4)
    cm = col.build()
    cm.export(str(tmp_path / "seats.json"))
    back = CollectionMachine.load(str(tmp_path / "seats.json"))
    assert back == cm and back.verified and back.key == "user"
    doc = json.loads((tmp_path / "seats.json").read_text())
    assert doc["template"]["name"] == "subscription"
    # the template inside is an ordinary machine document
    from convergent.export._json import machine_from_json
    m = machine_from_json(doc["template"], verify=True, allow_unverified=False, extra_meta={})
    assert m.events == cm.template.events


def _doc() -> dict[str, Any]:
    col = Collection("seats", subscription(), admission="escrow").sum("cap", "seats", at_most=4)
    return collection_document(col.build())


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d.update(name="other"), "hash"),
    (lambda d: d["aggregates"][0].update(limit=40), "hash"),
    (lambda d: d["contributions"][0].__setitem__(0, 9), "hash"),
    (lambda d: d["template"]["step"][0].__setitem__(
        0, (d["template"]["step"][0][0] + 1) % d["template"]["states"]), "hash"),
    (lambda d: d.update(format="x"), "format"),
    (lambda d: d.update(format_version=9), "version"),
    (lambda d: d.pop("key"), "format"),
    (lambda d: d.update(extra=1), "format"),
])
def test_edited_or_malformed_files_are_refused(edit: Any, reason: str) -> None:
    doc = _doc()
    edit(doc)
    with pytest.raises(MachineFileError) as info:
        collection_from_document(doc)
    assert info.value.reason == reason, str(info.value)


@pytest.mark.parametrize("edit", [
    lambda d: d["aggregates"][0].update(kind="max"),
    lambda d: d["aggregates"][0].update(limit=-1),
    lambda d: d["aggregates"][0].update(limit=True),
    lambda d: d["contributions"][0].append(0),
    lambda d: d["contributions"][0].__setitem__(0, -1),
    lambda d: d["contributions"].append([]),
    lambda d: d.update(key_type="float"),
    lambda d: d.update(admission="locks"),
    lambda d: d["aggregates"][0].update(source="nope"),
])
def test_malformed_content_is_refused_even_with_a_matching_hash(edit: Any) -> None:
    from convergent.export.collection import _hash
    doc = _doc()
    edit(doc)
    doc["hash"] = _hash(doc)
    with pytest.raises(MachineFileError) as info:
        collection_from_document(doc)
    assert info.value.reason == "format", str(info.value)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "collections"


def test_convergent_export_writes_a_collection_file(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from convergent.cli import main
    out = tmp_path / "accounts.json.gz"
    assert main(["export", str(EXAMPLES / "credit_accounts.yaml"), "-o", str(out)]) == 0
    assert "verified" in capsys.readouterr().out
    cm = load_collection(out)
    assert cm.name == "accounts" and cm.admission == "escrow" and cm.verified
    from convergent.spec.loader import load_spec
    assert cm == Collection.from_spec(load_spec(EXAMPLES / "credit_accounts.yaml")).build()
    failing = str(EXAMPLES / "seat_licenses.yaml")
    assert main(["export", failing, "-o", str(tmp_path / "s.json")]) == 1
    assert "did not pass" in capsys.readouterr().err and not (tmp_path / "s.json").exists()
    assert main(["export", failing, "-o", str(tmp_path / "s.json"), "--allow-unverified"]) == 0
    assert not load_collection(tmp_path / "s.json", allow_unverified=True).verified
    assert main(["export", failing, "-o", str(tmp_path / "s.cvm")]) == 2
    assert "written as JSON" in capsys.readouterr().err
