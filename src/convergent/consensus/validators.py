"""Who may vote, with what weight, in which epoch.

Only members of the set for a message's epoch are counted: a vote signed by any
other key is dropped before it is even verified, which is what stops a Sybil
from finalizing. Thresholds are by weight: a quorum is more than two thirds of
the total, so two quorums always share more than a third, which contains at
least one honest validator as long as the byzantine weight stays below a third.
With n equal weights and n = 3f + 1 that is the familiar 2f + 1 out of 3f + 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .crypto import PUBLIC_KEY_SIZE
from .errors import ConfigError

__all__ = ["EpochSchedule", "Validator", "ValidatorSet"]

NodeId = str


@dataclass(frozen=True)
class Validator:
    """One member: its id, its ed25519 public key (32 raw bytes), its stake."""

    node_id: NodeId
    public_key: bytes
    weight: int = 1


@dataclass(frozen=True)
class ValidatorSet:
    """The members of one epoch, sorted by id."""

    epoch: int
    validators: tuple[Validator, ...]
    total: int = field(init=False)
    _by_id: Mapping[NodeId, Validator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        vals = tuple(sorted(self.validators, key=lambda v: v.node_id))
        problems = []
        if self.epoch < 0:
            problems.append(f"epoch={self.epoch!r} (expected >= 0)")
        if not vals:
            problems.append("a validator set needs at least one member")
        ids = [v.node_id for v in vals]
        keys = [v.public_key for v in vals]
        if len(set(ids)) != len(ids):
            problems.append(f"duplicate validator ids in {ids!r}")
        if len(set(keys)) != len(keys):
            problems.append("two validators share a public key")
        for v in vals:
            if not isinstance(v.weight, int) or v.weight <= 0:
                problems.append(f"weight of {v.node_id!r}={v.weight!r} (expected int > 0)")
            if len(v.public_key) != PUBLIC_KEY_SIZE:
                problems.append(
                    f"public key of {v.node_id!r} has {len(v.public_key)} bytes (expected 32)")
            if not v.node_id or len(v.node_id.encode()) > 255:
                problems.append(f"node id {v.node_id!r} (expected 1..255 bytes)")
        if problems:
            raise ConfigError("invalid validator set:\n  " + "\n  ".join(problems))
        object.__setattr__(self, "validators", vals)
        object.__setattr__(self, "total", sum(v.weight for v in vals))
        object.__setattr__(self, "_by_id", MappingProxyType({v.node_id: v for v in vals}))

    @classmethod
    def of(cls, epoch: int, members: Iterable[tuple[NodeId, bytes]] | Iterable[Validator],
           ) -> ValidatorSet:
        vals = [m if isinstance(m, Validator) else Validator(m[0], m[1]) for m in members]
        return cls(epoch, tuple(vals))

    def __len__(self) -> int:
        return len(self.validators)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    @property
    def ids(self) -> tuple[NodeId, ...]:
        return tuple(v.node_id for v in self.validators)

    def get(self, node_id: NodeId) -> Validator | None:
        return self._by_id.get(node_id)

    def weight(self, node_ids: Iterable[NodeId]) -> int:
        """Total weight of the distinct members among ``node_ids`` (others count 0)."""
        seen = set(node_ids)
        return sum(v.weight for i, v in self._by_id.items() if i in seen)

    @property
    def quorum_weight(self) -> int:
        """The smallest weight that is more than two thirds of the total."""
        return (2 * self.total) // 3 + 1

    def is_quorum(self, weight: int) -> bool:
        return 3 * weight > 2 * self.total

    def exceeds_faulty(self, weight: int) -> bool:
        """More than a third: at least one honest member is among them."""
        return 3 * weight > self.total

    @property
    def max_faulty_weight(self) -> int:
        """The largest byzantine weight the protocol tolerates (below a third)."""
        return (self.total - 1) // 3


@dataclass(frozen=True)
class EpochSchedule:
    """Maps a height to its epoch and the epoch to its validator set.

    Epoch ``e`` covers heights ``[e * epoch_length, (e + 1) * epoch_length)``;
    it uses the set declared for the largest declared epoch ``<= e``. Every
    honest node must hold the same schedule, as it holds the same genesis.
    """

    sets: Mapping[int, ValidatorSet]
    epoch_length: int = 1 << 62

    def __post_init__(self) -> None:
        if not self.sets:
            raise ConfigError("an epoch schedule needs at least one validator set")
        if 0 not in self.sets:
            raise ConfigError("an epoch schedule needs a set for epoch 0")
        for e, s in self.sets.items():
            if s.epoch != e:
                raise ConfigError(f"validator set declared for epoch {e} says epoch {s.epoch}")
        if self.epoch_length <= 0:
            raise ConfigError(f"epoch_length={self.epoch_length!r} (expected > 0)")
        object.__setattr__(self, "sets", MappingProxyType(dict(self.sets)))
        object.__setattr__(self, "_epochs", tuple(sorted(self.sets)))

    @classmethod
    def single(cls, validators: ValidatorSet) -> EpochSchedule:
        if validators.epoch != 0:
            raise ConfigError("EpochSchedule.single needs the epoch-0 set")
        return cls({0: validators})

    def epoch_of(self, height: int) -> int:
        return height // self.epoch_length

    def validators_for_epoch(self, epoch: int) -> ValidatorSet:
        best = 0
        for e in self._epochs:  # type: ignore[attr-defined]
            if e <= epoch:
                best = e
        return self.sets[best]

    def validators_at(self, height: int) -> ValidatorSet:
        return self.validators_for_epoch(self.epoch_of(height))
