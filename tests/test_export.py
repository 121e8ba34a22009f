"""Machine files: export -> load round trips, refused files, unverified
machines, gsm imports and the ``convergent export`` command."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import machines

from convergent import BuildError, ConvergentError, Machine, Registry, load_spec
from convergent.cli import main
from convergent.export import (
    ExportError,
    MachineFileError,
    content_hash,
    export_machine,
    export_registry,
    load_machine,
)

ROOT = Path(__file__).resolve().parent.parent
FORMATS = {"json": "m.json", "json.gz": "m.json.gz", "binary": "m.cvm"}


def order_registry() -> Registry:
    r = Registry("order")
    status = r.enum("status", "pending", "paid", "shipped")
    paid = r.bool("paid")
    inv = r.int("inventory", 0, 5)
    r.invariant("no_ship_unpaid", holds=lambda s: s[status] != "shipped" or s[paid],
                repair=lambda s: s.set(status, "pending"))
    r.event("pay", guard=lambda s: s[status] == "pending",
            apply=lambda s: s.set(status, "paid").set(paid, True))
    r.event("restock", apply=lambda s: s.set(inv, s[inv] + 1))
    return r


def rich_registry() -> Registry:
    """840 states (two-byte ids), negative ints, an error-overflow int behind a guard."""
    r = Registry("rich", version=3)
    phase = r.enum("phase", "draft", "review", "done")
    locked = r.bool("locked")
    score = r.int("score", -3, 3)
    count = r.int("count", 0, 9, overflow="error")
    flag = r.bool("flag")
    r.invariant("done_locked", holds=lambda s: s[phase] != "done" or s[locked],
                repair=lambda s: s.set(locked, True))
    r.invariant("score_floor", holds=lambda s: s[score] > -3, repair=lambda s: s.set(score, -2))
    r.event("submit", guard=lambda s: s[phase] == "draft", apply=lambda s: s.set(phase, "review"))
    r.event("approve", guard=lambda s: s[phase] == "review", apply=lambda s: s.set(phase, "done"))
    r.event("up", apply=lambda s: s.set(score, s[score] + 1))
    r.event("down", apply=lambda s: s.set(score, s[score] - 1))
    r.event("tick", guard=lambda s: s[count] < 9, apply=lambda s: s.set(count, s[count] + 1))
    r.event("toggle", apply=lambda s: s.set(flag, not s[flag]))
    r.independent("tick", "toggle")
    r.independent("submit", "toggle")
    return r


@pytest.fixture(scope="module")
def order() -> Machine:
    return order_registry().build()


@pytest.fixture(scope="module")
def rich() -> Machine:
    return rich_registry().build()


def report_json(m: Machine) -> str:
    return json.dumps(m.report.to_dict(), sort_keys=True)


def assert_same_machine(a: Machine, b: Machine) -> None:
    assert (b.name, b.version, b.vars, b.events, b.size) == (a.name, a.version, a.vars,
                                                             a.events, a.size)
    assert b.initial.id == a.initial.id
    assert np.array_equal(b.tables, a.tables)
    assert np.array_equal(b.nf_table, a.nf_table)
    assert np.array_equal(b.valid_table, a.valid_table)
    assert np.array_equal(b.fires_table, a.fires_table)
    assert report_json(b) == report_json(a)
    assert b.report.events == a.report.events
    assert b.independent == a.independent
    assert b.policy_digest == a.policy_digest


# ------------------------------------------------------------ round trips

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["order", "rich"])
def test_round_trip(request, tmp_path, fmt, which):
    m = request.getfixturevalue(which)
    path = tmp_path / FORMATS[fmt]
    info = export_machine(m, path)
    assert info.format == fmt and info.verified and info.bytes == path.stat().st_size
    loaded = Machine.load(str(path))
    assert_same_machine(m, loaded)
    assert loaded.meta["format"] == fmt
    assert loaded.meta["content_hash"] == info.content_hash == content_hash(m)
    # the loaded machine runs: same states, same decoded values
    trace = list(m.events) * 3
    assert loaded.run(trace).to_dict() == m.run(trace).to_dict()
    assert loaded.enabled(loaded.initial) == m.enabled(m.initial)


def test_hash_does_not_depend_on_the_format(tmp_path, rich):
    hashes = {export_machine(rich, tmp_path / name).content_hash for name in FORMATS.values()}
    assert len(hashes) == 1


def test_re_export_of_a_loaded_machine_is_identical(tmp_path, rich):
    rich.export(str(tmp_path / "a.json"))
    again = Machine.load(str(tmp_path / "a.json"))
    again.export(str(tmp_path / "b.json"))
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    again.export(str(tmp_path / "a.cvm"))
    Machine.load(str(tmp_path / "a.cvm")).export(str(tmp_path / "b.cvm"))
    assert (tmp_path / "a.cvm").read_bytes() == (tmp_path / "b.cvm").read_bytes()


def test_json_has_gsm_keys_and_the_encoding(tmp_path, order):
    order.export(str(tmp_path / "m.json"))
    doc = json.loads((tmp_path / "m.json").read_text())
    for key in ("name", "version", "vars", "events", "nf", "step", "verification",
                "initial", "encoding", "hash"):
        assert key in doc
    assert doc["events"] == ["pay", "restock"]
    assert doc["vars"][0] == {"name": "status", "kind": "enum", "domain": 3,
                              "labels": ["pending", "paid", "shipped"]}
    assert doc["vars"][2]["min"] == 0 and doc["vars"][2]["max"] == 5
    assert doc["encoding"] == {"type": "mixed-radix", "radix": [3, 2, 6],
                               "least_significant": "first"}
    v = doc["verification"]
    assert v["verified"] is True and v["wfc"] is True and v["cc"] is True
    assert v["state_count"] == 36 and v["event_count"] == 2
    # a gsm-style runtime: step[events.index(e)][state]
    s = doc["initial"]
    s = doc["step"][doc["events"].index("pay")][s]
    assert order.decode(s) == {"status": "paid", "paid": True, "inventory": 0}
    assert doc["nf"] == order.nf_table.tolist() and doc["step"] == order.tables.tolist()


@pytest.mark.parametrize("states,dtype", [(36, "u1"), (300, "u2"), (90_000, "u4")])
def test_binary_tables_use_the_narrowest_type_and_are_mapped(tmp_path, states, dtype):
    r = Registry("w")
    if states == 36:
        a = r.int("a", 0, 35)
    elif states == 300:
        a = r.int("a", 0, 299)
    else:
        a = r.int("a", 0, 299)
        r.int("b", 0, 299)
    r.event("inc", apply=lambda s: s.set(a, s[a] + 1))
    m = r.build()
    m.export(str(tmp_path / "w.cvm"))
    loaded = Machine.load(str(tmp_path / "w.cvm"))
    assert loaded.tables.dtype == np.dtype(dtype) and loaded.nf_table.dtype == np.dtype(dtype)
    assert not loaded.tables.flags.writeable
    base = loaded.tables
    while getattr(base, "base", None) is not None:
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    assert type(base).__name__ == "mmap"
    assert np.array_equal(loaded.tables, m.tables)


def test_export_without_fires(tmp_path, order):
    info = export_machine(order, tmp_path / "m.cvm", fires=False)
    loaded = Machine.load(str(tmp_path / "m.cvm"))
    assert np.array_equal(loaded.tables, order.tables)
    with pytest.raises(ConvergentError, match="fires"):
        loaded.enabled(loaded.initial)
    assert info.content_hash != content_hash(order)
    with pytest.raises(ExportError, match="fires=False"):
        export_machine(loaded, tmp_path / "again.cvm", fires=True)


def test_format_from_name_or_option(tmp_path, order):
    assert export_machine(order, tmp_path / "x.bin").format == "binary"
    assert export_machine(order, tmp_path / "x.dat", format="json").format == "json"
    assert load_machine(tmp_path / "x.dat").meta["format"] == "json"
    with pytest.raises(ExportError, match="cannot tell the format"):
        export_machine(order, tmp_path / "x.txt")
    with pytest.raises(ExportError, match="format='yaml'"):
        export_machine(order, tmp_path / "x.json", format="yaml")
    with pytest.raises(ExportError, match="needs a Machine"):
        export_machine(order_registry(), tmp_path / "x.json")
    assert sorted(os.listdir(tmp_path)) == ["x.bin", "x.dat"]  # no temporary left behind


# ------------------------------------------------------------ refused files

@pytest.fixture
def files(tmp_path, rich):
    out = {}
    for fmt, name in FORMATS.items():
        export_machine(rich, tmp_path / name)
        out[fmt] = tmp_path / name
    return out


def refused(path: Path, reason: str, **options) -> MachineFileError:
    with pytest.raises(MachineFileError) as info:
        Machine.load(str(path), **options)
    assert info.value.reason == reason, str(info.value)
    assert str(path) in str(info.value)
    return info.value


def binary_layout(path: Path) -> dict:
    data = path.read_bytes()
    (hlen,) = struct.unpack("<I", data[4:8])
    return json.loads(data[8:8 + hlen])


@pytest.mark.parametrize("cut", [3, 100, 5000, -1])
def test_truncated_binary(files, cut):
    data = files["binary"].read_bytes()
    files["binary"].write_bytes(data[:cut] if cut > 0 else data[:cut])
    refused(files["binary"], "truncated")


def test_binary_with_trailing_bytes(files):
    with open(files["binary"], "ab") as f:
        f.write(b"\0" * 64)
    assert "trailing" in str(refused(files["binary"], "format"))


@pytest.mark.parametrize("table", ["nf", "step", "fires"])
def test_edited_binary_table(files, table):
    off = binary_layout(files["binary"])["arrays"][table]["offset"]
    data = bytearray(files["binary"].read_bytes())
    data[off + 7] ^= 1
    files["binary"].write_bytes(bytes(data))
    err = refused(files["binary"], "hash")
    assert "content hash mismatch" in str(err)
    Machine.load(str(files["binary"]), verify=False)  # the hash is what caught it


def test_edited_binary_valid_table(files):
    off = binary_layout(files["binary"])["arrays"]["valid"]["offset"]
    data = bytearray(files["binary"].read_bytes())
    data[off] ^= 1
    files["binary"].write_bytes(bytes(data))
    refused(files["binary"], "hash")


def test_edited_binary_header(files):
    data = files["binary"].read_bytes()
    files["binary"].write_bytes(data.replace(b'"name":"rich"', b'"name":"rick"', 1))
    refused(files["binary"], "hash")


def test_binary_of_another_version(files):
    data = files["binary"].read_bytes()
    files["binary"].write_bytes(b"CVM2" + data[4:])
    assert "version" in str(refused(files["binary"], "version"))
    files["binary"].write_bytes(data.replace(b'"format_version":1', b'"format_version":7', 1))
    refused(files["binary"], "version")


def test_edited_json(files):
    doc = json.loads(files["json"].read_text())
    doc["step"][2][5] = (doc["step"][2][5] + 1) % doc["states"]
    files["json"].write_text(json.dumps(doc))
    refused(files["json"], "hash")
    doc = json.loads(files["json"].read_text())
    doc["events"][0] = "send"
    files["json"].write_text(json.dumps(doc))
    refused(files["json"], "hash")


def test_json_out_of_range_and_wrong_shapes(files):
    doc = json.loads(files["json"].read_text())
    doc["step"][0][0] = doc["states"]
    files["json"].write_text(json.dumps(doc))
    assert "step must be" in str(refused(files["json"], "format", verify=False))
    doc["step"][0] = doc["step"][0][:-1]
    files["json"].write_text(json.dumps(doc))
    refused(files["json"], "format")


def test_json_of_another_version_truncated_or_foreign(files, tmp_path):
    text = files["json"].read_text()
    files["json"].write_text(text.replace('"format_version": 1', '"format_version": 2', 1))
    refused(files["json"], "version")
    files["json"].write_text(text[: len(text) // 2])
    refused(files["json"], "truncated")
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    assert "not a convergent machine file" in str(refused(other, "format"))
    other.write_bytes(b"\x00\x01garbage")
    refused(other, "format")


def test_truncated_gzip(files):
    data = files["json.gz"].read_bytes()
    files["json.gz"].write_bytes(data[: len(data) // 2])
    refused(files["json.gz"], "truncated")


# ------------------------------------------------------------ unverified machines

@pytest.fixture(scope="module")
def failing_spec():
    return load_spec(str(ROOT / "examples" / "gsm_order.yaml"))


def test_unverified_export_is_refused_then_marked(tmp_path, failing_spec):
    with pytest.raises(ExportError, match="allow_unverified"):
        export_registry(failing_spec, tmp_path / "f.json")
    assert not (tmp_path / "f.json").exists()
    for name in ("f.json", "f.cvm"):
        info = export_registry(failing_spec, tmp_path / name, allow_unverified=True)
        assert info.verified is False
        err = refused(tmp_path / name, "unverified")
        assert "allow_unverified" in str(err)
        m = Machine.load(str(tmp_path / name), allow_unverified=True)
        assert m.report.verdict == "fail"
        assert m.report.cc1.counterexample is not None  # the whole report travels
        with pytest.raises(ExportError, match="did not pass verification"):
            m.export(str(tmp_path / ("again-" + name)))
    doc = json.loads((tmp_path / "f.json").read_text())
    assert doc["verification"]["verified"] is False
    assert doc["verification"]["verdict"] == "fail" and doc["verification"]["cc"] is False


def test_flipping_the_verdict_breaks_the_hash(tmp_path, failing_spec):
    export_registry(failing_spec, tmp_path / "f.json", allow_unverified=True)
    doc = json.loads((tmp_path / "f.json").read_text())
    doc["verification"]["verified"] = True
    (tmp_path / "f.json").write_text(json.dumps(doc))
    refused(tmp_path / "f.json", "hash")


def test_wfc_failure_cannot_be_exported(tmp_path):
    r = Registry("loop")
    x = r.bool("x")
    r.invariant("x_true", holds=lambda s: s[x], repair=lambda s: s.set(x, False))
    r.event("flip", apply=lambda s: s.set(x, not s[x]))
    with pytest.raises(ExportError, match="WFC"):
        export_registry(r, tmp_path / "l.json", allow_unverified=True)
    assert list(tmp_path.iterdir()) == []


def test_export_registry_of_a_passing_registry(tmp_path, rich):
    info = export_registry(rich_registry(), tmp_path / "r.cvm")
    assert info.verified and info.content_hash == content_hash(rich)
    with pytest.raises(ExportError, match="Registry or a MachineSpec"):
        export_registry(rich, tmp_path / "r.cvm")


# ------------------------------------------------------------ gsm imports

# Written by hand in the shape of gsm's Machine.Export (Go): vars in bits,
# status in bits 0-1 (3 of 4 codes used), paid in bit 2; packed id =
# status + 4 * paid; codes 3 and 7 are not states (gsm leaves them 3/7 in nf
# and 0 in step). Invariant: shipped => paid (repair: status := pending);
# pay: pending -> paid and paid := true; ship: paid -> shipped.
GSM_ORDER = """{
  "name": "gsm_order",
  "version": 1,
  "vars": [
    {"name": "status", "kind": "enum", "labels": ["pending", "paid", "shipped"]},
    {"name": "paid", "kind": "bool"}
  ],
  "events": ["pay", "ship"],
  "nf":   [0, 1, 0, 3, 4, 5, 6, 7],
  "step": [
    [5, 1, 0, 0, 5, 5, 6, 0],
    [0, 0, 0, 0, 4, 6, 6, 0]
  ],
  "verification": {"wfc": true, "cc": true, "max_repair_depth": 1,
                   "state_count": 8, "event_count": 2},
  "exported_at": "2026-02-18T07:00:00Z"
}
"""


def gsm_order_registry() -> Registry:
    r = Registry("gsm_order")
    status = r.enum("status", "pending", "paid", "shipped")
    paid = r.bool("paid")
    r.invariant("no_ship_unpaid", holds=lambda s: s[status] != "shipped" or s[paid],
                repair=lambda s: s.set(status, "pending"))
    r.event("pay", guard=lambda s: s[status] == "pending",
            apply=lambda s: s.set(status, "paid").set(paid, True))
    r.event("ship", guard=lambda s: s[status] == "paid", apply=lambda s: s.set(status, "shipped"))
    return r


def test_gsm_file_loads_as_the_same_machine(tmp_path):
    path = tmp_path / "order.gsm.json"
    path.write_text(GSM_ORDER)
    m = Machine.load(str(path))
    # pay and ship are causally ordered (gsm: OnlyDeclaredPairs, no pair): the
    # tables are what we compare, not the proof
    ours = Machine._from_analysis(gsm_order_registry().analyze())
    assert m.vars == ours.vars and m.events == ours.events
    assert np.array_equal(m.nf_table, ours.nf_table)
    assert np.array_equal(m.valid_table, ours.valid_table)
    valid = ours.valid_table
    assert np.array_equal(m.tables[:, valid], ours.tables[:, valid])
    assert m.run(["pay", "ship"]).to_dict() == {"status": "shipped", "paid": True}
    assert m.meta["format"] == "gsm" and m.report.ok
    assert "gsm" in m.report.warnings[0]
    # re-exported in convergent's format, it loads with a hash
    m.export(str(tmp_path / "order.json"))
    assert np.array_equal(Machine.load(str(tmp_path / "order.json")).tables, m.tables)


def gsm_export(m: Machine, *, omit_zero_bounds: bool = True) -> dict:
    """What gsm would write for ``m``: bit-packed ids (our own packing code)."""
    bits = [max(v.size - 1, 0).bit_length() for v in m.vars]
    offsets = [sum(bits[:i]) for i in range(len(bits))]
    packed_n = 1 << sum(bits)

    def pack(sid: int) -> int:
        d = m.decode(sid)
        return sum(v.digit(d[v.name]) << off for v, off in zip(m.vars, offsets))

    packed = [pack(s) for s in range(m.size)]
    nf = list(range(packed_n))
    step = [[0] * packed_n for _ in m.events]
    for s, p in enumerate(packed):
        nf[p] = packed[int(m.nf_table[s])]
        for e in range(len(m.events)):
            step[e][p] = packed[int(m.tables[e, s])]
    vars_ = []
    for v in m.vars:
        d = {"name": v.name, "kind": v.kind}
        if v.kind == "enum":
            d["labels"] = list(v.values)
        if v.kind == "int":
            for key, val in (("min", v.lo), ("max", v.hi)):
                if val != 0 or not omit_zero_bounds:
                    d[key] = val
        vars_.append(d)
    return {"name": m.name, "version": 1, "vars": vars_, "events": list(m.events), "nf": nf,
            "step": step, "verification": {"wfc": True, "cc": True, "max_repair_depth": 0,
                                           "state_count": packed_n,
                                           "event_count": len(m.events)},
            "exported_at": "2026-01-01T00:00:00Z"}


def test_gsm_layout_with_ints_and_omitted_bounds(tmp_path):
    r = Registry("ints")
    a = r.int("a", 0, 4)       # min 0: gsm omits it
    b = r.int("b", -2, 0)      # max 0: gsm omits it
    c = r.enum("c", "x", "y", "z", "w", "v")
    r.event("inc", apply=lambda s: s.set(a, s[a] + 1))
    r.event("dec", apply=lambda s: s.set(b, s[b] - 1))
    r.event("rot", apply=lambda s: s.set(c, {"x": "y", "y": "z", "z": "w", "w": "v",
                                             "v": "x"}[s[c]]))
    m = r.build()
    doc = gsm_export(m)
    assert "min" not in doc["vars"][0] and "max" not in doc["vars"][1]
    (tmp_path / "ints.json").write_text(json.dumps(doc))
    loaded = Machine.load(str(tmp_path / "ints.json"))
    assert loaded.vars == m.vars
    assert np.array_equal(loaded.tables, m.tables)
    assert np.array_equal(loaded.nf_table, m.nf_table)


def test_gsm_file_refusals(tmp_path):
    path = tmp_path / "g.json"
    doc = json.loads(GSM_ORDER)
    doc["step"][0][0] = 3                     # a code that is not a state
    path.write_text(json.dumps(doc))
    assert "encoding outside" in str(refused(path, "format"))
    doc = json.loads(GSM_ORDER)
    doc["nf"] = doc["nf"][:-1]
    path.write_text(json.dumps(doc))
    refused(path, "format")
    doc = json.loads(GSM_ORDER)
    doc["verification"]["cc"] = False
    path.write_text(json.dumps(doc))
    refused(path, "unverified")
    assert Machine.load(str(path), allow_unverified=True).report.verdict == "fail"


# ------------------------------------------------------------ the command line

def test_cli_export(tmp_path, capsys):
    out = tmp_path / "order.cvm"
    assert main(["export", str(ROOT / "examples" / "order_fulfillment.yaml"), "-o",
                 str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    m = Machine.load(str(out))
    assert m.name == "order_fulfillment" and m.report.ok
    assert main(["export", str(ROOT / "examples" / "order_fulfillment.yaml"), "-o",
                 str(tmp_path / "o.data"), "--format", "json.gz"]) == 0
    assert Machine.load(str(tmp_path / "o.data")).meta["format"] == "json.gz"


def test_cli_export_unverified(tmp_path, capsys):
    spec = str(ROOT / "examples" / "gsm_order.yaml")
    out = tmp_path / "f.json"
    assert main(["export", spec, "-o", str(out)]) == 1
    assert "--allow-unverified" in capsys.readouterr().err and not out.exists()
    assert main(["export", spec, "-o", str(out), "--allow-unverified"]) == 0
    assert "UNVERIFIED" in capsys.readouterr().out
    refused(out, "unverified")


def test_cli_export_bad_input(tmp_path, capsys):
    spec = str(ROOT / "examples" / "order_fulfillment.yaml")
    assert main(["export", spec, "-o", str(tmp_path / "x.txt")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "x.json")]) == 2


# ------------------------------------------------------------ random machines

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gm=machines(), fmt=st.sampled_from(sorted(FORMATS)), seed=st.integers(0, 2**32 - 1))
def test_random_machines_round_trip(tmp_path_factory, gm, fmt, seed):
    from convergent.engine.check import analyze
    try:
        an = analyze(gm.to_spec())
    except BuildError:
        return  # a function fails to evaluate: no machine
    if an.step is None:
        return  # WFC fails: nothing to export (tested above)
    m = Machine._from_analysis(an)
    path = tmp_path_factory.mktemp("rt") / FORMATS[fmt]
    export_machine(m, path, allow_unverified=True)
    loaded = Machine.load(str(path), allow_unverified=True)
    assert_same_machine(m, loaded)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, m.size, 8)
    for s in starts:
        trace = rng.integers(0, len(m.events), 20).tolist()
        assert loaded.run(trace, loaded.state(int(s))).id == m.run(trace, m.state(int(s))).id
