"""Deterministic simulation: virtual clock, seeded network, byzantine strategies."""

from .network import NetworkConfig, NetworkModel, Partition
from .scheduler import Scheduler
from .simulator import SIM_SPEC, ProviderFaults, SimConfig, SimResult, Simulation, simulate

__all__ = [
    "SIM_SPEC",
    "NetworkConfig",
    "NetworkModel",
    "Partition",
    "ProviderFaults",
    "Scheduler",
    "SimConfig",
    "SimResult",
    "Simulation",
    "simulate",
]
