"""The runtime's CLI without a server, and its public names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import convergent.runtime as runtime

ROOT = Path(__file__).resolve().parents[2]
SPEC = "tests/runtime/machines.py:account"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convergent", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_offline_emit_then_status_from_the_store(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/r1.db"
    for k, ev in enumerate(["deposit", "freeze", "deposit"], 1):
        p = cli("emit", SPEC, ev, "--id", "r1", "--store", store, "--meta", '{"k": 1}')
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"r1:{k} {ev} -> balance=")
    p = cli("replica", "status", SPEC, "--id", "r1", "--store", store, "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert st["accepted"] == 3 and st["pending"] is None
    assert st["state"] == {"balance": 6, "frozen": True, "hits": 0}


@pytest.mark.parametrize("args, message", [
    (["replica", "status", SPEC, "--id", "r1", "--store", "sqlite:///nowhere/x.db"],
     "no such database"),
    (["emit", SPEC, "deposit", "--id", "r1", "--store", "sqlite:///{tmp}/a.db", "--meta", "{"],
     "--meta is not JSON"),
    (["emit", SPEC, "fly", "--id", "r1", "--store", "sqlite:///{tmp}/a.db"],
     "unknown event 'fly'"),
    (["emit", SPEC, "deposit", "--id", "a:b", "--store", "sqlite:///{tmp}/a.db"], "id='a:b'"),
    (["emit", "examples/gsm_order.yaml", "ship_item", "--id", "r1", "--store",
      "sqlite:///{tmp}/a.db"], "fail"),
    (["emit", SPEC, "deposit", "--id", "r1", "--store", "mysql://x"], "expected memory://"),
])
def test_bad_input_exits_2_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    p = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert p.returncode == 2 and message in p.stderr, p.stderr


def test_every_runtime_command_has_help_with_an_example() -> None:
    for args in (["replica"], ["replica", "run"], ["replica", "status"], ["replica", "keygen"],
                 ["emit"]):
        p = cli(*args, "--help")
        assert p.returncode == 0 and "Example:" in " ".join(p.stdout.split()), args


def test_exported_names_are_pinned() -> None:
    assert runtime.__all__ == sorted(runtime.__all__)
    assert runtime.__all__ == [
        "BackpressureError", "Change", "Envelope", "Envelopes", "Explanation", "HybridClock",
        "Keyring",
        "Limits", "MemoryStore", "NatsTransport", "PolicyMismatchError", "PostgresStore",
        "ProtocolError", "Repair", "Replica", "ReplicaError", "ReplicaService", "ReplicaStats",
        "SQLiteStore", "SignatureError", "SimNetwork", "SimTransport", "Snapshot", "Step",
        "Store", "StoreError", "SyncReport", "Transport", "TransportError", "decode_batch",
        "encode_batch", "open_store",
    ]
    for name in runtime.__all__:
        if name in ("NatsTransport", "ReplicaService") and not _has("nats"):
            continue
        if name == "PostgresStore" and not _has("psycopg"):
            continue
        assert getattr(runtime, name) is not None
    with pytest.raises(AttributeError):
        runtime.Nope  # noqa: B018


def test_keygen_writes_a_private_key_file_and_prints_the_public_key(tmp_path: Path) -> None:
    out = tmp_path / "r1.keys.json"
    other = runtime.Keyring.generate("r2")
    p = cli("replica", "keygen", "--id", "r1", "--out", str(out), "--peer",
            f"r2={other.public_key}")
    assert p.returncode == 0, p.stderr
    rid, public = p.stdout.split()
    keys = runtime.Keyring.load(out)
    assert rid == "r1" and keys.public_key == public and set(keys.peers) == {"r1", "r2"}
    assert out.stat().st_mode & 0o777 == 0o600
    assert other.with_peers({"r1": public}).open(keys.seal(b"x")) == ("r1", b"x")
    again = cli("replica", "keygen", "--id", "r1", "--out", str(out))
    assert again.returncode == 2 and "never overwritten" in again.stderr


def test_errors_descend_from_convergent_error() -> None:
    from convergent.errors import ConvergentError
    for name in ("PolicyMismatchError", "ProtocolError", "ReplicaError", "StoreError",
                 "TransportError"):
        assert issubclass(getattr(runtime, name), ConvergentError)
    assert issubclass(runtime.ProtocolError, ValueError)


def _has(mod: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(mod) is not None


def test_the_example_service_converges_through_a_partition() -> None:
    p = subprocess.run([sys.executable, "examples/replica_service.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "converged: {'balance': 15, 'hold': True, 'statements': 1}" in p.stdout
    assert "repair at r1: r2:1 sorted before r1:2" in p.stdout
