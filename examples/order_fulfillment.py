"""The order machine declared in Python, with ordinary lambdas.

    convergent check examples/order_fulfillment.py:registry
    python examples/order_fulfillment.py        # check, build, run a few events
"""

from __future__ import annotations

from convergent import Registry

registry = Registry("order_fulfillment")
status = registry.enum("status", "pending", "paid", "shipped", "cancelled")
paid = registry.bool("paid")
address_verified = registry.bool("address_verified")
inventory = registry.int("inventory", 0, 5)
registry.initial(inventory=2)

registry.invariant("no_ship_unpaid",
                   holds=lambda s: s[status] != "shipped" or s[paid],
                   repair=lambda s: s.set(status, "pending"))
registry.invariant("ship_needs_address",
                   holds=lambda s: s[status] != "shipped" or s[address_verified],
                   repair=lambda s: s.set(status, "paid"))

registry.event("process_payment", guard=lambda s: s[status] == "pending",
               apply=lambda s: s.set(status, "paid").set(paid, True))
registry.event("verify_address", apply=lambda s: s.set(address_verified, True))
registry.event("ship_item",
               guard=lambda s: s[status] == "paid" and s[address_verified] and s[inventory] > 0,
               apply=lambda s: s.set(status, "shipped").set(inventory, s[inventory] - 1))
registry.event("restock", apply=lambda s: s.set(inventory, s[inventory] + 1))
registry.event("cancel", guard=lambda s: s[status] == "pending",
               apply=lambda s: s.set(status, "cancelled"))

registry.independent("process_payment", "restock")
registry.independent("process_payment", "verify_address")
registry.independent("verify_address", "restock")
registry.independent("cancel", "verify_address")
registry.independent("cancel", "restock")


def main() -> None:
    report = registry.check()
    print(report.render_text())
    machine = registry.build()
    state = machine.run(["verify_address", "process_payment", "ship_item"])
    print("after verify_address, process_payment, ship_item:", state.to_dict())
    # two replicas receive the same concurrent events in different orders
    a = machine.run(["process_payment", "restock", "verify_address"])
    b = machine.run(["verify_address", "restock", "process_payment"])
    assert a == b
    print("both delivery orders agree:", a.to_dict())


if __name__ == "__main__":
    main()
