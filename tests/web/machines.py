"""Small machines the inspector tests need besides the examples: one whose
repairs loop (WFC fails), one where a repair does not commute with an event
(CC2 fails)."""

from __future__ import annotations

from convergent.spec.model import MachineSpec
from convergent.spec.registry import Registry


def looping() -> MachineSpec:
    r = Registry("loops")
    x = r.bool("x")
    y = r.bool("y")
    r.invariant("a", holds=lambda s: not s[x], repair=lambda s: s.set(x, False).set(y, True))
    r.invariant("b", holds=lambda s: not s[y], repair=lambda s: s.set(y, False).set(x, True))
    r.event("go", apply=lambda s: s.set(x, True))
    return r.spec()


def cc2_fails() -> MachineSpec:
    r = Registry("lazy")
    x = r.bool("x")
    y = r.bool("y")
    r.invariant("no_x", holds=lambda s: not s[x], repair=lambda s: s.set(x, False))
    r.event("copy", apply=lambda s: s.set(y, s[x]))
    r.event("raise_x", apply=lambda s: s.set(x, True))
    return r.spec()
