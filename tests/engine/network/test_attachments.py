"""Network attachments kept in the container's config across restarts (fake dataplane)."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from engine import Engine
from engine.containers.model import StoredConfig
from engine.errors import InUse, InvalidArgument, InvalidState
from engine.network import prepare, store, teardown
from engine.network.bridge import netns_path
from engine.network.model import Attachment, NetworkSetup

from tests.engine.network.fakes import FakeDataplane, add_container

A, B = "a" * 64, "b" * 64


def stored(engine: Engine, cid: str) -> StoredConfig:
    return StoredConfig.from_json(engine.db.one("SELECT config_json FROM containers WHERE id=?",
                                                (cid,))["config_json"])


def start(engine: Engine, cid: str, name: str) -> NetworkSetup:
    """What the lifecycle does on start: prepare with the stored attachments."""
    cfg = stored(engine, cid)
    return prepare(engine, cid, name, cfg.spec, attachments=cfg.attachments())


def restart(engine: Engine, cid: str, name: str) -> NetworkSetup:
    teardown(engine, cid)
    return start(engine, cid, name)


def test_a_connect_while_running_survives_a_restart(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.4.0/24")
    add_container(net_engine, A, "web")
    start(net_engine, A, "web")
    net_engine.network_connect("app", "web", aliases=["w"], ip="10.90.4.9")
    assert stored(net_engine, A).networks == (Attachment("bridge"), Attachment("app", ("w",), "10.90.4.9"))
    s = restart(net_engine, A, "web")
    assert [(e.network, e.ifname, str(e.ip), e.aliases) for e in s.endpoints] == \
        [("portside", "eth0", "10.89.0.2", ()), ("app", "eth1", "10.90.4.9", ("w",))]
    assert "10.90.4.9\t" in s.hosts
    assert set(net_engine.network_inspect("app")["Containers"]) == {A}
    # The default route stays on eth0; eth1 was added without one.
    assert dp.route_via[netns_path(net_engine.paths, A)] == IPv4Address("10.89.0.1")


def test_connect_and_disconnect_a_stopped_container(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.5.0/24")
    add_container(net_engine, A, "idle", status="exited")
    assert net_engine.network_connect("app", "idle", aliases=["db"]) is None
    assert dp.calls == [] and store.endpoints(net_engine.db) == []
    with pytest.raises(InvalidState, match="already connected to network app"):
        net_engine.network_connect("app", "idle")
    net_engine.network_create("other", subnet="10.90.15.0/24")
    with pytest.raises(InvalidArgument):
        net_engine.network_connect("other", "idle", aliases=["not a name"])
    s = start(net_engine, A, "idle")
    assert [(e.network, e.ifname) for e in s.endpoints] == [("portside", "eth0"), ("app", "eth1")]
    teardown(net_engine, A)
    net_engine.network_disconnect("app", "idle")
    assert stored(net_engine, A).attachments() == (Attachment("bridge"),)
    with pytest.raises(InvalidState, match="not connected to network app"):
        net_engine.network_disconnect("app", "idle")
    assert [e.network for e in start(net_engine, A, "idle").endpoints] == ["portside"]


def test_a_bad_ip_for_a_stopped_container_is_refused_and_not_kept(net_engine: Engine) -> None:
    net_engine.network_create("app", subnet="10.90.6.0/24")
    add_container(net_engine, A, "idle", status="created")
    for bad in ("10.91.0.5", "10.90.6.1", "nope"):
        with pytest.raises(InvalidArgument):
            net_engine.network_connect("app", "idle", ip=bad)
    assert stored(net_engine, A).networks is None


def test_disconnected_from_everything_starts_with_only_lo_and_can_connect(
        net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.7.0/24")
    add_container(net_engine, A, "web", status="exited")
    net_engine.network_disconnect("bridge", "web")
    assert stored(net_engine, A).attachments() == ()
    s = start(net_engine, A, "web")
    path = netns_path(net_engine.paths, A)
    assert (s.mode, s.namespace, s.endpoints) == ("bridge", {"type": "network", "path": str(path)}, ())
    assert path.exists() and dp.veths == {}
    with net_engine.db.tx() as c:
        c.execute("UPDATE containers SET status='running' WHERE id=?", (A,))
    ep = net_engine.network_connect("app", "web")
    assert ep is not None and ep.ifname == "eth0"
    assert dp.route_via[path] == IPv4Address("10.90.7.1")
    teardown(net_engine, A)
    assert not path.exists()


def test_rm_and_prune_keep_networks_stopped_containers_use(net_engine: Engine) -> None:
    for name in ("made", "joined", "idle"):
        net_engine.network_create(name)
    add_container(net_engine, A, "c1", status="exited", network="made")
    add_container(net_engine, B, "c2", status="created")
    net_engine.network_connect("joined", "c2")
    net_engine.network_connect("made", "c2")
    with pytest.raises(InUse, match="network made is used by containers c1, c2"):
        net_engine.network_rm("made")
    with pytest.raises(InUse, match="network joined is used by container c2"):
        net_engine.network_rm("joined")
    assert net_engine.network_prune() == ["idle"]
    net_engine.network_disconnect("joined", "c2")
    assert net_engine.network_prune() == ["joined"]
    assert [n.name for n in net_engine.networks()] == ["made", "portside"]


def test_disconnecting_the_default_route_moves_it(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.8.0/24")
    net_engine.network_create("priv", subnet="10.90.9.0/24", internal=True)
    add_container(net_engine, A, "web")
    start(net_engine, A, "web")
    net_engine.network_connect("priv", "web")
    net_engine.network_connect("app", "web")
    path = netns_path(net_engine.paths, A)
    assert dp.route_via[path] == IPv4Address("10.89.0.1")
    net_engine.network_disconnect("bridge", "web")
    # Not through the internal network (it has no way out), through app's gateway.
    assert dp.route_via[path] == IPv4Address("10.90.8.1")
    net_engine.network_disconnect("app", "web")
    assert path not in dp.default_routes                  # only the internal one is left
    assert [e.network for e in store.endpoints(net_engine.db, container_id=A)] == ["priv"]


def test_disconnecting_another_network_keeps_the_route(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.10.0/24")
    add_container(net_engine, A, "web")
    start(net_engine, A, "web")
    net_engine.network_connect("app", "web")
    net_engine.network_disconnect("app", "web")
    assert dp.route_via[netns_path(net_engine.paths, A)] == IPv4Address("10.89.0.1")
    assert "set_default_route" not in dp.names()


def test_dangling_means_no_container_uses_it(net_engine: Engine) -> None:
    for name in ("used", "idle"):
        net_engine.network_create(name)
    add_container(net_engine, A, "c1", status="created", network="used")
    assert [n.name for n in net_engine.networks(filters=["dangling=true"])] == ["idle"]
    assert [n.name for n in net_engine.networks(filters=["dangling=false"])] == ["portside", "used"]
