"""Federation: registries owned by different services, verified together.

Each registry is verified on its own by the core engine; a *morphism* makes
one registry authoritative over some vars of another (its *shared* vars),
through a map from the source's state; a *resolver* merges several sources of
the same vars. ``check`` runs the checks of the corrected model (M1, R1, R2,
acyclicity, C1, C2, and XU when asked), each on the registries' own tables,
never on their product. docs/federation.md says what passing guarantees.
"""

from __future__ import annotations

from .check import check_federation, topological_order
from .cycles import CycleDiagnosis, diagnose_cycle
from .errors import FederationCheckError, FederationError
from .machine import FederatedMachine, FederatedState
from .model import Federation, FederationSpec, Morphism, Resolver
from .plan import CoordinationPlan, minimal_coordination_plan
from .report import CheckResult, Counterexample, FederationReport, RegistryResult, TraceStep

__all__ = [
    "CheckResult",
    "CoordinationPlan",
    "Counterexample",
    "CycleDiagnosis",
    "FederatedMachine",
    "FederatedState",
    "Federation",
    "FederationCheckError",
    "FederationError",
    "FederationReport",
    "FederationSpec",
    "Morphism",
    "RegistryResult",
    "Resolver",
    "TraceStep",
    "check_federation",
    "diagnose_cycle",
    "minimal_coordination_plan",
    "topological_order",
]
