"""The ``collection:`` block of spec files (issue 15, item 4): loading, located
errors for every malformed piece, and ``convergent check`` on collections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convergent.cli import main
from convergent.collection import Collection
from convergent.errors import SpecError
from convergent.spec.collection import CollectionSpec, collection_of
from convergent.spec.loader import loads_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "collections"

TEMPLATE = """\
machine: account
vars:
  status: {enum: [applied, open, frozen]}
  credit: {int: [0, 3]}
  flagged: bool
events:
  approve: {guard: status == 'applied', apply: {status: open}}
  grant: {guard: status == 'open' and credit < 3, apply: {credit: credit + 1}}
  repay: {guard: credit > 0, apply: {credit: credit - 1}}
independent: []
"""


def load(block: str, template: str = TEMPLATE) -> CollectionSpec:
    spec = loads_spec(template + block, "coll.yaml")
    assert isinstance(spec, CollectionSpec)
    return spec


def problems(block: str, template: str = TEMPLATE) -> list[str]:
    with pytest.raises(SpecError) as info:
        loads_spec(template + block, "coll.yaml")
    return [str(p) for p in info.value.problems]


def line_of(block: str, needle: str) -> int:
    """The 1-based line of ``needle`` in TEMPLATE + block."""
    for n, line in enumerate((TEMPLATE + block).splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(needle)


def test_a_collection_block_loads_with_its_template() -> None:
    spec = load("""\
collection:
  name: accounts
  key: {name: customer, type: int}
  admission: escrow
  aggregates:
    - {name: capacity, sum: credit, at_most: 5}
    - {name: frozen, count: status == 'frozen', at_most: 1}
""")
    decl = collection_of(spec)
    assert decl is not None
    assert (decl.name, decl.key, decl.key_type, decl.admission) == \
        ("accounts", "customer", "int", "escrow")
    assert [(a.name, a.kind, a.source, a.limit) for a in decl.aggregates] == \
        [("capacity", "sum", "credit", 5), ("frozen", "count", "status == 'frozen'", 1)]
    template = spec.template()
    assert type(template).__name__ == "MachineSpec" and template.name == "account"
    assert [e.name for e in template.events] == ["approve", "grant", "repay"]
    col = Collection.from_spec(spec)
    assert [a.describe() for a in col.aggregates] == \
        ["sum(credit) <= 5", "count(status == 'frozen') <= 1"]
    assert col.key_ok(3) and not col.key_ok("3") and not col.key_ok(True)


def test_a_spec_without_the_block_is_unchanged() -> None:
    spec = loads_spec(TEMPLATE, "plain.yaml")
    assert type(spec).__name__ == "MachineSpec" and collection_of(spec) is None
    assert not Collection.declared_in(spec)
    with pytest.raises(SpecError, match="no collection block"):
        Collection.from_spec(spec)


def test_the_short_key_form_and_defaults() -> None:
    decl = collection_of(load("collection: {name: accounts, key: customer}\n"))
    assert decl is not None
    assert (decl.key, decl.key_type, decl.admission, decl.aggregates) == \
        ("customer", "str", "shared", ())


@pytest.mark.parametrize("block, needle, message", [
    ("collection: [1, 2]\n", "collection:", "collection must be a mapping"),
    ("collection: {key: customer}\n", "collection:", "missing required key 'name'"),
    ("collection: {name: accounts}\n", "collection:", "missing required key 'key'"),
    ("collection: {name: 3x, key: c}\n", "collection:", "collection name '3x'"),
    ("collection: {name: a, key: c, agregates: []}\n", "collection:",
     "did you mean 'aggregates'"),
    ("collection:\n  name: a\n  key: {name: c, type: float}\n", "type: float",
     "key type 'float'"),
    ("collection:\n  name: a\n  key: {type: int}\n", "key: {type", "missing required key 'name'"),
    ("collection:\n  name: a\n  key: c\n  admission: locks\n", "admission:",
     "admission 'locks'"),
    ("collection:\n  name: a\n  key: c\n  aggregates: {x: 1}\n", "aggregates:",
     "aggregates must be a list"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n    - 7\n", "- 7",
     "an aggregate must be a mapping"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n    - {name: n, at_most: 1}\n",
     "- {name: n", "exactly one of 'count"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - {name: n, sum: credit, count: flagged, at_most: 1}\n",
     "- {name: n", "exactly one of 'count"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n    - {name: n, sum: credit}\n",
     "- {name: n", "missing required key 'at_most'"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - name: n\n      sum: credit\n      at_most: -1\n", "at_most: -1", "at_most=-1"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - name: n\n      sum: credit\n      at_most: true\n", "at_most: true",
     "at_most=true"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - name: n\n      sum: credt\n      at_most: 1\n", "sum: credt",
     "did you mean 'credit'"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - name: n\n      sum: flagged\n      at_most: 1\n", "sum: flagged", "a bool var"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - name: n\n      count: credit + 1\n      at_most: 1\n", "count: credit",
     "aggregate 'n'"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - name: n\n      count: colour == 'red'\n      at_most: 1\n", "count: colour",
     "colour"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - name: n\n      count: status == 'applied'\n      at_most: 1\n",
     "count: status", "holds at the initial state"),
    ("collection:\n  name: a\n  key: c\n  aggregates:\n"
     "    - {name: n, sum: credit, at_most: 1}\n    - {name: n, sum: credit, at_most: 2}\n",
     "at_most: 2", "duplicate aggregate name 'n'"),
])
def test_every_malformed_piece_is_located(block: str, needle: str, message: str) -> None:
    found = problems(block)
    line = line_of(block, needle)
    assert any(f"coll.yaml:{line}:" in p and message in p for p in found), (found, line)


def test_a_sum_needs_a_field_that_starts_at_zero_and_is_never_negative() -> None:
    template = TEMPLATE.replace("credit: {int: [0, 3]}", "credit: {int: [-1, 3]}")
    found = problems("collection:\n  name: a\n  key: c\n  aggregates:\n"
                     "    - {name: n, sum: credit, at_most: 1}\n", template)
    assert any("never be negative" in p for p in found), found
    template = TEMPLATE.replace("events:", "initial: {credit: 2}\nevents:")
    found = problems("collection:\n  name: a\n  key: c\n  aggregates:\n"
                     "    - {name: n, sum: credit, at_most: 1}\n", template)
    assert any("is 2 at the initial state" in p for p in found), found


def test_template_and_collection_problems_come_together() -> None:
    template = TEMPLATE.replace("guard: credit > 0", "guard: credit > zero")
    found = problems("collection: {name: a, key: c, admission: maybe}\n", template)
    assert any("zero" in p for p in found) and any("admission 'maybe'" in p for p in found)


def test_an_expression_error_points_at_its_column() -> None:
    block = ("collection:\n  name: a\n  key: c\n  aggregates:\n"
             "    - name: n\n      count: status == 'gone'\n      at_most: 1\n")
    found = problems(block)
    line = line_of(block, "count: status")
    col = (TEMPLATE + block).splitlines()[line - 1].index("status") + 1
    assert any(p.startswith(f"coll.yaml:{line}:") and "gone" in p for p in found), found
    assert any(f"coll.yaml:{line}:{c}:" in p for p in found for c in range(col, col + 20)), \
        found


def test_check_prints_the_collection_report(capsys: pytest.CaptureFixture[str]) -> None:
    passing = EXAMPLES / "credit_accounts.yaml"
    assert main(["check", str(passing)]) == 0
    out = capsys.readouterr().out
    assert "accounts: PASS" in out and "escrow admission" in out
    failing = EXAMPLES / "seat_licenses.yaml"
    assert main(["check", str(failing)]) == 1
    out = capsys.readouterr().out
    assert "cross-key FAIL: activate on user i and activate on user j" in out
    assert "needs 4 users" in out and "reached by" in out
    assert main(["check", str(failing), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "fail" and report["admission"] == "shared"
    cex = report["cross_key"]["counterexample"]
    assert cex["events"] == ["activate", "activate"] and cex["keys_needed"] == 4
    assert cex["other_keys_totals"] == {"seats": 2}


def test_check_exits_2_on_a_malformed_block(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEMPLATE + "collection: {name: a, key: c, admission: maybe}\n")
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:{TEMPLATE.count(chr(10)) + 1}:" in err and "admission 'maybe'" in err


def test_the_examples_mean_what_their_comments_say() -> None:
    from dataclasses import replace

    from convergent.spec.loader import load_spec
    spec = load_spec(EXAMPLES / "credit_accounts.yaml")
    assert isinstance(spec, CollectionSpec) and spec.collection is not None
    ok = spec.to_collection().check()
    assert ok.ok and ok.admission == "escrow" and not ok.cross_key_ok
    # the same collection without escrow races
    shared = replace(spec, collection=replace(spec.collection, admission="shared"))
    assert not shared.to_collection().check().ok


def test_a_json_spec_carries_the_block_too() -> None:
    doc = {"machine": "m", "vars": {"on": "bool"},
           "events": {"flip": {"apply": {"on": "not on"}}}, "independent": [],
           "collection": {"name": "lights", "key": {"name": "room", "type": "int"},
                          "aggregates": [{"name": "lit", "count": "on", "at_most": 2}]}}
    spec = loads_spec(json.dumps(doc, indent=1), "lights.json")
    decl = collection_of(spec)
    assert decl is not None and decl.key_type == "int" and decl.aggregates[0].limit == 2
    doc["collection"]["aggregates"][0]["at_most"] = "two"
    with pytest.raises(SpecError, match=r"lights\.json:\d+:\d+: aggregate 'lit': at_most='two'"):
        loads_spec(json.dumps(doc, indent=1), "lights.json")
