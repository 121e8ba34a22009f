"""A bank account with a hold and an approval, declared with spec-language
strings through the Python API, then driven as a built machine.

    python examples/bank_account.py
"""

from __future__ import annotations

from convergent import Registry

registry = Registry("bank_account")
registry.int("balance", 0, 10)
registry.bool("hold")
registry.enum("approval", "none", "requested", "approved", "rejected")
registry.initial(balance=3)
registry.invariant("held_accounts_are_not_approved",
                   holds="not hold or approval != 'approved'",
                   repair={"approval": "requested"})
registry.event("deposit", apply={"balance": "balance + 1"})
registry.event("withdraw", guard="not hold and balance > 0", apply={"balance": "balance - 1"})
registry.event("place_hold", apply={"hold": True})
registry.event("release_hold", apply={"hold": False})
registry.event("request_approval", guard="approval == 'none'", apply={"approval": "requested"})
registry.event("approve", guard="approval == 'requested' and not hold",
               apply={"approval": "approved"})
for a, b in [("deposit", "place_hold"), ("deposit", "release_hold"),
             ("deposit", "request_approval"), ("deposit", "approve"), ("approve", "place_hold")]:
    registry.independent(a, b)


def main() -> None:
    machine = registry.build()
    print(machine.report.render_text())
    s = machine.run(["request_approval", "approve", "place_hold"])
    print("approved, then a hold:", s.to_dict())   # the hold suspends the approval
    print("enabled now:", machine.enabled(s))


if __name__ == "__main__":
    main()
