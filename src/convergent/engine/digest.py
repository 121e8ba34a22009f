"""Policy and state digests.

The policy digest is SHA-256 over a canonical serialization of a machine's
*meaning*: names, domains, initial values, independent pairs, and the exact
tables of every guard, assignment, holds and repair (over their semantic
footprints). It does not depend on YAML formatting, key order, or how an
expression is written; it changes with any change of behaviour or of a name.
Replicas stamp it on every envelope so an event of another machine version
is refused instead of applied.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from .compile import CompiledMachine

__all__ = ["policy_digest", "state_digest"]


def _arr(h: Any, a: np.ndarray | None) -> None:
    if a is None:
        h.update(b"-")
        return
    b = np.ascontiguousarray(a.astype("<i8") if a.dtype != bool else a.astype("u1"))
    h.update(len(b.tobytes()).to_bytes(8, "little"))
    h.update(b.tobytes())


def policy_digest(cm: CompiledMachine) -> str:
    spec = cm.spec
    head = {
        "format": "convergent-policy/1",
        "name": spec.name,
        "version": spec.version,
        "vars": [v.to_dict() for v in spec.vars],
        "initial": {k: spec.initial[k] for k in sorted(spec.initial)},
        "events": [e.name for e in cm.events],
        "invariants": [i.name for i in cm.invariants],
        "independent": sorted(sorted(p) for p in spec.independent),
    }
    h = hashlib.sha256()
    h.update(json.dumps(head, sort_keys=True, separators=(",", ":")).encode())
    for e in cm.events:
        h.update(json.dumps(list(e.space.vars)).encode())
        _arr(h, e.new)
        _arr(h, e.fires)
    for i in cm.invariants:
        h.update(json.dumps(list(i.holds.space.vars)).encode())
        _arr(h, i.holds.value)
        h.update(json.dumps(list(i.repair.space.vars)).encode())
        _arr(h, i.repair.new)
    return h.hexdigest()


def state_digest(policy: str, values: dict[str, Any]) -> str:
    """SHA-256 of a state under a policy: equal states of the same machine
    version have equal digests, whatever process computed them."""
    body = json.dumps({"policy": policy, "state": values}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
