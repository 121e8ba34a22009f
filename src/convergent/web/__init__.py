"""The web inspector: ``convergent serve SPEC...``.

A small read-only ASGI app (Starlette, served by uvicorn) over the same
values the CLI prints: the ``Report``, counterexamples replayed step by step
(``playback``), the reachable states (``explorer``) and diagrams
(``convergent.viz``). Needs the ``web`` extra (starlette, uvicorn).
"""

from __future__ import annotations

from .app import create_app
from .explorer import Explorer, NoReachableGraph, QueryError
from .inspection import Inspection, inspect_spec
from .playback import counterexamples

__all__ = ["Explorer", "Inspection", "NoReachableGraph", "QueryError", "counterexamples",
           "create_app", "inspect_spec"]
