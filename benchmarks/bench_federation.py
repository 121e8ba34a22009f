"""Federation (issue 17): prints seconds for

1. three registries of 2^16 states each, three morphisms, every federated
   check plus XU (the federated checks read each target's own tables and
   never enumerate the product);
2. the same three registries linked in a *cycle* of monotone maps: the MONO
   proofs, the checks, and the least fixed point per federated event;
3. the certificate of (1) with its C1 failure moved away: certify, save
   (gzip), load, re-check on embedding.

    python benchmarks/bench_federation.py
"""

from __future__ import annotations

import os
import tempfile
import time

from convergent import Registry
from convergent.federation import Federation, certify, load_certificate, save_certificate
from convergent.federation._tables import build_members
from convergent.federation.check import check_federation


def reg(name: str, events: int = 6) -> Registry:
    r = Registry(name)
    for i in range(16):
        r.bool(f"b{i}")
    r.invariant("pair", holds="not (b14 and b15)", repair={"b15": "false"})
    for e in range(events):
        r.event(f"set{e}", apply={f"b{e}": "true"})
    r.event("copy", apply={"b10": "b11"})
    return r


def triangle(*, passing: bool = False) -> Federation:
    """The figure kept since the first session: ``a -> c`` lands on ``b11``,
    which ``copy`` reads, so C1 (and XU) fail, as reported. ``passing``
    lands it on ``b9`` instead (no event reads it): every check holds."""
    fed = Federation("bench")
    for n in ("a", "b", "c"):
        fed.registry(reg(n))
    fed.morphism("a", "b", shared=["b12", "b13"], map={"b12": "b0 and b1", "b13": "b2 or b3"})
    fed.morphism("b", "c", shared=["b12"], map=lambda s: {"b12": s["b4"] != s["b5"]})
    shared = "b9" if passing else "b11"
    fed.morphism("a", "c", shared=[shared], map={shared: "b6"})
    return fed


def ring() -> Federation:
    """a -> b -> c -> a, each map monotone in the fed var (``or``)."""
    fed = Federation("ring")
    for n in ("a", "b", "c"):
        fed.registry(reg(n))
    fed.morphism("a", "b", shared=["b12"], map={"b12": "b12 or b0"})
    fed.morphism("b", "c", shared=["b12"], map={"b12": "b12 or b1"})
    fed.morphism("c", "a", shared=["b12"], map={"b12": "b12 or b2"})
    return fed


def clock() -> float:
    return time.perf_counter()


def main() -> None:
    spec = triangle().spec()
    t = clock()
    members = build_members(spec)
    t1 = clock()
    rep = check_federation(spec, members=members, xu=True)
    t2 = clock()
    print(f"acyclic 3 x 2^16: {rep.summary()}; members {t1 - t:.2f}s, federated checks "
          f"{t2 - t1:.2f}s, total {t2 - t:.2f}s, {len(rep.checks)} checks, "
          f"failed {rep.failed_codes()}")

    fed = ring()
    spec = fed.spec()
    t = clock()
    members = build_members(spec)
    t1 = clock()
    rep = check_federation(spec, members=members, xu=True)
    t2 = clock()
    mono = [c for c in rep.checks if c.code == "MONO"]
    print(f"cycle 3 x 2^16: {rep.summary()}; members {t1 - t:.2f}s, MONO + federated checks "
          f"{t2 - t1:.2f}s, {len(mono)} MONO proofs, failed {rep.failed_codes()}")
    from convergent.federation import FederatedMachine
    t = clock()
    m = FederatedMachine(spec, members, rep)
    t1 = clock()
    events = [(r, f"set{e}") for e in range(3) for r in ("a", "b", "c")] * 20
    s = m.initial
    t2 = clock()
    for r, e in events:
        s = m.apply(s, r, e)
    t3 = clock()
    assert all(v["b12"] for v in m.decode(s).values())
    print(f"cycle 3 x 2^16: machine built in {t1 - t:.2f}s; least fixed point per federated "
          f"event {(t3 - t2) / len(events) * 1e6:.0f} us ({len(events)} events)")

    fed = triangle(passing=True)
    t = clock()
    cert = certify(fed, xu=True)
    t1 = clock()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.cert.json.gz")
        size = save_certificate(cert, path)
        t2 = clock()
        back = load_certificate(path)
        t3 = clock()
        outer = Federation("outer").embed(back, digest=cert.digest)
        t4 = clock()
    rep = outer.check(xu=True)
    t5 = clock()
    print(f"certificate 3 x 2^16: certify {t1 - t:.2f}s, save {t2 - t1:.2f}s "
          f"({size / 2**20:.1f} MiB gzip), load+validate {t3 - t2:.2f}s, re-check on embed "
          f"{t4 - t3:.2f}s, check of the embedding federation {t5 - t4:.2f}s "
          f"({rep.verdict})")


if __name__ == "__main__":
    main()
