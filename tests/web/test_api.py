"""The inspector's JSON API through Starlette's TestClient: every view
checked against the engine's own values, bad input refused, headers set."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
pytest.importorskip("httpx", reason="httpx (for starlette's TestClient) is not installed")

with warnings.catch_warnings():
    # starlette asks for httpx2 when it finds httpx; either drives the TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from convergent.spec.loader import load_spec  # noqa: E402
from convergent.web import create_app, inspect_spec  # noqa: E402
from convergent.web.inspection import Inspection  # noqa: E402

from .hostile import MACHINE, hostile_spec  # noqa: E402
from .machines import cc2_fails, looping  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def insps() -> list[Inspection]:
    return [inspect_spec(0, "gsm_order.yaml", load_spec(str(ROOT / "examples/gsm_order.yaml"))),
            inspect_spec(1, "bank_account.yaml",
                         load_spec(str(ROOT / "examples/bank_account.yaml"))),
            inspect_spec(2, "loops", looping()),
            inspect_spec(3, "lazy", cc2_fails()),
            inspect_spec(4, "hostile", hostile_spec())]


@pytest.fixture(scope="module")
def client(insps: list[Inspection]) -> Any:
    with TestClient(create_app(insps), base_url="http://127.0.0.1:8765") as c:
        yield c


def test_specs_list(client: Any) -> None:
    got = client.get("/api/specs").json()
    assert [(s["id"], s["machine"], s["verdict"]) for s in got] == [
        (0, "order_fulfillment", "fail"), (1, "bank_account", "pass"), (2, "loops", "fail"),
        (3, "lazy", "pass"), (4, MACHINE, "fail")]


def test_report_is_the_check_json_plus_vars(client: Any, insps: list[Inspection]) -> None:
    got = client.get("/api/specs/0/report").json()
    expected = insps[0].report.to_dict()
    for key, value in expected.items():
        assert got[key] == value, key
    assert got["summary"] == insps[0].report.summary()
    assert [v["name"] for v in got["vars"]] == ["status", "paid", "inventory"]
    assert got["explorable"] is True


def test_cc1_counterexample_replays_the_report(client: Any, insps: list[Inspection]) -> None:
    cexs = client.get("/api/specs/0/counterexamples").json()
    cc2 = insps[0].report.cc2
    assert [c["kind"] for c in cexs] == ["CC1"] + (["CC2"] if cc2 and not cc2.ok else [])
    c = cexs[0]
    cex = insps[0].report.cc1.counterexample  # type: ignore[union-attr]
    assert c["events"] == list(cex.events) and c["problems"] == []
    assert c["start"]["values"] == insps[0].report.initial
    assert [t["event"] for t in c["trace"]] == cex.trace
    assert c["trace"][-1]["after"]["values"] == cex.state == c["at"]["values"]
    # each step starts where the previous ended
    for prev, nxt in zip(c["trace"], c["trace"][1:]):
        assert prev["after"] == nxt["before"]
    o1, o2 = c["orders"]
    assert o1["final"]["values"] == cex.order1 and o2["final"]["values"] == cex.order2
    assert o1["events"] == list(cex.events) and o2["events"] == list(cex.events)[::-1]
    assert c["differs"] == [k for k in cex.order1 if cex.order1[k] != cex.order2[k]]
    assert c["differs"]


def test_wfc_counterexample_shows_the_cycle(client: Any, insps: list[Inspection]) -> None:
    (c,) = client.get("/api/specs/2/counterexamples").json()
    cex = insps[2].report.wfc.counterexample
    assert c["kind"] == "WFC" and c["problems"] == []
    assert [x["invariant"] for x in c["cycle"]] == cex.repairs  # type: ignore[union-attr]
    assert [x["state"]["values"] for x in c["cycle"]] == cex.cycle  # type: ignore[union-attr]
    assert c["cycle"][-1]["next"] == c["cycle"][0]["state"]
    assert c["trace"][-1]["loops"] is True
    assert c["trace"][-1]["raw"]["values"] == cex.state  # type: ignore[union-attr]
    r = client.get("/api/specs/2/states")
    assert r.status_code == 409 and "WFC" in r.json()["error"]


def test_cc2_counterexample_has_both_orders(client: Any, insps: list[Inspection]) -> None:
    (c,) = client.get("/api/specs/3/counterexamples").json()
    cex = insps[3].report.cc2.counterexample  # type: ignore[union-attr]
    assert c["kind"] == "CC2" and c["problems"] == []
    direct, repaired = c["orders"]
    assert direct["final"]["values"] == cex.direct
    assert repaired["final"]["values"] == cex.after_repair
    assert repaired["steps"][0]["event"] is None
    assert repaired["steps"][0]["repairs"][0]["invariant"] == "no_x"
    assert c["differs"] == ["y"]


def test_passing_machine_has_no_blocking_counterexample(client: Any) -> None:
    """bank_account passes; CC2 (only required with --strict) fails, and is
    shown as informational."""
    cexs = client.get("/api/specs/1/counterexamples").json()
    assert [(c["kind"], c["blocking"]) for c in cexs] == [("CC2", False)]
    gsm = client.get("/api/specs/0/counterexamples").json()
    assert [c["blocking"] for c in gsm] == [True, False]


def test_states_pages_and_search(client: Any, insps: list[Inspection]) -> None:
    reach = insps[0].analysis.reach.tolist()  # type: ignore[union-attr]
    got = client.get("/api/specs/0/states", params={"size": 5}).json()
    assert got["total"] == len(reach) and got["pages"] == -(-len(reach) // 5)
    assert [s["id"] for s in got["states"]] == reach[:5]
    last = client.get("/api/specs/0/states", params={"size": 5, "page": got["pages"] - 1})
    assert [s["id"] for s in last.json()["states"]] == reach[(got["pages"] - 1) * 5:]
    paid = client.get("/api/specs/0/states", params={"q": "status = paid, inventory!=0"}).json()
    assert paid["total"] == 5
    assert all(s["values"]["status"] == "paid" and s["values"]["inventory"] != 0
               for s in paid["states"])
    one = client.get("/api/specs/0/states", params={"q": f"#{reach[3]}"}).json()
    assert [s["id"] for s in one["states"]] == [reach[3]]
    assert client.get("/api/specs/0/states", params={"q": "paid=true"}).json()["total"] == 12


@pytest.mark.parametrize("params, message", [
    ({"q": "nosuch=1"}, "unknown var"),
    ({"q": "inventory=9"}, "expected an int in [0, 5]"),
    ({"q": "paid=maybe"}, "expected true or false"),
    ({"q": "status=lost"}, "expected one of"),
    ({"q": "status"}, "cannot read"),
    ({"q": "status='paid"}, "cannot read the query"),
    ({"q": "x" * 401}, "at most 400"),
    ({"q": "#999"}, "outside"),
    ({"size": 0}, "size=0"),
    ({"size": 201}, "size=201"),
    ({"page": -1}, "page=-1"),
    ({"page": "two"}, "expected an integer"),
])
def test_bad_queries_are_400(client: Any, params: dict[str, Any], message: str) -> None:
    r = client.get("/api/specs/0/states", params=params)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_state_detail(client: Any, insps: list[Inspection]) -> None:
    st = insps[0].stepper
    an = insps[0].analysis
    sid = st.encode({"status": "paid", "paid": True, "inventory": 2})
    got = client.get(f"/api/specs/0/states/{sid}").json()
    assert got["values"] == st.decode(sid) and got["reachable"] and got["valid"]
    assert got["enabled"] == st.enabled(sid) == ["ship_item", "restock"]
    for e, t in enumerate(got["transitions"]):
        assert t["after"]["id"] == int(an.step[e][sid])  # type: ignore[index]
    # the path replays from the initial state to this one
    cur = an.initial_id
    for step in got["path"]:
        cur = int(an.step[st.event_index(step["event"])][cur])  # type: ignore[index]
        assert cur == step["id"]
    assert cur == sid
    for p in got["predecessors"]:
        assert int(an.step[st.event_index(p["event"])][p["id"]]) == sid  # type: ignore[index]
    assert got["predecessors"]
    assert client.get("/api/specs/0/states/48").status_code == 400
    assert client.get("/api/specs/0/states/99999999999999999999").status_code == 400
    # no event ever cancels an order; shipping one is reachable
    cancelled = st.encode({"status": "cancelled", "paid": False, "inventory": 0})
    shipped = st.encode({"status": "shipped", "paid": True, "inventory": 0})
    un = client.get(f"/api/specs/0/states/{cancelled}").json()
    assert un["reachable"] is False and un["path"] is None and un["predecessors"] == []
    assert client.get(f"/api/specs/0/states/{shipped}").json()["reachable"] is True


def test_unknown_things_are_404(client: Any) -> None:
    assert client.get("/api/specs/9/report").status_code == 404
    assert client.get("/api/specs/9/report").json() == {"error": "no such machine"}
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/secret.txt").status_code == 404
    assert client.get("/api/specs/0/diagram.pdf").status_code == 404


def test_diagrams(client: Any) -> None:
    mm = client.get("/api/specs/0/diagram.mermaid")
    assert mm.status_code == 200 and mm.text.startswith("%% order_fulfillment")
    assert mm.headers["content-type"].startswith("text/plain")
    dot = client.get("/api/specs/0/diagram.dot")
    assert dot.text.startswith("digraph")
    import shutil
    svg = client.get("/api/specs/0/diagram.svg")
    if shutil.which("dot") is None:
        assert svg.status_code == 501 and "graphviz" in svg.json()["error"]
    else:
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert "sandbox" in svg.headers["content-security-policy"]


def test_security_headers_everywhere(client: Any) -> None:
    for path in ("/", "/static/app.js", "/api/specs", "/api/specs/9/report"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"


def test_read_only(client: Any) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = client.request(method, "/api/specs")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert client.head("/api/specs").status_code == 200


@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1:8765", True), ("localhost:8765", True), ("[::1]:8765", True),
    ("LOCALHOST", True), ("evil.example:8765", False), ("127.0.0.1.evil.example", False),
    ("", False),
])
def test_host_header_is_checked(client: Any, host: str, ok: bool) -> None:
    r = client.get("/api/specs", headers={"host": host})
    assert (r.status_code == 200) == ok


def test_page_carries_no_data(client: Any) -> None:
    """The HTML is static: names reach the page only as JSON, set as text."""
    html = client.get("/").text
    assert "order_fulfillment" not in html and "<script src=\"/static/app.js\"" in html
    js = client.get("/static/app.js").text
    assert "innerHTML" not in js and "eval(" not in js and "insertAdjacentHTML" not in js


def test_hostile_names_travel_as_data(client: Any) -> None:
    from .hostile import EVENT, INVARIANT, Q, VAR
    rep = client.get("/api/specs/4/report").json()
    assert rep["machine"] == MACHINE and EVENT in rep["footprints"]
    assert INVARIANT in rep["invariant_footprints"]
    (c,) = client.get("/api/specs/4/counterexamples").json()
    assert c["events"] == [EVENT, "set_flag"]
    values = [o["final"]["values"][VAR] for o in c["orders"]]
    assert Q in values
    mm = client.get("/api/specs/4/diagram.mermaid").text
    assert "<script" not in mm and "<img" not in mm and "<svg" not in mm


def test_state_neighbourhood_diagram(client: Any, insps: list[Inspection]) -> None:
    import shutil
    st = insps[0].stepper
    sid = st.encode({"status": "paid", "paid": True, "inventory": 2})
    mm = client.get(f"/api/specs/0/states/{sid}/diagram.mermaid").text
    assert f"s{sid}" in mm and "ship_item" in mm and "restock" in mm
    assert client.get(f"/api/specs/0/states/{st.size}/diagram.dot").status_code == 400
    assert client.get(f"/api/specs/0/states/{sid}/diagram.gif").status_code == 404
    assert client.get(f"/api/specs/2/states/0/diagram.dot").status_code == 409
    svg = client.get(f"/api/specs/0/states/{sid}/diagram.svg")
    assert svg.status_code == (200 if shutil.which("dot") else 501)


def test_replicas_endpoint_without_files(client: Any) -> None:
    got = client.get("/api/replicas").json()
    assert got["enabled"] is False and got["replicas"] == [] and got["groups"] == []
