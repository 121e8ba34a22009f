"""Certificates: certify, save, load, embed; every tampering refused with a
clear error; hostile files refused at load, never with a stray exception."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convergent import Registry
from convergent.federation import Federation, FederationCheckError, FederationError
from convergent.federation.certificate import (
    Certificate,
    CertificateError,
    certify,
    load_certificate,
    loads_certificate,
    save_certificate,
)

from . import fixtures


def _doc(cert: Certificate) -> dict[str, Any]:
    return json.loads(json.dumps(cert.to_dict()))


def _redigest(doc: dict[str, Any]) -> dict[str, Any]:
    """What a forger does: recompute the digest after an edit."""
    doc["digest"] = loads_certificate(json.dumps(doc)).compute_digest()
    return doc


def _table(doc: dict[str, Any], reg: str, event: int) -> np.ndarray:
    raw = base64.b64decode(doc["tables"]["registries"][reg]["step"][event])
    return np.frombuffer(raw, dtype="<u4").copy()


def _set_table(doc: dict[str, Any], reg: str, event: int, a: np.ndarray) -> None:
    doc["tables"]["registries"][reg]["step"][event] = base64.b64encode(
        a.astype("<u4").tobytes()).decode()


def test_save_load_and_embed_give_the_same_federation(tmp_path: Path) -> None:
    fed = fixtures.door()
    cert = certify(fed)
    for name in ("door.cert.json", "door.cert.json.gz"):
        path = tmp_path / name
        save_certificate(cert, path)
        back = load_certificate(path)
        assert back.digest == cert.digest == back.compute_digest()
        assert [r.name for r in back.registries] == ["hr", "security", "door"]
    assert gzip.decompress((tmp_path / "door.cert.json.gz").read_bytes())
    embedded = Federation("door").embed(load_certificate(tmp_path / "door.cert.json"),
                                        digest=cert.digest)
    want = fed.check()
    got = embedded.check()
    assert [(c.code, c.subject, c.ok) for c in got.checks] == \
        [(c.code, c.subject, c.ok) for c in want.checks]
    a, b = fed.build(), embedded.build()
    events = [("hr", "hire"), ("door", "jot"), ("security", "clear")]
    assert a.decode(a.run(events)) == b.decode(b.run(events))
    # certifying the embedded federation again gives the same certificate
    assert certify(embedded).digest == cert.digest


def test_an_embedded_certificate_composes_with_new_registries() -> None:
    """The embedder adds its own registry fed by a certified one, with an
    expression over the certified registry's vars; the result equals the
    federation declared from specs."""
    def audit() -> Registry:
        r = Registry("audit")
        r.bool("sold_out")
        r.bool("seen")
        r.event("look", apply={"seen": "true"})
        return r

    cert = certify(fixtures.supply())
    big = Federation("big").embed(cert).registry(audit())
    big.morphism("shop", "audit", shared=["sold_out"], map={"sold_out": "sold == 3"})
    plain = fixtures.supply()
    plain.registry(audit())
    plain.morphism("shop", "audit", shared=["sold_out"], map={"sold_out": "sold == 3"})
    assert big.check().ok and plain.check().ok
    m1, m2 = big.build(), plain.build()
    events = [("shop", "sell")] * 3 + [("audit", "look"), ("maker", "recall")]
    assert m1.decode(m1.run(events)) == m2.decode(m2.run(events))
    assert m1.decode(m1.run(events))["audit"] == {"sold_out": True, "seen": True}


def test_certify_refuses_a_failing_federation() -> None:
    with pytest.raises(FederationCheckError) as info:
        certify(fixtures.supply(sell_reads_listed=True))
    assert "C1" in info.value.report.failed_codes()


def test_tampered_tables_without_a_new_digest_are_refused() -> None:
    cert = certify(fixtures.supply())
    doc = _doc(cert)
    t = _table(doc, "shop", 0)
    t[0] = t[1]
    _set_table(doc, "shop", 0, t)
    forged = loads_certificate(json.dumps(doc))
    with pytest.raises(CertificateError, match="was changed after it was certified"):
        Federation("x").embed(forged)


def test_tampered_tables_with_a_new_digest_fail_the_recheck_or_the_pin() -> None:
    """The forger makes ``sell`` a no-op while unlisted (a guard reading the
    shared var) and recomputes the digest: the re-check runs C1 again."""
    cert = certify(fixtures.supply())
    doc = _doc(cert)
    shop = next(r for r in cert.registries if r.name == "shop")
    sell = list(shop.events).index("sell")
    t = _table(doc, "shop", sell)
    for sid in range(len(t)):
        listed = sid % 2          # first var: listed (least significant digit)
        if not listed:
            t[sid] = sid
    _set_table(doc, "shop", sell, t)
    forged = loads_certificate(json.dumps(_redigest(doc)))
    assert forged.digest != cert.digest
    with pytest.raises(CertificateError, match="fails its re-check.*C1"):
        Federation("x").embed(forged)
    # a harmless edit with a new digest passes the re-check, not the pin
    doc = _doc(cert)
    doc["registries"][0]["events"] = ["recall"]      # same names: re-digest only
    doc["name"] = "supply2"
    other = loads_certificate(json.dumps(_redigest(doc)))
    Federation("x").embed(other)
    with pytest.raises(CertificateError, match="expected"):
        Federation("x").embed(other, digest=cert.digest)


def test_renamed_vars_are_refused() -> None:
    cert = certify(fixtures.supply())
    doc = _doc(cert)
    shop = next(r for r in doc["registries"] if r["name"] == "shop")
    shop["vars"][1]["name"] = "units"
    doc["morphisms"][0]["shared"] = ["listed"]
    with pytest.raises(CertificateError, match="changed after it was certified"):
        Federation("x").embed(loads_certificate(json.dumps(doc)))
    forged = loads_certificate(json.dumps(_redigest(doc)))
    with pytest.raises(CertificateError, match="renamed"):
        Federation("x").embed(forged, digest=cert.digest)
    # without a pin the embedder's own reference to the old name fails
    big = Federation("x").embed(forged)
    with pytest.raises(FederationError, match="unknown name 'sold'.*known vars: listed, units"):
        big.morphism("shop", "maker", shared=["recalled"], map={"recalled": "sold == 3"})


def test_a_changed_pair_set_is_refused() -> None:
    """Declaring ``sell`` and ``unlist`` independent is harmless (they
    commute); declaring a pair that does not commute fails the re-check."""
    r = Registry("counter")
    r.int("n", 0, 3)
    r.bool("flag")
    r.event("bump", apply={"n": "min(n + 1, 3)"})
    r.event("double", apply={"n": "min(n * 2, 3)"})
    r.event("wave", apply={"flag": "not flag"})
    r.independent("bump", "wave")
    cert = certify(Federation("one").registry(r))
    doc = _doc(cert)
    doc["registries"][0]["independent"].append(["bump", "double"])
    with pytest.raises(CertificateError, match="changed after it was certified"):
        Federation("x").embed(loads_certificate(json.dumps(doc)))
    forged = loads_certificate(json.dumps(_redigest(doc)))
    with pytest.raises(CertificateError, match=r"\(bump, double\) does not commute"):
        Federation("x").embed(forged)
    doc = _doc(cert)
    doc["registries"][0]["independent"] = []
    fewer = loads_certificate(json.dumps(_redigest(doc)))
    with pytest.raises(CertificateError, match="expected"):
        Federation("x").embed(fewer, digest=cert.digest)


def test_a_step_into_an_invalid_state_fails_the_registry_recheck() -> None:
    cert = certify(fixtures.stocked(breaks=False))
    shop = next(r for r in cert.registries if r.name == "shop")
    nf = shop.nf
    bad = int(np.flatnonzero(nf != np.arange(len(nf)))[0])
    step = shop.step.copy()
    step[0, 0] = bad
    regs = tuple(replace(r, step=step) if r.name == "shop" else r for r in cert.registries)
    forged = replace(cert, registries=regs)
    forged = replace(forged, digest=forged.compute_digest())
    with pytest.raises(CertificateError, match="not a valid state"):
        forged.recheck()


def test_names_already_in_use_are_refused() -> None:
    cert = certify(fixtures.supply())
    fed = Federation("x").registry(_one("maker"))
    with pytest.raises(FederationError, match="names already used"):
        fed.embed(cert)
    with pytest.raises(FederationError, match="expected a Certificate"):
        Federation("x").embed("cert.json")  # type: ignore[arg-type]


def _one(name: str) -> Registry:
    r = Registry(name)
    r.bool("b")
    r.event("e", apply={"b": "true"})
    return r


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(format="other"), "format must be"),
    (lambda d: d.update(format_version=2), "not supported"),
    (lambda d: d.update(extra=1), "unknown key"),
    (lambda d: d.pop("digest"), "missing key"),
    (lambda d: d.update(digest="zz"), "64 hex digits"),
    (lambda d: d.update(name="../etc"), "identifier"),
    (lambda d: d["registries"][0].update(initial=99), "initial must be an int"),
    (lambda d: d["registries"][0]["vars"][0].update(kind="float"), "kind must be"),
    (lambda d: d["registries"][0]["vars"].append({"name": "big", "kind": "int", "min": 0,
                                                  "max": 1 << 40, "overflow": "clamp"}),
     "max must be an int"),
    (lambda d: d["registries"][1]["vars"].extend(
        [{"name": f"v{i}", "kind": "int", "min": 0, "max": 999, "overflow": "clamp"}
         for i in range(3)]), "more than"),
    (lambda d: d["registries"][0].update(independent=[["recall", "recall"]]),
     "two distinct events"),
    (lambda d: d["tables"]["registries"]["maker"].update(nf="!!"), "not base64"),
    (lambda d: d["tables"]["registries"]["maker"].update(nf="AAAA"), "bytes, expected"),
    (lambda d: d["tables"]["registries"]["maker"].update(
        nf=base64.b64encode(np.array([0, 7], "<u4").tobytes()).decode()), "value >= 2"),
    (lambda d: d["tables"]["registries"]["maker"].update(step=[]), "rows for 1 events"),
    (lambda d: d["tables"]["morphisms"].clear(), "base64 string"),
    (lambda d: d["morphisms"][0].update(target="nobody"), "source and target"),
    (lambda d: d["morphisms"][0].update(shared=["nope"]), "distinct vars"),
    (lambda d: d.update(registries={"a": 1}), "must be a list"),
])
def test_malformed_certificates_are_refused_at_load(edit: Any, match: str) -> None:
    doc = _doc(certify(fixtures.supply()))
    edit(doc)
    with pytest.raises(CertificateError, match=match):
        loads_certificate(json.dumps(doc))


def test_hostile_files(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(CertificateError, match="nests too deeply|must be an object"):
        load_certificate(p)
    p.write_bytes(b"{not json")
    with pytest.raises(CertificateError, match="not JSON"):
        load_certificate(p)
    save_certificate(certify(fixtures.supply()), p)
    with pytest.raises(CertificateError, match="more than 100 bytes"):
        load_certificate(p, max_bytes=100)
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * 5_000_000))
    with pytest.raises(CertificateError, match="more than 1000 bytes"):
        load_certificate(bomb, max_bytes=1000)
    bomb.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(CertificateError, match="corrupt gzip"):
        load_certificate(bomb)
    with pytest.raises(CertificateError, match="cannot read"):
        load_certificate(tmp_path / "missing.json")


_VALID = json.dumps(certify(fixtures.door()).to_dict())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.characters(
    codec="ascii")), min_size=1, max_size=4))
def test_mutated_files_are_refused_or_rechecked_never_crash(
        edits: list[tuple[int, str]]) -> None:
    text = list(_VALID)
    for i, ch in edits:
        text[i] = ch
    try:
        cert = loads_certificate("".join(text))
    except CertificateError:
        return
    try:
        cert.recheck()
    except CertificateError:
        return
    assert cert.compute_digest() == cert.digest


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "federation"


def _cli(*argv: str) -> int:
    import argparse

    from convergent.federation.cli import register
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["federation", *argv])
    return int(args.func(args))


def test_cli_certify_and_recheck(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "supply.cert.json.gz"
    assert _cli("certify", str(EXAMPLES / "supply.yaml"), "-o", str(out), "--xu") == 0
    digest = capsys.readouterr().out.split("digest ")[1].strip()
    assert load_certificate(out).digest == digest and load_certificate(out).xu
    assert _cli("recheck", str(out), "--digest", digest) == 0
    assert _cli("recheck", str(out), "--digest", "f" * 64) == 1
    assert "refused" in capsys.readouterr().out
    assert _cli("certify", str(EXAMPLES / "recall_race.yaml"), "-o",
                str(tmp_path / "x.json")) == 1
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CertificateError, match="missing key"):
        _cli("recheck", str(tmp_path / "bad.json"))


def test_yaml_embeds_a_certificate_and_pins_its_digest(tmp_path: Path) -> None:
    from convergent.federation.loader import load_federation
    cert = certify(fixtures.supply())
    save_certificate(cert, tmp_path / "supply.cert.json")
    (tmp_path / "audit.yaml").write_text(
        "machine: audit\nvars:\n  sold_out: bool\n  seen: bool\n"
        "events:\n  look:\n    apply: {seen: 'true'}\n")
    text = ("federation: outer\nregistries:\n  audit: audit.yaml\n"
            "embed:\n  - certificate: supply.cert.json\n    digest: '{digest}'\n"
            "morphisms:\n  - source: shop\n    target: audit\n"
            "    map: {{sold_out: sold == 3}}\n")
    (tmp_path / "outer.yaml").write_text(text.format(digest=cert.digest))
    spec = load_federation(tmp_path / "outer.yaml")
    assert set(spec.names) == {"audit", "maker", "shop"}
    from convergent.federation import check_federation
    assert check_federation(spec).ok
    (tmp_path / "outer.yaml").write_text(text.format(digest="0" * 64))
    with pytest.raises(CertificateError, match="expected 0000"):
        load_federation(tmp_path / "outer.yaml")
    (tmp_path / "outer.yaml").write_text(text.format(digest=cert.digest).replace(
        "supply.cert.json", "../supply.cert.json"))
    with pytest.raises(FederationError, match="relative path"):
        load_federation(tmp_path / "outer.yaml")


def _paths(d: Any, p: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [p]
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, p + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _paths(v, p + (i,))
    return out


_DOC = json.loads(_VALID)
_ALL_PATHS = _paths(_DOC)[1:]
_ODD = [None, 0, -1, 1 << 40, "", "x", [], {}, [1, 2], {"a": 1}, True, 1.5, "a" * 200,
        ["hr", "access"], "door"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_ALL_PATHS), st.sampled_from(_ODD)),
                min_size=1, max_size=3))
def test_structurally_mutated_certificates_never_crash(
        edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    """Any field replaced by a value of another type is refused with a
    CertificateError (a list as a morphism's source once raised TypeError:
    unhashable type)."""
    doc = json.loads(_VALID)
    for path, value in edits:
        cur = doc
        try:
            for k in path[:-1]:
                cur = cur[k]
            cur[path[-1]] = json.loads(json.dumps(value))  # a copy: _ODD stays as it is
        except (KeyError, IndexError, TypeError):
            continue                    # an earlier edit removed this path
    try:
        cert = loads_certificate(json.dumps(doc))
        cert.recheck()
    except CertificateError:
        return
