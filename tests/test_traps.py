"""The classic traps of commutativity checking, each with an explicit expected
answer worked out by hand, and the engine held to the reference on each.

Where a trap has both a spec-text form and a Python-function form, both run:
the text goes through the loader and compiled expressions, the functions
through the engine's traced evaluation.
"""

from __future__ import annotations

import pytest

from convergent.errors import BuildError, ConvergentError
from convergent.spec.model import Var
from reference import reference_check, reference_footprints
from strategies import make_spec
from test_soundness import assert_engine_matches, engine_check


def loads(text: str):
    try:
        from convergent.spec.loader import loads_spec
    except ImportError as exc:
        pytest.skip(f"convergent.spec.loader.loads_spec is not available yet ({exc})")
    return loads_spec(text)


def verify(spec, scope: str = "reachable", strict: bool = False) -> dict:
    """The engine's report, after checking that it agrees with the reference."""
    got = assert_engine_matches(spec, scope, strict, check=engine_check())
    assert got is not None, "unexpected BuildError on both sides"
    return got


FORMS = ["yaml", "python"]


# --------------------------------------------------------------------------
# 1. two events writing the same variable
# --------------------------------------------------------------------------

SAME_VAR_YAML = """
machine: same_var
vars:
  color: {enum: [red, green, blue]}
  other: bool
events:
  paint_green: {apply: {color: green}}
  paint_blue: {apply: {color: blue}}
  touch: {apply: {other: true}}
independent:
  - [touch, paint_green]
  - [paint_green, paint_blue]
"""


def same_var_python():
    return make_spec(
        [Var.enum("color", "red", "green", "blue"), Var.boolean("other")],
        events=[("paint_green", None, lambda s: s.set("color", "green")),
                ("paint_blue", None, lambda s: s.set("color", "blue")),
                ("touch", None, lambda s: s.set("other", True))],
        independent=[("touch", "paint_green"), ("paint_green", "paint_blue")])


@pytest.mark.parametrize("form", FORMS)
def test_two_events_writing_the_same_variable_fail(form) -> None:
    spec = loads(SAME_VAR_YAML) if form == "yaml" else same_var_python()
    got = verify(spec)
    assert got["verdict"] == "fail"
    cex = got["cc1"]["counterexample"]
    assert cex["events"] == ["paint_green", "paint_blue"]
    assert cex["state"] == {"color": "red", "other": False}
    assert cex["trace"] == []
    assert cex["order1"] == {"color": "blue", "other": False}
    assert cex["order2"] == {"color": "green", "other": False}


def test_two_events_writing_the_same_constant_commute() -> None:
    """The converse: writing the same var is not by itself a failure."""
    spec = make_spec([Var.integer("n", 0, 3)],
                     events=[("zero_a", None, lambda s: s.set("n", 0)),
                             ("zero_b", None, lambda s: s.set("n", 0)),
                             ("bump", lambda s: s["n"] == 0, lambda s: s.set("n", 3))],
                     independent=[("zero_a", "zero_b")])
    assert verify(spec)["verdict"] == "pass"


# --------------------------------------------------------------------------
# 2. a guard reading what the other event writes (writes disjoint)
# --------------------------------------------------------------------------

GUARD_READS_YAML = """
machine: door
vars:
  door: {enum: [closed, open]}
  locked: bool
events:
  open_door: {apply: {door: open}}
  lock: {guard: "door == 'closed'", apply: {locked: true}}
independent:
  - [open_door, lock]
"""


def guard_reads_python():
    return make_spec(
        [Var.enum("door", "closed", "open"), Var.boolean("locked")],
        events=[("open_door", None, lambda s: s.set("door", "open")),
                ("lock", lambda s: s["door"] == "closed", lambda s: s.set("locked", True))],
        independent=[("open_door", "lock")])


@pytest.mark.parametrize("form", FORMS)
def test_guard_reading_what_the_other_writes_fails(form) -> None:
    spec = loads(GUARD_READS_YAML) if form == "yaml" else guard_reads_python()
    got = verify(spec)
    assert got["verdict"] == "fail"
    cex = got["cc1"]["counterexample"]
    assert cex["state"] == {"door": "closed", "locked": False}
    assert cex["order1"] == {"door": "open", "locked": False}   # open, then lock is a no-op
    assert cex["order2"] == {"door": "open", "locked": True}


def test_assignment_reading_what_the_other_writes_fails() -> None:
    spec = make_spec([Var.integer("x", 0, 2), Var.integer("y", 0, 2)],
                     events=[("inc_x", None, lambda s: s.set("x", s["x"] + 1)),
                             ("copy", None, lambda s: s.set("y", s["x"]))])
    got = verify(spec)
    assert got["verdict"] == "fail"
    assert got["cc1"]["counterexample"]["state"] == {"x": 0, "y": 0}


# --------------------------------------------------------------------------
# 3. a CC2-only failure: pass, but not --strict
# --------------------------------------------------------------------------

CC2_YAML = """
machine: claim
vars:
  claim: {enum: [open, approved]}
  receipt: bool
  note: bool
invariants:
  - name: approval_needs_receipt
    holds: claim == 'open' or receipt
    repair: {claim: open}
events:
  attach_receipt: {apply: {receipt: true}}
  add_note: {apply: {note: true}}
  approve: {guard: "receipt", apply: {claim: approved}}
independent:
  - [attach_receipt, add_note]
"""


def cc2_python():
    return make_spec(
        [Var.enum("claim", "open", "approved"), Var.boolean("receipt"), Var.boolean("note")],
        invariants=[("approval_needs_receipt",
                     lambda s: s["claim"] == "open" or s["receipt"],
                     lambda s: s.set("claim", "open"))],
        events=[("attach_receipt", None, lambda s: s.set("receipt", True)),
                ("add_note", None, lambda s: s.set("note", True)),
                ("approve", lambda s: s["receipt"], lambda s: s.set("claim", "approved"))],
        independent=[("attach_receipt", "add_note")])


@pytest.mark.parametrize("form", FORMS)
def test_cc2_only_failure_passes_but_not_strict(form) -> None:
    spec = loads(CC2_YAML) if form == "yaml" else cc2_python()
    got = verify(spec)
    assert got["verdict"] == "pass"
    assert got["cc1"]["ok"] and got["cc1"]["ok_all_valid"]
    assert got["cc2"]["ok"] is False
    assert got["cc2"]["counterexample"] == {
        "event": "attach_receipt",
        "state": {"claim": "approved", "receipt": False, "note": False},
        "direct": {"claim": "approved", "receipt": True, "note": False},
        "after_repair": {"claim": "open", "receipt": True, "note": False}}
    strict = verify(spec, strict=True)
    assert strict["verdict"] == "fail"
    assert strict["cc2"]["ok"] is False


# --------------------------------------------------------------------------
# 4. gsm's README order machine (the contract's worked example)
# --------------------------------------------------------------------------

ORDER_YAML = """
machine: order_fulfillment        # required, identifier
version: 1
vars:
  status: {enum: [pending, paid, shipped, cancelled]}
  paid: bool
  inventory: {int: [0, 5]}
  credit: {int: [0, 3], overflow: error}
initial: {status: pending, paid: false}
invariants:
  - name: no_ship_unpaid
    holds: status != 'shipped' or paid
    repair: {status: pending}
    watches: [status, paid]
  - name: stock_non_negative
    holds: inventory >= 0
    repair: {inventory: 0}
events:
  process_payment:
    guard: status == 'pending'
    apply: {status: paid, paid: true}
    writes: [status, paid]
    reads: [status]
  ship_item:
    guard: status == 'paid' and inventory > 0
    apply: {status: shipped, inventory: inventory - 1}
  restock:
    apply: {inventory: inventory + 1}
independent:
  - [process_payment, restock]
  - [ship_item, restock]
"""


def order_python():
    from test_reference import order_machine
    return order_machine()


@pytest.mark.parametrize("form", FORMS)
def test_gsm_order_machine(form) -> None:
    spec = loads(ORDER_YAML) if form == "yaml" else order_python()
    got = verify(spec)
    assert got["verdict"] == "fail"
    assert got["states"] == {"total": 192, "valid": 168, "reachable": 18}
    assert (got["wfc"]["ok"], got["wfc"]["max_depth"]) == (True, 1)
    cc1 = got["cc1"]
    assert (cc1["ok"], cc1["pairs"], cc1["ok_all_valid"]) == (False, 2, False)
    assert cc1["counterexample"] == {
        "events": ["ship_item", "restock"],
        "state": {"status": "paid", "paid": True, "inventory": 0, "credit": 0},
        "trace": ["process_payment"],
        # ship_item then restock: nothing to ship yet, then one in stock
        "order1": {"status": "paid", "paid": True, "inventory": 1, "credit": 0},
        # restock then ship_item: it ships
        "order2": {"status": "shipped", "paid": True, "inventory": 0, "credit": 0}}
    assert got["footprints"]["ship_item"] == {"reads": ["status", "inventory"],
                                              "writes": ["status", "inventory"]}
    assert got["cc2"]["ok"] is False
    assert got["cc2"]["counterexample"] == {
        "event": "process_payment",
        "state": {"status": "shipped", "paid": False, "inventory": 0, "credit": 0},
        "direct": {"status": "pending", "paid": False, "inventory": 0, "credit": 0},
        "after_repair": {"status": "paid", "paid": True, "inventory": 0, "credit": 0}}


# --------------------------------------------------------------------------
# 5. under-declared footprints are errors; over-declared ones are not
# --------------------------------------------------------------------------


def _assert_footprint_lie(build, owner: str, missing: str) -> None:
    """Loading or checking must fail with a ConvergentError naming both."""
    with pytest.raises(ConvergentError) as info:
        spec = build()
        engine_check()(spec)
    message = str(info.value)
    assert owner in message, message
    assert missing in message, message


LIE_EVENT_YAML = """
machine: lie
vars:
  status: {enum: [pending, paid]}
  stock: {int: [0, 2]}
  flag: bool
invariants:
  - name: paid_means_flag
    holds: status != 'paid' or flag
    repair: {flag: true}
    watches: WATCHES
events:
  sell:
    guard: status == 'paid' and stock > 0
    apply: {stock: stock - 1}
    reads: READS
    writes: WRITES
"""


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("which,owner,missing", [
    ("reads", "sell", "stock"),        # the guard's second operand reads it
    ("writes", "sell", "stock"),
    ("watches", "paid_means_flag", "flag"),
])
def test_under_declared_footprint_is_an_error(form, which, owner, missing) -> None:
    declared = {"reads": ["status", "stock"], "writes": ["stock"],
                "watches": ["status", "flag"]}
    declared[which] = [v for v in declared[which] if v != missing]

    if form == "yaml":
        def build():
            text = LIE_EVENT_YAML
            for key, value in declared.items():
                text = text.replace(key.upper(), "[" + ", ".join(value) + "]")
            return loads(text)
    else:
        def build():
            return make_spec(
                [Var.enum("status", "pending", "paid"), Var.integer("stock", 0, 2),
                 Var.boolean("flag")],
                invariants=[("paid_means_flag",
                             lambda s: s["status"] != "paid" or s["flag"],
                             lambda s: s.set("flag", True), declared["watches"])],
                events=[("sell", lambda s: s["status"] == "paid" and s["stock"] > 0,
                         lambda s: s.set("stock", s["stock"] - 1),
                         declared["reads"], declared["writes"])],
                independent=[])
    _assert_footprint_lie(build, owner, missing)


@pytest.mark.parametrize("form", FORMS)
def test_exact_and_over_declared_footprints_are_fine(form) -> None:
    declared = {"reads": ["status", "stock", "flag"], "writes": ["stock", "flag"],
                "watches": ["status", "flag", "stock"]}
    if form == "yaml":
        text = LIE_EVENT_YAML
        for key, value in declared.items():
            text = text.replace(key.upper(), "[" + ", ".join(value) + "]")
        spec = loads(text)
    else:
        spec = make_spec(
            [Var.enum("status", "pending", "paid"), Var.integer("stock", 0, 2),
             Var.boolean("flag")],
            invariants=[("paid_means_flag", lambda s: s["status"] != "paid" or s["flag"],
                         lambda s: s.set("flag", True), declared["watches"])],
            events=[("sell", lambda s: s["status"] == "paid" and s["stock"] > 0,
                     lambda s: s.set("stock", s["stock"] - 1),
                     declared["reads"], declared["writes"])],
            independent=[])
    assert verify(spec)["verdict"] == "pass"


def test_lambda_reading_an_undeclared_var_in_a_rare_branch_is_caught() -> None:
    """A read that happens only at one state of the space still counts."""
    spec = make_spec(
        [Var.integer("n", 0, 3), Var.boolean("vip")],
        events=[("bump", None,
                 lambda s: s.set("n", s["n"] + (2 if s["n"] == 1 and s["vip"] else 1)),
                 ["n"], ["n"])],
        independent=[])
    with pytest.raises(ConvergentError) as info:
        engine_check()(spec)
    assert "bump" in str(info.value) and "vip" in str(info.value)


# --------------------------------------------------------------------------
# 6. footprints a syntactic reading gets wrong
# --------------------------------------------------------------------------


def test_read_only_in_one_branch() -> None:
    """copy reads y only when flag is set: a tracer that ran copy once at a
    flag=false state and kept {flag} as its footprint would call copy and
    inc_y independent. They are not, once set_flag has run."""
    spec = make_spec(
        [Var.boolean("flag"), Var.integer("x", 0, 2), Var.integer("y", 0, 2)],
        events=[("copy", None, lambda s: s.set("x", s["y"] if s["flag"] else 0)),
                ("inc_y", None, lambda s: s.set("y", s["y"] + 1)),
                ("set_flag", None, lambda s: s.set("flag", True))],
        independent=[("copy", "inc_y")])
    got = verify(spec)
    assert got["verdict"] == "fail"
    cex = got["cc1"]["counterexample"]
    assert cex["trace"] == ["set_flag"]
    assert cex["state"] == {"flag": True, "x": 0, "y": 0}
    assert cex["order1"] == {"flag": True, "x": 0, "y": 1}
    assert cex["order2"] == {"flag": True, "x": 1, "y": 1}


def test_guard_reads_only_behind_short_circuit() -> None:
    """The guard reads `armed` only when `door` is open: both reads matter."""
    spec = make_spec(
        [Var.enum("door", "closed", "open"), Var.boolean("armed"), Var.boolean("ringing")],
        events=[("ring", lambda s: s["door"] == "open" and s["armed"],
                 lambda s: s.set("ringing", True)),
                ("arm", None, lambda s: s.set("armed", True)),
                ("open", None, lambda s: s.set("door", "open"))],
        independent=[("ring", "arm")], initial={"door": "closed"})
    got = verify(spec)
    assert got["verdict"] == "fail"
    cex = got["cc1"]["counterexample"]
    assert cex["state"] == {"door": "open", "armed": False, "ringing": False}
    assert cex["trace"] == ["open"]


def test_syntactic_read_that_does_not_matter() -> None:
    """`x - x + 1` mentions x but does not depend on it; the pair commutes."""
    spec = make_spec(
        [Var.integer("x", 0, 3), Var.integer("y", 0, 3)],
        events=[("set_y", None, lambda s: s.set("y", s["x"] - s["x"] + 1)),
                ("inc_x", None, lambda s: s.set("x", s["x"] + 1))])
    assert verify(spec)["verdict"] == "pass"


def test_reads_through_var_objects_and_get() -> None:
    """Reads by Var object and by ``get`` count like reads by name."""
    flag, y = Var.boolean("flag"), Var.integer("y", 0, 2)
    x = Var.integer("x", 0, 2)
    spec = make_spec(
        [flag, x, y],
        events=[("copy", None, lambda s: s.set(x, s.get("y") if s[flag] else 0)),
                ("inc_y", None, lambda s: {y: s[y] + 1}),
                ("set_flag", None, lambda s: s.set("flag", True))],
        independent=[("copy", "inc_y")])
    got = verify(spec)
    assert got["verdict"] == "fail"
    assert got["cc1"]["counterexample"]["trace"] == ["set_flag"]


# --------------------------------------------------------------------------
# more traps
# --------------------------------------------------------------------------

SWAP_YAML = """
machine: swap
vars:
  x: bool
  y: bool
events:
  swap: {apply: {x: y, y: x}}
  set_x: {apply: {x: true}}
"""


@pytest.mark.parametrize("form", FORMS)
def test_assignment_is_simultaneous(form) -> None:
    """{x: y, y: x} swaps; a sequential reading would copy y into both."""
    if form == "yaml":
        spec = loads(SWAP_YAML)
    else:
        spec = make_spec([Var.boolean("x"), Var.boolean("y")],
                         events=[("swap", None, lambda s: s.set("x", s["y"]).set("y", s["x"])),
                                 ("set_x", None, lambda s: s.set("x", True))])
    got = verify(spec)
    assert got["verdict"] == "fail"
    assert got["states"]["reachable"] == 4
    cex = got["cc1"]["counterexample"]
    assert cex["state"] == {"x": False, "y": False}
    assert cex["order1"] == {"x": True, "y": False}    # swap (no change), then set_x
    assert cex["order2"] == {"x": False, "y": True}    # set_x, then swap


def test_divergence_only_at_an_unreachable_valid_state() -> None:
    """Pass in the reachable scope, fail with scope all (trace null) and --strict."""
    spec = make_spec(
        [Var.enum("status", "draft", "archived"), Var.boolean("hold")],
        events=[("release", None, lambda s: s.set("hold", False)),
                ("purge", lambda s: s["status"] == "archived" and not s["hold"],
                 lambda s: s.set("status", "draft"))],
        initial={"status": "draft"})
    got = verify(spec)
    assert got["verdict"] == "pass"
    assert got["cc1"]["ok"] is True and got["cc1"]["ok_all_valid"] is False
    got_all = verify(spec, scope="all")
    assert got_all["verdict"] == "fail"
    cex = got_all["cc1"]["counterexample"]
    assert cex["state"] == {"status": "archived", "hold": True}
    assert cex["trace"] is None
    assert verify(spec, strict=True)["verdict"] == "fail"


def test_clamp_makes_saturating_counters_commute() -> None:
    spec = make_spec([Var.integer("cars", 0, 5)],
                     events=[("car", None, lambda s: s.set("cars", s["cars"] + 1)),
                             ("bus", None, lambda s: s.set("cars", s["cars"] + 3)),
                             ("leave", None, lambda s: s.set("cars", s["cars"] - 2))],
                     independent=[("car", "bus")])
    assert verify(spec)["verdict"] == "pass"


def test_overflow_error_at_an_unreachable_valid_state() -> None:
    spec = make_spec(
        [Var.enum("tier", "basic", "gold"), Var.integer("points", 0, 4, "error")],
        events=[("earn", lambda s: s["points"] < 4, lambda s: s.set("points", s["points"] + 1)),
                ("bonus", lambda s: s["tier"] == "gold",
                 lambda s: s.set("points", s["points"] + 2)),
                ("redeem", None, lambda s: s.set("points", 0))])
    with pytest.raises(BuildError, match="bonus"):
        reference_check(spec)
    with pytest.raises(BuildError, match="bonus"):
        engine_check()(spec)


def test_overflow_error_behind_a_false_guard_is_fine() -> None:
    spec = make_spec([Var.integer("days", 0, 3, "error")],
                     events=[("tick", lambda s: s["days"] > 0,
                              lambda s: s.set("days", s["days"] - 1)),
                             ("reset", None, lambda s: s.set("days", 3))],
                     independent=[])
    assert verify(spec)["verdict"] == "pass"


def test_overflow_error_in_a_repair() -> None:
    spec = make_spec([Var.integer("n", 0, 3, "error")],
                     invariants=[("n_even", lambda s: s["n"] % 2 == 0,
                                  lambda s: s.set("n", s["n"] + 1))],
                     events=[("bump", None, lambda s: s.set("n", s["n"] + 2))],
                     independent=[])
    # n=3 is invalid and its repair writes 4
    with pytest.raises(BuildError, match="n_even"):
        reference_check(spec)
    with pytest.raises(BuildError, match="n_even"):
        engine_check()(spec)


def test_repair_priority_is_list_order() -> None:
    """Conformance spec 05's point: both invariants fail, the first repairs."""
    def spec_with(order):
        invs = {
            "open_door_is_unlocked": (lambda s: s["door"] == "closed" or not s["locked"],
                                      lambda s: s.set("locked", False)),
            "armed_door_is_closed": (lambda s: not s["armed"] or s["door"] == "closed",
                                     lambda s: s.set("door", "closed")),
        }
        return make_spec(
            [Var.enum("door", "closed", "open"), Var.boolean("locked"), Var.boolean("armed")],
            invariants=[(n, *invs[n]) for n in order],
            events=[("force_open", None, lambda s: s.set("door", "open")),
                    ("lock", None, lambda s: s.set("locked", True)),
                    ("arm", None, lambda s: s.set("armed", True))],
            initial={"locked": True, "armed": True}, independent=[])
    first = verify(spec_with(["open_door_is_unlocked", "armed_door_is_closed"]))
    second = verify(spec_with(["armed_door_is_closed", "open_door_is_unlocked"]))
    assert first["wfc"]["max_depth"] == 2      # unlock, then close the armed door
    assert second["wfc"]["max_depth"] == 1     # closing first fixes both
    # forcing the locked, armed door open: unlocked and closed again (first),
    # or just closed again (second)
    assert first["states"]["reachable"] == 2
    assert second["states"]["reachable"] == 1


def test_wfc_cycle() -> None:
    spec = make_spec(
        [Var.enum("mode", "idle", "heat", "cool"), Var.boolean("cold"), Var.boolean("hot")],
        invariants=[("cold_means_heat", lambda s: not s["cold"] or s["mode"] == "heat",
                     lambda s: s.set("mode", "heat")),
                    ("hot_means_cool", lambda s: not s["hot"] or s["mode"] == "cool",
                     lambda s: s.set("mode", "cool"))],
        events=[("sense_cold", None, lambda s: s.set("cold", True))], independent=[])
    got = verify(spec)
    assert got["verdict"] == "fail"
    assert got["wfc"]["ok"] is False
    assert got["wfc"]["counterexample"] is not None


CC2_EVAL_ERROR_YAML = """
machine: div
vars:
  a: {int: [0, 1]}
invariants:
  - name: a_nonzero
    holds: a != 0
    repair: {a: 1}
events:
  go: {apply: {a: 0}}
  drop: {apply: {a: a / a}}
"""


@pytest.mark.parametrize("form", FORMS)
def test_eval_error_at_an_invalid_state_that_cc2_needs(form) -> None:
    """drop divides by zero only at a=0, an invalid state: CC2 evaluates
    events there, so it is a build error (an earlier engine said nothing)."""
    if form == "yaml":
        spec = loads(CC2_EVAL_ERROR_YAML)
    else:
        spec = make_spec([Var.integer("a", 0, 1)],
                         invariants=[("a_nonzero", lambda s: s["a"] != 0,
                                      lambda s: s.set("a", 1))],
                         events=[("go", None, lambda s: s.set("a", 0)),
                                 ("drop", None, lambda s: s.set("a", s["a"] // s["a"]))])
    with pytest.raises(BuildError, match="drop"):
        reference_check(spec)
    with pytest.raises(BuildError, match="drop"):
        engine_check()(spec)


def test_later_holds_is_not_evaluated_where_an_earlier_one_fails() -> None:
    """Holds are evaluated in list order up to the first failing one (the
    reference's reading, and the engine's): b's division by zero at x=0 is
    never needed, because a already fails there."""
    spec = make_spec([Var.integer("x", 0, 2)],
                     invariants=[("a", lambda s: s["x"] != 0, lambda s: s.set("x", 1)),
                                 ("b", lambda s: 2 // s["x"] >= 1, lambda s: s.set("x", 1))],
                     events=[("inc", None, lambda s: s.set("x", s["x"] + 1))], independent=[])
    assert verify(spec)["verdict"] == "pass"


RAISES_SOMEWHERE_YAML = """
machine: raises_somewhere
vars:
  a: {int: [0, 1]}
  b: {int: [-1, 0]}
invariants:
  - name: never
    holds: a > 5
    repair: {a: a}
events:
  flip:
    apply: {a: a / b}
    reads: [b]
    writes: [a]
"""


@pytest.mark.parametrize("form", FORMS)
def test_exact_footprint_of_a_function_that_raises_somewhere(form) -> None:
    """flip fails to evaluate at b=0 and elsewhere its result does not depend
    on a (python: d := 1 // b == 1 is true at b=1; yaml: a := a / b is 0 at
    b=-1 once clamped), so it reads only b. Every state is invalid and the
    repairs never terminate, so no event is evaluated where it matters: the
    answer is a WFC failure, and the exact declaration reads: [b] is no lie.
    (Found by the soundness hunt: the engine counted the values computed at
    the failing states, and so the written var as read.)"""
    if form == "yaml":
        spec = loads(RAISES_SOMEWHERE_YAML)
        written = "a"
    else:
        spec = make_spec([Var.integer("b", 0, 1), Var.boolean("d")],
                         invariants=[("never", lambda s: False, lambda s: s.set("b", s["b"]))],
                         events=[("flip", None, lambda s: s.set("d", 1 // s["b"] == 1),
                                  ["b"], ["d"])],
                         independent=[])
        written = "d"
    assert reference_check(spec).wfc_ok is False
    assert reference_footprints(spec)["flip"] == {"reads": ["b"], "writes": [written]}
    got = verify(spec)
    assert got["verdict"] == "fail" and got["wfc"]["ok"] is False
    assert got["footprints"]["flip"] == {"reads": ["b"], "writes": [written]}
