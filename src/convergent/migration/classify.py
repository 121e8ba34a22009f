"""Classify a switch from v1 to v2: safe online, safe behind a barrier, or
unsafe, under one delivery model. The conditions, and why they are exact,
are in docs/migration.md; in short (``M = nf2 . map``, ``T(e)`` the v2 event a
v1 event becomes, or nothing; ``R1`` the reachable v1 states; ``Z(G)`` the
states v2 reaches from ``M(R1)`` by the v2 events ``G``; ``Z = Z(all)``):

DS          ``M(step1[e](r)) == T(e)(M(r))`` for every ``r`` in R1, every v1 event:
            an event in flight at a switch ends the same whichever side of it
            it is applied on (a dropped event must not change what M sees).
PAIRS       exactly-once / at-least-once (no causal order): every pair of v2
            events commutes on Z.
PAIRS-V2    causal: v2's verified independent pairs commute on Z.
PAIRS-MIXED causal: a v1 event x in flight commutes, on ``Z(G_x)``, with each
            v2 event in ``G_x``, the v2 events that may be concurrent with x.
            (``G_x`` holds the translation of every v1 event v1 lets run
            concurrently with x, so v1's independent pairs in flight together
            are among these pairs, on a larger scope than they need.)
IDEM        at-least-once: every v2 event is idempotent on Z.
V1-ORDER    exactly-once / at-least-once, barrier: v1 states reached by the
            same events in two orders (or with duplicates) map to one v2 state.

Online needs DS and the pair (and IDEM) conditions of its model; a barrier
needs the v2-side conditions (and V1-ORDER). Every condition is checked by
vectorized gathers over the tables; a failure is turned into two runs that
replay to different states (``witness.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import MigrationError
from .model import DELIVERIES, Delivery, Outcome, Step
from .scopes import Scope, closure
from .tables import Tables
from .witness import Witness, make_witness

__all__ = ["Condition", "MAX_PAIRS", "Verdict", "classify"]

MAX_PAIRS = 4_000_000
"""The most pairs of v1 states the V1-ORDER closure holds before it gives up
(a MigrationError: undecided is never reported as safe)."""


@dataclass(frozen=True)
class Condition:
    """One condition checked: its code, the class it serves, whether it holds."""

    code: str
    mode: str          # "online" or "barrier"
    ok: bool
    text: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "mode": self.mode, "ok": self.ok, "text": self.text,
                "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    """The classification under one delivery model, with the witness of why
    it is not online (``online_witness``) and why it is unsafe."""

    delivery: Delivery
    outcome: Outcome
    conditions: tuple[Condition, ...]
    online_witness: Witness | None
    barrier_witness: Witness | None

    def to_dict(self) -> dict[str, Any]:
        return {"delivery": self.delivery, "outcome": self.outcome,
                "conditions": [c.to_dict() for c in self.conditions],
                "online_witness": self.online_witness.to_dict() if self.online_witness else None,
                "barrier_witness": (self.barrier_witness.to_dict() if self.barrier_witness
                                    else None)}


class _Classifier:
    """The checks of one Tables, with the closures they share cached."""

    def __init__(self, t: Tables) -> None:
        self.t = t
        self._scopes: dict[frozenset[int], Scope] = {}
        self._facts: dict[tuple[str, Any], Any] = {}

    def scope(self, events: frozenset[int]) -> Scope:
        got = self._scopes.get(events)
        if got is None:
            got = self._scopes[events] = closure(self.t, tuple(sorted(events)))
        return got

    @property
    def all2(self) -> frozenset[int]:
        return frozenset(range(len(self.t.v2.names)))

    # ------------------------------------------------------------ runs

    def _prefix(self, r: int) -> list[str]:
        return self.t.trace1(r)

    def _after(self, sc: Scope, z: int) -> tuple[list[str], list[Step]]:
        r, v = sc.path(z)
        return self._prefix(r), [Step("v2", self.t.v2.names[e]) for e in v]

    # ------------------------------------------------------------ DS

    def ds(self, delivery: Delivery) -> tuple[bool, str, Witness | None]:
        key = ("DS", None)
        if key in self._facts:
            ok, detail, (e, r) = self._facts[key]
        else:
            t = self.t
            e, r = -1, -1
            best = len(t.reach1)
            for i in range(len(t.v1.names)):
                lhs = t.M[t.v1.step[i][t.reach1]]
                rhs = t.translate(i, t.image)
                bad = np.flatnonzero(lhs != rhs)
                if len(bad) and int(bad[0]) < best:
                    best, e, r = int(bad[0]), i, int(t.reach1[bad[0]])
            ok = e < 0
            detail = (f"at all {len(t.reach1):,} reachable v1 states, {len(t.v1.names)} event(s)"
                      if ok else "")
            self._facts[key] = (ok, detail, (e, r))
        if ok:
            return True, detail, None
        t = self.t
        name = t.v1.names[e]
        u = self._prefix(r)
        target = t.mig.events[name]
        fate = ("dropped (removed in v2)" if target is None else
                f"applied as {target}" if target != name else "applied under v2")
        wit = make_witness(
            t, condition="DS", delivery=delivery, barrier=False,
            summary=f"{name} in flight at the switch: applied under v1 then switched is not "
                    f"the same as switched then {fate}",
            reached=u, run_a=[*(Step("v1", x) for x in u), Step("v1", name), Step("switch")],
            run_b=[*(Step("v1", x) for x in u), Step("switch"), Step("v1", name)])
        return False, f"fails for {name} at {_describe(t.v1.state(r))}", wit

    # ------------------------------------------------------------ pairs

    def _first_bad_pair(self, sc: Scope, pairs: list[tuple[int, int]]
                        ) -> tuple[int, int, int] | None:
        """(pair index, z, position) of the shallowest failing state over pairs."""
        step = self.t.v2.step
        z = sc.ids
        best: tuple[int, int, int] | None = None
        for k, (a, b) in enumerate(pairs):
            if a == b or a < 0 or b < 0:
                continue
            sa, sb = step[a], step[b]
            bad = np.flatnonzero(sb[sa[z]] != sa[sb[z]])
            if len(bad) and (best is None or int(bad[0]) < best[2]):
                best = (k, int(z[bad[0]]), int(bad[0]))
        return best

    def pairs_check(self, code: str, delivery: Delivery, sc: Scope,
                    pairs: list[tuple[int, int]], labels: list[tuple[Step, Step]]
                    ) -> tuple[bool, str, Witness | None]:
        found = self._first_bad_pair(sc, pairs)
        if found is None:
            return True, f"{len(pairs)} pair(s) at {len(sc.ids):,} state(s)", None
        k, z, _ = found
        sa, sb = labels[k]
        u, v = self._after(sc, z)
        base = [*(Step("v1", x) for x in u), Step("switch"), *v]
        barrier = sa.kind == "v2" and sb.kind == "v2"
        a, b = pairs[k]
        note = ("; v2's own contract already needs causal order for this pair, which this "
                "delivery model does not give" if code == "PAIRS"
                and not self.t.v2.commutes_declared(a, b) else "")
        wit = make_witness(
            self.t, condition=code, delivery=delivery, barrier=barrier,
            summary=f"{_label(sa)} and {_label(sb)} do not commute at "
                    f"{_describe(self.t.v2.state(z))}, a state v2 reaches after the "
                    f"switch{note}",
            reached=u, run_a=[*base, sa, sb], run_b=[*base, sb, sa])
        return False, f"{_label(sa)}/{_label(sb)} at {_describe(self.t.v2.state(z))}", wit

    def all_pairs(self, delivery: Delivery) -> tuple[bool, str, Witness | None]:
        names = self.t.v2.names
        n = len(names)
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
        labels = [(Step("v2", names[a]), Step("v2", names[b])) for a, b in pairs]
        return self.pairs_check("PAIRS", delivery, self.scope(self.all2), pairs, labels)

    def v2_pairs(self, delivery: Delivery) -> tuple[bool, str, Witness | None]:
        names = self.t.v2.names
        pairs = sorted(tuple(sorted(p)) for p in self.t.v2.independent if len(p) == 2)
        ps = [(a, b) for a, b in pairs]
        labels = [(Step("v2", names[a]), Step("v2", names[b])) for a, b in ps]
        return self.pairs_check("PAIRS-V2", delivery, self.scope(self.all2), ps, labels)

    def concurrent_with(self, x: int) -> frozenset[int]:
        """G_x: the v2 events that may be concurrent with the v1 event x under
        causal delivery: those v2 pairs with x's translation (or that are it),
        and the translations of the v1 events v1 pairs with x."""
        t = self.t
        out: set[int] = set()
        tx = int(t.tau[x])
        for g in range(len(t.v2.names)):
            if tx >= 0 and t.v2.commutes_declared(tx, g):
                out.add(g)
        for y in range(len(t.v1.names)):
            ty = int(t.tau[y])
            if ty >= 0 and t.v1.commutes_declared(x, y):
                out.add(ty)
        return frozenset(out)

    def mixed_pairs(self, delivery: Delivery) -> tuple[bool, str, Witness | None]:
        t = self.t
        total = 0
        for x in range(len(t.v1.names)):
            tx = int(t.tau[x])
            if tx < 0:
                continue
            g = self.concurrent_with(x)
            # a pair v2 declares independent is PAIRS-V2's, checked on Z, a
            # superset of Z(G_x): only the pairs v1's independence adds remain
            ps = [(tx, y) for y in sorted(g) if not t.v2.commutes_declared(tx, y)]
            if not ps:
                continue
            total += len(ps)
            labels = [(Step("v1", t.v1.names[x]), Step("v2", t.v2.names[y])) for _, y in ps]
            ok, detail, wit = self.pairs_check("PAIRS-MIXED", delivery, self.scope(g), ps,
                                               labels)
            if not ok:
                return ok, detail, wit
        return True, (f"{total} pair(s) of a v1 event in flight and a v2 event v2 does not "
                      "declare independent"), None

    def idem(self, delivery: Delivery) -> tuple[bool, str, Witness | None]:
        t = self.t
        sc = self.scope(self.all2)
        z = sc.ids
        best: tuple[int, int] | None = None
        for f in range(len(t.v2.names)):
            s = t.v2.step[f]
            bad = np.flatnonzero(s[s[z]] != s[z])
            if len(bad) and (best is None or int(bad[0]) < best[1]):
                best = (f, int(bad[0]))
        if best is None:
            return True, f"{len(t.v2.names)} event(s) at {len(z):,} state(s)", None
        f, pos = best
        zz = int(z[pos])
        u, v = self._after(sc, zz)
        ev = Step("v2", t.v2.names[f])
        base = [*(Step("v1", x) for x in u), Step("switch"), *v]
        wit = make_witness(t, condition="IDEM", delivery=delivery, barrier=True,
                           summary=f"{ev.event} applied twice (a redelivery) differs from once "
                                   f"at {_describe(t.v2.state(zz))}",
                           reached=u, run_a=[*base, ev], run_b=[*base, ev, ev])
        return False, f"{ev.event} at {_describe(t.v2.state(zz))}", wit

    # ------------------------------------------------------------ V1-ORDER

    def v1_order(self, delivery: Delivery, alo: bool) -> tuple[bool, str, Witness | None]:
        """Pairs of v1 states reached by words with the same events (same
        multiset; under at-least-once the same set): seeded by ``a b`` vs
        ``b a`` (and ``a a`` vs ``a``) at every reachable state, closed under
        applying one more event to both. Every such pair of words is linked by
        those moves, so M agreeing on the closure is exactly V1-ORDER."""
        t = self.t
        step = t.v1.step
        R = t.reach1.astype(np.int64)
        n1 = t.v1.size
        if n1 >= 2**31:
            raise MigrationError("V1-ORDER: v1 has too many states to pair up (2**31 or more)")
        E = len(t.v1.names)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        seeds: list[np.ndarray] = []

        def add_seed(x: np.ndarray, y: np.ndarray, a: int, b: int
                 ) -> tuple[bool, str, Witness] | None:
            keep = x != y
            if not keep.any():
                return None
            x, y, r = x[keep], y[keep], R[keep]
            bad = np.flatnonzero(t.M[x] != t.M[y])
            if len(bad):  # a witness at a seed: no closure needed (the usual failure)
                one = np.array([[int(r[bad[0]]), a, b]], dtype=np.int64)
                return self._v1_order_witness(delivery, alo, x[bad[:1]], y[bad[:1]],
                                              np.array([-1]), np.array([-1]), one, 0)
            xs.append(x)
            ys.append(y)
            seeds.append(np.stack([r, np.full(len(r), a), np.full(len(r), b)], axis=1))
            return None

        for a in range(E):
            sa = step[a][R].astype(np.int64)
            if alo:
                got = add_seed(step[a][sa].astype(np.int64), sa, a, -1)
                if got is not None:
                    return got
            for b in range(a + 1, E):
                sb = step[b][R].astype(np.int64)
                got = add_seed(step[b][sa].astype(np.int64), step[a][sb].astype(np.int64),
                               a, b)
                if got is not None:
                    return got
        if not xs:
            word = "commute and are idempotent" if alo else "commute"
            return True, f"v1's events {word} at every reachable v1 state", None
        X, Y = np.concatenate(xs), np.concatenate(ys)
        S = np.concatenate(seeds)
        lo, hi = np.minimum(X, Y), np.maximum(X, Y)
        keys, first = np.unique(lo * n1 + hi, return_index=True)
        PX, PY = lo[first], hi[first]
        parent = np.full(len(PX), -1, dtype=np.int64)
        pev = np.full(len(PX), -1, dtype=np.int64)
        seed = S[first]
        seen = keys
        frontier = np.arange(len(PX))
        allx, ally, allp, alle, alls = [PX], [PY], [parent], [pev], [seed]
        total = len(PX)
        while True:
            FX, FY = np.concatenate(allx), np.concatenate(ally)
            bad = np.flatnonzero(t.M[FX[frontier]] != t.M[FY[frontier]])
            if len(bad):
                return self._v1_order_witness(delivery, alo, FX, FY, np.concatenate(allp),
                                              np.concatenate(alle), np.concatenate(alls),
                                              int(frontier[bad[0]]))
            new_x, new_y, new_p, new_e = [], [], [], []
            for e in range(E):
                nx = step[e][FX[frontier]].astype(np.int64)
                ny = step[e][FY[frontier]].astype(np.int64)
                keep = nx != ny
                if not keep.any():
                    continue
                lo, hi = np.minimum(nx[keep], ny[keep]), np.maximum(nx[keep], ny[keep])
                new_x.append(lo)
                new_y.append(hi)
                new_p.append(frontier[keep])
                new_e.append(np.full(keep.sum(), e))
            if not new_x:
                break
            lo, hi = np.concatenate(new_x), np.concatenate(new_y)
            k, first = np.unique(lo * n1 + hi, return_index=True)
            fresh = ~np.isin(k, seen)
            if not fresh.any():
                break
            first = first[fresh]
            seen = np.union1d(seen, k[fresh])
            cnt = len(first)
            allx.append(lo[first])
            ally.append(hi[first])
            allp.append(np.concatenate(new_p)[first])
            alle.append(np.concatenate(new_e)[first])
            alls.append(np.full((cnt, 3), -1, dtype=np.int64))
            frontier = np.arange(total, total + cnt)
            total += cnt
            if total > MAX_PAIRS:
                raise MigrationError(
                    f"V1-ORDER is undecided: more than {MAX_PAIRS:,} pairs of v1 states "
                    "reached by the same events in other orders; the barrier cannot be "
                    "classified (try causal delivery, under which v1 converges on its own)")
        return True, (f"{total:,} pair(s) of v1 states reached by the same events differently "
                      "all map to one v2 state"), None

    def _v1_order_witness(self, delivery: Delivery, alo: bool, X: np.ndarray, Y: np.ndarray,
                          parent: np.ndarray, pev: np.ndarray, seed: np.ndarray,
                          k: int) -> tuple[bool, str, Witness]:
        t = self.t
        suffix: list[str] = []
        while int(parent[k]) >= 0:
            suffix.append(t.v1.names[int(pev[k])])
            k = int(parent[k])
        suffix.reverse()
        r, a, b = (int(v) for v in seed[k])
        u = self._prefix(r)
        an = t.v1.names[a]
        if b < 0:
            wa = [an, an, *suffix]
            wb = [an, *suffix]
            what = f"{an} applied twice (a redelivery)"
        else:
            bn = t.v1.names[b]
            wa, wb = [an, bn, *suffix], [bn, an, *suffix]
            what = f"{an} and {bn} in either order"
            if not t.v1.commutes_declared(a, b):
                what += " (v1's own contract needs causal order for them)"
        wit = make_witness(
            t, condition="V1-ORDER", delivery=delivery, barrier=True,
            summary=f"v1 replicas that applied {what} hold v1 states the map does not "
                    "send to one v2 state",
            reached=u, run_a=[*(Step("v1", x) for x in u + wa), Step("switch")],
            run_b=[*(Step("v1", x) for x in u + wb), Step("switch")])
        return False, f"{what} after {' -> '.join(u) or 'the initial state'}", wit


def _label(s: Step) -> str:
    return f"{s.event} (v1)" if s.kind == "v1" else s.event


def _describe(state: dict[str, Any]) -> str:
    from ..engine.decode import describe_state
    return describe_state(state)


Check = Callable[[Delivery], tuple[bool, str, Witness | None]]


def _conditions(c: _Classifier, delivery: Delivery
                ) -> tuple[list[tuple[str, Check]], list[tuple[str, Check]]]:
    if delivery == "causal":
        online: list[tuple[str, Check]] = [("DS", c.ds), ("PAIRS-V2", c.v2_pairs),
                                           ("PAIRS-MIXED", c.mixed_pairs)]
        barrier: list[tuple[str, Check]] = [("PAIRS-V2", c.v2_pairs)]
        return online, barrier
    alo = delivery == "at-least-once"
    online = [("DS", c.ds), ("PAIRS", c.all_pairs)]
    barrier = [("V1-ORDER", lambda d: c.v1_order(d, alo)), ("PAIRS", c.all_pairs)]
    if alo:
        online.append(("IDEM", c.idem))
        barrier.append(("IDEM", c.idem))
    return online, barrier


_WORDS = {
    "DS": "the switch commutes with every v1 event in flight",
    "PAIRS": "every pair of v2 events commutes after the switch (no causal order)",
    "PAIRS-V2": "v2's independent pairs commute after the switch",
    "PAIRS-MIXED": "each v1 event in flight commutes with the v2 events concurrent with it",
    "IDEM": "every v2 event is idempotent after the switch (duplicates change nothing)",
    "V1-ORDER": "v1 replicas that applied the same events differently switch to one state",
}


def classify(t: Tables, deliveries: tuple[Delivery, ...] = DELIVERIES) -> list[Verdict]:
    """The verdict under each delivery model (facts shared between models are
    computed once)."""
    c = _Classifier(t)
    out: list[Verdict] = []
    for delivery in deliveries:
        if delivery not in DELIVERIES:
            raise ValueError(f"delivery={delivery!r} (expected one of {', '.join(DELIVERIES)})")
        online, barrier = _conditions(c, delivery)
        conds: list[Condition] = []
        online_ok = True
        online_wit: Witness | None = None
        results: dict[str, tuple[bool, str, Witness | None]] = {}
        for code, check in online:
            res = results[code] = check(delivery)
            conds.append(Condition(code, "online", res[0], _WORDS[code], res[1]))
            if not res[0]:
                online_ok = False
                if online_wit is None:
                    online_wit = res[2]
        barrier_ok = True
        barrier_wit: Witness | None = None
        for code, check in barrier:
            if online_ok:
                conds.append(Condition(code, "barrier", True, _WORDS[code],
                                       "implied: the switch is safe online"))
                continue
            res = results[code] if code in results else check(delivery)
            conds.append(Condition(code, "barrier", res[0], _WORDS[code], res[1]))
            if not res[0]:
                barrier_ok = False
                if barrier_wit is None:
                    barrier_wit = res[2]
        outcome: Outcome = "online" if online_ok else "barrier" if barrier_ok else "unsafe"
        if barrier_wit is not None and not barrier_wit.barrier:  # pragma: no cover
            raise AssertionError("internal error: an unsafe verdict without a barrier witness")
        out.append(Verdict(delivery, outcome, tuple(conds), online_wit, barrier_wit))
    return out
