"""Three services, one federation: orders, payments and a warehouse.

* ``payments`` owns whether an order is paid; the warehouse must see it:
  ``payments -> warehouse`` makes ``paid`` a shared var of the warehouse.
* ``orders`` owns cancellation; the warehouse must not ship a cancelled
  order: ``orders -> warehouse`` makes ``cancelled`` shared.
* ``compliance`` and ``payments`` both have a say on ``hold``: a resolver
  holds the shipment if either asks (``policy("any")``).

Run ``python examples/federation/services.py`` or
``convergent federation check examples/federation/services.py:federation``.
"""

from __future__ import annotations

from convergent import Registry
from convergent.federation import Federation
from convergent.federation.resolvers import policy


def federation() -> Federation:
    orders = Registry("orders")
    orders.bool("cancelled")
    orders.event("cancel", apply={"cancelled": "true"})

    payments = Registry("payments")
    payments.bool("captured")
    payments.bool("disputed")
    payments.event("capture", apply={"captured": "true"})
    payments.event("dispute", apply={"disputed": "true"})

    compliance = Registry("compliance")
    compliance.bool("flagged")
    compliance.event("flag", apply={"flagged": "true"})

    warehouse = Registry("warehouse")
    warehouse.bool("paid")
    warehouse.bool("cancelled")
    warehouse.bool("hold")
    warehouse.bool("picked")
    warehouse.bool("shipped")
    warehouse.bool("wrapped")
    # a shipped order must have been picked; shipping is the warehouse's own step
    warehouse.invariant("ship_after_pick", holds="not shipped or picked",
                        repair={"shipped": "false"})
    warehouse.event("pick", apply={"picked": "true"})
    warehouse.event("ship", guard="picked", apply={"shipped": "true"})
    warehouse.event("wrap", apply={"wrapped": "true"})
    # ship waits for pick (causal order); wrapping commutes with both.
    # A guard reading a shared var (ship only when paid) would fail C1:
    # whether a payment arrives before or after the shipment decides it.
    warehouse.independent("pick", "wrap")
    warehouse.independent("ship", "wrap")

    fed = (Federation("fulfilment")
           .registry(orders).registry(payments).registry(compliance).registry(warehouse))
    fed.morphism("payments", "warehouse", shared=["paid", "hold"],
                 map={"paid": "captured and not disputed", "hold": "disputed"})
    fed.morphism("orders", "warehouse", shared=["cancelled"], map={"cancelled": "cancelled"})
    fed.morphism("compliance", "warehouse", shared=["hold"],
                 map=lambda s: {"hold": s["flagged"]})
    fed.resolver("warehouse", vars=["hold"], resolve=policy("any", ["hold"]))
    return fed


if __name__ == "__main__":
    fed = federation()
    report = fed.check(xu=True)
    print(report.render_text())
    machine = fed.build()
    a = machine.run([("payments", "capture"), ("warehouse", "pick"), ("warehouse", "wrap"),
                     ("warehouse", "ship"), ("compliance", "flag")])
    b = machine.run([("compliance", "flag"), ("warehouse", "pick"), ("payments", "capture"),
                     ("warehouse", "ship"), ("warehouse", "wrap")])
    assert a == b
    print(machine.decode(a))
