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
from convergent.federation import FederationSpec

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
        #: per cycle member: its sources on the same cycle (they range over
        #: every state, not only the valid ones, in the checks)
        self.every_state: dict[str, set[str]] = {}
        for comp in self.cyclic():
            for t in comp:
                self.every_state[t] = {mo.source for mo in fed.incoming(t)
                                       if mo.source in comp}
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
        every = self.every_state.get(target, set())
        pools = [self.states[s] if s in every else self.valid[s] for s in srcs]
        for combo in itertools.product(*pools):
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

    # ------------------------------------------------------------ cycles

    def reaches(self) -> dict[str, set[str]]:
        """Transitive closure of the authority graph (every path of length >= 1)."""
        out = {n: {mo.target for mo in self.fed.morphisms if mo.source == n}
               for n in self.fed.names}
        changed = True
        while changed:
            changed = False
            for n in out:
                more = set().union(*(out[k] for k in out[n])) - out[n] if out[n] else set()
                if more:
                    out[n] |= more
                    changed = True
        return out

    def cyclic(self) -> list[frozenset[str]]:
        """The registries on a cycle, grouped by mutual reachability."""
        r = self.reaches()
        groups: list[frozenset[str]] = []
        for n in self.fed.names:
            if n in r[n] and not any(n in g for g in groups):
                groups.append(frozenset(k for k in self.fed.names if k in r[n] and n in r[k]))
        return groups

    def fed_vars(self, reg: str) -> list[str]:
        return [v for mo in self.fed.incoming(reg) for v in mo.shared]

    def leq(self, reg: str, a: State, b: State, vars: list[str]) -> bool:
        spec = {v.name: v for v in self.fed.member(reg).vars}
        return all(spec[v].digit(a[v]) <= spec[v].digit(b[v]) for v in vars)

    def monotone(self, comp: frozenset[str]) -> bool:
        """Every map on the cycle and every resolver of a member is monotone,
        by enumerating every pair of states (not only one-step raises)."""
        for mo in self.fed.morphisms:
            if mo.source not in comp or mo.target not in comp:
                continue
            fv = self.fed_vars(mo.source)
            rest = [v.name for v in self.fed.member(mo.source).vars if v.name not in fv]
            for x in self.states[mo.source]:
                for y in self.states[mo.source]:
                    if all(x[v] == y[v] for v in rest) and self.leq(mo.source, x, y, fv):
                        if not self.leq(mo.target, self.image(mo, x), self.image(mo, y),
                                        list(mo.shared)):
                            return False
        for r in self.fed.resolvers:
            if r.target not in comp:
                continue
            tv = {v.name: v for v in self.fed.member(r.target).vars}
            coords = [(mo.source, v) for mo in self.fed.incoming(r.target)
                      for v in mo.shared if v in r.vars]
            combos = list(itertools.product(*(tv[v].values for _, v in coords)))

            def props(c: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
                out: dict[str, dict[str, Any]] = {}
                for (src, v), val in zip(coords, c):
                    out.setdefault(src, {})[v] = (bool(val) if tv[v].kind == "bool" else
                                                  int(val) if tv[v].kind == "int" else val)
                return out
            for p in combos:
                for q in combos:
                    if all(tv[v].digit(a) <= tv[v].digit(b)
                           for (_, v), a, b in zip(coords, p, q)):
                        if not self.leq(r.target, r.fn(props(p)), r.fn(props(q)),
                                        list(r.vars)):
                            return False
        return True

    def least_fixed_point(self, comp: frozenset[str], t: dict[str, State]
                          ) -> dict[str, State]:
        """Every assignment of the members' fed vars is tried; the fixed points
        are those every member's repair leaves unchanged; the least one (below
        every other, pointwise in the declared order) is returned."""
        members = [n for n in self.fed.names if n in comp]
        coords = [(n, v) for n in members for v in dict.fromkeys(self.fed_vars(n))]
        spec = {n: {v.name: v for v in self.fed.member(n).vars} for n in members}
        fixed = []
        for combo in itertools.product(*(spec[n][v].values for n, v in coords)):
            u = {k: dict(s) for k, s in t.items()}
            for (n, v), val in zip(coords, combo):
                var = spec[n][v]
                u[n][v] = (bool(val) if var.kind == "bool" else
                           int(val) if var.kind == "int" else val)
            if all(self.f(n, u, u[n]) == u[n] for n in members):
                fixed.append(u)
        least = [u for u in fixed
                 if all(all(self.leq(n, u[n], w[n], self.fed_vars(n)) for n in members)
                        for w in fixed)]
        assert len(least) == 1, f"{len(fixed)} fixed points, {len(least)} least"
        return least[0]

    # ------------------------------------------------------------ the product machine

    def order(self) -> list[frozenset[str]]:
        """Groups to repair in turn: each cycle as one group, sources first."""
        r = self.reaches()
        cyc = self.cyclic()
        groups: list[frozenset[str]] = []
        for n in self.fed.names:
            g = next((c for c in cyc if n in c), frozenset([n]))
            if g not in groups:
                groups.append(g)
        done: list[frozenset[str]] = []
        while groups:
            g = next(g for g in groups
                     if not any(k in r[o] and o not in g for k in g for o in self.fed.names
                                if any(o in h for h in groups if h != g)))
            done.append(g)
            groups.remove(g)
        return done

    def normalize(self, t: dict[str, State]) -> dict[str, State]:
        out = {n: self.m[n].decode(self.m[n].normalize(self.m[n].encode(s)))
               for n, s in t.items()}
        cyc = self.cyclic()
        for g in self.order():
            if g in cyc:
                out = self.least_fixed_point(g, out)
            else:
                (n,) = g
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
