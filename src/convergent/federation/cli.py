"""``convergent federation check|certify|recheck``: every check of a
federation, its certificate, and the re-check of a certificate file."""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["register"]


def _load(target: str) -> Any:
    """A federation YAML/JSON file, or ``module:attr`` / ``file.py:attr``
    naming a Federation, a FederationSpec, or a zero-argument callable
    returning one (Python is trusted code, as for ``convergent check``)."""
    from ..errors import ConvergentError
    from .loader import load_federation
    from .model import Federation, FederationSpec
    if ":" in target and not os.path.exists(target):
        import importlib
        import importlib.util
        import sys
        mod_name, _, attr = target.rpartition(":")
        if mod_name.endswith(".py"):
            path = os.path.abspath(mod_name)
            spec = importlib.util.spec_from_file_location(
                os.path.splitext(os.path.basename(path))[0], path)
            if spec is None or spec.loader is None or not os.path.exists(path):
                raise ConvergentError(f"{mod_name}: no such Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
        obj = getattr(module, attr, None)
        if obj is None:
            raise ConvergentError(f"{mod_name!r} has no attribute {attr!r}")
        if callable(obj) and not isinstance(obj, (Federation, FederationSpec, type)):
            obj = obj()
        if isinstance(obj, Federation):
            return obj.spec()
        if isinstance(obj, FederationSpec):
            return obj
        raise ConvergentError(f"{target} is a {type(obj).__name__}, not a Federation")
    if not os.path.exists(target):
        raise ConvergentError(f"{target}: no such file")
    return load_federation(target)


def cmd_check(args: argparse.Namespace) -> int:
    from .check import check_federation
    spec = _load(args.file)
    report = check_federation(spec, xu=args.xu)
    print(report.to_json() if args.json else report.render_text())
    return 0 if report.ok else 1


def cmd_certify(args: argparse.Namespace) -> int:
    from .certificate import certify, save_certificate
    from .errors import FederationCheckError
    spec = _load(args.file)
    try:
        cert = certify(spec, xu=args.xu)
    except FederationCheckError as exc:
        print(exc.report.render_text())
        return 1
    size = save_certificate(cert, args.output)
    print(f"certified {cert.name}: {len(cert.registries)} registries, "
          f"{len(cert.morphisms)} morphisms, {size} bytes -> {args.output}")
    print(f"digest {cert.digest}")
    return 0


def cmd_recheck(args: argparse.Namespace) -> int:
    from .certificate import CertificateError, load_certificate
    cert = load_certificate(args.certificate)          # malformed: CertificateError, exit 2
    try:
        cert.recheck(digest=args.digest)
    except CertificateError as exc:
        print(f"refused: {exc}")
        return 1
    print(f"certificate {cert.name}: re-checked, digest {cert.digest} "
          f"({', '.join(r.name for r in cert.registries)})")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "federation", help="check registries owned by different services, together",
        description="Federations: registries linked by morphisms (a source authoritative "
                    "over shared vars of a target). See docs/federation.md.")
    sub = p.add_subparsers(dest="federation_command", required=True)
    c = sub.add_parser(
        "check", help="run every check of a federation (M1, R1, R2, acyclicity or monotone "
                 "cycles, C1, C2)",
        description="Verify each registry, then every morphism, resolver and target on "
                    "the registries' own tables (never their product). Exit 0 pass, "
                    "1 a check fails, 2 bad input. "
                    "Example: convergent federation check examples/federation/supply.yaml")
    c.add_argument("file", help="a federation YAML/JSON file, or module:attr naming a "
                                "Federation")
    c.add_argument("--xu", action="store_true",
                   help="also require projection safety (XU), for deployments where each "
                        "service merges its sources' projections itself")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(func=cmd_check)
    k = sub.add_parser(
        "certify", help="check a federation and write its certificate (tables + digest)",
        description="Run every check; when all hold, write the federation's tables and a "
                    "digest over its names, declared pairs and tables. Exit 0 written, "
                    "1 a check fails, 2 bad input. Example: convergent federation certify "
                    "examples/federation/supply.yaml -o supply.cert.json.gz")
    k.add_argument("file", help="a federation YAML/JSON file, or module:attr")
    k.add_argument("-o", "--output", required=True,
                   help="the certificate file (.json, or .json.gz to compress)")
    k.add_argument("--xu", action="store_true", help="certify projection safety (XU) too")
    k.set_defaults(func=cmd_certify)
    r = sub.add_parser(
        "recheck", help="validate a certificate file and re-run every check on its tables",
        description="Exit 0 when the certificate matches its digest (and --digest) and "
                    "its tables pass every check again, 1 when refused, 2 when the file "
                    "is malformed. Example: convergent federation recheck supply.cert.json "
                    "--digest <64 hex digits>")
    r.add_argument("certificate", help="a certificate file")
    r.add_argument("--digest", help="the digest you expect (pin it)")
    r.set_defaults(func=cmd_recheck)
