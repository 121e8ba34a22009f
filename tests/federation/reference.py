"""A brute-force reference for the federation checks, written from the
definitions and nothing else.

Every quantifier is enumerated literally over decoded states: source states
range over the product of the sources' valid states, the repair calls the
maps and the resolvers directly on dicts, and an event's step is the core
``Machine.apply`` (a registry's own semantics are the core's, which has its
own reference tests). Nothing here reads the federation package's tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from convergent.machine import Machine
from convergent.spec.expr import compile_expr
from convergent.federation import FederationSpec, topological_order

State = dict[str, Any]


class Reference:
    def __init__(self, fed: FederationSpec) -> None:
        self.fed = fed
        self.m: dict[str, Machine] = {}
        from convergent.engine.check import analyze
        for spec in fed.members:
            an = analyze(spec)
            assert an.step is not None, f"{spec.name} has no tables"
            self.m[spec.name] = Machine._from_analysis(an)
        self.states = {n: [self.m[n].decode(i) for i in range(self.m[n].size)]
                       for n in fed.names}
        self.valid = {n: [s for s in self.states[n] if self._is_valid(n, s)]
                      for n in fed.names}
        self._exprs = {}
        for mo in fed.morphisms:
            svars = {v.name: v for v in fed.member(mo.source).vars}
            tvars = {v.name: v for v in fed.member(mo.target).vars}
            self._exprs[mo.name] = [(var, compile_expr(text, svars, tvars[var]))
                                    for var, text in mo.exprs]

    def _is_valid(self, reg: str, s: State) -> bool:
        m = self.m[reg]
        return m.is_valid(m.encode(s))

    def sig(self, reg: str, event: str, s: State) -> State:
        m = self.m[reg]
        return m.decode(m.apply(m.encode(s), event))

    def sources(self, target: str) -> list[str]:
        return list(dict.fromkeys(mo.source for mo in self.fed.incoming(target)))

    def source_choices(self, target: str) -> Iterator[dict[str, State]]:
        srcs = self.sources(target)
        for combo in itertools.product(*(self.valid[s] for s in srcs)):
            yield dict(zip(srcs, combo))

    def image(self, mo: Any, z: State) -> State:
        if mo.exprs:
            return {var: e.eval(z) for var, e in self._exprs[mo.name]}
        return dict(mo.fn(z))

    def f(self, target: str, z: dict[str, State], x: State) -> State:
        """Overwrite ``x``'s shared vars with the image of the sources ``z``."""
        out = dict(x)
        proposals: dict[str, dict[str, dict[str, Any]]] = {}
        for mo in self.fed.incoming(target):
            img = self.image(mo, z[mo.source])
            for var, val in img.items():
                r = self.fed.resolver_of(target, var)
                if r is None:
                    out[var] = val
                else:
                    proposals.setdefault(r.name, {}).setdefault(mo.source, {})[var] = val
        for r in self.fed.resolvers:
            if r.target == target:
                out.update(r.fn(proposals.get(r.name, {})))
        return out

    # ------------------------------------------------------------ the checks

    def m1(self, target: str) -> bool:
        return all(self._is_valid(target, self.f(target, z, b))
                   for z in self.source_choices(target) for b in self.valid[target])

    def consistent(self, target: str) -> list[State]:
        out = []
        for b in self.valid[target]:
            if any(self.f(target, z, b) == b for z in self.source_choices(target)):
                out.append(b)
        return out

    def c1(self, target: str, event: str, *, every_valid: bool = False) -> bool:
        bs = self.valid[target] if every_valid else self.consistent(target)
        for z in self.source_choices(target):
            for b in bs:
                left = self.f(target, z, self.sig(target, event, self.f(target, z, b)))
                right = self.f(target, z, self.sig(target, event, b))
                if left != right:
                    return False
        return True

    def c2(self, target: str, e1: str, e2: str) -> bool:
        for z in self.source_choices(target):
            for b in self.valid[target]:
                if self.f(target, z, b) != b:
                    continue
                x1 = self.f(target, z, self.sig(target, e1, b))
                x2 = self.f(target, z, self.sig(target, e2, b))
                if (self.f(target, z, self.sig(target, e2, x1))
                        != self.f(target, z, self.sig(target, e1, x2))):
                    return False
        return True

    # ------------------------------------------------------------ the product machine

    def normalize(self, t: dict[str, State]) -> dict[str, State]:
        order, _ = topological_order(self.fed)
        assert order is not None
        out = {n: self.m[n].decode(self.m[n].normalize(self.m[n].encode(s)))
               for n, s in t.items()}
        for n in order:
            if self.fed.incoming(n):
                out[n] = self.f(n, out, out[n])
        return out

    def initial(self) -> dict[str, State]:
        return self.normalize({n: self.m[n].decode(self.m[n].initial) for n in self.fed.names})

    def apply(self, t: dict[str, State], reg: str, event: str) -> dict[str, State]:
        u = dict(t)
        u[reg] = self.sig(reg, event, t[reg])
        return self.normalize(u)

    def run(self, events: list[tuple[str, str]], t: dict[str, State] | None = None
            ) -> dict[str, State]:
        s = self.initial() if t is None else t
        for reg, ev in events:
            s = self.apply(s, reg, ev)
        return s
