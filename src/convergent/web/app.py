"""The inspector's ASGI app: one static page and the JSON API behind it.

::

    GET /                                   the page (static HTML, no data in it)
    GET /static/app.js, /static/app.css
    GET /api/specs                          every machine: id, source, verdict
    GET /api/replicas                       live replicas from their status files
    GET /api/specs/{id}/report              the report (as check --json) + vars
    GET /api/specs/{id}/counterexamples     replayable counterexamples
    GET /api/specs/{id}/states?q=&page=&size=   reachable states, paged
    GET /api/specs/{id}/states/{state}      one state: values, enabled events,
                                            successors with repairs, path, predecessors
    GET /api/specs/{id}/diagram.{svg,dot,mermaid}
    GET /api/specs/{id}/states/{state}/diagram.{svg,dot,mermaid}
                                            the state and its neighbours

Every endpoint only reads. Errors are JSON ``{"error": message}`` with 400
(bad query), 404 (unknown machine or route) or 409 (no reachable graph), and
501 when a diagram needs graphviz and it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import MachineUsageError
from ..viz.errors import GraphvizError
from .explorer import NoReachableGraph, QueryError
from .inspection import Inspection
from .replicas import ReplicaBoard
from .security import IMAGE_CSP, SecurityMiddleware

__all__ = ["LOOPBACK_HOSTS", "create_app"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_DIAGRAM_TYPES = {"svg": "image/svg+xml", "dot": "text/plain; charset=utf-8",
                  "mermaid": "text/plain; charset=utf-8"}


def _asset(name: str) -> bytes:
    return resources.files("convergent.web").joinpath("static", name).read_bytes()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 12 or not raw.lstrip("-").isdigit():
        raise QueryError(f"{name}={raw[:20]!r} (expected an integer)")
    return int(raw)


def create_app(inspections: Sequence[Inspection], *,
               allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
               replica_status: Sequence[str] = ()) -> Any:
    """The ASGI app serving ``inspections`` (read-only); ``replica_status``:
    status files of running replicas, shown live (``replicas.py``)."""
    board = ReplicaBoard(replica_status)
    pages = {"index": _asset("index.html")}
    static = {name: _asset(name) for name in _STATIC}
    by_id = {i.index: i for i in inspections}

    def spec_of(request: Request) -> Inspection:
        got = by_id.get(request.path_params["spec"])
        if got is None:
            raise HTTPException(404, "no such machine")
        return got

    def index(request: Request) -> Response:
        return Response(pages["index"], media_type="text/html; charset=utf-8")

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            raise HTTPException(404, "no such file")
        return Response(static[name], media_type=_STATIC[name])

    def specs(request: Request) -> JSONResponse:
        return JSONResponse([i.summary() for i in inspections])

    def replicas(request: Request) -> JSONResponse:
        return JSONResponse({"enabled": bool(board.paths), **board.snapshot()})

    def report(request: Request) -> JSONResponse:
        return JSONResponse(spec_of(request).report_view())

    def cexs(request: Request) -> JSONResponse:
        return JSONResponse(spec_of(request).counterexamples())

    def states(request: Request) -> JSONResponse:
        insp = spec_of(request)
        query = request.query_params.get("q", "")
        page = _int_param(request, "page", 0)
        size = _int_param(request, "size", 50)
        return JSONResponse(insp.states(query, page, size))

    def state(request: Request) -> JSONResponse:
        return JSONResponse(spec_of(request).state(request.path_params["state"]))

    def diagram(request: Request) -> Response:
        insp = spec_of(request)
        fmt = request.path_params["fmt"]
        if fmt not in _DIAGRAM_TYPES:
            raise HTTPException(404, "no such diagram format")
        data = insp.diagram(fmt)
        headers = {"content-security-policy": IMAGE_CSP} if fmt == "svg" else {}
        return Response(data, media_type=_DIAGRAM_TYPES[fmt], headers=headers)

    def state_diagram(request: Request) -> Response:
        insp = spec_of(request)
        fmt = request.path_params["fmt"]
        if fmt not in _DIAGRAM_TYPES:
            raise HTTPException(404, "no such diagram format")
        data = insp.state_diagram(request.path_params["state"], fmt)
        headers = {"content-security-policy": IMAGE_CSP} if fmt == "svg" else {}
        return Response(data, media_type=_DIAGRAM_TYPES[fmt], headers=headers)

    async def on_query_error(request: Request, exc: Exception) -> Response:
        return _error(409 if isinstance(exc, NoReachableGraph) else 400, str(exc))

    async def on_graphviz(request: Request, exc: Exception) -> Response:
        return _error(501, str(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/static/{name:str}", asset, methods=["GET"]),
        Route("/api/specs", specs, methods=["GET"]),
        Route("/api/replicas", replicas, methods=["GET"]),
        Route("/api/specs/{spec:int}/report", report, methods=["GET"]),
        Route("/api/specs/{spec:int}/counterexamples", cexs, methods=["GET"]),
        Route("/api/specs/{spec:int}/states", states, methods=["GET"]),
        Route("/api/specs/{spec:int}/states/{state:int}", state, methods=["GET"]),
        Route("/api/specs/{spec:int}/diagram.{fmt:str}", diagram, methods=["GET"]),
        Route("/api/specs/{spec:int}/states/{state:int}/diagram.{fmt:str}", state_diagram,
              methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        QueryError: on_query_error, MachineUsageError: on_query_error,
        GraphvizError: on_graphviz, HTTPException: on_http})
    return SecurityMiddleware(app, allowed_hosts)
