"""Networking on real busybox containers (root, runc, conmon, netlink, nftables).

The containers run on the default bridge network and on user networks
whose subnets portside picks itself (free of the host's routes and of
other roots' bridges, so tests beside these ones cannot clash). Traffic
goes only to 127.0.0.1 on the host and to addresses inside the
containers these tests make; every probe is bounded (``nc -w 2``, a
fixed number of tries). Every container is removed when its test ends,
and the module checks that nothing of the network is left.
"""
from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine import ContainerSpec, Engine, InUse, InvalidArgument, NoSuchNetwork
from engine.network import store
from engine.network.bridge import netns_path, nft_table, veth_name
from engine.network.ports import table_exists
from tests.conftest import REPO, busybox_engine, container_maker, remove_containers

pytestmark = pytest.mark.integration

HTTPD = ("sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html "
                     "&& exec httpd -f -p 80 -h /www")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _gone_soon(link: str, seconds: float = 10.0) -> bool:
    """Whether ``link`` disappears within ``seconds`` (the kernel destroys a
    veth with its namespace, asynchronously, after rm has returned)."""
    deadline = time.monotonic() + seconds
    while link in _links():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    e = busybox_engine(tmp_path_factory.mktemp("net") / "root", "nft")
    yield e
    remove_containers(e)
    removed = [n.bridge for n in e.networks() if not n.is_default]
    for n in e.networks():
        if not n.is_default:
            e.network_rm(n.name)
    # Nothing of the network is left: no endpoint, no port, no table, no netns; the
    # removed networks' bridges are gone, the default one stays up (as docker0).
    assert store.endpoints(e.db) == [] and store.port_mappings(e.db) == []
    assert not table_exists(nft_table(e.paths))
    assert not (set(removed) & _links())
    assert e.network("portside").bridge in _links()
    assert not list((e.paths.run / "netns").glob("*")) if (e.paths.run / "netns").exists() else True
    e.close()


@pytest.fixture
def network(engine: Engine) -> Iterator[Callable[..., str]]:
    """Create user networks (auto subnets); removed afterwards."""
    made: list[str] = []

    def _net(**kw: object) -> str:
        name = f"net-{secrets.token_hex(3)}"
        engine.network_create(name, **kw)  # type: ignore[arg-type]
        made.append(name)
        return name

    yield _net
    for name in made:
        try:
            engine.network_rm(name)
        except NoSuchNetwork:
            pass                    # the test removed it


@pytest.fixture
def make(engine: Engine, network: Callable[..., str]) -> Iterator[Callable[..., str]]:
    """Run (or create) a busybox container; every one is removed afterwards (before the networks)."""
    yield from container_maker(engine, "n-")


def fetch(url: str, tries: int = 50) -> str:
    """GET ``url`` (on 127.0.0.1), retrying while the server starts (bounded)."""
    last: Exception | None = None
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError as err:
            last = err
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer: {last}")


def http_get(engine: Engine, cid: str, host: str, port: int = 80, tries: int = 20) -> tuple[int, str]:
    """GET / from inside a container with nc (Debian's static busybox wget crashes);
    retried while the peer's server starts (bounded). Returns (0 on a 200, the output)."""
    script = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 {host} {port}'
    code, out = 1, ""
    for _ in range(tries):
        r = engine.exec_run(cid, ["sh", "-c", script], timeout=10)
        out = (r.stdout + r.stderr).decode(errors="replace")
        code = 0 if " 200 OK" in out else 1
        if code == 0:
            break
        time.sleep(0.1)
    return code, out


def ip_of(engine: Engine, cid: str, network: str = "portside") -> str:
    return engine.container_inspect(cid)["NetworkSettings"]["Networks"][network]["IPAddress"]


# -- tests --------------------------------------------------------------------------

def test_run_uses_the_default_bridge_and_httpd_answers_on_localhost(
        engine: Engine, make: Callable[..., str]) -> None:
    port = _free_port()
    cid = make(*HTTPD, ports=(f"127.0.0.1:{port}:80",), hostname="web1")
    assert engine.container(cid).network_mode == "bridge"
    assert fetch(f"http://127.0.0.1:{port}/").strip() == "hello-from-web1"
    settings = engine.container_inspect(cid)["NetworkSettings"]
    assert settings["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    default = engine.network("bridge")
    assert IPv4Address(settings["IPAddress"]) in default.subnet
    assert settings["Gateway"] == str(default.gateway)
    # Hairpin: a container reaches its own port published on the gateway address
    # (the bridge drops such frames unless its port is in hairpin mode).
    port2 = _free_port()
    own = make(*HTTPD, ports=(f"{default.gateway}:{port2}:80",))
    assert http_get(engine, own, str(default.gateway), port2)[0] == 0


def test_a_busy_port_is_refused_at_create(engine: Engine, make: Callable[..., str]) -> None:
    port = _free_port()
    make(*HTTPD, ports=(f"127.0.0.1:{port}:80",))
    before = {c.id for c in engine.containers(all=True)}
    with pytest.raises(InvalidArgument, match="already published"):
        make(start=False, ports=(f"127.0.0.1:{port}:80",))
    for bad in ({"network": "no-such-net"}, {"ports": ("1:2:3:4",)}, {"dns": ("not-an-ip",)},
                {"add_hosts": ("nocolon",)}, {"ip": "192.0.2.99"}):
        with pytest.raises(Exception):
            make(start=False, **bad)
    assert {c.id for c in engine.containers(all=True)} == before     # nothing was created


def test_names_and_aliases_resolve_on_a_user_network(
        engine: Engine, make: Callable[..., str], network: Callable[..., str]) -> None:
    net = network()
    subnet = engine.network(net).subnet
    fixed = str(subnet[10])
    web = make(*HTTPD, network=net, hostname="web2", network_aliases=("db",), ip=fixed,
               name=f"web-{secrets.token_hex(3)}")
    assert ip_of(engine, web, net) == fixed
    client = make(network=net)
    name = engine.container(web).name
    for host in (name, "db", web[:12]):
        code, out = http_get(engine, client, host)
        assert code == 0 and "hello-from-web2" in out, (host, out)


def test_two_networks_are_isolated(engine: Engine, make: Callable[..., str],
                                   network: Callable[..., str]) -> None:
    a, b = network(), network()
    web = make(*HTTPD, network=a)
    same = make(network=a)
    other = make(network=b)
    addr = ip_of(engine, web, a)
    assert http_get(engine, same, addr)[0] == 0
    code, _out = http_get(engine, other, addr, tries=1)
    assert code != 0


def test_a_published_port_is_reachable_from_another_network(
        engine: Engine, make: Callable[..., str], network: Callable[..., str]) -> None:
    a, b = network(), network()
    port = _free_port()
    gateway_b = str(engine.network(b).gateway)
    make(*HTTPD, network=a, ports=(f"{port}:80",))
    other = make(network=b)
    # Through the host's address on b's side (its gateway): the published
    # port, as from anything on the host; the container's own address stays cut off.
    assert http_get(engine, other, gateway_b, port)[0] == 0


def test_internal_network_cannot_reach_the_hosts_listeners(
        engine: Engine, make: Callable[..., str], network: Callable[..., str]) -> None:
    net = network(internal=True)
    gateway = str(engine.network(net).gateway)
    port = _free_port()
    with socket.socket() as srv:           # a listener on every host address
        srv.bind(("0.0.0.0", port))
        srv.listen(4)
        srv.settimeout(0.2)
        cid = make(network=net)
        r = engine.exec_run(cid, ["nc", "-w", "2", gateway, str(port)], stdin=b"x", timeout=10)
        try:
            conn, _ = srv.accept()
            conn.close()
            reached = True
        except socket.timeout:
            reached = False
    assert not reached and r.exit_code != 0


def test_publish_all_uses_the_images_exposed_ports(engine: Engine, tmp_path: Path) -> None:
    lower = engine.image_store.lower_dirs(engine.image("busybox").id)
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        for d in lower:
            for p in sorted(Path(d).iterdir()):
                t.add(p, arcname=p.name)
    ref = f"exposing-{secrets.token_hex(3)}:latest"
    engine.import_image(tar, ref, changes=["EXPOSE 80"])
    try:
        spec = ContainerSpec(image=ref, command=HTTPD, publish_all=True,
                             name=f"p-{secrets.token_hex(3)}")
        cid = engine.run(spec).id
        try:
            ports = engine.container_ports(cid)
            assert [(m.container_port, m.protocol) for m in ports] == [(80, "tcp")]
            assert fetch(f"http://127.0.0.1:{ports[0].host_port}/").startswith("hello-from-")
        finally:
            engine.rm(cid, force=True)
    finally:
        engine.rmi(ref, force=True)


def test_connect_and_disconnect_while_running(engine: Engine, make: Callable[..., str],
                                              network: Callable[..., str]) -> None:
    a, b = network(), network()
    web = make(*HTTPD, network=a)
    client = make(network=b)
    addr = ip_of(engine, web, a)
    assert http_get(engine, client, addr, tries=1)[0] != 0
    engine.network_connect(a, client)
    assert http_get(engine, client, addr)[0] == 0
    assert set(engine.container_inspect(client)["NetworkSettings"]["Networks"]) == {a, b}
    engine.network_disconnect(a, client)
    assert http_get(engine, client, addr, tries=1)[0] != 0


def test_parallel_runs_get_distinct_addresses(engine: Engine, make: Callable[..., str]) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            ids.append(make())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    addrs = [ip_of(engine, cid) for cid in ids]
    assert len(set(addrs)) == 4


def test_nothing_is_left_after_rm(engine: Engine, make: Callable[..., str]) -> None:
    port = _free_port()
    cid = make(ports=(f"127.0.0.1:{port}:80",))
    eps = store.endpoints(engine.db, container_id=cid)
    assert len(eps) == 1 and eps[0].host_ifname in _links()
    assert netns_path(engine.paths, cid).exists()
    engine.rm(cid, force=True)
    # at once out of the bridge's use (down), soon gone with the namespace
    shown = subprocess.run(["ip", "-o", "link", "show", eps[0].host_ifname], capture_output=True,
                           text=True).stdout
    assert not shown or "state DOWN" in shown
    assert _gone_soon(eps[0].host_ifname)
    assert not netns_path(engine.paths, cid).exists()
    assert store.endpoints(engine.db, container_id=cid) == []
    assert store.port_mappings(engine.db, cid) == []
    if not store.endpoints(engine.db):
        assert not table_exists(nft_table(engine.paths))
    else:
        listing = subprocess.run(["nft", "list", "table", "ip", nft_table(engine.paths)],
                                 capture_output=True, text=True).stdout
        assert f"dport {port} " not in listing


def test_a_bridge_lives_as_long_as_its_network(engine: Engine, make: Callable[..., str],
                                               network: Callable[..., str]) -> None:
    name = network()
    cid = make(network=name)
    bridge = engine.network(name).bridge
    engine.rm(cid, force=True)
    assert bridge in _links()                      # its last container went; it stays (docker0)
    subprocess.run(["ip", "link", "del", bridge], check=True)     # someone deleted it
    again = make(*HTTPD, network=name)
    assert bridge in _links()                      # made again, with its address
    assert f"inet {engine.network(name).gateway}/" in subprocess.run(
        ["ip", "-4", "addr", "show", bridge], capture_output=True, text=True).stdout
    peer = make(network=name)
    assert http_get(engine, peer, ip_of(engine, again, name))[0] == 0
    for c in (again, peer):
        engine.rm(c, force=True)
    engine.network_rm(name)
    assert bridge not in _links()


def test_a_bridge_whose_root_was_deleted_goes_when_another_comes_up(
        engine: Engine, make: Callable[..., str], network: Callable[..., str],
        tmp_path: Path) -> None:
    orphan = "ps-orphan" + secrets.token_hex(3)
    subprocess.run(["ip", "link", "add", orphan, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "link", "set", orphan, "alias", f"portside:{tmp_path}/gone"], check=True)
        name = network()
        make(network=name)                              # its bridge comes up: the host is checked
        assert orphan not in _links()
        bridge = engine.network(name).bridge
        alias = subprocess.run(["ip", "-o", "link", "show", bridge], capture_output=True,
                               text=True).stdout
        assert f"alias portside:{engine.paths.root}" in alias      # ours says whose it is
    finally:
        subprocess.run(["ip", "link", "del", orphan], capture_output=True)


def test_a_start_replaces_a_veth_of_the_same_name_still_being_destroyed(
        engine: Engine, make: Callable[..., str]) -> None:
    # A quick restart can find the pair of its earlier run still in the
    # kernel (its namespace is destroyed asynchronously): a stand-in with
    # that name must be replaced, not fail the start.
    cid = make(start=False)
    net = next(n for n in engine.networks() if n.is_default)
    name = veth_name(cid, net.id)
    peer = "vpstest" + secrets.token_hex(3)
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer], check=True)
    try:
        engine.start(cid)
        assert f"master {net.bridge} " in subprocess.run(
            ["ip", "link", "show", name], capture_output=True, text=True).stdout
        assert peer not in _links()                # the stand-in went, both its ends
    finally:
        subprocess.run(["ip", "link", "del", peer], capture_output=True)
    engine.rm(cid, force=True)
    assert _gone_soon(name)


def test_two_roots_at_once_get_separate_subnets(tmp_path: Path) -> None:
    engines = [Engine(tmp_path / f"root{i}") for i in range(2)]
    made: list[tuple[Engine, str]] = []
    errors: list[BaseException] = []
    try:
        for e in engines:
            e.bootstrap_busybox()

        def one(e: Engine) -> None:
            try:
                made.append((e, e.run(ContainerSpec(image="busybox", command=("sleep", "60"))).id))
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=one, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        subnets = [IPv4Network(e.network("bridge").subnet) for e in engines]
        assert not subnets[0].overlaps(subnets[1])
        for e, cid in made:
            assert IPv4Address(ip_of(e, cid)) in e.network("bridge").subnet
        # A port one root publishes is refused to the other.
        port = _free_port()
        made.append((engines[0], engines[0].run(ContainerSpec(
            image="busybox", command=("sleep", "60"), ports=(f"127.0.0.1:{port}:80",))).id))
        with pytest.raises(InvalidArgument, match="another portside root"):
            engines[1].create(ContainerSpec(image="busybox", ports=(f"127.0.0.1:{port}:80",)))
    finally:
        for e, cid in made:
            e.rm(cid, force=True)
        for e in engines:
            e.close()


def test_cli_run_publishes_a_port(engine: Engine) -> None:
    port = _free_port()
    name = f"cli-{secrets.token_hex(3)}"
    base = [sys.executable, "-m", "tui", "--root", str(engine.paths.root),
            "--run-dir", str(engine.paths.run)]
    r = subprocess.run(base + ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80",
                               "busybox", *HTTPD], capture_output=True, text=True, timeout=60,
                       cwd=REPO)
    try:
        assert r.returncode == 0, r.stderr
        assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-from-")
        r = subprocess.run(base + ["port", name], capture_output=True, text=True, timeout=60,
                           cwd=REPO)
        assert f"80/tcp -> 127.0.0.1:{port}" in r.stdout
    finally:
        subprocess.run(base + ["rm", "-f", name], capture_output=True, timeout=60, cwd=REPO)


# -- attachments kept across restarts ---------------------------------------------------

def _ifaces(engine: Engine, cid: str) -> set[str]:
    r = engine.exec_run(cid, ["ls", "/sys/class/net"], timeout=10)
    return set(r.stdout.decode().split())


def test_a_connect_survives_a_restart(engine: Engine, make: Callable[..., str],
                                      network: Callable[..., str]) -> None:
    n1, other = network(), network()
    web = make(*HTTPD, network=n1, name=f"web-{secrets.token_hex(3)}")
    client = make(network=other)
    engine.network_connect(n1, client, aliases=("cli",))
    assert "eth1" in _ifaces(engine, client)
    engine.restart(client, timeout=1)
    assert {"eth0", "eth1"} <= _ifaces(engine, client)
    name = engine.container(web).name
    code, out = http_get(engine, client, name)
    assert code == 0 and "hello-from-" in out, out
    nets = engine.container_inspect(client)["NetworkSettings"]["Networks"]
    assert set(nets) == {n1, other} and nets[n1]["IPAddress"] and "cli" in nets[n1]["Aliases"]
    assert client in engine.network_inspect(n1)["Containers"]
    # The peer resolves the connected container by its alias too, after the restart.
    r = engine.exec_run(web, ["ping", "-c", "1", "-W", "2", "cli"], timeout=10)
    assert r.exit_code == 0, r.stdout + r.stderr
    # A disconnect is kept as well: the next start does not join n1 again.
    engine.network_disconnect(n1, client)
    engine.restart(client, timeout=1)
    assert "eth1" not in _ifaces(engine, client)
    assert set(engine.container_inspect(client)["NetworkSettings"]["Networks"]) == {other}
    assert client not in engine.network_inspect(n1)["Containers"]


def test_connect_a_stopped_container_then_start_it(engine: Engine, make: Callable[..., str],
                                                   network: Callable[..., str]) -> None:
    n1, other = network(), network()
    web = make(*HTTPD, network=n1, name=f"web-{secrets.token_hex(3)}")
    client = make(network=other, start=False)
    fixed = str(engine.network(n1).subnet[20])
    assert engine.network_connect(n1, client, ip=fixed) is None
    stopped = engine.container_inspect(client)["NetworkSettings"]["Networks"]
    assert stopped[n1]["IPAddress"] == "" and stopped[n1]["IPAMConfig"] == {"IPv4Address": fixed}
    engine.start(client)
    assert ip_of(engine, client, n1) == fixed
    code, out = http_get(engine, client, engine.container(web).name)
    assert code == 0, out
    # ...and a stopped one can be disconnected, applied at its next start.
    engine.stop(client, timeout=1)
    engine.network_disconnect(n1, client)
    engine.start(client)
    assert set(engine.container_inspect(client)["NetworkSettings"]["Networks"]) == {other}


def test_prune_keeps_a_network_a_stopped_container_uses(engine: Engine, make: Callable[..., str],
                                                        network: Callable[..., str]) -> None:
    used = network()
    cid = make(network=used, start=False)
    assert used not in engine.network_prune()
    with pytest.raises(InUse, match=f"network {used} is used by container {engine.container(cid).name}"):
        engine.network_rm(used)
    engine.start(cid)
    assert ip_of(engine, cid, used)


def test_the_default_route_moves_when_its_network_goes(engine: Engine, make: Callable[..., str],
                                                       network: Callable[..., str]) -> None:
    n1 = network()
    cid = make()
    engine.network_connect(n1, cid)

    def default_via() -> str:
        out = engine.exec_run(cid, ["ip", "route"], timeout=10).stdout.decode()
        return next((line.split()[2] for line in out.splitlines() if line.startswith("default")), "")

    assert default_via() == str(engine.network("bridge").gateway)
    engine.network_disconnect("bridge", cid)
    assert default_via() == str(engine.network(n1).gateway)


def test_cli_run_joins_every_network_given(engine: Engine, network: Callable[..., str]) -> None:
    n1 = network()
    base = [sys.executable, "-m", "tui", "--root", str(engine.paths.root),
            "--run-dir", str(engine.paths.run)]
    r = subprocess.run(base + ["run", "--rm", "--network", n1, "--network", "bridge", "busybox",
                               "ip", "-4", "-o", "addr"], capture_output=True, text=True,
                       timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    addrs = {line.split()[1]: IPv4Interface(line.split()[3]) for line in r.stdout.splitlines()}
    assert addrs["eth0"].ip in engine.network(n1).subnet
    assert addrs["eth1"].ip in engine.network("bridge").subnet
    before = {c.id for c in engine.containers(all=True)}
    bad = subprocess.run(base + ["run", "--rm", "--network", n1, "--network", "nosuch", "busybox",
                                 "true"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 125 and "no such network: nosuch" in bad.stderr
    assert {c.id for c in engine.containers(all=True)} == before       # nothing left behind
