"""Compositional checking (issue 15): machines far past whole enumeration,
checked by components. Prints seconds per check and the component count.

    python benchmarks/bench_compose.py
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np

from convergent import Registry


def counters(n: int = 32) -> Registry:
    """n independent 2-bit counters: 4**n states (2**64 for n = 32)."""
    r = Registry("counters")
    for i in range(n):
        r.int(f"c{i}", 0, 3)
        r.event(f"inc{i}", apply={f"c{i}": f"min(c{i} + 1, 3)"})
        r.event(f"dec{i}", apply={f"c{i}": f"max(c{i} - 1, 0)"})
    r.independent("inc0", "inc1")
    return r


def bools(groups: int = 8, width: int = 8) -> Registry:
    """groups x width bools (2**64 for 8 x 8), each group tied by an
    invariant and an event that reads all of it."""
    r = Registry("bools")
    for c in range(groups):
        for i in range(width):
            r.bool(f"b{c}_{i}")
        r.invariant(f"link{c}", holds=f"not b{c}_0 or b{c}_1", repair={f"b{c}_1": "true"})
        for i in range(width):
            r.event(f"set{c}_{i}", apply={f"b{c}_{i}": "true"})
        r.event(f"all{c}", guard=" and ".join(f"b{c}_{i}" for i in range(width)),
                apply={f"b{c}_0": "true"})
    return r


def region(groups: int = 24) -> Registry:
    """A read-only flag (the region) read by ``groups`` 3-bit counters: each
    group holds a copy of it (2^73 states for 24 groups); before read-only
    sharing, the flag merged every group into one component."""
    r = Registry("region")
    r.bool("eu")
    for k in range(groups):
        r.int(f"n{k}", 0, 7)
        r.invariant(f"cap{k}", holds=f"not eu or n{k} <= 5", repair={f"n{k}": 5})
        r.event(f"add{k}", guard=f"n{k} < 7", apply={f"n{k}": f"n{k} + 1"})
    return r


def run(name: str, make, runs: int = 5) -> None:
    times = []
    report = None
    for _ in range(runs):
        r = make()
        t = time.perf_counter()
        report = r.check()
        times.append(time.perf_counter() - t)
    assert report is not None
    method = report.to_dict()["method"]
    comps = len(method.get("components", []))
    print(f"{name:<22} states=2^{report.states.total.bit_length() - 1} "
          f"components={comps:<3} verdict={report.verdict:<4} "
          f"median={statistics.median(times):.3f}s min={min(times):.3f}s")
    m = make().build()
    s = m.initial
    t = time.perf_counter()
    n = 100_000
    for _ in range(n):
        s = m.apply(s, m.events[0])
    dt = time.perf_counter() - t
    print(f"{'':<22} ComposedMachine.apply {dt / n * 1e9:.0f} ns")


if __name__ == "__main__":
    print(f"# python {platform.python_version()}, numpy {np.__version__}")
    run("32 counters (2^64)", counters)
    run("64 bools in 8 groups", bools)
    run("flag shared by 24 groups", region)
