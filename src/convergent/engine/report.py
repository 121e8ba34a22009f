"""The verification report: one value that feeds the CLI text, ``--json``,
``ConvergenceError`` and the built Machine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CC1Counterexample",
    "CC1Result",
    "CC2Counterexample",
    "CC2Result",
    "Findings",
    "Report",
    "StateCounts",
    "WFCCounterexample",
    "WFCResult",
]

State = dict[str, Any]


@dataclass(frozen=True)
class StateCounts:
    total: int
    valid: int
    reachable: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "valid": self.valid, "reachable": self.reachable}


@dataclass(frozen=True)
class WFCCounterexample:
    """``state`` loops under repairs: ``path`` lists the states repaired
    before the loop, ``cycle`` the loop, ``repairs`` the invariant repaired at
    each step of the loop, ``trace`` a shortest run of events from the initial
    state whose last event produces ``state`` (None when no run does)."""

    state: State
    cycle: list[State]
    repairs: list[str]
    trace: list[str] | None = None
    path: list[State] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "path": self.path or [], "cycle": self.cycle,
                "repairs": self.repairs, "trace": self.trace}


@dataclass(frozen=True)
class WFCResult:
    ok: bool
    max_depth: int | None
    counterexample: WFCCounterexample | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "max_depth": self.max_depth,
                "counterexample": self.counterexample.to_dict() if self.counterexample else None}


@dataclass(frozen=True)
class CC1Counterexample:
    events: tuple[str, str]
    state: State
    trace: list[str] | None
    order1: State
    order2: State

    def to_dict(self) -> dict[str, Any]:
        return {"events": list(self.events), "state": self.state, "trace": self.trace,
                "order1": self.order1, "order2": self.order2}


@dataclass(frozen=True)
class CC1Result:
    ok: bool
    scope: str
    pairs: int
    ok_reachable: bool
    ok_all_valid: bool
    counterexample: CC1Counterexample | None
    counterexample_all_valid: CC1Counterexample | None
    failing_pairs: list[tuple[str, str]] = field(default_factory=list)
    failing_pairs_all_valid: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "scope": self.scope, "pairs": self.pairs,
            "ok_reachable": self.ok_reachable, "ok_all_valid": self.ok_all_valid,
            "counterexample": self.counterexample.to_dict() if self.counterexample else None,
            "counterexample_all_valid": (self.counterexample_all_valid.to_dict()
                                         if self.counterexample_all_valid else None),
            "failing_pairs": [list(p) for p in self.failing_pairs],
            "failing_pairs_all_valid": [list(p) for p in self.failing_pairs_all_valid],
        }


@dataclass(frozen=True)
class CC2Counterexample:
    event: str
    state: State
    direct: State
    after_repair: State

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "state": self.state, "direct": self.direct,
                "after_repair": self.after_repair}


@dataclass(frozen=True)
class CC2Result:
    ok: bool
    counterexample: CC2Counterexample | None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok,
                "counterexample": self.counterexample.to_dict() if self.counterexample else None}


@dataclass(frozen=True)
class Findings:
    never_fire: list[str]
    never_fail: list[str]
    saturating: list[dict[str, Any]]
    unreachable_valid: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"never_fire": self.never_fire, "never_fail": self.never_fail,
                "saturating": self.saturating, "unreachable_valid": self.unreachable_valid}


@dataclass(frozen=True)
class Report:
    """What ``check`` learned. ``verdict`` is ``"pass"`` exactly when WFC holds
    and CC1 holds in scope (``strict`` also needs CC2 and CC1 at every valid
    state)."""

    machine: str
    verdict: str
    scope: str
    strict: bool
    states: StateCounts
    wfc: WFCResult
    cc1: CC1Result | None
    cc2: CC2Result | None
    footprints: dict[str, dict[str, list[str]]]
    invariant_footprints: dict[str, dict[str, list[str]]]
    findings: Findings | None
    warnings: list[str]
    seconds: dict[str, float]
    initial: State
    events: list[str]
    version: int = 1
    policy_digest: str = ""
    delivery: dict[str, Any] | None = None
    #: how the proof was done: {"kind": "enumeration"} or {"kind": "composition",
    #: "components": [...]} (see engine/compose.py)
    method: dict[str, Any] | None = None

    @property
    def initial_digest(self) -> str:
        """SHA-256 of the (normalized) initial state under this policy."""
        from .digest import state_digest
        return state_digest(self.policy_digest, self.initial)

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        skipped = {"ok": None, "skipped": "normalization does not terminate (WFC fails)"}
        return {
            "machine": self.machine,
            "version": self.version,
            "verdict": self.verdict,
            "policy_digest": self.policy_digest,
            "initial_digest": self.initial_digest,
            "scope": self.scope,
            "strict": self.strict,
            "states": self.states.to_dict(),
            "initial": self.initial,
            "wfc": self.wfc.to_dict(),
            "cc1": self.cc1.to_dict() if self.cc1 else dict(skipped),
            "cc2": self.cc2.to_dict() if self.cc2 else dict(skipped),
            "footprints": self.footprints,
            "invariant_footprints": self.invariant_footprints,
            "findings": self.findings.to_dict() if self.findings else None,
            "delivery": self.delivery,
            "method": self.method or {"kind": "enumeration"},
            "warnings": self.warnings,
            "seconds": self.seconds,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def summary(self) -> str:
        """One paragraph: the verdict and the first reason."""
        if self.ok:
            return f"{self.machine}: pass"
        if not self.wfc.ok:
            return f"{self.machine}: fail: normalization does not terminate (WFC)"
        cc1 = self.cc1
        assert cc1 is not None
        cex = cc1.counterexample or cc1.counterexample_all_valid
        if cex is not None and not (cc1.ok and cc1.ok_all_valid):
            a, b = cex.events
            return (f"{self.machine}: fail: {a} and {b} do not commute at "
                    f"{_fmt_state(cex.state)}")
        if self.cc2 and not self.cc2.ok and self.cc2.counterexample:
            return (f"{self.machine}: fail (strict): CC2 fails for "
                    f"{self.cc2.counterexample.event}")
        return f"{self.machine}: fail"

    def render_text(self) -> str:
        from .render import render_report
        return render_report(self)

    def _repr_html_(self) -> str:
        """Jupyter: verdicts, counts and the counterexample (``convergent.viz.notebook``)."""
        from ..viz.notebook import report_html
        return report_html(self)


def _fmt_state(state: State) -> str:
    return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in state.items()) + "}"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
