"""The order saga's chart: ``order.yaml`` plus the two functions it names.

Functions are deterministic in their context (rebuilding an order replays
them): they read the order's vars and extra data and emit commands.
"""

from __future__ import annotations

from pathlib import Path

from convergent.durable import ActionContext, Chart, load_chart

HERE = Path(__file__).resolve().parent


def request_payment(ctx: ActionContext) -> None:
    """Ask the payment service to authorize the order's amount."""
    ctx.emit("payment.authorize", {"order": ctx.entity, "amount": ctx.extra.get("amount", 0),
                                   "card": ctx.extra.get("card", "")})


def compensate(ctx: ActionContext) -> None:
    """New transactions that offset what already happened: a refund if the
    payment went through, a release if stock was reserved."""
    ctx.emit("saga.compensate", {"order": ctx.entity, "refund": bool(ctx.vars["paid"]),
                                 "release": bool(ctx.vars["reserved"]),
                                 "amount": ctx.extra.get("amount", 0)})


FUNCTIONS = {"request_payment": request_payment, "compensate": compensate}


def order_chart() -> Chart:
    return load_chart(HERE / "order.yaml", functions=FUNCTIONS)
