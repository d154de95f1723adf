"""/etc/hosts and resolv.conf content, and in-place rewrites."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.network import hosts


def test_hosts_content_has_localhost_extra_and_managed_block() -> None:
    text = hosts.hosts_content([("10.89.1.2", ["abc123", "web", "web"]), ("10.89.1.3", ["db", "pg"])],
                               [("gw", "10.89.1.1")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.89.1.1\tgw" in lines
    start = lines.index(hosts.BEGIN_MARK)
    assert lines[start + 1:] == ["10.89.1.2\tabc123 web", "10.89.1.3\tdb pg", hosts.END_MARK]


def test_replace_block_keeps_everything_else() -> None:
    old = hosts.hosts_content([("10.89.1.2", ["a"])], [("x", "1.2.3.4")]) + "5.6.7.8\tuser-added\n"
    new = hosts.replace_block(old, hosts.managed_block([("10.89.1.2", ["a"]), ("10.89.1.9", ["b"])]))
    assert "1.2.3.4\tx\n" in new and new.endswith("5.6.7.8\tuser-added\n")
    assert "10.89.1.9\tb\n" in new
    assert new.count(hosts.BEGIN_MARK) == 1
    # a file without a block gets one appended
    assert hosts.replace_block("1.1.1.1 a", "B\n") == "1.1.1.1 a\nB\n"


def test_rewrite_keeps_the_inode(tmp_path: Path) -> None:
    p = tmp_path / "hosts"
    hosts.write_in_place(p, hosts.hosts_content([("10.89.1.2", ["a"])]))
    ino = os.stat(p).st_ino
    assert hosts.rewrite_block(p, hosts.managed_block([("10.89.1.2", ["a"]), ("10.89.1.3", ["peer"])]))
    assert os.stat(p).st_ino == ino
    assert "10.89.1.3\tpeer" in p.read_text()
    # shorter content leaves no tail of the old one
    hosts.rewrite_block(p, hosts.managed_block([]))
    assert p.read_text().endswith(hosts.END_MARK + "\n")
    assert not hosts.rewrite_block(tmp_path / "missing", "x")


def test_resolv_conf_drops_loopback_and_keeps_search() -> None:
    host = "# generated\nnameserver 127.0.0.53\nsearch example.org corp\noptions edns0 trust-ad\n"
    assert hosts.resolv_conf_content(host) == (
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch example.org corp\noptions edns0 trust-ad\n")
    assert hosts.resolv_conf_content(host, keep_loopback=True).startswith("nameserver 127.0.0.53\n")
    assert hosts.resolv_conf_content("nameserver 10.0.0.2\nnameserver ::1\n") == "nameserver 10.0.0.2\n"


def test_dns_flag_replaces_nameservers() -> None:
    assert hosts.resolv_conf_content("nameserver 10.0.0.2\nsearch a\n", ["1.1.1.1"]) == \
        "nameserver 1.1.1.1\nsearch a\n"
    assert hosts.parse_dns(["1.1.1.1", " 2606:4700::1111 "]) == ["1.1.1.1", "2606:4700::1111"]
    with pytest.raises(InvalidArgument, match="--dns"):
        hosts.parse_dns(["dns.example"])


@pytest.mark.parametrize("text, want", [
    ("db:10.0.0.5", ("db", "10.0.0.5")),
    ("db=10.0.0.5", ("db", "10.0.0.5")),
    ("v6:[::1]", ("v6", "::1")),
    ("gw:host-gateway", ("gw", "host-gateway")),
])
def test_add_host(text: str, want: tuple[str, str]) -> None:
    assert hosts.parse_add_host(text) == want


@pytest.mark.parametrize("text", ["db", "db:", ":1.2.3.4", "db:nope", "bad name:1.2.3.4"])
def test_add_host_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument):
        hosts.parse_add_host(text)


def test_names() -> None:
    assert hosts.check_name("web.internal-1_x") == "web.internal-1_x"
    for bad in ("", "-x", "a b", "a..b", "x" * 300):
        with pytest.raises(InvalidArgument):
            hosts.check_name(bad)
