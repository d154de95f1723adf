"""-p parsing, host port choice, and the nftables ruleset text."""
from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address, IPv4Network

import pytest

from engine.errors import InvalidArgument
from engine.network.model import PortMapping
from engine.network.ports import (BridgeRules, DnatRule, PortSpec, allocate_ports, bind_probe,
                                  delete_script, exposed_specs, parse_port_spec, render_ruleset)


@pytest.mark.parametrize("spec, want", [
    ("80", PortSpec("", None, (80, 80), "tcp")),
    ("8080:80", PortSpec("", (8080, 8080), (80, 80), "tcp")),
    ("127.0.0.1:8080:80", PortSpec("127.0.0.1", (8080, 8080), (80, 80), "tcp")),
    ("127.0.0.1::80", PortSpec("127.0.0.1", None, (80, 80), "tcp")),
    ("0.0.0.0:8080:80", PortSpec("", (8080, 8080), (80, 80), "tcp")),
    ("53:53/udp", PortSpec("", (53, 53), (53, 53), "udp")),
    ("5353/UDP", PortSpec("", None, (5353, 5353), "udp")),
    ("8000-8002:80-82", PortSpec("", (8000, 8002), (80, 82), "tcp")),
    ("8000-8010:80", PortSpec("", (8000, 8010), (80, 80), "tcp")),
    ("80-82", PortSpec("", None, (80, 82), "tcp")),
    ("10.0.0.1:9000-9001:90-91/udp", PortSpec("10.0.0.1", (9000, 9001), (90, 91), "udp")),
])
def test_parse_good_specs(spec: str, want: PortSpec) -> None:
    assert parse_port_spec(spec) == want


@pytest.mark.parametrize("spec, match", [
    ("", "empty"),
    ("abc", "invalid container port"),
    ("0:80", "out of range"),
    ("65536:80", "out of range"),
    ("8080:0", "out of range"),
    ("8080:80/sctp", "unsupported protocol"),
    ("[::1]:8080:80", "IPv6"),
    ("1:2:3:4", "invalid -p"),
    ("8000-8001:80-82", "maps 3 container ports to 2 host ports"),
    ("8080:90-80", "backwards"),
    ("300.1.1.1:80:80", "invalid host address"),
    ("8080:", "invalid container port"),
    ("-1:80", "invalid host port"),
])
def test_parse_bad_specs(spec: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        parse_port_spec(spec)


def test_exposed_ports_become_random_host_ports() -> None:
    assert exposed_specs(["80/tcp", "53/udp"]) == [PortSpec("", None, (80, 80), "tcp"),
                                                    PortSpec("", None, (53, 53), "udp")]


class Probe:
    """A fake bind test: ports in ``busy`` are in use; port 0 hands out 40000, 40001..."""

    def __init__(self, busy: set[int] = set()) -> None:   # noqa: B006 - never mutated
        self.busy = busy
        self.next = 40000
        self.calls: list[tuple[str, int, str]] = []

    def __call__(self, host_ip: str, port: int, proto: str) -> int:
        self.calls.append((host_ip, port, proto))
        if port == 0:
            self.next += 1
            return self.next - 1
        if port in self.busy:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return port


def test_allocate_one_to_one_and_ranges() -> None:
    got = allocate_ports([parse_port_spec("8000-8002:80-82"), parse_port_spec("9000/udp")], [],
                         probe=Probe())
    assert got == [PortMapping("", 8000, 80), PortMapping("", 8001, 81), PortMapping("", 8002, 82),
                   PortMapping("", 40000, 9000, "udp")]


def test_host_range_takes_first_free_port() -> None:
    taken = [("web", PortMapping("", 8000, 80))]
    got = allocate_ports([parse_port_spec("8000-8010:80")], taken, probe=Probe(busy={8001}))
    assert got == [PortMapping("", 8002, 80)]


def test_port_busy_on_host_is_an_actionable_error() -> None:
    with pytest.raises(InvalidArgument) as e:
        allocate_ports([parse_port_spec("8080:80")], [], probe=Probe(busy={8080}))
    assert str(e.value) == "port 8080/tcp is already in use on 0.0.0.0 (pick another host port)"


def test_port_published_by_another_container_is_refused() -> None:
    taken = [("web", PortMapping("127.0.0.1", 8080, 80))]
    with pytest.raises(InvalidArgument, match="8080/tcp on 0.0.0.0 is already published by container web"):
        allocate_ports([parse_port_spec("8080:80")], taken, probe=Probe())
    # another address or protocol does not clash
    assert allocate_ports([parse_port_spec("127.0.0.2:8080:80"), parse_port_spec("8080:80/udp")],
                          taken, probe=Probe())


def test_same_port_twice_in_one_request_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="another -p of this container"):
        allocate_ports([parse_port_spec("8080:80"), parse_port_spec("8080:81")], [], probe=Probe())


def test_random_port_skips_ports_other_containers_hold() -> None:
    taken = [("web", PortMapping("", 40000, 80))]
    assert allocate_ports([parse_port_spec("80")], taken, probe=Probe()) == [PortMapping("", 40001, 80)]


def test_real_bind_probe_sees_a_listener() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(InvalidArgument, match=f"port {port}/tcp is already in use on 127.0.0.1"):
            allocate_ports([parse_port_spec(f"127.0.0.1:{port}:80")], [], probe=bind_probe)
    assert allocate_ports([parse_port_spec("127.0.0.1::80")], [], probe=bind_probe)[0].host_port > 0


def test_not_a_host_address() -> None:
    with pytest.raises(InvalidArgument, match="192.0.2.123 is not an address of this host"):
        allocate_ports([parse_port_spec("192.0.2.123:8080:80")], [], probe=bind_probe)


def test_ruleset_has_dnat_masquerade_and_isolation() -> None:
    bridges = [BridgeRules("ps-a", IPv4Network("10.89.1.0/24"), False),
               BridgeRules("ps-b", IPv4Network("10.89.2.0/24"), False),
               BridgeRules("ps-i", IPv4Network("10.89.3.0/24"), True)]
    dnats = [DnatRule(PortMapping("127.0.0.1", 8080, 80), IPv4Address("10.89.1.2")),
             DnatRule(PortMapping("", 5353, 53, "udp"), IPv4Address("10.89.2.2"))]
    text = render_ruleset("portside_t", bridges, dnats)
    assert text.startswith("table ip portside_t {}\ndelete table ip portside_t\n")
    assert "fib daddr type local jump published" in text
    assert text.count("jump published") == 2               # prerouting and output
    assert "ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.89.1.2:80" in text
    assert "\n    udp dport 5353 dnat to 10.89.2.2:53" in text
    assert 'oifname "ps-a" ip saddr 127.0.0.0/8 masquerade' in text
    assert 'ip saddr 10.89.1.0/24 oifname != "ps-a" masquerade' in text
    assert 'ip saddr 10.89.3.0/24 oifname != "ps-i" masquerade' not in text   # internal: no way out
    assert 'iifname "ps-a" oifname { "ps-b", "ps-i" } drop' in text
    assert 'iifname "ps-i" oifname != "ps-i" drop' in text
    assert 'oifname "ps-i" iifname != "ps-i" drop' in text


def test_delete_script_is_safe_when_the_table_is_absent() -> None:
    assert delete_script("portside") == "table ip portside {}\ndelete table ip portside\n"
