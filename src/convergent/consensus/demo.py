"""``convergent consensus demo``: real processes, real TCP on loopback, one byzantine node.

The parent process starts ``--nodes`` child processes (``python -m
convergent.consensus.demo --child``), each a ``ConsensusNode`` with a
``TcpTransport`` bound to an ephemeral port on 127.0.0.1. Children report
their port, the parent hands everyone the peer table, and then prints each
round as soon as every honest node has finalized it. After ``--rounds``
rounds it stops the children and checks that the honest nodes agree on every
round. The last ``--byzantine`` nodes run a byzantine strategy. Each node keeps
its signing guard in a file (``<state dir>/<node>.guard.json``, written and
fsync'd before any of its signatures is sent): a temporary directory removed at
the end, or ``--state-dir`` to keep them for inspection (it must not hold guard
files already: the demo starts a new chain at height 0, which validators that
remember signing later heights would rightly refuse to rejoin).

Exit status: 0 all rounds finalized and agreed, 1 disagreement or timeout,
2 bad arguments.

Example::

    python -m convergent.consensus.demo --nodes 4 --byzantine 1 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .byzantine import STRATEGIES, AdversaryContext, FilteredTransport, make_strategy
from .core import ConsensusCore, CoreConfig
from .crypto import KeyPair
from .effects import CertifiedValue, Decision, EvidenceFound, FaultObserved, Finalized
from .applies import FileApplyLog
from .guard import FileSafetyStore
from .machine import MachineSpec
from .net import TcpTransport
from .leaders import proposer_schedule
from .providers import JsonCodec, Providers
from .runtime import ConsensusNode
from .validators import EpochSchedule, Validator, ValidatorSet

__all__ = ["DEMO_SPEC", "DemoApp", "check_args", "main"]

DEMO_SPEC = MachineSpec.default().with_timeouts(
    starting=0.05, loading=5.0, collecting=0.5, liveness_check=1.0, proving=2.0,
    publishing=0.5, voting=1.0, finalizing=1.0, verifying=0.5, stopping=2.0)
"""The reference machine with timeouts for a loopback network."""


class DemoApp:
    """A replicated log of JSON batches; its state root is the confirmation result."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.root = hashlib.sha256(b"genesis").digest()

    async def synchronize(self, height: int) -> Sequence[CertifiedValue]:
        return ()

    async def collect(self, height: int, view: int) -> list[str]:
        return [f"{self.node_id}/tx-{height}-{view}"]

    async def next_leaders(self, height: int, validators: ValidatorSet) -> Sequence[str]:
        return proposer_schedule(height, validators)

    async def prove_next_state(self, height: int, view: int, collected: Any,
                               prior: Any) -> dict[str, Any]:
        return {"height": height, "view": view, "proposer": self.node_id,
                "txs": list(collected or [])}

    async def decide_vote(self, height: int, view: int, value: Any) -> bool:
        return isinstance(value, dict) and value.get("height") == height

    async def finalize_votes(self, decision: Decision[Any]) -> bytes:
        self.root = hashlib.sha256(self.root + decision.raw).digest()
        return self.root


# ------------------------------------------------------------------ child process

def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _child(timeout: float) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    cfg = json.loads(await reader.readline())
    keys = KeyPair.from_private_bytes(cfg["node_id"], bytes.fromhex(cfg["private_key"]))
    vset = ValidatorSet(0, tuple(Validator(i, bytes.fromhex(k)) for i, k in cfg["validators"]))
    core: ConsensusCore[Any] = ConsensusCore(
        keys, EpochSchedule.single(vset), spec=DEMO_SPEC, codec=JsonCodec(),
        config=CoreConfig(chain_id=cfg["chain_id"], relay=True))
    app = DemoApp(keys.node_id)
    providers: Providers[Any, Any] = Providers(app, app, app, app)
    tcp = TcpTransport(keys.node_id, keys=keys,
                       peer_keys={v.node_id: v.public_key for v in vset.validators})
    port = await tcp.start()
    _say(f"PORT {port}")
    peers = json.loads(await reader.readline())["peers"]
    tcp.set_peers({p: ("127.0.0.1", int(q)) for p, q in peers.items()})
    transport: Any = tcp
    strategy = None
    if cfg.get("strategy"):
        others = [i for i in vset.ids if i != keys.node_id]
        ctx = AdversaryContext(keys, cfg["chain_id"], tuple(cfg["honest"]),
                               tuple(cfg["byzantine"]), random.Random(cfg["seed"]),
                               sybils=(KeyPair.from_seed("sybil-0", cfg["seed"]),))
        strategy = make_strategy(cfg["strategy"], ctx)
        transport = FilteredTransport(tcp, strategy, others)

    def report(note: Any) -> None:
        if isinstance(note, Finalized):
            d = note.decision
            value = json.dumps(d.value, sort_keys=True, separators=(",", ":"))
            _say(f"FINALIZED {d.height} {d.view} {d.digest.hex()} {value}")
        elif isinstance(note, EvidenceFound):
            e = note.evidence
            _say(f"EVIDENCE {e.validator} {e.kind.name} {e.height} {e.view}")
        elif isinstance(note, FaultObserved) and note.kind != "provider-failed":
            _say(f"FAULT {note.kind} {note.peer} {note.height}")

    node: ConsensusNode[Any, Any] = ConsensusNode(
        core, providers, transport, listeners=[report],
        guard=FileSafetyStore(cfg["guard_file"]) if cfg.get("guard_file") else None,
        apply_log=FileApplyLog(cfg["apply_file"]) if cfg.get("apply_file") else None)

    def on_message(message: Any, peer: str) -> None:
        if strategy is not None:
            strategy.incoming(message)
            for msg, dst in strategy.react(message):
                tcp.send(msg, dst)
        node.deliver(message, peer)

    tcp.on_message = on_message
    await node.start()
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
        del line  # "STOP", or end of input when the parent is gone
    except TimeoutError:
        pass
    await node.stop(timeout=2.0)
    await tcp.close()
    stats = {"rejected": dict(core.stats.rejected), "evidence": len(core.evidence),
             "height": core.height, "refused": dict(core.stats.refused)}
    _say(f"STOPPED {json.dumps(stats, sort_keys=True)}")
    return 0


# ------------------------------------------------------------------ parent process

class _Child:
    def __init__(self, node_id: str, proc: asyncio.subprocess.Process, byzantine: bool) -> None:
        self.node_id = node_id
        self.proc = proc
        self.byzantine = byzantine
        self.port: int | None = None
        self.decisions: dict[int, tuple[str, int, str]] = {}
        self.evidence: set[tuple[str, str, int, int]] = set()
        self.faults = 0
        self.stats: dict[str, Any] = {}

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        with contextlib.suppress(BrokenPipeError, ConnectionError):
            await self.proc.stdin.drain()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


async def _parent(args: argparse.Namespace) -> int:
    n, b = args.nodes, args.byzantine
    ids = [f"n{i:02d}" for i in range(n)]
    keys = [KeyPair.from_seed(i, f"demo-{args.seed}") for i in ids]
    byz = ids[n - b:] if b else []
    honest = [i for i in ids if i not in byz]
    f = (n - 1) // 3
    print(f"consensus demo: {n} nodes on 127.0.0.1, quorum {2 * n // 3 + 1}, tolerates {f} "
          f"byzantine; byzantine: {', '.join(byz) or 'none'}"
          f"{f' ({args.strategy})' if byz else ''}; {args.rounds} rounds", flush=True)
    children: list[_Child] = []
    started = time.monotonic()
    temp = None
    if args.state_dir:
        state_dir = Path(args.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
    else:
        temp = tempfile.TemporaryDirectory(prefix="consensus-demo-")
        state_dir = Path(temp.name)
    for node_id in ids:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "convergent.consensus.demo", "--child",
            "--timeout", str(args.timeout + 10),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=_child_env())
        children.append(_Child(node_id, proc, node_id in byz))
    validators = [[k.node_id, k.public_key.hex()] for k in keys]
    for child, key in zip(children, keys, strict=True):
        cfg = {"node_id": key.node_id, "private_key": key.private_bytes().hex(),
               "validators": validators, "chain_id": f"demo-{args.seed}",
               "strategy": args.strategy if child.byzantine else None,
               "honest": honest, "byzantine": byz, "seed": args.seed,
               "guard_file": str(state_dir / f"{key.node_id}.guard.json"),
               "apply_file": str(state_dir / f"{key.node_id}.applies.json")}
        await child.send(json.dumps(cfg))
    status = 1
    try:
        status = await asyncio.wait_for(_supervise(args, children, honest), args.timeout)
    except TimeoutError:
        print(f"timeout: not every honest node finalized {args.rounds} rounds "
              f"in {args.timeout} s", flush=True)
        status = 1
    finally:
        for child in children:
            await child.send("STOP")
        for child in children:
            await _finish(child)
        if temp is not None:
            temp.cleanup()
    elapsed = time.monotonic() - started
    if status == 0:
        evidence = {e for c in children if not c.byzantine for e in c.evidence}
        against = sorted({e[0] for e in evidence})
        print(f"summary: {args.rounds} rounds finalized in {elapsed:.1f} s; the "
              f"{len(honest)} honest nodes agree on every round; "
              f"{len(evidence)} equivocations proven against {', '.join(against) or 'nobody'}",
              flush=True)
    return status


async def _supervise(args: argparse.Namespace, children: list[_Child],
                     honest: list[str]) -> int:
    for child in children:
        assert child.proc.stdout is not None
        line = (await child.proc.stdout.readline()).decode().strip()
        if not line.startswith("PORT "):
            err = b""
            if child.proc.stderr is not None:
                err = await child.proc.stderr.read()
            print(f"{child.node_id} failed to start: {line!r} {err.decode()[-2000:]}")
            return 1
        child.port = int(line.split()[1])
    peers = {c.node_id: c.port for c in children}
    print("ports: " + ", ".join(f"{c.node_id}={c.port}" for c in children), flush=True)
    for child in children:
        await child.send(json.dumps({"peers": peers}))
    done = asyncio.Event()
    printed = [0]
    disagreement = [False]

    def check() -> None:
        honest_children = [c for c in children if not c.byzantine]
        while printed[0] < args.rounds and all(printed[0] in c.decisions
                                               for c in honest_children):
            h = printed[0]
            digests = {c.decisions[h][0] for c in honest_children}
            views = sorted({c.decisions[h][1] for c in honest_children})
            value = honest_children[0].decisions[h][2]
            if len(digests) != 1:
                disagreement[0] = True
                print(f"round {h}: HONEST NODES DISAGREE: {digests}", flush=True)
            else:
                proven = {e for c in honest_children for e in c.evidence}
                print(f"round {h} finalized by all {len(honest_children)} honest nodes "
                      f"(view {','.join(map(str, views))}): {value} "
                      f"[{next(iter(digests))[:12]}]; equivocations proven so far: "
                      f"{len(proven)}", flush=True)
            printed[0] += 1
        if printed[0] >= args.rounds:
            done.set()

    async def pump(child: _Child) -> None:
        assert child.proc.stdout is not None
        while True:
            raw = await child.proc.stdout.readline()
            if not raw:
                return
            parts = raw.decode().strip().split(" ", 4)
            if parts[0] == "FINALIZED" and len(parts) == 5:
                child.decisions[int(parts[1])] = (parts[3], int(parts[2]), parts[4])
                if args.verbose:
                    print(f"  [{child.node_id}] finalized height {parts[1]} in view {parts[2]}",
                          flush=True)
                check()
            elif parts[0] == "EVIDENCE" and len(parts) == 5:
                key = (parts[1], parts[2], int(parts[3]), int(parts[4]))
                if key not in child.evidence and not child.byzantine and args.verbose:
                    print(f"  [{child.node_id}] evidence: {parts[1]} equivocated "
                          f"({parts[2]} at height {parts[3]}, view {parts[4]})", flush=True)
                child.evidence.add(key)
            elif parts[0] == "FAULT":
                child.faults += 1
            elif parts[0] == "STOPPED":
                child.stats = json.loads(raw.decode().split(" ", 1)[1])
                return

    pumps = [asyncio.create_task(pump(c)) for c in children]
    await done.wait()
    del pumps  # they end when the children exit
    return 1 if disagreement[0] else 0


async def _finish(child: _Child) -> None:
    try:
        await asyncio.wait_for(child.proc.wait(), 10)
    except TimeoutError:
        child.proc.kill()
        await child.proc.wait()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convergent consensus demo",
        description="Run a BFT consensus network of local processes over TCP on 127.0.0.1.")
    p.add_argument("--nodes", type=int, default=4, help="number of validators (default 4)")
    p.add_argument("--byzantine", type=int, default=1,
                   help="how many of them are byzantine (default 1; the last ones)")
    p.add_argument("--strategy", default="equivocate", choices=sorted(STRATEGIES),
                   help="what the byzantine nodes do (default equivocate)")
    p.add_argument("--rounds", type=int, default=5, help="rounds to finalize (default 5)")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after (s, default 60)")
    p.add_argument("--seed", type=int, default=1, help="key and strategy seed (default 1)")
    p.add_argument("--verbose", action="store_true", help="print every node's decisions")
    p.add_argument("--state-dir", default=None,
                   help="keep each node's signing-guard file here (default: a temporary "
                        "directory, removed at the end)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p


def check_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the parent's options; any error means exit status 2.

    ``--nodes`` below 1 is the only error reported then: every other count is
    meaningless without nodes. More byzantine nodes than ``n`` tolerates is allowed
    (the demo can show what happens past the bound) but warned about.
    """
    if args.nodes < 1:
        return [f"--nodes={args.nodes} (expected >= 1: a network needs at least one "
                "validator)"], []
    problems: list[str] = []
    if not 0 <= args.byzantine <= args.nodes - 1:
        problems.append(f"--byzantine={args.byzantine} (expected 0..{args.nodes - 1}: at least "
                        "one honest node)")
    if args.rounds < 1:
        problems.append(f"--rounds={args.rounds} (expected >= 1)")
    if args.timeout <= 0:
        problems.append(f"--timeout={args.timeout} (expected > 0)")
    if args.state_dir and Path(args.state_dir).is_dir() and any(
            p for pattern in ("*.guard.json", "*.applies.json")
            for p in Path(args.state_dir).glob(pattern)):
        problems.append(f"--state-dir={args.state_dir} already holds signing-guard or apply "
                        "log files (use an empty directory)")
    warnings: list[str] = []
    tolerated = (args.nodes - 1) // 3
    if not problems and args.byzantine > tolerated:
        warnings.append(
            f"--byzantine={args.byzantine} is more than the {tolerated} byzantine "
            f"node{'' if tolerated == 1 else 's'} {args.nodes} validators tolerate (f < n/3): "
            "agreement and progress are no longer guaranteed; the honest nodes may disagree "
            "(exit 1) or stall until --timeout")
    return problems, warnings


def main(argv: list[str]) -> int:
    """Entry point for ``convergent consensus demo`` and ``python -m convergent.consensus.demo``."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    if args.child:
        return asyncio.run(_child(args.timeout))
    problems, warnings = check_args(args)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if problems:
        return 2
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    return asyncio.run(_parent(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
