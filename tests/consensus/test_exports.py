"""The public surface of ``convergent.consensus`` is pinned: changing it is a decision."""

from __future__ import annotations

from convergent import consensus
from convergent.consensus import ConsensusError, sim
from convergent.errors import ConvergentError

PUBLIC = {
    "Aggregate", "ApplyLog", "FileApplyLog", "MemoryApplyLog", "RateLimit",
    "BytesCodec", "Certificate", "CertifiedValue", "Codec", "ConfigError", "Confirmation",
    "ConsensusCore", "ConsensusError", "ConsensusNode", "CoreConfig", "CoreStats", "Decision",
    "EpochSchedule", "Equivocation", "Event", "EvidenceFound", "EvidencePool", "FaultObserved",
    "FileSafetyStore", "Finalized", "JsonCodec", "KeyPair", "Kind", "LeaderProvider", "Listener", "Liveness",
    "LivenessProvider", "LocalNetwork", "LockProof", "MachineSpec", "MemorySafetyStore",
    "NoSync", "Notification",
    "Phase", "Proposal", "Providers", "RoundRobinLeaders", "SafetyState", "SafetyStore",
    "SafetyViolation", "SigningGuard", "StateConfig",
    "SyncProvider", "TcpTransport", "TraceLog", "TraceRecord", "Transition",
    "TransitionRecord", "Transport", "Validator", "ValidatorSet", "Verifier", "Vote",
    "VotingProvider", "WeightedLeaders", "WireError", "proposer_schedule", "to_dot",
    "to_mermaid", "to_table",
}
SIM = {"Crash", "NetworkConfig", "NetworkModel", "Partition", "ProviderFaults", "SIM_SPEC", "Scheduler",
       "SimConfig", "SimResult", "Simulation", "simulate"}


def test_public_names_are_pinned_and_importable():
    for module, expected in ((consensus, PUBLIC), (sim, SIM)):
        assert len(module.__all__) == len(set(module.__all__))
        assert set(module.__all__) == expected
        for name in module.__all__:
            assert hasattr(module, name), name


def test_one_exception_root():
    assert issubclass(ConsensusError, ConvergentError)
    for name in ("ConfigError", "WireError", "SafetyViolation"):
        assert issubclass(getattr(consensus, name), ConsensusError)
    assert issubclass(consensus.ConfigError, ValueError)
    assert issubclass(consensus.WireError, ValueError)
