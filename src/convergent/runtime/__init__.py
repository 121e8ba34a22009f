"""Replicas of a verified machine: many copies of an entity receive the same
events late, twice, in different orders, and still agree, with no leader
and no locks.

A ``Replica`` takes a built ``Machine``, a ``Store`` (memory, SQLite,
PostgreSQL) and optionally a ``Transport`` (the simulated network, NATS).
See docs/replicas.md for the delivery model and its proof.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .envelope import Envelope, Envelopes, Limits, decode_batch, encode_batch
from .errors import (
    BackpressureError,
    PolicyMismatchError,
    ProtocolError,
    ReplicaError,
    StoreError,
    TransportError,
)
from .hlc import HybridClock
from .model import Change, Explanation, Repair, ReplicaStats, Snapshot, Step, SyncReport
from .replica import Replica
from .stores import MemoryStore, SQLiteStore, Store, open_store
from .transports import SimNetwork, SimTransport, Transport

if TYPE_CHECKING:  # pragma: no cover
    from .service import ReplicaService
    from .signing import Keyring, SignatureError
    from .stores.postgres import PostgresStore
    from .transports.nats import NatsTransport

__all__ = [
    "BackpressureError",
    "Change",
    "Envelope",
    "Envelopes",
    "Explanation",
    "HybridClock",
    "Keyring",
    "Limits",
    "MemoryStore",
    "NatsTransport",
    "PolicyMismatchError",
    "PostgresStore",
    "ProtocolError",
    "Repair",
    "Replica",
    "ReplicaError",
    "ReplicaService",
    "ReplicaStats",
    "SQLiteStore",
    "SignatureError",
    "SimNetwork",
    "SimTransport",
    "Snapshot",
    "Step",
    "Store",
    "StoreError",
    "SyncReport",
    "Transport",
    "TransportError",
    "decode_batch",
    "encode_batch",
    "open_store",
]

_LAZY = {
    "Keyring": ".signing",                 # needs cryptography
    "SignatureError": ".signing",
    "NatsTransport": ".transports.nats",   # needs nats-py
    "PostgresStore": ".stores.postgres",   # needs psycopg
    "ReplicaService": ".service",          # needs nats-py
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'convergent.runtime' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(mod, __name__), name)
