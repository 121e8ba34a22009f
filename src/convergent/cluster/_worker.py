"""What runs on a Dask worker: rebuild the machine from the shipped spec
(once per spec and worker process) and run one shard task.

The spec travels as cloudpickle bytes with every task, keyed by their
SHA-256: a worker that joins late, or replaces one that died, needs nothing
but the task itself. A worker keeps the last few machines it built (each is
a few rule tables and the normalizer: small), so a check's tasks compile
once per worker, not once per task.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from typing import Any

from ..engine.shard import ShardContext, ShardError, Task, run_task

__all__ = ["MAX_SPEC_BYTES", "run_remote", "spec_token"]

#: a spec larger than this is refused before unpickling (a bound on input)
MAX_SPEC_BYTES = 64 << 20
_KEEP = 4

# per worker process: a bounded cache, guarded for threaded workers
_lock = threading.Lock()
_contexts: OrderedDict[str, ShardContext] = OrderedDict()


def spec_token(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _context(token: str, blob: bytes) -> ShardContext:
    with _lock:
        got = _contexts.get(token)
        if got is not None:
            _contexts.move_to_end(token)
            return got
    if not isinstance(blob, bytes) or len(blob) > MAX_SPEC_BYTES:
        raise ShardError("the shipped spec is not bytes, or larger than "
                         f"{MAX_SPEC_BYTES} bytes")
    if spec_token(blob) != token:
        raise ShardError("the shipped spec does not match its token (corrupted in transit)")
    spec = pickle.loads(blob)  # the client's own object: a Dask cluster trusts its clients
    ctx = ShardContext.from_spec(spec)
    with _lock:
        _contexts[token] = ctx
        while len(_contexts) > _KEEP:
            _contexts.popitem(last=False)
    return ctx


def run_remote(token: str, blob: bytes, task: Task) -> Any:
    """One shard task on this worker."""
    return run_task(_context(token, blob), task)
