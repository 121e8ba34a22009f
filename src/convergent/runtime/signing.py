"""Ed25519 signatures on what replicas send each other.

A replica holds its own private key and the public keys of its peers (a
``Keyring``, loaded from a JSON key file). Every wire message it sends (an
event batch, an anti-entropy request or answer, a snapshot offer) is
*sealed*: signed whole, once, so signing costs one signature per batch, not
per event. A receiving replica opens a sealed message only when its signer
is a configured peer and the signature holds; anything else is refused
before it is decoded.

Sealed form (bytes)::

    b"CVS1" | len(signer) (1 byte) | signer (ASCII) | signature (64 bytes) | body

The signature covers ``b"convergent-signed/1\\0" + signer + b"\\0" + body``.

Key file (JSON; keep it private, it holds this replica's private key)::

    {"format": "convergent-keys/1", "replica": "r1",
     "private_key": "<base64 of the 32-byte seed>",
     "peers": {"r1": "<base64 public key>", "r2": "...", "r3": "..."}}

``convergent replica keygen --id r1`` writes one, and prints the public key
to add to the other replicas' files.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .envelope import valid_replica_id
from .errors import ProtocolError, ReplicaError

__all__ = ["KEYS_FORMAT", "Keyring", "SignatureError", "is_sealed"]

KEYS_FORMAT = "convergent-keys/1"
_MAGIC = b"CVS1"
_DOMAIN = b"convergent-signed/1\0"
_SIG = 64


class SignatureError(ProtocolError):
    """A message is unsigned, signed by a replica that is not a configured
    peer, or its signature does not verify."""


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` looks like a sealed message (not that it verifies)."""
    return data[:4] == _MAGIC


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ReplicaError(f"key file: {what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ReplicaError(f"key file: {what} is not base64") from None


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Keyring:
    """This replica's signing key and the public keys it accepts.

    ``peers`` maps replica ids to public keys; it includes this replica's own
    (so a keyring is also what peers need to know about it). Only messages
    signed by one of these keys are opened."""

    replica: str
    private_key: Ed25519PrivateKey = field(repr=False)
    peers: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    _prefix: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        if not valid_replica_id(self.replica):
            raise ReplicaError(f"Keyring: replica={self.replica!r} is not a replica id")
        for p in self.peers:
            if not valid_replica_id(p):
                raise ReplicaError(f"Keyring: peer {p!r} is not a replica id")
        own = public_bytes(self.private_key.public_key())
        mine = self.peers.get(self.replica)
        if mine is not None and public_bytes(mine) != own:
            raise ReplicaError(f"Keyring: the public key listed for {self.replica!r} is not "
                               "the one of its private key")
        object.__setattr__(self, "peers", {**self.peers,
                                           self.replica: self.private_key.public_key()})
        object.__setattr__(self, "_prefix", bytes([len(self.replica)]) + self.replica.encode())

    # ------------------------------------------------------------ making and loading

    @classmethod
    def generate(cls, replica: str) -> Keyring:
        """A fresh key for ``replica`` (its peers' keys are added later)."""
        return cls(replica, Ed25519PrivateKey.generate())

    def with_peers(self, peers: Mapping[str, Ed25519PublicKey | str]) -> Keyring:
        """A copy that also accepts ``peers`` (public keys, or their base64)."""
        keys = dict(self.peers)
        for p, k in peers.items():
            keys[p] = (Ed25519PublicKey.from_public_bytes(_unb64(k, f"peers.{p}"))
                       if isinstance(k, str) else k)
        return Keyring(self.replica, self.private_key, keys)

    @property
    def public_key(self) -> str:
        """This replica's public key, base64 (what its peers list)."""
        return _b64(public_bytes(self.private_key.public_key()))

    def to_dict(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {"format": KEYS_FORMAT, "replica": self.replica, "private_key": _b64(seed),
                "peers": {p: _b64(public_bytes(k)) for p, k in sorted(self.peers.items())}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Keyring:
        if not isinstance(data, Mapping) or data.get("format") != KEYS_FORMAT:
            raise ReplicaError(f"key file: not a {KEYS_FORMAT} object")
        seed = _unb64(data.get("private_key"), "private_key")
        if len(seed) != 32:
            raise ReplicaError("key file: private_key is not a 32-byte ed25519 seed")
        peers = data.get("peers") or {}
        if not isinstance(peers, Mapping):
            raise ReplicaError("key file: peers is not an object")
        keys = {}
        for p, k in peers.items():
            raw = _unb64(k, f"peers.{p}")
            if len(raw) != 32:
                raise ReplicaError(f"key file: peers.{p} is not a 32-byte ed25519 public key")
            keys[p] = Ed25519PublicKey.from_public_bytes(raw)
        return cls(str(data.get("replica")), Ed25519PrivateKey.from_private_bytes(seed), keys)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a key file; raises ReplicaError when it is missing or malformed."""
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise ReplicaError(f"key file {os.fspath(path)}: {exc.strerror}") from None
        except ValueError as exc:
            raise ReplicaError(f"key file {os.fspath(path)} is not JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key file, readable by its owner only."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)
            fh.write("\n")

    # ------------------------------------------------------------ sealing

    def seal(self, body: bytes) -> bytes:
        """``body`` signed by this replica (one signature for the whole body)."""
        prefix = self._prefix
        sig = self.private_key.sign(_DOMAIN + prefix[1:] + b"\0" + body)
        return _MAGIC + prefix + sig + body

    def open(self, data: bytes) -> tuple[str, bytes]:
        """``(signer, body)`` of a sealed message; raises SignatureError when it
        is not sealed, its signer is not a configured peer, or the signature
        does not verify."""
        if data[:4] != _MAGIC or len(data) < 6:
            raise SignatureError("an unsigned message (every peer must sign: configure keys "
                                 "on all of them)")
        n = data[4]
        signer_raw = data[5:5 + n]
        sig = data[5 + n:5 + n + _SIG]
        if len(sig) != _SIG:
            raise SignatureError("a truncated signed message")
        try:
            signer = signer_raw.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("a signed message with a malformed signer") from None
        key = self.peers.get(signer)
        if key is None:
            raise SignatureError(f"a message signed by {signer[:64]!r}, which is not a "
                                 "configured peer")
        body = data[5 + n + _SIG:]
        try:
            key.verify(sig, _DOMAIN + signer_raw + b"\0" + body)
        except InvalidSignature:
            raise SignatureError(f"a message whose signature of {signer!r} does not "
                                 "verify") from None
        return signer, body
