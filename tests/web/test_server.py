"""Starting the inspector: address checks, the CLI, a real uvicorn server."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from convergent.errors import ConvergentError  # noqa: E402
from convergent.web import cli as web_cli  # noqa: E402
from convergent.web import server  # noqa: E402
from convergent.web.security import host_of  # noqa: E402

from viz.cli_harness import run  # noqa: E402
from .conftest import EXAMPLES, inspection_of, live_server  # noqa: E402

GSM = str(EXAMPLES / "gsm_order.yaml")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_is_accepted(host: str) -> None:
    server.check_host(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1",
                                  "example.com", ""])
def test_other_hosts_need_allow_remote(host: str) -> None:
    with pytest.raises(ConvergentError):
        server.check_host(host, allow_remote=False)
    if host:
        server.check_host(host, allow_remote=True)


def test_allowed_hosts() -> None:
    assert server.allowed_hosts("127.0.0.1") == ["127.0.0.1", "::1", "localhost"]
    assert server.allowed_hosts("0.0.0.0") == ["*"]
    assert server.allowed_hosts("192.168.1.10") == ["192.168.1.10"]


@pytest.mark.parametrize("header, host", [
    ("127.0.0.1:80", "127.0.0.1"), ("[::1]:8765", "::1"), ("[::1]", "::1"),
    ("LocalHost", "localhost"), ("::1", "::1")])
def test_host_of(header: str, host: str) -> None:
    assert host_of(header) == host


def test_bind_errors_are_clear() -> None:
    with pytest.raises(ConvergentError, match="expected 0..65535"):
        server.bind("127.0.0.1", 70000)
    taken = server.bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ConvergentError, match="cannot listen"):
            server.bind("127.0.0.1", port)
    finally:
        taken.close()


def test_cli_refuses_a_remote_host_before_any_proof(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import convergent.web.inspection as inspection
    monkeypatch.setattr(inspection, "analyze", lambda *a, **k: pytest.fail("proved"))
    assert run(web_cli.register, ["serve", GSM, "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_cli_serves_every_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, Any] = {}

    def fake_run(inspections: list[Any], **kwargs: Any) -> None:
        got.update(kwargs, machines=[i.report.machine for i in inspections])

    monkeypatch.setattr(server, "run", fake_run)
    bank = str(EXAMPLES / "bank_account.yaml")
    assert run(web_cli.register, ["serve", GSM, bank, "--port", "0"]) == 0
    assert got == {"machines": ["order_fulfillment", "bank_account"], "host": "127.0.0.1",
                   "port": 0, "allow_remote": False, "replica_status": ()}


def test_cli_bad_spec_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("machine: x\nvars: {}\nevents: {}\n")
    assert run(web_cli.register, ["serve", str(bad)]) == 2
    schema = str(EXAMPLES / "relational_agent.py") + ":CRAWLER"
    assert run(web_cli.register, ["serve", schema]) == 2
    assert "convergent diagram" in capsys.readouterr().err


def test_real_server_answers_on_loopback() -> None:
    with live_server([inspection_of(Path(GSM))]) as url:
        assert url.startswith("http://127.0.0.1:")
        r = httpx.get(f"{url}/api/specs", timeout=10)
        assert r.status_code == 200 and r.json()[0]["machine"] == "order_fulfillment"
        assert "server" not in r.headers  # no version banner
        assert httpx.get(f"{url}/", headers={"host": "attacker.example"},
                         timeout=10).status_code == 400
        page = httpx.get(f"{url}/", timeout=10)
        assert "content-security-policy" in page.headers
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/specs", timeout=2)


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sock = server.bind("::1", 0)
    except ConvergentError as exc:
        pytest.skip(f"::1 is not available: {exc}")
    assert server.url_of(sock).startswith("http://[::1]:")
    sock.close()
