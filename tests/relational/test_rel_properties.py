"""Properties over random schemas and random mutation sequences."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent.relational import Machine, Schema, Snapshot, State
from convergent.relational.static import FiniteModel

NAMES = ("A", "B", "C", "D", "E")
KINDS = ("add", "remove", "set")
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def schemas(draw: Any, max_states: int = 5) -> Schema:
    n = draw(st.integers(2, max_states))
    names = NAMES[:n]
    rel = st.lists(st.sampled_from(names), max_size=2, unique=True)
    states = []
    for name in names:
        require = draw(rel)
        remove = [s for s in draw(rel) if s not in require]
        states.append((name, State(require=tuple(require), remove=tuple(remove),
                                   add=tuple(draw(rel)), after=tuple(draw(rel)),
                                   auto=draw(st.booleans()), multi=draw(st.booleans()))))
    return Schema(tuple(states))


@st.composite
def scenarios(draw: Any) -> tuple[Schema, list[tuple[str, tuple[str, ...]]]]:
    schema = draw(schemas())
    names = [n for n in schema.names if n != "Exception"]
    called = st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)
    ops = draw(st.lists(st.tuples(st.sampled_from(KINDS), called.map(tuple)), max_size=12))
    return schema, ops


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@SETTINGS
@given(scenarios())
def test_runtime_agrees_with_the_static_transition_function(scenario: Any) -> None:
    schema, ops = scenario
    model = FiniteModel(schema)
    index = model.compiled.index
    kinds = {"add": 0, "remove": 1, "set": 2}

    async def main() -> None:
        async with Machine(schema) as mach:
            mask = 0
            for kind, states in ops:
                res = await getattr(mach, kind)(*states)
                step = model.apply(mask, kinds[kind], [index[s] for s in states])
                mask = step.after
                active = {n for i, n in enumerate(model.names) if mask >> i & 1}
                assert set(mach.active_states) == active, (kind, states, mach.string_all())
                assert res.executed == step.executed

    run(main())


@SETTINGS
@given(scenarios(), st.sets(st.sampled_from([f"{s}_{h}" for s in NAMES
                                             for h in ("enter", "exit")])))
def test_clock_parity_is_activity_and_cancelled_changes_nothing(
        scenario: Any, refusing: set[str]) -> None:
    schema, ops = scenario
    handlers = {name: (lambda e: False) for name in refusing
                if name.split("_")[0] in schema}

    async def main() -> None:
        async with Machine(schema, handlers=handlers) as mach:
            for kind, states in ops:
                before = mach.time()
                res = await getattr(mach, kind)(*states)
                if res.canceled:
                    assert mach.time() == before, (kind, states)
                for name, tick in mach.clock().items():
                    assert (tick % 2 == 1) == mach.is_active(name)
                assert len(set(mach.active_states)) == len(mach.active_states)
                for name in mach.active_states:
                    assert all(mach.is_active(r) for r in schema[name].require)

    run(main())


@SETTINGS
@given(scenarios())
def test_snapshot_round_trip(scenario: Any) -> None:
    schema, ops = scenario

    async def main() -> None:
        async with Machine(schema, id="one") as mach:
            for kind, states in ops:
                await getattr(mach, kind)(*states)
            snap = Snapshot.from_dict(mach.export().to_dict())
            async with Machine(schema, id="one") as copy:
                copy.load(snap)
                assert copy.string_all() == mach.string_all()
                assert copy.active_states == tuple(n for n in schema.names
                                                   if mach.is_active(n))

    run(main())


@SETTINGS
@given(scenarios())
def test_final_handlers_run_once_per_tick(scenario: Any) -> None:
    """``X_state`` runs once per activation (a multi re-entry ticks by 2 and runs
    it again), ``X_end`` once per deactivation: both follow from the clock."""
    schema, ops = scenario
    calls: list[str] = []
    handlers: dict[str, Any] = {}

    def recorder(tag: str) -> Any:
        return lambda e: calls.append(tag)

    for n in schema.names:
        handlers[f"{n}_state"] = recorder(f"{n}+")
        handlers[f"{n}_end"] = recorder(f"{n}-")

    async def main() -> None:
        async with Machine(schema, handlers=handlers) as mach:
            for kind, states in ops:
                await getattr(mach, kind)(*states)
            for n, tick in mach.clock().items():
                assert calls.count(f"{n}+") == (tick + 1) // 2, (n, tick, calls)
                if not schema[n].multi:
                    assert calls.count(f"{n}-") == tick // 2, (n, tick, calls)

    run(main())


class _Observer:
    """A tracer: its presence makes the machine take the full (observed) path."""

    def transition_end(self, tx: Any) -> None:
        pass


@SETTINGS
@given(scenarios())
def test_fast_path_agrees_with_observed_path(scenario: Any) -> None:
    schema, ops = scenario

    async def main() -> None:
        async with Machine(schema) as fast, Machine(schema, tracers=[_Observer()]) as full:
            for kind, states in ops:
                r1 = await getattr(fast, kind)(*states)
                r2 = await getattr(full, kind)(*states)
                assert r1 == r2, (kind, states)
                assert fast.string_all() == full.string_all(), (kind, states)
                assert fast.active_states == full.active_states
                assert fast.queue_tick == full.queue_tick

    run(main())


SHARED_RULES = ("_plan_of", "_plan", "_settle_auto", "_apply_plan", "_conclude")


def test_both_paths_run_the_shared_rules(monkeypatch: Any) -> None:
    """The fast and the observed path differ only by what they run around one
    set of transition rules (``_transition.TransitionMixin``): each path calls
    every rule, and each machine takes only its own path."""
    calls: dict[str, set[str]] = {}

    def spy(name: str) -> Any:
        original = getattr(Machine, name)

        def wrapper(self: Machine, *args: Any, **kwargs: Any) -> Any:
            calls.setdefault(self.id, set()).add(name)
            return original(self, *args, **kwargs)
        return wrapper

    for name in (*SHARED_RULES, "_fast_transition", "_transition"):
        monkeypatch.setattr(Machine, name, spy(name))
    schema = Schema.of(A=State(), B=State(auto=True, require=("A",)))

    async def main() -> None:
        async with Machine(schema, id="fast") as fast, \
                Machine(schema, id="full", tracers=[_Observer()]) as full:
            for mach in (fast, full):
                assert (await mach.add("A")).executed
                assert mach.is_active("B")
                assert (await mach.remove("A")).executed

    run(main())
    assert calls["fast"] == {*SHARED_RULES, "_fast_transition"}
    assert calls["full"] == {*SHARED_RULES, "_transition"}


def _final_handlers(schema: Schema, calls: list[str], failing: str | None,
                    awaiting: str | None) -> dict[str, Any]:
    """``Foo_state`` and ``Foo_end`` for every state, recording calls; the one
    named ``failing`` raises, the one named ``awaiting`` is ``async``."""
    table: dict[str, Any] = {}
    for state in schema.names:
        for suffix in ("state", "end"):
            name = f"{state}_{suffix}"

            def record(e: Any, name: str = name) -> None:
                calls.append(f"{name}@{e.machine.tick(name.split('_')[0])}")
                if name == failing:
                    raise RuntimeError(name)

            async def record_async(e: Any, record: Any = record) -> None:
                await asyncio.sleep(0)
                record(e)

            table[name] = record_async if name == awaiting else record
    return table


@SETTINGS
@given(scenarios(), st.data())
def test_plain_path_agrees_with_observed_path(scenario: Any, data: Any) -> None:
    """With final handlers only and nothing else observing, the queue runs
    transitions synchronously (``_plain_transition``); with a tracer too, the
    general coroutine path. Both give the same results, states, clocks, errors
    and handler calls, a failing and an ``async`` handler included."""
    schema, ops = scenario
    handler_names = [f"{s}_{x}" for s in schema.names for x in ("state", "end")]
    # with auto states, a handler that always raises can loop: its transition
    # is put back, the error moves Exception's clock, the auto mutation follows
    # and fails again (there is no back-off); not a difference between paths
    auto = any(schema[s].auto for s in schema.names)
    failing = None if auto else data.draw(st.none() | st.sampled_from(handler_names))
    awaiting = data.draw(st.none() | st.sampled_from(handler_names))

    async def main() -> None:
        calls_plain: list[str] = []
        calls_full: list[str] = []
        plain = Machine(schema, handlers=_final_handlers(schema, calls_plain, failing, awaiting))
        full = Machine(schema, handlers=_final_handlers(schema, calls_full, failing, awaiting),
                       tracers=[_Observer()])
        async with plain, full:
            for kind, states in ops:
                r1 = await getattr(plain, kind)(*states)
                r2 = await getattr(full, kind)(*states)
                assert r1 == r2, (kind, states)
                await plain.when_queue_ends()
                await full.when_queue_ends()
                assert plain.string_all() == full.string_all(), (kind, states)
                assert plain.active_states == full.active_states
                assert calls_plain == calls_full
                assert repr(plain.err) == repr(full.err)

    run(asyncio.wait_for(main(), 10))
