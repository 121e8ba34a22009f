"""``convergent replica run|status`` and ``convergent emit``.

The main CLI calls ``register(subparsers)``. Each command loads the machine
(a spec file or ``module:registry``), then calls the library; errors are
``ConvergentError`` and become exit code 2 in ``convergent.cli.main``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from ..errors import ConvergenceError, ConvergentError
from .errors import ReplicaError, TransportError

__all__ = ["load_machine", "register"]

DEFAULT_NATS = "nats://127.0.0.1:4222"


def load_machine(target: str) -> Any:
    """Build the verified machine named by ``target`` (a spec file, or
    ``module:attr`` naming a Registry or a MachineSpec)."""
    from ..cli import _load_target
    from ..engine.check import analyze
    from ..machine import Machine
    from ..spec.registry import Registry
    obj = _load_target(target)
    if isinstance(obj, Registry):
        return obj.build()
    an = analyze(obj)
    if not an.report.ok:
        raise ConvergenceError(an.report)
    return Machine._from_analysis(an)


def _need_nats() -> None:
    try:
        import nats  # noqa: F401
    except ImportError:
        raise ConvergentError("this command needs nats-py: pip install 'convergent[replica]' "
                              "(or pip install nats-py)") from None


def _peers(text: str | None) -> list[str] | None:
    return None if not text else [p.strip() for p in text.split(",") if p.strip()]


def _retired(text: str | None) -> dict[str, int]:
    """``--retire r4:120,r5:7`` -> ``{"r4": 120, "r5": 7}``."""
    out: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        peer, _, final = item.strip().rpartition(":")
        if not peer or not final.isdigit():
            raise ReplicaError(f"--retire {item!r} (expected ID:FINAL_SEQ, e.g. r4:120)")
        out[peer] = int(final)
    return out


def _nats_auth(args: argparse.Namespace) -> dict[str, Any]:
    """The NATS connection options of the command line (secrets may come from
    the environment instead: CONVERGENT_NATS_PASSWORD, CONVERGENT_NATS_TOKEN)."""
    from .transports.nats import tls_context
    opts: dict[str, Any] = {}
    password = getattr(args, "nats_password", None) or os.environ.get("CONVERGENT_NATS_PASSWORD")
    token = getattr(args, "nats_token", None) or os.environ.get("CONVERGENT_NATS_TOKEN")
    for name, value in (("user", getattr(args, "nats_user", None)), ("password", password),
                        ("token", token), ("nkeys_seed", getattr(args, "nats_nkeys_seed", None)),
                        ("user_credentials", getattr(args, "nats_creds", None))):
        if value:
            opts[name] = value
    ca, cert, pkey = (getattr(args, n, None) for n in ("tls_ca", "tls_cert", "tls_key"))
    if ca or cert:
        try:
            opts["tls"] = tls_context(ca_file=ca, cert_file=cert, key_file=pkey)
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot load the TLS files: {exc}") from None
    return opts


def _add_nats_auth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nats-user", help="NATS user (with --nats-password)")
    p.add_argument("--nats-password", help="NATS password (or CONVERGENT_NATS_PASSWORD)")
    p.add_argument("--nats-token", help="NATS token (or CONVERGENT_NATS_TOKEN)")
    p.add_argument("--nats-nkeys-seed", metavar="FILE", help="NATS nkey seed file")
    p.add_argument("--nats-creds", metavar="FILE", help="NATS user credentials (JWT) file")
    p.add_argument("--tls-ca", metavar="FILE", help="CA bundle to verify the NATS server")
    p.add_argument("--tls-cert", metavar="FILE", help="client certificate (mutual TLS)")
    p.add_argument("--tls-key", metavar="FILE", help="client certificate's private key")


# ---------------------------------------------------------------- replica run

def cmd_run(args: argparse.Namespace) -> int:
    _need_nats()
    machine = load_machine(args.spec)
    return asyncio.run(_run(machine, args))


async def _run(machine: Any, args: argparse.Namespace) -> int:
    from .replica import Replica
    from .service import ReplicaService
    from .transports.nats import NatsTransport
    from .envelope import Limits
    from .signing import Keyring
    store = args.store or f"sqlite:///{args.id}.db"
    keys = None
    if args.keys:
        keys = Keyring.load(args.keys)
        if keys.replica != args.id:
            raise ReplicaError(f"--keys {args.keys} holds the key of {keys.replica!r}, not of "
                               f"--id {args.id!r}")
    limits = Limits(max_drift_ms=int(args.max_drift * 1000),
                    max_meta_bytes=args.max_meta_bytes,
                    max_message_bytes=args.max_message_bytes)
    transport = NatsTransport(args.nats, sync_interval=args.sync_interval,
                              connect_timeout=args.connect_timeout, keys=keys,
                              **_nats_auth(args))
    replica = Replica(machine, id=args.id, store=store, transport=transport,
                      peers=_peers(args.peers), autoflush=False, limits=limits,
                      retired=_retired(args.retire))
    service = ReplicaService(replica, transport, flush_interval=args.flush_interval,
                             compact_interval=args.compact_interval,
                             status_file=args.status_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not POSIX
            pass
    try:
        await service.start()
    except TransportError as exc:
        replica.close()
        raise TransportError(f"replica {args.id}: {exc}") from None
    except BaseException:
        replica.close()
        raise
    print(f"replica {args.id} of {machine.name} running: store {store}, nats {args.nats}, "
          f"{replica.accepted} events loaded", file=sys.stderr, flush=True)
    tasks: list[asyncio.Task[Any]] = []
    if args.generate:
        tasks.append(asyncio.create_task(service.generate(args.generate, rate=args.rate,
                                                          seed=args.seed)))
    if args.until_accepted:
        async def watch() -> None:
            while True:
                await asyncio.sleep(0.05)
                r = replica
                if (r.accepted >= args.until_accepted and not r.pending
                        and transport.outbox == 0 and not r._unflushed
                        and (r.peers is None or r.peers_have_mine())):
                    stop.set()
                    return
        tasks.append(asyncio.create_task(watch()))
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await service.aclose()
    final = replica.status()
    final["generated"] = service.generated
    print(json.dumps(final), flush=True)
    return 0


# ---------------------------------------------------------------- replica status

def cmd_status(args: argparse.Namespace) -> int:
    machine = load_machine(args.spec)
    if args.store:
        from .replica import Replica
        from .stores import open_store
        replica = Replica(machine, id=args.id, store=open_store(args.store, readonly=True))
        try:
            status = replica.status()
            status["pending"] = None  # only a running replica knows its buffer
            status["source"] = args.store
        finally:
            replica.close()
    else:
        _need_nats()
        status = asyncio.run(_request(args.nats or DEFAULT_NATS, f"cv.{machine.name}.status."
                                      f"{args.id}", {}, args.timeout, _nats_auth(args)))
        status["source"] = args.nats or DEFAULT_NATS
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(_render_status(status))
    return 0


def _render_status(s: dict[str, Any]) -> str:
    state = " ".join(f"{k}={v!r}" for k, v in s["state"].items())
    pending = "unknown (not running)" if s.get("pending") is None else s["pending"]
    version = " ".join(f"{k}={v}" for k, v in sorted(s.get("version", {}).items())) or "-"
    st = s.get("stats", {})
    lines = [
        f"replica {s['replica']} of {s['machine']} (policy {s['policy'][:12]}) from "
        f"{s.get('source')}",
        f"state:    {state}",
        f"digest:   {s['digest']}",
        f"log:      {s['log']} events ({s['accepted']} accepted, horizon {s['horizon']})",
        f"pending:  {pending}",
        f"version:  {version}",
        f"repairs:  {st.get('repairs', 0)} ({st.get('replayed', 0)} replayed), duplicates "
        f"{st.get('duplicates', 0)}, commuted {st.get('commuted', 0)}",
    ]
    t = s.get("transport")
    if t:
        lines.append(f"nats:     {'connected' if t['connected'] else 'DISCONNECTED'}, outbox "
                     f"{t['outbox']}, published {t['published']}")
    return "\n".join(lines)


async def _request(url: str, subject: str, body: dict[str, Any], timeout: float,
                   auth: dict[str, Any] | None = None) -> Any:
    import nats
    import nats.errors
    try:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0,
                                allow_reconnect=False, **(auth or {}))
    except Exception as exc:
        raise TransportError(f"cannot connect to NATS at {url}: {exc!r}") from None
    try:
        msg = await nc.request(subject, json.dumps(body).encode(), timeout=timeout)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        raise TransportError(f"no replica answered on {subject} (is it running, with this "
                             "spec and --id?)") from None
    finally:
        await nc.close()
    return json.loads(msg.data)


# ---------------------------------------------------------------- keygen

def cmd_keygen(args: argparse.Namespace) -> int:
    from .signing import Keyring
    if os.path.exists(args.out):
        raise ReplicaError(f"{args.out} exists: a key file is never overwritten")
    peers = {}
    for item in args.peer:
        peer, sep, key = item.partition("=")
        if not sep:
            raise ReplicaError(f"--peer {item!r} (expected ID=PUBLIC_KEY)")
        peers[peer] = key
    keys = Keyring.generate(args.id).with_peers(peers)
    keys.save(args.out)
    print(f"{args.id} {keys.public_key}")
    return 0


# ---------------------------------------------------------------- emit

def cmd_emit(args: argparse.Namespace) -> int:
    machine = load_machine(args.spec)
    meta = None
    if args.meta:
        try:
            meta = json.loads(args.meta)
        except ValueError as exc:
            raise ConvergentError(f"--meta is not JSON: {exc}") from None
    if args.store:
        from .replica import Replica
        with Replica(machine, id=args.id, store=args.store) as replica:
            env = replica.emit(args.event, meta)
            reply = {"ok": True, "id": env.id, "hlc": env.hlc,
                     "state": machine.decode(replica.state)}
    else:
        _need_nats()
        reply = asyncio.run(_request(args.nats or DEFAULT_NATS,
                                     f"cv.{machine.name}.emit.{args.id}",
                                     {"event": args.event, "meta": meta}, args.timeout,
                                     _nats_auth(args)))
        if not reply.get("ok"):
            raise ReplicaError(f"replica {args.id} refused: {reply.get('error')}")
    print(json.dumps(reply) if args.json else
          f"{reply['id']} {args.event} -> " +
          " ".join(f"{k}={v!r}" for k, v in reply["state"].items()))
    return 0


# ---------------------------------------------------------------- parser

def register(subparsers: Any) -> None:
    """Add ``replica`` (``run``, ``status``) and ``emit`` to the main CLI."""
    rp = subparsers.add_parser(
        "replica", help="run a replica over NATS, or show one's status",
        description="Run a replica of a verified machine, or show its status. Example: "
                    "convergent replica run examples/bank_account.py:registry --id r1 "
                    "--store sqlite:///r1.db --nats nats://127.0.0.1:4222")
    rsub = rp.add_subparsers(dest="replica_command", metavar="SUBCOMMAND")
    rp.set_defaults(func=lambda a: (rp.print_help(), 2)[1])

    run = rsub.add_parser(
        "run", help="run a replica until SIGINT/SIGTERM",
        description="Run a replica: load its log from --store, exchange events over NATS "
                    "JetStream (anti-entropy on every reconnect), commit in groups, answer "
                    "'status' and 'emit' requests. Prints the final status as JSON on exit. "
                    "Example: convergent replica run examples/bank_account.yaml --id r1 --store "
                    "sqlite:///r1.db --nats nats://127.0.0.1:4222 --peers r1,r2,r3")
    run.add_argument("spec", help="a spec file, or package.module:attr naming a Registry")
    run.add_argument("--id", required=True, help="this replica's id (unique, never reused)")
    run.add_argument("--store", help="store URL (default sqlite:///<id>.db)")
    run.add_argument("--nats", default=DEFAULT_NATS, help=f"NATS URL (default {DEFAULT_NATS})")
    run.add_argument("--peers", help="comma-separated ids of every replica that may emit "
                                     "(enables --compact-interval)")
    run.add_argument("--flush-interval", type=float, default=0.02,
                     help="seconds between group commits (default 0.02)")
    run.add_argument("--sync-interval", type=float, default=2.0,
                     help="seconds between anti-entropy rounds (default 2)")
    run.add_argument("--compact-interval", type=float, default=None,
                     help="seconds between compactions (needs --peers)")
    run.add_argument("--connect-timeout", type=float, default=10.0,
                     help="give up when no NATS server answers for this long (default 10)")
    run.add_argument("--status-file", help="rewrite this file with the status JSON twice a "
                                           "second")
    run.add_argument("--generate", type=int, default=0, metavar="N",
                     help="emit N random events (load for demos and tests)")
    run.add_argument("--rate", type=float, default=1000.0, help="events/s for --generate")
    run.add_argument("--seed", type=int, default=0, help="seed for --generate")
    run.add_argument("--keys", metavar="FILE",
                     help="this replica's key file (convergent replica keygen): sign every "
                          "message, accept only those of the peers it lists")
    run.add_argument("--retire", metavar="ID:SEQ,...",
                     help="replicas removed for good, with their final event number "
                          "(docs/replicas.md, Membership)")
    run.add_argument("--max-drift", type=float, default=300.0, metavar="SECONDS",
                     help="refuse (for now) events whose clock is further ahead (default 300)")
    run.add_argument("--max-meta-bytes", type=int, default=16_384,
                     help="largest meta of one event, JSON bytes (default 16384)")
    run.add_argument("--max-message-bytes", type=int, default=64 * 1024 * 1024,
                     help="largest wire message accepted (default 64 MiB)")
    _add_nats_auth(run)
    run.add_argument("--until-accepted", type=int, default=0, metavar="N",
                     help="exit once N events are accepted, committed and published (and, "
                          "with --peers, every peer reported having this replica's events)")
    run.set_defaults(func=cmd_run)

    st = rsub.add_parser(
        "status", help="state, log length and pending buffer of a replica",
        description="Ask a running replica over NATS (default), or read a stopped one's "
                    "store with --store. Example: convergent replica status examples/bank_account.yaml --id r1 "
                    "--nats nats://127.0.0.1:4222")
    st.add_argument("spec", help="a spec file, or package.module:attr naming a Registry")
    st.add_argument("--id", required=True, help="the replica's id")
    st.add_argument("--nats", help=f"ask the running replica (default {DEFAULT_NATS})")
    st.add_argument("--store", help="read this store instead (no pending buffer)")
    st.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a reply")
    st.add_argument("--json", action="store_true", help="print JSON")
    _add_nats_auth(st)
    st.set_defaults(func=cmd_status)

    kg = rsub.add_parser(
        "keygen", help="make a replica's signing key file",
        description="Write a new ed25519 key file for a replica (mode 600) and print its "
                    "public key, to list under 'peers' in the other replicas' key files. "
                    "Example: convergent replica keygen --id r1 --out r1.keys.json --peer "
                    "r2=<base64> --peer r3=<base64>")
    kg.add_argument("--id", required=True, help="the replica's id")
    kg.add_argument("--out", required=True, help="the key file to write (refuses to overwrite)")
    kg.add_argument("--peer", action="append", default=[], metavar="ID=PUBLIC_KEY",
                    help="a peer's public key to accept (repeat)")
    kg.set_defaults(func=cmd_keygen)

    em = subparsers.add_parser(
        "emit", help="emit an event at a replica",
        description="Emit an event at a running replica over NATS (default), or append it "
                    "to a stopped replica's store with --store (it is sent when the replica "
                    "runs again). Example: convergent emit examples/bank_account.yaml deposit --id r1 --meta "
                    "'{\"by\": \"alice\"}'")
    em.add_argument("spec", help="a spec file, or package.module:attr naming a Registry")
    em.add_argument("event", help="the event name")
    em.add_argument("--id", required=True, help="the replica that issues the event")
    em.add_argument("--meta", help="a JSON object carried with the event")
    em.add_argument("--nats", help=f"send to the running replica (default {DEFAULT_NATS})")
    em.add_argument("--store", help="append to this store instead (replica not running)")
    em.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a reply")
    em.add_argument("--json", action="store_true", help="print the reply as JSON")
    _add_nats_auth(em)
    em.set_defaults(func=cmd_emit)
