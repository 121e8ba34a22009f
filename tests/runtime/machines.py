"""Machines the runtime tests replicate (also loaded by the CLI in subprocesses:
``tests/runtime/machines.py:account``)."""

from __future__ import annotations

from convergent import Registry


def account_registry() -> Registry:
    """Conflicts on purpose: deposits and withdrawals clamp at the bounds and
    are stopped by a freeze, so only ``hit`` commutes with the others."""
    r = Registry("account")
    bal = r.int("balance", 0, 20)
    frozen = r.bool("frozen")
    hits = r.int("hits", 0, 3)
    r.initial(balance=5)
    r.event("deposit", guard=lambda s: not s[frozen], apply=lambda s: s.set(bal, s[bal] + 1))
    r.event("withdraw", guard=lambda s: s[bal] > 0 and not s[frozen],
            apply=lambda s: s.set(bal, s[bal] - 1))
    r.event("freeze", apply=lambda s: s.set(frozen, True))
    r.event("unfreeze", apply=lambda s: s.set(frozen, False))
    r.event("hit", apply=lambda s: s.set(hits, min(3, s[hits] + 1)))
    for a in ("deposit", "withdraw", "freeze", "unfreeze"):
        r.independent(a, "hit")
    return r


def counters_registry() -> Registry:
    """Every pair commutes (none declared: all pairs are verified)."""
    r = Registry("counters")
    a = r.int("a", 0, 6)
    b = r.int("b", 0, 6)
    seen = r.bool("seen")
    top = r.int("top", 0, 3)
    r.event("inc_a", apply=lambda s: s.set(a, s[a] + 1))
    r.event("inc_b", apply=lambda s: s.set(b, s[b] + 1))
    r.event("see", apply=lambda s: s.set(seen, True))
    r.event("raise_top", guard=lambda s: s[top] < 3, apply=lambda s: s.set(top, s[top] + 1))
    return r


def order_registry() -> Registry:
    """Guards, an invariant with a repair, and a mix of commuting and
    conflicting pairs."""
    r = Registry("order")
    status = r.enum("status", "open", "paid", "shipped", "cancelled")
    paid = r.bool("paid")
    hold = r.bool("hold")
    notes = r.int("notes", 0, 4)
    r.invariant("shipped_orders_are_paid", holds=lambda s: s[status] != "shipped" or s[paid],
                repair=lambda s: s.set(status, "paid"))
    r.event("pay", guard=lambda s: s[status] == "open",
            apply=lambda s: s.set(status, "paid").set(paid, True))
    r.event("ship", guard=lambda s: s[status] == "paid" and not s[hold],
            apply=lambda s: s.set(status, "shipped"))
    r.event("cancel", guard=lambda s: s[status] in ("open", "paid"),
            apply=lambda s: s.set(status, "cancelled"))
    r.event("place_hold", apply=lambda s: s.set(hold, True))
    r.event("release_hold", apply=lambda s: s.set(hold, False))
    r.event("note", apply=lambda s: s.set(notes, min(4, s[notes] + 1)))
    for e in ("pay", "ship", "cancel", "place_hold", "release_hold"):
        r.independent(e, "note")
    return r


account = account_registry()
