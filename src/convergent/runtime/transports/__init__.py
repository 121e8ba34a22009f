"""Transports: the in-process simulated network (``SimNetwork``) and NATS
JetStream (``NatsTransport``, needs ``nats-py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Transport
from .sim import SimNetwork, SimTransport

if TYPE_CHECKING:  # pragma: no cover
    from .nats import NatsTransport

__all__ = ["NatsTransport", "SimNetwork", "SimTransport", "Transport"]


def __getattr__(name: str) -> Any:
    if name == "NatsTransport":  # imported on use: it needs nats-py
        from .nats import NatsTransport
        return NatsTransport
    raise AttributeError(name)
