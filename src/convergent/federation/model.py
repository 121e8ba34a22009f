"""The federation model: members, morphisms, resolvers, and the builder.

Every value here is frozen. A morphism's map and a resolver's merge are either
Python callables or spec-language expressions (text compiled against the
source registry's vars), mirroring how a ``Registry`` takes rules. Nothing is
evaluated when declared beyond name and type checks: the tables are built by
``convergent.federation.check`` and ``FederatedMachine``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from ..spec.model import MachineSpec, Var
from ..spec.registry import Registry
from .errors import FederationError

if TYPE_CHECKING:  # pragma: no cover
    from .certificate import Certificate, CertifiedRegistry
    from .machine import FederatedMachine
    from .report import FederationReport

__all__ = [
    "Federation",
    "FederationSpec",
    "MapFn",
    "Morphism",
    "ResolveFn",
    "Resolver",
]

#: a map from a read-only view of the source state (``s["var"]``) to the
#: values of the morphism's shared target vars, ``{var: value}``
MapFn = Callable[[Mapping[str, Any]], Mapping[str, Any]]
#: a merge of the images proposed by each source, ``{source registry: {var: value}}``,
#: into the values of the resolver's vars, ``{var: value}``
ResolveFn = Callable[[Mapping[str, Mapping[str, Any]]], Mapping[str, Any]]


@dataclass(frozen=True)
class Morphism:
    """``source`` is authoritative over ``shared`` (vars of ``target``).

    ``fn`` computes their values from the source's state; ``exprs`` is the same
    in the spec language, one expression over the source's vars per shared var.
    Exactly one of the two is set. The target may still write a shared var;
    the next propagation overwrites it (the source wins).
    """

    name: str
    source: str
    target: str
    shared: tuple[str, ...]
    fn: MapFn | None = field(default=None, compare=False)
    exprs: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        how = (", ".join(f"{v} := {e}" for v, e in self.exprs) if self.exprs
               else getattr(self.fn, "__qualname__", "a function"))
        return f"{self.name}: {self.source} -> {self.target} [{', '.join(self.shared)}] ({how})"


@dataclass(frozen=True)
class Resolver:
    """Merges what several sources propose for the same vars of ``target``.

    ``fn`` receives ``{source registry name: {var: value}}`` (each source's
    proposal for the resolver's vars it is authoritative over) and returns
    ``{var: value}`` for every var in ``vars``. It sees nothing of the target,
    so it is a function of its sources alone by construction (R1's first half).
    """

    target: str
    vars: tuple[str, ...]
    fn: ResolveFn = field(compare=False)
    name: str = ""


@dataclass(frozen=True)
class FederationSpec:
    """The neutral model of a federation: what the checks and the machine read."""

    name: str
    members: tuple[MachineSpec, ...]
    morphisms: tuple[Morphism, ...]
    resolvers: tuple[Resolver, ...] = ()
    #: registries embedded from certificates: tables, no rules
    certified: tuple[CertifiedRegistry, ...] = ()

    def member(self, name: str) -> MachineSpec | CertifiedRegistry:
        for m in self.members:
            if m.name == name:
                return m
        for c in self.certified:
            if c.name == name:
                return c
        raise FederationError(f"unknown registry {name!r} (known: "
                              f"{', '.join(self.names) or 'none'})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members) + tuple(c.name for c in self.certified)

    def incoming(self, target: str) -> tuple[Morphism, ...]:
        return tuple(m for m in self.morphisms if m.target == target)

    def resolver_of(self, target: str, var: str) -> Resolver | None:
        for r in self.resolvers:
            if r.target == target and var in r.vars:
                return r
        return None


def _identifier(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise FederationError(f"{kind} name {name!r} is not an identifier")
    return name


def _var_name(spec: MachineSpec | CertifiedRegistry, key: Any, what: str) -> str:
    name = key.name if isinstance(key, Var) else key
    for v in spec.vars:
        if v.name == name:
            if isinstance(key, Var) and key != v:
                raise FederationError(f"{what}: var {key.name!r} belongs to another registry")
            return v.name
    raise FederationError(f"{what}: {key!r} is not a var of {spec.name!r} (known: "
                          f"{', '.join(v.name for v in spec.vars)})")


class Federation:
    """Declare registries and the authority arrows between them, then check.

    >>> from convergent import Registry
    >>> maker = Registry("maker"); active = maker.bool("active")
    >>> _ = maker.event("launch", apply={"active": "true"})
    >>> shop = Registry("shop"); listed = shop.bool("listed"); sold = shop.int("sold", 0, 2)
    >>> _ = shop.event("sell", apply={"sold": "sold + 1"})
    >>> fed = Federation("supply").registry(maker).registry(shop)
    >>> _ = fed.morphism("maker", "shop", shared=["listed"], map={"listed": "active"})
    >>> fed.check().verdict
    'pass'
    """

    def __init__(self, name: str) -> None:
        self.name = _identifier("federation", name)
        self._members: dict[str, MachineSpec] = {}
        self._certified: dict[str, CertifiedRegistry] = {}
        self._morphisms: dict[str, Morphism] = {}
        self._resolvers: list[Resolver] = []

    def registry(self, registry: Registry | MachineSpec) -> Federation:
        """Add a member (a ``Registry`` or a loaded ``MachineSpec``); its name
        is its name in the federation and must be unique."""
        spec = registry.spec() if isinstance(registry, Registry) else registry
        if not isinstance(spec, MachineSpec):
            raise FederationError(f"registry: expected a Registry or a MachineSpec, "
                                  f"got {registry!r}")
        if spec.name in self._members or spec.name in self._certified:
            raise FederationError(f"duplicate registry name {spec.name!r}")
        self._members[spec.name] = spec
        return self

    def embed(self, certificate: Certificate, *, digest: str | None = None) -> Federation:
        """Add a certified sub-federation: its registries (as tables), its
        morphisms and its resolvers, after re-checking it.

        Args:
            certificate: from ``certify`` or ``load_certificate``.
            digest: the digest the embedder expects (pin it: a certificate
                whose names, pairs or tables changed has another one).

        Raises:
            CertificateError: the content does not match its digest or the
                pinned one, or the sub-federation fails its re-check.
            FederationError: a name is already used in this federation."""
        from .certificate import Certificate as _Certificate
        if not isinstance(certificate, _Certificate):
            raise FederationError(f"embed: expected a Certificate, got {certificate!r}")
        certificate.recheck(digest=digest)
        taken = [r.name for r in certificate.registries
                 if r.name in self._members or r.name in self._certified]
        clash = [m.name for m in certificate.morphisms if m.name in self._morphisms]
        if taken or clash:
            raise FederationError(f"embed {certificate.name!r}: names already used in "
                                  f"{self.name!r}: registries {taken}, morphisms {clash}")
        for r in certificate.registries:
            self._certified[r.name] = r
        for m in certificate.morphisms:
            self._morphisms[m.name] = m
        self._resolvers.extend(certificate.resolvers)
        return self

    def _spec(self, name: Any, what: str) -> MachineSpec | CertifiedRegistry:
        key = name.name if isinstance(name, Registry) else name
        if key in self._certified:
            return self._certified[key]
        if key not in self._members:
            raise FederationError(f"{what}: unknown registry {key!r} (add it with "
                                  f".registry() first; known: "
                                  f"{', '.join([*self._members, *self._certified]) or 'none'})")
        return self._members[key]

    def morphism(self, source: Any, target: Any, *, shared: Iterable[Any],
                 map: MapFn | Mapping[Any, str | bool | int],
                 name: str | None = None) -> Federation:
        """``source`` becomes authoritative over ``shared`` vars of ``target``.

        ``map`` is a callable ``s -> {var: value}`` over a read-only view of the
        source state, or ``{var: expression}`` in the spec language over the
        source's vars (``{"listed": "status == 'active'"}``)."""
        src = self._spec(source, "morphism source")
        dst = self._spec(target, "morphism target")
        label = name if name is not None else f"{src.name}_to_{dst.name}"
        _identifier("morphism", label)
        if label in self._morphisms:
            raise FederationError(f"duplicate morphism name {label!r} (pass name=...)")
        vars_ = tuple(_var_name(dst, v, f"morphism {label!r} shared") for v in shared)
        if not vars_:
            raise FederationError(f"morphism {label!r}: shared names no var")
        if len(set(vars_)) != len(vars_):
            raise FederationError(f"morphism {label!r}: shared repeats a var: {vars_!r}")
        for other in self._morphisms.values():
            if other.source == src.name and other.target == dst.name and (
                    set(other.shared) & set(vars_)):
                raise FederationError(f"morphism {label!r}: {other.name!r} already maps "
                                      f"{src.name!r} onto {sorted(set(other.shared) & set(vars_))}")
        if isinstance(map, Mapping):
            exprs = []
            keys = {_var_name(dst, k, f"morphism {label!r} map"): v for k, v in map.items()}
            if set(keys) != set(vars_):
                raise FederationError(f"morphism {label!r}: map assigns {sorted(keys)}, "
                                      f"expected exactly the shared vars {sorted(vars_)}")
            from ..spec.expr import compile_expr
            svars = {v.name: v for v in src.vars}
            tvars = {v.name: v for v in dst.vars}
            for v in vars_:
                text = keys[v]
                try:
                    compile_expr(text, svars, tvars[v], what=f"map of morphism {label!r} to {v}")
                except SpecError as exc:
                    raise FederationError(str(exc)) from None
                exprs.append((v, str(text) if not isinstance(text, bool) else
                              ("true" if text else "false")))
            m = Morphism(label, src.name, dst.name, vars_, exprs=tuple(exprs))
        elif callable(map):
            m = Morphism(label, src.name, dst.name, vars_, fn=map)
        else:
            raise FederationError(f"morphism {label!r}: map must be a callable or a "
                                  f"{{var: expression}} mapping, got {map!r}")
        self._morphisms[label] = m
        return self

    def resolver(self, target: Any, *, vars: Iterable[Any], resolve: ResolveFn,
                 name: str | None = None) -> Federation:
        """Merge the proposals of several sources for ``vars`` of ``target``."""
        dst = self._spec(target, "resolver target")
        names = tuple(_var_name(dst, v, "resolver vars") for v in vars)
        if not names or len(set(names)) != len(names):
            raise FederationError(f"resolver of {dst.name!r}: vars must be distinct and "
                                  f"non-empty, got {names!r}")
        for r in self._resolvers:
            both = sorted(set(r.vars) & set(names))
            if r.target == dst.name and both:
                raise FederationError(f"resolver of {dst.name!r}: {both} already have a resolver")
        if not callable(resolve):
            raise FederationError(f"resolver of {dst.name!r}: resolve must be a callable")
        self._resolvers.append(Resolver(dst.name, names, resolve,
                                        name or f"resolve_{dst.name}_{'_'.join(names)}"))
        return self

    def spec(self) -> FederationSpec:
        """The neutral model of what was declared."""
        return FederationSpec(self.name, tuple(self._members.values()),
                              tuple(self._morphisms.values()), tuple(self._resolvers),
                              tuple(self._certified.values()))

    def check(self, *, xu: bool = False) -> FederationReport:
        """Run every check (XU only when asked); never raises on a failed check."""
        from .check import check_federation
        return check_federation(self.spec(), xu=xu)

    def build(self, *, xu: bool = False) -> FederatedMachine:
        """The federated machine; raises ``FederationCheckError`` when a check fails."""
        from .machine import FederatedMachine
        return FederatedMachine.from_spec(self.spec(), xu=xu)

    def __repr__(self) -> str:
        return (f"Federation({self.name!r}, registries={len(self._members)}, "
                f"certified={len(self._certified)}, "
                f"morphisms={len(self._morphisms)}, resolvers={len(self._resolvers)})")
