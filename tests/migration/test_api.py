"""The Python API: maps as callables, Registries and built Machines as
inputs, enum and family translation, and the errors of bad inputs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from convergent import Registry
from convergent.errors import SpecError
from convergent.migration import (
    MigrationError,
    check_migration,
    classify_migration,
    plan_switch,
)
from convergent.migration.build import make_migration
from convergent.spec.model import StateView

from .machines import ACCOUNT_V1, ACCOUNT_V2, named, spec

V1, V2 = spec(ACCOUNT_V1), spec(ACCOUNT_V2)


def outcomes(report: Any) -> dict[str, str]:
    return {v.delivery: v.outcome for v in report.verdicts}


def test_a_callable_map_classifies_like_the_same_expressions() -> None:
    def tier(s: StateView) -> dict[str, Any]:
        return {"tier": "gold" if s["balance"] >= 3 else "basic"}

    by_fn = check_migration(V1, V2, tier, events={"withdraw": "debit"})
    by_expr = check_migration(V1, V2, {"tier": "if balance >= 3 then gold else basic"},
                              events={"withdraw": "debit"})
    assert outcomes(by_fn) == outcomes(by_expr) == {
        "exactly-once": "unsafe", "at-least-once": "unsafe", "causal": "online"}
    assert by_fn.to_dict()["verdicts"] == by_expr.to_dict()["verdicts"]


def test_a_callable_map_that_changes_the_state_is_caught() -> None:
    """A map that forgets the balance (tier from nothing): DS fails."""
    report = check_migration(V1, V2, lambda s: {"balance": 0, "tier": "basic"},
                             events={"withdraw": "debit"}, delivery="causal")
    v = report.verdicts[0]
    assert v.outcome != "online"
    assert v.online_witness is not None and v.online_witness.condition == "DS"


def test_a_nondeterministic_map_is_refused() -> None:
    counter = itertools.count()

    def flaky(s: StateView) -> dict[str, Any]:
        return {"tier": "gold" if next(counter) % 2 else "basic"}

    with pytest.raises(MigrationError, match="not deterministic"):
        check_migration(V1, V2, flaky, events={"withdraw": "debit"})


def test_a_map_failing_only_at_unreachable_states_is_fine() -> None:
    v1 = spec(ACCOUNT_V1.replace("vars: {balance: {int: [0, 4]}",
                                 "vars: {balance: {int: [0, 5]}").replace(
        "apply: {balance: balance + 1}}", "guard: balance < 4, apply: {balance: balance + 1}}"))

    def tier(s: StateView) -> dict[str, Any]:
        if s["balance"] == 5:          # never reached from the initial state
            raise RuntimeError("boom")
        return {"balance": min(s["balance"], 4), "tier": "gold" if s["balance"] >= 3 else "basic"}

    report = check_migration(v1, V2, tier, events={"withdraw": "debit"}, delivery="causal")
    assert report.verdicts[0].outcome == "online"


def test_a_map_failing_at_a_reachable_state_names_it() -> None:
    def tier(s: StateView) -> dict[str, Any]:
        if s["balance"] == 2:
            raise RuntimeError("boom")
        return {"tier": "basic"}

    with pytest.raises(MigrationError, match=r"raised RuntimeError: boom at the reachable v1 "
                                             r"state \{balance=2, frozen=false\}") as info:
        check_migration(V1, V2, tier, events={"withdraw": "debit"})
    assert info.value.state == {"balance": 2, "frozen": False}


@pytest.mark.parametrize("result, words", [
    ({"tier": "platinum"}, "tier='platinum'"),
    ({"tier": "basic", "colour": 1}, "'colour', not vars of v2"),
    ({"tier": "basic", "balance": 9}, "balance=9"),
    (3, "expected a {v2 var: value} mapping"),
])
def test_a_map_result_outside_v2_is_an_error(result: Any, words: str) -> None:
    with pytest.raises(MigrationError) as info:
        check_migration(V1, V2, lambda s: result, events={"withdraw": "debit"})
    assert words in str(info.value)


def test_machines_that_fail_their_own_check_are_refused() -> None:
    broken = spec(ACCOUNT_V1.replace("independent: [[deposit, freeze]]",
                                     "independent: [[deposit, withdraw]]"))
    with pytest.raises(MigrationError, match=r"v1 \('account'\) does not pass its own check"):
        check_migration(broken, V2, {"tier": "basic"}, events={"withdraw": "debit"})


def test_registries_and_machines_are_inputs() -> None:
    r1 = Registry("counter")
    r1.int("n", 0, 3)
    r1.event("inc", apply={"n": "n + 1"})
    r2 = Registry("counter")
    r2.int("n", 0, 3)
    r2.bool("big")
    r2.event("inc", apply={"n": "n + 1", "big": "n + 1 >= 2"})
    by_registry = check_migration(r1, r2, {"big": "n >= 2"})
    assert outcomes(by_registry) == {"exactly-once": "online", "at-least-once": "unsafe",
                                     "causal": "online"}
    by_machine = check_migration(r1.build(), r2.build(), {"big": "n >= 2"})
    assert outcomes(by_machine) == outcomes(by_registry)
    with pytest.raises(TypeError, match="v1 must be"):
        check_migration("nope", r2)


def test_enum_values_translate_by_name() -> None:
    v1 = spec("""
machine: order
vars: {status: {enum: [new, paid, gone]}}
events:
  pay: {guard: status == new, apply: {status: paid}}
""")
    gained = spec("""
machine: order
vars: {status: {enum: [draft, new, paid, gone]}}
events:
  pay: {guard: status == new, apply: {status: paid}}
""")
    lost = spec("""
machine: order
vars: {status: {enum: [new, paid]}}
events:
  pay: {guard: status == new, apply: {status: paid}}
""")
    assert outcomes(check_migration(v1, gained))["causal"] == "online"
    # ``gone`` is never reached in v1: losing it is fine
    assert outcomes(check_migration(v1, lost))["causal"] == "online"
    reach_gone = spec("""
machine: order
vars: {status: {enum: [new, paid, gone]}}
events:
  pay: {guard: status == new, apply: {status: paid}}
  drop: {apply: {status: gone}}
""")
    with pytest.raises(MigrationError, match="status = gone, which v2's enum"):
        check_migration(reach_gone, lost, events={"drop": None})


def test_families_map_instance_by_instance() -> None:
    v1 = spec("""
machine: wallet
vars: {n: {int: [0, 4]}}
events:
  add: {params: {k: {int: [1, 2]}}, apply: {n: n + k}}
""")
    v2 = spec("""
machine: wallet
vars: {n: {int: [0, 4]}}
events:
  credit: {params: {k: {int: [1, 2]}}, apply: {n: n + k}}
""")
    mig = make_migration(v1, v2, events={"add": "credit"})
    assert mig.events == {"add(1)": "credit(1)", "add(2)": "credit(2)"}
    assert outcomes(classify_migration(mig))["causal"] == "online"
    with pytest.raises(SpecError, match="not an event family"):
        make_migration(v1, v2, events={"add": "nope"})


def test_the_report_counts_states_the_map_leaves_to_repairs() -> None:
    report = classify_migration(named("bits"))
    assert report.map.reachable == 4 and report.map.repaired == 1
    assert report.map.example is not None
    assert report.map.example["mapped"]["both"] is False
    assert report.map.example["normal"]["both"] is True
    assert "needed v2's repairs" in report.render_text()


def test_plan_refuses_bad_replica_lists_and_bad_deliveries() -> None:
    report = classify_migration(named("account"), ("causal",))
    with pytest.raises(ValueError, match="at least one"):
        plan_switch(report, [])
    with pytest.raises(ValueError, match="repeat"):
        plan_switch(report, ["a", "a"])
    with pytest.raises(KeyError):
        plan_switch(report, ["a"], "exactly-once")
    with pytest.raises(ValueError, match="delivery="):
        check_migration(V1, V2, {"tier": "basic"}, events={"withdraw": "debit"},
                        delivery="sometimes")


def test_witness_runs_render_translations_and_drops() -> None:
    from convergent.migration.model import Step
    from convergent.migration.witness import render_run
    steps = [Step("v1", "deposit"), Step("switch"), Step("v1", "withdraw"),
             Step("v1", "freeze"), Step("v2", "debit")]
    text = render_run(steps, {"deposit": "deposit", "withdraw": "debit", "freeze": None})
    assert text == ("deposit under v1, switch, withdraw (v1, in flight, as debit), "
                    "freeze (v1, in flight: dropped), debit under v2")


def test_the_public_names_are_pinned() -> None:
    import convergent.migration as mod
    assert mod.__all__ == sorted(mod.__all__, key=lambda n: (not n.isupper(), n))
    assert set(mod.__all__) == {
        "DELIVERIES", "Condition", "Delivery", "MapFacts", "Migration", "MigrationError",
        "MigrationReport", "Outcome", "Plan", "StateMap", "Step", "Verdict", "Witness",
        "check_migration", "classify_migration", "plan_switch"}
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_the_docstring_example_runs() -> None:
    import doctest

    from convergent.migration import check
    failures, tried = doctest.testmod(check, raise_on_error=False)
    assert tried > 0 and failures == 0
