"""What both file formats share: the metadata of a machine, its tables in file
dtypes, the content hash over numpy arrays, and the way back to a Machine.

The format itself (constants, canonical JSON, the hashed head) is defined in
``convergent.lite`` so the dependency-free runtime and this module cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import lite
from ..engine.report import (
    CC1Counterexample,
    CC1Result,
    CC2Counterexample,
    CC2Result,
    Findings,
    Report,
    StateCounts,
    WFCCounterexample,
    WFCResult,
)
from ..errors import MachineUsageError
from ..spec.model import Family, Var
from ._errors import MachineFileError

if TYPE_CHECKING:  # pragma: no cover
    from ..machine import Machine


def var_entry(v: Var) -> dict[str, Any]:
    """A var as written in files: gsm's keys (name, kind, labels, min, max) plus
    ``domain`` (the number of values) and, for ints, ``overflow``."""
    if v.kind == "bool":
        return {"name": v.name, "kind": "bool", "domain": 2}
    if v.kind == "enum":
        return {"name": v.name, "kind": "enum", "domain": v.size, "labels": list(v.values)}
    return {"name": v.name, "kind": "int", "domain": v.size, "min": v.lo, "max": v.hi,
            "overflow": v.overflow}


def var_from_entry(d: Mapping[str, Any]) -> Var:
    """A Var from an entry completed by ``lite._check_var``."""
    if d["kind"] == "bool":
        return Var.boolean(d["name"])
    if d["kind"] == "enum":
        return Var.enum(d["name"], *d["labels"])
    overflow = d.get("overflow", "clamp")
    if overflow not in ("clamp", "error"):
        raise MachineFileError(f"var {d['name']!r}: overflow={overflow!r} "
                               "(expected clamp or error)")
    return Var.integer(d["name"], d["min"], d["max"], overflow)


def verification_block(m: Machine) -> dict[str, Any]:
    """The report's verdicts under gsm's keys (wfc, cc, max_repair_depth,
    state_count, event_count), convergent's own, and the whole report."""
    r = m.report
    if r is None:
        return {"verified": False, "verdict": "unknown", "wfc": None, "cc": None,
                "state_count": m.size, "event_count": len(m.events)}
    return {
        "verified": r.ok,
        "verdict": r.verdict,
        "wfc": r.wfc.ok,
        "cc": bool(r.cc1 is not None and r.cc1.ok),
        "cc2": None if r.cc2 is None else r.cc2.ok,
        "max_repair_depth": r.wfc.max_depth,
        "state_count": m.size,
        "event_count": len(m.events),
        "valid_count": r.states.valid,
        "reachable_count": r.states.reachable,
        "scope": r.scope,
        "strict": r.strict,
        "report": r.to_dict(),
    }


def metadata(m: Machine, *, fires: bool) -> dict[str, Any]:
    """Everything a file says about ``m`` except the tables and the hash."""
    return {
        "format": lite.FORMAT,
        "format_version": lite.FORMAT_VERSION,
        "name": m.name,
        "version": m.version,
        "hash": "",
        "encoding": {"type": "mixed-radix", "radix": [v.size for v in m.vars],
                     "least_significant": "first"},
        "vars": [var_entry(v) for v in m.vars],
        "events": list(m.events),
        "initial": m.initial.id,
        "states": m.size,
        "independent": sorted(sorted(p) for p in m.independent),
        "policy_digest": m.policy_digest,
        "tables": {"width": lite.table_width(m.size), "fires": fires},
        "verification": verification_block(m),
        **({"families": {f.name: {"params": [var_entry(p) for p in f.params],
                                  "instances": list(f.instances)}
                         for f in m.families.values()}}
           if m.families else {}),
    }


def has_fires(m: Machine) -> bool:
    try:
        m.fires_table
    except MachineUsageError:
        return False
    return True


def file_tables(m: Machine, *, fires: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """nf, step (and fires as 0/1 bytes) in the file dtypes, C-contiguous."""
    dt = np.dtype(f"<u{lite.table_width(m.size)}")
    nf = np.ascontiguousarray(m.nf_table, dtype=dt)
    step = np.ascontiguousarray(m.tables, dtype=dt)
    f = np.ascontiguousarray(m.fires_table, dtype=np.uint8) if fires else None
    return nf, step, f


def _bytes(a: np.ndarray) -> memoryview:
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8).data


def hash_tables(meta: Mapping[str, Any], nf: np.ndarray, step: np.ndarray,
                fires: np.ndarray | None) -> str:
    parts = [_bytes(nf), _bytes(step)] + ([_bytes(fires)] if fires is not None else [])
    return lite.content_hash(lite.hash_head(meta), parts)


# ------------------------------------------------------------ back to a Machine

def report_from_dict(d: Mapping[str, Any], events: list[str]) -> Report:
    """The Report whose ``to_dict()`` is ``d`` (``events`` is not in the dict)."""
    def cc1_cex(x: Any) -> CC1Counterexample | None:
        return None if x is None else CC1Counterexample(
            events=tuple(x["events"]), state=x["state"], trace=x["trace"],
            order1=x["order1"], order2=x["order2"])

    w = d["wfc"]
    wcex = w.get("counterexample")
    cc1 = d.get("cc1")
    cc1r = None
    if cc1 is not None and "skipped" not in cc1:
        cc1r = CC1Result(
            ok=cc1["ok"], scope=cc1["scope"], pairs=cc1["pairs"],
            ok_reachable=cc1["ok_reachable"], ok_all_valid=cc1["ok_all_valid"],
            counterexample=cc1_cex(cc1["counterexample"]),
            counterexample_all_valid=cc1_cex(cc1["counterexample_all_valid"]),
            failing_pairs=[(a, b) for a, b in cc1["failing_pairs"]],
            failing_pairs_all_valid=[(a, b) for a, b in cc1["failing_pairs_all_valid"]],
        )
    cc2 = d.get("cc2")
    cc2r = None
    if cc2 is not None and "skipped" not in cc2:
        x = cc2["counterexample"]
        cc2r = CC2Result(ok=cc2["ok"], counterexample=None if x is None else CC2Counterexample(
            event=x["event"], state=x["state"], direct=x["direct"],
            after_repair=x["after_repair"]))
    f = d.get("findings")
    return Report(
        machine=d["machine"], verdict=d["verdict"], scope=d["scope"], strict=d["strict"],
        states=StateCounts(**d["states"]),
        wfc=WFCResult(ok=w["ok"], max_depth=w["max_depth"],
                      counterexample=None if wcex is None else WFCCounterexample(**wcex)),
        cc1=cc1r, cc2=cc2r, footprints=d["footprints"],
        invariant_footprints=d["invariant_footprints"],
        findings=None if f is None else Findings(**f),
        warnings=list(d["warnings"]), seconds=dict(d["seconds"]), initial=d["initial"],
        events=list(events), version=d.get("version", 1),
        policy_digest=d.get("policy_digest", ""), delivery=d.get("delivery"),
    )


def summary_report(*, name: str, version: int, verified: bool, verdict: str, size: int,
                   valid: int, initial: dict[str, Any], events: list[str],
                   wfc: bool, cc: bool, max_depth: int | None, warning: str) -> Report:
    """A Report holding only verdicts, for files that carry no full report
    (gsm exports)."""
    return Report(
        machine=name, verdict="pass" if verified else ("fail" if verdict == "pass" else verdict),
        scope="all", strict=False, states=StateCounts(total=size, valid=valid, reachable=None),
        wfc=WFCResult(ok=wfc, max_depth=max_depth),
        cc1=CC1Result(ok=cc, scope="all", pairs=0, ok_reachable=cc, ok_all_valid=cc,
                      counterexample=None, counterexample_all_valid=None),
        cc2=None, footprints={}, invariant_footprints={}, findings=None, warnings=[warning],
        seconds={}, initial=initial, events=list(events), version=version)


def families_from_meta(raw: Any, events: list[str]) -> tuple[Family, ...]:
    """Event families of a file, checked: every instance is an event of the file."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise MachineFileError("families must be a mapping {family: {params, instances}}")
    known = set(events)
    out = []
    for name, body in raw.items():
        try:
            params = tuple(var_from_entry(p) for p in body["params"])
            instances = tuple(body["instances"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MachineFileError(f"corrupt family {name!r} ({exc!r})") from None
        if not all(isinstance(i, str) and i in known for i in instances):
            raise MachineFileError(f"family {name!r} names instances that are not events")
        out.append(Family(str(name), params, instances))
    return tuple(out)


def build_machine(meta: Mapping[str, Any], vars_: list[dict[str, Any]], *, nf: np.ndarray,
                  step: np.ndarray, fires: np.ndarray | None, valid: np.ndarray,
                  extra_meta: dict[str, Any]) -> Machine:
    from ..machine import Machine
    events = list(meta["events"])
    vs = tuple(var_from_entry(v) for v in vars_)
    ver = meta.get("verification") or {}
    try:
        if isinstance(ver.get("report"), Mapping):
            report = report_from_dict(ver["report"], events)
        else:
            report = None
    except (KeyError, TypeError, ValueError) as exc:
        raise MachineFileError(f"corrupt verification report ({exc!r})") from None
    pairs = meta.get("independent", [])
    if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and set(p) <= set(events) for p in pairs):
        raise MachineFileError("independent must be a list of [event, event] pairs")
    m = Machine._from_tables(
        name=meta["name"], version=meta["version"], vars=vs, events=tuple(events), step=step,
        initial_id=meta["initial"], report=report, nf=nf, valid=valid, fires=fires,
        meta=extra_meta, independent=[tuple(p) for p in pairs],
        policy_digest=meta.get("policy_digest", ""),
        families=families_from_meta(meta.get("families"), events))
    if report is None:
        m.report = summary_report(
            name=m.name, version=m.version, verified=bool(ver.get("verified")),
            verdict=str(ver.get("verdict", "unknown")), size=m.size,
            valid=int(np.count_nonzero(valid)), initial=m.decode(m.initial), events=events,
            wfc=bool(ver.get("wfc")), cc=bool(ver.get("cc")),
            max_depth=ver.get("max_repair_depth"),
            warning="the file carries no full report, only its verdicts")
    return m


def valid_from_nf(nf: np.ndarray) -> np.ndarray:
    """A state is valid exactly when it is its own normal form."""
    out = nf == np.arange(nf.shape[0], dtype=nf.dtype)
    out.setflags(write=False)
    return out
