"""The live replicas board: status files read as untrusted input, and the
convergence verdict per machine."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")

from convergent.web.replicas import MAX_BYTES, STALE_SECONDS, ReplicaBoard  # noqa: E402


def _status(name: str, version: dict[str, int], digest: str, **extra: Any) -> dict[str, Any]:
    return {"replica": name, "machine": "bank_account", "state": {"balance": 3},
            "digest": digest, "accepted": sum(version.values()), "log": 1, "pending": 0,
            "version": version, **extra}


def _board(tmp_path: Path, docs: list[Any]) -> dict[str, Any]:
    paths = []
    for i, doc in enumerate(docs):
        p = tmp_path / f"r{i}.json"
        p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        paths.append(str(p))
    return ReplicaBoard(paths).snapshot()


@pytest.mark.parametrize("docs, status", [
    ([_status("a", {"a": 1, "b": 1}, "d1"), _status("b", {"a": 1, "b": 1}, "d1")], "converged"),
    ([_status("a", {"a": 1}, "d1"), _status("b", {"a": 1, "b": 1}, "d2")], "syncing"),
    ([_status("a", {"a": 1, "b": 1}, "d1"), _status("b", {"b": 1, "a": 1}, "d2")], "diverged"),
    ([_status("a", {"a": 2}, "d1"), _status("b", {"a": 1}, "d1"),
      _status("c", {"a": 1}, "d9")], "diverged"),
])
def test_convergence_verdict(tmp_path: Path, docs: list[Any], status: str) -> None:
    snap = _board(tmp_path, docs)
    assert snap["groups"] == [{"machine": "bank_account",
                               "replicas": [d["replica"] for d in docs], "status": status}]


def test_real_replicas_status(tmp_path: Path) -> None:
    from convergent import Machine, load_spec
    from convergent.runtime import Replica, SimNetwork
    root = Path(__file__).resolve().parents[2]
    m = Machine.from_spec(load_spec(str(root / "examples" / "bank_account.yaml")))
    net = SimNetwork(seed=1)
    a = Replica(m, id="a", transport=net.transport("a"))
    b = Replica(m, id="b", transport=net.transport("b"))
    a.emit("deposit")
    b.emit("place_hold")
    before = _board(tmp_path, [a.status(), b.status()])
    assert before["groups"][0]["status"] == "syncing"
    assert [r["problems"] for r in before["replicas"]] == [[], []]
    net.settle()
    after = _board(tmp_path, [a.status(), b.status()])
    assert after["groups"][0]["status"] == "converged"
    assert after["replicas"][0]["state"] == m.decode(a.state)


@pytest.mark.parametrize("content, error", [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ("\xff", None),
])
def test_bad_files_are_reported_not_raised(tmp_path: Path, content: str,
                                           error: str | None) -> None:
    p = tmp_path / "bad.json"
    p.write_bytes(content.encode("latin-1"))
    (r,) = ReplicaBoard([str(p)]).snapshot()["replicas"]
    assert "error" in r and (error is None or error in r["error"])


def test_missing_and_huge_files(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"pad": "x" * MAX_BYTES}))
    snap = ReplicaBoard([str(tmp_path / "nope.json"), str(huge)]).snapshot()
    assert "cannot read" in snap["replicas"][0]["error"]
    assert "larger than" in snap["replicas"][1]["error"]
    assert snap["groups"] == []


def test_wrong_types_are_dropped(tmp_path: Path) -> None:
    doc = _status("a", {"a": 1}, "d1")
    doc.update(accepted="many", pending=True, state=[1], version={"a": "1"},
               extra="<script>")
    (r,) = _board(tmp_path, [doc])["replicas"]
    assert "accepted" not in r and "pending" not in r and "state" not in r
    assert "version" not in r and "extra" not in r
    assert sorted(r["problems"]) == ["accepted has the wrong type", "pending has the wrong type",
                                     "state has the wrong type",
                                     "version is not {origin: count}"]


def test_stale_files(tmp_path: Path) -> None:
    snap = _board(tmp_path, [_status("a", {"a": 1}, "d1")])
    assert snap["replicas"][0]["stale"] is False
    old = time.time() - STALE_SECONDS - 10
    os.utime(tmp_path / "r0.json", (old, old))
    (r,) = ReplicaBoard([str(tmp_path / "r0.json")]).snapshot()["replicas"]
    assert r["stale"] is True and r["age"] > STALE_SECONDS
