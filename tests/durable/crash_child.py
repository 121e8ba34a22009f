"""A writer that the crash tests kill: ``crash_child.py DB N [K]``.

Creates entity ``c`` and sends ``tick`` N times with request keys k0..kN-1
(a rerun after a crash resends them all: idempotency must absorb the ones
that committed). With K, the process SIGKILLs itself right after its K-th
SQL statement, wherever that falls inside a transaction.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta

from convergent.durable import Actor, EntityService, Statechart, assign, emit, open_store
from convergent.durable.store import Tx


def chart():
    c = Statechart("counter")
    c.int("n", 0, 100_000)
    c.state("on")
    c.state("late")
    c.on("on", "tick", None, actions=[assign(n="n + 1"), emit("counter.ticked")])
    c.after("on", timedelta(hours=1), "late")
    return c.build()


def main() -> None:
    db, n = sys.argv[1], int(sys.argv[2])
    kill_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if kill_after is not None:
        count = [0]
        original_q, original_many = Tx.q, Tx.many

        def tick() -> None:
            count[0] += 1
            if count[0] == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        def q(self: Tx, sql: str, params=()):  # type: ignore[no-untyped-def]
            out = original_q(self, sql, params)
            tick()
            return out

        def many(self: Tx, sql: str, rows):  # type: ignore[no-untyped-def]
            out = original_many(self, sql, rows)
            tick()
            return out

        Tx.q = q  # type: ignore[method-assign]
        Tx.many = many  # type: ignore[method-assign]
    store = open_store(db)
    svc = EntityService(chart(), store, snapshot_every=2)
    actor = Actor.of("writer")
    svc.create("c", actor=actor, request_key="create")
    for i in range(n):
        svc.send("c", "tick", actor=actor, request_key=f"k{i}")
        print(i, flush=True)
    store.close()


if __name__ == "__main__":
    main()
