"""Example charts shared by the durable tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from convergent.durable import ActionContext, Chart, Statechart, assign, call, emit


def order_chart(version: int = 1) -> Chart:
    """An order: cart -> paying (shallow history: authorizing/captured) ->
    fulfilment (parallel: packing | invoicing) -> done; a hold state; a
    timer that abandons a cart left in paying for 30 minutes."""
    c = Statechart("order", version=version)
    c.bool("paid")
    c.int("attempts", 0, 3)
    c.sensitive_fields("card")
    c.state("cart")
    c.state("paying", initial="authorizing", history="shallow",
            stuck_after=timedelta(minutes=10))
    c.state("authorizing", parent="paying")
    c.state("captured", parent="paying")
    c.state("on_hold")
    c.parallel("fulfilment")
    c.state("packing", parent="fulfilment")
    c.state("pack_wait", parent="packing")
    c.state("packed", parent="packing", final=True)
    c.state("invoicing", parent="fulfilment")
    c.state("inv_wait", parent="invoicing")
    c.state("invoiced", parent="invoicing", final=True)
    c.state("abandoned", final=True)
    c.state("review", sensitive=True, entry_roles={"fraud"})
    c.state("done", final=True)
    c.on("cart", "submit", "paying", roles={"customer"},
         actions=[assign(attempts="attempts + 1"),
                  emit("payment.authorize", lambda ctx: {"order": ctx.entity})])
    c.on("authorizing", "authorized", "captured", actions=[assign(paid="true")])
    c.on("authorizing", "declined", "cart", guard="attempts < 3")
    c.on("authorizing", "declined", "abandoned", guard="attempts >= 3")
    c.on("paying", "hold", "on_hold", roles={"clerk"})
    c.on("on_hold", "release", "paying", roles={"clerk"})
    c.on("paying", "flag", "review")
    c.on("review", "clear", "paying", roles={"fraud"})
    c.on("captured", "ship", "fulfilment", guard="paid")
    c.on("pack_wait", "pack", "packed")
    c.on("inv_wait", "invoice", "invoiced", actions=[emit("mail.invoice")])
    c.on("fulfilment", "done.fulfilment", "done")
    c.after("paying", timedelta(minutes=30), "abandoned")
    c.independent("pack", "invoice")
    return c.build()


def ticker(action: Callable[[ActionContext], None] | None = None) -> Chart:
    """A counter whose ``tick`` adds one to ``n`` (and runs ``action``, when
    given, as a ``call``: tests use it to act in the middle of a write)."""
    c = Statechart("counter")
    c.int("n", 0, 100_000)
    c.state("on")
    actions = [assign(n="n + 1")]
    if action is not None:
        actions.append(call(action, name="probe"))
    c.on("on", "tick", None, actions=actions)
    return c.build()
