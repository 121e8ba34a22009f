"""Replicas of a federation on the simulated network: each registry's
replicas own their vars, projections travel late, twice and out of order,
stale ones are refused and counted, and every view ends equal to the
FederatedMachine run of the same events."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from convergent.federation import (
    FederatedReplica,
    FederationError,
    LocalProjectionBus,
    Projection,
    ProjectionError,
)
from convergent.runtime import Replica, SimNetwork

ROOT = Path(__file__).resolve().parents[2]


def _example() -> Any:
    path = ROOT / "examples" / "federation" / "three_services.py"
    spec = importlib.util.spec_from_file_location("three_services", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["three_services"] = mod
    spec.loader.exec_module(mod)
    return mod


EXAMPLE = _example()


class Cluster:
    """Two replicas per registry, one simulated network per registry, one
    projection bus that holds every message until told to deliver."""

    def __init__(self, seed: int, *, per: int = 2) -> None:
        self.fm = EXAMPLE.federation().build(xu=True)
        self.bus = LocalProjectionBus(hold=True)
        self.nets: dict[str, SimNetwork] = {}
        self.fr: dict[str, FederatedReplica] = {}
        for k, reg in enumerate(self.fm.names):
            net = SimNetwork(seed=seed + k, delay=(1, 30), duplicate=0.2, drop=0.1)
            self.nets[reg] = net
            for i in range(per):
                rid = f"{reg}-{i}"
                r = Replica(self.fm.machine(reg), id=rid, transport=net.transport(rid))
                fr = FederatedReplica(self.fm, reg, r)
                self.bus.link(fr)
                self.fr[rid] = fr

    def settle(self, rng: random.Random, *, drop: float = 0.0) -> None:
        """Run the networks, deliver projections shuffled, with duplicates
        and (with ``drop``) losses, until nothing moves."""
        for _ in range(50):
            for net in self.nets.values():
                net.settle()
            if not self.bus.queue:
                return
            batch = list(self.bus.queue)
            self.bus.queue.clear()
            batch += rng.sample(batch, k=len(batch) // 3)
            rng.shuffle(batch)
            self.bus.deliver([m for m in batch if rng.random() >= drop])
        raise AssertionError("projections did not settle")

    def republish(self, rng: random.Random) -> None:
        """What the links do periodically: every service sends its latest
        projections again; delivered without loss."""
        for fr in self.fr.values():
            fr.publish()
        self.settle(rng)


@pytest.mark.parametrize("seed, drop", [(0, 0.0), (1, 0.0), (2, 0.3), (3, 0.3), (4, 0.6)])
def test_views_converge_to_the_federated_machine(seed: int, drop: float) -> None:
    rng = random.Random(seed)
    c = Cluster(seed)
    # each registry's events from its own replicas, interleaved with delivery
    plan = {"order": ["place", "add_item", "add_item", "cancel"],
            "payment": ["authorize", "capture", "refund"],
            "warehouse": ["pick", "pack", "ship"]}
    if seed % 2:
        plan["order"].remove("cancel")
        plan["payment"].remove("refund")
    done: list[tuple[str, str]] = []
    cursors = {reg: 0 for reg in plan}
    while any(cursors[r] < len(plan[r]) for r in plan):
        reg = rng.choice([r for r in plan if cursors[r] < len(plan[r])])
        ev = plan[reg][cursors[reg]]
        cursors[reg] += 1
        # the registry's previous event must have reached this replica (causal
        # order for events that do not commute): emit on a settled replica
        c.nets[reg].settle()
        c.fr[f"{reg}-{rng.randrange(2)}"].replica.emit(ev)
        done.append((reg, ev))
        if rng.random() < 0.5:
            c.settle(rng, drop=drop)
    c.settle(rng, drop=drop)
    c.republish(rng)
    want = c.fm.decode(c.fm.run(done))
    for rid, fr in c.fr.items():
        assert fr.view == want[fr.registry], (rid, fr.status())
    stats = [fr.stats for fr in c.fr.values()]
    assert sum(s.accepted for s in stats) > 0
    assert sum(s.duplicate + s.stale + s.concurrent for s in stats) > 0
    assert all(s.conflict == 0 and s.refused == 0 for s in stats)


def _setup() -> tuple[Cluster, FederatedReplica, FederatedReplica]:
    c = Cluster(0, per=1)
    return c, c.fr["payment-0"], c.fr["order-0"]


def test_a_stale_projection_is_refused_and_counted() -> None:
    c, pay, order = _setup()
    order.replica.emit("place")
    (old,) = [p for p in order.projections() if p.morphism == "order_status"]
    order.replica.emit("cancel")
    (new,) = [p for p in order.projections() if p.morphism == "order_status"]
    assert pay.receive_projection(new) == "accepted"
    assert pay.view["order_open"] is False
    assert pay.receive_projection(old) == "stale"
    assert pay.view["order_open"] is False and pay.stats.stale == 1
    assert pay.receive_projection(new) == "duplicate"
    forged = Projection(**{**new.__dict__, "values": (("order_open", True),)})
    assert pay.receive_projection(forged) == "conflict"
    assert pay.stats.conflict == 1 and pay.view["order_open"] is False


def test_concurrent_projections_wait_for_a_newer_one() -> None:
    c = Cluster(1)
    a, b = c.fr["order-0"], c.fr["order-1"]
    pay = c.fr["payment-0"]
    a.replica.emit("place")            # the networks are not run: a and b diverge
    b.replica.emit("add_item")
    pa = [p for p in a.projections() if p.morphism == "order_status"][0]
    pb = [p for p in b.projections() if p.morphism == "order_status"][0]
    assert pay.receive_projection(pa) == "accepted"
    assert pay.receive_projection(pb) == "concurrent"
    c.nets["order"].settle()
    pab = [p for p in b.projections() if p.morphism == "order_status"][0]
    assert pay.receive_projection(pab) == "accepted"
    assert pay.view["order_open"] is True


def _wire(p: Projection, **edit: Any) -> bytes:
    d = p.to_dict()
    d.update(edit)
    return json.dumps(d).encode()


@pytest.mark.parametrize("edit, match", [
    ({"digest": "0" * 64}, "this service runs"),
    ({"federation": "other"}, "this service runs"),
    ({"morphism": "payment_status"}, "not a morphism into"),
    ({"source": "warehouse"}, "not a morphism into"),
    ({"values": {"order_open": 3}}, "order_open"),
    ({"values": {"order_open": True, "extra": 1}}, "expected exactly"),
    ({"version": {"nowhere": {"order-0": 1}}}, "not paths back"),
])
def test_projections_a_service_cannot_accept_are_refused(edit: dict[str, Any],
                                                         match: str) -> None:
    c, pay, order = _setup()
    order.replica.emit("place")
    (p,) = [p for p in order.projections() if p.morphism == "order_status"]
    before = pay.view
    with pytest.raises(ProjectionError, match=match):
        pay.receive_projection(Projection.from_wire(_wire(p, **edit)))
    assert pay.view == before and pay.stats.refused == 1 and pay.stats.accepted == 0


def test_a_value_the_source_never_gives_is_refused() -> None:
    """The warehouse's ``paid`` is ``captured and not refunded``; both values
    are images, so forge a map-valid-looking but impossible image through a
    registry whose map is constant."""
    from convergent import Registry
    from convergent.federation import Federation
    a = Registry("a")
    a.bool("x")
    a.event("e", apply={"x": "true"})
    b = Registry("b")
    b.bool("y")
    b.bool("z")
    b.event("f", apply={"z": "true"})
    fed = Federation("const").registry(a).registry(b)
    fed.morphism("a", "b", shared=["y"], map={"y": "false"})
    fm = fed.build(xu=True)
    ra = FederatedReplica(fm, "a", Replica(fm.machine("a"), id="a1"))
    rb = FederatedReplica(fm, "b", Replica(fm.machine("b"), id="b1"))
    ra.replica.emit("e")
    (p,) = ra.projections()
    with pytest.raises(ProjectionError, match="not an image"):
        rb.receive_projection(Projection.from_wire(_wire(p, values={"y": True})))
    assert rb.receive_projection(p) == "accepted"


@pytest.mark.parametrize("data, match", [
    (b"{", "not JSON"),
    (b"[" * 50_000 + b"]" * 50_000, "bytes|nests too deeply"),
    (b"x" * 70_000, "bytes"),
    (b"[]", "must be an object"),
    (json.dumps({"format": "x"}).encode(), "must be an object with keys"),
])
def test_malformed_wire_messages_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(ProjectionError, match=match):
        Projection.from_wire(data)
    bus = LocalProjectionBus()
    assert bus.deliver([data]) == {"malformed": 1}


def test_wire_fields_are_checked() -> None:
    c, pay, order = _setup()
    (p,) = [p for p in order.projections() if p.morphism == "order_status"]
    for edit, match in [({"origin": "a:b"}, "replica id"),
                        ({"version": {"": {"order-0": -1}}}, "2\\*\\*53"),
                        ({"version": {}}, "1 to 256 paths"),
                        ({"morphism": "1x"}, "identifier"),
                        ({"values": {"order_open": [1]}}, "bool, int or short string")]:
        with pytest.raises(ProjectionError, match=match):
            Projection.from_wire(_wire(p, **edit))


def test_only_clean_points_are_published() -> None:
    """An event accepted but not committed is not in any projection: a crash
    could lose it, and the source would then publish another state under the
    same version."""
    fm = EXAMPLE.federation().build(xu=True)
    r = Replica(fm.machine("order"), id="o1", autoflush=False)
    fr = FederatedReplica(fm, "order", r)
    bus = LocalProjectionBus(hold=True)
    bus.link(fr)
    bus.queue.clear()
    r.emit("place")
    (p,) = [p for p in fr.projections() if p.morphism == "order_status"]
    assert p.version_dict == {"": {}} and dict(p.values) == {"order_open": False}
    assert not bus.queue
    r.flush()
    (p,) = [p for p in fr.projections() if p.morphism == "order_status"]
    assert p.version_dict == {"": {"o1": 1}} and dict(p.values) == {"order_open": True}
    assert bus.queue                    # published on commit


def test_versions_carry_every_path_back() -> None:
    c = Cluster(2, per=1)
    c.fr["order-0"].replica.emit("place")
    c.fr["payment-0"].replica.emit("authorize")
    c.settle(random.Random(0))
    (p,) = c.fr["payment-0"].projections()
    assert p.version_dict == {"": {"payment-0": 1}, "order_status": {"order-0": 1}}
    held = c.fr["warehouse-0"].held["payment_status"]
    assert held.version_dict == p.version_dict


def test_the_federation_must_be_checked_with_xu_and_the_machine_must_match() -> None:
    fm = EXAMPLE.federation().build()
    with pytest.raises(FederationError, match="xu=True"):
        FederatedReplica(fm, "order", Replica(fm.machine("order"), id="o1"))
    fm = EXAMPLE.federation().build(xu=True)
    with pytest.raises(FederationError, match="does not run the machine"):
        FederatedReplica(fm, "order", Replica(fm.machine("payment"), id="o1"))


def test_a_restarted_service_relearns_its_projections(tmp_path: Path) -> None:
    """Held projections are in memory: after a restart the payment service
    holds the initial ones (and its replica its stored events) until the
    order service publishes again; then it is where it was. The order
    service's projections after its own restart carry the stored version."""
    from convergent.runtime import SQLiteStore
    fm = EXAMPLE.federation().build(xu=True)
    bus = LocalProjectionBus()
    order = FederatedReplica(fm, "order", Replica(fm.machine("order"), id="o1",
                                                   store=SQLiteStore(tmp_path / "o1.db")))
    pay = FederatedReplica(fm, "payment", Replica(fm.machine("payment"), id="p1",
                                                   store=SQLiteStore(tmp_path / "p1.db")))
    bus.link(order)
    bus.link(pay)
    order.replica.emit("place")
    pay.replica.emit("authorize")
    before = pay.view
    assert before["order_open"] is True and before["authorized"] is True
    for fr in (order, pay):
        fr.close()
        fr.replica.close()
    bus = LocalProjectionBus()
    pay = FederatedReplica(fm, "payment", Replica(fm.machine("payment"), id="p1",
                                                   store=SQLiteStore(tmp_path / "p1.db")))
    bus.link(pay)
    assert pay.view == {**before, "order_open": False}       # the initial projection
    order = FederatedReplica(fm, "order", Replica(fm.machine("order"), id="o1",
                                                   store=SQLiteStore(tmp_path / "o1.db")))
    (p,) = [p for p in order.projections() if p.morphism == "order_status"]
    assert p.version_dict == {"": {"o1": 1}}
    bus.link(order)                                          # publishes on attach
    assert pay.view == before and pay.stats.accepted == 1


def test_refresh_publishes_a_clean_point_reached_without_a_notification() -> None:
    """A commit notification can find newer events still uncommitted (an
    asynchronous store); ``refresh`` (called by the links every round)
    publishes once they are committed, with no further event."""
    fm = EXAMPLE.federation().build(xu=True)
    r = Replica(fm.machine("order"), id="o1", autoflush=False)
    fr = FederatedReplica(fm, "order", r)
    fr.close()                          # no notifications at all
    bus = LocalProjectionBus(hold=True)
    bus.link(fr)
    bus.queue.clear()
    r.emit("place")
    assert fr.refresh() is False and not bus.queue      # not committed yet
    r.flush()
    assert fr.refresh() is True and bus.queue
    assert fr.refresh() is False                        # nothing new


def test_with_members_a_replica_speaks_only_for_its_registry() -> None:
    c = Cluster(3, per=1)
    fm = c.fm
    members = {"order": ["order-0"], "payment": ["payment-0"]}
    wh = FederatedReplica(fm, "warehouse", Replica(fm.machine("warehouse"), id="w9"),
                          members=members)
    c.fr["order-0"].replica.emit("place")
    c.settle(random.Random(0))
    (p,) = c.fr["payment-0"].projections()
    assert wh.receive_projection(p) == "accepted"
    # an order replica claiming to be the payment service's publisher
    forged = json.loads(p.to_wire())
    forged["origin"] = "order-0"
    forged["version"][""] = {"payment-0": 5}
    with pytest.raises(ProjectionError, match="not a replica of 'payment'"):
        wh.receive_projection(Projection.from_dict(forged))
    forged["origin"] = "payment-0"
    forged["version"]["order_status"] = {"stranger": 9}
    with pytest.raises(ProjectionError, match=r"version\['order_status'\] names \['stranger'\]"):
        wh.receive_projection(Projection.from_dict(forged))
    with pytest.raises(FederationError, match="not registries"):
        FederatedReplica(fm, "warehouse", Replica(fm.machine("warehouse"), id="w8"),
                         members={"bank": ["b1"]})
    with pytest.raises(FederationError, match="not replica ids"):
        FederatedReplica(fm, "warehouse", Replica(fm.machine("warehouse"), id="w7"),
                         members={"order": ["a:b"]})
