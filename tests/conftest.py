"""Test-suite wide settings.

Hypothesis runs derandomized by default, so CI sees the same examples every
time and a red build always reproduces; explore new examples with
``HYPOTHESIS_PROFILE=explore pytest`` (random, and longer where a test scales
with ``SOUNDNESS_EXAMPLES``).

Shared material (the spec contract's conformance suite) lives in ``../shared``
beside the repository, never at an absolute path: ``shared_path("conformance",
"specs")`` finds it. Outside CI a missing folder makes the tests that need it
skip; under CI (``CI=true``) it fails the run, because CI always provides it
and a suite that silently skips its conformance tests proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: the repository root (the folder holding pyproject.toml)
ROOT = Path(__file__).resolve().parents[1]
#: ``../shared`` relative to the repository root
SHARED = ROOT.parent / "shared"


def in_ci() -> bool:
    """True under CI (``CI=true``, as CI runners set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


class SharedMissing(RuntimeError):
    """``../shared`` lacks something the suite needs, under CI."""


def shared_path(*parts: str) -> Path:
    """``../shared/<parts>``. Under CI a missing path raises ``SharedMissing``
    (at import, when a module computes its parameters from it: a collection
    error, so the run fails); elsewhere the path is returned as is and the
    tests that use it skip (see the ``shared`` fixture) or find no cases."""
    path = SHARED.joinpath(*parts)
    if not path.exists() and in_ci():
        raise SharedMissing(f"{path} not found: CI must provide ../shared beside the "
                            "repository (the conformance suite)")
    return path


@pytest.fixture
def shared() -> Path:
    """The ``../shared`` folder: skips the test when it is missing, fails it
    under CI."""
    if not SHARED.exists():
        if in_ci():
            pytest.fail(f"{SHARED} not found: CI must provide ../shared beside the repository")
        pytest.skip(f"{SHARED} not found (CI provides ../shared)")
    return SHARED


#: tests measured at several seconds or more on the 2-core VM, run by CI but
#: left out of the fast tier (``pytest -m "not slow"``): a module, or one test
SLOW = (
    "test_soundness.py::",
    "test_typing.py::test_mypy_accepts_the_package",
    "test_compose.py::test_generated_composites_reach_what_the_properties_assert",
    "test_fuzz_specs.py::test_structural_mutations_never_crash",
    "test_fuzz_specs.py::test_text_mutations_never_crash",
    "test_abstract.py::test_abstraction_agrees_with_enumeration",
    "test_abstract.py::test_generated_machines_reach_what_the_property_asserts",
    "test_core_hardening.py::test_vectorized_arithmetic_is_exact",
    "test_collection.py::test_collection_check_agrees_with_brute_force",
    "test_families.py::test_family_verdicts_match_the_reference",
    "test_rel_parts.py::test_decomposed_analysis_finds_what_the_exhaustive_one_finds",
    "test_rel_parts.py::test_set_by_set_exploration_finds_what_the_tables_find",
    "test_agreement.py::test_agreement_on_random_linear_machines",
    "test_convergence.py::test_thousand_schedules_converge_to_the_canonical_order",
    "test_symbolic.py::test_floor_division_and_modulo_are_pythons",
    "test_server.py::test_ipv6_loopback",
    "test_simulator.py::test_every_equivocation_yields_verifiable_evidence",
    "test_restarts_and_epochs.py::test_safety_and_liveness_across_validator_set_changes",
    "test_stateful.py::",
    "test_rel_static.py::test_vectorized_tables_are_the_resolver_at_every_set",
    "test_rel_static.py::test_engine_backed_analyze_matches_the_reference",
    "test_reference.py::test_reference_is_self_consistent",
    "test_delivery.py::test_digest_is_independent_of_representation",
    "test_delivery.py::test_digest_changes_exactly_with_meaning",
    "test_coverage_corpus.py::",
    "test_examples.py::test_examples_agree_with_enumeration",
    "test_convergence.py::",
    "test_rel_properties.py::",
    "test_cli_and_exports.py::",
    "test_async_store.py::",
    "test_restarts_and_epochs.py::",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        nodeid = item.nodeid.split("/")[-1]
        # a test that starts a real server (nats-server, PostgreSQL) is slow too
        if any(nodeid.startswith(s) for s in SLOW) or item.get_closest_marker("server"):
            item.add_marker(pytest.mark.slow)
