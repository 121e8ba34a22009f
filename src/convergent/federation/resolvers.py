"""Ready-made resolvers: the merges most federations need, also named by the
YAML form (``policy: all | any | max | min | priority``).

Each is a frozen, comparable value; calling it merges ``{source: {var:
value}}`` into ``{var: value}``. They read only the proposals, so they are
functions of the sources alone and deterministic (R1) by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import FederationError

__all__ = ["POLICIES", "Policy", "policy"]

POLICIES = ("all", "any", "max", "min", "priority")


@dataclass(frozen=True)
class Policy:
    """Merge each var independently: ``all``/``any`` of bools, ``max``/``min``
    of ints, or the first source in ``order`` that proposes the var."""

    kind: str
    vars: tuple[str, ...]
    order: tuple[str, ...] = ()

    def __call__(self, proposals: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for var in self.vars:
            if self.kind == "priority":
                for src in self.order:
                    if var in proposals.get(src, {}):
                        out[var] = proposals[src][var]
                        break
                else:
                    raise FederationError(f"priority resolver: no source in {list(self.order)} "
                                          f"proposes {var!r}")
                continue
            values = [p[var] for _, p in sorted(proposals.items()) if var in p]
            if not values:
                raise FederationError(f"{self.kind} resolver: no source proposes {var!r}")
            if self.kind == "all":
                out[var] = all(values)
            elif self.kind == "any":
                out[var] = any(values)
            elif self.kind == "max":
                out[var] = max(values)
            else:
                out[var] = min(values)
        return out


def policy(kind: str, vars: Any, order: Any = ()) -> Policy:
    """A ``Policy``, validated: ``policy("all", ["access"])``,
    ``policy("priority", ["price"], order=["pricing", "catalog"])``."""
    if kind not in POLICIES:
        raise FederationError(f"policy={kind!r} (expected one of {', '.join(POLICIES)})")
    names = tuple(str(v) for v in vars)
    srcs = tuple(str(s) for s in order)
    if kind == "priority" and not srcs:
        raise FederationError("a priority resolver needs order: [source, ...]")
    if kind != "priority" and srcs:
        raise FederationError(f"order is only for policy 'priority', not {kind!r}")
    return Policy(kind, names, srcs)
