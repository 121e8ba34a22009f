"""Round-based BFT consensus as a reusable state machine with pluggable providers.

Layers, from the inside out:

* ``MachineSpec`` - the phases, events, transition table and timeouts, as data;
* ``ConsensusCore`` - the pure protocol: one input in, effects out, safety rules inside;
* ``SigningGuard`` - the durable record of what this validator signed (restart safety);
* ``ApplyLog`` - the durable queue through which every finalized height is applied;
* ``ConsensusNode`` - the asyncio runtime: providers as tasks, timers, listeners;
* ``TcpTransport`` / ``LocalNetwork`` - real and in-process transports;
* ``convergent.consensus.sim`` - the deterministic simulator with byzantine strategies.

``cryptography`` (the ``consensus`` extra) provides ed25519.
"""

from .applies import ApplyLog, FileApplyLog, MemoryApplyLog
from .core import ConsensusCore, CoreConfig, CoreStats
from .crypto import KeyPair, Verifier
from .effects import (
    CertifiedValue,
    Decision,
    EvidenceFound,
    FaultObserved,
    Finalized,
    Notification,
    TransitionRecord,
)
from .errors import ConfigError, ConsensusError, SafetyViolation, WireError
from .evidence import Equivocation, EvidencePool
from .guard import FileSafetyStore, MemorySafetyStore, SafetyState, SafetyStore, SigningGuard
from .leaders import proposer_schedule
from .machine import Event, MachineSpec, Phase, StateConfig, Transition
from .ingress import RateLimit
from .messages import (
    Aggregate,
    Certificate,
    Confirmation,
    Kind,
    Liveness,
    LockProof,
    Proposal,
    Vote,
)
from .net import TcpTransport
from .providers import (
    BytesCodec,
    Codec,
    JsonCodec,
    LeaderProvider,
    LivenessProvider,
    NoSync,
    Providers,
    RoundRobinLeaders,
    SyncProvider,
    Transport,
    VotingProvider,
    WeightedLeaders,
)
from .render import to_dot, to_mermaid, to_table
from .runtime import ConsensusNode, Listener, LocalNetwork
from .trace import TraceLog, TraceRecord
from .validators import EpochSchedule, Validator, ValidatorSet

__all__ = [
    "Aggregate",
    "ApplyLog",
    "BytesCodec",
    "Certificate",
    "CertifiedValue",
    "Codec",
    "ConfigError",
    "Confirmation",
    "ConsensusCore",
    "ConsensusError",
    "ConsensusNode",
    "CoreConfig",
    "CoreStats",
    "Decision",
    "EpochSchedule",
    "Equivocation",
    "Event",
    "EvidenceFound",
    "EvidencePool",
    "FaultObserved",
    "FileApplyLog",
    "FileSafetyStore",
    "Finalized",
    "JsonCodec",
    "KeyPair",
    "Kind",
    "LeaderProvider",
    "Listener",
    "Liveness",
    "LivenessProvider",
    "LocalNetwork",
    "LockProof",
    "MachineSpec",
    "MemoryApplyLog",
    "MemorySafetyStore",
    "NoSync",
    "Notification",
    "Phase",
    "Proposal",
    "Providers",
    "RateLimit",
    "RoundRobinLeaders",
    "SafetyState",
    "SafetyStore",
    "SafetyViolation",
    "SigningGuard",
    "StateConfig",
    "SyncProvider",
    "TcpTransport",
    "TraceLog",
    "TraceRecord",
    "Transition",
    "TransitionRecord",
    "Transport",
    "Validator",
    "ValidatorSet",
    "Verifier",
    "Vote",
    "VotingProvider",
    "WeightedLeaders",
    "WireError",
    "proposer_schedule",
    "to_dot",
    "to_mermaid",
    "to_table",
]
