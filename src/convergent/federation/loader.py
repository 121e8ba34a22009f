"""The YAML (or JSON) form of a federation.

::

    federation: supply
    registries:
      maker: maker.yaml          # a spec file beside this one
      shop: shop.yaml
    morphisms:
      - name: recall_listing     # optional
        source: maker
        target: shop
        map: {listed: not recalled}     # spec-language expressions over the source
    resolvers:                   # only for vars with several sources
      - target: door
        vars: [access]
        policy: all              # all | any | max | min | priority (with order: [...])
    embed:                       # certified sub-federations, re-checked on load
      - certificate: payments.cert.json.gz
        digest: '8149045f...'    # optional: the digest you expect (64 hex digits, quoted)

Registry files are named relative to the federation file and must stay in
its folder tree (no absolute paths, no ``..``): a federation file from
elsewhere cannot make the checker read arbitrary files. The text goes through
the spec loader's size, nesting and character limits before it is parsed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import SpecError
from ..spec.loader import _parse, load_spec
from .errors import FederationError
from .model import Federation, FederationSpec
from .resolvers import policy

__all__ = ["load_federation", "loads_federation"]

_TOP = ("federation", "registries", "embed", "morphisms", "resolvers")
_EMBED = ("certificate", "digest")
_MORPHISM = ("name", "source", "target", "map")
_RESOLVER = ("name", "target", "vars", "policy", "order")
MAX_ITEMS = 1000


def load_federation(path: str | os.PathLike[str]) -> FederationSpec:
    """Load the federation in the file at ``path`` and its registries' specs."""
    filename = os.fspath(path)
    try:
        text = Path(filename).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise FederationError(f"{filename}: cannot read the federation: {e}") from None
    return loads_federation(text, filename, base=Path(filename).parent)


def _where(filename: str, node: Any) -> str:
    lc = getattr(node, "lc", None)
    if lc is not None and getattr(lc, "line", None) is not None:
        return f"{filename}:{lc.line + 1}"
    return filename


def _keys(filename: str, node: Any, allowed: tuple[str, ...], what: str) -> Mapping[str, Any]:
    if not isinstance(node, Mapping):
        raise FederationError(f"{_where(filename, node)}: {what} must be a mapping, got "
                              f"{type(node).__name__}")
    extra = [k for k in node if k not in allowed]
    if extra:
        raise FederationError(f"{_where(filename, node)}: unknown key(s) {extra} in {what} "
                              f"(allowed: {', '.join(allowed)})")
    return node


def _list(filename: str, node: Any, what: str) -> list[Any]:
    if node is None:
        return []
    if not isinstance(node, list):
        raise FederationError(f"{_where(filename, node)}: {what} must be a list")
    if len(node) > MAX_ITEMS:
        raise FederationError(f"{_where(filename, node)}: more than {MAX_ITEMS} {what}")
    return list(node)


def _str(filename: str, node: Any, key: str, what: str) -> str:
    value = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(value, str) or not value:
        raise FederationError(f"{_where(filename, node)}: {what} needs {key}: <name>")
    return str(value)


def _registry_path(filename: str, base: Path | None, ref: str) -> Path:
    pure = PurePosixPath(ref.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or Path(ref).is_absolute():
        raise FederationError(f"{filename}: registry file {ref!r} must be a relative path "
                              "inside the federation's folder")
    return (base or Path(".")) / Path(*pure.parts)


def loads_federation(text: str, filename: str = "<string>",
                     base: Path | None = None) -> FederationSpec:
    """Load a federation from its text; ``base`` is the folder registry files
    are relative to (None: registries must be given inline as specs)."""
    data = _parse(text, filename)
    top = _keys(filename, data, _TOP, "a federation")
    name = _str(filename, top, "federation", "the file")
    fed = Federation(name)
    regs = top.get("registries") or {}
    embeds = _list(filename, top.get("embed"), "embedded certificates")
    if not isinstance(regs, Mapping) or not (regs or embeds):
        raise FederationError(f"{filename}: registries must map names to spec files")
    if len(regs) > MAX_ITEMS:
        raise FederationError(f"{filename}: more than {MAX_ITEMS} registries")
    for key, ref in regs.items():
        if not isinstance(ref, str):
            raise FederationError(f"{_where(filename, regs)}: registry {key!r} must name a "
                                  "spec file")
        if base is None:
            raise FederationError(f"{filename}: registry files need a base folder "
                                  "(load the federation from a file)")
        try:
            spec = load_spec(_registry_path(filename, base, ref))
        except SpecError as exc:
            raise FederationError(f"{filename}: registry {key!r}: {exc}") from None
        if spec.name != key:
            raise FederationError(f"{_where(filename, regs)}: registry {key!r} is named "
                                  f"{spec.name!r} in {ref}; use the same name")
        fed.registry(spec)
    for node in embeds:
        e = _keys(filename, node, _EMBED, "an embedded certificate")
        ref = _str(filename, e, "certificate", "an embedded certificate")
        pin = e.get("digest")
        if pin is not None and not (isinstance(pin, str) and len(pin) == 64 and all(
                c in "0123456789abcdef" for c in pin)):
            raise FederationError(f"{_where(filename, e)}: digest must be 64 hex digits, "
                                  "quoted ('...')")
        if base is None:
            raise FederationError(f"{filename}: certificate files need a base folder "
                                  "(load the federation from a file)")
        from .certificate import load_certificate
        try:
            fed.embed(load_certificate(_registry_path(filename, base, ref)), digest=pin)
        except FederationError as exc:     # keep the type: a CertificateError stays one
            raise type(exc)(f"{_where(filename, e)}: {ref}: {exc}") from None
    for node in _list(filename, top.get("morphisms"), "morphisms"):
        m = _keys(filename, node, _MORPHISM, "a morphism")
        source = _str(filename, m, "source", "a morphism")
        target = _str(filename, m, "target", "a morphism")
        mapping = m.get("map")
        if not isinstance(mapping, Mapping) or not mapping:
            raise FederationError(f"{_where(filename, m)}: a morphism needs map: "
                                  "{shared var: expression over the source}")
        exprs = {str(k): (v if isinstance(v, (bool, int)) else str(v))
                 for k, v in mapping.items()}
        try:
            fed.morphism(source, target, shared=list(exprs), map=exprs,
                         name=str(m["name"]) if m.get("name") is not None else None)
        except FederationError as exc:
            raise FederationError(f"{_where(filename, m)}: {exc}") from None
    for node in _list(filename, top.get("resolvers"), "resolvers"):
        r = _keys(filename, node, _RESOLVER, "a resolver")
        target = _str(filename, r, "target", "a resolver")
        kind = _str(filename, r, "policy", "a resolver")
        vars_ = _list(filename, r.get("vars"), "resolver vars")
        try:
            fed.resolver(target, vars=[str(v) for v in vars_],
                         resolve=policy(kind, vars_, _list(filename, r.get("order"), "order")),
                         name=str(r["name"]) if r.get("name") is not None else None)
        except FederationError as exc:
            raise FederationError(f"{_where(filename, r)}: {exc}") from None
    return fed.spec()
