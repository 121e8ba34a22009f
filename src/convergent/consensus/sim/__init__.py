"""Deterministic simulation: virtual clock, seeded network, byzantine strategies."""

from .network import NetworkConfig, NetworkModel, Partition
from .scheduler import Scheduler
from .simulator import SIM_SPEC, Crash, ProviderFaults, SimConfig, SimResult, Simulation, simulate

__all__ = [
    "SIM_SPEC",
    "Crash",
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
