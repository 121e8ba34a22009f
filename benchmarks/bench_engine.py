"""Engine benchmark: the "bools" family from the core issue.

vars b0..b(n-1) bool; invariants, in order, b0=>b1 (repair b1:=true),
b1=>b2 (repair b2:=true), (b3 or b4)=>b5 (repair b5:=true); ten events;
all 45 pairs. Declared through the Python API with ordinary lambdas, and
through a YAML spec.

    python benchmarks/bench_engine.py                 # n = 16 20, 5 runs each
    python benchmarks/bench_engine.py -n 24 --runs 1  # bigger
    python benchmarks/bench_engine.py --apply         # apply / apply_many speed

Prints n, states, the median seconds per phase and the peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time

import numpy as np

from convergent import Registry
from convergent.engine.check import analyze

EVENTS = ["set_b0", "set_b1", "set_b2", "set_b3_if_b10", "set_b4_b6", "set_b5", "toggle_b7",
          "toggle_b8_b9_if_b11", "set_b12_if_b13", "set_b0_b3_if_not_b14"]


def bools_registry(n: int) -> Registry:
    if n < 15:
        raise SystemExit("the bools family needs n >= 15")
    r = Registry(f"bools{n}")
    b = [r.bool(f"b{i}") for i in range(n)]
    r.invariant("b0_implies_b1", holds=lambda s: not s[b[0]] or s[b[1]],
                repair=lambda s: s.set(b[1], True))
    r.invariant("b1_implies_b2", holds=lambda s: not s[b[1]] or s[b[2]],
                repair=lambda s: s.set(b[2], True))
    r.invariant("b3_or_b4_implies_b5", holds=lambda s: not (s[b[3]] or s[b[4]]) or s[b[5]],
                repair=lambda s: s.set(b[5], True))
    r.event("set_b0", apply=lambda s: s.set(b[0], True))
    r.event("set_b1", apply=lambda s: s.set(b[1], True))
    r.event("set_b2", apply=lambda s: s.set(b[2], True))
    r.event("set_b3_if_b10", guard=lambda s: s[b[10]], apply=lambda s: s.set(b[3], True))
    r.event("set_b4_b6", apply=lambda s: s.set(b[4], True).set(b[6], True))
    r.event("set_b5", apply=lambda s: s.set(b[5], True))
    r.event("toggle_b7", apply=lambda s: s.set(b[7], not s[b[7]]))
    r.event("toggle_b8_b9_if_b11", guard=lambda s: s[b[11]],
            apply=lambda s: s.set(b[8], not s[b[8]]).set(b[9], not s[b[9]]))
    r.event("set_b12_if_b13", guard=lambda s: s[b[13]], apply=lambda s: s.set(b[12], True))
    r.event("set_b0_b3_if_not_b14", guard=lambda s: not s[b[14]],
            apply=lambda s: s.set(b[0], True).set(b[3], True))
    return r


def dense_registry(n: int) -> Registry:
    """The bools family plus one invariant that reads every var: the
    invariants' sub-space is then the whole space (the engine's slow path)."""
    r = bools_registry(n)
    r.invariant("not_all_set", holds=lambda s: not all(s[f"b{i}"] for i in range(n)),
                repair=lambda s: s.set(f"b{n - 1}", False))
    return r


def bools_yaml(n: int) -> str:
    lines = [f"machine: bools{n}", "vars:"]
    lines += [f"  b{i}: bool" for i in range(n)]
    lines += [
        "invariants:",
        "  - {name: b0_implies_b1, holds: b0 implies b1, repair: {b1: true}}",
        "  - {name: b1_implies_b2, holds: b1 implies b2, repair: {b2: true}}",
        "  - {name: b3_or_b4_implies_b5, holds: (b3 or b4) implies b5, repair: {b5: true}}",
        "events:",
        "  set_b0: {apply: {b0: true}}",
        "  set_b1: {apply: {b1: true}}",
        "  set_b2: {apply: {b2: true}}",
        "  set_b3_if_b10: {guard: b10, apply: {b3: true}}",
        "  set_b4_b6: {apply: {b4: true, b6: true}}",
        "  set_b5: {apply: {b5: true}}",
        "  toggle_b7: {apply: {b7: not b7}}",
        "  toggle_b8_b9_if_b11: {guard: b11, apply: {b8: not b8, b9: not b9}}",
        "  set_b12_if_b13: {guard: b13, apply: {b12: true}}",
        "  set_b0_b3_if_not_b14: {guard: not b14, apply: {b0: true, b3: true}}",
        "independent: all",
    ]
    return "\n".join(lines) + "\n"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_python(n: int, runs: int, dense: bool = False) -> None:
    totals: list[float] = []
    phases: dict[str, list[float]] = {}
    an = None
    for _ in range(runs):
        # a fresh registry: nothing cached between runs
        r = dense_registry(n) if dense else bools_registry(n)
        an = None
        gc.collect()
        t = time.perf_counter()
        an = analyze(r.spec())
        wall = time.perf_counter() - t
        rep = an.report
        totals.append(rep.seconds["total"])
        for k, v in rep.seconds.items():
            phases.setdefault(k, []).append(v)
        assert wall >= rep.seconds["total"] * 0.9
    assert an is not None
    rep = an.report
    table_mib = an.step.nbytes / 2**20 if an.step is not None else 0.0
    label = "dense     " if dense else "python-api"
    print(f"{label} n={n} states={rep.states.total:,} reachable={rep.states.reachable} "
          f"verdict={rep.verdict}")
    print("  median s: " + ", ".join(f"{k}={statistics.median(v):.4f}"
                                     for k, v in phases.items()))
    print(f"  total median={statistics.median(totals):.4f}s min={min(totals):.4f}s "
          f"runs={runs}  step tables={table_mib:.0f} MiB  peak RSS={peak_rss_mib():.0f} MiB")


def run_yaml(n: int, runs: int) -> None:
    try:
        from convergent.spec.loader import loads_spec
    except ImportError:
        print("yaml: loader not available")
        return
    text = bools_yaml(n)
    totals = []
    checks = []
    for _ in range(runs):
        t = time.perf_counter()
        spec = loads_spec(text, f"bools{n}.yaml")
        load = time.perf_counter() - t
        an = analyze(spec)
        checks.append(an.report.seconds["total"])
        totals.append(an.report.seconds["total"] + load)
    print(f"yaml       n={n} check median={statistics.median(checks):.4f}s, with YAML parse "
          f"median={statistics.median(totals):.4f}s verdict={an.report.verdict}")


def run_apply(n: int) -> None:
    m = bools_registry(n).build()
    s = m.initial
    evs = list(m.events)
    k = 200_000
    t = time.perf_counter()
    for i in range(k):
        s = m.apply(s, evs[i % 10])
    dt = time.perf_counter() - t
    print(f"apply      {dt / k * 1e9:.0f} ns/call (State objects)")
    sid = s.id
    t = time.perf_counter()
    for i in range(k):
        sid = m.apply_id(sid, evs[i % 10])
    dt = time.perf_counter() - t
    print(f"apply_id   {dt / k * 1e9:.0f} ns/call (raw ids)")
    ids = np.random.default_rng(0).integers(0, m.size, size=4_000_000).astype(np.int32)
    t = time.perf_counter()
    reps = 5
    for i in range(reps):
        m.apply_many(ids, evs[i % 10])
    dt = time.perf_counter() - t
    print(f"apply_many {len(ids) * reps / dt / 1e6:.1f} M transitions/s (random ids)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, nargs="*", default=[16, 20])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--apply", action="store_true", help="also time apply / apply_many")
    p.add_argument("--no-yaml", action="store_true")
    p.add_argument("--dense", action="store_true",
                   help="also the family with an invariant that reads every var")
    args = p.parse_args(argv)
    print(f"# python {sys.version.split()[0]}, numpy {np.__version__}")
    for n in args.n:
        run_python(n, args.runs)
        if args.dense:
            run_python(n, args.runs, dense=True)
        if not args.no_yaml:
            run_yaml(n, args.runs)
    if args.apply:
        run_apply(args.n[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
