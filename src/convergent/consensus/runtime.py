"""Run a ``ConsensusCore`` on an asyncio event loop.

One task owns the core and consumes a queue of inputs (messages, timer
expiries, provider results, commands); nothing else touches the core, so no
state is shared and no lock is needed. Effects are carried out without
waiting: messages go to the transport's non-blocking ``send``; provider calls
become tasks (coroutines) or worker-thread jobs (plain functions), bounded by
the phase's timeout, whose outcome is queued back as an input; timers are
``loop.call_later`` handles. A provider that is slow, hangs or raises costs
its own call, never the loop.

Two costs are kept off the loop:

* **Signatures of network input** are checked in batches in a worker thread by
  the ``Ingress`` (``ingress.py``), after a per-peer rate limit; the core then
  finds every answer in the shared ``Verifier`` memo.
* **The signing guard's fsync** (and the apply log's): the task handles the
  inputs that are waiting (up to ``batch``) one after the other, then saves the
  guard state and the apply log once each, in a worker thread, and only then
  sends what those inputs made it sign. One fsync
  covers every signature of the batch (a view's liveness, prevote, precommit
  usually land in different batches, so about one per signature at worst and
  far fewer under load), and a signature still never leaves before its record
  is durable. A save that fails drops the batch's own messages (counted in
  ``core.stats.refused``, reported as ``sign-refused``): no durable record, no
  signature sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from .applies import ApplyLog
from .core import ConsensusCore
from .ingress import Ingress, RateLimit
from .effects import (
    Call,
    CancelCall,
    Decision,
    Deliver,
    Effect,
    FaultObserved,
    ForceResync,
    Input,
    Notification,
    Notify,
    ProviderDone,
    ProviderFailed,
    Send,
    SetTimer,
    Start,
    Stop,
    TimerFired,
)
from .errors import ConsensusError
from .guard import SafetyStore
from .machine import Phase
from .messages import Message
from .providers import Providers, Transport

__all__ = ["ConsensusNode", "Listener", "LocalNetwork"]

V = TypeVar("V")
C = TypeVar("C")

Listener = Callable[[Notification], None]
"""Called with every transition, decision, evidence and fault; must not block."""


class ConsensusNode(Generic[V, C]):
    """A consensus node: a core, its providers, a transport and listeners.

    ``clock`` returns seconds (defaults to the loop's monotonic clock); it only
    stamps traces and notifications, all waiting is done by the loop.

    ``guard`` is the validator's durable signing record, e.g.
    ``FileSafetyStore("/var/lib/node/n01.guard.json")``: the core writes to it
    (and the store fsyncs) before any signature is handed to the transport, and a
    node restarted on the same store resumes where it stopped and cannot sign
    anything that conflicts with what it signed before. Without it the core keeps
    its in-memory default, which does not survive the process: a real validator
    should always pass one.

    ``apply_log`` (e.g. ``FileApplyLog("/var/lib/node/n01.applies.json")``) is where
    finalized heights wait for ``finalize_votes``: applied in height order, never
    cancelled by a phase timer, and re-applied after a restart if the application had
    not returned for them (see ``applies.py``). Without it the queue lives in memory.
    """

    def __init__(self, core: ConsensusCore[V], providers: Providers[V, C],
                 transport: Transport, *, listeners: Sequence[Listener] = (),
                 clock: Callable[[], float] | None = None,
                 guard: SafetyStore | None = None,
                 apply_log: ApplyLog | None = None,
                 rate_limit: RateLimit | None = None,
                 verify_off_loop: bool = True,
                 batch: int = 64) -> None:
        if guard is not None:
            core.use_guard(guard)
        if apply_log is not None:
            core.use_apply_log(apply_log)
        if batch < 1:
            raise ConsensusError(f"batch={batch!r} (expected >= 1)")
        core.guard.deferred = True  # saved once per batch, off the loop (see _flush)
        core.applies.deferred = True
        self.batch = batch
        self.ingress: Ingress | None = None
        if verify_off_loop or rate_limit is not None:
            self.ingress = Ingress(self._deliver_checked, core.verifier, core.schedule,
                                   core.config.chain_id, limit=rate_limit,
                                   batch=max(batch, 64))
        self._ingress_task: asyncio.Task[None] | None = None
        self.guard_saves = 0
        """Guard saves made (each one fsync with a ``FileSafetyStore``)."""
        self.core = core
        self.providers = providers
        self.transport = transport
        self.listeners: list[Listener] = list(listeners)
        self._clock = clock
        self._queue: asyncio.Queue[Input | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: list[tuple[int, asyncio.Future[Decision[V]]]] = []
        self.listener_errors = 0
        self.stopped = asyncio.Event()

    # -------------------------------------------------------------- control

    @property
    def node_id(self) -> str:
        return self.core.node_id

    @property
    def phase(self) -> Phase:
        return self.core.phase

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    async def start(self) -> None:
        """Start the processing task and the machine (``stopped -> starting``)."""
        if self._task is not None:
            raise ConsensusError(f"node {self.node_id} is already started")
        self._task = asyncio.create_task(self._run(), name=f"consensus-{self.node_id}")
        if self.ingress is not None:
            self._ingress_task = asyncio.create_task(self.ingress.run(),
                                                     name=f"ingress-{self.node_id}")
        self.submit(Start())

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the machine to stop, wait for ``stopped`` (bounded), then end every task."""
        if self._task is None:
            return
        if self.core.phase is not Phase.STOPPED:
            self.submit(Stop())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), timeout)
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout)
        ingress = self._ingress_task
        self._shutdown()
        if ingress is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await ingress

    def resync(self) -> None:
        """Force a re-sync (``induce_sync``) from any running phase."""
        self.submit(ForceResync())

    def submit(self, inp: Input) -> None:
        self._queue.put_nowait(inp)

    def deliver(self, message: Message, peer: str | None = None) -> None:
        """Hand a message received from the network to the node (call from the loop's thread).

        ``peer`` is who sent it - the authenticated identity of the connection - and is
        what the rate limit is per; without one, the message's claimed signer is used.
        """
        if self.ingress is not None and self._ingress_task is not None:
            self.ingress.offer(message, peer if peer is not None else str(message.signer))
        else:
            self._queue.put_nowait(Deliver(message))

    def _deliver_checked(self, message: Message) -> None:
        self._queue.put_nowait(Deliver(message))

    async def wait_for_height(self, height: int, timeout: float | None = None) -> Decision[V]:
        """The decision of ``height``, once this node has finalized it."""
        known = self.core.decisions.get(height)
        if known is not None:
            return known
        fut: asyncio.Future[Decision[V]] = asyncio.get_running_loop().create_future()
        self._waiters.append((height, fut))
        return await asyncio.wait_for(fut, timeout)

    # -------------------------------------------------------------- the loop

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def _run(self) -> None:
        while True:
            inp = await self._queue.get()
            if inp is None:
                return
            batch = [inp]
            last = False
            while len(batch) < self.batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    last = True
                    break
                batch.append(nxt)
            effects: list[Effect] = []
            for item in batch:
                effects.extend(self.core.handle(item, self._now()))
            effects = await self._flush(effects)
            self._execute(effects)
            if self.core.phase is Phase.STOPPED:
                self.stopped.set()
            else:
                self.stopped.clear()
            if last:
                return

    async def _flush(self, effects: list[Effect]) -> list[Effect]:
        """Make the guard's new records and the apply log's new entries durable (in a worker
        thread) before any of ``effects`` is sent; if a save fails, drop this node's own
        messages (no durable record, no signature; no logged decision, nothing signed for
        the next height)."""
        state = self.core.guard.take_unsaved()
        applies = self.core.applies.take_unsaved()
        if state is None and applies is None:
            return effects
        guard_store, log = self.core.guard.store, self.core.applies.log

        def save() -> None:
            if applies is not None:
                log.save(applies)
            if state is not None:
                guard_store.save(state)

        try:
            await asyncio.get_running_loop().run_in_executor(None, save)
        except Exception as exc:  # noqa: BLE001 - no durable record, no signature
            kept: list[Effect] = []
            for e in effects:
                if isinstance(e, Send) and e.message.signer == self.node_id:
                    self.core.stats.refused[type(e.message).__name__] += 1
                    continue
                kept.append(e)
            self._notify(FaultObserved(self._now(), self.node_id, self.core.height,
                                       "sign-refused", None,
                                       f"the signing guard or apply log could not record "
                                       f"them: {exc!r}"))
            return kept
        if state is not None:
            self.guard_saves += 1
        return effects

    def _execute(self, effects: Sequence[Effect]) -> None:
        for e in effects:
            if isinstance(e, Send):
                try:
                    self.transport.send(e.message, e.to)
                except Exception:  # noqa: BLE001 - a broken link loses a message, not the node
                    self.core.stats.rejected["transport-error"] += 1
            elif isinstance(e, SetTimer):
                if self._timer is not None:
                    self._timer.cancel()
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(e.delay, self.submit, TimerFired(e.token, e.event))
            elif isinstance(e, Call):
                self._calls[e.token] = asyncio.create_task(self._run_call(e))
            elif isinstance(e, CancelCall):
                task = self._calls.pop(e.token, None)
                if task is not None:
                    task.cancel()
            elif isinstance(e, Notify):
                self._notify(e.note)

    async def _run_call(self, call: Call) -> None:
        try:
            target = getattr(self.providers, call.provider)
            method = getattr(target, call.method)
            if inspect.iscoroutinefunction(method):
                pending: Any = method(*call.args)
            else:
                pending = asyncio.to_thread(method, *call.args)
            if call.timeout is not None:
                result = await asyncio.wait_for(pending, call.timeout)
            else:
                result = await pending
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            self._calls.pop(call.token, None)
            raise
        except TimeoutError:
            self.submit(ProviderFailed(call.token, f"timed out after {call.timeout} s"))
        except Exception as exc:  # noqa: BLE001 - any provider failure becomes an input
            self.submit(ProviderFailed(call.token, repr(exc)))
        else:
            self.submit(ProviderDone(call.token, result))
        finally:
            self._calls.pop(call.token, None)

    def _notify(self, note: Notification) -> None:
        from .effects import Finalized

        if isinstance(note, Finalized):
            still = []
            for height, fut in self._waiters:
                if height == note.decision.height and not fut.done():
                    fut.set_result(note.decision)
                elif not fut.done():
                    still.append((height, fut))
            self._waiters = still
        for listener in self.listeners:
            try:
                listener(note)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop consensus
                self.listener_errors += 1

    def _shutdown(self) -> None:
        if self._ingress_task is not None:
            self._ingress_task.cancel()
            self._ingress_task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._calls.values():
            task.cancel()
        self._calls.clear()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()


class LocalNetwork:
    """An in-process transport hub for tests and examples: ``transport(node_id)`` per node.

    Delivery goes through ``loop.call_later`` (``delay`` seconds), so a send never
    runs the receiver's code inside the sender's call.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self._nodes: dict[str, Callable[[Message, str], None]] = {}
        self.sent = 0
        self.cut: set[str] = set()
        """Nodes whose messages are dropped both ways (a crude partition)."""

    def attach(self, node: ConsensusNode[Any, Any]) -> None:
        self._nodes[node.node_id] = node.deliver

    def transport(self, node_id: str) -> Transport:
        return _LocalTransport(self, node_id)

    def _send(self, src: str, message: Message, to: str | None) -> None:
        loop = asyncio.get_running_loop()
        targets = [to] if to is not None else [n for n in self._nodes if n != src]
        for dst in targets:
            deliver = self._nodes.get(dst)
            if deliver is None or src in self.cut or dst in self.cut:
                continue
            self.sent += 1
            loop.call_later(self.delay, deliver, message, src)


class _LocalTransport:
    def __init__(self, hub: LocalNetwork, node_id: str) -> None:
        self._hub = hub
        self._node_id = node_id

    def send(self, message: Any, to: str | None) -> None:
        self._hub._send(self._node_id, message, to)
