"""The delivery contract: what the network must provide, computed from the
machine — idempotence per event, commutation per pair, and the obligations
that follow (deduplication, causal order), in facts and in plain words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .decode import full_to_state

if TYPE_CHECKING:  # pragma: no cover
    from .check import _Checker

__all__ = ["commutes", "contract_words", "delivery", "idempotence"]

Fact = tuple[int | None, tuple[int, int] | None]


def commutes(ck: _Checker, fact: tuple[int | None, tuple[int, int] | None]) -> bool:
    fmin, rbest = fact
    return rbest is None if ck.scope == "reachable" else fmin is None


def idempotence(ck: _Checker, reach: np.ndarray) -> dict[str, tuple[int | None, int | None]]:
    """Per event: a state in scope (and a valid state) where applying it
    twice differs from once, or None."""
    out: dict[str, tuple[int | None, int | None]] = {}
    full = ck.full
    for e in ck.cm.events:
        sp = ck.space_of(e.space.vars)
        st = ck.event_on(e, sp).step
        bad = (st[st] != st) & ck.valid_on(sp)
        if not bad.any():
            out[e.name] = (None, None)
            continue
        fids = sp.embed(np.flatnonzero(bad), full)
        hit = bad[full.project(sp, reach)]
        r = None
        if hit.any():
            ids = reach[hit]
            ds = ck.reach_depth[ids]
            r = int(ids[ds == ds.min()].min())
        out[e.name] = (int(fids.min()), r)
    return out


def delivery(ck: _Checker, facts: dict[frozenset[str], tuple[int | None, tuple[int, int] | None]],
             reach: np.ndarray | None, pairs: list[tuple[str, str]],
             idem: dict[str, tuple[int | None, int | None]] | None = None) -> dict[str, Any]:
    """The delivery contract. ``idem`` (event -> smallest non-idempotent
    state in scope all / in scope reachable) is computed from ``reach`` unless
    given (a sharded check computes it over its shards)."""
    cm = ck.cm
    if idem is None:
        assert reach is not None
        idem = idempotence(ck, reach)
    not_idem = []
    for name, (fa, fr) in idem.items():
        wit = fr if ck.scope == "reachable" else fa
        if wit is not None:
            not_idem.append({"event": name, "state": full_to_state(cm, wit)})
    declared = {frozenset(p) for p in pairs}
    order = []
    obligations: list[list[str]] = []
    errors: list[list[str]] = []
    for i, a in enumerate(cm.events):
        for b in cm.events[i + 1:]:
            key = frozenset((a.name, b.name))
            ok = commutes(ck, facts[key])
            order.append({"events": [a.name, b.name], "commutes": ok,
                          "commutes_all_valid": facts[key][0] is None,
                          "declared": key in declared})
            if not ok:
                (errors if key in declared else obligations).append([a.name, b.name])
    need_dedup = [str(d["event"]) for d in not_idem]
    words = contract_words(cm.spec.name, ck.scope, need_dedup, obligations, errors)
    return {"scope": ck.scope, "mode": ck.independent,
            "idempotent": {k: (v[1] if ck.scope == "reachable" else v[0]) is None
                           for k, v in idem.items()},
            "not_idempotent": not_idem, "order": order,
            "causal_order_required": obligations, "errors": errors,
            "auto_independent": ([list(p) for p in pairs] if ck.independent == "auto"
                                 else None),
            "contract": words}


def contract_words(machine: str, scope: str, need_dedup: list[str],
                   obligations: list[list[str]], errors: list[list[str]]) -> str:
    """The delivery contract in plain words, from its facts."""
    words = [f"Guaranteed: every replica that has applied the same set of events of "
             f"{machine!r} holds the same valid state"
             + (", provided the obligations below are met." if (need_dedup or obligations)
                else ".")]
    if need_dedup:
        words.append("You must deduplicate these events (apply each at most once): "
                     + ", ".join(str(n) for n in need_dedup) + ".")
    else:
        words.append("Every event is idempotent: at-least-once delivery is safe.")
    if obligations:
        words.append("You must deliver in causal order (the issuer of one has seen the "
                     "other) these pairs, which do not commute: "
                     + ", ".join(f"{a}/{b}" for a, b in obligations) + ".")
    if errors:
        words.append("Declared independent but NOT commuting (the check fails): "
                     + ", ".join(f"{a}/{b}" for a, b in errors) + ".")
    words.append("Not covered: events outside this machine, lost events (a replica "
                 "that never receives an event cannot apply it), and states created "
                 "other than by events from the initial state"
                 + (" (use --scope all)." if scope == "reachable" else "."))
    return " ".join(words)
