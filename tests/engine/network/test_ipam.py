"""IP address management: subnet rules, overlap checks, allocation without duplicates."""
from __future__ import annotations

import multiprocessing as mp
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from engine.errors import InvalidArgument, NetworkError
from engine.network import ipam, store
from engine.network.bridge import veth_name
from engine.network.model import Endpoint, NetworkInfo
from engine.paths import Paths
from engine.state import Store


@pytest.mark.parametrize("text", ["10.89.5.0/24", "192.168.7.0/30", "172.30.0.0/16"])
def test_parse_subnet_accepts(text: str) -> None:
    assert ipam.parse_subnet(text) == IPv4Network(text)


@pytest.mark.parametrize("text, match", [
    ("10.89.5.1/24", "host bits"),
    ("10.89.5.0", "host bits are set or no prefix"),
    ("nonsense", "invalid subnet"),
    ("fd00::/64", "IPv6"),
    ("10.0.0.0/31", "too small"),
    ("127.0.0.0/8", "reserved"),
    ("224.0.0.0/24", "reserved"),
])
def test_parse_subnet_refuses(text: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        ipam.parse_subnet(text)


def test_gateway_defaults_to_first_host_and_must_be_inside() -> None:
    net = IPv4Network("10.89.5.0/24")
    assert ipam.parse_gateway(None, net) == IPv4Address("10.89.5.1")
    assert ipam.parse_gateway("10.89.5.254", net) == IPv4Address("10.89.5.254")
    for bad in ("10.89.6.1", "10.89.5.0", "10.89.5.255", "x"):
        with pytest.raises(InvalidArgument):
            ipam.parse_gateway(bad, net)


def test_overlap_is_refused_with_the_culprit_named() -> None:
    taken = [("network web", IPv4Network("10.89.1.0/24")), ("host interface eth0", IPv4Network("192.0.2.0/24"))]
    ipam.check_overlap(IPv4Network("10.89.2.0/24"), taken)
    with pytest.raises(InvalidArgument, match="overlaps 10.89.1.0/24 used by network web"):
        ipam.check_overlap(IPv4Network("10.89.0.0/16"), taken)
    with pytest.raises(InvalidArgument, match="host interface eth0"):
        ipam.check_overlap(IPv4Network("192.0.2.128/25"), taken)


def test_pick_subnet_skips_taken_and_other_engines() -> None:
    pool = IPv4Network("10.89.0.0/16")
    assert ipam.pick_subnet(pool, [IPv4Network("10.89.0.0/24")]) == IPv4Network("10.89.1.0/24")
    # podman's 10.88.0.0/16 is never picked even from a pool that holds it
    assert ipam.pick_subnet(IPv4Network("10.88.0.0/15"), []) == IPv4Network("10.89.0.0/24")
    with pytest.raises(NetworkError, match="no free"):
        ipam.pick_subnet(IPv4Network("10.89.0.0/23"), [IPv4Network("10.89.0.0/23")])


def test_default_subnet_avoids_docker_and_podman() -> None:
    assert not ipam.DEFAULT_SUBNET.overlaps(IPv4Network("172.17.0.0/16"))
    assert not ipam.DEFAULT_SUBNET.overlaps(IPv4Network("10.88.0.0/16"))


def test_mac_is_derived_from_the_address() -> None:
    assert ipam.mac_for(IPv4Address("10.89.0.2")) == "02:70:0a:59:00:02"


# -- allocation in the database ---------------------------------------------------

def _net(db: Store, tmp: Path, subnet: str = "10.89.7.0/29") -> NetworkInfo:
    net = IPv4Network(subnet)
    with db.tx() as c:
        return store.insert_network(c, Paths(root=tmp, run=tmp / "run"), "n", net,
                                    ipam.parse_gateway(None, net), internal=False, labels={})


def _take(db: Store, net: NetworkInfo, cid: str, requested: IPv4Address | None = None) -> IPv4Address:
    with db.tx() as c:
        ip = ipam.allocate(c, net, requested)
        store.insert_endpoint(c, Endpoint(cid, "c" + cid[:6], net.name, net.id, ip, 29, net.gateway,
                                          ipam.mac_for(ip), "eth0", veth_name(cid, net.id)))
    return ip


def test_allocate_lowest_free_skipping_gateway_and_reusing_freed(tmp_path: Path) -> None:
    db = Store(tmp_path / "state.db")
    net = _net(db, tmp_path)
    got = [_take(db, net, f"{i:064x}") for i in range(5)]
    assert [str(ip) for ip in got] == ["10.89.7.2", "10.89.7.3", "10.89.7.4", "10.89.7.5", "10.89.7.6"]
    with pytest.raises(NetworkError, match="no free address"):
        _take(db, net, "f" * 64)
    with db.tx() as c:
        c.execute("DELETE FROM network_endpoints WHERE ip='10.89.7.4'")
    assert str(_take(db, net, "e" * 64)) == "10.89.7.4"


def test_requested_ip_in_use_names_the_holder(tmp_path: Path) -> None:
    db = Store(tmp_path / "state.db")
    net = _net(db, tmp_path)
    _take(db, net, "a" * 64, IPv4Address("10.89.7.5"))
    with pytest.raises(InvalidArgument, match="already in use on network n by container caaaaaa"):
        _take(db, net, "b" * 64, IPv4Address("10.89.7.5"))


def test_parse_ip_refuses_reserved_and_outside(tmp_path: Path) -> None:
    db = Store(tmp_path / "state.db")
    net = _net(db, tmp_path, "10.89.9.0/24")
    assert ipam.parse_ip("10.89.9.9", net) == IPv4Address("10.89.9.9")
    for bad, match in (("10.89.9.1", "reserved"), ("10.89.9.255", "reserved"),
                       ("10.89.10.2", "not in network"), ("10.89.9", "invalid")):
        with pytest.raises(InvalidArgument, match=match):
            ipam.parse_ip(bad, net)


def _allocate_many(db_path: str, net_id: str, worker: int, n: int) -> None:
    db = Store(Path(db_path))
    net = store.get_network(db, net_id)
    for i in range(n):
        _take(db, net, f"{worker:032x}{i:032x}")
    db.close()


def test_parallel_processes_never_get_the_same_address(tmp_path: Path) -> None:
    db = Store(tmp_path / "state.db")
    net = _net(db, tmp_path, "10.89.8.0/24")
    db.close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_allocate_many, args=(str(tmp_path / "state.db"), net.id, w, 25))
             for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db = Store(tmp_path / "state.db")
    ips = [r["ip"] for r in db.query("SELECT ip FROM network_endpoints")]
    assert len(ips) == 100
    assert len(set(ips)) == 100
    assert "10.89.8.1" not in ips           # the gateway
