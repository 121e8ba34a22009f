"""The transport contract.

A transport carries one replica's committed local events to its peers and
hands the peers' envelopes to ``replica.receive``. Three methods::

    attach(replica)       called by the Replica constructor
    broadcast(envelopes)  committed local events to send; must not block or
                          raise for network trouble (queue and retry instead)
    detach(replica)       called by Replica.close

Delivery may be late, duplicated, reordered or lost: the replica's causal
buffer and dedup make that safe, and anti-entropy (a peer sends what
``replica.missing_for(version)`` returns for another's ``version``) repairs
what was lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import TransportError

if TYPE_CHECKING:  # pragma: no cover
    from ..envelope import Envelope
    from ..replica import Replica

__all__ = ["Transport"]


class Transport(ABC):
    """Carries envelopes between replicas (see the module docstring)."""

    replica: Replica | None = None

    def attach(self, replica: Replica) -> None:
        if self.replica is not None and self.replica is not replica:
            raise TransportError(f"{type(self).__name__} is already attached to replica "
                                 f"{self.replica.id!r}; use one transport per replica")
        self.replica = replica

    def detach(self, replica: Replica) -> None:
        if self.replica is replica:
            self.replica = None

    @abstractmethod
    def broadcast(self, envelopes: Sequence[Envelope]) -> None:
        """Send committed local events to every peer (asynchronously)."""
