"""The lifecycle hooks (prepare/teardown/reconcile/connect) against a fake dataplane."""
from __future__ import annotations

import os
from ipaddress import IPv4Address

import pytest

from engine import Engine
from engine.errors import InvalidArgument, InvalidState, NetworkError, NoSuchNetwork
from engine.network import attach
from engine.network import connect, hosts_entries, prepare, reconcile, renamed, teardown
from engine.network.bridge import netns_path
from engine.records import ContainerSpec

from tests.engine.network.fakes import FakeDataplane, add_container

A, B, C = "a" * 64, "b" * 64, "c" * 64


def spec(**kw: object) -> ContainerSpec:
    return ContainerSpec(image="busybox", **kw)  # type: ignore[arg-type]


def rows(engine: Engine, table: str) -> int:
    return engine.db.one(f"SELECT count(*) FROM {table}")[0]


def test_prepare_on_default_network(net_engine: Engine, dp: FakeDataplane) -> None:
    add_container(net_engine, A, "web")
    s = prepare(net_engine, A, "web",
                spec(network="bridge", ports=("127.0.0.1:18080:80",), hostname="h1"))
    assert s.mode == "bridge"
    path = netns_path(net_engine.paths, A)
    assert s.namespace == {"type": "network", "path": str(path)}
    assert s.config_namespaces() == [{"type": "network", "path": str(path)}]
    ep = s.endpoints[0]
    assert (str(ep.ip), ep.ifname, str(ep.gateway)) == ("10.89.0.2", "eth0", "10.89.0.1")
    assert [str(m) for m in s.ports] == ["127.0.0.1:18080->80/tcp"]
    assert dp.names()[:4] == ["ensure_bridge", "create_netns", "add_veth", "apply_nft"]
    bridge = net_engine.network("portside").bridge
    assert list(dp.bridges) == [bridge]
    assert dp.sysctls[f"net.ipv4.conf.{bridge}.route_localnet"] == "1"
    assert dp.sysctls["net.ipv4.ip_forward"] == "1"
    assert "dnat to 10.89.0.2:80" in dp.nft[-1]
    assert s.hosts_path == net_engine.paths.container(A) / "hosts"
    assert "10.89.0.2\th1 web\n" in s.hosts_path.read_text()
    assert s.resolv_conf_path is not None and s.resolv_conf_path.read_text().startswith("nameserver")
    events = [(r["type"], r["action"]) for r in net_engine.db.query("SELECT * FROM events")]
    assert ("network", "connect") in events


def test_bad_input_creates_nothing(net_engine: Engine, dp: FakeDataplane) -> None:
    for bad, err in ((spec(network="nope"), NoSuchNetwork),
                     (spec(network="portside", ports=("99999:80",)), InvalidArgument),
                     (spec(network="portside", dns=("x",)), InvalidArgument),
                     (spec(network="portside", add_hosts=("x",)), InvalidArgument),
                     (spec(network="none", ports=("80",)), InvalidArgument)):
        with pytest.raises(err):
            prepare(net_engine, A, "web", bad)
    with pytest.raises(InvalidArgument, match="only works on user-defined networks"):
        prepare(net_engine, A, "web", spec(network="portside"), aliases=["x"])
    assert dp.calls == []
    assert rows(net_engine, "network_endpoints") == 0
    assert not netns_path(net_engine.paths, A).exists()


def test_port_taken_by_another_container(net_engine: Engine, dp: FakeDataplane) -> None:
    prepare(net_engine, A, "web", spec(network="portside", ports=("127.0.0.1:18081:80",)))
    n = len(dp.calls)
    with pytest.raises(InvalidArgument, match="already published by container web"):
        prepare(net_engine, B, "other", spec(network="portside", ports=("18081:80",)))
    assert len(dp.calls) == n                       # refused before any kernel work
    assert rows(net_engine, "network_endpoints") == 1


def test_failure_half_way_rolls_everything_back(net_engine: Engine, dp: FakeDataplane) -> None:
    dp.fail_on = "add_veth"
    with pytest.raises(NetworkError, match="setting up the network of container web failed"):
        prepare(net_engine, A, "web", spec(network="portside", ports=("127.0.0.1:18082:80",)))
    assert rows(net_engine, "network_endpoints") == 0
    assert rows(net_engine, "port_mappings") == 0
    assert not netns_path(net_engine.paths, A).exists()
    assert dp.veths == {}
    assert list(dp.bridges) == [net_engine.network("portside").bridge]   # the network's, kept
    assert "delete table" in dp.nft[-1] and "chain" not in dp.nft[-1]


def test_teardown_is_idempotent_and_removes_everything(net_engine: Engine, dp: FakeDataplane) -> None:
    prepare(net_engine, A, "web", spec(network="portside"))
    teardown(net_engine, A)
    assert dp.veths == {}
    # The bridge stays up while its network exists (docker0's way): the next run skips making it.
    bridge = net_engine.network("portside").bridge
    assert list(dp.bridges) == [bridge]
    prepare(net_engine, B, "db", spec(network="portside"))
    assert "ensure_bridge" in dp.names() and dp.names().count("ensure_bridge") == 2
    teardown(net_engine, B)
    assert not netns_path(net_engine.paths, A).exists()
    assert rows(net_engine, "network_endpoints") == 0
    n = len(dp.calls)
    teardown(net_engine, A)
    teardown(net_engine, "f" * 64)
    assert len(dp.calls) == n


def test_none_and_host_modes(net_engine: Engine, dp: FakeDataplane) -> None:
    add_container(net_engine, A, "n1")
    s = prepare(net_engine, A, "n1", spec(network="none", add_hosts=("db:10.1.1.1",)))
    assert s.namespace == {"type": "network"} and s.netns_path is None and s.endpoints == ()
    assert "10.1.1.1\tdb" in s.hosts
    s = prepare(net_engine, A, "n1", spec(network="host", ports=("80",)))
    assert s.namespace is None and s.config_namespaces() == []
    assert s.warnings == ("published ports are discarded when using host network mode",)
    assert dp.calls == []


def test_names_resolve_on_user_networks_and_follow_members(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.1.0/24")
    for cid, name in ((A, "web"), (B, "db")):
        add_container(net_engine, cid, name)
    prepare(net_engine, A, "web", spec(network="app"), aliases=["frontend"])
    web_hosts = net_engine.paths.container(A) / "hosts"
    ino = os.stat(web_hosts).st_ino
    prepare(net_engine, B, "db", spec(network="app"), aliases=["pg"])
    text = web_hosts.read_text()
    assert f"10.90.1.3\tdb pg {B[:12]}" in text            # the peer arrived in web's file...
    assert os.stat(web_hosts).st_ino == ino                 # ...written in place
    assert f"10.90.1.2\tweb frontend {A[:12]}" in (net_engine.paths.container(B) / "hosts").read_text()
    assert hosts_entries(net_engine, "app") == [("10.90.1.2", ("web", "frontend", A[:12])),
                                                ("10.90.1.3", ("db", "pg", B[:12]))]
    renamed(net_engine, B, "database")
    assert "\tdatabase pg" in web_hosts.read_text()
    teardown(net_engine, B)
    assert "10.90.1.3" not in web_hosts.read_text()


def test_default_network_does_not_resolve_peers(net_engine: Engine, dp: FakeDataplane) -> None:
    for cid, name in ((A, "one"), (B, "two")):
        add_container(net_engine, cid, name)
        prepare(net_engine, cid, name, spec(network="portside"))
    assert " two" not in (net_engine.paths.container(A) / "hosts").read_text()
    assert "10.89.0.3" not in (net_engine.paths.container(A) / "hosts").read_text()


def test_internal_network_has_no_default_route_nor_ports(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("priv", subnet="10.90.2.0/24", internal=True)
    s = prepare(net_engine, A, "x", spec(network="priv", ports=("18083:80",)))
    assert s.ports == () and "not reachable on internal network priv" in s.warnings[0]
    assert netns_path(net_engine.paths, A) not in dp.default_routes
    assert "ip_forward" not in dp.sysctls


def test_requested_ip_and_host_gateway(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.3.0/24")
    s = prepare(net_engine, A, "x", spec(network="app", add_hosts=("gw:host-gateway",)), ip="10.90.3.50")
    assert s.endpoints[0].ip == IPv4Address("10.90.3.50")
    assert "10.90.3.1\tgw" in s.hosts
    with pytest.raises(InvalidArgument, match="already in use on network app by container x"):
        prepare(net_engine, B, "y", spec(network="app"), ip="10.90.3.50")


def test_reconcile_cleans_containers_that_are_gone_or_stopped(net_engine: Engine, dp: FakeDataplane) -> None:
    add_container(net_engine, A, "alive")
    add_container(net_engine, B, "stopped", status="exited")
    for cid, name in ((A, "alive"), (B, "stopped"), (C, "vanished")):
        prepare(net_engine, cid, name, spec(network="portside"))
    # a namespace file left by a crash before any row was written
    stray = netns_path(net_engine.paths, "d" * 64)
    stray.touch()
    cleaned = reconcile(net_engine)
    assert sorted(cleaned) == sorted([B, C, "d" * 64])
    assert [e.container_id for e in attach.store.endpoints(net_engine.db)] == [A]
    assert not stray.exists()
    assert reconcile(net_engine) == []


def test_reconcile_leaves_containers_someone_is_working_on(net_engine: Engine, dp: FakeDataplane) -> None:
    prepare(net_engine, C, "starting", spec(network="portside"))
    import multiprocessing as mp
    ready, done = mp.get_context("fork").Event(), mp.get_context("fork").Event()

    def hold() -> None:
        with net_engine.lock(C):
            ready.set()
            done.wait(30)

    p = mp.get_context("fork").Process(target=hold)
    p.start()
    try:
        assert ready.wait(30)
        assert reconcile(net_engine) == []
        assert attach.store.endpoints(net_engine.db, container_id=C)
    finally:
        done.set()
        p.join(30)
    assert reconcile(net_engine) == [C]


def test_reconcile_reapplies_rules_after_a_crash(net_engine: Engine, dp: FakeDataplane) -> None:
    add_container(net_engine, A, "alive")
    prepare(net_engine, A, "alive", spec(network="portside"))
    net_engine.db.set_setting(attach.DIRTY, "1")            # crash between the commit and nft
    n = len(dp.nft)
    reconcile(net_engine)
    assert len(dp.nft) == n + 1 and net_engine.db.get_setting(attach.DIRTY) is None


def test_connect_and_disconnect_running_container(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.4.0/24")
    add_container(net_engine, A, "web")
    prepare(net_engine, A, "web", spec(network="portside"))
    ep = net_engine.network_connect("app", "web", aliases=["w"])
    assert (ep.ifname, str(ep.ip)) == ("eth1", "10.90.4.2")
    last_veth = [args for name, args in dp.calls if name == "add_veth"][-1]
    assert last_veth[2] == "eth1" and last_veth[5] is None      # no second default route
    assert "10.90.4.2\t" in (net_engine.paths.container(A) / "hosts").read_text()
    with pytest.raises(InvalidState, match="already connected"):
        net_engine.network_connect("app", "web")
    net_engine.network_disconnect("app", A[:8])
    assert "10.90.4.2" not in (net_engine.paths.container(A) / "hosts").read_text()
    with pytest.raises(InvalidState, match="not connected"):
        net_engine.network_disconnect("app", "web")
    assert len(attach.store.endpoints(net_engine.db, container_id=A)) == 1


def test_connect_needs_a_bridged_container(net_engine: Engine, dp: FakeDataplane) -> None:
    net_engine.network_create("app", subnet="10.90.5.0/24")
    add_container(net_engine, A, "stopped", status="exited")
    add_container(net_engine, B, "hostnet", network="host")
    assert net_engine.network_connect("app", "stopped") is None      # joins at its next start
    assert dp.calls == []
    with pytest.raises(InvalidState, match="uses --network host"):
        net_engine.network_connect("app", "hostnet")
    with pytest.raises(InvalidState, match="does not use a bridge network"):
        connect(net_engine, B, "hostnet", "app")


def test_reconcile_rechecks_a_container_started_meanwhile(net_engine: Engine, dp: FakeDataplane,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    add_container(net_engine, A, "booting", status="created")
    prepare(net_engine, A, "booting", spec(network="portside"))
    real = attach._try_lock

    def started_then_lock(ctx: Engine, name: str) -> int | None:
        # the lifecycle finished starting it between reconcile's first look and the lock
        with net_engine.db.tx() as c:
            c.execute("UPDATE containers SET status='running' WHERE id=?", (A,))
        return real(ctx, name)

    monkeypatch.setattr(attach, "_try_lock", started_then_lock)
    assert reconcile(net_engine) == []
    assert attach.store.endpoints(net_engine.db, container_id=A)


def test_publish_all_uses_the_image_exposed_ports(net_engine: Engine, dp: FakeDataplane) -> None:
    s = prepare(net_engine, A, "web", spec(network="portside", publish_all=True),
                exposed_ports=["80/tcp", "53/udp"])
    got = sorted((m.container_port, m.protocol) for m in s.ports)
    assert got == [(53, "udp"), (80, "tcp")]
    assert all(m.host_port > 0 and m.host_ip == "" for m in s.ports)


# -- bridges that outlive their containers ------------------------------------------------

def test_a_bridge_of_a_deleted_root_goes_when_another_comes_up(net_engine: Engine, dp: FakeDataplane,
                                                               tmp_path: os.PathLike[str]) -> None:
    from ipaddress import IPv4Interface
    live_root = os.path.join(str(tmp_path), "live")
    os.makedirs(live_root)
    open(os.path.join(live_root, "state.db"), "w").close()
    dp.bridges.update({"ps-deadbeef0000": IPv4Interface("10.89.0.1/24"),
                       "ps-live00000000": IPv4Interface("10.89.7.1/24")})
    dp.owners.update({"ps-deadbeef0000": os.path.join(str(tmp_path), "gone"),
                      "ps-live00000000": live_root})
    prepare(net_engine, A, "web", spec(network="portside"))
    assert "ps-deadbeef0000" not in dp.bridges          # its root is gone: so is it
    assert "ps-live00000000" in dp.bridges               # that root still exists
    assert dp.owners[net_engine.network("portside").bridge] == str(net_engine.paths.root)


def test_a_network_in_use_keeps_its_subnet_when_its_bridge_is_made_again(
        net_engine: Engine, dp: FakeDataplane) -> None:
    from ipaddress import IPv4Network
    prepare(net_engine, A, "web", spec(network="portside"))
    net = net_engine.network("portside")
    del dp.bridges[net.bridge]                          # someone deleted it under a running container
    prepare(net_engine, B, "db", spec(network="portside"))
    assert dp.bridges[net.bridge] == net.gateway_interface     # made again where it was
    teardown(net_engine, B)
    del dp.bridges[net.bridge]
    dp.routes.append(("vpn0", IPv4Network(str(net.subnet))))   # ...and now its subnet is taken
    with pytest.raises(NetworkError, match=r"bridge of network portside is gone .* in use on"):
        prepare(net_engine, B, "db", spec(network="portside"))
    assert net_engine.network("portside").subnet == net.subnet  # never moved under container A
    assert net.bridge not in dp.bridges


def test_an_orphan_bridge_with_ports_is_left(
        net_engine: Engine, dp: FakeDataplane, tmp_path: os.PathLike[str]) -> None:
    from ipaddress import IPv4Interface
    gone = os.path.join(str(tmp_path), "gone")
    dp.bridges["ps-busy00000000"] = IPv4Interface("10.89.9.1/24")
    dp.owners["ps-busy00000000"] = gone
    dp.veths["vpsx"] = ("ps-busy00000000", netns_path(net_engine.paths, C), "eth0")  # a port
    prepare(net_engine, A, "web", spec(network="portside"))
    assert "ps-busy00000000" in dp.bridges                # something is plugged in: not ours to judge


def test_a_bridge_without_its_address_goes_through_the_host_check(net_engine: Engine,
                                                                  dp: FakeDataplane) -> None:
    from ipaddress import IPv4Interface, IPv4Network
    prepare(net_engine, A, "web", spec(network="portside"))
    teardown(net_engine, A)
    net = net_engine.network("portside")
    dp.bridges[net.bridge] = IPv4Interface("192.0.2.1/24")   # up, but not with its address
    dp.routes.append(("vpn0", IPv4Network(str(net.subnet))))  # and its subnet is taken meanwhile
    prepare(net_engine, B, "db", spec(network="portside"))
    moved = net_engine.network("portside")
    assert moved.subnet != net.subnet                    # portside's own choice: moved
    assert dp.bridges[net.bridge] == moved.gateway_interface


def test_teardown_takes_the_veth_down_and_leaves_it_to_the_namespace(net_engine: Engine,
                                                                     dp: FakeDataplane) -> None:
    prepare(net_engine, A, "web", spec(network="portside"))
    host_if = next(iter(dp.veths))
    teardown(net_engine, A)
    assert ("veth_down", (host_if,)) in dp.calls
    assert "remove_veth" not in dp.names() and dp.veths == {}


def test_bridge_aliases_name_their_root_and_are_read_back(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    from engine.network import netlink
    assert netlink._owner_alias("/var/lib/portside") == b"portside:/var/lib/portside"
    assert netlink._owner_alias("rel/root") == b""            # not a path anyone else can check
    assert netlink._owner_alias("/" + "x" * 300) == b""       # would not fit whole
    net = Path(tmp_path) / "class" / "net"
    for name, alias, ports in (("ps-aaaa", b"portside:/srv/ps \n", ["vps1"]),
                               ("ps-bbbb", b"portside:/data/\xff\n", []),
                               ("ps-cccc", b"something else\n", []),
                               ("eth0", b"portside:/x\n", [])):
        (net / name / "brif").mkdir(parents=True)
        (net / name / "ifalias").write_bytes(alias)
        for p in ports:
            (net / name / "brif" / p).touch()
    got = sorted(netlink.owned_bridges(Path(tmp_path)))
    assert got == [("ps-aaaa", "/srv/ps ", 1), ("ps-bbbb", os.fsdecode(b"/data/\xff"), 0)]

