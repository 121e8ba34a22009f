"""The application every simulated node runs: a tiny replicated log.

A value is ``b"tx:" + ...``; anything else is invalid (``decide_vote`` says
no). Applying a value chains a state root, ``root' = sha256(root + value)``,
which is the result a confirmation carries and peers compare; applying a
height twice (after a restart) returns the result of the first time. Calls
are plain functions: the simulator adds latency, failures and hangs around them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from ..effects import CertifiedValue, Decision
from ..leaders import proposer_schedule
from ..validators import ValidatorSet

__all__ = ["SimApp"]


class SimApp:
    def __init__(self, node_id: str,
                 archive: Callable[[str, int], Sequence[CertifiedValue]] | None = None) -> None:
        self.node_id = node_id
        self.root = b"\x00" * 32
        self.applied: list[bytes] = []
        self.results: dict[int, bytes] = {}
        self.boots = 0
        """Restarts so far (the simulator counts them)."""
        self._archive = archive

    @property
    def next_height(self) -> int:
        """The first height this application has not applied (where a restart resumes)."""
        return max(self.results, default=-1) + 1

    # LivenessProvider
    def collect(self, height: int, view: int) -> bytes:
        # After a restart the node's "mempool" differs, so would the value it proposes.
        boot = f"#{self.boots}" if self.boots else ""
        return f"{self.node_id}@{height}.{view}{boot}".encode()

    # LeaderProvider
    def next_leaders(self, height: int, validators: ValidatorSet) -> Sequence[str]:
        return proposer_schedule(height, validators)

    def prove_next_state(self, height: int, view: int, collected: Any, prior: Any) -> bytes:
        return b"tx:" + f"h{height}v{view}:".encode() + (collected or b"-")

    # VotingProvider
    def decide_vote(self, height: int, view: int, value: Any) -> bool:
        return isinstance(value, bytes) and value.startswith(b"tx:") and len(value) <= 4096

    def finalize_votes(self, decision: Decision[bytes]) -> bytes:
        done = self.results.get(decision.height)
        if done is not None:
            # Already applied (a restarted node finalizing a height again): same result.
            return done
        self._apply(decision.height, decision.raw)
        return self.root

    def _apply(self, height: int, value: bytes) -> None:
        self.root = hashlib.sha256(self.root + value).digest()
        self.applied.append(value)
        self.results[height] = self.root

    # SyncProvider
    def synchronize(self, height: int) -> Sequence[CertifiedValue]:
        if self._archive is None:
            return ()
        items = list(self._archive(self.node_id, height))
        for item in items:
            if item.height == len(self.applied):
                self._apply(item.height, item.value)
        return items
