"""Named example federations: for each check one that fails exactly it and one
that passes, and the paper's two counterexamples to its uncorrected theorem
(``audit_counterexample`` and ``c2_counterexample`` in the audit's
``coq/FederationEvents.v``), rebuilt here with this library's API."""

from __future__ import annotations

from typing import Any

from convergent import Registry
from convergent.federation import Federation


def _maker(events: bool = True) -> Registry:
    r = Registry("maker")
    r.bool("recalled")
    if events:
        r.event("recall", apply={"recalled": "true"})
    return r


def supply(*, sell_reads_listed: bool = False, unlist: bool = True) -> Federation:
    """The audit's supply instance: a recall drives the shop's ``listed`` flag.

    With ``sell_reads_listed`` the shop's ``sell`` fires only while listed: the
    audit's counterexample to the uncorrected theorem (C1 fails)."""
    shop = Registry("shop")
    shop.bool("listed")
    shop.int("sold", 0, 3)
    shop.initial(listed=True)
    if sell_reads_listed:
        shop.event("sell", guard="listed", apply={"sold": "min(sold + 1, 3)"})
    else:
        shop.event("sell", apply={"sold": "min(sold + 1, 3)"})
    if unlist:
        shop.event("unlist", apply={"listed": "false"})   # writes the shared var
    fed = Federation("supply").registry(_maker()).registry(shop)
    fed.morphism("maker", "shop", shared=["listed"], map={"listed": "not recalled"},
                 name="recall_listing")
    return fed


def swap_audit(*, audit: bool = True, swap: bool = True) -> Federation:
    """The audit's C2 counterexample: the target's ``swap`` and ``audit``
    commute on the target alone, C1 holds, and the repair between them erases
    what ``swap`` moved into the shared slot."""
    src = Registry("closer")
    a = src.bool("slot_a")
    src.invariant("closed", holds="not slot_a", repair={"slot_a": "false"})
    src.event("noop", apply=lambda s: s.set(a, s[a]))
    dst = Registry("slots")
    dst.bool("slot_a")
    dst.bool("slot_b")
    dst.bool("audit")
    dst.initial(slot_b=True)
    if swap:
        dst.event("swap", apply={"slot_a": "slot_b", "slot_b": "slot_a"})
    if audit:
        dst.event("audit", apply={"audit": "slot_a != slot_b"})
    fed = Federation("swap_audit").registry(src).registry(dst)
    fed.morphism("closer", "slots", shared=["slot_a"], map={"slot_a": "slot_a"})
    return fed


def cyclic(*, cycle: bool, monotone: bool = False) -> Federation:
    """``a`` copies its ``x`` into ``b``; with ``cycle`` ``b`` sends back
    ``not x`` (not monotone: refused) or, with ``monotone``, ``x or y``
    (accepted, repair by least fixed point)."""
    a = Registry("a")
    a.bool("x")
    a.bool("y")
    a.event("set_x", apply={"x": "true"})
    b = Registry("b")
    b.bool("x")
    b.bool("y")
    b.event("set_y", apply={"y": "true"})
    fed = Federation("loop").registry(a).registry(b)
    fed.morphism("a", "b", shared=["x"], map={"x": "x"})
    if cycle:
        fed.morphism("b", "a", shared=["y"], map={"y": "x or y" if monotone else "not x"})
    return fed


def stocked(*, breaks: bool) -> Federation:
    """M1: the shop may list only with stock (``listed implies stock > 0``); a
    map that lists unconditionally breaks a valid state with no stock."""
    maker = _maker()
    shop = Registry("shop")
    shop.bool("listed")
    shop.int("stock", 0, 2)
    shop.bool("note")
    shop.invariant("stock_to_list", holds="not listed or stock > 0", repair={"listed": "false"})
    shop.event("toggle_note", apply={"note": "not note"})
    fed = Federation("stocked").registry(maker).registry(shop)
    fed.morphism("maker", "shop", shared=["listed"],
                 map={"listed": "not recalled" if breaks else "false"})
    return fed


def door(*, resolver: str | None = "and") -> Federation:
    """A door opened by HR and security together (R1 / R2 fixtures).

    ``resolver``: ``"and"`` (valid), ``None`` (two sources, no resolver),
    ``"flaky"`` (not deterministic), ``"wide"`` (writes a var it does not
    resolve), ``"alarmed"`` (``"and"`` but the door's invariant forbids an
    open door while the alarm is on: R2 fails)."""
    hr = Registry("hr")
    hr.bool("employed")
    hr.event("hire", apply={"employed": "true"})
    sec = Registry("security")
    sec.bool("cleared")
    sec.event("clear", apply={"cleared": "true"})
    d = Registry("door")
    d.bool("access")
    d.bool("alarm")
    d.bool("note")
    if resolver == "alarmed":
        d.invariant("no_open_alarm", holds="not (access and alarm)", repair={"access": "false"})
    d.event("jot", apply={"note": "not note"})
    fed = Federation("door").registry(hr).registry(sec).registry(d)
    fed.morphism("hr", "door", shared=["access"], map={"access": "employed"})
    fed.morphism("security", "door", shared=["access"], map={"access": "cleared"})
    calls = {"n": 0}

    def both(p: Any) -> dict[str, Any]:
        return {"access": p["hr"]["access"] and p["security"]["access"]}

    def flaky(p: Any) -> dict[str, Any]:
        calls["n"] += 1
        return {"access": calls["n"] % 2 == 0}

    def wide(p: Any) -> dict[str, Any]:
        return {"access": p["hr"]["access"], "alarm": False}

    pick = {"and": both, "alarmed": both, "flaky": flaky, "wide": wide}
    if resolver is not None:
        fed.resolver("door", vars=["access"], resolve=pick[resolver])
    return fed


def own_failure(*, fails: bool) -> Federation:
    """REG: a member that fails its own CC1 (``double`` and ``bump`` do not
    commute) under an otherwise sound federation."""
    src = Registry("counter")
    src.int("n", 0, 3)
    src.event("bump", apply={"n": "n + 1"})
    if fails:
        src.event("double", apply={"n": "n * 2"})
    else:
        src.event("bump_again", apply={"n": "n + 1"})
    dst = Registry("mirror")
    dst.bool("big")
    dst.bool("seen")
    dst.event("see", apply={"seen": "true"})
    fed = Federation("own").registry(src).registry(dst)
    fed.morphism("counter", "mirror", shared=["big"], map={"big": "n >= 2"})
    return fed
