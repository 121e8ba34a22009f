"""Symbolic checking with z3 (issue 16 item 1): an account whose balance and
holds range over 0..2^31 (2^64+ states: far past enumeration) checked for
WFC, CC1 (scope all and reachable) and CC2 in seconds; and the same account
with one more pair that fails only at the top of the range, where deposits
saturate.

    python benchmarks/bench_symbolic.py
"""

from __future__ import annotations

import platform
import statistics
import time

from convergent.spec import loads_spec
from convergent.symbolic import check_symbolic

TOP = 2**31

ACCOUNT = f"""
machine: wide_account
vars:
  balance: {{int: [0, {TOP}]}}
  held: {{int: [0, {TOP}]}}
  approved: bool
  status: {{enum: [open, frozen, closed]}}
initial: {{status: open}}
invariants:
  - name: holds_covered
    holds: held <= balance
    repair: {{held: balance}}
  - name: closed_is_empty
    holds: status != 'closed' or (balance == 0 and held == 0)
    repair: {{status: frozen}}
events:
  deposit:
    guard: status == 'open'
    apply: {{balance: balance + 100}}
  withdraw:
    guard: status == 'open' and balance - held >= 50
    apply: {{balance: balance - 50}}
  hold:
    guard: status == 'open' and balance - held >= 30
    apply: {{held: held + 30}}
  release:
    guard: held >= 30
    apply: {{held: held - 30}}
  approve:
    apply: {{approved: true}}
  capture:
    guard: approved and held >= 30
    apply: {{held: held - 30, balance: balance - 30}}
  freeze:
    apply: {{status: frozen}}
independent:
  - [deposit, approve]
  - [withdraw, approve]
  - [hold, approve]
  - [release, approve]
  - [deposit, release]
  - [freeze, approve]
"""

# capture then deposit vs deposit then capture: equal unless the deposit saturates
FAILING = ACCOUNT + "  - [capture, deposit]\n"


def timed(text: str, scope: str, runs: int = 3) -> tuple[float, str]:
    spec = loads_spec(text)
    times = []
    verdict = ""
    for _ in range(runs):
        t = time.perf_counter()
        report = check_symbolic(spec, scope=scope, strict=False)
        times.append(time.perf_counter() - t)
        verdict = report.verdict
        if report.cc1 is not None and report.cc1.counterexample is not None:
            verdict += f" at {report.cc1.counterexample.state}"
    return statistics.median(times), verdict


def main() -> None:
    print(f"# bench_symbolic  python {platform.python_version()}  {platform.machine()}")
    for name, text in (("account (holds, approvals)", ACCOUNT),
                       ("account + [capture, deposit]", FAILING)):
        for scope in ("all", "reachable"):
            secs, verdict = timed(text, scope)
            print(f"{name:32s} scope={scope:9s} {secs:7.3f} s  {verdict}")


if __name__ == "__main__":
    main()
