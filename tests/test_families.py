"""Event families (issue 15, item 1): parameterized events are checked
instance by instance, named ``withdraw(40)``, applied with their arguments,
and carried by exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convergent import Machine, MachineUsageError, Registry
from convergent.engine import check
from convergent.engine.check import analyze
from convergent.errors import SpecError
from convergent.spec.loader import loads_spec
from test_soundness import assert_engine_matches

ACCOUNT = """
machine: account
vars:
  balance: {{int: [0, {top}]}}
  frozen: bool
events:
  deposit:
    params: {{amount: {{int: [1, {k}]}}}}
    apply: {{balance: balance + amount}}
  withdraw:
    params: {{amount: {{int: [1, {k}]}}}}
    guard: balance >= amount and not frozen
    apply: {{balance: balance - amount}}
  freeze:
    apply: {{frozen: true}}
independent:
{pairs}
"""


def _account(top: int = 6, k: int = 3, pairs: str = "  - [deposit, deposit]\n"
             "  - [deposit, freeze]\n") -> str:
    return ACCOUNT.format(top=top, k=k, pairs=pairs)


def _name(instance: str) -> str:
    return instance.replace("(", "_").replace(")", "")


def _expanded(top: int, k: int) -> str:
    """The same machine with every instance written out by hand (as
    ``deposit_1`` ...: event names in a spec are identifiers)."""
    events = []
    for a in range(1, k + 1):
        events.append(f"  deposit_{a}:\n    apply: {{balance: balance + {a}}}")
    for a in range(1, k + 1):
        events.append(f"  withdraw_{a}:\n    guard: balance >= {a} and not frozen\n"
                      f"    apply: {{balance: balance - {a}}}")
    events.append("  freeze:\n    apply: {frozen: true}")
    return ("machine: account\nvars:\n  balance: {int: [0, %d]}\n  frozen: bool\nevents:\n"
            % top + "\n".join(events) + "\n")


def test_instances_are_events_named_with_their_arguments() -> None:
    spec = loads_spec(_account())
    assert [e.name for e in spec.events] == [
        "deposit(1)", "deposit(2)", "deposit(3)", "withdraw(1)", "withdraw(2)", "withdraw(3)",
        "freeze"]
    assert [f.name for f in spec.families] == ["deposit", "withdraw"]
    # [deposit, deposit]: distinct instances; [deposit, freeze]: all three
    assert set(map(frozenset, spec.independent)) == {
        frozenset(p) for p in [("deposit(1)", "deposit(2)"), ("deposit(1)", "deposit(3)"),
                               ("deposit(2)", "deposit(3)"), ("deposit(1)", "freeze"),
                               ("deposit(2)", "freeze"), ("deposit(3)", "freeze")]}


@settings(max_examples=40, deadline=None)
@given(top=st.integers(1, 8), k=st.integers(1, 4),
       pairs=st.lists(st.sampled_from(["[deposit, deposit]", "[deposit, freeze]",
                                       "[withdraw, freeze]", "[deposit, withdraw]",
                                       "[withdraw, withdraw]"]), min_size=1, max_size=3,
                      unique=True),
       scope=st.sampled_from(["reachable", "all"]))
def test_family_verdicts_match_the_reference(top, k, pairs, scope) -> None:
    """Every instance and every pair of instances, held to the brute-force
    reference; and the family form means exactly the hand-expanded machine
    (same tables, same digest)."""
    spec = loads_spec(_account(top, k, "".join(f"  - {p}\n" for p in pairs)))
    got = assert_engine_matches(spec, scope)
    assert got is not None
    by_hand = loads_spec(_expanded(top, k) + "independent: [" + ", ".join(
        f"[{_name(a)}, {_name(b)}]" for a, b in spec.independent) + "]\n")
    a, b = analyze(spec, scope=scope), analyze(by_hand, scope=scope)
    assert a.report.verdict == b.report.verdict
    assert a.report.cc1.ok == b.report.cc1.ok
    assert (a.step == b.step).all()


def test_counterexample_names_the_instances() -> None:
    report = check(loads_spec(_account(pairs="  - [withdraw, freeze]\n")))
    assert report.verdict == "fail"
    cex = report.cc1.counterexample
    assert cex.events[0].startswith("withdraw(") and cex.events[1] == "freeze"


def _python_account(top: int = 6, k: int = 3) -> Registry:
    r = Registry("account")
    bal, frozen = r.int("balance", 0, top), r.bool("frozen")
    r.event("deposit", params={"amount": (1, k)},
            apply=lambda s, amount: s.set(bal, s[bal] + amount))
    r.event("withdraw", params={"amount": range(1, k + 1)},
            guard=lambda s, amount: s[bal] >= amount and not s[frozen],
            apply=lambda s, amount: s.set(bal, s[bal] - amount))
    r.event("freeze", apply=lambda s: s.set(frozen, True))
    r.independent("deposit", "deposit")
    r.independent("deposit", "freeze")
    return r


def test_python_families_mean_the_same_as_yaml() -> None:
    py = _python_account().check()
    yml = check(loads_spec(_account()))
    assert py.policy_digest == yml.policy_digest
    assert py.verdict == yml.verdict == "pass"


def test_machine_applies_an_instance_by_arguments(tmp_path: Path) -> None:
    m = _python_account().build()
    s = m.apply(m.initial, "deposit", 3)
    assert s["balance"] == 3
    assert m.apply(s, "withdraw", 2)["balance"] == 1
    assert m.apply(s, "withdraw(2)") == m.apply(s, "withdraw", 2)
    assert m.apply_id(s.id, "deposit", 1) == m.encode({"balance": 4, "frozen": False}).id
    with pytest.raises(MachineUsageError, match="outside its domain"):
        m.apply(s, "deposit", 4)
    with pytest.raises(MachineUsageError, match="outside its domain"):
        m.apply(s, "deposit", True)
    with pytest.raises(MachineUsageError, match="takes 1 argument"):
        m.apply(s, "deposit", 1, 2)
    with pytest.raises(MachineUsageError, match="not an event family"):
        m.apply(s, "freeze", 1)
    for suffix in (".json", ".json.gz", ".cvm"):
        path = tmp_path / f"account{suffix}"
        m.export(str(path))
        loaded = Machine.load(str(path))
        assert set(loaded.families) == {"deposit", "withdraw"}
        assert loaded.families["deposit"].instances == m.families["deposit"].instances
        assert loaded.apply(loaded.initial, "deposit", 2)["balance"] == 2


def test_edited_families_in_a_file_are_refused(tmp_path: Path) -> None:
    m = _python_account().build()
    path = tmp_path / "account.json"
    m.export(str(path))
    doc = json.loads(path.read_text())
    doc["families"]["deposit"]["instances"] = doc["families"]["deposit"]["instances"][:1]
    path.write_text(json.dumps(doc))
    with pytest.raises(Exception, match="hash|edited|content"):
        Machine.load(str(path))


@pytest.mark.parametrize("body,message", [
    ("params: {balance: bool}\n    apply: {frozen: true}", "name of a var"),
    ("params: {not: bool}\n    apply: {frozen: true}", "keyword"),
    ("params: {}\n    apply: {frozen: true}", "empty"),
    ("params: {p: {int: [3, 1]}}\n    apply: {frozen: true}", "empty int range"),
    ("params: {p: bool}\n    apply: {p: true}", "assigns to param"),
    ("params: {p: bool}\n    apply: {frozen: q}", "unknown name 'q'"),
])
def test_bad_params_are_located_errors(body: str, message: str) -> None:
    text = f"machine: m\nvars:\n  balance: {{int: [0, 3]}}\n  frozen: bool\nevents:\n  e:\n    {body}\n"
    with pytest.raises(SpecError, match=message) as info:
        loads_spec(text, "fam.yaml")
    assert info.value.problems[0].file == "fam.yaml" and info.value.problems[0].line is not None


def test_registry_param_errors() -> None:
    r = Registry("m")
    r.bool("flag")
    with pytest.raises(SpecError, match="name of a var"):
        r.event("e", params={"flag": bool}, apply=lambda s, flag: s)
    with pytest.raises(SpecError, match="expected"):
        r.event("e", params={"p": 3.5}, apply=lambda s, p: s)
    with pytest.raises(SpecError, match="non-empty"):
        r.event("e", params={}, apply=lambda s: s)


def test_enum_and_bool_params() -> None:
    r = Registry("perm")
    role = r.enum("role", "none", "reader", "admin")
    r.bool("locked")
    r.event("grant", params={"to": role, "force": bool},   # a param typed like a var
            guard="not locked or force", apply={"role": "to"})
    r.event("lock", apply={"locked": "true"})
    spec = r.spec()
    assert [e.name for e in spec.events] == [
        "grant(none, false)", "grant(none, true)", "grant(reader, false)",
        "grant(reader, true)", "grant(admin, false)", "grant(admin, true)", "lock"]
    assert_engine_matches(spec)
    r2 = Registry("perm")
    r2.enum("role", "none", "reader", "admin")
    r2.bool("locked")
    r2.event("grant", params={"to": ["none", "reader", "admin"], "force": bool},
             guard=lambda s, to, force: not s["locked"] or force,
             apply=lambda s, to, force: s.set("role", to))
    r2.event("lock", apply=lambda s: s.set("locked", True))
    assert r2.check().policy_digest == r.check().policy_digest
