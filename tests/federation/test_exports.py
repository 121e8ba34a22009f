"""The public surface of convergent.federation is pinned."""

from __future__ import annotations

import convergent.federation as fed


def test_all_is_pinned_and_importable() -> None:
    assert fed.__all__ == sorted(fed.__all__)
    assert set(fed.__all__) == {
        "Certificate", "CertificateError", "CheckResult", "CoordinationPlan",
        "Counterexample", "CycleDiagnosis", "FederatedMachine", "FederatedReplica",
        "FederatedState", "Federation", "FederationCheckError", "FederationError",
        "FederationReport", "FederationSpec", "LocalProjectionBus", "Morphism",
        "NatsProjectionLink", "Projection", "ProjectionError", "ProjectionStats",
        "RegistryResult", "Resolver", "TraceStep", "certify", "check_federation",
        "diagnose_cycle", "load_certificate", "minimal_coordination_plan",
        "save_certificate", "topological_order",
    }
    for name in fed.__all__:
        assert getattr(fed, name) is not None
    assert issubclass(fed.FederationError, ValueError)
    assert issubclass(fed.CertificateError, fed.FederationError)
    assert issubclass(fed.ProjectionError, fed.FederationError)
