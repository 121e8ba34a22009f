"""The TCP transport on loopback, and the multi-process demo."""

from __future__ import annotations

import asyncio
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from convergent.consensus import KeyPair, TcpTransport
from convergent.consensus.demo import main
from convergent.consensus.guard import FileSafetyStore
from convergent.consensus.messages import Kind, sign_vote
from convergent.consensus.wire import encode

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_tcp_transport_delivers_and_drops_garbage():
    k = KeyPair.from_seed("a", 0)
    vote = sign_vote(k, "c", Kind.PREVOTE, 0, 1, 0, b"\x01" * 32)

    async def main_():
        got: list = []
        a, b = TcpTransport("a"), TcpTransport("b", on_message=lambda m, peer: got.append(m))
        pa, pb = await a.start(), await b.start()
        a.set_peers({"b": ("127.0.0.1", pb)})
        b.set_peers({"a": ("127.0.0.1", pa)})
        a.send(vote, None)
        a.send(vote, "nobody")  # unknown peer: ignored
        # a raw connection sending a bad frame and an oversize header
        _, writer = await asyncio.open_connection("127.0.0.1", pb)
        bad = b"\x01\xffjunk"
        hello = b"CVG-HELLO:z"
        writer.write(struct.pack(">I", len(hello)) + hello + struct.pack(">I", len(bad)) + bad)
        writer.write(struct.pack(">I", 1 << 30))
        await writer.drain()
        for _ in range(200):
            if got and b.bad_frames >= 2:
                break
            await asyncio.sleep(0.01)
        writer.close()
        await a.close()
        await b.close()
        return got, b.bad_frames

    got, bad = asyncio.run(main_())
    assert got == [vote]
    assert bad >= 2
    assert encode(got[0]) == encode(vote)


def test_demo_rejects_bad_arguments(capsys):
    assert main(["--nodes", "0"]) == 2
    assert main(["--byzantine", "4"]) == 2
    assert main(["--strategy", "nope"]) == 2
    assert main(["--help"]) == 0
    assert "consensus demo" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_four_processes_one_byzantine_over_loopback(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    state = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-m", "convergent.consensus.demo", "--rounds", "4", "--timeout", "60",
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "byzantine: n03 (equivocate)" in out
    ports = [int(p) for p in re.findall(r"n0\d=(\d+)", out)]
    assert len(set(ports)) == 4 and all(p > 0 for p in ports)
    rounds = re.findall(r"^round (\d+) finalized by all 3 honest nodes", out, re.MULTILINE)
    assert rounds == ["0", "1", "2", "3"]
    assert "honest nodes agree on every round" in out
    proven = re.search(r"(\d+) equivocations proven against n03", out)
    assert proven and int(proven.group(1)) > 0
    # every node kept its signing guard in its own file, fsync'd before it signed
    for i in range(4):
        guard = FileSafetyStore(state / f"n0{i}.guard.json").load()
        assert guard.resume_point() is not None and guard.resume_point()[0] >= 3
    # the directory now holds guards: a new chain there is refused (exit status 2)
    assert main(["--state-dir", str(state)]) == 2


def _pair_keys():
    return {name: KeyPair.from_seed(name, "net") for name in ("a", "b", "mallory")}


def test_authenticated_connections_name_their_peer_and_refuse_impostors():
    keys = _pair_keys()
    members = {n: keys[n].public_key for n in ("a", "b")}
    vote = sign_vote(keys["a"], "c", Kind.PREVOTE, 0, 1, 0, b"\x01" * 32)

    async def main_():
        got: list = []
        a = TcpTransport("a", keys=keys["a"], peer_keys=members)
        b = TcpTransport("b", keys=keys["b"], peer_keys=members,
                         on_message=lambda m, peer: got.append((peer, m)))
        pa, pb = await a.start(), await b.start()
        a.set_peers({"b": ("127.0.0.1", pb)})
        a.send(vote, "b")
        # mallory has no member key: claiming to be "a" with its own key fails the handshake
        fake = KeyPair.from_private_bytes("a", keys["mallory"].private_bytes())
        m = TcpTransport("a", keys=fake, peer_keys=members)
        await m.start()
        m.set_peers({"b": ("127.0.0.1", pb)})
        m.send(vote, "b")
        # a stranger that skips the handshake and just sends frames
        _, writer = await asyncio.open_connection("127.0.0.1", pb)
        writer.write(struct.pack(">I", len(encode(vote))) + encode(vote))
        await writer.drain()
        # and a client that dials an impostor server: it never sends it anything
        heard: list = []
        imp = TcpTransport("b", keys=KeyPair.from_private_bytes("b", keys["mallory"]
                                                               .private_bytes()),
                           peer_keys=members, on_message=lambda msg, peer: heard.append(msg))
        pi = await imp.start()
        a2 = TcpTransport("a", keys=keys["a"], peer_keys=members)
        await a2.start()
        a2.set_peers({"b": ("127.0.0.1", pi)})
        a2.send(vote, "b")
        for _ in range(300):
            if got and b.auth_failures >= 2 and a2.auth_failures >= 1:
                break
            await asyncio.sleep(0.01)
        writer.close()
        for t in (a, b, m, imp, a2):
            await t.close()
        del pa
        return got, b.auth_failures, heard, a2.auth_failures

    got, failures, heard, client_failures = asyncio.run(main_())
    assert got == [("a", vote)]  # attributed to the authenticated peer, delivered once
    assert failures >= 2 and client_failures >= 1 and heard == []
