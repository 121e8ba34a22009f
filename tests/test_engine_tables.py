"""The engine's shortcuts agree with plain checks over its full tables.

The engine checks each pair on a small sub-space (the variables both events and
the repairs can touch) and looks failures up among the reachable states; here
the same facts are recomputed the slow, obvious way over the full step tables,
on the benchmark family and on the examples.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import convergent
from conftest import shared_path
from convergent.engine.check import analyze

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_engine import bools_registry  # noqa: E402


def full_facts(an):
    step = an.step
    valid = np.ones(an.full.size, dtype=bool)
    m = convergent.Machine._from_analysis(an)
    valid = m.valid_table
    # reachability by plain BFS over the full tables
    seen = {an.initial_id}
    frontier = [an.initial_id]
    while frontier:
        nxt = []
        for s in frontier:
            for e in range(step.shape[0]):
                t = int(step[e, s])
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        frontier = nxt
    reach = np.array(sorted(seen))
    names = [e.name for e in an.compiled.events]
    fail_all, fail_reach = set(), set()
    for a, b in an.compiled.spec.independent:
        ia, ib = names.index(a), names.index(b)
        diverge = step[ib][step[ia]] != step[ia][step[ib]]
        if (diverge & valid).any():
            fail_all.add((a, b))
        if diverge[reach].any():
            fail_reach.add((a, b))
    return reach, fail_all, fail_reach, valid


def specs():
    yield "bools15", bools_registry(15).spec()
    for p in sorted((ROOT / "examples").glob("*.yaml")):
        yield p.stem, convergent.load_spec(str(p))
    shared = shared_path("conformance", "specs")
    for p in sorted(shared.glob("*.yaml")) if shared.exists() else []:
        if "error" in p.stem or "wfc_cycle" in p.stem:
            continue
        yield p.stem, convergent.load_spec(str(p))


@pytest.mark.parametrize("name, spec", list(specs()), ids=lambda x: x if isinstance(x, str) else "")
def test_report_agrees_with_full_tables(name, spec) -> None:
    an = analyze(spec)
    rep = an.report
    reach, fail_all, fail_reach, valid = full_facts(an)
    assert rep.states.reachable == len(reach)
    assert rep.states.valid == int(valid.sum())
    assert set(rep.cc1.failing_pairs) == fail_reach
    assert set(rep.cc1.failing_pairs_all_valid) == fail_all
    assert rep.cc1.ok == (not fail_reach)
    # idempotence facts in the delivery contract
    for i, e in enumerate(rep.events):
        st = an.step[i]
        twice = st[st[reach]] != st[reach]
        assert rep.delivery["idempotent"][e] == (not twice.any()), e


def test_public_api_is_pinned() -> None:
    assert convergent.__all__ == sorted(convergent.__all__)
    assert set(convergent.__all__) == {
        "BuildError", "Collection", "CollectionMachine", "ComposedMachine", "ComposedState",
        "ConvergenceError", "ConvergentError", "Family", "Machine", "MachineSpec",
        "MachineUsageError", "Problem", "Registry", "Report", "SpecError", "State",
        "StateView", "Var", "__version__", "check", "load_spec"}
    for name in convergent.__all__:
        assert hasattr(convergent, name)
