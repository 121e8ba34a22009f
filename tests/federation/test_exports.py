"""The public surface of convergent.federation is pinned."""

from __future__ import annotations

import convergent.federation as fed


def test_all_is_pinned_and_importable() -> None:
    assert fed.__all__ == sorted(fed.__all__)
    assert set(fed.__all__) == {
        "CheckResult", "CoordinationPlan", "Counterexample", "CycleDiagnosis",
        "FederatedMachine", "FederatedState", "Federation", "FederationCheckError",
        "FederationError", "FederationReport", "FederationSpec", "Morphism",
        "RegistryResult", "Resolver", "TraceStep", "check_federation", "diagnose_cycle",
        "minimal_coordination_plan", "topological_order",
    }
    for name in fed.__all__:
        assert getattr(fed, name) is not None
    assert issubclass(fed.FederationError, ValueError)
