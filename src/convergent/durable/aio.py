"""``AsyncEntityService``: the service's operations, awaited.

Every call runs the synchronous ``EntityService`` method on a worker thread
of the facade's own executor, so database work (and the chart's guards and
actions) never blocks the event loop, and the transactional code path stays
the one the crash tests exercise: there is no second, async-only
implementation to drift from it.

Why a thread and not an async driver: a store serializes its calls on one
connection anyway (SQLite has no async driver in the standard library;
psycopg's ``AsyncConnection`` would double the PostgreSQL code). One worker
per facade keeps a service's calls in submission order. For parallel
writers open several facades on their own stores: the database arbitrates,
and a writer that lost a race with ``expected_version`` gets
``ConcurrencyError`` exactly as with the synchronous service.

Cancellation: cancelling an awaiting task does not stop the write already
handed to the worker; it commits or rolls back as a whole. A caller that
must know the outcome repeats the call with the same ``request_key`` (the
stored result comes back, nothing is written twice).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ._semantics import Config
from .chart import Actor
from .security import Envelope
from .service import Entity, EntityService, Result

__all__ = ["AsyncEntityService"]

T = TypeVar("T")


class AsyncEntityService:
    """Awaitable ``create``/``send``/``send_batch``/``accept``/``migrate``
    and reads over ``service`` (see ``EntityService`` for what each does and
    raises: the same exceptions propagate to the awaiting task).

    Args:
        service: the synchronous service (its store is used from the worker).
        executor: where DB work runs; default: a private single-thread
            executor, shut down by ``aclose``.
        close_store: ``aclose`` also closes the service's store.
    """

    def __init__(self, service: EntityService, *, executor: ThreadPoolExecutor | None = None,
                 close_store: bool = False) -> None:
        self.service = service
        self._own = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"durable-{service.kind}")
        self._close_store = close_store
        self._closed = False

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise RuntimeError(f"AsyncEntityService({self.service.kind}) is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # ------------------------------------------------------------ writes

    async def create(self, entity: str, *, actor: Actor, extra: Mapping[str, Any] | None = None,
                     request_key: str | None = None,
                     meta: Mapping[str, str] | None = None) -> Result:
        return await self._run(self.service.create, entity, actor=actor, extra=extra,
                               request_key=request_key, meta=meta)

    async def send(self, entity: str, event: str, payload: Mapping[str, Any] | None = None, *,
                   actor: Actor, request_key: str | None = None,
                   expected_version: int | None = None,
                   meta: Mapping[str, str] | None = None) -> Result:
        return await self._run(self.service.send, entity, event, payload, actor=actor,
                               request_key=request_key, expected_version=expected_version,
                               meta=meta)

    async def send_batch(self, items: Sequence[tuple[str, str, Mapping[str, Any] | None]], *,
                         actor: Actor) -> list[Result]:
        return await self._run(self.service.send_batch, list(items), actor=actor)

    async def accept(self, envelope: Mapping[str, Any] | Envelope, *,
                     actor: Actor | None = None) -> Result:
        return await self._run(self.service.accept, envelope, actor=actor)

    async def migrate(self, entity: str, to: int,
                      migration: Callable[[Config], Mapping[str, Any]] | None = None, *,
                      actor: Actor) -> Result:
        return await self._run(self.service.migrate, entity, to, migration, actor=actor)

    async def fire_due_timers(self, *, now: float | None = None, limit: int = 100) -> int:
        return await self._run(self.service.fire_due_timers, now=now, limit=limit)

    async def run_timers(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """The service's timer loop (it already runs its DB work off the loop)."""
        await self.service.run_timers(stop, interval=interval)

    # ------------------------------------------------------------ reads

    async def load(self, entity: str) -> Entity:
        return await self._run(self.service.load, entity)

    async def load_at(self, entity: str, version: int) -> Entity:
        return await self._run(self.service.load_at, entity, version)

    async def exists(self, entity: str) -> bool:
        return await self._run(self.service.exists, entity)

    async def view(self, entity: str, actor: Actor | None) -> dict[str, Any]:
        return await self._run(self.service.view, entity, actor)

    async def history(self, entity: str) -> list[dict[str, Any]]:
        return await self._run(self.service.history, entity)

    async def next_timer(self) -> float | None:
        return await self._run(self.service.next_timer)

    async def stuck(self, *, now: float | None = None) -> list[tuple[str, str, float]]:
        return await self._run(self.service.stuck, now=now)

    # ------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Wait for the calls already handed over, then release the worker
        (and the store, with ``close_store``). Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._close_store:
            await loop.run_in_executor(self._executor, self.service.store.close)
        if self._own:
            await loop.run_in_executor(None, functools.partial(self._executor.shutdown,
                                                               wait=True))

    async def __aenter__(self) -> AsyncEntityService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
