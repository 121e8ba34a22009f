"""The CLI contract: exit codes, located errors, JSON, scopes, strict, targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convergent.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convergent", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


LEGAL_HOLD = """\
machine: legal_hold
vars:
  status: {enum: [draft, published, archived, purged]}
  hold: bool
invariants:
  - name: purged_never_held
    holds: status != 'purged' or not hold
    repair: {status: archived}
events:
  publish: {guard: status == 'draft', apply: {status: published}}
  place_hold: {guard: status == 'draft' or status == 'published', apply: {hold: true}}
  release_hold: {apply: {hold: false}}
  archive: {guard: status == 'published' and not hold, apply: {status: archived}}
  purge: {guard: status == 'archived' and not hold, apply: {status: purged}}
independent:
  - [release_hold, purge]
"""


def test_scope_all_fails_where_reachable_passes(tmp_path: Path) -> None:
    spec = tmp_path / "legal.yaml"
    spec.write_text(LEGAL_HOLD)
    p = cli("check", str(spec), "--json")
    assert p.returncode == 0
    rep = json.loads(p.stdout)
    assert rep["cc1"]["ok"] is True and rep["cc1"]["ok_all_valid"] is False
    p = cli("check", str(spec), "--json", "--scope", "all")
    assert p.returncode == 1
    rep = json.loads(p.stdout)
    assert rep["cc1"]["scope"] == "all"
    cex = rep["cc1"]["counterexample"]
    assert cex["state"] == {"status": "archived", "hold": True}
    assert cex["trace"] is None          # unreachable: no trace
    p = cli("check", str(spec), "--strict")
    assert p.returncode == 1
    assert "FAIL" in p.stdout


def test_bad_spec_names_file_line_and_problem(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(LEGAL_HOLD.replace("guard: status == 'draft', apply",
                                       "guard: staus == 'draft', apply"))
    p = cli("check", str(spec))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    line = LEGAL_HOLD.splitlines().index(
        "  publish: {guard: status == 'draft', apply: {status: published}}") + 1
    assert f"{spec}:{line}" in p.stderr
    assert "staus" in p.stderr


def test_missing_file_and_bad_target() -> None:
    p = cli("check", "no/such/spec.yaml")
    assert p.returncode == 2 and "no such file" in p.stderr
    p = cli("check", "examples/order_fulfillment.py:nothing_here")
    assert p.returncode == 2 and "nothing_here" in p.stderr
    p = cli("check", "convergent_no_such_module:registry")
    assert p.returncode == 2 and "cannot import" in p.stderr


def test_overflow_error_is_exit_2_naming_event_state_value(tmp_path: Path) -> None:
    spec = tmp_path / "o.yaml"
    spec.write_text("machine: o\nvars:\n  n: {int: [0, 2], overflow: error}\n"
                    "events:\n  bump: {apply: {n: n + 1}}\n")
    p = cli("check", str(spec))
    assert p.returncode == 2
    assert "bump" in p.stderr and "n = 3" in p.stderr and "n=2" in p.stderr


def test_lying_footprint_is_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "f.yaml"
    spec.write_text("machine: f\nvars:\n  a: bool\n  b: bool\n"
                    "events:\n  e: {guard: a, apply: {b: true}, reads: [b]}\n")
    p = cli("check", str(spec))
    assert p.returncode == 2
    assert "'e'" in p.stderr and "reads a" in p.stderr


def test_explain_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "cc1"]) == 0
    assert "Commutation" in capsys.readouterr().out
    assert main(["explain", "XYZ"]) == 2
    assert main([]) == 2


def test_json_is_silent_on_stderr_and_has_contract_keys() -> None:
    p = cli("check", "examples/gsm_order.yaml", "--json")
    assert p.returncode == 1 and p.stderr == ""
    rep = json.loads(p.stdout)
    for key in ("machine", "verdict", "states", "wfc", "cc1", "cc2", "footprints", "seconds"):
        assert key in rep
    assert rep["footprints"]["ship_item"] == {"reads": ["status", "inventory"],
                                              "writes": ["status", "inventory"]}
    assert rep["states"] == {"total": 48, "valid": 42, "reachable": 18}


def test_relational_schema_target() -> None:
    p = cli("check", "examples/relational_agent.py:CRAWLER")
    assert p.returncode == 0, p.stderr
    assert "relational schema 'crawler'" in p.stdout
    p = cli("check", "examples/relational_agent.py:CRAWLER", "--json")
    assert p.returncode == 0
    rep = json.loads(p.stdout)
    assert rep["kind"] == "relational" and rep["verdict"] == "pass"
    assert rep["schema"] == "crawler" and isinstance(rep["findings"], list)


@pytest.mark.slow
def test_consensus_subcommands() -> None:
    p = cli("consensus", "render", "--format", "table")
    assert p.returncode == 0 and "| stopped | start | starting |" in p.stdout
    p = cli("consensus", "demo", "--rounds", "2", "--timeout", "60")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "round 1 finalized" in p.stdout and "agree" in p.stdout
    p = cli("check", "--bogus", "x")
    assert p.returncode == 2 and "unrecognized arguments" in p.stderr


def test_python_target_that_raises_is_located(tmp_path: Path) -> None:
    mod = tmp_path / "broken.py"
    mod.write_text("from convergent import Registry\nr = Registry('x')\nr.bool('a')\n"
                   "undefined_name\n")
    p = cli("check", f"{mod}:r")
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert f"{mod}:4:" in p.stderr and "NameError" in p.stderr


def test_a_machine_too_big_to_enumerate_is_a_clear_error(tmp_path: Path) -> None:
    # a chain of bools: one part (no split), no int to abstract, cheap rules
    spec = tmp_path / "huge.yaml"
    spec.write_text(_chain_yaml(36))
    p = cli("check", "--method", "enumerate", str(spec))
    assert p.returncode == 2, p.stdout
    assert "68,719,476,736 states" in p.stderr and "supports up to" in p.stderr
    assert "Traceback" not in p.stderr
    # by default the engine sends it to z3 instead, and says so
    p = cli("check", str(spec))
    assert p.returncode in (0, 1), p.stderr
    assert "symbolic (z3" in p.stdout and "does not split" in p.stdout


def test_progress_on_a_terminal_shows_only_after_a_second(
        capsys: pytest.CaptureFixture[str]) -> None:
    from convergent.cli import _Progress
    from convergent.engine.check import check as engine_check
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_engine import bools_registry

    quick = _Progress(enabled=True, tty=True)
    engine_check(bools_registry(15).spec(), progress=quick)
    quick.close()
    assert capsys.readouterr().err == ""          # fast builds stay silent
    slow = _Progress(enabled=True, tty=True)
    slow.start -= 5.0                              # as if the build began 5 s ago
    engine_check(bools_registry(15).spec(), progress=slow)
    slow.close()
    err = capsys.readouterr().err
    assert "tables" in err and "10/10" in err and "pairs" in err and "45/45" in err
    silent = _Progress(enabled=False, tty=True)
    silent.start -= 5.0
    engine_check(bools_registry(15).spec(), progress=silent)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- first run

def _closed_pipe_run(*args: str) -> tuple[int, str]:
    """Run the CLI with stdout a pipe whose reader has already gone: every
    write fails with EPIPE, deterministically (``| head -1`` races)."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "convergent", *args], cwd=ROOT, stdout=w,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    return p.returncode, p.stderr


def test_a_closed_pipe_keeps_the_failure_and_is_not_success() -> None:
    code, err = _closed_pipe_run("check", "examples/gsm_order.yaml")
    assert code == 1, err                      # the proof failed: still 1
    assert "Traceback" not in err and "Exception ignored" not in err
    code, err = _closed_pipe_run("check", "examples/order_fulfillment.yaml", "--json")
    assert code == 141, err                    # passed, but the report was not delivered
    assert "Traceback" not in err and "Exception ignored" not in err
    code, err = _closed_pipe_run("check", "no/such.yaml")
    assert code == 2 and "no such file" in err


def test_piped_to_head_keeps_exit_1() -> None:
    p = subprocess.run(["bash", "-c", f"{sys.executable} -m convergent check "
                        "examples/gsm_order.yaml | head -1; exit ${PIPESTATUS[0]}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert p.stdout == "order_fulfillment: FAIL  (scope: reachable)\n"
    assert "Traceback" not in p.stderr


def test_a_passing_report_does_not_read_as_a_failure() -> None:
    p = cli("check", "examples/bank_account.yaml")
    assert p.returncode == 0
    cc2 = next(line for line in p.stdout.splitlines() if line.startswith("  CC2"))
    assert "fail" not in cc2.lower()
    assert "repairs and events do not commute: not required; --strict" in cc2
    p = cli("check", "examples/bank_account.yaml", "--strict")
    assert p.returncode == 1
    cc2 = next(line for line in p.stdout.splitlines() if line.startswith("  CC2"))
    assert "FAIL" in cc2 and "required by --strict" in cc2


@pytest.mark.parametrize("typo, meant", [("chek", "check"), ("expot", "export"),
                                         ("explian", "explain"), ("consensu", "consensus")])
def test_a_mistyped_command_suggests_the_nearest(typo: str, meant: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main([typo, "examples/gsm_order.yaml"]) == 2
    err = capsys.readouterr().err
    assert f"unknown command {typo!r}; did you mean {meant!r}?" in err


def test_an_unknown_command_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err and "check, explain, export" in err


@pytest.mark.parametrize("blocked, argv, extra", [
    ("cryptography", ["consensus", "render"], "consensus"),
    ("nats", ["replica", "status", "examples/bank_account.yaml", "--id", "r1"], "replica"),
])
def test_a_command_from_a_missing_extra_names_the_extra(blocked: str, argv: list[str],
                                                        extra: str) -> None:
    code = ("import sys\n"
            f"sys.modules[{blocked!r}] = None   # as if not installed\n"
            "from convergent.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    p = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"pip install 'convergent[{extra}]'" in p.stderr
    assert "Traceback" not in p.stderr


def test_missing_extra_at_registration_is_reported(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import convergent.cli as cli_mod
    real = cli_mod.EXTENSIONS["consensus"]
    monkeypatch.setitem(cli_mod.EXTENSIONS, "consensus",
                        cli_mod.Command("convergent_no_such_layer_for_test", real.help,
                                        "consensus"))
    monkeypatch.setitem(cli_mod.OPTIONAL_MODULES, "convergent_no_such_layer_for_test",
                        "consensus")
    assert main(["consensus", "render"]) == 2
    assert "pip install 'convergent[consensus]'" in capsys.readouterr().err


def test_a_python_file_without_attr_says_so() -> None:
    p = cli("check", "examples/bank_account.py")
    assert p.returncode == 2
    assert "is a Python file" in p.stderr
    assert "examples/bank_account.py:registry" in p.stderr      # the name found in it
    assert "Traceback" not in p.stderr


def test_json_bad_spec_prints_one_json_error_object(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(LEGAL_HOLD.replace("guard: status == 'draft', apply",
                                       "guard: staus == 'draft', apply"))
    p = cli("check", str(spec), "--json")
    assert p.returncode == 2
    err = json.loads(p.stdout)
    assert list(err) == ["error"] and err["error"]["kind"] == "spec"
    first = err["error"]["problems"][0]
    assert first["file"] == str(spec) and first["line"] and "staus" in first["message"]
    assert f"{spec}:" in p.stderr


def _help_text(*argv: str) -> str:
    """``convergent ARGV --help`` in this process (each layer imports once)."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return out.getvalue()


def _help_texts() -> dict[str, str]:
    """The top-level help and each subcommand's help, by command."""
    out = {"": _help_text()}
    for command in ("check", "explain", "export", "replica", "emit", "consensus", "diagram",
                    "serve", "audit", "entity", "federation"):
        out[command] = _help_text(command)
    for sub in ("run", "status"):
        out[f"replica {sub}"] = _help_text("replica", sub)
    for sub in ("check", "graph", "history"):
        out[f"entity {sub}"] = _help_text("entity", sub)
    return out


def _named_files(text: str) -> list[str]:
    """The input files named in a help text's example command lines."""
    import re
    flat = " ".join(text.split())
    found = []
    for m in re.finditer(r"convergent [a-z]+(?: [a-z]+)? (\S+\.(?:yaml|yml|json|py))(?::\w+)?",
                         flat):
        found.append(m.group(1))
    return found


HELP_TEXTS: dict[str, str] = {}


@pytest.mark.parametrize("command", [
    "", "check", "explain", "export", "consensus", "replica run", "replica status", "emit",
    "diagram", "serve", "audit", "entity check", "entity", "entity graph", "federation",
])
def test_help_examples_name_files_that_exist(command: str) -> None:
    if not HELP_TEXTS:
        HELP_TEXTS.update(_help_texts())
    text = HELP_TEXTS[command]
    assert "usage:" in text
    for name in _named_files(text):
        assert (ROOT / name).exists(), f"`convergent {command} --help` names {name}"
    if command in ("", "check"):
        assert _named_files(text), "the examples name a spec"


def test_help_and_version_import_no_engine() -> None:
    """--help and --version start as fast as check: they import neither numpy
    nor any layer (the measured figures are in the report of issue 11)."""
    code = ("import sys, contextlib, io\n"
            "from convergent.cli import main\n"
            "for argv in (['--version'], ['--help'], ['explain', 'CC1']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        main(argv)\n"
            "heavy = sorted(m for m in sys.modules if m == 'numpy' or m.startswith(\n"
            "    ('convergent.engine', 'convergent.runtime', 'convergent.consensus',\n"
            "     'convergent.relational', 'convergent.export', 'convergent.spec', 'ruamel')))\n"
            "print(heavy)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


# ---------------------------------------------------------------- budget

def _bools_yaml(n: int, events: int = 2) -> str:
    lines = [f"machine: bools{n}", "vars:"] + [f"  b{i}: bool" for i in range(n)]
    lines.append("events:")
    lines += [f"  t{i}: {{apply: {{b{i}: not b{i}}}}}" for i in range(events)]
    return "\n".join(lines) + "\n"


def _chain_yaml(n: int) -> str:
    """n bools linked by n - 1 events of two vars each: one part (the engine
    cannot check it part by part), cheap to compile, 2^n states."""
    lines = [f"machine: chain{n}", "vars:"] + [f"  b{i}: bool" for i in range(n)]
    lines.append("events:")
    lines += [f"  t{i}: {{apply: {{b{i}: not b{i + 1}}}}}" for i in range(n - 1)]
    return "\n".join(lines) + "\n"


def test_estimate_is_refused_above_available_memory(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import convergent.engine.budget as budget
    spec = tmp_path / "big.yaml"
    spec.write_text(_chain_yaml(27))               # 2^27 states x 26 events: ~15 GiB at least
    monkeypatch.setattr(budget, "available_memory", lambda *a: 2**30)
    t0 = time.monotonic()
    assert main(["check", "--method", "enumerate", str(spec)]) == 2
    assert time.monotonic() - t0 < 20             # refused before enumerating
    err = capsys.readouterr().err
    assert "134,217,728 states" in err and "1.0 GiB is available" in err
    assert "Traceback" not in err
    # the library refuses too, whoever calls it
    from convergent.engine.check import check
    from convergent.errors import BuildError
    from convergent.spec.loader import load_spec
    with pytest.raises(BuildError, match="available"):
        check(load_spec(str(spec)), method="enumerate")


def test_a_check_too_big_for_this_machine_is_refused_quickly(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text(_chain_yaml(33))              # 2^33 states x 32 events of int64 ids
    t0 = time.monotonic()
    p = cli("check", "--method", "enumerate", str(spec))
    assert p.returncode == 2, p.stdout
    assert time.monotonic() - t0 < 30
    assert "8,589,934,592 states" in p.stderr and "available on this machine" in p.stderr
    assert "Traceback" not in p.stderr


def test_a_big_machine_that_splits_is_not_refused(tmp_path: Path) -> None:
    spec = tmp_path / "split.yaml"
    spec.write_text(_bools_yaml(34))              # 2^34 states, but every var on its own
    p = cli("check", str(spec), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["states"]["total"] == 2**34


def test_budget_estimate_and_meminfo(tmp_path: Path) -> None:
    from convergent.engine.budget import available_memory, estimate, warning
    b = estimate(2**20, 10)
    assert b.id_bytes == 4 and b.table_bytes == 40 * 2**20
    assert b.table_bytes < b.floor_bytes < b.peak_bytes
    assert 0 < b.seconds_low < b.seconds_high
    assert estimate(2**31, 1).id_bytes == 8
    assert "1,048,576 states x 10 events" in b.describe()
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\n"
                    "MemAvailable:    2048 kB\n")
    assert available_memory(str(info)) == 2048 * 1024
    assert warning(b, available=b.floor_bytes + 1) is not None     # the peak may not fit
    assert warning(b, available=100 * b.peak_bytes) is None


def test_progress_off_a_terminal_prints_lines_every_interval() -> None:
    import io

    from convergent.cli import _Progress
    stream = io.StringIO()
    with _Progress(enabled=True, tty=False, interval=0.05, name="m", stream=stream) as prog:
        prog("tables", 3, 10)
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2, lines
    assert all(line.startswith("convergent: m: tables 3/10, ") and
               line.endswith("s elapsed") for line in lines)
    stream = io.StringIO()
    with _Progress(enabled=False, tty=False, interval=0.01, stream=stream) as prog:
        prog("tables", 3, 10)
        time.sleep(0.1)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("as_json", [False, True])
def test_a_long_check_off_a_terminal_reports_progress_but_never_under_json(
        tmp_path: Path, as_json: bool, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import convergent.cli as cli_mod
    spec = tmp_path / "b.yaml"
    spec.write_text(_chain_yaml(19))
    monkeypatch.setattr(cli_mod, "PROGRESS_INTERVAL", 0.02)
    monkeypatch.setattr(cli_mod, "ANNOUNCE_SECONDS", 0.0)     # announce even this one
    argv = ["check", str(spec)] + (["--json"] if as_json else [])
    assert main(argv) == 1                         # its pairs do not all commute
    out, err = capsys.readouterr()
    if as_json:
        assert err == "" and json.loads(out)["verdict"] == "fail"
    else:
        assert "convergent: chain19: 524,288 states x 18 events: needs" in err
        assert "s elapsed" in err
