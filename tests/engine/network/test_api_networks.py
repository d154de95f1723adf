"""The network verbs of the Engine facade (fake dataplane: no root needed)."""
from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from engine import Engine
from engine.errors import InUse, InvalidArgument, NameConflict, NetworkError, NoSuchNetwork
from engine.network import prepare
from engine.records import ContainerSpec
from tests.engine.network.fakes import FakeDataplane, add_container


def test_default_network_always_listed_and_not_removable(net_engine: Engine) -> None:
    nets = net_engine.networks()
    assert [n.name for n in nets] == ["portside"]
    assert str(nets[0].subnet) == "10.89.0.0/24"
    assert net_engine.network("bridge").id == nets[0].id
    with pytest.raises(InvalidArgument, match="default network"):
        net_engine.network_rm("portside")


def test_default_subnet_comes_from_settings(net_engine: Engine) -> None:
    net_engine.db.set_setting("network.default_subnet", "10.123.0.0/24")
    assert str(net_engine.network("portside").subnet) == "10.123.0.0/24"


def test_create_picks_free_subnets_and_refuses_overlaps(net_engine: Engine, dp: FakeDataplane) -> None:
    dp.routes = [("eth0", IPv4Network("10.89.1.0/24"))]
    a = net_engine.network_create("a")
    assert str(a.subnet) == "10.89.2.0/24"          # .0 is the default network, .1 a host route
    assert str(a.gateway) == "10.89.2.1" and a.bridge == "ps-" + a.id[:12]
    b = net_engine.network_create("b", subnet="10.91.0.0/16", gateway="10.91.255.254",
                                  internal=True, labels={"tier": "db"})
    assert (str(b.gateway), b.internal, dict(b.labels)) == ("10.91.255.254", True, {"tier": "db"})
    with pytest.raises(InvalidArgument, match="overlaps 10.91.0.0/16 used by network b"):
        net_engine.network_create("c", subnet="10.91.3.0/24")
    with pytest.raises(InvalidArgument, match="host interface eth0"):
        net_engine.network_create("c", subnet="10.89.1.128/25")
    with pytest.raises(NameConflict, match="already exists"):
        net_engine.network_create("a")
    for bad in ("host", "none", "bridge", "-x", "a b"):
        with pytest.raises(InvalidArgument):
            net_engine.network_create(bad)
    with pytest.raises(InvalidArgument, match="--gateway needs --subnet"):
        net_engine.network_create("c", gateway="10.1.1.1")
    assert dp.calls == []                            # nothing in the kernel until a container joins


def test_filters(net_engine: Engine) -> None:
    net_engine.network_create("front", labels={"env": "prod"})
    net_engine.network_create("back")
    assert [n.name for n in net_engine.networks(filters=["name=fr*"])] == ["front"]
    assert [n.name for n in net_engine.networks(filters=["label=env=prod"])] == ["front"]
    assert [n.name for n in net_engine.networks(filters=["name=ack"])] == ["back"]
    back = net_engine.network("back")
    assert [n.name for n in net_engine.networks(filters=[f"id={back.id[:6]}"])] == ["back"]
    assert net_engine.network(back.id[:6]).name == "back"
    with pytest.raises(InvalidArgument, match="unknown network filter"):
        net_engine.networks(filters=["colour=red"])
    with pytest.raises(NoSuchNetwork, match="try: portside network ls"):
        net_engine.network("nope")


def test_inspect_is_docker_shaped(net_engine: Engine) -> None:
    net_engine.network_create("app", subnet="10.90.7.0/24", labels={"k": "v"})
    add_container(net_engine, "a" * 64, "web")
    prepare(net_engine, "a" * 64, "web", ContainerSpec(image="x", network="app"), aliases=["w"])
    d = net_engine.network_inspect("app")
    assert d["Name"] == "app" and d["Driver"] == "bridge" and d["Scope"] == "local"
    assert d["IPAM"]["Config"] == [{"Subnet": "10.90.7.0/24", "Gateway": "10.90.7.1"}]
    assert d["Labels"] == {"k": "v"}
    c = d["Containers"]["a" * 64]
    assert (c["Name"], c["IPv4Address"], c["MacAddress"], c["Aliases"]) == \
        ("web", "10.90.7.2/24", "02:70:0a:5a:07:02", ["w"])


def test_rm_and_prune_refuse_networks_in_use(net_engine: Engine, dp: FakeDataplane) -> None:
    for name in ("used", "idle1", "idle2"):
        net_engine.network_create(name)
    add_container(net_engine, "a" * 64, "web")
    prepare(net_engine, "a" * 64, "web", ContainerSpec(image="x", network="used"))
    with pytest.raises(InUse, match="network used is used by container web"):
        net_engine.network_rm("used")
    assert net_engine.network_rm("idle1") == "idle1"
    assert net_engine.network_prune() == ["idle2"]
    assert [n.name for n in net_engine.networks()] == ["portside", "used"]
    actions = [(r["action"], r["attrs_json"]) for r in
               net_engine.db.query("SELECT * FROM events WHERE type='network' ORDER BY seq")]
    assert [a for a, _ in actions].count("destroy") == 2
    assert [a for a, _ in actions].count("create") == 4     # portside, used, idle1, idle2


def test_container_ports(net_engine: Engine) -> None:
    add_container(net_engine, "a" * 64, "web")
    prepare(net_engine, "a" * 64, "web",
            ContainerSpec(image="x", network="portside", ports=("127.0.0.1::80", "127.0.0.1:18090:53/udp")))
    got = {(m.container_port, m.protocol, m.host_ip) for m in net_engine.container_ports("web")}
    assert got == {(80, "tcp", "127.0.0.1"), (53, "udp", "127.0.0.1")}


def test_default_subnet_from_the_environment_is_kept(net_engine: Engine, dp: FakeDataplane,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_DEFAULT_SUBNET", "10.124.0.0/24")
    dp.routes = [("eth0", IPv4Network("10.124.0.0/16"))]
    with pytest.raises(NetworkError, match=r"PORTSIDE_DEFAULT_SUBNET\): subnet 10.124.0.0/24 "
                                           r"overlaps 10.124.0.0/16 used by host interface eth0"):
        net_engine.networks()
    dp.routes = []
    assert str(net_engine.network("bridge").subnet) == "10.124.0.0/24"
    assert net_engine.db.get_setting("network.default_subnet") == "10.124.0.0/24"
    # Chosen by the user, so it is never moved when the host takes it later.
    from engine.network import store
    assert not store.auto_subnet(net_engine.db, net_engine.network("bridge"))
