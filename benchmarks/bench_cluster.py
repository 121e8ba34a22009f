"""Enumeration sharded over Dask (issue 16 item 4): a ledger of 2^30 states
(two wide counters and a mode, one invariant) checked by the sharded engine
on a local Dask cluster of 1 and then 2 worker processes, and, for scale,
whole enumeration where it fits (2^26 states; at 2^30 the engine's budget
refuses the machine: its step tables alone would need 12 GiB).

The workers' CPU seconds show how the work divides; the wall-clock speed-up
also needs free cores (on a shared 2-core box it is a floor).

Every figure is a whole check (WFC, CC1 in both scopes, CC2, findings, the
delivery contract) that gives the whole-enumeration report; the work is the
sweep of every valid state, so a passing machine is the worst case.

    python benchmarks/bench_cluster.py              # 2^30 states
    python benchmarks/bench_cluster.py --bits 26    # quicker
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from typing import Any

from convergent.cluster import ShardPlan, analyze_sharded, check_sharded
from convergent.engine.budget import enforce, estimate
from convergent.engine.check import analyze
from convergent.errors import BuildError
from convergent.spec import loads_spec


def ledger(bits: int) -> Any:
    """2^bits states: credit (2^ceil((bits-1)/2)), debit (the rest), mode (2)."""
    cbits = bits // 2
    dbits = bits - 1 - cbits
    return loads_spec(f"""
machine: ledger_{bits}
vars:
  credit: {{int: [0, {2**cbits - 1}]}}
  debit: {{int: [0, {2**dbits - 1}]}}
  mode: {{enum: [open, frozen]}}
invariants:
  - name: frozen_caps_credit
    holds: mode == 'open' or credit <= 50
    repair: {{credit: 50}}
events:
  add_credit:
    guard: credit < 60
    apply: {{credit: credit + 1}}
  add_debit:
    guard: debit < 60
    apply: {{debit: debit + 1}}
  freeze:
    apply: {{mode: frozen}}
independent:
  - [add_credit, add_debit]
  - [add_debit, freeze]
""", f"ledger_{bits}.yaml")


def _rss_mib() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it is
    not inherited across the exec of a spawned worker)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sharded(spec: Any, workers: int) -> tuple[float, Any, list[float], list[float]]:
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        before = client.run(time.process_time)      # workers up before the clock starts
        t0 = time.perf_counter()
        report = check_sharded(spec, client, shards=4 * workers)
        seconds = time.perf_counter() - t0
        after = client.run(time.process_time)
        peaks = list(client.run(_rss_mib).values())
    cpu = [after[w] - before[w] for w in sorted(after)]
    return seconds, report, peaks, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bits", type=int, default=30, help="log2 of the state count")
    ap.add_argument("--whole-bits", type=int, default=26,
                    help="log2 of the states for the whole-enumeration comparison")
    args = ap.parse_args()
    print(f"# bench_cluster on {platform.node()} ({platform.machine()}), "
          f"{time.strftime('%Y-%m-%d')}: 2-core VM, shared with other work")

    spec = ledger(args.bits)
    base = None
    for workers in (1, 2):
        seconds, report, peaks, cpu = sharded(spec, workers)
        base = base or seconds
        n = report.states.total
        print(f"2^{args.bits} states, {workers} worker(s): {seconds:.1f} s "
              f"({n / seconds / 1e6:.2f} M states/s, speedup {base / seconds:.2f}x), "
              f"verdict {report.verdict}, reachable {report.states.reachable}, "
              f"tasks {report.method['sharded']['tasks_shipped']} shipped / "
              f"{report.method['sharded']['tasks_local']} local, "
              f"worker CPU {', '.join(f'{c:.0f}' for c in cpu)} s, "
              f"worker peak RSS {', '.join(f'{p:.0f}' for p in peaks)} MiB")
    print(f"coordinator peak RSS {_rss_mib():.0f} MiB (before whole enumeration)")
    try:
        # the engine's own admission check, without running it
        enforce(estimate(2**args.bits, len(spec.events)), name=spec.name,
                sizes=[v.size for v in spec.vars])
        print(f"2^{args.bits} states: whole enumeration would fit here")
    except BuildError as exc:
        print(f"2^{args.bits} states: whole enumeration refused: {exc}")
    small = ledger(args.whole_bits)
    t0 = time.perf_counter()
    whole = analyze(small).report
    tw = time.perf_counter() - t0
    t0 = time.perf_counter()
    one = analyze_sharded(small, plan=ShardPlan(shards=1))
    ts = time.perf_counter() - t0
    same = {k: v for k, v in whole.to_dict().items() if k not in ("seconds", "method")} == \
        {k: v for k, v in one.to_dict().items() if k not in ("seconds", "method")}
    print(f"2^{args.whole_bits} states: whole enumeration {tw:.1f} s, sharded in one "
          f"process {ts:.1f} s; same report: {same}; verdict {whole.verdict}")


if __name__ == "__main__":
    main()
