"""Collection envelopes on the wire, signed: only a configured replica's
batch is opened, any changed byte is refused, and nothing of a refused
batch is applied."""

from __future__ import annotations

import json

import pytest

from convergent.runtime.collection import (
    CollectionReplica,
    open_envelopes,
    seal_envelopes,
)
from convergent.runtime.errors import ProtocolError
from convergent.runtime.signing import Keyring, SignatureError

from .test_collection_replica import accounts, owner_of


def _pair() -> tuple[CollectionReplica, CollectionReplica, Keyring, Keyring]:
    cm = accounts(capacity=3, frozen=1)
    ids = ["a", "b"]
    a = CollectionReplica(cm, "a", replicas=ids, owner=owner_of(ids))
    b = CollectionReplica(cm, "b", replicas=ids, owner=owner_of(ids))
    ka, kb = Keyring.generate("a"), Keyring.generate("b")
    ka = ka.with_peers({"b": kb.public_key})
    kb = kb.with_peers({"a": ka.public_key})
    return a, b, ka, kb


def test_a_signed_batch_round_trips_and_applies() -> None:
    a, b, ka, kb = _pair()
    sent = [a.emit("k0", "approve").envelope, a.emit("k0", "grant").envelope,
            a.transfer("capacity", "b", 1)]
    data = seal_envelopes(sent, ka)
    signer, got = open_envelopes(data, kb)
    assert signer == "a" and got == sent
    assert b.receive_sealed(data, kb) == 3 and b.state == a.state
    # b forwards a's envelopes to a third party under its own signature
    fwd = seal_envelopes(b.missing_for({}), kb)
    assert open_envelopes(fwd, ka)[1] == sent


def test_anything_not_signed_by_a_known_replica_changes_nothing() -> None:
    a, b, ka, kb = _pair()
    data = seal_envelopes([a.emit("k0", "approve").envelope], ka)
    stranger = Keyring.generate("a")          # claims to be a, another key
    forged = seal_envelopes([a.emit("k0", "grant").envelope], stranger)
    outsider = Keyring.generate("zed").with_peers({"b": kb.public_key})
    kb_knows_zed = kb.with_peers({"zed": outsider.public_key})
    cases = [
        (data[:-1] + bytes([data[-1] ^ 1]), kb, SignatureError),      # one bit changed
        (data[:20], kb, SignatureError),                                # truncated
        (data[0:4] + b"\x00" + data[5:], kb, SignatureError),           # signer field
        (forged, kb, SignatureError),                                   # wrong key
        (json.dumps([1]).encode(), kb, SignatureError),                 # unsigned
        (seal_envelopes([], outsider), kb_knows_zed, SignatureError),   # not a replica
        (ka.seal(b'{"format": "other", "envelopes": []}'), kb, ProtocolError),
        (ka.seal(b"[" * 100_000 + b"]" * 100_000), kb, ProtocolError),  # a nesting bomb
    ]
    for raw, keyring, error in cases:
        with pytest.raises(error):
            b.receive_sealed(raw, keyring)
    assert b.log == () and b.version == {"a": 0, "b": 0} and b.pending == ()
