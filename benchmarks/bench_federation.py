"""Federation (issue 17): three registries of 2^16 states each, three
morphisms, every federated check plus XU. Prints seconds; the federated
checks read each target's own tables and never enumerate the product.

    python benchmarks/bench_federation.py
"""

from __future__ import annotations

import time
from convergent import Registry
from convergent.federation import Federation
from convergent.federation._tables import build_members

def reg(name, events=6):
    r = Registry(name)
    for i in range(16):
        r.bool(f"b{i}")
    r.invariant("pair", holds="not (b14 and b15)", repair={"b15": "false"})
    for e in range(events):
        r.event(f"set{e}", apply={f"b{e}": "true"})
    r.event("copy", apply={"b10": "b11"})
    return r

fed = Federation("bench")
for n in ("a", "b", "c"):
    fed.registry(reg(n))
fed.morphism("a", "b", shared=["b12", "b13"], map={"b12": "b0 and b1", "b13": "b2 or b3"})
fed.morphism("b", "c", shared=["b12"], map=lambda s: {"b12": s["b4"] != s["b5"]})
fed.morphism("a", "c", shared=["b11"], map={"b11": "b6"})
spec = fed.spec()
t = time.perf_counter(); members = build_members(spec); t1 = time.perf_counter()
from convergent.federation.check import check_federation
rep = check_federation(spec, members=members, xu=True); t2 = time.perf_counter()
print(rep.summary(), f"members {t1-t:.2f}s federated checks {t2-t1:.2f}s total {t2-t:.2f}s",
      len(rep.checks), "checks")
print(rep.failed_codes())
