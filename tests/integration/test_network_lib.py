"""The network library against the real kernel (root): bridges, veths, netns, nftables.

"Containers" here are bare network namespaces made by ``network.prepare()``
(no runtime). Traffic goes only to 127.0.0.0/8 and to addresses inside the
namespaces the tests make; every probe has a count and a timeout; every
fixture removes what it made even when a test fails.
"""
from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from engine import Engine
from engine.containers.model import RunState, StoredConfig
from engine.errors import InvalidArgument
from engine.network import netlink, prepare, reconcile, store, teardown
from engine.network.bridge import netns_dir, netns_path, nft_table
from engine.network.ports import run_nft, table_exists
from engine.records import ContainerSpec
from tests.conftest import need_tool

pytestmark = pytest.mark.integration

BUSYBOX = "busybox"
# Each xdist worker gets its own 10.N.0.0/16: bridges and routes are host-wide,
# so two workers' networks must never overlap.
_OCTET = 220 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").lstrip("gw") or 0)
PREFIX = f"10.{_OCTET}"
SUBNET_A, SUBNET_B = f"{PREFIX}.1.0/24", f"{PREFIX}.2.0/24"


# -- fixtures ----------------------------------------------------------------------

class NetLab:
    """An engine on a temp root, and the bookkeeping to undo all it makes."""

    def __init__(self, root: Path) -> None:
        self.engine = Engine(root)
        self.engine.db.set_setting("network.default_subnet", f"{PREFIX}.0.0/24")
        self.engine.db.set_setting("network.pool", f"{PREFIX}.0.0/16")
        self.ids: list[str] = []

    def container(self, name: str, network: str, *, running: bool = True, **spec: object) -> tuple[str, object]:
        """Add a containers row (as the lifecycle would) and prepare its network."""
        cid = f"{len(self.ids) + 1:02x}" * 32
        self.ids.append(cid)
        cspec = ContainerSpec(image="busybox", network=network, **spec)  # type: ignore[arg-type]
        if running:
            cfg = StoredConfig(cspec, "busybox", "sha256:" + "0" * 64, ("sleep", "300"), (), "/",
                               "", cid[:12], "")
            with self.engine.db.tx() as c:
                c.execute("INSERT INTO containers(id, name, image_id, status, config_json, state_json,"
                          " created_ns) VALUES (?,?,?,?,?,?,?)",
                          (cid, name, "sha256:" + "0" * 64, "running", cfg.to_json(),
                           RunState(status="running").to_json(), 0))
        self.engine.paths.container(cid).mkdir(parents=True, exist_ok=True)
        setup = prepare(self.engine, cid, name, cspec)
        return cid, setup

    def bridges(self) -> list[str]:
        return [n.bridge for n in store.list_networks(self.engine.db)]

    def cleanup(self) -> list[str]:
        """Undo everything; return what had to be removed by force (should be nothing)."""
        forced = []
        for cid in self.ids:
            try:
                teardown(self.engine, cid)
            except Exception as err:   # keep cleaning; report below
                forced.append(f"teardown {cid[:12]}: {err}")
        for br in self.bridges():
            netlink.delete_link(br)          # a network's bridge stays up until the network goes
        for p in list(netns_dir(self.engine.paths).glob("*")) if netns_dir(self.engine.paths).exists() else []:
            netlink.remove_netns(p)
            forced.append(f"netns {p.name}")
        netlink.release_netns_dir(netns_dir(self.engine.paths))
        table = nft_table(self.engine.paths)
        if table_exists(table):
            run_nft(f"delete table ip {table}\n")
            forced.append(f"nft table {table}")
        self.engine.close()
        return forced


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetLab]:
    need_tool("nft")
    need_tool("nsenter")
    need_tool(BUSYBOX)
    forward = netlink.get_sysctl("net.ipv4.ip_forward")
    lab = NetLab(tmp_path / "root")
    try:
        yield lab
    finally:
        forced = lab.cleanup()
        if forward is not None:
            netlink.set_sysctl("net.ipv4.ip_forward", forward)
    assert forced == [], f"teardown left things behind: {forced}"


# -- probes (bounded) --------------------------------------------------------------

def in_ns(ns: Path, *argv: str, timeout: float = 15, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={ns}", *argv], capture_output=True, text=True,
                          timeout=timeout, **kw)  # type: ignore[call-overload]


def ping(ns: Path, ip: object) -> bool:
    """One echo request, one second to answer."""
    return in_ns(ns, BUSYBOX, "ping", "-c1", "-W1", str(ip)).returncode == 0


def reaches(ns: Path, ip: object) -> bool:
    """Up to three pings (a loaded machine may lose the first to ARP resolution)."""
    return any(ping(ns, ip) for _ in range(3))


_SERVER = r"""
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.settimeout(20)
if kind == socket.SOCK_STREAM:
    s.listen(1)
print("ready", flush=True)
if kind == socket.SOCK_STREAM:
    c, peer = s.accept()
    c.sendall(b"hello from " + sys.argv[3].encode())
    c.close()
else:
    data, peer = s.recvfrom(100)
    s.sendto(b"echo:" + data, peer)
"""


class Server:
    """A one-shot TCP/UDP server running inside a namespace."""

    def __init__(self, ns: Path, proto: str, port: int, tag: str) -> None:
        self.proc = subprocess.Popen(["nsenter", f"--net={ns}", sys.executable, "-c", _SERVER,
                                      proto, str(port), tag],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.close()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            pytest.fail(f"server in {ns} did not start: {err[-300:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def udp_exchange_in_ns(ns: Path, ip: object, port: int) -> str:
    code = ("import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3);"
            "s.sendto(b'ping', (sys.argv[1], int(sys.argv[2]))); print(s.recvfrom(100)[0].decode())")
    r = in_ns(ns, sys.executable, "-c", code, str(ip), str(port))
    return r.stdout.strip() if r.returncode == 0 else f"failed: {r.stderr.strip()[-200:]}"


def ns_of(setup: object) -> Path:
    p = getattr(setup, "netns_path")
    assert p is not None
    return Path(p)


def host_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout


def gone_soon(links: list[str], seconds: float = 10.0) -> bool:
    """Whether none of ``links`` is left within ``seconds``: a veth goes with its
    namespace, which the kernel destroys asynchronously after teardown returned."""
    deadline = time.monotonic() + seconds
    while True:
        out = host_links()
        if not any(f": {name}@" in out or f": {name}:" in out for name in links):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# -- tests -----------------------------------------------------------------------------

def test_two_containers_on_a_bridge_reach_each_other(lab: NetLab) -> None:
    lab.engine.network_create("lan", subnet=SUBNET_A)
    _a, sa = lab.container("alpha", "lan")
    _b, sb = lab.container("beta", "lan")
    ip_b = sb.endpoints[0].ip
    assert str(sa.endpoints[0].ip) == f"{PREFIX}.1.2" and str(ip_b) == f"{PREFIX}.1.3"
    assert reaches(ns_of(sa), ip_b)
    assert reaches(ns_of(sb), sa.endpoints[0].gateway)
    srv = Server(ns_of(sb), "udp", 5353, "beta")
    try:
        assert udp_exchange_in_ns(ns_of(sa), ip_b, 5353) == "echo:ping"
    finally:
        srv.close()
    # names: alpha's hosts file lists beta
    assert f"{ip_b}\tbeta" in (lab.engine.paths.container(_a) / "hosts").read_text()


def test_different_networks_are_isolated(lab: NetLab) -> None:
    lab.engine.network_create("red", subnet=SUBNET_A)
    lab.engine.network_create("blue", subnet=SUBNET_B)
    _r, sr = lab.container("r1", "red")
    _b, sb = lab.container("b1", "blue")
    assert netlink.get_sysctl("net.ipv4.ip_forward") == "1"     # so isolation is the rules' doing
    assert not ping(ns_of(sr), sb.endpoints[0].ip)
    assert not ping(ns_of(sb), sr.endpoints[0].ip)
    # control: without portside's forward rules the same packet goes through
    run_nft(f"flush chain ip {nft_table(lab.engine.paths)} forward\n")
    assert reaches(ns_of(sr), sb.endpoints[0].ip)


def test_internal_network_has_no_route_out(lab: NetLab) -> None:
    lab.engine.network_create("vault", subnet=SUBNET_A, internal=True)
    lab.engine.network_create("lan", subnet=SUBNET_B)
    _i, si = lab.container("i1", "vault")
    _j, sj = lab.container("i2", "vault")
    _o, so = lab.container("o1", "lan")
    assert reaches(ns_of(si), sj.endpoints[0].ip)                     # its peers are reachable,
    assert not ping(ns_of(si), si.endpoints[0].gateway)               # the host itself is not
    route = in_ns(ns_of(si), "ip", "route").stdout
    assert "default" not in route
    assert not ping(ns_of(so), si.endpoints[0].ip)


def test_published_ports_reach_the_container_from_localhost(lab: NetLab) -> None:
    tcp_port = _free_port(socket.SOCK_STREAM)
    udp_port = _free_port(socket.SOCK_DGRAM)
    _c, s = lab.container("web", "portside",
                          ports=(f"127.0.0.1:{tcp_port}:8080", f"127.0.0.1:{udp_port}:5300/udp"))
    assert [str(m) for m in s.ports] == [f"127.0.0.1:{tcp_port}->8080/tcp",
                                         f"127.0.0.1:{udp_port}->5300/udp"]
    srv = Server(ns_of(s), "tcp", 8080, "web")
    try:
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as conn:
            conn.settimeout(5)
            assert conn.recv(100) == b"hello from web"
    finally:
        srv.close()
    srv = Server(ns_of(s), "udp", 5300, "web")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(b"x", ("127.0.0.1", udp_port))
            assert u.recvfrom(100)[0] == b"echo:x"
    finally:
        srv.close()


def test_port_in_use_is_refused_before_anything_is_made(lab: NetLab) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InvalidArgument, match=f"port {port}/tcp is already in use on 127.0.0.1"):
            lab.container("web", "portside", ports=(f"127.0.0.1:{port}:80",))
    assert not netns_path(lab.engine.paths, lab.ids[0]).exists()
    assert not table_exists(nft_table(lab.engine.paths))
    assert all(br not in host_links() for br in lab.bridges())


def test_connect_and_disconnect_while_running(lab: NetLab) -> None:
    lab.engine.network_create("red", subnet=SUBNET_A)
    lab.engine.network_create("blue", subnet=SUBNET_B)
    _r, sr = lab.container("r1", "red")
    _b, sb = lab.container("b1", "blue")
    ep = lab.engine.network_connect("blue", "r1", aliases=["rr"])
    assert ep.ifname == "eth1"
    assert reaches(ns_of(sr), sb.endpoints[0].ip)
    lab.engine.network_disconnect("blue", "r1")
    assert "eth1" not in in_ns(ns_of(sr), "ip", "-o", "link").stdout
    assert not ping(ns_of(sr), sb.endpoints[0].ip)


def test_teardown_leaves_nothing_behind(lab: NetLab) -> None:
    lab.engine.network_create("lan", subnet=SUBNET_A)
    ids = [lab.container(n, "lan", ports=(f"127.0.0.1::{80 + i}",))[0] for i, n in enumerate(("x", "y"))]
    eps = [e for cid in ids for e in store.endpoints(lab.engine.db, container_id=cid)]
    bridge = lab.engine.network("lan").bridge
    table = nft_table(lab.engine.paths)
    assert bridge in host_links() and table_exists(table)
    for cid in ids:
        teardown(lab.engine, cid)
        teardown(lab.engine, cid)                         # idempotent
    assert gone_soon([e.host_ifname for e in eps])
    assert not table_exists(table)
    assert bridge in host_links()                   # up while its network exists, as docker0
    mounts = Path("/proc/mounts").read_text()
    assert str(lab.engine.paths.run) not in mounts
    assert store.endpoints(lab.engine.db) == []


def test_reconcile_cleans_up_after_a_crash(lab: NetLab) -> None:
    cid, s = lab.container("ghost", "portside", running=False)    # no row: the "container" is gone
    host_if = s.endpoints[0].host_ifname
    assert host_if in host_links()
    assert reconcile(lab.engine) == [cid]
    assert gone_soon([host_if])
    assert not netns_path(lab.engine.paths, cid).exists()
    assert not table_exists(nft_table(lab.engine.paths))


def test_parallel_prepares_get_distinct_addresses(lab: NetLab) -> None:
    import threading
    lab.engine.network_create("lan", subnet=SUBNET_A)
    results: list[object] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results.append(lab.container(f"p{i}", "lan"))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    ips = [str(s.endpoints[0].ip) for _c, s in results]  # type: ignore[attr-defined]
    assert len(set(ips)) == 4


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_teardown_of_a_stale_namespace_file_only(lab: NetLab) -> None:
    # a namespace made before the rows were written (crash in between) is found by reconcile
    path = netns_path(lab.engine.paths, "ee" * 32)
    netlink.create_netns(path)
    lab.ids.append("ee" * 32)
    assert "ee" * 32 in reconcile(lab.engine)
    assert not path.exists()
    assert store.endpoints(lab.engine.db) == []


def test_port_on_all_addresses_from_localhost_and_from_a_peer(lab: NetLab) -> None:
    port = _free_port(socket.SOCK_STREAM)
    _w, sw = lab.container("web", "portside", ports=(f"{port}:8080",))
    _c, sc = lab.container("client", "portside")
    srv = Server(ns_of(sw), "tcp", 8080, "web")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.settimeout(5)
            assert conn.recv(100) == b"hello from web"
    finally:
        srv.close()
    # a container reaching the published port through the host side of its bridge (hairpin)
    srv = Server(ns_of(sw), "tcp", 8080, "web")
    try:
        code = ("import socket,sys; c=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5);"
                "c.settimeout(5); print(c.recv(100).decode())")
        r = in_ns(ns_of(sc), sys.executable, "-c", code, str(sc.endpoints[0].gateway), str(port))
        assert r.stdout.strip() == "hello from web", r.stderr[-300:]
    finally:
        srv.close()


def test_netlink_works_from_a_thread_that_runs_an_event_loop() -> None:
    # pyroute2 drives its own loop in the calling thread; an async front end
    # calling the engine directly must not get "event loop is already running".
    import asyncio
    from engine.network import netlink

    async def inside() -> tuple[bool, list[str]]:
        return netlink.link_exists("lo"), [n for n, _ in netlink.host_subnets(set())]

    exists, _ifaces = asyncio.run(inside())
    assert exists
