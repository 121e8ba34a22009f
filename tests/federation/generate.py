"""Random small federations, from a seed (so a distribution can be sampled
without Hypothesis, and Hypothesis can shrink the seed and the knobs).

Each registry has two small int vars ``v0``, ``v1``. Targets are
authoritative over ``v0`` (and sometimes ``v1``); events are random tables,
some reading every var (they may read shared vars: C1/C2 can fail), some only
the local ``v1``; an invariant, when present, may involve a shared var (M1
can fail). Two sources of one var get a resolver (max, or priority).
"""

from __future__ import annotations

import random
from typing import Any

from convergent import Registry
from convergent.federation import Federation


def _table_event(r: Registry, name: str, rng: random.Random, sizes: list[int],
                 local_only: bool) -> None:
    if local_only:
        table1 = [rng.randrange(sizes[1]) for _ in range(sizes[1])]
        r.event(name, apply=lambda s, t=table1: s.set("v1", t[s["v1"]]))
        return
    target = rng.randrange(2)
    table = {(a, b): rng.randrange(sizes[target])
             for a in range(sizes[0]) for b in range(sizes[1])}
    r.event(name, apply=lambda s, t=table, w=target: s.set(f"v{w}", t[(s["v0"], s["v1"])]))


def random_federation(seed: int, *, registries: int | None = None) -> Federation:
    rng = random.Random(seed)
    n = registries or rng.choice((2, 2, 3))
    names = [f"r{i}" for i in range(n)]
    # topology first: which vars of each registry are shared
    edges: list[tuple[int, int, str]] = []
    for j in range(1, n):
        sources = rng.sample(range(j), k=min(j, rng.choice((1, 1, 2))))
        for k, i in enumerate(sources):
            var = "v0" if k == 0 or rng.random() < 0.5 else "v1"
            edges.append((i, j, var))
    shared = {j: {v for _, t, v in edges if t == j} for j in range(n)}
    fed = Federation(f"random_{seed}")
    sizes_of: dict[int, list[int]] = {}
    for i, name in enumerate(names):
        r = Registry(name)
        sizes = [rng.choice((2, 3)), rng.choice((2, 3))]
        sizes_of[i] = sizes
        r.int("v0", 0, sizes[0] - 1)
        r.int("v1", 0, sizes[1] - 1)
        if rng.random() < 0.4:
            var = rng.choice(("v0", "v1"))
            bad = rng.randrange(sizes[int(var[1])])
            fix = (bad + 1) % sizes[int(var[1])]
            r.invariant("avoid", holds=f"{var} != {bad}", repair={var: str(fix)})
        local_only = "v1" not in shared[i] and rng.random() < 0.5
        for e in range(rng.choice((1, 2))):
            _table_event(r, f"e{e}", rng, sizes, local_only and rng.random() < 0.8)
        fed.registry(r)
    by_var: dict[tuple[int, str], list[int]] = {}
    for i, j, var in edges:
        by_var.setdefault((j, var), []).append(i)
        ssz = sizes_of[i]
        tsize = sizes_of[j][int(var[1])]
        if rng.random() < 0.5:
            table = {(a, b): rng.randrange(tsize) for a in range(ssz[0]) for b in range(ssz[1])}
            fed.morphism(names[i], names[j], shared=[var], name=f"m{i}_{j}_{var}",
                         map=lambda s, t=table, v=var: {v: t[(s["v0"], s["v1"])]})
        else:
            c = rng.randrange(tsize)
            text = f"min(v0, {tsize - 1})" if rng.random() < 0.5 else str(c)
            fed.morphism(names[i], names[j], shared=[var], name=f"m{i}_{j}_{var}",
                         map={var: text})
    for (j, var), srcs in by_var.items():
        if len(srcs) > 1:
            policy = rng.choice(("max", "priority"))
            first = names[srcs[0]]

            def resolve(p: Any, v: str = var, pol: str = policy, f: str = first) -> dict:
                vals = [p[s][v] for s in sorted(p)]
                return {v: max(vals) if pol == "max" else p[f][v]}

            fed.resolver(names[j], vars=[var], resolve=resolve)
    return fed
