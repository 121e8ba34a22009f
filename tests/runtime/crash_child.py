"""A replica that appends until it is killed (run by test_crash.py).

    python -m tests.runtime.crash_child STORE_URL REPLICA_ID SEED [compact]

Each round it accepts a batch of events from a deterministic peer ``p`` (the
same envelopes on every run) and emits a batch of its own, each own event
carrying ``{"batch": k, "size": n}``, commits, and only then prints
``acked <accepted> <own seq>``: everything printed is acknowledged. With
``compact``, ``p`` is a declared peer and the replica compacts after some
commits (the snapshot, the deletions and the rewrite of a batch that
straddles the horizon: one transaction, killed at any point too).
"""

from __future__ import annotations

import random
import sys


def main() -> None:
    url, rid, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    compact = sys.argv[4:] == ["compact"]
    from convergent.runtime import Replica, open_store

    from .helpers import machine
    m = machine("account")
    replica = Replica(m, id=rid, store=open_store(url), autoflush=False,
                      peers=[rid, "p"] if compact else None)
    tick = [0]

    def peer_clock() -> int:
        tick[0] += 1
        return tick[0]

    peer = Replica(m, id="p", clock=peer_clock)   # the same envelopes on every run
    peer_events: list = []
    rng = random.Random(seed + replica.version.get(rid, 0))
    pos = 0
    batch = replica.version.get(rid, 0)
    print(f"started {replica.accepted} {replica.version.get(rid, 0)}", flush=True)
    while True:
        batch += 1
        take = rng.randint(0, 50)
        while len(peer_events) < pos + take:
            peer_events.append(peer.emit(m.events[len(peer_events) % 5]))
        replica.receive(peer_events[pos:pos + take])
        pos += take
        n = rng.randint(1, 300)
        for _ in range(n):
            replica.emit(rng.choice(m.events), {"batch": batch, "size": n})
        replica.flush()
        if compact and rng.random() < 0.5:
            replica.compact()
        print(f"acked {replica.accepted} {replica.version[rid]}", flush=True)


if __name__ == "__main__":
    main()
