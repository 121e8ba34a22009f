"""Bounded binary writer and reader shared by signature payloads and the wire format.

Integers are fixed-width big-endian, byte strings and text are length-prefixed,
so one sequence of fields has exactly one encoding: what a signature covers is
unambiguous. The reader checks every length against what is left and raises
``WireError``, so a truncated or hostile frame cannot read past its end.
"""

from __future__ import annotations

import struct

from .errors import WireError

_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


class Writer:
    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(bytes((value,)))
        return self

    def i64(self, value: int) -> Writer:
        self._parts.append(_I64.pack(value))
        return self

    def u16(self, value: int) -> Writer:
        self._parts.append(_U16.pack(value))
        return self

    def blob(self, value: bytes) -> Writer:
        self._parts.append(_U32.pack(len(value)))
        self._parts.append(value)
        return self

    def text(self, value: str) -> Writer:
        raw = value.encode()
        if len(raw) > 0xFFFF:
            raise WireError(f"text field of {len(raw)} bytes (expected <= 65535)")
        self._parts.append(_U16.pack(len(raw)))
        self._parts.append(raw)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if n < 0 or end > len(self._data):
            raise WireError(f"truncated message: wanted {n} bytes at offset {self._pos}, "
                            f"have {len(self._data) - self._pos}")
        chunk = self._data[self._pos:end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def u16(self) -> int:
        return _U16.unpack(self._take(2))[0]

    def blob(self, limit: int) -> bytes:
        (n,) = _U32.unpack(self._take(4))
        if n > limit:
            raise WireError(f"field of {n} bytes (expected <= {limit})")
        return self._take(n)

    def text(self) -> str:
        n = self.u16()
        try:
            return self._take(n).decode()
        except UnicodeDecodeError as exc:
            raise WireError(f"text field is not UTF-8: {exc}") from None

    def done(self) -> None:
        if self._pos != len(self._data):
            raise WireError(f"{len(self._data) - self._pos} trailing bytes after the message")
