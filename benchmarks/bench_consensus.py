"""Simulator throughput: rounds/s and messages/s for n = 4, 16, 64 (one core).

Wall-clock rates, plus the same per CPU second of this process (steadier on a shared
machine).

Every message is really signed with ed25519; verification is memoized across the
simulated nodes by default (each signature checked once per simulation) - pass
``--per-node-verify`` to give every node its own verifier, as separate machines would.

    python benchmarks/bench_consensus.py [--sizes 4 16 64] [--heights 40 12 4] [--per-node-verify]
"""

from __future__ import annotations

import argparse
import platform
import time

from convergent.consensus.sim import NetworkConfig, SimConfig, Simulation


def bench(n: int, heights: int, seed: int, shared: bool, byzantine: int) -> dict[str, float]:
    cfg = SimConfig(n=n, heights=heights, seed=seed, shared_verifier=shared,
                    byzantine=("equivocate",) * byzantine,
                    network=NetworkConfig(min_delay=0.001, max_delay=0.02), max_time=3600)
    started = time.perf_counter()
    cpu = time.process_time()
    r = Simulation(cfg).run()
    wall = time.perf_counter() - started
    assert r.safe and r.min_finalized >= heights, "benchmark run did not finalize"
    return {
        "n": n, "rounds": r.min_finalized, "wall": wall, "cpu": time.process_time() - cpu,
        "rounds_per_s": r.min_finalized / wall,
        "messages_per_s": r.messages_delivered / wall,
        "messages_per_round": r.messages_delivered / r.min_finalized,
        "sig_checks_per_s": r.signatures_checked / wall,
        "virtual_s_per_round": r.virtual_time / r.min_finalized,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--heights", type=int, nargs="+", default=[40, 12, 4])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-node-verify", action="store_true")
    p.add_argument("--byzantine", action="store_true",
                   help="make f = (n - 1) // 3 nodes equivocate")
    args = p.parse_args()
    heights = args.heights + [args.heights[-1]] * (len(args.sizes) - len(args.heights))
    print(f"# consensus simulator, python {platform.python_version()}, "
          f"{'per-node' if args.per_node_verify else 'shared'} signature memo, "
          f"{'f equivocating' if args.byzantine else 'no'} byzantine nodes")
    print(f"{'n':>4} {'rounds':>7} {'wall s':>8} {'rounds/s':>9} {'msgs/s':>9} "
          f"{'msgs/round':>11} {'sig checks/s':>13} {'rounds/cpu-s':>13} {'msgs/cpu-s':>11}")
    for n, h in zip(args.sizes, heights, strict=False):
        b = (n - 1) // 3 if args.byzantine else 0
        m = bench(n, h, args.seed, not args.per_node_verify, b)
        print(f"{m['n']:>4} {m['rounds']:>7} {m['wall']:>8.2f} {m['rounds_per_s']:>9.1f} "
              f"{m['messages_per_s']:>9.0f} {m['messages_per_round']:>11.0f} "
              f"{m['sig_checks_per_s']:>13.0f} {m['rounds'] / m['cpu']:>13.1f} "
              f"{m['messages_per_round'] * m['rounds'] / m['cpu']:>11.0f}")


if __name__ == "__main__":
    main()
