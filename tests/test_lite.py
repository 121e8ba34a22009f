"""``convergent.lite``: the pure-Python runtime agrees with the numpy Machine,
refuses bad files, and runs with the standard library alone."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_export import GSM_ORDER, gsm_order_registry, order_registry, rich_registry

from convergent import Machine, lite
from convergent.export import export_machine, export_registry, load_machine

LITE = Path(lite.__file__)
FORMATS = ["m.json", "m.json.gz", "m.cvm"]


@pytest.fixture(scope="module")
def rich() -> Machine:
    return rich_registry().build()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, rich):
    d = tmp_path_factory.mktemp("lite")
    for name in FORMATS:
        export_machine(rich, d / name)
    return d


@pytest.mark.parametrize("name", FORMATS)
def test_lite_agrees_with_the_machine(exported, rich, name):
    lm = lite.load(str(exported / name))
    assert (lm.name, lm.version, lm.events, lm.size, lm.initial) == (
        rich.name, rich.version, list(rich.events), rich.size, rich.initial.id)
    assert lm.content_hash == load_machine(exported / name).meta["content_hash"]
    for s in range(rich.size):
        assert lm.decode(s) == rich.decode(s)
        assert lm.encode(lm.decode(s)) == s
        assert lm.normalize(s) == int(rich.nf_table[s])
        assert lm.is_valid(s) == bool(rich.valid_table[s])
        assert lm.enabled(s) == rich.enabled(rich.state(s))
        for e in rich.events:
            assert lm.apply(s, e) == rich.apply_id(s, e)


def test_random_traces(exported, rich):
    lms = [lite.load(str(exported / name)) for name in FORMATS]
    rng = np.random.default_rng(7)
    for _ in range(200):
        start = int(rng.integers(0, rich.size))
        trace = [rich.events[i] for i in rng.integers(0, len(rich.events), 30)]
        want = rich.run(trace, rich.state(start)).id
        assert [lm.run(trace, start) for lm in lms] == [want] * len(lms)


def test_misuse(exported):
    lm = lite.load(str(exported / "m.json"))
    with pytest.raises(lite.LiteError, match="unknown event 'publish'"):
        lm.apply(0, "publish")
    with pytest.raises(lite.LiteError, match=r"outside \[0, 840\)"):
        lm.apply(840, "up")
    with pytest.raises(lite.LiteError, match="outside its domain"):
        lm.encode({"phase": "draft", "locked": 1, "score": 0, "count": 0, "flag": False})
    with pytest.raises(lite.LiteError, match="missing var 'flag'"):
        lm.encode({"phase": "draft", "locked": True, "score": 0, "count": 0})


@pytest.mark.parametrize("name", FORMATS)
def test_edited_files_are_refused(tmp_path, rich, name):
    path = tmp_path / name
    export_machine(rich, path, format="json" if name == "m.json.gz" else None)
    data = bytearray(path.read_bytes())
    if name == "m.cvm":
        data[-3] ^= 1                      # a fires byte
    else:
        doc = json.loads(data)
        doc["nf"][0] = 1 - doc["nf"][0] if doc["nf"][0] < 2 else 0
        data = bytearray(json.dumps(doc).encode())
    path.write_bytes(bytes(data))
    with pytest.raises(lite.LiteError) as info:
        lite.load(str(path))
    assert info.value.reason == "hash" and str(path) in str(info.value)
    lite.load(str(path), verify=False)


def test_truncated_and_other_versions(tmp_path, rich):
    export_machine(rich, tmp_path / "m.cvm")
    export_machine(rich, tmp_path / "m.json")
    data = (tmp_path / "m.cvm").read_bytes()
    for bad, reason in [(data[:-10], "truncated"), (b"CVM9" + data[4:], "version"),
                        (data[:6], "truncated")]:
        (tmp_path / "x.cvm").write_bytes(bad)
        with pytest.raises(lite.LiteError) as info:
            lite.load(str(tmp_path / "x.cvm"))
        assert info.value.reason == reason
    text = (tmp_path / "m.json").read_text()
    for bad, reason in [(text[:-100], "truncated"),
                        (text.replace('"format_version": 1', '"format_version": 2'), "version"),
                        ('{"a": 1}', "format")]:
        (tmp_path / "x.json").write_text(bad)
        with pytest.raises(lite.LiteError) as info:
            lite.load(str(tmp_path / "x.json"))
        assert info.value.reason == reason


def test_unverified_is_refused_unless_allowed(tmp_path):
    from convergent import load_spec
    spec = load_spec(str(Path(__file__).parent.parent / "examples" / "gsm_order.yaml"))
    export_registry(spec, tmp_path / "f.cvm", allow_unverified=True)
    with pytest.raises(lite.LiteError) as info:
        lite.load(str(tmp_path / "f.cvm"))
    assert info.value.reason == "unverified"
    lm = lite.load(str(tmp_path / "f.cvm"), allow_unverified=True)
    assert lm.verification["verdict"] == "fail"


def test_gsm_file(tmp_path):
    (tmp_path / "g.json").write_text(GSM_ORDER)
    lm = lite.load(str(tmp_path / "g.json"))
    m = Machine.load(str(tmp_path / "g.json"))
    assert lm.step == [row.tolist() for row in m.tables]
    assert lm.nf == m.nf_table.tolist()
    assert lm.decode(lm.run(["pay", "ship"])) == {"status": "shipped", "paid": True}
    assert lm.verification["source"] == "gsm"
    ours = Machine._from_analysis(gsm_order_registry().analyze())
    assert lm.nf == ours.nf_table.tolist()


def test_loads_accepts_parsed_documents(tmp_path):
    m = order_registry().build()
    m.export(str(tmp_path / "o.json"))
    doc = json.loads((tmp_path / "o.json").read_text())
    assert lite.loads(doc).run(["pay"]) == m.run(["pay"]).id
    assert lite.loads((tmp_path / "o.json").read_text()).size == m.size


def test_lite_imports_only_the_standard_library():
    tree = ast.parse(LITE.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "lite must not import from its package"
            names.add(node.module.split(".")[0])
    assert names and names <= set(sys.stdlib_module_names) | {"__future__"}, names


def test_lite_runs_as_a_lone_file_without_numpy(exported, rich):
    """Copied on its own, with numpy unimportable."""
    script = (
        "import sys, importlib.util, json\n"
        "sys.modules['numpy'] = None\n"
        f"spec = importlib.util.spec_from_file_location('lite', {str(LITE)!r})\n"
        "lite = importlib.util.module_from_spec(spec); spec.loader.exec_module(lite)\n"
        "out = {}\n"
        f"for name in {FORMATS!r}:\n"
        f"    m = lite.load({str(exported)!r} + '/' + name)\n"
        "    out[name] = m.decode(m.run(['submit', 'up', 'approve', 'tick', 'toggle']))\n"
        "assert 'convergent' not in sys.modules\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    want = rich.run(["submit", "up", "approve", "tick", "toggle"]).to_dict()
    assert json.loads(res.stdout) == {name: want for name in FORMATS}
