"""Every example and conformance spec small enough to enumerate is decided
by the symbolic method as enumeration decides it (scope all and reachable),
with every counterexample replayed (see ``agree``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT, shared_path
from convergent.errors import SpecError
from convergent.spec import load_spec
from convergent.spec.model import MachineSpec

from .agree import agree

SMALL = 2**16


def _small_specs(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        try:
            spec = load_spec(p)
        except SpecError:   # other formats (federations, sagas) and the error cases
            continue
        if _size(spec) <= SMALL:
            out.append(p)
    return out


def _size(spec: MachineSpec) -> int:
    n = 1
    for v in spec.vars:
        n *= v.size
    return n


EXAMPLES_ALL = _small_specs(sorted((ROOT / "examples").rglob("*.yaml")))
#: few events: quick; many (event families expand into instances, every pair
#: and every Houdini candidate a solver query): slow
EXAMPLES = [p for p in EXAMPLES_ALL if len(load_spec(p).events) <= 6]
EXAMPLES_MANY = [p for p in EXAMPLES_ALL if 6 < len(load_spec(p).events) <= 12]
CONFORMANCE = _small_specs(sorted(shared_path("conformance", "specs").glob("*.yaml")))


def _id(p: Path) -> str:
    return p.stem


@pytest.mark.parametrize("path", EXAMPLES, ids=_id)
def test_examples_agree_with_enumeration(path: Path) -> None:
    assert agree(load_spec(path)) in ("pass", "fail", "wfc", "build_error")


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES_MANY, ids=_id)
def test_examples_with_many_events_agree_with_enumeration(path: Path) -> None:
    assert agree(load_spec(path)) in ("pass", "fail", "wfc", "build_error")


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFORMANCE, ids=_id)
def test_conformance_specs_agree_with_enumeration(path: Path) -> None:
    assert agree(load_spec(path)) in ("pass", "fail", "wfc", "build_error")


def test_the_examples_cover_both_verdicts() -> None:
    outcomes = {agree(load_spec(p)) for p in EXAMPLES[:12]}
    assert {"pass", "fail"} <= outcomes, outcomes
