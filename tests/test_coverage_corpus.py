"""The coverage corpus (examples/coverage/): real business invariants, each
checked by ``convergent check --json`` and held to a verdict written down
from the business rule before the engine was asked.

For every spec the test asserts the verdict, the method (enumeration or
composition), which checks fail (WFC, CC1, CC2) and, for a CC1 failure, the
pair of event families that races. A CC1 counterexample is then replayed by
the plain reference evaluator (tests/reference.py, no tables, no numpy), so a
failure is not trusted on the engine's word: the trace must reach the state
from the initial state and the two orders must really end apart.

The header comment of each file states the rule, the concurrency, and the
expected verdict; docs/coverage.md tabulates the results. Both are held to
this table too, so none of the three can drift from the others. Where the
machine is small, the reference checker's own verdict is compared as well.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from convergent import load_spec
from convergent.cli import main
from convergent.spec.model import MachineSpec

from reference import RefMachine, reference_check

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "coverage"
DOC = ROOT / "docs" / "coverage.md"


@dataclass(frozen=True)
class Expect:
    """What the business rule says the check must find."""

    domain: str
    verdict: str                        # "pass" | "fail"
    method: str                         # "enumeration" | "composition"
    failing: frozenset[str] = frozenset()   # of "wfc", "cc1", "cc2"
    race: tuple[str, str] | None = None     # the CC1 pair, as family names


def ok(domain: str, method: str = "enumeration", cc2: bool = True) -> Expect:
    return Expect(domain, "pass", method, frozenset() if cc2 else frozenset({"cc2"}))


def race(domain: str, a: str, b: str, method: str = "enumeration",
         cc2: bool = True) -> Expect:
    failing = {"cc1"} if cc2 else {"cc1", "cc2"}
    return Expect(domain, "fail", method, frozenset(failing), (a, b))


C = "composition"

EXPECT: dict[str, Expect] = {
    # orders
    "order_lifecycle": ok("orders", cc2=False),
    "order_cancel_vs_ship": race("orders", "cancel", "ship"),
    "order_cancel_vs_ship_fixed": ok("orders"),
    "order_40_lines": ok("orders", C),
    # payments
    "payment_void_vs_capture": race("payments", "capture", "void"),
    "payment_void_vs_capture_fixed": ok("payments"),
    "payment_partial_refunds": race("payments", "refund", "refund"),
    "payment_partial_refunds_fixed": ok("payments"),
    "chargeback_vs_refund": race("payments", "refund", "open_chargeback"),
    "chargeback_vs_refund_fixed": ok("payments"),
    "invoice_partial_payments": ok("payments"),
    # accounts
    "account_overdraft_race": race("accounts", "withdraw", "withdraw"),
    "account_overdraft_escrow": ok("accounts", C),
    "account_owner_serialized": ok("accounts", cc2=False),
    "account_card_holds": race("accounts", "place_hold", "place_hold", cc2=False),
    "account_overdrawn_status": ok("accounts"),
    # inventory
    "inventory_reservation_oversell": race("inventory", "reserve", "reserve", cc2=False),
    "inventory_backorder_fixed": ok("inventory"),
    "warehouse_24_skus": ok("inventory", C),
    # bookings and ticketing
    "booking_hold_vs_expiry": race("bookings", "confirm", "expire"),
    "booking_hold_vs_expiry_fixed": ok("bookings"),
    "hotel_last_room": race("bookings", "book_direct", "cancel"),
    "hotel_overbooking_walk_fixed": ok("bookings"),
    "ticket_seats_race": race("ticketing", "web_buy_0", "box_buy_0", C),
    "ticket_seats_fixed": ok("ticketing", C),
    "room_calendar_365_nights": ok("bookings", C),
    # permissions
    "rbac_grant_vs_revoke": race("permissions", "grant", "revoke"),
    "rbac_revoke_wins_fixed": ok("permissions"),
    "admin_lockout": race("permissions", "remove_alice", "remove_bob"),
    "admin_lockout_reinstate_owner": race("permissions", "remove_alice", "add_bob",
                                          cc2=False),
    "admin_lockout_fixed": ok("permissions", cc2=False),
    "sod_conflicting_roles": race("permissions", "grant_creator", "grant_approver"),
    "sod_conflicting_roles_fixed": ok("permissions"),
    # approvals
    "expense_four_eyes": ok("approvals"),
    "approval_amount_edit_race": race("approvals", "edit_amount", "approve"),
    "approval_versioned_fixed": ok("approvals"),
    # subscriptions
    "subscription_webhooks_race": race("subscriptions", "payment_succeeded",
                                       "payment_failed"),
    "subscription_webhooks_fixed": ok("subscriptions"),
    "api_quota_per_region": ok("subscriptions"),
    # feature flags
    "feature_flags_48": ok("feature flags", C),
    "feature_flag_toggle_race": race("feature flags", "turn_on", "turn_off"),
    "feature_rollout_race": race("feature flags", "set_percentage", "set_percentage"),
    "feature_rollout_fixed": ok("feature flags"),
    # carts and promotions
    "shopping_cart_remove_race": race("carts", "add", "remove"),
    "shopping_cart_counters_fixed": ok("carts", C),
    "coupon_single_use_race": race("carts", "redeem", "redeem"),
    "coupon_single_use_fixed": ok("carts"),
    # loyalty
    "loyalty_redeem_race": race("loyalty", "redeem", "redeem"),
    "loyalty_tiers_fixed": ok("loyalty"),
    # KYC
    "kyc_onboarding": ok("KYC"),
    "kyc_limit_vs_downgrade": race("KYC", "transfer", "downgrade"),
    "kyc_limit_review_fixed": ok("KYC"),
    # support tickets and shipments
    "support_ticket_reopen_race": race("support", "resolve", "customer_reply"),
    "support_ticket_fixed": ok("support"),
    "shipment_tracking_race": race("shipping", "scan", "scan"),
    "shipment_tracking_fixed": ok("shipping"),
}

SPECS = sorted(p.stem for p in CORPUS.glob("*.yaml"))

#: checks that take more than a few seconds on a loaded 2-core machine (365
#: components: the composition's per-component setup dominates)
SLOW = {"room_calendar_365_nights"}


def _timed(names: list[str]) -> list[Any]:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


@functools.lru_cache(maxsize=None)
def _load(name: str) -> MachineSpec:
    """The spec of ``examples/coverage/<name>.yaml``, loaded once (specs are
    frozen values; the 365-night calendar takes seconds to load)."""
    return load_spec(str(CORPUS / f"{name}.yaml"))


def _family(instance: str) -> str:
    """``withdraw(40)`` -> ``withdraw``; a plain event name stays as it is."""
    return instance.split("(", 1)[0]


def _check_json(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    """``convergent check PATH --json``, in process (the CLI's own code path;
    one subprocess test below ties it to the installed command)."""
    code = main(["check", str(path), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_the_table_covers_the_corpus() -> None:
    assert len(SPECS) >= 40
    assert sorted(EXPECT) == SPECS


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_loads(name: str) -> None:
    spec = _load(name)
    assert spec.name == name, "the machine is named after its file"
    assert spec.events, name


@pytest.mark.parametrize("name", SPECS)
def test_header_states_rule_concurrency_and_verdict(name: str) -> None:
    text = (CORPUS / f"{name}.yaml").read_text()
    header = text.split("\nmachine:", 1)[0]
    assert "# Business rule" in header, name
    assert "# Concurrency:" in header, name
    said = re.search(r"# Expected: (PASS|FAIL) \((enumeration|composition)", header)
    assert said is not None, f"{name}: the header must say PASS or FAIL, and the method"
    assert said.group(1).lower() == EXPECT[name].verdict
    assert said.group(2) == EXPECT[name].method
    assert ("CC2 fails" in header) == ("cc2" in EXPECT[name].failing), name
    if EXPECT[name].verdict == "fail":
        assert "Fix" in header, f"{name}: a failing design says what the fix is"


@pytest.mark.parametrize("name", _timed(SPECS))
def test_verdict_method_and_failing_checks(name: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    want = EXPECT[name]
    code, report = _check_json(CORPUS / f"{name}.yaml", capsys)
    assert report["verdict"] == want.verdict, name
    assert code == (0 if want.verdict == "pass" else 1)
    assert report["method"]["kind"] == want.method
    failing = {k for k in ("wfc", "cc1", "cc2")
               if report[k] is not None and not report[k]["ok"]}
    assert failing == set(want.failing), name
    if want.race is None:
        assert report["cc1"]["counterexample"] is None
        return
    cex = report["cc1"]["counterexample"]
    assert sorted(_family(e) for e in cex["events"]) == sorted(want.race)
    _replay_cc1(_load(name), cex)


def _replay_cc1(spec: MachineSpec, cex: dict[str, Any]) -> None:
    """Hold a CC1 counterexample to the reference semantics: its trace leads
    from nf(initial) to its state, and the two orders end in the reported,
    different states."""
    m = RefMachine(spec)
    index = {e.name: k for k, e in enumerate(spec.events)}

    def nf(sid: int) -> int:
        for _ in range(64):
            bad = next((i for i in range(len(spec.invariants)) if not m.holds(i, sid)), None)
            if bad is None:
                return sid
            sid = m.repair(bad, sid)
        raise AssertionError("repairs did not settle")

    def step(event: str, sid: int) -> int:
        return nf(m.raw(index[event], sid, True))

    s = nf(m.encode(dict(spec.initial)))
    for event in cex["trace"]:
        s = step(event, s)
    assert m.decode(s) == cex["state"]
    a, b = cex["events"]
    order1, order2 = step(b, step(a, s)), step(a, step(b, s))
    assert m.decode(order1) == cex["order1"]
    assert m.decode(order2) == cex["order2"]
    assert order1 != order2


def _small(name: str) -> bool:
    """Small enough for the plain reference checker in well under a second
    (states x event instances)."""
    spec = _load(name)
    n = 1
    for v in spec.vars:
        n *= v.size
    return n * len(spec.events) <= 8000


@pytest.mark.parametrize("name", [n for n in SPECS if _small(n)])
def test_small_specs_agree_with_the_reference(name: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Passes are not taken on the engine's word either: where the plain
    reference checker can run, verdict, counts and CC2 are its."""
    ref = reference_check(_load(name)).to_dict()
    _, report = _check_json(CORPUS / f"{name}.yaml", capsys)
    assert report["verdict"] == ref["verdict"]
    assert report["states"] == ref["states"]
    assert report["cc2"]["ok"] == ref["cc2"]["ok"]


def test_the_installed_command_agrees() -> None:
    """One spec through ``python -m convergent``: the exit code and the JSON
    are the command's, not only the in-process function's."""
    p = subprocess.run([sys.executable, "-m", "convergent", "check",
                        str(CORPUS / "booking_hold_vs_expiry.yaml"), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    report = json.loads(p.stdout)
    assert report["cc1"]["counterexample"]["events"] == ["confirm", "expire"]


def test_the_doc_table_matches() -> None:
    """docs/coverage.md has one row per spec, with its verdict and method."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| \[`(\w+)`\]", line)
        if m:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[m.group(1)] = cells
    assert sorted(rows) == SPECS
    for name, cells in rows.items():
        want = EXPECT[name]
        assert cells[1] == want.domain, name
        assert cells[3] == want.method, name
        assert cells[4].startswith("**pass**" if want.verdict == "pass" else "fail"), name


def test_the_doc_summary_matches() -> None:
    """The headline shares on docs/coverage.md are this table's."""
    text = DOC.read_text()
    total = len(EXPECT)
    passing = sum(e.verdict == "pass" for e in EXPECT.values())
    composed = sum(e.method == "composition" for e in EXPECT.values())
    assert f"holds {total} machines" in text
    assert f"| **{passing}** | **{round(100 * passing / total)}%** |" in text
    assert f"| {composed} | {round(100 * composed / total)}% |" in text
    assert f"| {total - passing} | {round(100 * (total - passing) / total)}% |" in text
