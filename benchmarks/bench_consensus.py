"""Simulator throughput: heights/s and messages per height for n = 4, 16, 64, 128 (one core).

Wall-clock rates, plus the same per CPU second of this process (steadier on a shared
machine). By default the core runs with linear communication (``CoreConfig(linear=True)``:
votes to the view's leader, one forwarded certificate); ``--all-to-all`` runs the previous
protocol (every vote to every node), ``--compare`` both, one after the other.

Every message is really signed with ed25519; verification is memoized across the
simulated nodes by default (each signature checked once per simulation) - pass
``--per-node-verify`` to give every node its own verifier, as separate machines would.

    python benchmarks/bench_consensus.py [--sizes 4 16 64 128] [--heights 40 20 10 4]
        [--compare | --all-to-all] [--per-node-verify] [--byzantine]
"""

from __future__ import annotations

import argparse
import platform
import time

from convergent.consensus import CoreConfig
from convergent.consensus.sim import NetworkConfig, SimConfig, Simulation


def bench(n: int, heights: int, seed: int, shared: bool, byzantine: int,
          linear: bool) -> dict[str, float]:
    cfg = SimConfig(n=n, heights=heights, seed=seed, shared_verifier=shared,
                    byzantine=("equivocate",) * byzantine,
                    core=CoreConfig(chain_id="bench", report_internal=False, linear=linear),
                    network=NetworkConfig(min_delay=0.001, max_delay=0.02), max_time=3600)
    started = time.perf_counter()
    cpu = time.process_time()
    r = Simulation(cfg).run()
    wall = time.perf_counter() - started
    assert r.safe and r.min_finalized >= heights, "benchmark run did not finalize"
    return {
        "n": n, "heights": r.min_finalized, "wall": wall, "cpu": time.process_time() - cpu,
        "heights_per_s": r.min_finalized / wall,
        "messages_per_s": r.messages_delivered / wall,
        "messages_per_height": r.messages_delivered / r.min_finalized,
        "sig_checks_per_s": r.signatures_checked / wall,
        "virtual_s_per_height": r.virtual_time / r.min_finalized,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64, 128])
    p.add_argument("--heights", type=int, nargs="+", default=[40, 20, 10, 4])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-node-verify", action="store_true")
    p.add_argument("--byzantine", action="store_true",
                   help="make f = (n - 1) // 3 nodes equivocate")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--all-to-all", action="store_true",
                      help="the previous protocol: every vote to every node")
    mode.add_argument("--compare", action="store_true", help="both protocols")
    args = p.parse_args()
    heights = args.heights + [args.heights[-1]] * (len(args.sizes) - len(args.heights))
    modes = [False, True] if args.compare else [not args.all_to_all]
    print(f"# consensus simulator, python {platform.python_version()}, "
          f"{'per-node' if args.per_node_verify else 'shared'} signature memo, "
          f"{'f equivocating' if args.byzantine else 'no'} byzantine nodes")
    print(f"{'protocol':>10} {'n':>4} {'heights':>8} {'wall s':>8} {'heights/s':>10} "
          f"{'msgs/s':>9} {'msgs/height':>12} {'msgs/height/n':>14} {'sig checks/s':>13} "
          f"{'heights/cpu-s':>14} {'virtual s/height':>17}")
    for linear in modes:
        for n, h in zip(args.sizes, heights, strict=False):
            b = (n - 1) // 3 if args.byzantine else 0
            m = bench(n, h, args.seed, not args.per_node_verify, b, linear)
            print(f"{'linear' if linear else 'all-to-all':>10} {m['n']:>4} {m['heights']:>8} "
                  f"{m['wall']:>8.2f} {m['heights_per_s']:>10.1f} {m['messages_per_s']:>9.0f} "
                  f"{m['messages_per_height']:>12.0f} {m['messages_per_height'] / n:>14.1f} "
                  f"{m['sig_checks_per_s']:>13.0f} {m['heights'] / m['cpu']:>14.1f} "
                  f"{m['virtual_s_per_height']:>17.3f}", flush=True)


if __name__ == "__main__":
    main()
