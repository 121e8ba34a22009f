"""Benchmarks of convergent.relational.

    python benchmarks/bench_relational.py            # a table
    python benchmarks/bench_relational.py --json     # machine-readable
    python benchmarks/bench_relational.py --quick    # fewer rounds (CI smoke)
    python benchmarks/bench_relational.py --cpu      # throughput by CPU time

Measures mutations per second (``await machine.add``) without tracers, with the
history tracer, with synchronous handlers (three, and one ``Foo_state`` per
state), with an async handler, and with ``add_nowait`` batches; the latency from a mutation to a task awaiting ``machine.when``
resuming; and the time of the static analysis of a 12-state schema
(exhaustive), of a 64-state one in nine independent parts, and of a 64-state
one whose states are all related (explored one reachable set at a time).
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

clock: Callable[[], float] = time.perf_counter
"""The clock of the throughput figures: wall time, or with ``--cpu`` the
process's CPU time (steadier on a machine shared with other work)."""


async def _pairs(mach: Machine, n: int) -> float:
    await mach.add("Start")
    add = mach.add
    t0 = clock()
    for _ in range(n // 2):
        await add("Busy")
        await add("Idle")
    return clock() - t0


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


class OneHandlerPerState:
    """A ``Foo_state`` handler for every state of ``SCHEMA`` (one handler per
    state, the shape of most real machines)."""

    def __init__(self) -> None:
        self.count = 0

    def _hit(self, e: Event) -> None:
        self.count += 1

    Start_state = Idle_state = Busy_state = Working_state = _hit
    Ready_state = Stopped_state = Exception_state = _hit


async def one_handler_per_state(n: int) -> float:
    handlers = OneHandlerPerState()
    rate = await mutations(n, handlers=handlers)
    # Start, then Busy (+Working) and Idle alternately: every activation ran its handler
    assert handlers.count == 1 + n // 2 * 3, handlers.count
    return rate


class AsyncHandlers:
    async def Busy_state(self, e: Event) -> None:
        await asyncio.sleep(0)


async def nowait_batches(n: int, batch: int = 1000) -> float:
    async with Machine(SCHEMA) as mach:
        await mach.add("Start")
        t0 = clock()
        for _ in range(n // batch):
            for i in range(batch // 2):
                # distinct args defeat the queue's dedup of identical mutations
                mach.add_nowait("Busy", args={"i": i})
                mach.add_nowait("Idle", args={"i": i})
            await mach.when_queue_ends()
        return n / (clock() - t0)


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


def schema_64() -> Schema:
    """64 states: nine copies of the worker (with an auto ``Healthy``), each
    related only inside itself, and ``Exception``."""
    states: dict[str, State] = {}
    for i in range(9):
        def ren(names: tuple[str, ...], p: str = f"W{i}") -> tuple[str, ...]:
            return tuple(p + n for n in names)

        for name, st in AUTO_SCHEMA.items():
            if name != "Exception":
                states[f"W{i}{name}"] = State(require=ren(st.require), remove=ren(st.remove),
                                              add=ren(st.add), after=ren(st.after),
                                              auto=st.auto, multi=st.multi)
    return Schema.from_dict(states, name="workers-64")


def modes_64() -> Schema:
    """64 related states: 60 modes excluding each other and four more."""
    modes = [f"Mode{i}" for i in range(60)]
    states = {m: State(remove=tuple(x for x in modes if x != m)) for m in modes}
    states["Online"] = State(require=("Mode0",), auto=True)
    states["Syncing"] = State(require=("Online",), remove=("Mode1",))
    states["Broken"] = State(require=("Mode2", "Mode3"))
    return Schema.from_dict(states, name="modes-64")


def static_analysis_64_related() -> dict[str, float]:
    """``modes_64``: one part of 63 states, explored one reachable set at a time."""
    schema = modes_64()
    t0 = time.perf_counter()
    report = analyze(schema)
    return {"states": float(len(schema)), "reachable": float(report.reachable),
            "seconds": time.perf_counter() - t0}


def static_analysis_64() -> dict[str, float]:
    """The decomposed analysis (``analyze`` past 16 states) of ``schema_64``."""
    schema = schema_64()
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
    parser.add_argument("--cpu", action="store_true",
                        help="throughput by CPU time instead of wall time")
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.cpu else time.perf_counter
    n = 20_000 if args.quick else 200_000
    repeat = 1 if args.quick else 3

    results: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "clock": "cpu" if args.cpu else "wall",
        "mutations_per_s": {
            "no_tracers": best(lambda: mutations(n), repeat),
            "history_tracer": best(lambda: mutations(n, tracers=[HistoryTracer()]), repeat),
            "sync_handlers": best(lambda: mutations(n, handlers=SyncHandlers()), repeat),
            "one_handler_per_state": best(lambda: one_handler_per_state(n), repeat),
            "auto_state": best(lambda: mutations(n, schema=AUTO_SCHEMA), repeat),
            "async_handler": best(lambda: mutations(n // 10, handlers=AsyncHandlers()), repeat),
            "add_nowait_batches": best(lambda: nowait_batches(n), repeat),
        },
        "when_latency": asyncio.run(when_latency(2_000 if args.quick else 20_000)),
        "static_analysis": static_analysis(),
        "static_analysis_64": static_analysis_64(),
        "static_analysis_64_related": static_analysis_64_related(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"convergent.relational on {results['implementation']} {results['python']} "
          f"({results['clock']} time)")
    for name, value in results["mutations_per_s"].items():
        print(f"  {name:<20} {value:>12,.0f} mutations/s")
    lat = results["when_latency"]
    print(f"  when() latency       median {lat['median_us']:.1f} us, p99 {lat['p99_us']:.1f} us")
    for key in ("static_analysis", "static_analysis_64", "static_analysis_64_related"):
        st = results[key]
        print(f"  analyze()            {st['states']:.0f} states, {st['reachable']:.0f} "
              f"reachable sets, {st['seconds'] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
