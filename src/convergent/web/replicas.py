"""Live replicas, read from the status files running replicas write.

``convergent replica run --status-file FILE`` rewrites FILE (atomically)
with the replica's status JSON twice a second. The inspector only reads
those files: it never talks to a replica or its broker, so it cannot change
anything, and it keeps working whatever the replicas' transport is.

A status file is untrusted input: it is read up to ``MAX_BYTES``, must be a
JSON object, and only the fields the page shows are kept, each checked for
its type (a field of the wrong type is dropped and named in ``problems``).

Convergence, per machine: replicas whose version vectors are equal have
applied the same events, so they must hold the same state (the proof's
promise). The board says ``converged`` when every replica has the same
version vector and digest, ``syncing`` when the vectors differ (events are
still in flight), and ``diverged`` when two replicas with the same vector
hold different digests, which the proof rules out and so means a bug or a
different policy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_BYTES", "STALE_SECONDS", "ReplicaBoard"]

MAX_BYTES = 1 << 20
STALE_SECONDS = 5.0

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "replica": str, "machine": str, "digest": str, "policy": str,
    "accepted": int, "log": int, "pending": int, "max_pending": int, "unflushed": int,
    "flush_errors": int, "uptime": (int, float), "state": dict, "version": dict,
}


def _read(path: str, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "problems": []}
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        out["error"] = f"cannot read: {exc.strerror or exc}"
        return out
    if len(raw) > MAX_BYTES:
        out["error"] = f"larger than {MAX_BYTES} bytes"
        return out
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        out["error"] = f"not JSON: {exc}"
        return out
    if not isinstance(doc, dict):
        out["error"] = "not a JSON object"
        return out
    for name, kind in _FIELDS.items():
        if name not in doc:
            continue
        value = doc[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            out["problems"].append(f"{name} has the wrong type")
            continue
        out[name] = value
    version = out.get("version")
    if version is not None and not all(isinstance(k, str) and isinstance(v, int)
                                       and not isinstance(v, bool)
                                       for k, v in version.items()):
        out["problems"].append("version is not {origin: count}")
        del out["version"]
    out["age"] = round(max(0.0, now - st.st_mtime), 3)
    out["stale"] = out["age"] > STALE_SECONDS
    return out


def _groups(replicas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_machine: dict[str, list[dict[str, Any]]] = {}
    for r in replicas:
        if "error" in r or "machine" not in r:
            continue
        by_machine.setdefault(r["machine"], []).append(r)
    out = []
    for machine, rs in by_machine.items():
        seen: dict[str, set[str]] = {}
        for r in rs:
            key = json.dumps(r.get("version", {}), sort_keys=True)
            seen.setdefault(key, set()).add(str(r.get("digest")))
        if any(len(digests) > 1 for digests in seen.values()):
            status = "diverged"
        elif len(seen) > 1:
            status = "syncing"
        else:
            status = "converged"
        out.append({"machine": machine, "replicas": [r.get("replica") for r in rs],
                    "status": status})
    return out


class ReplicaBoard:
    """The status files to show; ``snapshot()`` reads them all, now."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        replicas = [_read(p, now) for p in self.paths]
        return {"replicas": replicas, "groups": _groups(replicas), "time": now}
