"""Full binary encoding of messages for real networks (``net.py``).

``decode`` is strict: unknown tags, bad sizes, trailing bytes and counts above
the limits raise ``WireError`` (a ``ValueError``); the node that receives such
a frame drops it. Decoding checks shape only; signatures, membership and
certificates are checked by the core, which trusts nothing that decodes.
"""

from __future__ import annotations

from ._codec import Reader, Writer
from .errors import WireError
from .messages import (
    Aggregate,
    Certificate,
    Confirmation,
    Kind,
    Liveness,
    LockProof,
    Message,
    Proposal,
    Vote,
)

__all__ = ["MAX_VALUE_BYTES", "decode", "encode"]

VERSION = 2
"""2: liveness headers carry the signed ``lock_digest``."""
MAX_VALUE_BYTES = 1 << 20
MAX_SIGNATURES = 4096
_DIGEST = 32
_SIG = 64


def _cert_out(w: Writer, c: Certificate) -> None:
    w.u8(c.kind).i64(c.epoch).i64(c.height).i64(c.view).blob(c.digest).u16(len(c.signatures))
    for signer, sig in c.signatures:
        w.text(signer).blob(sig)


def _cert_in(r: Reader) -> Certificate:
    kind = _kind(r.u8())
    if kind not in (Kind.PREVOTE, Kind.PRECOMMIT):
        raise WireError(f"certificate of kind {kind.name} (expected PREVOTE or PRECOMMIT)")
    epoch, height, view = r.i64(), r.i64(), r.i64()
    dig = r.blob(_DIGEST)
    count = r.u16()
    if count > MAX_SIGNATURES:
        raise WireError(f"certificate with {count} signatures (expected <= {MAX_SIGNATURES})")
    sigs = tuple((r.text(), r.blob(_SIG)) for _ in range(count))
    return Certificate(kind, epoch, height, view, dig, sigs)


def _kind(tag: int) -> Kind:
    try:
        return Kind(tag)
    except ValueError:
        raise WireError(f"unknown message kind {tag}") from None


def _liveness_out(w: Writer, m: Liveness, with_lock: bool) -> None:
    w.i64(m.epoch).i64(m.height).i64(m.view).i64(m.lock_view).blob(m.lock_digest)
    w.text(m.signer).blob(m.signature)
    if with_lock:
        if m.lock is None:
            w.u8(0)
        else:
            w.u8(1).blob(m.lock.value)
            _cert_out(w, m.lock.certificate)


def _liveness_in(r: Reader, with_lock: bool) -> Liveness:
    epoch, height, view, lock_view = r.i64(), r.i64(), r.i64(), r.i64()
    lock_digest = r.blob(_DIGEST)
    signer, sig = r.text(), r.blob(_SIG)
    lock = None
    if with_lock and r.u8():
        value = r.blob(MAX_VALUE_BYTES)
        lock = LockProof(value, _cert_in(r))
    return Liveness(epoch, height, view, lock_view, signer, sig, lock, lock_digest)


def encode(message: Message) -> bytes:
    """The bytes of ``message`` (version byte, kind byte, fields)."""
    w = Writer().u8(VERSION)
    if isinstance(message, Vote):
        w.u8(message.kind).i64(message.epoch).i64(message.height).i64(message.view)
        w.blob(message.digest).text(message.signer).blob(message.signature)
    elif isinstance(message, Liveness):
        w.u8(Kind.LIVENESS)
        _liveness_out(w, message, True)
    elif isinstance(message, Proposal):
        w.u8(Kind.PROPOSAL).i64(message.epoch).i64(message.height).i64(message.view)
        w.blob(message.value).blob(message.digest).text(message.signer).blob(message.signature)
        w.u16(len(message.justification))
        for header in message.justification:
            _liveness_out(w, header, False)
        if message.lock_certificate is None:
            w.u8(0)
        else:
            w.u8(1)
            _cert_out(w, message.lock_certificate)
    elif isinstance(message, Aggregate):
        w.u8(Kind.AGGREGATE).i64(message.epoch).i64(message.height).i64(message.view)
        _cert_out(w, message.certificate)
        w.text(message.signer).blob(message.signature).blob(message.value)
    elif isinstance(message, Confirmation):
        w.u8(Kind.CONFIRMATION).i64(message.epoch).i64(message.height)
        w.blob(message.digest).blob(message.result).text(message.signer).blob(message.signature)
        w.blob(message.value)
        if message.commit is None:
            w.u8(0)
        else:
            w.u8(1)
            _cert_out(w, message.commit)
    else:
        raise WireError(f"cannot encode {type(message).__name__}")
    return w.getvalue()


def decode(data: bytes) -> Message:
    """The message in ``data``; ``WireError`` if it is not exactly one well-formed message."""
    r = Reader(data)
    version = r.u8()
    if version != VERSION:
        raise WireError(f"wire version {version} (expected {VERSION})")
    kind = _kind(r.u8())
    msg: Message
    if kind in (Kind.PREVOTE, Kind.PRECOMMIT):
        epoch, height, view = r.i64(), r.i64(), r.i64()
        msg = Vote(kind, epoch, height, view, r.blob(_DIGEST), r.text(), r.blob(_SIG))
    elif kind is Kind.LIVENESS:
        msg = _liveness_in(r, True)
    elif kind is Kind.PROPOSAL:
        epoch, height, view = r.i64(), r.i64(), r.i64()
        value, dig = r.blob(MAX_VALUE_BYTES), r.blob(_DIGEST)
        signer, sig = r.text(), r.blob(_SIG)
        count = r.u16()
        if count > MAX_SIGNATURES:
            raise WireError(f"justification of {count} headers (expected <= {MAX_SIGNATURES})")
        just = tuple(_liveness_in(r, False) for _ in range(count))
        cert = _cert_in(r) if r.u8() else None
        msg = Proposal(epoch, height, view, value, dig, signer, sig, just, cert)
    elif kind is Kind.AGGREGATE:
        epoch, height, view = r.i64(), r.i64(), r.i64()
        certificate = _cert_in(r)
        signer, sig = r.text(), r.blob(_SIG)
        msg = Aggregate(epoch, height, view, certificate, signer, sig, r.blob(MAX_VALUE_BYTES))
    else:
        epoch, height = r.i64(), r.i64()
        dig, result = r.blob(_DIGEST), r.blob(256)
        signer, sig = r.text(), r.blob(_SIG)
        value = r.blob(MAX_VALUE_BYTES)
        commit = _cert_in(r) if r.u8() else None
        msg = Confirmation(epoch, height, dig, result, signer, sig, value, commit)
    r.done()
    return msg
