"""Benchmarks of convergent.relational.

    python benchmarks/bench_relational.py            # a table
    python benchmarks/bench_relational.py --json     # machine-readable
    python benchmarks/bench_relational.py --quick    # fewer rounds (CI smoke)

Measures mutations per second (``await machine.add``) without tracers, with the
history tracer, with synchronous and async handlers, and with ``add_nowait``
batches; the latency from a mutation to a task awaiting ``machine.when``
resuming; and the time of the static analysis of a 12-state schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from convergent.relational import Event, HistoryTracer, Machine, Schema, State, analyze

# a worker: two exclusive activity states, a requirement, an add and an order
SCHEMA = Schema.of(
    Start=State(),
    Idle=State(require=("Start",), remove=("Busy",)),
    Busy=State(require=("Start",), remove=("Idle",), add=("Working",)),
    Working=State(require=("Busy",), after=("Busy",)),
    Ready=State(),
    Stopped=State(remove=("Start",)),
    name="worker",
)
AUTO_SCHEMA = SCHEMA.extend(Healthy=State(auto=True, require=("Idle",)))


async def _pairs(mach: Machine, n: int) -> float:
    await mach.add("Start")
    add = mach.add
    t0 = time.perf_counter()
    for _ in range(n // 2):
        await add("Busy")
        await add("Idle")
    return time.perf_counter() - t0


async def mutations(n: int, **machine_kwargs: Any) -> float:
    schema = machine_kwargs.pop("schema", SCHEMA)
    async with Machine(schema, **machine_kwargs) as mach:
        elapsed = await _pairs(mach, n)
        # every mutation really ran: Busy went on and off n // 2 times
        assert mach.tick("Busy") == n // 2 * 2 and mach.is_active("Idle"), mach.string_all()
    return n / elapsed


class SyncHandlers:
    def __init__(self) -> None:
        self.count = 0

    def Busy_enter(self, e: Event) -> bool:
        return True

    def Busy_state(self, e: Event) -> None:
        self.count += 1

    def Idle_state(self, e: Event) -> None:
        self.count += 1


class AsyncHandlers:
    async def Busy_state(self, e: Event) -> None:
        await asyncio.sleep(0)


async def nowait_batches(n: int, batch: int = 1000) -> float:
    async with Machine(SCHEMA) as mach:
        await mach.add("Start")
        t0 = time.perf_counter()
        for _ in range(n // batch):
            for i in range(batch // 2):
                # distinct args defeat the queue's dedup of identical mutations
                mach.add_nowait("Busy", args={"i": i})
                mach.add_nowait("Idle", args={"i": i})
            await mach.when_queue_ends()
        return n / (time.perf_counter() - t0)


async def when_latency(rounds: int) -> dict[str, float]:
    samples: list[float] = []
    async with Machine(SCHEMA) as mach:
        await mach.add("Start", "Idle")
        async def waiter(resumed: list[float]) -> None:
            await mach.when("Busy")
            resumed.append(time.perf_counter())

        for _ in range(rounds):
            resumed: list[float] = []
            task = asyncio.ensure_future(waiter(resumed))
            await asyncio.sleep(0)  # the waiter is registered and waiting
            t0 = time.perf_counter()
            await mach.add("Busy")
            await task
            samples.append((resumed[0] - t0) * 1e6)
            await mach.add("Idle")
    samples.sort()
    return {"median_us": statistics.median(samples),
            "p99_us": samples[int(len(samples) * 0.99) - 1],
            "rounds": float(rounds)}


def static_analysis() -> dict[str, float]:
    states: dict[str, State] = {}
    for i in range(5):
        states[f"Step{i}"] = State(require=(f"Step{i - 1}",) if i else (),
                                   remove=(f"Fail{i}",))
        states[f"Fail{i}"] = State(remove=(f"Step{i}",))
    states["Done"] = State(require=("Step4",), auto=True)
    schema = Schema.from_dict(states, name="pipeline")
    t0 = time.perf_counter()
    report = analyze(schema)
    return {"states": float(len(schema)), "reachable": float(report.reachable),
            "seconds": time.perf_counter() - t0}


def best(fn: Callable[[], Awaitable[float]], repeat: int) -> float:
    return max(asyncio.run(fn()) for _ in range(repeat))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else 200_000
    repeat = 1 if args.quick else 3

    results: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "mutations_per_s": {
            "no_tracers": best(lambda: mutations(n), repeat),
            "history_tracer": best(lambda: mutations(n, tracers=[HistoryTracer()]), repeat),
            "sync_handlers": best(lambda: mutations(n, handlers=SyncHandlers()), repeat),
            "auto_state": best(lambda: mutations(n, schema=AUTO_SCHEMA), repeat),
            "async_handler": best(lambda: mutations(n // 10, handlers=AsyncHandlers()), repeat),
            "add_nowait_batches": best(lambda: nowait_batches(n), repeat),
        },
        "when_latency": asyncio.run(when_latency(2_000 if args.quick else 20_000)),
        "static_analysis": static_analysis(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"convergent.relational on {results['implementation']} {results['python']}")
    for name, value in results["mutations_per_s"].items():
        print(f"  {name:<20} {value:>12,.0f} mutations/s")
    lat = results["when_latency"]
    print(f"  when() latency       median {lat['median_us']:.1f} us, p99 {lat['p99_us']:.1f} us")
    st = results["static_analysis"]
    print(f"  analyze()            {st['states']:.0f} states, {st['reachable']:.0f} reachable "
          f"sets, {st['seconds'] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
