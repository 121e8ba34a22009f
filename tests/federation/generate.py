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


def _monotone_table(rng: random.Random, sizes: list[int], tsize: int) -> dict:
    """A random table over (v0, v1) that never decreases as v0 grows."""
    table = {}
    for b in range(sizes[1]):
        col = sorted(rng.randrange(tsize) for _ in range(sizes[0]))
        for a in range(sizes[0]):
            table[(a, b)] = col[a]
    return table


def random_cyclic_federation(seed: int, *, monotone: float = 0.8) -> Federation:
    """A ring of two or three registries (sometimes with a chord or an outside
    source), each authoritative over the next one's ``v0``.

    Maps are monotone in the source's fed var with probability ``monotone``
    (a sorted random table, ``max``/``min`` of the two vars, a copy, a
    constant) and otherwise arbitrary (a random table, a reversal); events
    mostly change the local ``v1`` only, sometimes read the fed ``v0``."""
    rng = random.Random(seed)
    n = rng.choice((1, 2, 2, 3))
    names = [f"c{i}" for i in range(n)]
    sizes_of = [[rng.choice((2, 3)), rng.choice((2, 3))] for _ in range(n)]
    outside = rng.random() < 0.3
    fed = Federation(f"cyclic_{seed}")
    for i, name in enumerate(names):
        r = Registry(name)
        sizes = sizes_of[i]
        r.int("v0", 0, sizes[0] - 1)
        r.int("v1", 0, sizes[1] - 1)
        if rng.random() < 0.25:
            bad = rng.randrange(sizes[1])
            r.invariant("avoid", holds=f"v1 != {bad}", repair={"v1": str((bad + 1) % sizes[1])})
        for e in range(rng.choice((1, 2))):
            _table_event(r, f"e{e}", rng, sizes, local_only=rng.random() < 0.7)
        fed.registry(r)
    if outside:
        o = Registry("outside")
        o.bool("on")
        o.event("switch", apply={"on": "not on"})
        fed.registry(o)
    edges = [(i, (i + 1) % n) for i in range(n)]
    if n == 3 and rng.random() < 0.3:
        edges.append((0, 2))
    for i, j in edges:
        ssz, tsize = sizes_of[i], sizes_of[j][0]
        name = f"m{i}_{j}"
        kind = rng.random()
        if rng.random() < monotone:
            if kind < 0.3:
                t = _monotone_table(rng, ssz, tsize)
                fed.morphism(names[i], names[j], shared=["v0"], name=name,
                             map=lambda s, t=t: {"v0": t[(s["v0"], s["v1"])]})
            else:
                text = rng.choice((f"min(v0, {tsize - 1})", f"min(max(v0, v1), {tsize - 1})",
                                   f"min(min(v0, v1), {tsize - 1})", str(rng.randrange(tsize))))
                fed.morphism(names[i], names[j], shared=["v0"], name=name, map={"v0": text})
        elif kind < 0.5:
            t = {(a, b): rng.randrange(tsize) for a in range(ssz[0]) for b in range(ssz[1])}
            fed.morphism(names[i], names[j], shared=["v0"], name=name,
                         map=lambda s, t=t: {"v0": t[(s["v0"], s["v1"])]})
        else:
            fed.morphism(names[i], names[j], shared=["v0"], name=name,
                         map={"v0": f"max({tsize - 1} - v0, 0)"})
    if (0, 2) in edges:
        fed.resolver(names[2], vars=["v0"],
                     resolve=lambda p: {"v0": min(q["v0"] for q in p.values())})
    if outside:
        # the outside source and the ring both propose c0.v0: merged by max (monotone)
        fed.morphism("outside", names[0], shared=["v0"], name="from_outside",
                     map={"v0": f"if on then {sizes_of[0][0] - 1} else 0"})
        fed.resolver(names[0], vars=["v0"],
                     resolve=lambda p: {"v0": max(q["v0"] for q in p.values())})
    return fed
