"""The JavaScript runtime (runtimes/js): its own node tests, and random traces
giving the same states in the numpy Machine, ``convergent.lite`` and node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_export import rich_registry

from convergent import Machine, Registry, lite
from convergent.export import export_machine

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "runtimes" / "js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install "
                                                     "nodejs) - the JS runtime is not tested")

REPLAY = """
import { readFileSync } from "node:fs";
import { loadFile } from "%(index)s";
const [machinePath, tracesPath] = process.argv.slice(2);
const m = await loadFile(machinePath);
const traces = JSON.parse(readFileSync(tracesPath, "utf8"));
const out = traces.map(({ start, events }) => {
  const s = m.run(events, start);
  let t = start;
  for (const e of events) t = m.apply(t, e);
  return { id: s, byApply: t, normal: m.normalize(start), values: m.decode(s),
           valid: m.isValid(s), enabled: m.enabled(s) };
});
process.stdout.write(JSON.stringify({ hash: m.hash, initial: m.initial, out }));
"""


def node(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run([NODE, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_node_test_suite():
    res = node("--test", "runtimes/js/")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "# fail 0" in res.stdout and "# pass 0" not in res.stdout


def fixture_registry() -> Registry:
    """The machine of runtimes/js/test/fixtures/order.json."""
    r = Registry("order")
    status = r.enum("status", "pending", "paid", "shipped")
    paid = r.bool("paid")
    inv = r.int("inventory", 0, 5)
    r.invariant("no_ship_unpaid", holds=lambda s: s[status] != "shipped" or s[paid],
                repair=lambda s: s.set(status, "pending"))
    r.event("pay", guard=lambda s: s[status] == "pending",
            apply=lambda s: s.set(status, "paid").set(paid, True))
    r.event("ship", guard=lambda s: s[status] == "paid" and s[inv] > 0,
            apply=lambda s: s.set(status, "shipped").set(inv, s[inv] - 1))
    r.event("restock", apply=lambda s: s.set(inv, s[inv] + 1))
    r.independent("pay", "restock")
    return r


def test_js_fixture_is_this_machine():
    """The node tests run on a file Python wrote: its hash checks in Python too
    (both languages compute the same hash) and its tables are the machine's."""
    loaded = Machine.load(str(JS / "test" / "fixtures" / "order.json"))
    m = fixture_registry().build()
    assert np.array_equal(loaded.tables, m.tables)
    assert np.array_equal(loaded.nf_table, m.nf_table)
    assert loaded.events == m.events and loaded.vars == m.vars


@pytest.mark.parametrize("which", ["rich", "fixture"])
def test_random_traces_agree_across_runtimes(tmp_path, which):
    m = (rich_registry() if which == "rich" else fixture_registry()).build()
    path = tmp_path / "m.json"
    info = export_machine(m, path)
    rng = np.random.default_rng(2024)
    traces = []
    for _ in range(300):
        start = int(rng.integers(0, m.size))
        events = [m.events[i] for i in rng.integers(0, len(m.events), int(rng.integers(0, 40)))]
        traces.append({"start": start, "events": events})
    (tmp_path / "traces.json").write_text(json.dumps(traces))
    script = tmp_path / "replay.mjs"
    script.write_text(REPLAY % {"index": (JS / "index.js").as_uri()})
    res = node(str(script), str(path), str(tmp_path / "traces.json"))
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["hash"] == info.content_hash and got["initial"] == m.initial.id
    lm = lite.load(str(path))
    for t, js in zip(traces, got["out"]):
        s = m.run(t["events"], m.state(t["start"]))
        assert js["id"] == js["byApply"] == s.id == lm.run(t["events"], t["start"]), t
        assert js["normal"] == m.normalize(m.state(t["start"])).id
        assert js["values"] == s.to_dict() == lm.decode(s.id)
        assert js["valid"] == m.is_valid(s)
        assert js["enabled"] == m.enabled(s)


def test_node_refuses_an_edited_python_export(tmp_path):
    m = rich_registry().build()
    export_machine(m, tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    doc["step"][1][100] = (doc["step"][1][100] + 1) % m.size
    (tmp_path / "m.json").write_text(json.dumps(doc))
    (tmp_path / "traces.json").write_text("[]")
    script = tmp_path / "replay.mjs"
    script.write_text(REPLAY % {"index": (JS / "index.js").as_uri()})
    res = node(str(script), str(tmp_path / "m.json"), str(tmp_path / "traces.json"))
    assert res.returncode != 0 and "content hash mismatch" in res.stderr
