"""Auto states whose handlers fail: the error must not retry them forever."""

from __future__ import annotations

import asyncio
import logging

import pytest

from convergent.relational import EXCEPTION, Event, Schema, State

from .helpers import assert_states, async_test, started

SCHEMA = Schema.of(Start=State(), Foo=State(auto=True))
"""``Foo`` is auto: every transition that moves a clock tries to activate it."""


@pytest.fixture(autouse=True)
def _quiet_handler_errors(caplog: pytest.LogCaptureFixture) -> None:
    """Each failure is logged with its traceback; the loop this guards against
    would log thousands of them."""
    caplog.set_level(logging.CRITICAL, logger="convergent.relational")


@async_test
async def test_always_failing_async_auto_handler_does_not_loop() -> None:
    """An auto state whose (async) enter handler always raises: the failure adds
    ``Exception``, whose clock move triggers the auto mutation, which fails
    again... Before the fix this never ended, and ``asyncio.wait_for`` fails
    the test instead of hanging.

    Rule followed: asyncmachine-go's auto states follow a transition only when
    it changed the set of active states (``pkg/machine/transition.go``, the
    "AUTO STATES" block of the transition's execution, ``hasStateChanged`` from
    ``Machine.HasStateChanged(StatesBefore)`` in ``machine.go``, as first
    written); convergent keeps it for the ``Exception`` mutation of a failed
    handler (``_transition._conclude``): ``Exception`` (``multi``) ticking again
    while already active brings no auto mutation.
    """
    calls = 0

    async def Foo_enter(e: Event) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)            # a real await: the loop can time out
        raise RuntimeError(f"Foo failed ({calls})")

    mach = await started(SCHEMA, handlers={"Foo_enter": Foo_enter})
    await asyncio.wait_for(mach.add("Start"), timeout=2.0)
    await asyncio.wait_for(mach.when_queue_ends(), timeout=2.0)
    # once after Start, once after Exception became active; not after the
    # second Exception, which only ticked the already active Exception
    assert calls == 2
    assert_states(mach, "Start", EXCEPTION)
    assert mach.tick(EXCEPTION) == 3       # activated (1), then a new instance (+2)
    assert isinstance(mach.err, RuntimeError) and str(mach.err) == "Foo failed (2)"
    await mach.aclose()


@pytest.mark.parametrize("handler", ["Foo_enter", "Foo_state"])
@async_test
async def test_always_failing_auto_handler_stops_and_retries_after_recovery(
        handler: str) -> None:
    """The same loop with a plain-function handler, negotiation or final (a
    synchronous loop that no timeout could interrupt: the handler itself stops
    failing after 20 calls, so the old code ends with ``calls == 20``).

    Rule followed: asyncmachine-go ``pkg/machine/transition.go`` (auto states
    only after a change of the active states, ``HasStateChanged``), applied to
    the ``Exception`` mutation of a failed handler. Leaving ``Exception`` is a
    change, so the auto state is tried again then (and stops again).
    """
    calls = 0

    def fail(e: Event) -> None:
        nonlocal calls
        calls += 1
        if calls < 20:
            raise RuntimeError("Foo failed")

    mach = await started(SCHEMA, handlers={handler: fail})
    await asyncio.wait_for(mach.add("Start"), timeout=2.0)
    assert calls == 2
    assert_states(mach, "Start", EXCEPTION)

    # recovering (Exception removed) changes the active states: Foo is retried,
    # fails twice more, and the machine settles in Exception again
    await asyncio.wait_for(mach.remove(EXCEPTION), timeout=2.0)
    await asyncio.wait_for(mach.when_queue_ends(), timeout=2.0)
    assert calls == 4
    assert_states(mach, "Start", EXCEPTION)
    await mach.aclose()


@async_test
async def test_auto_state_requiring_exception_still_follows_the_first_error() -> None:
    """The rule skips auto states only after an ``Exception`` mutation that
    changed no active state: the first error still activates ``Exception``, and
    an auto state that requires it (a recovery step) follows."""

    schema = Schema.of(Start=State(), Recover=State(auto=True, require=(EXCEPTION,)))

    def Start_state(e: Event) -> None:
        raise RuntimeError("Start failed")

    mach = await started(schema, handlers={"Start_state": Start_state})
    await asyncio.wait_for(mach.add("Start"), timeout=2.0)
    assert_states(mach, EXCEPTION, "Recover")
