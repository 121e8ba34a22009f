"""Three replicas of a bank account that keep agreeing through a partition.

    python examples/replica_service.py                          # simulated network
    python examples/replica_service.py --nats nats://127.0.0.1:4222

The account is declared once and verified; each replica has its own SQLite
store. During a partition both sides keep working (no leader, no lock);
when the network heals they exchange what the other lacks and end in the
same state. Concurrent events that do not commute (a withdrawal on one side,
a hold on the other) are put in one canonical order everywhere; the repair
is visible in ``explain()``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile

from convergent import Registry
from convergent.runtime import Change, Replica, SimNetwork

registry = Registry("account")
balance = registry.int("balance", 0, 100)
hold = registry.bool("hold")
statements = registry.int("statements", 0, 5)
registry.initial(balance=10)
registry.event("deposit", apply=lambda s: s.set(balance, s[balance] + 5))
registry.event("withdraw", guard=lambda s: not s[hold] and s[balance] >= 5,
               apply=lambda s: s.set(balance, s[balance] - 5))
registry.event("place_hold", apply=lambda s: s.set(hold, True))
registry.event("release_hold", apply=lambda s: s.set(hold, False))
registry.event("statement", apply=lambda s: s.set(statements, min(5, s[statements] + 1)))
# verified at build: these pairs commute, so replicas apply them in any order;
# the others (withdraw vs place_hold, deposit vs withdraw...) get one canonical order
for a, b in [("deposit", "place_hold"), ("deposit", "release_hold"), ("deposit", "statement"),
             ("withdraw", "statement"), ("place_hold", "statement"),
             ("release_hold", "statement")]:
    registry.independent(a, b)


def show(name: str):  # a subscriber: called after each committed batch
    def on_change(change: Change) -> None:
        if change.changed:
            ids = ", ".join(e.id for e in change.events)
            flag = " (after a repair)" if change.repaired else ""
            print(f"  {name}: {change.before.to_dict()} -> {change.after.to_dict()} [{ids}]{flag}")
    return on_change


def simulated(directory: str) -> None:
    machine = registry.build()
    net = SimNetwork(seed=7, delay=(1, 30), duplicate=0.2)
    ids = ["r1", "r2", "r3"]
    replicas = {i: Replica(machine, id=i, store=f"sqlite:///{os.path.join(directory, f'{i}.db')}",
                           transport=net.transport(i), clock=net.clock(i), peers=ids)
                for i in ids}
    for i, r in replicas.items():
        r.subscribe(show(i))
    print("normal operation:")
    replicas["r1"].emit("deposit", {"by": "alice"})
    net.run()
    print("partition {r1} | {r2, r3}; both sides keep working:")
    net.partition(["r1"], ["r2", "r3"])
    net.now += 100
    replicas["r2"].emit("place_hold", {"by": "risk"})       # earlier...
    net.now += 5
    replicas["r1"].emit("withdraw", {"by": "alice"})        # ...than this withdrawal
    replicas["r3"].emit("statement")
    net.run()
    print("heal: anti-entropy exchanges what each side lacks:")
    net.settle()
    states = {r.state for r in replicas.values()}
    assert len(states) == 1
    print(f"converged: {states.pop().to_dict()}")
    for rep in replicas["r1"].explain().repairs:
        print(f"repair at r1: {', '.join(rep.inserted)} sorted before {', '.join(rep.against)}"
              f" (replayed {rep.replayed})")
    print(f"compacted at r1: {replicas['r1'].compact()} events")
    for r in replicas.values():
        r.close()


async def over_nats(url: str, directory: str) -> None:
    from convergent.runtime import NatsTransport, ReplicaService
    machine = registry.build()
    services = []
    for i in ("r1", "r2", "r3"):
        t = NatsTransport(url, sync_interval=0.5)
        r = Replica(machine, id=i, store=f"sqlite:///{os.path.join(directory, f'{i}.db')}",
                    transport=t, autoflush=False)
        r.subscribe(show(i))
        services.append(ReplicaService(r, t))
    for s in services:
        await s.start()
    r1, r2, r3 = (s.replica for s in services)
    r1.emit("deposit", {"by": "alice"})
    r2.emit("place_hold", {"by": "risk"})
    r3.emit("withdraw", {"by": "bob"})
    for _ in range(100):
        await asyncio.sleep(0.05)
        if all(r.accepted == 3 for r in (r1, r2, r3)):
            break
    assert r1.state == r2.state == r3.state
    print(f"converged: {r1.state.to_dict()}")
    for s in services:
        await s.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nats", help="run over this NATS server instead of a simulated network")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if args.nats:
            asyncio.run(over_nats(args.nats, d))
        else:
            simulated(d)


if __name__ == "__main__":
    main()
