"""Federation: registries owned by different services, verified together.

Each registry is verified on its own by the core engine; a *morphism* makes
one registry authoritative over some vars of another (its *shared* vars),
through a map from the source's state; a *resolver* merges several sources of
the same vars. ``check`` runs the checks of the corrected model (M1, R1, R2,
acyclicity or monotone cycles, C1, C2, and XU when asked), each on the
registries' own tables, never on their product. A verified sub-federation can
be packaged as a ``Certificate`` and embedded elsewhere (re-checked), and run
as replicas that exchange versioned projections (``FederatedReplica``).
docs/federation.md says what passing guarantees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .certificate import (
    Certificate,
    CertificateError,
    certify,
    load_certificate,
    save_certificate,
)
from .check import check_federation, topological_order
from .cycles import CycleDiagnosis, diagnose_cycle
from .errors import FederationCheckError, FederationError
from .machine import FederatedMachine, FederatedState
from .model import Federation, FederationSpec, Morphism, Resolver
from .plan import CoordinationPlan, minimal_coordination_plan
from .report import CheckResult, Counterexample, FederationReport, RegistryResult, TraceStep

if TYPE_CHECKING:  # pragma: no cover
    from .nats_link import NatsProjectionLink
    from .replicas import (
        FederatedReplica,
        LocalProjectionBus,
        Projection,
        ProjectionError,
        ProjectionStats,
    )

__all__ = [
    "Certificate",
    "CertificateError",
    "CheckResult",
    "CoordinationPlan",
    "Counterexample",
    "CycleDiagnosis",
    "FederatedMachine",
    "FederatedReplica",
    "FederatedState",
    "Federation",
    "FederationCheckError",
    "FederationError",
    "FederationReport",
    "FederationSpec",
    "LocalProjectionBus",
    "Morphism",
    "NatsProjectionLink",
    "Projection",
    "ProjectionError",
    "ProjectionStats",
    "RegistryResult",
    "Resolver",
    "TraceStep",
    "certify",
    "check_federation",
    "diagnose_cycle",
    "load_certificate",
    "minimal_coordination_plan",
    "save_certificate",
    "topological_order",
]

_LAZY = {
    "FederatedReplica": ".replicas",       # imports the replica runtime
    "LocalProjectionBus": ".replicas",
    "Projection": ".replicas",
    "ProjectionError": ".replicas",
    "ProjectionStats": ".replicas",
    "NatsProjectionLink": ".nats_link",    # needs nats-py
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'convergent.federation' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(mod, __name__), name)
