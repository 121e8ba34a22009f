"""Headers and checks every inspector response goes through.

The inspector shows untrusted names to a browser, so it defends in depth:
the page inserts data as text only; a strict Content-Security-Policy allows
scripts, styles and requests from the inspector itself and nothing else (no
inline script, no eval, no framing); only GET and HEAD are served; and the
Host header must name the address the server was bound to, which stops a
web page elsewhere from reading the API through DNS rebinding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SecurityMiddleware", "host_of"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: for a served image: nothing inside it may run or load anything
IMAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def host_of(header: str) -> str:
    """The host part of a Host header (``[::1]:8765`` -> ``::1``), lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


class SecurityMiddleware:
    """Pure ASGI middleware: refuses other methods and foreign Host headers,
    adds the security headers (and a CSP unless the response set its own)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = host_of(headers.get(b"host", b"").decode("latin-1"))
        if "*" not in self.allowed and host not in self.allowed:
            await _plain(send, 400, b"invalid host header")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, b"the inspector is read-only", [(b"allow", b"GET, HEAD")])
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                hdrs = list(message.get("headers", []))
                names = {k.lower() for k, _ in hdrs}
                hdrs += [h for h in _HEADERS if h[0] not in names]
                if b"content-security-policy" not in names:
                    hdrs.append((b"content-security-policy", CSP.encode()))
                if b"cache-control" not in names:
                    hdrs.append((b"cache-control", b"no-store"))
                message = {**message, "headers": hdrs}
            await send(message)

        await self.app(scope, receive, send_secure)


async def _plain(send: Send, status: int, body: bytes,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers: list[Any] = [(b"content-type", b"text/plain; charset=utf-8"),
                          (b"content-length", str(len(body)).encode()),
                          (b"content-security-policy", CSP.encode()), *(extra or [])]
    headers += _HEADERS
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
