"""How the queue runs transitions: plain-function handlers without an event
loop turn, handlers that return something to await, and cancellation while a
transition waits on one."""

from __future__ import annotations

import asyncio
from typing import Any

from convergent.relational import Event, Machine, Outcome, Schema, State

from .helpers import NOREL, assert_states, async_test


@async_test
async def test_plain_handlers_run_without_an_event_loop_turn() -> None:
    ran: list[str] = []
    async with Machine(NOREL, handlers={"A_state": lambda e: ran.append("A"),
                                        "B_enter": lambda e: True}) as mach:
        turned = asyncio.Event()
        asyncio.get_running_loop().call_soon(turned.set)
        assert (await mach.add("A", "B")).executed
        assert ran == ["A"] and not turned.is_set()
        await asyncio.sleep(0)
        assert turned.is_set()


@async_test
async def test_a_plain_function_returning_a_coroutine_is_awaited() -> None:
    async def refuse() -> bool:
        await asyncio.sleep(0)
        return False

    async with Machine(NOREL, handlers={"B_enter": lambda e: refuse()}) as mach:
        assert (await mach.add("B")).canceled
        assert not mach.is_active("B")
        assert (await mach.add("A")).executed


class First:
    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.go = asyncio.Event()

    async def A_state(self, e: Event) -> None:
        self.order.append("first:start")
        await self.go.wait()
        self.order.append("first:end")


class Second:
    def __init__(self, order: list[str]) -> None:
        self.order = order

    def A_state(self, e: Event) -> None:
        self.order.append("second")


@async_test
async def test_a_suspended_transition_finishes_its_group_and_the_queue_goes_on() -> None:
    order: list[str] = []
    first = First(order)
    async with Machine(NOREL, handlers=[first, Second(order)]) as mach:
        caller = asyncio.ensure_future(mach.add("A"))
        while not order:
            await asyncio.sleep(0)              # until inside First.A_state
        assert order == ["first:start"]
        queued = await mach.add("B")            # another task: the queue is running
        assert queued.outcome is Outcome.QUEUED
        first.go.set()
        assert (await caller).executed
        assert order == ["first:start", "first:end", "second"]
        await mach.when_queue(queued)
        assert_states(mach, "A", "B")


@async_test
async def test_cancelling_the_caller_inside_an_async_handler_reverts_and_keeps_the_queue() -> None:
    started = asyncio.Event()

    async def A_state(e: Event) -> None:
        started.set()
        await asyncio.sleep(5)

    async with Machine(NOREL, handlers={"A_state": A_state}) as mach:
        caller = asyncio.ensure_future(mach.add("A"))
        await started.wait()
        later = mach.add_nowait("C")
        caller.cancel()
        try:
            await caller
        except asyncio.CancelledError:
            pass
        else:  # pragma: no cover
            raise AssertionError("the caller was not cancelled")
        assert not mach.is_active("A") and mach.tick("A") == 2   # put back
        await asyncio.wait_for(mach.when_queue(later), 2)          # the queue went on
        assert_states(mach, "C")


@async_test
async def test_closing_the_machine_inside_an_async_handler_ends_the_run() -> None:
    started = asyncio.Event()

    async def B_state(e: Event) -> None:
        started.set()
        await asyncio.sleep(5)

    mach = Machine(Schema.of(B=State()), handlers={"B_state": B_state})
    await mach.start()
    mach.add_nowait("B")
    await started.wait()
    await asyncio.wait_for(mach.aclose(), 2)
    assert not mach.is_active("B")


class _Counting(Machine):
    """Counts the transitions that take the synchronous plain path."""

    plain = 0

    def _plain_transition(self, mut: Any, plan: Any) -> Any:
        self.plain += 1
        return super()._plain_transition(mut, plan)


class _Tracer:
    def transition_end(self, tx: object) -> None:
        pass


@async_test
async def test_final_handlers_alone_take_the_plain_path() -> None:
    finals = {"A_state": lambda e: None, "B_end": lambda e: None}
    async with _Counting(NOREL, handlers=finals) as mach:
        await mach.add("A", "B")
        await mach.remove("B")
        assert mach.plain == 2
    # a negotiation handler, a tracer or an any_state handler: the general path
    for kwargs in ({"handlers": {**finals, "B_enter": lambda e: True}},
                   {"handlers": finals, "tracers": [_Tracer()]},
                   {"handlers": {**finals, "any_state": lambda e: None}}):
        async with _Counting(NOREL, **kwargs) as other:
            await other.add("A", "B")
            assert other.plain == 0 and other.is_active("A", "B")
