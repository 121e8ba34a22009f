"""Schemas: validation reports every problem, normalization follows the reference."""

from __future__ import annotations

import pytest

from convergent.relational import EXCEPTION, Schema, SchemaError, State


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SchemaError) as info:
        Schema.of(A=State(require=("Nope",), remove=("B",)), B=State(after=("Gone",)),
                  C=State(require=("A",), remove=("A",)))
    messages = [p.message for p in info.value.problems]
    assert messages == [
        "state 'A': require names unknown state 'Nope'",
        "state 'B': after names unknown state 'Gone'",
        "state 'C' both requires and removes 'A'",
    ]


@pytest.mark.parametrize("name", ["lower", "Any", "Not-Ident", ""])
def test_state_names_are_camel_case_identifiers(name: str) -> None:
    with pytest.raises(SchemaError):
        Schema(((name, State()),))


def test_relation_fields_reject_a_bare_string() -> None:
    with pytest.raises(SchemaError, match=r"require='B' \(expected a sequence"):
        State(require="B")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="expected a bool"):
        State(auto=1)  # type: ignore[arg-type]
    assert State(require=["B", "C"]).require == ("B", "C")  # type: ignore[arg-type]


def test_duplicates_and_wrong_values() -> None:
    with pytest.raises(SchemaError, match="duplicate state 'A'"):
        Schema((("A", State()), ("A", State())))
    with pytest.raises(SchemaError, match="expected a State"):
        Schema((("A", {"auto": True}),))  # type: ignore[arg-type]


def test_normalization_like_the_reference() -> None:
    schema = Schema.of(
        Connecting=State(remove=("Connecting", "Connected"), after=("Connecting",)),
        Connected=State(add=("Ready",), remove=("Ready", "Connecting"), require=("Connected",)),
        Ready=State(),
    )
    assert schema["Connecting"].remove == ("Connected",)
    assert schema["Connecting"].after == ()
    assert schema["Connected"].remove == ("Connecting",)
    assert schema["Connected"].require == ()
    assert schema.names[-1] == EXCEPTION and schema[EXCEPTION].multi


def test_declared_exception_state_is_kept() -> None:
    schema = Schema.of(Exception=State(multi=True, remove=("Ok",)), Ok=State())
    assert schema.names == ("Exception", "Ok")
    assert schema["Exception"].remove == ("Ok",)


def test_from_dict_extend_merge_and_to_dict() -> None:
    schema = Schema.from_dict({"A": {"auto": True}, "B": State(require=("A",))}, name="s")
    assert schema.name == "s" and schema["A"].auto
    extended = schema.extend(C=State(remove=("B",)))
    assert extended.names == ("A", "B", "Exception", "C") and extended.name == "s"
    merged = schema.merge(Schema.of(A=State(multi=True)))
    assert merged["A"].multi and not merged["A"].auto
    assert schema.to_dict() == {"name": "s", "states": {
        "A": {"auto": True}, "B": {"require": ["A"]}, "Exception": {"multi": True}}}
    assert "A" in schema and "Z" not in schema and len(schema) == 3 and next(iter(schema)) == "A"
    with pytest.raises(SchemaError, match="state 'A'"):
        Schema.from_dict({"A": {"requires": ["B"]}})
    assert Schema.of(A=State()) == Schema.of(A=State())
    assert hash(Schema.of(A=State())) == hash(Schema.of(A=State()))
