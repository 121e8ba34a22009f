"""The federation report: one verdict per check, each with its counterexample.

Same shape as the core ``Report``: a frozen value with ``verdict``, ``ok``,
``to_dict()`` / ``to_json()`` (versioned), ``render_text()`` and ``summary()``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CODES", "CheckResult", "Counterexample", "FederationReport", "RegistryResult",
           "TraceStep"]

State = dict[str, Any]

#: every check code, in report order, with what it asks
CODES = {
    "REG": "each registry passes its own verification (WFC, CC1, ...)",
    "ACYCLIC": "the morphisms form no directed cycle, or every cycle is monotone (MONO)",
    "MONO": "every map and resolver on a cycle is monotone (cycles only; least fixed point)",
    "R1": "each target's repair is a function of its sources alone",
    "M1": "overwriting a target's shared vars with any image keeps it valid",
    "R2": "M1 for a target whose shared vars are merged by a resolver",
    "C1": "a source change and a target event commute after repair",
    "C2": "two independent events of one target commute with repair between them",
    "XU": "C1 at every valid target state, plus the target's own CC there (opt-in)",
}


@dataclass(frozen=True)
class TraceStep:
    """One step of one order: ``order`` (``"order1"``/``"order2"``), what
    happened, and the target state after it."""

    order: str
    action: str
    state: State

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "action": self.action, "state": self.state}


@dataclass(frozen=True)
class Counterexample:
    """Concrete states where a check fails.

    ``sources``: the source states whose image is propagated; ``prior_sources``:
    for C1, the source states whose image the target state already carries;
    ``state``: the target state; ``events``: the target events involved;
    ``order1``/``order2``: the two final target states (equal when the check
    holds); ``trace``: every step of both orders."""

    target: str
    sources: dict[str, State]
    state: State
    events: tuple[str, ...] = ()
    order1: State | None = None
    order2: State | None = None
    prior_sources: dict[str, State] | None = None
    trace: tuple[TraceStep, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "sources": self.sources,
                "prior_sources": self.prior_sources, "state": self.state,
                "events": list(self.events), "order1": self.order1, "order2": self.order2,
                "trace": [t.to_dict() for t in self.trace], "note": self.note}


@dataclass(frozen=True)
class CheckResult:
    """One check of one subject (a registry, a target, a target event or pair).

    ``ok`` is None when the check could not run (``message`` says which other
    failure prevents it)."""

    code: str
    subject: str
    ok: bool | None
    message: str = ""
    counterexample: Counterexample | None = None
    cycle: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    #: for REG: the registry's own report (``Report.to_dict()``) when it fails
    details: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "subject": self.subject, "ok": self.ok,
                "message": self.message,
                "counterexample": (self.counterexample.to_dict()
                                   if self.counterexample else None),
                "cycle": list(self.cycle), "order": list(self.order),
                "details": self.details}


@dataclass(frozen=True)
class RegistryResult:
    name: str
    verdict: str
    states: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "states": self.states,
                "summary": self.summary}


@dataclass(frozen=True)
class FederationReport:
    """Every check of a federation; ``verdict`` is ``pass`` only when every
    check ran and held."""

    name: str
    registries: tuple[RegistryResult, ...]
    checks: tuple[CheckResult, ...]
    order: tuple[str, ...] | None
    xu: bool = False
    seconds: float = 0.0
    format_version: int = field(default=1)

    @property
    def ok(self) -> bool:
        return all(c.ok is True for c in self.checks)

    @property
    def verdict(self) -> str:
        return "pass" if self.ok else "fail"

    def results(self, code: str) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.code == code)

    def passed(self, code: str) -> bool:
        """Whether every result of ``code`` held (True when there is none)."""
        return all(c.ok is True for c in self.results(code))

    def failed_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.code for c in self.checks if c.ok is False))

    def summary(self) -> str:
        if self.ok:
            return (f"{self.name}: pass ({len(self.registries)} registries, "
                    f"{len(self.checks)} checks)")
        return f"{self.name}: fail ({', '.join(self.failed_codes()) or 'not run'})"

    def to_dict(self) -> dict[str, Any]:
        return {"format": "convergent-federation-report", "format_version": self.format_version,
                "name": self.name, "verdict": self.verdict, "xu": self.xu,
                "order": list(self.order) if self.order is not None else None,
                "registries": [r.to_dict() for r in self.registries],
                "checks": [c.to_dict() for c in self.checks],
                "failed": list(self.failed_codes()), "seconds": self.seconds}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)

    def render_text(self) -> str:
        lines = [f"federation {self.name}: {self.verdict.upper()}"]
        for r in self.registries:
            lines.append(f"  registry {r.name}: {r.verdict} ({r.states} states) {r.summary}")
        if self.order is not None:
            lines.append(f"  order: {' -> '.join(self.order)}")
        for c in self.checks:
            mark = {True: "ok  ", False: "FAIL", None: "skip"}[c.ok]
            lines.append(f"  [{mark}] {c.code:<7} {c.subject}"
                         + (f": {c.message}" if c.message else ""))
            if c.cycle:
                lines.append(f"           cycle: {' -> '.join(c.cycle)}")
            plan = (c.details or {}).get("coordination_plan")
            if plan:
                lines.append(f"           coordinate (fewest): {', '.join(plan)}")
            diag = (c.details or {}).get("diagnosis")
            if diag:
                lines.append(f"           repair around the cycle: {diag['verdict']} "
                             f"({diag['seeds_checked']} seed(s) tried)")
            cx = c.counterexample
            if c.ok is False and cx is not None:
                lines.append(f"           target state: {_fmt(cx.state)}")
                for name, st in cx.sources.items():
                    lines.append(f"           source {name}: {_fmt(st)}")
                for name, st in (cx.prior_sources or {}).items():
                    lines.append(f"           earlier source {name}: {_fmt(st)}")
                for t in cx.trace:
                    lines.append(f"           {t.order}: {t.action} -> {_fmt(t.state)}")
                if cx.order1 is not None and cx.order2 is not None:
                    lines.append(f"           order1 ends {_fmt(cx.order1)}; "
                                 f"order2 ends {_fmt(cx.order2)}")
                if cx.note:
                    lines.append(f"           {cx.note}")
        lines.append(f"  {self.summary()} in {self.seconds:.3f}s")
        return "\n".join(lines)


def _fmt(state: State | None) -> str:
    if state is None:
        return "-"
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in state.items()) + "}"
