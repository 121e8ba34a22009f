"""The pure protocol core: one node's state plus one input gives effects.

The protocol is a two-phase, locked-value BFT agreement (the Tendermint /
PBFT family) laid over the reference design's phases. For each height the
node runs views ``0, 1, 2, ...`` until it finalizes:

* ``collecting``      ask the application for material (and the leader order)
* ``liveness_check``  sign and send ``Liveness(h, v, lock_view)``; wait for a quorum
* ``proving``         the leader makes a value (or must re-propose its lock, see below)
* ``publishing``      the leader signs and sends ``Proposal(h, v, value, justification)``
* ``voting``          the application checks the value; if good, sign a PREVOTE
* ``finalizing``      a quorum of prevotes is a lock: keep it, sign a PRECOMMIT
* ``verifying``       a quorum of precommits finalizes; the decision goes to the apply queue
                      (``applies.py``); send a ``Confirmation`` with the result

With ``CoreConfig(linear=True)`` (the default) votes go to the view's leader, which
forwards each certificate once (an ``Aggregate``), and liveness messages are sent
only in views entered on a timeout: ``O(n)`` messages per height when views succeed.
Who sends what to whom changes nothing below: a certificate is a bundle of votes.

The safety rules, enforced here whatever the transition table says:

1. Only members of the epoch's validator set count; every message is signed
   over (chain, kind, epoch, height, view, content) - the content including a
   digest of every attachment - and checked in full before anything of it is stored.
2. A node prevotes at most once and precommits at most once per (height, view).
3. It precommits in view ``v`` only after seeing a quorum of prevotes for the same
   value in ``v``; it then *locks* on that value (the prevote certificate).
4. Its ``Liveness`` for view ``v`` reports the highest view it holds a lock for.
5. In a view ``v > 0`` a proposal must carry a quorum of liveness headers of
   ``v``; if the highest reported lock view is ``m >= 0``, it must also carry a
   prevote certificate for view ``m`` whose value it proposes.
6. A height is final on a quorum of precommits for one (view, value), seen
   directly or as a certificate in a confirmation or a sync answer.
7. Rules 2 and 4 hold across restarts: every signature is first recorded in the
   validator's durable signing guard (``guard.py``, with the lock), which refuses
   anything contradicting what it recorded; a restarted core resumes from it.

Why that is safe (the full argument is in ``docs/consensus.md``): if ``x`` is
finalized in view ``r``, more than a third of the weight - at least one honest
node in every later quorum - is locked at ``>= r``. A later proposal's
justification therefore reports a lock view ``m >= r``, and by induction every
prevote certificate at views ``>= r`` is for ``x``, so only ``x`` can gather
prevotes, locks or precommits again.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from .applies import ApplyLog, ApplyQueue, MemoryApplyLog, PendingApply
from .crypto import Verifier
from .effects import (
    Call,
    CancelCall,
    CertifiedValue,
    Decision,
    Deliver,
    Effect,
    EvidenceFound,
    FaultObserved,
    Finalized,
    ForceResync,
    Input,
    Notify,
    ProviderDone,
    ProviderFailed,
    Send,
    SetTimer,
    Start,
    Stop,
    TimerFired,
    TransitionRecord,
)
from .errors import ConfigError, ConsensusError
from .evidence import Equivocation, EvidencePool
from .guard import MemorySafetyStore, SafetyStore, SigningGuard
from .machine import Event, MachineSpec, Phase, Transition
from .messages import (
    NO_LOCK,
    Aggregate,
    Certificate,
    Confirmation,
    Kind,
    Liveness,
    LockProof,
    Message,
    Proposal,
    Signer,
    Vote,
    certificate_digest,
    kind_of,
    sign_aggregate,
    sign_confirmation,
    sign_liveness,
    sign_proposal,
    sign_vote,
)
from .leaders import proposer_schedule
from .providers import BytesCodec, Codec
from .trace import TraceLog, TraceRecord
from .validators import EpochSchedule, ValidatorSet

__all__ = ["ConsensusCore", "CoreConfig", "CoreStats"]

V = TypeVar("V")
NodeId = str
_DIGEST = 32


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_ROUND_SCOPED = frozenset({
    Event.COLLECTION_DONE, Event.LIVENESS_CHECK_RECEIVED, Event.PROVER_SIGNAL,
    Event.PROOF_COMPLETE, Event.PUBLISH_COMPLETE, Event.PROPOSAL_RECEIVED,
    Event.VOTE_RECEIVED, Event.QUORUM_REACHED,
})
_HEIGHT_SCOPED = frozenset({
    Event.AGGREGATION_DONE, Event.CONFIRMATION_RECEIVED, Event.VERIFICATION_DONE,
})


@dataclass(frozen=True)
class CoreConfig:
    """Protocol options that are not part of the transition table.

    Memory per node is bounded by about ``(retain_heights + future_heights) x
    (2 x view_window + 1) x n`` messages, whatever peers send.
    """

    chain_id: str = "convergent"
    retain_heights: int = 16
    """Finalized heights whose messages and confirmations are kept (evidence, catch-up)."""
    future_heights: int = 2
    """Heights ahead of the current one whose messages are buffered."""
    view_window: int = 8
    """Views ahead of (and behind) the current view whose messages are kept."""
    sync_gap: int = 8
    """A node seeing more than a third of the weight this many heights ahead re-syncs."""
    max_value_bytes: int = 1 << 20
    relay: bool = False
    """Forward every newly accepted message once (gossip): costs n times the messages, gives
    every honest node every message, hence every equivocation, in a lossy network."""
    linear: bool = True
    """Linear communication (``O(n)`` messages per height when views succeed): prevotes and
    precommits go to the view's leader, which forwards one quorum certificate to everyone
    (an ``Aggregate``); liveness messages - the view change - are broadcast only in views
    entered on a timeout (view > 0); confirmations go to the next height's leader. False:
    everything all-to-all (``O(n^2)``), as before."""
    trace_limit: int = 2048
    evidence_limit: int = 1024
    report_internal: bool = True
    """Tell listeners about internal transitions too (one per message counted)."""

    def __post_init__(self) -> None:
        for name in ("retain_heights", "future_heights", "view_window", "sync_gap",
                     "max_value_bytes", "trace_limit", "evidence_limit"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} (expected int >= 1)")


class CoreStats:
    """Counters: what was accepted, what was rejected and why, what was sent."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        """Messages the signing guard would not let this node sign, by kind."""


class _View:
    """Everything seen for one (height, view); each dict holds at most one entry per member."""

    __slots__ = (
        "aggregated",
        "certs",
        "forwarded",
        "liveness",
        "my_liveness",
        "my_precommit",
        "my_prevote",
        "pc_weight",
        "precommits",
        "prevotes",
        "proposals",
        "pv_weight",
        "quorum_raised",
        "signed_proposals",
    )

    def __init__(self) -> None:
        self.liveness: dict[NodeId, Liveness] = {}
        self.proposals: dict[NodeId, Proposal] = {}
        self.signed_proposals: dict[NodeId, Proposal] = {}
        """First validly signed proposal per signer, justified or not: equivocation is about
        signatures, so a proposal rejected for its justification still counts as evidence."""
        self.prevotes: dict[NodeId, Vote] = {}
        self.precommits: dict[NodeId, Vote] = {}
        self.pv_weight: dict[bytes, int] = {}
        self.pc_weight: dict[bytes, int] = {}
        self.my_liveness: Liveness | None = None
        self.my_prevote: Vote | None = None
        self.my_precommit: Vote | None = None
        self.quorum_raised = False
        self.forwarded: set[Kind] = set()
        """Certificates this node, as the view's collector, has forwarded (at most one each)."""
        self.aggregated: set[Kind] = set()
        """Certificates received in an ``Aggregate`` and counted (the first valid one each)."""
        self.certs: dict[Kind, Certificate] = {}
        """Valid certificates at hand (forwarded or received): reused for the lock and the
        decision instead of being rebuilt from the votes."""


@lru_cache(maxsize=64)
def _keyring(validators: ValidatorSet) -> bytes:
    w = hashlib.sha256(validators.epoch.to_bytes(8, "big", signed=True))
    for v in validators.validators:
        w.update(len(v.node_id).to_bytes(2, "big") + v.node_id.encode() + v.public_key)
    return w.digest()


class _Height:
    """Everything kept for one height."""

    __slots__ = (
        "applied",
        "certified",
        "keyring",
        "confirmations",
        "decision",
        "epoch",
        "height",
        "leaders",
        "max_view",
        "my_confirmation",
        "replied",
        "validators",
        "values",
        "views",
    )

    def __init__(self, height: int, epoch: int, validators: ValidatorSet) -> None:
        self.height = height
        self.epoch = epoch
        self.validators = validators
        self.keyring = _keyring(validators)
        """Names the keys a certificate of this height is checked against (memo key)."""
        self.views: dict[int, _View] = {}
        self.confirmations: dict[NodeId, Confirmation] = {}
        self.values: dict[bytes, bytes] = {}
        self.decision: Decision[Any] | None = None
        self.my_confirmation: Confirmation | None = None
        self.replied: dict[NodeId, int] = {}
        self.max_view: dict[NodeId, int] = {}
        self.certified: tuple[bytes, Certificate] | None = None
        self.leaders: tuple[NodeId, ...] | None = None
        self.applied: bytes | None = None
        """The application's result once it applied this height (the apply queue's answer)."""


@dataclass
class _Pending:
    provider: str
    method: str
    height: int
    view: int


class ConsensusCore(Generic[V]):
    """One node's protocol state. Feed it ``Input``s with ``handle``; act on the effects.

    Not thread-safe by design: exactly one owner (the runtime's event loop, or
    the simulator) calls ``handle``, so no state is ever shared.

    ``guard`` is the validator's durable signing record (``guard.py``); every
    signature passes it before it leaves. The default ``MemorySafetyStore``
    lasts as long as the process: give a real validator a ``FileSafetyStore``.
    A core built on a store that has signed before resumes at its last (height,
    view) with its lock. ``start_height`` is where the application's chain is
    (heights below it are done); the core starts at the higher of the two.

    ``applies`` is the durable apply log (``applies.py``): every decision is logged
    there before anything is signed for the next height, and handed to
    ``finalize_votes`` in height order, one at a time, never cancelled by a phase
    timer; a core built on a log with unacknowledged heights applies them first.
    """

    def __init__(self, keys: Signer, schedule: EpochSchedule, *,
                 spec: MachineSpec | None = None, config: CoreConfig | None = None,
                 codec: Codec[V] | None = None, verifier: Verifier | None = None,
                 guard: SafetyStore | None = None, start_height: int = 0,
                 applies: ApplyLog | None = None) -> None:
        self.keys = keys
        self.node_id: NodeId = keys.node_id
        self.schedule = schedule
        self.spec = spec or MachineSpec.default()
        self.config = config or CoreConfig()
        self.codec: Codec[V] = codec if codec is not None else BytesCodec()  # type: ignore[assignment]
        self.verifier = verifier or Verifier()
        self.phase: Phase = self.spec.initial
        self.height = 0
        self.view = 0
        self.stats = CoreStats()
        self.trace = TraceLog(self.config.trace_limit)
        self.evidence = EvidencePool(self.config.evidence_limit)
        self.faults: list[FaultObserved] = []
        self.decisions: OrderedDict[int, Decision[V]] = OrderedDict()
        self.last_decided: int = -1
        self._heights: dict[int, _Height] = {}
        self._entry = 0
        self._token = 0
        self._pending: dict[int, _Pending] = {}
        self._queue: list[tuple[Event, int, int]] = []
        self._out: list[Effect] = []
        self._now = 0.0
        self._lock: tuple[int, LockProof] | None = None
        self._collected: Any = None
        self._collect_done = False
        self._proof: tuple[int, int, bytes] | None = None
        self._plan: tuple[tuple[Liveness, ...], Certificate | None] = ((), None)
        self._prior: V | None = None
        self._ahead: dict[NodeId, int] = {}
        self._hinted: set[tuple[NodeId, int, int]] = set()
        self._sync_asked_at = -1
        if not isinstance(start_height, int) or start_height < 0:
            raise ConfigError(f"start_height={start_height!r} (expected int >= 0)")
        self._start_height = start_height
        self._resume_note: str | None = None
        self.guard = SigningGuard(guard if guard is not None else MemorySafetyStore(),
                                  self._guard_owner())
        self.applies = ApplyQueue(applies if applies is not None else MemoryApplyLog(),
                                  start_height)
        self._resume()

    def _guard_owner(self) -> str:
        key = getattr(self.keys, "public_key", b"")
        return f"{self.config.chain_id}/{self.node_id}/{bytes(key).hex()}"

    def _resume(self) -> None:
        """Start where the guard (or the application) says this validator left off."""
        point = self.guard.resume_point()
        height, view = self._start_height, 0
        if point is not None and point[0] >= height:
            height, view = point
        self.height, self.view = height, view
        self._lock = self.guard.state.lock_at(height)
        self._resume_note = None
        if point is not None:
            self._resume_note = (f"resuming at h={height} v={view} from the signing guard"
                                 + (f", locked in view {self._lock[0]}" if self._lock else ""))

    def use_guard(self, store: SafetyStore) -> None:
        """Replace the signing guard's store (before ``Start``) and resume from it."""
        if self.phase is not self.spec.initial or self.stats.sent.total():
            raise ConsensusError(
                f"node {self.node_id}: the signing guard can only be set before the node runs")
        self.guard = SigningGuard(store, self._guard_owner(), deferred=self.guard.deferred)
        self._resume()

    def use_apply_log(self, log: ApplyLog) -> None:
        """Replace the apply log (before ``Start``); its unacknowledged heights apply first."""
        if self.phase is not self.spec.initial or self.stats.sent.total():
            raise ConsensusError(
                f"node {self.node_id}: the apply log can only be set before the node runs")
        self.applies = ApplyQueue(log, self._start_height, deferred=self.applies.deferred)

    # ================================================================ public surface

    def handle(self, inp: Input, now: float = 0.0) -> list[Effect]:
        """Apply one input; return the effects to carry out, in order."""
        self._now = now
        if isinstance(inp, Deliver):
            if self.phase not in (Phase.STOPPED, Phase.STOPPING):
                self._on_message(inp.message)
        elif isinstance(inp, TimerFired):
            if inp.token == self._entry:
                self._on_timer(inp.event)
        elif isinstance(inp, ProviderDone):
            self._on_result(inp.token, inp.result, None)
        elif isinstance(inp, ProviderFailed):
            self._on_result(inp.token, None, inp.error)
        elif isinstance(inp, Start):
            if self._resume_note is not None:
                self._trace(self._resume_note)
                self._resume_note = None
            self._raise(Event.START)
        elif isinstance(inp, Stop):
            self._raise(Event.STOP)
        elif isinstance(inp, ForceResync):
            self._raise(Event.INDUCE_SYNC)
        else:  # pragma: no cover - typing guards this
            raise ConfigError(f"unknown input {inp!r}")
        self._drain()
        out, self._out = self._out, []
        return out

    def validators_at(self, height: int) -> ValidatorSet:
        return self.schedule.validators_at(height)

    def leader(self, height: int, view: int) -> NodeId:
        """The leader of (height, view) as this node sees it."""
        book = self._heights.get(height)
        leaders = book.leaders if book is not None and book.leaders else None
        if leaders is None:
            leaders = proposer_schedule(height, self.validators_at(height))
        return leaders[view % len(leaders)]

    @property
    def timer_token(self) -> int:
        """The token of the only timer that still matters (the current phase entry's)."""
        return self._entry

    @property
    def locked(self) -> tuple[int, bytes] | None:
        """(lock view, locked value digest) for the current height, if locked."""
        if self._lock is None:
            return None
        return self._lock[0], self._lock[1].certificate.digest

    def memory_footprint(self) -> int:
        """Messages held in per-round books: bounded whatever peers send (tests check it)."""
        total = 0
        for book in self._heights.values():
            total += (len(book.confirmations) + len(book.values) + len(book.replied)
                      + len(book.max_view))
            for vb in book.views.values():
                total += (len(vb.liveness) + len(vb.signed_proposals) + len(vb.prevotes)
                          + len(vb.precommits))
        return (total + len(self._ahead) + len(self._hinted) + len(self._pending)
                + self.applies.backlog)

    # ================================================================ machinery

    def _next_token(self) -> int:
        self._token += 1
        return self._token

    def _trace(self, text: str) -> None:
        self.trace.append(TraceRecord(self._now, self.node_id, self.height, self.view,
                                      self.phase, text))

    def _raise(self, event: Event) -> None:
        self._queue.append((event, self.height, self.view))

    def _drain(self) -> None:
        while self._queue:
            event, height, view = self._queue.pop(0)
            if event in _ROUND_SCOPED and (height, view) != (self.height, self.view):
                continue  # raised for a view this node has already left
            if event in _HEIGHT_SCOPED and height != self.height:
                continue
            self._fire(event)

    def _fire(self, event: Event) -> None:
        tr = self.spec.transition(self.phase, event)
        if tr is None:
            return
        self._take(event, tr)
        if not tr.internal:
            self._pump_apply()  # after a failed apply, the next phase change retries it

    def _take(self, event: Event, tr: Transition) -> None:
        if event in self.spec.view_change_on:
            self._set_view(self.view + 1)
        if event in self.spec.next_height_on:
            self._advance_height()
        source = self.phase
        if tr.internal:
            if self.config.report_internal:
                self._out.append(Notify(TransitionRecord(
                    self._now, self.node_id, self.height, self.view, source, event, tr.target,
                    True)))
            return
        self._out.append(Notify(TransitionRecord(
            self._now, self.node_id, self.height, self.view, source, event, tr.target, False)))
        self._trace(f"{source} --{event}--> {tr.target}")
        self._exit(source)
        self.phase = tr.target
        self._entry += 1
        timeout = self.spec.timeout(tr.target, self.view)
        timeout_event = self.spec.timeout_event(tr.target)
        if timeout is not None and timeout_event is not None:
            self._out.append(SetTimer(self._entry, timeout, timeout_event))
        self._enter(tr.target)

    def _call(self, provider: str, method: str, *args: Any) -> int:
        token = self._next_token()
        self._pending[token] = _Pending(provider, method, self.height, self.view)
        timeout = self.spec.timeout(self.phase, self.view)
        self._out.append(Call(token, provider, method, args, timeout))
        return token

    def _exit(self, phase: Phase) -> None:
        for token, call in list(self._pending.items()):
            if call.method in ("next_leaders", "finalize_votes") and phase is not Phase.STOPPING:
                continue  # not tied to the phase: an apply is never cancelled by a timer
            del self._pending[token]
            self._out.append(CancelCall(token))
            if call.method == "finalize_votes":
                self.applies.abandon()  # stopping: the log keeps it for the next process

    def _enter(self, phase: Phase) -> None:
        if phase is Phase.LOADING:
            self._call("sync", "synchronize", self.height)
        elif phase is Phase.COLLECTING:
            self._enter_collecting()
        elif phase is Phase.LIVENESS_CHECK:
            self._enter_liveness()
        elif phase is Phase.PROVING:
            if self.leader(self.height, self.view) == self.node_id and self._is_member():
                self._start_proving()
            else:
                self._check_proposal()
        elif phase is Phase.PUBLISHING:
            self._publish()
        elif phase is Phase.VOTING:
            self._start_voting()
        elif phase is Phase.FINALIZING:
            self._enter_finalizing()
        elif phase is Phase.VERIFYING:
            self._enter_verifying()
        elif phase is Phase.STOPPING:
            self._raise(Event.CLEANUP_COMPLETE)

    # ================================================================ books and windows

    def _book(self, height: int) -> _Height | None:
        if height < self.height - self.config.retain_heights:
            return None
        if height > self.height + self.config.future_heights:
            return None
        book = self._heights.get(height)
        if book is None:
            epoch = self.schedule.epoch_of(height)
            book = _Height(height, epoch, self.schedule.validators_for_epoch(epoch))
            self._heights[height] = book
        return book

    def _view_book(self, book: _Height, view: int) -> _View | None:
        """The book of ``view`` if it lies in the window kept for ``book``'s height."""
        if book.height == self.height:
            low, high = self.view - self.config.view_window, self.view + self.config.view_window
        elif book.height > self.height:
            low, high = 0, self.config.view_window
        else:
            if view not in book.views:
                return None
            return book.views[view]
        if view < max(low, 0) or view > high:
            return None
        vb = book.views.get(view)
        if vb is None:
            vb = book.views[view] = _View()
        return vb

    def _current(self) -> tuple[_Height, _View]:
        book = self._book(self.height)
        assert book is not None
        vb = self._view_book(book, self.view)
        assert vb is not None
        return book, vb

    def _is_member(self, height: int | None = None) -> bool:
        return self.node_id in self.validators_at(self.height if height is None else height)

    def _set_view(self, view: int) -> None:
        if view <= self.view:
            return
        self.view = view
        self._proof = None
        self._collected = None
        self._collect_done = False
        book = self._heights.get(self.height)
        if book is not None:
            floor = view - self.config.view_window
            dropped = [v for v in book.views if v < floor]
            for v in dropped:
                del book.views[v]
            if dropped:
                self._prune_values(book)

    def _prune_values(self, book: _Height) -> None:
        """Forget values no kept message refers to, so a long-stuck height stays bounded."""
        keep: set[bytes] = set()
        for vb in book.views.values():
            keep.update(p.digest for p in vb.proposals.values())
            keep.update(m.lock.certificate.digest for m in vb.liveness.values() if m.lock)
        if self._lock is not None:
            keep.add(self._lock[1].certificate.digest)
        if book.certified is not None:
            keep.add(book.certified[1].digest)
        for d in [d for d in book.values if d not in keep]:
            del book.values[d]

    def _advance_height(self) -> None:
        book = self._heights.get(self.height)
        if book is None or book.decision is None:
            return
        if self.phase is Phase.VERIFYING and book.my_confirmation is None:
            self._confirm(book, b"")
        self._prior = book.decision.value
        self.height += 1
        self.view = 0
        self._lock = None
        self._proof = None
        self._collected = None
        self._collect_done = False
        self._hinted.clear()
        floor = self.height - self.config.retain_heights
        for h in [h for h in self._heights if h < floor]:
            del self._heights[h]
        for h in [h for h in self.decisions if h < floor]:
            del self.decisions[h]
        for n in [n for n, h in self._ahead.items() if h <= self.height]:
            del self._ahead[n]
        new = self._book(self.height)
        assert new is not None
        for v in [v for v in new.views if v > self.config.view_window]:
            del new.views[v]
        self._try_decide(new)

    # ================================================================ phases

    def _enter_collecting(self) -> None:
        book = self._book(self.height)
        assert book is not None
        if book.decision is not None:
            self._raise(Event.AGGREGATION_DONE)
            return
        self._collected = None
        self._collect_done = False
        self._call("liveness", "collect", self.height, self.view)
        if book.leaders is None and not any(
                p.method == "next_leaders" and p.height == self.height
                for p in self._pending.values()):
            self._call("leader", "next_leaders", self.height, book.validators)

    def _collection_ready(self) -> None:
        book = self._heights.get(self.height)
        if (self.phase is Phase.COLLECTING and self._collect_done and book is not None
                and book.leaders is not None):
            self._raise(Event.COLLECTION_DONE)

    def _enter_liveness(self) -> None:
        book, vb = self._current()
        if book.leaders is None:
            book.leaders = proposer_schedule(self.height, book.validators)
            self._trace("leaders unknown at liveness check: using the stake-weighted schedule")
        if not (self.config.linear and self.view == 0):
            # Linear: view 0 needs no liveness; it is signed only if a hint needs it.
            msg = self._my_liveness(book, vb)
            if msg is not None:
                self._send(msg)
        self._check_liveness_quorum()
        self._check_proposal()
        self._check_jump()

    def _my_liveness(self, book: _Height, vb: _View) -> Liveness | None:
        """This node's liveness for the current view, signed (and guarded) once."""
        if vb.my_liveness is not None or not self._is_member():
            return vb.my_liveness
        if self._lock is not None and self._lock[0] >= self.view:
            # Only after a restart into the view it locked in: its liveness for this
            # view was signed before the lock, and the guard holds the record of it.
            self._trace("locked in this very view before a restart: no liveness")
            return None
        msg = sign_liveness(self.keys, self.config.chain_id, book.epoch, self.height,
                            self.view, self._lock)
        if not self._guarded(msg):
            return None
        vb.my_liveness = msg
        self._store_liveness(book, vb, msg)
        return msg

    def _check_liveness_quorum(self) -> None:
        if self.phase is not Phase.LIVENESS_CHECK:
            return
        book, vb = self._current()
        if (self.config.linear and self.view == 0) or book.validators.is_quorum(
                book.validators.weight(vb.liveness)):
            # Linear: view 0 needs no justification, so nobody waits for liveness quorums.
            self._raise(Event.PROVER_SIGNAL)

    def _start_proving(self) -> None:
        book, vb = self._current()
        forced: bytes | None = None
        if self.view == 0:
            self._plan = ((), None)
        else:
            headers = tuple(vb.liveness.values())
            if not book.validators.is_quorum(book.validators.weight(vb.liveness)):
                self._trace("cannot prove: no liveness quorum")
                return
            best = max(headers, key=lambda m: m.lock_view)
            cert = None
            if best.lock_view >= 0:
                assert best.lock is not None
                forced, cert = best.lock.value, best.lock.certificate
            self._plan = (tuple(h.header() for h in headers), cert)
        if forced is not None:
            self._proof = (self.height, self.view, forced)
            self._trace(f"re-proposing the value locked in view {self._plan[1].view}")  # type: ignore[union-attr]
            self._raise(Event.PROOF_COMPLETE)
        else:
            self._call("leader", "prove_next_state", self.height, self.view, self._collected,
                       self._prior)

    def _publish(self) -> None:
        if self._proof is None or self._proof[:2] != (self.height, self.view):
            return
        book, vb = self._current()
        if self.node_id in vb.proposals:
            self._raise(Event.PUBLISH_COMPLETE)
            return
        justification, cert = self._plan
        p = sign_proposal(self.keys, self.config.chain_id, book.epoch, self.height, self.view,
                          self._proof[2], justification, cert)
        if not self._guarded(p):
            return
        vb.proposals[self.node_id] = vb.signed_proposals[self.node_id] = p
        book.values[p.digest] = p.value
        self._send(p)
        self._raise(Event.PUBLISH_COMPLETE)

    def _leader_proposal(self, book: _Height, vb: _View, view: int) -> Proposal | None:
        return vb.proposals.get(self.leader(book.height, view))

    def _check_proposal(self) -> None:
        if self.phase not in (Phase.LIVENESS_CHECK, Phase.PROVING, Phase.VOTING):
            return
        book, vb = self._current()
        if self._leader_proposal(book, vb, self.view) is None:
            return
        if self.phase is Phase.VOTING:
            self._start_voting()
        self._raise(Event.PROPOSAL_RECEIVED)

    def _start_voting(self) -> None:
        if self.phase is not Phase.VOTING or not self._is_member():
            return
        book, vb = self._current()
        p = self._leader_proposal(book, vb, self.view)
        if p is None or vb.my_prevote is not None:
            return
        if any(c.method == "decide_vote" and c.height == self.height and c.view == self.view
               for c in self._pending.values()):
            return
        try:
            value = self.codec.decode(p.value)
        except Exception as exc:  # noqa: BLE001 - a value that does not decode is invalid
            self.stats.rejected["undecodable-value"] += 1
            self._trace(f"proposal value does not decode: {exc!r}")
            return
        self._call("voting", "decide_vote", self.height, self.view, value)

    def _prevote(self, accept: bool) -> None:
        book, vb = self._current()
        p = self._leader_proposal(book, vb, self.view)
        if not accept or p is None or vb.my_prevote is not None:
            if not accept:
                self._trace("application rejected the proposal: no prevote")
            return
        vote = sign_vote(self.keys, self.config.chain_id, Kind.PREVOTE, book.epoch,
                         self.height, self.view, p.digest)
        if not self._guarded(vote):
            return
        vb.my_prevote = vote
        self._store_vote(book, vb, vote)
        self._send_vote(vote)
        self._collect(book, self.view)
        self._check_prevote_quorum()

    def _check_prevote_quorum(self) -> None:
        if self.phase is not Phase.VOTING:
            return
        book, vb = self._current()
        mine = vb.my_prevote
        if mine is None or vb.quorum_raised:
            return
        if book.validators.is_quorum(vb.pv_weight.get(mine.digest, 0)):
            vb.quorum_raised = True
            self._raise(Event.QUORUM_REACHED)

    def _enter_finalizing(self) -> None:
        book, vb = self._current()
        mine = vb.my_prevote
        if mine is None or not book.validators.is_quorum(vb.pv_weight.get(mine.digest, 0)):
            return
        value = book.values.get(mine.digest)
        if value is None:
            return
        cert = vb.certs.get(Kind.PREVOTE)
        if cert is None or cert.digest != mine.digest:
            cert = self._certificate(book, vb.prevotes, Kind.PREVOTE, self.view, mine.digest)
        if self._lock is None or self._lock[0] < self.view:
            self._lock = (self.view, LockProof(value, cert))
            self._trace(f"locked on {mine.digest.hex()[:12]} in view {self.view}")
        if vb.my_precommit is None:
            vote = sign_vote(self.keys, self.config.chain_id, Kind.PRECOMMIT, book.epoch,
                             self.height, self.view, mine.digest)
            if self._guarded(vote):
                vb.my_precommit = vote
                self._store_vote(book, vb, vote)
                self._send_vote(vote)
                self._collect(book, self.view)
        self._try_decide(book)

    def _enter_verifying(self) -> None:
        book = self._heights.get(self.height)
        if book is None or book.decision is None:
            return
        if book.my_confirmation is not None:
            self._raise(Event.VERIFICATION_DONE)
            return
        if book.applied is not None:
            self._confirm(book, book.applied)
            self._raise(Event.VERIFICATION_DONE)
            return
        # Otherwise the apply queue has it (running, or behind earlier heights); its answer
        # completes the phase, or the verifying timeout confirms without a result.
        self._pump_apply()

    # ================================================================ the apply queue

    def _pump_apply(self) -> None:
        """Hand the next logged height to the application, if none is running."""
        if self.phase in (Phase.STOPPED, Phase.STOPPING):
            return
        entry = self.applies.next()
        if entry is None:
            return
        decision = self.decisions.get(entry.height)
        if decision is None or decision.digest != entry.certificate.digest:
            decision = self._decision_of(entry)
        token = self._next_token()
        self._pending[token] = _Pending("voting", "finalize_votes", entry.height, -1)
        self.applies.in_flight = entry.height
        self._out.append(Call(token, "voting", "finalize_votes", (decision,), None))

    def _decision_of(self, entry: PendingApply) -> Decision[V]:
        try:
            value = self.codec.decode(entry.raw)
        except Exception:  # noqa: BLE001 - a certified value is final even if it does not decode
            value = entry.raw  # type: ignore[assignment]
        cert = entry.certificate
        return Decision(entry.height, cert.view, value, entry.raw, cert.digest, cert)

    def _log_apply(self, decision: Decision[V]) -> None:
        try:
            self.applies.add(decision.height, decision.raw, decision.certificate)
        except Exception as exc:  # noqa: BLE001 - kept in memory; only a crash would lose it
            self._fault(decision.height, "apply-log-failed", None, repr(exc))

    def _applied(self, call: _Pending, result: Any, error: str | None) -> None:
        if error is not None:
            self.applies.abandon()  # retried at the next phase change, never skipped
            return
        try:
            self.applies.done(call.height)
        except Exception as exc:  # noqa: BLE001
            self._fault(call.height, "apply-log-failed", None, repr(exc))
        res = bytes(result) if isinstance(result, bytes | bytearray) else b""
        book = self._heights.get(call.height)
        if book is not None and book.decision is not None:
            book.applied = res
            if call.height < self.height:
                self._confirm(book, res)  # a late result: confirm if the timeout did not
            elif call.height == self.height and self.phase is Phase.VERIFYING:
                self._confirm(book, res)
                self._raise(Event.VERIFICATION_DONE)
        self._pump_apply()

    def _confirm(self, book: _Height, result: bytes) -> None:
        decision = book.decision
        if decision is None or book.my_confirmation is not None or not self._is_member(
                book.height):
            return
        result = result if len(result) <= 64 else _sha(result)
        conf = sign_confirmation(self.keys, self.config.chain_id, book.epoch, book.height,
                                 decision.raw, result, decision.certificate)
        if not self._guarded(conf):
            return
        book.my_confirmation = conf
        book.confirmations[self.node_id] = conf
        if self.config.linear:
            # One copy, to whoever leads the next height (it compares results); laggards get
            # theirs on demand, when they show up still working on this height.
            nxt = self.leader(book.height + 1, 0)
            if nxt != self.node_id:
                self._send(conf, nxt)
        else:
            self._send(conf)
        for other in list(book.confirmations.values()):
            if other.signer != self.node_id:
                self._compare_confirmation(book, other)

    def _send_vote(self, vote: Vote) -> None:
        """All-to-all, or (linear) to the view's collector, its leader."""
        if not self.config.linear:
            self._send(vote)
            return
        collector = self.leader(vote.height, vote.view)
        if collector != self.node_id:
            self._send(vote, collector)

    def _collect(self, book: _Height, view: int) -> None:
        """As the view's collector (linear mode): forward each certificate once it exists."""
        if not self.config.linear or self.leader(book.height, view) != self.node_id:
            return
        vb = book.views.get(view)
        if vb is None or not self._is_member(book.height):
            return
        for kind, weights, votes in ((Kind.PREVOTE, vb.pv_weight, vb.prevotes),
                                     (Kind.PRECOMMIT, vb.pc_weight, vb.precommits)):
            if kind in vb.forwarded:
                continue
            for dig, weight in weights.items():
                if book.validators.is_quorum(weight):
                    cert = self._certificate(book, votes, kind, view, dig)
                    value = book.values.get(dig, b"") if kind is Kind.PRECOMMIT else b""
                    vb.forwarded.add(kind)
                    vb.certs.setdefault(kind, cert)
                    self._send(sign_aggregate(self.keys, self.config.chain_id, cert, value))
                    break

    def _certificate(self, book: _Height, votes: dict[NodeId, Vote], kind: Kind, view: int,
                     value_digest: bytes) -> Certificate:
        sigs = tuple(sorted((s, v.signature) for s, v in votes.items()
                            if v.digest == value_digest))
        return Certificate(kind, book.epoch, book.height, view, value_digest, sigs)

    # ================================================================ deciding

    def _try_decide(self, book: _Height) -> None:
        if book.decision is not None:
            return
        if book.certified is not None:
            value, cert = book.certified
            self._decide(book, cert.view, value, cert)
            return
        for view, vb in list(book.views.items()):
            for dig, weight in vb.pc_weight.items():
                if book.validators.is_quorum(weight) and dig in book.values:
                    held = vb.certs.get(Kind.PRECOMMIT)
                    if held is None or held.digest != dig:
                        held = self._certificate(book, vb.precommits, Kind.PRECOMMIT, view, dig)
                    self._decide(book, view, book.values[dig], held)
                    return

    def _decide(self, book: _Height, view: int, raw: bytes, cert: Certificate) -> None:
        if book.decision is not None:
            return
        try:
            value = self.codec.decode(raw)
        except Exception:  # noqa: BLE001 - a certified value is final even if it does not decode
            value = raw  # type: ignore[assignment]
        decision: Decision[V] = Decision(book.height, view, value, raw, cert.digest, cert)
        book.decision = decision
        self.decisions[book.height] = decision
        self.last_decided = max(self.last_decided, book.height)
        self._trace(f"finalized height {book.height} in view {view}: {cert.digest.hex()[:12]}")
        self.stats.accepted["decision"] += 1
        self._log_apply(decision)  # however it was finalized: votes, confirmation or sync
        self._pump_apply()
        self._out.append(Notify(Finalized(self._now, self.node_id, decision)))
        for other in list(book.confirmations.values()):
            if other.signer != self.node_id:
                self._compare_confirmation(book, other)
        if book.height == self.height:
            self._raise(Event.AGGREGATION_DONE)

    # ================================================================ timers and providers

    def _on_timer(self, event: Event) -> None:
        if event is Event.VERIFICATION_TIMEOUT:
            book = self._heights.get(self.height)
            if book is not None and book.my_confirmation is None:
                self._fault(self.height, "finalize-timeout", None,
                            "the application has not applied the decision yet: confirming "
                            "without a result; the apply queue keeps it")
        self._trace(f"timeout: {event}")
        self._raise(event)

    def _on_result(self, token: int, result: Any, error: str | None) -> None:
        call = self._pending.pop(token, None)
        if call is None:
            return
        if error is not None:
            self._trace(f"provider {call.provider}.{call.method} failed: {error}")
            self._fault(call.height, "provider-failed", None,
                        f"{call.provider}.{call.method}: {error}")
        same_round = (call.height, call.view) == (self.height, self.view)
        method = call.method
        if method == "synchronize":
            if error is None:
                self._apply_sync(result)
            self._raise(Event.SYNC_COMPLETE)
        elif method == "next_leaders":
            book = self._heights.get(call.height)
            if book is not None and book.leaders is None:
                book.leaders = self._valid_leaders(book, result) if error is None else None
                if book.leaders is None:
                    book.leaders = proposer_schedule(book.height, book.validators)
            self._collection_ready()
        elif method == "collect" and same_round:
            self._collected = result if error is None else None
            self._collect_done = True
            self._collection_ready()
        elif method == "prove_next_state" and same_round and self.phase is Phase.PROVING:
            if error is not None:
                return
            try:
                raw = self.codec.encode(result)
            except Exception as exc:  # noqa: BLE001
                self._trace(f"proved value does not encode: {exc!r}")
                return
            if len(raw) > self.config.max_value_bytes:
                self._trace(f"proved value of {len(raw)} bytes is too large")
                return
            self._proof = (self.height, self.view, raw)
            self._raise(Event.PROOF_COMPLETE)
        elif method == "decide_vote" and same_round and self.phase is Phase.VOTING:
            self._prevote(error is None and result is True)
        elif method == "finalize_votes":
            self._applied(call, result, error)

    def _valid_leaders(self, book: _Height, result: Any) -> tuple[NodeId, ...] | None:
        try:
            leaders = tuple(str(x) for x in result)
        except TypeError:
            return None
        if not leaders or any(x not in book.validators for x in leaders):
            self._trace(f"leader provider answered {leaders!r}: not members, using the "
                        "stake-weighted schedule")
            return None
        return leaders

    def _apply_sync(self, result: Any) -> None:
        items = sorted(result or (), key=lambda c: getattr(c, "height", -1))
        applied = 0
        for item in items:
            if not isinstance(item, CertifiedValue) or item.height != self.height:
                continue
            book = self._book(self.height)
            assert book is not None
            if book.decision is None:
                if not self._check_commit(book, item.certificate, item.value):
                    self.stats.rejected["bad-sync-certificate"] += 1
                    self._trace(f"sync answer for height {item.height} does not verify")
                    break
                self._decide(book, item.certificate.view, item.value, item.certificate)
            self._prior = book.decision.value if book.decision else self._prior
            self._jump_height()
            applied += 1
        self._trace(f"sync applied {applied} heights")

    def _jump_height(self) -> None:
        """Leave a height finalized by sync (its apply is queued like any other)."""
        book = self._heights.get(self.height)
        if book is None or book.decision is None:
            return
        self.height += 1
        self.view = 0
        self._lock = None
        self._proof = None
        self._hinted.clear()
        floor = self.height - self.config.retain_heights
        for h in [h for h in self._heights if h < floor]:
            del self._heights[h]

    # ================================================================ messages in

    def _reject(self, reason: str) -> None:
        self.stats.rejected[reason] += 1

    def _guarded(self, message: Message) -> bool:
        """Record ``message`` durably in the signing guard; False if it must not leave."""
        lock = None
        if self._lock is not None and message.height == self.height:
            lock = (self.height, self._lock[0], self._lock[1])
        try:
            reason = self.guard.permit(message, self.config.chain_id, lock)
        except Exception as exc:  # noqa: BLE001 - no durable record, no signature
            reason = f"the signing guard could not record it: {exc!r}"
        if reason is None:
            return True
        kind = kind_of(message).name
        self.stats.refused[kind] += 1
        self._fault(message.height, "sign-refused", None, f"{kind}: {reason}")
        return False

    def _send(self, message: Message, to: NodeId | None = None) -> None:
        self.stats.sent[type(message).__name__] += 1
        self._out.append(Send(message, to))

    def _verify(self, pubkey: bytes, message: Message) -> bool:
        return self.verifier.verify(pubkey, message.payload(self.config.chain_id),
                                    message.signature)

    def _on_message(self, msg: Message) -> None:
        if not isinstance(msg, (Vote, Liveness, Proposal, Confirmation, Aggregate)):
            self._reject("not-a-message")
            return
        h = msg.height
        if not isinstance(h, int) or h < 0 or msg.epoch != self.schedule.epoch_of(h):
            self._reject("bad-epoch")
            return
        vset = self.schedule.validators_for_epoch(msg.epoch)
        member = vset.get(msg.signer)
        if member is None:
            self._reject("unknown-signer")
            return
        if msg.signer == self.node_id:
            self._reject("own-message")
            return
        if h > self.height + self.config.future_heights:
            self._note_ahead(msg, member.public_key, vset)
            return
        book = self._book(h)
        if book is None:
            self._reject("stale-height")
            return
        if isinstance(msg, Vote):
            self._on_vote(book, msg, member.public_key, member.weight)
        elif isinstance(msg, Liveness):
            self._on_liveness(book, msg, member.public_key)
        elif isinstance(msg, Proposal):
            self._on_proposal(book, msg, member.public_key)
        elif isinstance(msg, Aggregate):
            self._on_aggregate(book, msg, member.public_key)
        else:
            self._on_confirmation(book, msg, member.public_key)

    def _after_accept(self, book: _Height, msg: Message) -> None:
        """Bookkeeping shared by every accepted message: relay, catch-up, view sync."""
        self.stats.accepted[type(msg).__name__] += 1
        if self.config.relay and not isinstance(msg, Proposal):  # proposals relayed on signature
            self._out.append(Send(msg, None))
        h = book.height
        mine = book.my_confirmation
        if mine is not None and book.decision is not None and (
                isinstance(msg, Liveness) or msg.view > book.decision.view):
            # The sender is still working on a height we finalized: hand it the proof.
            if msg.view > book.replied.get(msg.signer, -2):
                book.replied[msg.signer] = msg.view
                self._send(mine, msg.signer)
        elif h > self.height and (self.view > 0 or h > self.height + 1 or (
                self.config.linear and not self._decided(self.height))):
            # Linear mode broadcasts no confirmations: a node still deciding a height others
            # have left asks the first of them it hears from (it answers with its proof).
            self._hint(msg.signer)
        if h >= self.height and msg.view >= 0:
            if book.max_view.get(msg.signer, -1) < msg.view:
                book.max_view[msg.signer] = msg.view
            if h == self.height and msg.view > self.view:
                self._check_jump()

    def _catch_up(self, book: _Height, msg: Message, pubkey: bytes) -> None:
        """A message for a finalized height, in a view we no longer keep: answer with proof."""
        mine = book.my_confirmation
        if mine is None or msg.view <= book.replied.get(msg.signer, -2):
            self._reject("stale-view")
            return
        if not self._verify(pubkey, msg):
            self._reject("bad-signature")
            return
        book.replied[msg.signer] = msg.view
        self._send(mine, msg.signer)

    def _out_of_window(self, book: _Height, msg: Message, pubkey: bytes) -> None:
        if book.height < self.height:
            self._catch_up(book, msg, pubkey)
        else:
            self._reject("view-out-of-window")

    def _decided(self, height: int) -> bool:
        book = self._heights.get(height)
        return book is not None and book.decision is not None

    def _hint(self, peer: NodeId) -> None:
        """A peer is ahead of us: show it where we are so it answers with confirmations."""
        key = (peer, self.height, self.view)
        if key in self._hinted:
            return
        book = self._heights.get(self.height)
        vb = book.views.get(self.view) if book is not None else None
        if book is None or vb is None:
            return
        if vb.my_liveness is None and self.config.linear and self.view == 0 and (
                self.phase not in (Phase.STOPPED, Phase.STARTING, Phase.LOADING)):
            self._my_liveness(book, vb)
        if vb.my_liveness is not None:
            self._hinted.add(key)
            self._send(vb.my_liveness, peer)

    def _note_ahead(self, msg: Message, pubkey: bytes, vset: ValidatorSet) -> None:
        if self._ahead.get(msg.signer, -1) >= msg.height:
            return
        if not self._verify(pubkey, msg):
            self._reject("bad-signature")
            return
        self._reject("future-height")
        self._ahead[msg.signer] = msg.height
        self._hint(msg.signer)
        far = [n for n, h in self._ahead.items() if h >= self.height + self.config.sync_gap]
        cur = self.validators_at(self.height)
        if (cur.exceeds_faulty(cur.weight(far)) and self._sync_asked_at != self.height
                and self.spec.transition(self.phase, Event.INDUCE_SYNC) is not None):
            self._sync_asked_at = self.height
            self._trace("more than a third of the weight is far ahead: re-sync")
            self._raise(Event.INDUCE_SYNC)

    def _duplicate_or_conflict(self, prior: Message | None, msg: Message, pubkey: bytes,
                               same: bool) -> bool:
        """True if ``msg`` must not be stored: a duplicate, or the second of a conflicting pair."""
        if prior is None:
            return False
        if same and prior.signature == msg.signature:
            self.stats.rejected["duplicate"] += 1
            return True
        if not self._verify(pubkey, msg):
            self._reject("bad-signature")
            return True
        if not same:
            self._found(prior, msg)
        else:
            self.stats.rejected["duplicate"] += 1
        return True

    def _found(self, first: Message, second: Message) -> None:
        if first.signer == self.node_id:
            # Its own vote inside a certificate, against the one it holds: possible only for
            # a node restarted without its guard. Not evidence it would report on itself.
            self._trace(f"a certificate holds another {kind_of(first).name} of ours at "
                        f"h={first.height} v={first.view}")
            return
        ev = Equivocation.of(first, second)
        if self.evidence.add(ev):
            self._trace(f"equivocation by {ev.validator}: {ev.kind.name} h={ev.height} "
                        f"v={ev.view}")
            self._out.append(Notify(EvidenceFound(self._now, self.node_id, ev)))
            if self.config.relay:
                self._out.append(Send(first, None))
                self._out.append(Send(second, None))

    # -- votes ------------------------------------------------------------------------

    def _on_vote(self, book: _Height, vote: Vote, pubkey: bytes, weight: int) -> None:
        if (vote.kind not in (Kind.PREVOTE, Kind.PRECOMMIT) or vote.view < 0
                or len(vote.digest) != _DIGEST):
            self._reject("malformed")
            return
        vb = self._view_book(book, vote.view)
        if vb is None:
            self._out_of_window(book, vote, pubkey)
            return
        store = vb.prevotes if vote.kind is Kind.PREVOTE else vb.precommits
        prior = store.get(vote.signer)
        if self._duplicate_or_conflict(prior, vote, pubkey,
                                       prior is not None and prior.digest == vote.digest):
            return
        if not self._verify(pubkey, vote):
            self._reject("bad-signature")
            return
        self._store_vote(book, vb, vote, weight)
        self._after_accept(book, vote)
        self._collect(book, vote.view)
        self._after_vote(book, vote)

    def _store_vote(self, book: _Height, vb: _View, vote: Vote, weight: int | None = None,
                    ) -> None:
        if weight is None:
            member = book.validators.get(vote.signer)
            weight = member.weight if member is not None else 0
        if vote.kind is Kind.PREVOTE:
            vb.prevotes[vote.signer] = vote
            vb.pv_weight[vote.digest] = vb.pv_weight.get(vote.digest, 0) + weight
        else:
            vb.precommits[vote.signer] = vote
            vb.pc_weight[vote.digest] = vb.pc_weight.get(vote.digest, 0) + weight

    def _after_vote(self, book: _Height, vote: Vote) -> None:
        if book.height != self.height:
            if vote.kind is Kind.PRECOMMIT:
                self._try_decide(book)
            return
        if vote.kind is Kind.PREVOTE:
            if vote.view == self.view:
                self._check_prevote_quorum()
        else:
            self._try_decide(book)
        if self.spec.transition(self.phase, Event.VOTE_RECEIVED) is not None:
            self._raise(Event.VOTE_RECEIVED)

    def _observe_certificate(self, book: _Height, cert: Certificate) -> None:
        """Count the (already verified) votes inside a certificate as if received directly."""
        vb = self._view_book(book, cert.view)
        if vb is None:
            return
        store = vb.prevotes if cert.kind is Kind.PREVOTE else vb.precommits
        for vote in cert.votes():
            prior = store.get(vote.signer)
            if prior is None:
                self._store_vote(book, vb, vote)
            elif prior.digest != vote.digest:
                self._found(prior, vote)
        if book.height == self.height and cert.kind is Kind.PREVOTE and cert.view == self.view:
            self._check_prevote_quorum()
        if cert.kind is Kind.PRECOMMIT and book.height <= self.height:
            self._try_decide(book)

    def _check_certificate(self, book: _Height, cert: Certificate, kind: Kind, view: int | None,
                           value_digest: bytes | None) -> bool:
        if (cert.kind is not kind or cert.height != book.height or cert.epoch != book.epoch
                or len(cert.digest) != _DIGEST):
            return False
        if view is not None and cert.view != view:
            return False
        if value_digest is not None and cert.digest != value_digest:
            return False
        signers = [s for s, _ in cert.signatures]
        if len(set(signers)) != len(signers):
            return False
        if not book.validators.is_quorum(book.validators.weight(signers)):
            return False
        memo = (self.config.chain_id, book.keyring, certificate_digest(cert))
        if self.verifier.bundle_known(memo):
            return True
        for vote in cert.votes():
            member = book.validators.get(vote.signer)
            if member is None or not self._verify(member.public_key, vote):
                return False
        self.verifier.remember_bundle(memo)
        return True

    def _check_commit(self, book: _Height, cert: Certificate | None, value: bytes) -> bool:
        if cert is None or _sha(value) != cert.digest:
            return False
        return self._check_certificate(book, cert, Kind.PRECOMMIT, None, None)

    # -- liveness ---------------------------------------------------------------------

    def _on_liveness(self, book: _Height, msg: Liveness, pubkey: bytes) -> None:
        if msg.view < 0 or msg.lock_view < NO_LOCK or msg.lock_view >= msg.view:
            self._reject("malformed")
            return
        vb = self._view_book(book, msg.view)
        if vb is None:
            self._out_of_window(book, msg, pubkey)
            return
        prior = vb.liveness.get(msg.signer)
        if self._duplicate_or_conflict(prior, msg, pubkey,
                                       prior is not None and prior.lock_view == msg.lock_view):
            return
        if not self._verify(pubkey, msg):
            self._reject("bad-signature")
            return
        if msg.lock_view >= 0:
            # The signature covers lock_digest, so a stripped or swapped proof fails here and
            # nothing is stored: the signer's real message is still accepted when it arrives.
            lock = msg.lock
            if lock is None or not msg.lock_matches() or len(
                    lock.value) > self.config.max_value_bytes or not (
                    self._check_certificate(book, lock.certificate, Kind.PREVOTE, msg.lock_view,
                                            _sha(lock.value))):
                self._reject("bad-lock-proof")
                return
            book.values[lock.certificate.digest] = lock.value
            self._observe_certificate(book, lock.certificate)
        elif msg.lock is not None:
            msg = msg.header()
        self._store_liveness(book, vb, msg)
        self._after_accept(book, msg)
        if book.height == self.height and msg.view == self.view:
            self._check_liveness_quorum()
            if self.spec.transition(self.phase, Event.LIVENESS_CHECK_RECEIVED) is not None:
                self._raise(Event.LIVENESS_CHECK_RECEIVED)

    def _store_liveness(self, book: _Height, vb: _View, msg: Liveness) -> None:
        vb.liveness[msg.signer] = msg

    # -- proposals --------------------------------------------------------------------

    def _on_proposal(self, book: _Height, p: Proposal, pubkey: bytes) -> None:
        if p.view < 0 or len(p.digest) != _DIGEST:
            self._reject("malformed")
            return
        if len(p.value) > self.config.max_value_bytes:
            self._reject("oversize")
            return
        if _sha(p.value) != p.digest:
            self._reject("bad-digest")
            return
        vb = self._view_book(book, p.view)
        if vb is None:
            self._out_of_window(book, p, pubkey)
            return
        prior = vb.signed_proposals.get(p.signer)
        if prior is not None and prior.signature == p.signature:
            self.stats.rejected["duplicate"] += 1
            return
        if book.leaders is not None and self.leader(book.height, p.view) != p.signer:
            self._reject("wrong-leader")
            return
        # The signature covers the value's digest and the attachments' digest: a copy a relay
        # stripped, swapped or replayed attachments in fails here, before anything is stored.
        if not self._verify(pubkey, p):
            self._reject("bad-signature")
            return
        if prior is not None and prior.digest != p.digest:
            self._found(prior, p)
            return
        if p.signer in vb.proposals:
            self.stats.rejected["duplicate"] += 1
            return
        if prior is None:
            vb.signed_proposals[p.signer] = p  # evidence is about signatures, justified or not
            if self.config.relay:
                self._out.append(Send(p, None))
        if p.view > 0 and not self._justified(book, p):
            # Kept out of ``proposals``: another copy the leader signed may still be justified.
            self._reject("bad-justification")
            return
        vb.proposals[p.signer] = p
        book.values[p.digest] = p.value
        self._after_accept(book, p)
        if book.height < self.height:
            return
        if p.view > 0 and book.height == self.height and p.view > self.view:
            # A justified proposal proves a quorum reached its view: catch up to it.
            self._jump(p.view)
        self._try_decide(book)
        if book.height == self.height and p.view == self.view:
            self._check_proposal()

    def _justified(self, book: _Height, p: Proposal) -> bool:
        """Rule 5: a quorum of liveness headers of p's view, and the highest lock honoured."""
        seen: set[NodeId] = set()
        highest = NO_LOCK
        for header in p.justification:
            if (header.epoch != p.epoch or header.height != p.height or header.view != p.view
                    or header.signer in seen or header.lock_view < NO_LOCK
                    or header.lock_view >= p.view):
                return False
            member = book.validators.get(header.signer)
            if member is None or not self._verify(member.public_key, header):
                return False
            seen.add(header.signer)
            highest = max(highest, header.lock_view)
        if not book.validators.is_quorum(book.validators.weight(seen)):
            return False
        if highest == NO_LOCK:
            return True
        cert = p.lock_certificate
        if cert is None or not self._check_certificate(book, cert, Kind.PREVOTE, highest,
                                                       p.digest):
            return False
        self._observe_certificate(book, cert)
        return True

    # -- aggregates (linear mode) -------------------------------------------------------

    def _on_aggregate(self, book: _Height, a: Aggregate, pubkey: bytes) -> None:
        cert = a.certificate
        if (a.view < 0 or cert.view != a.view or len(a.value) > self.config.max_value_bytes
                or cert.kind not in (Kind.PREVOTE, Kind.PRECOMMIT)):
            self._reject("malformed")
            return
        vb = self._view_book(book, a.view)
        if vb is None:
            self._out_of_window(book, a, pubkey)
            return
        if cert.kind in vb.aggregated:
            self.stats.rejected["duplicate"] += 1
            return
        if not self._verify(pubkey, a):
            self._reject("bad-signature")
            return
        if a.value and _sha(a.value) != cert.digest:
            self._reject("bad-digest")
            return
        if not self._check_certificate(book, cert, cert.kind, a.view, None):
            self._reject("bad-certificate")  # nothing stored: a valid copy still counts
            return
        vb.aggregated.add(cert.kind)
        vb.certs.setdefault(cert.kind, cert)
        if a.value:
            book.values[cert.digest] = a.value
        self._observe_certificate(book, cert)
        self._after_accept(book, a)

    # -- confirmations ----------------------------------------------------------------

    def _on_confirmation(self, book: _Height, c: Confirmation, pubkey: bytes) -> None:
        if len(c.digest) != _DIGEST or len(c.result) > 64:
            self._reject("malformed")
            return
        if len(c.value) > self.config.max_value_bytes or _sha(c.value) != c.digest:
            self._reject("bad-digest")  # the signed digest is what binds the value
            return
        prior = book.confirmations.get(c.signer)
        if self._duplicate_or_conflict(
                prior, c, pubkey,
                prior is not None and (prior.digest, prior.result) == (c.digest, c.result)):
            return
        if not self._verify(pubkey, c):
            self._reject("bad-signature")
            return
        book.confirmations[c.signer] = c
        self.stats.accepted["Confirmation"] += 1
        if self.config.relay:
            self._out.append(Send(c, None))
        if book.decision is not None:
            self._compare_confirmation(book, c)
        elif book.certified is None and self._check_commit(book, c.commit, c.value):
            assert c.commit is not None
            book.certified = (c.value, c.commit)
            book.values[c.digest] = c.value
            if book.height <= self.height:
                self._try_decide(book)
        if book.height > self.height + 1 or (book.height > self.height and self.view > 0):
            self._hint(c.signer)
        elif book.height == self.height and self.spec.transition(
                self.phase, Event.CONFIRMATION_RECEIVED) is not None:
            self._raise(Event.CONFIRMATION_RECEIVED)

    def _compare_confirmation(self, book: _Height, c: Confirmation) -> None:
        decision = book.decision
        assert decision is not None
        if c.digest != decision.digest:
            if c.commit is not None and self._check_commit(book, c.commit, c.value):
                self._fault(book.height, "conflicting-commit", c.signer,
                            "a peer holds a valid commit certificate for another value: "
                            "more than a third of the weight is byzantine")
            else:
                self._fault(book.height, "decision-mismatch", c.signer,
                            f"peer confirms {c.digest.hex()[:12]}, "
                            f"we finalized {decision.digest.hex()[:12]}")
            return
        mine = book.my_confirmation
        if mine is not None and mine.result and c.result and mine.result != c.result:
            self._fault(book.height, "result-mismatch", c.signer,
                        f"peer's result {c.result.hex()[:12]} != ours {mine.result.hex()[:12]}")

    def _fault(self, height: int, kind: str, peer: NodeId | None, detail: str) -> None:
        if any(f.height == height and f.kind == kind and f.peer == peer
               for f in self.faults[-64:]) and kind != "provider-failed":
            return
        note = FaultObserved(self._now, self.node_id, height, kind, peer, detail)
        self.faults.append(note)
        if len(self.faults) > self.config.evidence_limit:
            del self.faults[0]
        self._out.append(Notify(note))
        if kind != "provider-failed":
            self._trace(f"fault {kind} from {peer}: {detail}")

    # -- view synchronization ---------------------------------------------------------

    def _check_jump(self) -> None:
        """Join a higher view once more than a third of the weight is there (rule of f + 1)."""
        book = self._heights.get(self.height)
        if book is None or book.decision is not None:
            return
        higher = sorted({v for v in book.max_view.values() if v > self.view}, reverse=True)
        for target in higher:
            signers = [n for n, v in book.max_view.items() if v >= target]
            if book.validators.exceeds_faulty(book.validators.weight(signers)):
                self._jump(target)
                return

    def _jump(self, view: int) -> None:
        if view <= self.view or self.spec.transition(self.phase, Event.VIEW_CHANGE) is None:
            return
        self._trace(f"jumping to view {view}")
        self._set_view(view)
        self._raise(Event.VIEW_CHANGE)
