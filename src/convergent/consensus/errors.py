"""Every exception the consensus package raises on purpose.

::

    ConvergentError
    +-- ConsensusError                       root of this package's errors
        +-- ConfigError (ValueError)         a machine spec, validator set or option is malformed
        +-- WireError (ValueError)           bytes from a peer do not decode to a message
        +-- SafetyViolation                  two certified, conflicting decisions were observed

Bad *messages* are not exceptions: a node drops them and counts the reason
(``ConsensusCore.stats.rejected``), because a byzantine peer must never be able
to make an honest node raise.
"""

from __future__ import annotations

from ..errors import ConvergentError

__all__ = ["ConfigError", "ConsensusError", "SafetyViolation", "WireError"]


class ConsensusError(ConvergentError):
    """Root of every error raised by ``convergent.consensus`` on purpose."""


class ConfigError(ConsensusError, ValueError):
    """A spec, validator set, schedule or option is malformed; the message names it."""


class WireError(ConsensusError, ValueError):
    """Bytes from a peer are not a well-formed message (truncated, oversize, unknown tag)."""


class SafetyViolation(ConsensusError):
    """Two conflicting decisions for one height were observed, each with a valid certificate.

    Under the protocol's assumption (byzantine weight < 1/3) this cannot happen;
    ``SimResult.check()`` raises it for a simulated run with too many byzantine nodes.
    """

    def __init__(self, message: str, *, height: int | None = None) -> None:
        self.height = height
        super().__init__(message)
