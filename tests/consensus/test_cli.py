"""``convergent consensus demo`` argument checks and ``render`` (timeouts, custom machines)."""

from __future__ import annotations

import argparse
import json

import pytest

from convergent.cli import main as cli_main
from convergent.consensus import ConfigError, MachineSpec, Phase
from convergent.consensus.demo import check_args
from convergent.consensus.demo import main as demo_main
from convergent.consensus.machine import Event


def _args(**kw: object) -> argparse.Namespace:
    base = {"nodes": 4, "byzantine": 1, "rounds": 5, "timeout": 60.0, "state_dir": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_no_nodes_is_one_clear_error(capsys):
    errors, warnings = check_args(_args(nodes=0))
    assert len(errors) == 1 and "--nodes=0" in errors[0] and warnings == []
    assert demo_main(["--nodes", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {errors[0]}"]  # not a second, confusing one about --byzantine


@pytest.mark.parametrize("n,b,warned", [(4, 1, False), (4, 2, True), (7, 2, False),
                                        (7, 3, True), (3, 1, True), (1, 0, False)])
def test_more_byzantine_nodes_than_tolerated_warns(n, b, warned):
    errors, warnings = check_args(_args(nodes=n, byzantine=b))
    assert errors == []
    assert bool(warnings) is warned
    if warned:
        assert f"--byzantine={b}" in warnings[0] and "f < n/3" in warnings[0]


def test_other_bad_arguments_are_all_reported(tmp_path):
    (tmp_path / "n00.applies.json").write_text("{}")
    errors, _ = check_args(_args(byzantine=4, rounds=0, timeout=0, state_dir=str(tmp_path)))
    assert len(errors) == 4


def render(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["consensus", "render", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_render_labels_timeout_rows_with_their_durations(capsys):
    code, mermaid, _ = render(capsys)
    assert code == 0
    assert "voting --> collecting: voting_timeout (10 s x 2^view (max x16), view + 1)" in mermaid
    assert "verifying --> collecting: verification_timeout (1 s, height + 1)" in mermaid
    assert "collecting --> liveness_check: collection_done\n" in mermaid
    code, dot, _ = render(capsys, "--format", "dot")
    assert '[label="proving_timeout (120 s x 2^view (max x16), view + 1)"]' in dot
    code, table, _ = render(capsys, "--format", "table", "--machine", "sim")
    assert "| voting | voting_timeout | collecting | view change | 1 s x 2^view (max x16) |" \
        in table


def test_render_a_custom_machine(capsys, tmp_path):
    spec = tmp_path / "machine.json"
    spec.write_text(json.dumps({
        "scale": 0.5, "timeouts": {"voting": 3},
        "remove": [["publishing", "publish_timeout"]],
        "add": [{"source": "publishing", "event": "publish_timeout", "target": "collecting"}],
        "max_backoff_exponent": 2}))
    code, mermaid, err = render(capsys, "--spec", str(spec), "--timeout", "proving=7")
    assert code == 0, err
    assert "voting_timeout (3 s x 2^view (max x4), view + 1)" in mermaid
    assert "proving_timeout (7 s x 2^view (max x4), view + 1)" in mermaid
    assert "publishing --> collecting: publish_timeout (0.5 s)" in mermaid
    assert "publishing --> voting: publish_timeout" not in mermaid


def test_a_bad_custom_machine_is_exit_2_with_every_problem(capsys, tmp_path):
    spec = tmp_path / "machine.json"
    spec.write_text(json.dumps({"timeouts": {"votin": 1, "voting": -2}, "colour": "red",
                                "remove": [["voting", "start"]]}))
    code, _, err = render(capsys, "--spec", str(spec))
    assert code == 2
    for part in ("unknown phase 'votin'", "timeouts.voting=-2", "unknown key 'colour'",
                 "no row voting --start-->"):
        assert part in err
    code, _, err = render(capsys, "--spec", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err
    code, _, err = render(capsys, "--timeout", "voting")
    assert code == 2 and "PHASE=SECONDS" in err


def test_from_dict_builds_the_same_machine_as_the_python_api():
    doc = {"scale": 2, "timeouts": {"proving": None}, "view_backoff": 3}
    spec = MachineSpec.from_dict(doc)
    assert spec.timeout(Phase.VOTING, 1) == MachineSpec.default().timeout(Phase.VOTING) * 2 * 3
    with pytest.raises(ConfigError, match="no on_timeout") as err:
        MachineSpec.from_dict({"timeouts": {"stopped": 1}})
    assert "stopped" in str(err.value)
    assert MachineSpec.from_dict({}) == MachineSpec.default()
    assert spec.transition(Phase.PROVING, Event.PROVING_TIMEOUT) is not None
