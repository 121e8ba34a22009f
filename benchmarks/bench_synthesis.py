"""Repair synthesis (issue 16 item 5) on the bools family: n bools in a chain
of implications ``b{i} implies b{i+1}``, written without working repairs;
events set and clear each bool, every pair declared independent. The
search must find, for every link, the least invasive constant repair that
makes the whole machine converge (or say none exists), and this prints how
long it takes, how many combinations it verified and the space it searched.

    python benchmarks/bench_synthesis.py [--max-n 8] [--max-n-clear 5] [--scope ...]

With clears, no constant repair converges (clear b{i+1} against set b{i}):
the answer "none exists" needs every combination verified, so that family
stops earlier. Past 20,000 combinations the search refuses to start.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

from convergent.engine.synthesis import synthesize
from convergent.errors import SpecError
from convergent.spec.loader import loads_spec


def bools(n: int, *, clears: bool) -> str:
    lines = ["machine: bools", "vars:"]
    lines += [f"  b{i}: bool" for i in range(n)]
    lines.append("invariants:")
    for i in range(n - 1):
        # a placeholder repair that fixes nothing: synthesis ignores it
        lines += [f"  - name: link{i}", f"    holds: not b{i} or b{i + 1}",
                  f"    repair: {{b{i}: b{i}}}"]
    lines.append("events:")
    for i in range(n):
        lines.append(f"  set{i}: {{apply: {{b{i}: true}}}}")
        if clears:
            lines.append(f"  clear{i}: {{apply: {{b{i}: false}}}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-n", type=int, default=8)
    ap.add_argument("--max-n-clear", type=int, default=5)
    ap.add_argument("--scope", choices=("reachable", "all"), default="reachable")
    args = ap.parse_args()
    print(f"# repair synthesis on the bools family, {datetime.date.today()}, "
          f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"python {platform.python_version()}")
    print(f"{'n':>3} {'events':>6} {'states':>7} {'space':>7} {'tried':>6} {'found':>6}"
          f" {'seconds':>8}  repairs")
    for clears in (False, True):
        print(f"# events: set{' and clear' if clears else ''} each bool")
        for n in range(2, (args.max_n_clear if clears else args.max_n) + 1):
            spec = loads_spec(bools(n, clears=clears))
            t0 = time.perf_counter()
            try:
                res = synthesize(spec, scope=args.scope)
            except SpecError as exc:
                print(f"{n:>3} {len(spec.events):>6} {2**n:>7}  refused: {exc}")
                continue
            dt = time.perf_counter() - t0
            shown = ", ".join(f"{k}: {c.text()}" for k, c in res.repairs.items())
            print(f"{n:>3} {len(spec.events):>6} {2**n:>7} {res.space:>7} {res.tried:>6} "
                  f"{str(res.found):>6} {dt:>8.3f}  {shown if res.found else res.reason}")


if __name__ == "__main__":
    main()
