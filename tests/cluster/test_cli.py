"""``convergent cluster check``: the same report as ``convergent check``, exit
codes as everywhere (0 pass, 1 fail, 2 bad input or no verdict)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from convergent.cli import main

from conftest import ROOT


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("example,code", [("bank_account.yaml", 0), ("gsm_order.yaml", 1)])
def test_cluster_check_prints_the_report_of_check(capsys: pytest.CaptureFixture[str],
                                                  dask_cluster: Any, example: str,
                                                  code: int) -> None:
    path = str(ROOT / "examples" / example)
    got_code, out, _ = _run(capsys, "cluster", "check", path, "--scheduler",
                            dask_cluster.scheduler_address, "--shards", "3", "--json")
    want_code, want, _ = _run(capsys, "check", path, "--method", "enumerate", "--json")
    assert got_code == want_code == code
    got_d, want_d = json.loads(out), json.loads(want)
    assert got_d["method"]["sharded"]["shards"] == 3
    for d in (got_d, want_d):
        d.pop("seconds")
        d.pop("method")
    assert got_d == want_d


def test_cluster_check_text_names_the_verdict(capsys: pytest.CaptureFixture[str],
                                              dask_cluster: Any) -> None:
    code, out, _ = _run(capsys, "cluster", "check", str(ROOT / "examples" / "gsm_order.yaml"),
                        "--scheduler", dask_cluster.scheduler_address)
    assert code == 1 and "CC1" in out


def test_cluster_check_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "cluster", "check", "no/such/spec.yaml", "--workers", "1")
    assert code == 2 and "no such file" in err
    with pytest.raises(SystemExit) as exc:
        main(["cluster", "check", str(ROOT / "examples" / "gsm_order.yaml"),
              "--shards", "0"])
    assert exc.value.code == 2


def test_cluster_help_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cluster", "check", "--help"])
    out = capsys.readouterr().out
    assert "--scheduler" in out and "--workers" in out and "--shards" in out


def test_a_machine_declared_in_python_checks_on_the_cluster(
        capsys: pytest.CaptureFixture[str], dask_cluster: Any) -> None:
    target = str(ROOT / "examples" / "bank_account.py") + ":registry"
    got_code, out, _ = _run(capsys, "cluster", "check", target, "--scheduler",
                            dask_cluster.scheduler_address, "--json")
    want_code, want, _ = _run(capsys, "check", target, "--method", "enumerate", "--json")
    got_d, want_d = json.loads(out), json.loads(want)
    for d in (got_d, want_d):
        d.pop("seconds")
        d.pop("method")
    assert got_code == want_code and got_d == want_d


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cluster_check_starts_its_own_local_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(ROOT / "examples" / "gsm_order.yaml")
    code, out, _ = _run(capsys, "cluster", "check", path, "--workers", "2", "--json")
    report = json.loads(out)
    assert code == 1 and report["verdict"] == "fail"
    assert report["method"]["sharded"]["workers"] == 2
