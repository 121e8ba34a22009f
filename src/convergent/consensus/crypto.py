"""Ed25519 signing and verification, with the key objects and results cached.

Loading a public key and checking a signature cost microseconds each; a node
sees the same signed vote many times (directly, inside certificates, inside
proposal justifications), so the ``Verifier`` remembers which
``(key, payload, signature)`` triples it has already checked. Ed25519 is
deterministic, so the memo never changes an answer.

A ``Verifier`` may be shared by the event loop and worker threads (the runtime
checks incoming signatures in a thread, then the core finds the answers in the
memo): the caches are updated under a lock; the check itself runs outside it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .errors import ConfigError

__all__ = ["KeyPair", "Verifier", "digest"]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def digest(data: bytes) -> bytes:
    """The 32-byte SHA-256 digest that votes and certificates refer to."""
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class KeyPair:
    """A validator's identity and ed25519 private key.

    ``from_seed`` derives the key from a seed so that simulations and demos are
    reproducible; real deployments use ``generate``.
    """

    node_id: str
    private: Ed25519PrivateKey = field(repr=False)
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        object.__setattr__(self, "public_key", raw)

    @classmethod
    def generate(cls, node_id: str) -> KeyPair:
        return cls(node_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, node_id: str, seed: bytes | str | int) -> KeyPair:
        if isinstance(seed, int):
            seed = str(seed)
        if isinstance(seed, str):
            seed = seed.encode()
        material = hashlib.sha256(b"convergent-consensus-key|" + node_id.encode() + b"|" + seed)
        return cls(node_id, Ed25519PrivateKey.from_private_bytes(material.digest()))

    def private_bytes(self) -> bytes:
        """The 32 raw private bytes (the demo hands them to child processes)."""
        return self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption())

    @classmethod
    def from_private_bytes(cls, node_id: str, raw: bytes) -> KeyPair:
        if len(raw) != 32:
            raise ConfigError(f"private key of {node_id!r} has {len(raw)} bytes (expected 32)")
        return cls(node_id, Ed25519PrivateKey.from_private_bytes(raw))

    def sign(self, payload: bytes) -> bytes:
        return self.private.sign(payload)


class Verifier:
    """Checks ed25519 signatures, caching key objects and (bounded) results."""

    def __init__(self, memo_size: int = 1 << 16) -> None:
        self._keys: dict[bytes, Ed25519PublicKey | None] = {}
        self._memo: dict[tuple[bytes, bytes, bytes], bool] = {}
        self._memo_size = memo_size
        self._lock = threading.Lock()
        self._bundles: set[tuple[object, ...]] = set()
        self.checks = 0
        """Signatures really checked (memo misses): what the benchmark reports."""

    def _key(self, public_key: bytes) -> Ed25519PublicKey | None:
        key = self._keys.get(public_key, False)
        if key is False:
            try:
                key = Ed25519PublicKey.from_public_bytes(public_key)
            except ValueError:
                key = None
            with self._lock:
                if len(self._keys) >= 4096:
                    self._keys.clear()
                self._keys[public_key] = key
        return key  # type: ignore[return-value]

    def verify(self, public_key: bytes, payload: bytes, signature: bytes) -> bool:
        if len(signature) != SIGNATURE_SIZE or len(public_key) != PUBLIC_KEY_SIZE:
            return False
        memo_key = (public_key, payload, signature)
        known = self._memo.get(memo_key)
        if known is not None:
            return known
        key = self._key(public_key)
        ok = False
        if key is not None:
            try:
                key.verify(signature, payload)
                ok = True
            except InvalidSignature:
                ok = False
        with self._lock:
            if key is not None:
                self.checks += 1
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            self._memo[memo_key] = ok
        return ok

    def bundle_known(self, key: tuple[object, ...]) -> bool:
        """True if a bundle of signatures (a certificate) under ``key`` was found valid.

        ``key`` must name everything the check depended on (the core uses chain id, the
        validator keys and the certificate's digest): like the signature memo, it changes
        the cost of a repeated check, never its answer.
        """
        return key in self._bundles

    def remember_bundle(self, key: tuple[object, ...]) -> None:
        with self._lock:
            if len(self._bundles) >= 4096:
                self._bundles.clear()
            self._bundles.add(key)

    def known(self, public_key: bytes, payload: bytes, signature: bytes) -> bool | None:
        """The memoized answer for this triple, or None if it was never checked."""
        return self._memo.get((public_key, payload, signature))
