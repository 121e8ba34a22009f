"""A slow, plain reference checker: the definition of WFC, CC1 and CC2 written
as directly as possible, to hold the fast engine to.

Everything here is dicts, lists and tuples; every state function is evaluated
one state at a time through the model's ``Predicate.evaluate`` /
``Assignment.evaluate``. No numpy, no footprints, no cleverness.

Semantics (the contract, docs/spec-format.md, made explicit):

* state id: mixed radix over the vars in spec order, FIRST var least
  significant; a var's digit is the index of its value in ``var.values``.
* valid(s): every invariant's ``holds`` is true, evaluated in list order up
  to the first false one (like Python's ``all``).
* rho(s), s invalid: the first failing invariant's repair, evaluated at s.
  Ints out of range saturate (``clamp``) or are a BuildError (``error``).
* nf(s): rho repeatedly until valid; revisiting a state is a WFC failure.
* raw_e(s): guard false -> s; else the assignment evaluated at s (simultaneous).
  At a valid state an int out of range follows the var's overflow policy; at
  an invalid state (only CC2 looks there) it is clamped.
* Any exception raised while evaluating a function where it is needed is a
  BuildError.
* step_e(s) = nf(raw_e(s)); s0 = nf(initial); reachable = BFS over step_e.
* CC1: step_b(step_a(s)) == step_a(step_b(s)) for each pair (a, b).
* CC2: nf(raw_e(s)) == nf(raw_e(rho(s))) for every event e and invalid s.
* findings: never_fire = events whose guard is false at every reachable state;
  never_fail = invariants that never perform a repair during a reachable run
  (never the first failing invariant on the repair chain of any raw_e(s), s
  reachable); unreachable_valid = valid - reachable.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from convergent.errors import BuildError, ConvergentError
from convergent.spec.model import MachineSpec, Var

__all__ = ["RefMachine", "RefResult", "reference_check"]


class _Cycle(Exception):
    pass


class RefMachine:
    """The state space of a spec, and the one-state operations on it."""

    def __init__(self, spec: MachineSpec) -> None:
        self.spec = spec
        self.vars: list[Var] = list(spec.vars)
        self.var_map = spec.var_map
        self.total = 1
        for v in self.vars:
            self.total *= len(v.values)

    # -- encoding -----------------------------------------------------------
    def decode(self, sid: int) -> dict[str, Any]:
        values = {}
        rest = sid
        for v in self.vars:
            digit = rest % len(v.values)
            rest = rest // len(v.values)
            values[v.name] = v.values[digit]
        return values

    def encode(self, values: dict[str, Any]) -> int:
        sid = 0
        stride = 1
        for v in self.vars:
            digit = v.digit(values[v.name])  # ValueError when out of the domain
            sid += digit * stride
            stride *= len(v.values)
        return sid

    # -- evaluation -----------------------------------------------------------
    def _call(self, what: str, sid: int, fn: Any) -> Any:
        try:
            return fn(self.var_map, self.decode(sid))
        except ConvergentError:
            raise
        except Exception as exc:  # a user function or an expression failed here
            raise BuildError(f"{what} failed at {self.decode(sid)}: {exc!r}",
                             name=what.split()[-1], state=self.decode(sid)) from exc

    def holds(self, inv_index: int, sid: int) -> bool:
        inv = self.spec.invariants[inv_index]
        return self._call(f"invariant {inv.name}", sid, inv.holds.evaluate)

    def guard(self, event_index: int, sid: int) -> bool:
        ev = self.spec.events[event_index]
        if ev.guard is None:
            return True
        return self._call(f"guard of event {ev.name}", sid, ev.guard.evaluate)

    def _assign(self, what: str, name: str, sid: int, assigned: dict[str, Any],
                policy: str | None) -> int:
        """The state ``sid`` with ``assigned`` written into it. ``policy``:
        None = each var's own overflow policy, "clamp" = always saturate."""
        values = self.decode(sid)
        for var_name, value in assigned.items():
            var = self.var_map[var_name]
            if var.kind == "int":
                value = int(value)
                if value < var.lo or value > var.hi:
                    mode = policy if policy is not None else var.overflow
                    if mode == "clamp":
                        value = var.lo if value < var.lo else var.hi
                    else:
                        raise BuildError(
                            f"{what} {name}: {var_name}={value} overflows "
                            f"[{var.lo}, {var.hi}] at {self.decode(sid)}",
                            name=name, state=self.decode(sid), value=value)
            elif var.kind == "bool":
                value = bool(value)
            values[var_name] = value
        return self.encode(values)

    def repair(self, inv_index: int, sid: int) -> int:
        inv = self.spec.invariants[inv_index]
        assigned = self._call(f"repair of invariant {inv.name}", sid, inv.repair.evaluate)
        return self._assign("repair of invariant", inv.name, sid, assigned, None)

    def raw(self, event_index: int, sid: int, at_valid: bool) -> int:
        ev = self.spec.events[event_index]
        if not self.guard(event_index, sid):
            return sid
        assigned = self._call(f"apply of event {ev.name}", sid, ev.apply.evaluate)
        return self._assign("event", ev.name, sid, assigned, None if at_valid else "clamp")


@dataclass
class RefResult:
    """Everything the reference computed. ``to_dict`` gives the contract's keys."""

    machine: RefMachine
    scope: str
    strict: bool
    valid: list[bool]
    first_failing: list[int | None]           # per state: index of the first failing inv
    rho: dict[int, int]                        # invalid sid -> one repair step
    wfc_ok: bool
    wfc_counterexample: dict[str, Any] | None = None
    nf: list[int] | None = None                # per state (None when WFC fails)
    depth_nf: list[int] | None = None
    max_depth: int | None = None
    step: list[dict[int, int]] | None = None   # per event: valid sid -> step
    raw_valid: list[dict[int, int]] | None = None  # per event: valid sid -> raw
    initial: int | None = None                 # the spec's initial state (not normalized)
    s0: int | None = None
    bfs_depth: dict[int, int] | None = None    # reachable sid -> BFS distance
    parent: dict[int, tuple[int, str]] = field(default_factory=dict)
    cc1_failures: list[tuple[int, int, int, int]] | None = None  # (pair, sid, o1, o2)
    cc2_failures: list[tuple[int, int, int, int]] | None = None  # (event, sid, direct, after)
    never_fire: list[str] | None = None
    never_fail: list[str] | None = None
    never_fail_holds: list[str] | None = None

    # -- derived --------------------------------------------------------------
    @property
    def spec(self) -> MachineSpec:
        return self.machine.spec

    @property
    def total(self) -> int:
        return self.machine.total

    @property
    def valid_count(self) -> int:
        return sum(1 for v in self.valid if v)

    @property
    def reachable_count(self) -> int | None:
        return None if self.bfs_depth is None else len(self.bfs_depth)

    @property
    def cc1_ok(self) -> bool | None:
        if self.cc1_failures is None:
            return None
        return not any(sid in self.bfs_depth for _, sid, _, _ in self.cc1_failures)

    @property
    def cc1_ok_all_valid(self) -> bool | None:
        if self.cc1_failures is None:
            return None
        return not self.cc1_failures

    @property
    def cc2_ok(self) -> bool | None:
        if self.cc2_failures is None:
            return None
        return not self.cc2_failures

    @property
    def cc1_in_scope_ok(self) -> bool | None:
        return self.cc1_ok_all_valid if self.scope == "all" else self.cc1_ok

    @property
    def verdict(self) -> str:
        if not self.wfc_ok:
            return "fail"
        ok = self.cc1_in_scope_ok
        if self.strict:
            ok = ok and self.cc2_ok and self.cc1_ok_all_valid
        return "pass" if ok else "fail"

    def trace_to(self, sid: int) -> list[str] | None:
        """A shortest event path from s0 to ``sid`` (None if unreachable)."""
        if self.bfs_depth is None or sid not in self.bfs_depth:
            return None
        path = []
        cur = sid
        while cur != self.s0:
            prev, ev = self.parent[cur]
            path.append(ev)
            cur = prev
        path.reverse()
        return path

    def replay(self, trace: list[str]) -> int:
        """The state that ``trace`` leads to from s0."""
        names = [e.name for e in self.spec.events]
        cur = self.s0
        for ev in trace:
            cur = self.step[names.index(ev)][cur]
        return cur

    def cc1_choice(self) -> tuple[int, int, int, int] | None:
        """The counterexample the engine must report, by the rules:
        reachable scope: min (BFS depth, pair index, state id);
        scope all: reachable failures first by the same key, then (pair, sid)."""
        if not self.cc1_failures:
            return None
        reach = [f for f in self.cc1_failures if f[1] in self.bfs_depth]
        if reach:
            return min(reach, key=lambda f: (self.bfs_depth[f[1]], f[0], f[1]))
        if self.scope == "all":
            return min(self.cc1_failures, key=lambda f: (f[0], f[1]))
        return None

    def cc2_choice(self) -> tuple[int, int, int, int] | None:
        if not self.cc2_failures:
            return None
        return min(self.cc2_failures, key=lambda f: (f[0], f[1]))

    def state(self, sid: int | None) -> dict[str, Any] | None:
        return None if sid is None else self.machine.decode(sid)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "machine": self.spec.name,
            "verdict": self.verdict,
            "states": {"total": self.total, "valid": self.valid_count,
                       "reachable": self.reachable_count},
            "wfc": {"ok": self.wfc_ok, "max_depth": self.max_depth,
                    "counterexample": self.wfc_counterexample},
        }
        if not self.wfc_ok:
            return out
        cc1: dict[str, Any] = {"ok": self.cc1_in_scope_ok, "scope": self.scope,
                               "pairs": len(self.spec.independent),
                               "ok_all_valid": self.cc1_ok_all_valid,
                               "counterexample": None}
        choice = self.cc1_choice() if not self.cc1_in_scope_ok else None
        if choice is not None:
            k, sid, o1, o2 = choice
            cc1["counterexample"] = {"events": list(self.spec.independent[k]),
                                     "state": self.state(sid), "trace": self.trace_to(sid),
                                     "order1": self.state(o1), "order2": self.state(o2)}
        out["cc1"] = cc1
        cc2: dict[str, Any] = {"ok": self.cc2_ok, "counterexample": None}
        c2 = self.cc2_choice()
        if c2 is not None:
            e, sid, direct, after = c2
            cc2["counterexample"] = {"event": self.spec.events[e].name, "state": self.state(sid),
                                     "direct": self.state(direct),
                                     "after_repair": self.state(after)}
        out["cc2"] = cc2
        out["findings"] = {"never_fire": list(self.never_fire),
                           "never_fail": list(self.never_fail),
                           "unreachable_valid": self.valid_count - self.reachable_count}
        return out


def reference_check(spec: MachineSpec, scope: str = "reachable", strict: bool = False, *,
                    events_when_wfc_fails: bool = False) -> RefResult:
    """Check ``spec`` the slow way. Raises BuildError where the engine must.

    When WFC fails nothing about events is computed (the engine stops there
    too), unless ``events_when_wfc_fails``: then every event is still evaluated
    at every valid state, so that its build errors surface.
    """
    if scope not in ("reachable", "all"):
        raise ValueError(scope)
    m = RefMachine(spec)
    n = m.total
    invs = spec.invariants
    events = spec.events

    # valid(s), and the first failing invariant: holds are evaluated in list
    # order and stop at the first false one (a later holds that cannot be
    # evaluated where an earlier invariant already fails is never needed)
    valid: list[bool] = []
    first_failing: list[int | None] = []
    for sid in range(n):
        first = None
        for i in range(len(invs)):
            if not m.holds(i, sid):
                first = i
                break
        valid.append(first is None)
        first_failing.append(first)

    # rho at every invalid state
    rho: dict[int, int] = {}
    for sid in range(n):
        if not valid[sid]:
            rho[sid] = m.repair(first_failing[sid], sid)

    # nf and depth, or a cycle
    nf: list[int] = []
    depth_nf: list[int] = []
    wfc_counterexample = None
    for sid in range(n):
        path: list[int] = []
        cur = sid
        while not valid[cur]:
            if cur in path:
                cycle = path[path.index(cur):]
                wfc_counterexample = {
                    "state": m.decode(sid),
                    "cycle": [m.decode(c) for c in cycle],
                    "repairs": [invs[first_failing[c]].name for c in cycle],
                }
                break
            path.append(cur)
            cur = rho[cur]
        if wfc_counterexample is not None:
            break
        nf.append(cur)
        depth_nf.append(len(path))

    result = RefResult(machine=m, scope=scope, strict=strict, valid=valid,
                       first_failing=first_failing, rho=rho, wfc_ok=wfc_counterexample is None,
                       wfc_counterexample=wfc_counterexample)
    initial_values = {v.name: spec.initial.get(v.name, v.values[0]) for v in m.vars}
    result.initial = m.encode(initial_values)
    if wfc_counterexample is not None:
        if events_when_wfc_fails:
            for e in range(len(events)):
                for sid in range(n):
                    if valid[sid]:
                        m.raw(e, sid, at_valid=True)
        return result
    result.nf = nf
    result.depth_nf = depth_nf
    result.max_depth = max(depth_nf)

    # events at every valid state
    raw_valid: list[dict[int, int]] = []
    step: list[dict[int, int]] = []
    for e in range(len(events)):
        raws: dict[int, int] = {}
        steps: dict[int, int] = {}
        for sid in range(n):
            if valid[sid]:
                raws[sid] = m.raw(e, sid, at_valid=True)
                steps[sid] = nf[raws[sid]]
        raw_valid.append(raws)
        step.append(steps)
    result.raw_valid = raw_valid
    result.step = step

    # reachability: BFS from nf(initial), events in order
    s0 = nf[result.initial]
    result.s0 = s0
    bfs_depth = {s0: 0}
    parent: dict[int, tuple[int, str]] = {}
    queue = deque([s0])
    while queue:
        cur = queue.popleft()
        for e, ev in enumerate(events):
            nxt = step[e][cur]
            if nxt not in bfs_depth:
                bfs_depth[nxt] = bfs_depth[cur] + 1
                parent[nxt] = (cur, ev.name)
                queue.append(nxt)
    result.bfs_depth = bfs_depth
    result.parent = parent

    # CC1 at every valid state
    names = [ev.name for ev in events]
    cc1_failures = []
    for k, (a, b) in enumerate(spec.independent):
        ia = names.index(a)
        ib = names.index(b)
        for sid in range(n):
            if valid[sid]:
                order1 = step[ib][step[ia][sid]]
                order2 = step[ia][step[ib][sid]]
                if order1 != order2:
                    cc1_failures.append((k, sid, order1, order2))
    result.cc1_failures = cc1_failures

    # CC2 at every invalid state
    cc2_failures = []
    for e in range(len(events)):
        for sid in range(n):
            if not valid[sid]:
                direct = nf[m.raw(e, sid, at_valid=False)]
                r = rho[sid]
                after = nf[m.raw(e, r, at_valid=valid[r])]
                if direct != after:
                    cc2_failures.append((e, sid, direct, after))
    result.cc2_failures = cc2_failures

    # findings
    reachable = sorted(bfs_depth)
    result.never_fire = [ev.name for e, ev in enumerate(events)
                         if not any(m.guard(e, sid) for sid in reachable)]
    produced = {raw_valid[e][sid] for e in range(len(events)) for sid in reachable}
    # never_fail: the invariant never performs a repair during a reachable run,
    # i.e. it is never the first failing one at any state of the repair chain
    # from raw_e(s), s reachable (the normalization of `initial` is not a run step)
    repairing = set()
    for sid in produced:
        cur = sid
        while not valid[cur]:
            repairing.add(first_failing[cur])
            cur = rho[cur]
    result.never_fail = [inv.name for i, inv in enumerate(invs) if i not in repairing]
    # the stricter reading: its holds is true at every raw_e(s) (an invariant
    # shadowed by an earlier failing one is not in this list, but is above)
    result.never_fail_holds = [inv.name for i, inv in enumerate(invs)
                               if all(m.holds(i, sid) for sid in produced)]
    return result


# --------------------------------------------------------------------------
# semantic footprints, by brute force over every state
# --------------------------------------------------------------------------

_ERROR = ("error",)


def _event_outcome(m: RefMachine, e: int, sid: int) -> Any:
    """None when the guard is false, _ERROR when evaluating the guard or the
    assignment fails, else (successor state with every int saturated, whether
    an int overflowed a var whose policy is ``error``)."""
    try:
        if not m.guard(e, sid):
            return None
        ev = m.spec.events[e]
        assigned = m._call(f"apply of event {ev.name}", sid, ev.apply.evaluate)
    except BuildError:
        return _ERROR
    overflow = any(m.var_map[n].kind == "int" and m.var_map[n].overflow == "error"
                   and not m.var_map[n].lo <= int(v) <= m.var_map[n].hi
                   for n, v in assigned.items())
    return m.decode(m._assign("event", ev.name, sid, assigned, "clamp")), overflow


def _varying_vars(m: RefMachine, same: Any) -> set[str]:
    """Vars v such that some two states differing only in v are not ``same``."""
    out = set()
    stride = 1
    for v in m.vars:
        size = len(v.values)
        for sid in range(m.total):
            if (sid // stride) % size != 0:
                continue
            for j in range(1, size):
                if not same(sid, sid + j * stride, v.name):
                    out.add(v.name)
                    break
            if v.name in out:
                break
        stride *= size
    return out


def reference_footprints(spec: MachineSpec) -> dict[str, dict[str, list[str]]]:
    """What each event really reads and writes, each invariant's holds really
    watches, over the whole state space (valid or not):

    * reads v: changing v alone changes whether the guard holds, whether
      evaluating the event fails, whether an int overflows under ``error``,
      or, where both fire without failing, the new (saturated) value of a var
      the event writes;
    * writes w: at some state the guard holds, the evaluation does not fail
      and w changes (ints saturated, whatever the policy);
    * watches v: changing v alone changes the holds value or whether it fails.
    """
    m = RefMachine(spec)
    out: dict[str, dict[str, list[str]]] = {}
    order = [v.name for v in m.vars]
    for e, ev in enumerate(spec.events):
        outcome = [_event_outcome(m, e, sid) for sid in range(m.total)]
        writes = set()
        for sid in range(m.total):
            if outcome[sid] is not None and outcome[sid] is not _ERROR:
                new, old = outcome[sid][0], m.decode(sid)
                writes |= {w for w in order if new[w] != old[w]}

        def same(s1: int, s2: int, v: str) -> bool:
            a, b = outcome[s1], outcome[s2]
            if a is None or b is None or a is _ERROR or b is _ERROR:
                return (a is None) == (b is None) and (a is _ERROR) == (b is _ERROR)
            # the new value of every var the event really changes somewhere
            # (`x := x` changes nothing, so reads nothing; `x := if u then 0
            # else x` changes x, and its new value depends on x and u)
            return a[1] == b[1] and all(a[0][w] == b[0][w] for w in writes)

        reads = _varying_vars(m, same)
        out[ev.name] = {"reads": [n for n in order if n in reads],
                        "writes": [n for n in order if n in writes]}
    for i, inv in enumerate(spec.invariants):
        def holds(sid: int, i: int = i) -> Any:
            try:
                return m.holds(i, sid)
            except BuildError:
                return _ERROR
        values = [holds(sid) for sid in range(m.total)]
        watches = _varying_vars(m, lambda s1, s2, v: values[s1] == values[s2])
        out["invariant " + inv.name] = {"watches": [n for n in order if n in watches]}
    return out
