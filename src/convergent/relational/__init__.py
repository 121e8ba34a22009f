"""Relational state machines on asyncio: many states active at once, related by
rules (require, remove, add, after, auto, multi), in the model of
asyncmachine-go's ``pkg/machine``, plus static checks of a schema before it runs.

::

    schema = Schema.of(
        Fetching=State(remove=("Idle",)),
        Idle=State(auto=True, remove=("Fetching",)),
    )
    async with Machine(schema, handlers=handlers) as mach:
        await mach.add("Fetching")
        await mach.when("Idle")

``analyze(schema)`` reports states that can never be active, auto loops,
require cycles and mutations that are always cancelled.
"""

from .check import check
from .errors import (
    AnalysisLimitError,
    HandlerBindingError,
    HandlerTimeoutError,
    LifecycleError,
    RelationalError,
    SchemaError,
    SchemaLoadError,
    SnapshotError,
    UnknownStateError,
)
from .loader import load_schema
from .machine import LogLevel, Machine, MachineState
from .model import (
    CANCELED,
    EXECUTED,
    Event,
    Mutation,
    MutationType,
    Outcome,
    Result,
    Snapshot,
    Transition,
)
from .schema import EXCEPTION, Schema, State, StateNames
from .static import Finding, StaticReport, analyze, to_machine_spec
from .tracers import HandlerTrace, HistoryTracer, Tracer, TransitionRecord

__all__ = [
    "CANCELED",
    "EXCEPTION",
    "EXECUTED",
    "AnalysisLimitError",
    "Event",
    "Finding",
    "HandlerBindingError",
    "HandlerTimeoutError",
    "HandlerTrace",
    "HistoryTracer",
    "LifecycleError",
    "LogLevel",
    "Machine",
    "MachineState",
    "Mutation",
    "MutationType",
    "Outcome",
    "RelationalError",
    "Result",
    "Schema",
    "SchemaError",
    "SchemaLoadError",
    "Snapshot",
    "SnapshotError",
    "State",
    "StateNames",
    "StaticReport",
    "Tracer",
    "Transition",
    "TransitionRecord",
    "UnknownStateError",
    "analyze",
    "check",
    "load_schema",
    "to_machine_spec",
]
