"""Setting a container's network up and down: the hooks behind :mod:`engine.network`.

Every change to endpoints, published ports, bridges, the nftables table
and hosts files happens under one cross-process lock (``network``), taken
*after* any container lock, so the kernel state always follows the
database and two ``run``s never race on a bridge. The database rows are
written first (in one transaction, with the events), the kernel work
after; on failure the kernel work is undone from the rows, and after a
crash :func:`reconcile` does the same.
"""
from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import EngineError, InvalidArgument, InvalidState, NetworkError
from ..paths import DB_FILE
from ..records import ContainerSpec
from . import hosts as hostsmod
from . import hostwide, ipam
from . import store
from .bridge import bridge_sysctls, netns_dir, netns_path, nft_table, veth_name
from .dataplane import Dataplane, LinuxDataplane
from .model import Attachment, Endpoint, NetworkInfo, NetworkSetup, PortMapping
from .ports import (BridgeRules, DnatRule, PortSpec, allocate_ports, delete_script, exposed_specs,
                    parse_port_spec, render_ruleset)
from .store import NetContext
from .traces import ALIVE_STATUSES, DIRTY, stale_containers, traced_containers

NETWORK_LOCK = "network"

HOSTS_FILE = "hosts"
RESOLV_FILE = "resolv.conf"


def _dp(ctx: NetContext, dataplane: Dataplane | None) -> Dataplane:
    """The explicit dataplane, else the context's ``net_dataplane`` (a test fake), else the kernel."""
    if dataplane is not None:
        return dataplane
    return getattr(ctx, "net_dataplane", None) or LinuxDataplane()


@dataclass(frozen=True)
class _Request:
    """A container's network wishes, validated (nothing created yet)."""

    mode: str                           # bridge | none | host
    network: NetworkInfo | None
    ip: IPv4Address | None
    aliases: tuple[str, ...]
    ports: tuple[PortSpec, ...]
    add_hosts: tuple[tuple[str, str], ...]
    dns: tuple[str, ...]
    hostname: str
    warnings: tuple[str, ...]


def _validate(ctx: NetContext, container_id: str, spec: ContainerSpec, exposed_ports: Iterable[str],
              aliases: Iterable[str], ip: str | None) -> _Request:
    mode = spec.network or "bridge"
    aliases = tuple(aliases) + tuple(spec.network_aliases or ())
    ip = ip or spec.ip or None
    warnings: list[str] = []
    network: NetworkInfo | None = None
    if mode in ("none", "host"):
        if ip:
            raise InvalidArgument(f"--ip needs a bridge network, not --network {mode}")
        if tuple(aliases):
            raise InvalidArgument(f"--network-alias needs a user-defined network, not --network {mode}")
    elif mode.startswith("container:"):
        raise InvalidArgument("--network container:NAME is not supported yet",
                              hint="put both containers on one user-defined network instead")
    else:
        name = store.canonical_name(mode)
        network = store.ensure_default(ctx) if name == store.DEFAULT_NETWORK \
            else store.get_network(ctx.db, name)
        mode = "bridge"
        if tuple(aliases) and network.is_default:
            raise InvalidArgument("--network-alias only works on user-defined networks",
                                  hint="create one: portside network create NAME")
    hostname = spec.hostname or container_id[:12]
    hostsmod.check_name(hostname, "hostname")
    checked_aliases = tuple(dict.fromkeys(hostsmod.check_name(a) for a in aliases))
    specs = [parse_port_spec(p) for p in spec.ports]
    if spec.publish_all:
        specs += exposed_specs(exposed_ports)
    if specs and mode == "none":
        raise InvalidArgument("cannot publish ports of a container with --network none",
                              hint="drop -p/-P or use a bridge network")
    if specs and mode == "host":
        warnings.append("published ports are discarded when using host network mode")
        specs = []
    if specs and network is not None and network.internal:
        warnings.append(f"published ports are not reachable on internal network {network.name}")
        specs = []
    add_hosts = []
    for text in spec.add_hosts:
        name, addr = hostsmod.parse_add_host(text)
        if addr == "host-gateway":
            if network is None:
                if mode == "host":
                    addr = "127.0.0.1"
                else:
                    raise InvalidArgument(f"--add-host {text}: host-gateway needs a bridge network")
            else:
                addr = str(network.gateway)
        add_hosts.append((name, addr))
    requested = ipam.parse_ip(ip, network) if (ip and network is not None) else None
    return _Request(mode, network, requested, checked_aliases, tuple(specs), tuple(add_hosts),
                    tuple(hostsmod.parse_dns(spec.dns)), hostname, tuple(warnings))


# -- prepare ---------------------------------------------------------------------

def prepare(ctx: NetContext, container_id: str, name: str, spec: ContainerSpec, *,
            exposed_ports: Iterable[str] = (), aliases: Iterable[str] = (),
            ip: str | None = None, attachments: Sequence[Attachment] | None = None,
            dataplane: Dataplane | None = None) -> NetworkSetup:
    """Set up a container's network before the runtime starts it.

    See :mod:`engine.network` for the contract. Bad input (unknown network,
    bad ``-p``, port in use, ``--ip`` taken) is refused before anything is
    created; a failure half-way undoes everything done so far.

    ``attachments`` are the networks a bridge-mode container joins (its
    stored ``network connect``/``disconnect`` result), ``eth0`` first with
    the published ports; ``None`` means just ``spec.network``. An empty
    list gives a namespace with only ``lo``, ready for a ``connect``.

    Raises:
        NoSuchNetwork: ``spec.network`` names no network.
        InvalidArgument: a bad or conflicting ``-p``, ``--ip``, alias, ``--dns`` or ``--add-host``.
        NetworkError: the kernel refused (the message says what failed).
        NeedsRoot: not running as root.
    """
    mode = spec.network or "bridge"
    extras: Sequence[Attachment] = ()
    bare = False              # a bridge-mode container disconnected from every network
    if attachments is not None and mode not in ("none", "host") and not mode.startswith("container:"):
        if attachments:
            first = attachments[0]
            spec = replace(spec, network=first.network, network_aliases=first.aliases,
                           ip=first.ip or None)
            extras = attachments[1:]
        else:
            bare = True
    if bare:
        req = _validate(ctx, container_id, replace(spec, network="none", ports=(), publish_all=False,
                                                   network_aliases=(), ip=None), exposed_ports, (), None)
        if spec.ports or spec.publish_all:
            req = replace(req, warnings=req.warnings + (
                f"published ports are not reachable: container {name} is on no network "
                f"(portside network connect NETWORK {name})",))
    else:
        req = _validate(ctx, container_id, spec, exposed_ports, aliases, ip)
    joins = [_attachment_request(ctx, a) for a in extras]
    if req.network is not None:
        joins = [j for j in joins if j[0].id != req.network.id]
    cdir = ctx.paths.container(container_id)
    hosts_path = cdir / HOSTS_FILE if cdir.is_dir() else None
    resolv_path = cdir / RESOLV_FILE if cdir.is_dir() else None
    host_resolv = hostsmod.read_host_resolv()

    if req.mode == "host":
        try:
            host_hosts = Path("/etc/hosts").read_text()
        except OSError:
            host_hosts = ""
        hosts_text = hostsmod.host_mode_hosts(host_hosts, req.add_hosts)
        resolv_text = hostsmod.resolv_conf_content(host_resolv, req.dns, keep_loopback=True)
        _write_files(hosts_path, hosts_text, resolv_path, resolv_text)
        return NetworkSetup("host", None, None, (), (), os.uname().nodename, hosts_text,
                            resolv_text, hosts_path, resolv_path, req.warnings)
    if req.mode == "none":
        hosts_text = hostsmod.hosts_content([], req.add_hosts)
        resolv_text = hostsmod.resolv_conf_content(host_resolv, req.dns)
        _write_files(hosts_path, hosts_text, resolv_path, resolv_text)
        if not bare:
            return NetworkSetup("none", {"type": "network"}, None, (), (), req.hostname, hosts_text,
                                resolv_text, hosts_path, resolv_path, req.warnings)
        return _bare_namespace(ctx, _dp(ctx, dataplane), container_id,
                               NetworkSetup("bridge", None, None, (), (), req.hostname, hosts_text,
                                            resolv_text, hosts_path, resolv_path, req.warnings))

    net = req.network
    assert net is not None
    dp = _dp(ctx, dataplane)
    path = netns_path(ctx.paths, container_id)
    with ctx.lock(NETWORK_LOCK), _ports_lock(ctx, bool(req.ports)):
        if store.endpoints(ctx.db, container_id=container_id) or path.exists():
            _teardown_locked(ctx, container_id, dp)       # leftovers of an earlier run
        foreign = dp.foreign_ports(nft_table(ctx.paths)) if req.ports else []
        net, created = _bring_up(ctx, dp, net)
        try:
            with ctx.db.tx() as c:
                ep = _add_endpoint(ctx, c, container_id, name, net, "eth0", req.ip,
                                   req.aliases, req.hostname)
                mappings = allocate_ports(req.ports, _taken_ports(c, container_id) + foreign)
                store.insert_ports(c, container_id, net.id, mappings)
        except BaseException:
            if created:
                dp.delete_link(net.bridge)      # made for this run: a refusal leaves nothing
            raise
        try:
            if not created:
                _ensure_bridge(ctx, dp, net)  # up, with its address (someone may have downed it)
            dp.create_netns(path)
            dp.add_veth(ep.host_ifname, path, ep.ifname, ep.mac, ep.address,
                        None if net.internal else net.gateway, net.bridge)
            joined = [ep]
            for xnet, xip, xaliases in joins:
                joined.append(_join(ctx, dp, container_id, name, xnet, xip, xaliases,
                                    req.hostname, joined))
            _apply_rules(ctx, dp)
            hosts_text = hostsmod.hosts_content(_hosts_entries_for(ctx, container_id), req.add_hosts)
            resolv_text = hostsmod.resolv_conf_content(host_resolv, req.dns)
            _write_files(hosts_path, hosts_text, resolv_path, resolv_text)
            _refresh_hosts(ctx, [e.network_id for e in joined], skip=container_id)
        except BaseException as err:
            try:
                _teardown_locked(ctx, container_id, dp)
            except EngineError:
                pass            # the original failure is what the user needs to see
            if isinstance(err, EngineError) or not isinstance(err, Exception):
                raise
            raise NetworkError(f"setting up the network of container {name} failed: {err}") from err
    return NetworkSetup("bridge", {"type": "network", "path": str(path)}, path, tuple(joined),
                        tuple(mappings), req.hostname, hosts_text, resolv_text, hosts_path,
                        resolv_path, req.warnings)


def _bare_namespace(ctx: NetContext, dp: Dataplane, container_id: str,
                    setup: NetworkSetup) -> NetworkSetup:
    """A namespace with only ``lo`` for a bridge-mode container on no network (yet)."""
    path = netns_path(ctx.paths, container_id)
    with ctx.lock(NETWORK_LOCK):
        if store.endpoints(ctx.db, container_id=container_id) or path.exists():
            _teardown_locked(ctx, container_id, dp)
        dp.create_netns(path)
    return replace(setup, namespace={"type": "network", "path": str(path)}, netns_path=path)


def _attachment_request(ctx: NetContext, att: Attachment
                        ) -> tuple[NetworkInfo, IPv4Address | None, tuple[str, ...]]:
    """``(network, requested ip, aliases)`` of one attachment, validated; nothing allocated.

    Raises:
        NoSuchNetwork: the network is gone.
        InvalidArgument: a bad alias or ``--ip``, or an alias on the default network.
    """
    name = store.canonical_name(att.network)
    net = store.ensure_default(ctx) if name == store.DEFAULT_NETWORK else store.get_network(ctx.db, name)
    aliases = tuple(dict.fromkeys(hostsmod.check_name(a) for a in att.aliases))
    if aliases and net.is_default:
        raise InvalidArgument("--alias only works on user-defined networks",
                              hint="create one: portside network create NAME")
    return net, (ipam.parse_ip(att.ip, net) if att.ip else None), aliases


def check_attachment(ctx: NetContext, att: Attachment) -> Attachment:
    """Refuse a bad ``network connect`` of a stopped container up front.

    Returns the attachment with the network's canonical name and the
    aliases checked; the address is only taken at the next start.

    Raises:
        NoSuchNetwork: unknown network.
        InvalidArgument: a bad alias or ``--ip`` (outside the subnet, reserved).
    """
    net, ip, aliases = _attachment_request(ctx, att)
    return Attachment(net.name, aliases, str(ip) if ip is not None else "")


@contextmanager
def _ports_lock(ctx: NetContext, needed: bool) -> Iterator[None]:
    """The host-wide lock while host ports are chosen and their rules written (other roots)."""
    if not needed:
        yield
        return
    with hostwide.host_lock(hostwide.host_dir(ctx)):
        yield


def check(ctx: NetContext, container_id: str, spec: ContainerSpec, *,
          exposed_ports: Iterable[str] = ()) -> tuple[str, ...]:
    """Refuse a container's network wishes before it is created (``create``).

    Everything :func:`prepare` would refuse up front is checked here, with
    nothing allocated or made: unknown network, bad ``-p``/``--dns``/
    ``--add-host``/alias/``--ip``, a host port in use (on the host, by
    another container, or by another portside root), an ``--ip`` another
    container holds. ``prepare`` checks again at every start.

    Returns the warnings the user should see (ports discarded...).

    Raises:
        NoSuchNetwork: ``spec.network`` names no network.
        InvalidArgument: what is wrong, and how to fix it.
    """
    req = _validate(ctx, container_id, spec, exposed_ports, (), None)
    if req.network is not None and req.ip is not None:
        row = ctx.db.one("SELECT container_name FROM network_endpoints WHERE network_id=? AND ip=?",
                         (req.network.id, str(req.ip)))
        if row is not None:
            raise InvalidArgument(f"{req.ip} is already in use on network {req.network.name} "
                                  f"by container {row['container_name']}", hint="pick another --ip")
    if req.ports:
        taken = _taken_ports(ctx.db.conn, container_id) + \
            _dp(ctx, None).foreign_ports(nft_table(ctx.paths))
        allocate_ports([p for p in req.ports if p.host_ports is not None], taken)
    return req.warnings


def _taken_ports(c: object, container_id: str) -> list[tuple[str, PortMapping]]:
    rows = c.execute(  # type: ignore[attr-defined]
        "SELECT p.*, (SELECT container_name FROM network_endpoints e "
        "             WHERE e.container_id = p.container_id LIMIT 1) AS cname "
        "FROM port_mappings p WHERE p.container_id != ?", (container_id,)).fetchall()
    return [(r["cname"] or r["container_id"][:12],
             PortMapping(r["host_ip"], r["host_port"], r["container_port"], r["protocol"]))
            for r in rows]


def _write_files(hosts_path: Path | None, hosts_text: str, resolv_path: Path | None,
                 resolv_text: str) -> None:
    if hosts_path is not None:
        hostsmod.write_in_place(hosts_path, hosts_text)
    if resolv_path is not None:
        hostsmod.write_in_place(resolv_path, resolv_text)


def _mark_dirty(c: object) -> None:
    c.execute("INSERT INTO settings(key, value) VALUES (?, '1') "  # type: ignore[attr-defined]
              "ON CONFLICT(key) DO UPDATE SET value='1'", (DIRTY,))


def _ensure_bridge(ctx: NetContext, dp: Dataplane, net: NetworkInfo) -> None:
    dp.ensure_bridge(net.bridge, net.gateway_interface,
                     bridge_sysctls(net.bridge, internal=net.internal), owner=str(ctx.paths.root))


def _bring_up(ctx: NetContext, dp: Dataplane, net: NetworkInfo) -> tuple[NetworkInfo, bool]:
    """Make sure ``net``'s bridge is up with its gateway address.

    A bridge stays up while its network exists (as Docker's ``docker0``
    and ``br-*`` do): ``network rm`` and ``system reset`` delete it, a
    reboot loses it. One that is there with its address is this root's,
    up since an earlier run: it is left for the caller to ensure (up,
    sysctls) once its own checks passed. A network with containers attached
    is never moved: its bridge is made again where it was (under the lock,
    unless its subnet is taken by now). Otherwise (missing, or without its
    address) the host is checked, under the host-wide lock: bridges whose
    state root is gone are removed, then the subnet is compared with the
    host's routes and addresses — other roots' bridges, docker0, VPNs —
    and the bridge is made before the lock is let go. A subnet portside
    chose itself moves to a free one; one the user chose is refused.
    Call with the network lock.

    Returns the network as it now is, and whether its bridge was created
    now (if not, the caller ensures it).

    Raises:
        NetworkError: a user-chosen subnet is in use elsewhere on the host.
    """
    addresses = dp.bridge_addresses(net.bridge)
    if addresses is not None and net.gateway_interface in addresses:
        return net, False
    in_use = bool(store.endpoints(ctx.db, network_id=net.id))
    with hostwide.host_lock(hostwide.host_dir(ctx)):
        _remove_orphan_bridges(dp)
        taken = store.host_taken(ctx, ctx.db.conn)
        clash = next(((o, s) for o, s in taken if s.overlaps(net.subnet)), None)
        if clash is not None:
            if in_use:
                # Someone deleted the bridge under its containers, and the subnet went elsewhere.
                raise NetworkError(f"the bridge of network {net.name} is gone and its subnet "
                                   f"{net.subnet} is now in use on {clash[0]}",
                                   hint=f"stop the containers on {net.name}, then start them again")
            if not store.auto_subnet(ctx.db, net):
                raise NetworkError(f"subnet {net.subnet} of network {net.name} overlaps "
                                   f"{clash[1]} on {clash[0]}",
                                   hint=f"remove network {net.name} and create it with another "
                                        "--subnet" if not net.is_default else
                                        "free that subnet, or run portside system reset with "
                                        f"{ipam.ENV_DEFAULT_SUBNET} set to another")
            pool_text = None if net.is_default else ctx.db.get_setting(ipam.SETTING_POOL)
            pool = ipam.parse_subnet(pool_text or str(ipam.DEFAULT_POOL))
            others = [s for _o, s in store.used_subnets(ctx.db, exclude_id=net.id)]
            subnet = ipam.pick_subnet(pool, others + [s for _o, s in taken])
            gateway = ipam.parse_gateway(None, subnet)
            with ctx.db.tx() as c:
                c.execute("UPDATE networks SET subnet=?, gateway=? WHERE id=?",
                          (str(subnet), str(gateway), net.id))
            net = store.get_network(ctx.db, net.id)
        _ensure_bridge(ctx, dp, net)
    # Made again under containers is not "made for this run": a refusal must not delete it.
    return net, addresses is None and not in_use


def _remove_orphan_bridges(dp: Dataplane) -> None:
    """Delete the bridges of state roots that no longer exist (a root removed by hand).

    Their subnets would otherwise stay taken on the host for good. Only a
    bridge with no port, whose root's database is surely absent (not just
    unreadable, or on a file system that is away), goes: at worst it is a
    live root's idle bridge that this process cannot see, which that root
    makes again on its next run. Call with the host-wide lock.
    """
    for bridge, root, ports in dp.owned_bridges():
        if ports:
            continue
        try:
            os.stat(os.path.join(root, DB_FILE))
        except FileNotFoundError:
            dp.delete_link(bridge)
        except OSError:
            pass


def _apply_rules(ctx: NetContext, dp: Dataplane) -> None:
    """Make the nftables table match the database (removing it when nothing is attached)."""
    table = nft_table(ctx.paths)
    eps = store.endpoints(ctx.db)
    if not eps:
        dp.apply_nft(delete_script(table))
    else:
        used = {ep.network_id for ep in eps}
        nets = [n for n in store.list_networks(ctx.db) if n.id in used]
        ip_of = {(ep.container_id, ep.network_id): ep.ip for ep in eps}
        dnats = [DnatRule(m, ip_of[(cid, nid)]) for cid, nid, m in store.port_mappings(ctx.db)
                 if (cid, nid) in ip_of]
        dp.apply_nft(render_ruleset(table, [BridgeRules(n.bridge, n.subnet, n.internal) for n in nets],
                                    dnats))
    with ctx.db.tx() as c:
        c.execute("DELETE FROM settings WHERE key=?", (DIRTY,))


# -- teardown --------------------------------------------------------------------

def teardown(ctx: NetContext, container_id: str, *, dataplane: Dataplane | None = None) -> None:
    """Undo :func:`prepare` (and any :func:`connect`): veths, namespace, NAT, addresses.

    Idempotent: calling it for a container with nothing set up, or twice,
    does nothing. Peers' hosts files are rewritten without the container.

    Raises:
        NetworkError: the kernel refused to delete something (rows are kept
            so a later teardown or reconcile finishes the job).
    """
    with ctx.lock(NETWORK_LOCK):
        _teardown_locked(ctx, container_id, _dp(ctx, dataplane), fast=True)


def _teardown_locked(ctx: NetContext, container_id: str, dp: Dataplane, *,
                     fast: bool = False) -> None:
    """Undo a container's network; ``fast`` (it has exited: its processes are gone or going)
    leaves the veths to the kernel."""
    eps = store.endpoints(ctx.db, container_id=container_id)
    has_ports = bool(store.port_mappings(ctx.db, container_id))
    path = netns_path(ctx.paths, container_id)
    ns = path if path.exists() else None
    if fast and ns is not None:
        # Unmounting the namespace file drops its last reference (the
        # container has exited): the kernel destroys the namespace and every
        # veth pair with an end in it, in its own time, which takes the
        # ~20 ms a synchronous delete costs per veth off this path. The host
        # ends go down first, so the bridge stops using them (and forgets
        # their MACs) at once: the address may go to the next container now.
        # add_veth replaces a same-named pair that is still dying.
        for ep in eps:
            dp.veth_down(ep.host_ifname)
    else:
        # After a crash (reconcile) something may still hold the namespace:
        # delete the pairs for sure.
        for ep in eps:
            dp.remove_veth(ep.host_ifname, ns, ep.ifname)
    if ns is not None:
        dp.remove_netns(path)
    if not eps and not has_ports:
        return
    with ctx.db.tx() as c:
        c.execute("DELETE FROM port_mappings WHERE container_id=?", (container_id,))
        c.execute("DELETE FROM network_endpoints WHERE container_id=?", (container_id,))
        for ep in eps:
            ctx.db.add_event(c, "network", "disconnect", ep.network_id,
                             {"container": container_id, "name": ep.network, "type": "bridge"})
        _mark_dirty(c)
    _apply_rules(ctx, dp)
    _refresh_hosts(ctx, {ep.network_id for ep in eps})


# -- connect / disconnect a running container -----------------------------------------

def connect(ctx: NetContext, container_id: str, name: str, network: str, *,
            ip: str | None = None, aliases: Sequence[str] = (), hostname: str | None = None,
            dataplane: Dataplane | None = None) -> Endpoint:
    """Attach a running container (set up by :func:`prepare`) to one more network.

    The caller holds the container's lock and has checked it is running.

    Raises:
        NoSuchNetwork: unknown network.
        InvalidState: the container has no portside network namespace
            (``--network none|host``) or is already on the network.
        InvalidArgument: bad ``--ip`` or alias.
    """
    path = netns_path(ctx.paths, container_id)
    if not path.exists():
        raise InvalidState(f"container {name} does not use a bridge network",
                           hint="containers run with --network none or host cannot be connected")
    net, requested, checked = _attachment_request(ctx, Attachment(network, tuple(aliases), ip or ""))
    dp = _dp(ctx, dataplane)
    with ctx.lock(NETWORK_LOCK):
        current = store.endpoints(ctx.db, container_id=container_id)
        if any(e.network_id == net.id for e in current):
            raise InvalidState(f"container {name} is already connected to network {net.name}")
        host = hostname or (current[0].hostname if current else container_id[:12])
        try:
            ep = _join(ctx, dp, container_id, name, net, requested, checked, host, current)
        except BaseException as err:
            if isinstance(err, EngineError) or not isinstance(err, Exception):
                raise
            raise NetworkError(f"connecting container {name} to {net.name} failed: {err}") from err
        try:
            _apply_rules(ctx, dp)
            _refresh_hosts(ctx, [e.network_id for e in current] + [net.id])
        except BaseException as err:
            try:
                _disconnect_locked(ctx, dp, ep)
            except EngineError:
                pass
            if isinstance(err, EngineError) or not isinstance(err, Exception):
                raise
            raise NetworkError(f"connecting container {name} to {net.name} failed: {err}") from err
    return ep


def _add_endpoint(ctx: NetContext, c: sqlite3.Connection, container_id: str, name: str,
                  net: NetworkInfo, ifname: str, requested: IPv4Address | None,
                  aliases: Sequence[str], hostname: str) -> Endpoint:
    """Allocate an address on ``net`` and record the endpoint, in the caller's transaction."""
    addr = ipam.allocate(c, net, requested)
    ep = Endpoint(container_id, name, net.name, net.id, addr, net.subnet.prefixlen, net.gateway,
                  ipam.mac_for(addr), ifname, veth_name(container_id, net.id), tuple(aliases),
                  hostname)
    store.insert_endpoint(c, ep)
    ctx.db.add_event(c, "network", "connect", net.id,
                     {"container": container_id, "name": net.name, "type": net.driver})
    _mark_dirty(c)
    return ep


def _join(ctx: NetContext, dp: Dataplane, container_id: str, name: str, net: NetworkInfo,
          requested: IPv4Address | None, aliases: tuple[str, ...], hostname: str,
          current: Sequence[Endpoint]) -> Endpoint:
    """Put a container whose namespace exists on one more network: address, row, veth.

    Takes the first free ``ethN``; the default route goes through this
    network only if the namespace has none (and the network is not
    internal). Call with the network lock; the caller applies the NAT
    rules and rewrites hosts files afterwards. On failure nothing of this
    network's part is left.
    """
    used = {e.ifname for e in current}
    ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
    net, created = _bring_up(ctx, dp, net)
    try:
        if requested is not None:
            requested = ipam.parse_ip(str(requested), net)
        with ctx.db.tx() as c:
            ep = _add_endpoint(ctx, c, container_id, name, net, ifname, requested, aliases, hostname)
    except BaseException:
        if created:
            dp.delete_link(net.bridge)          # made for this connect: a refusal leaves nothing
        raise
    path = netns_path(ctx.paths, container_id)
    try:
        if not created:
            _ensure_bridge(ctx, dp, net)
        gateway = None if net.internal or dp.has_default_route(path) else net.gateway
        dp.add_veth(ep.host_ifname, path, ifname, ep.mac, ep.address, gateway, net.bridge)
    except BaseException:
        try:
            _disconnect_locked(ctx, dp, ep)
        except EngineError:
            pass                # the original failure is what the user needs to see
        raise
    return ep


def disconnect(ctx: NetContext, container_id: str, name: str, network: str, *,
               dataplane: Dataplane | None = None) -> None:
    """Detach a running container from one network (its veth and published ports there).

    If that network carried the container's default route, the route moves
    to the gateway of another (non-internal) network it is still on.

    Raises:
        NoSuchNetwork: unknown network.
        InvalidState: the container is not connected to it.
    """
    net = store.get_network(ctx.db, store.canonical_name(network))
    with ctx.lock(NETWORK_LOCK):
        ep = next((e for e in store.endpoints(ctx.db, container_id=container_id)
                   if e.network_id == net.id), None)
        if ep is None:
            raise InvalidState(f"container {name} is not connected to network {net.name}")
        _disconnect_locked(ctx, _dp(ctx, dataplane), ep)


def _disconnect_locked(ctx: NetContext, dp: Dataplane, ep: Endpoint) -> None:
    path = netns_path(ctx.paths, ep.container_id)
    ns = path if path.exists() else None
    dp.remove_veth(ep.host_ifname, ns, ep.ifname)
    with ctx.db.tx() as c:
        c.execute("DELETE FROM port_mappings WHERE container_id=? AND network_id=?",
                  (ep.container_id, ep.network_id))
        c.execute("DELETE FROM network_endpoints WHERE container_id=? AND network_id=?",
                  (ep.container_id, ep.network_id))
        ctx.db.add_event(c, "network", "disconnect", ep.network_id,
                         {"container": ep.container_id, "name": ep.network, "type": "bridge"})
        _mark_dirty(c)
    _apply_rules(ctx, dp)
    remaining = store.endpoints(ctx.db, container_id=ep.container_id)
    if ns is not None:
        _keep_default_route(ctx, dp, ns, remaining)
    _refresh_hosts(ctx, [e.network_id for e in remaining] + [ep.network_id])


def _keep_default_route(ctx: NetContext, dp: Dataplane, ns: Path, remaining: Sequence[Endpoint]) -> None:
    """After an interface went (and its routes with it): route through another network if none is left."""
    if not remaining or dp.has_default_route(ns):
        return
    internal = {n.id for n in store.list_networks(ctx.db) if n.internal}
    via = next((e for e in remaining if e.network_id not in internal), None)
    if via is not None:
        dp.set_default_route(ns, via.gateway)


def renamed(ctx: NetContext, container_id: str, new_name: str) -> None:
    """Record a container's new name so peers resolve it (call after ``rename``)."""
    with ctx.lock(NETWORK_LOCK):
        nets = [e.network_id for e in store.endpoints(ctx.db, container_id=container_id)]
        if not nets:
            return
        with ctx.db.tx() as c:
            c.execute("UPDATE network_endpoints SET container_name=? WHERE container_id=?",
                      (new_name, container_id))
        _refresh_hosts(ctx, nets)


# -- names -----------------------------------------------------------------------------

def hosts_entries(ctx: NetContext, network: str) -> list[tuple[str, tuple[str, ...]]]:
    """``(ip, names)`` of every container on ``network``: name, aliases, short id.

    Raises:
        NoSuchNetwork: unknown network.
    """
    net = store.get_network(ctx.db, network)
    return [(str(ep.ip), _peer_names(ep)) for ep in store.endpoints(ctx.db, network_id=net.id)]


def _peer_names(ep: Endpoint) -> tuple[str, ...]:
    return (ep.container_name, *ep.aliases, ep.container_id[:12])


def _hosts_entries_for(ctx: NetContext, container_id: str) -> list[tuple[str, Sequence[str]]]:
    """The managed block of one container: its own addresses, then its peers'.

    Like Docker, only user-defined networks resolve their members' names;
    on the default network a container knows only itself.
    """
    own = store.endpoints(ctx.db, container_id=container_id)
    entries: list[tuple[str, Sequence[str]]] = [
        (str(ep.ip), (ep.hostname, ep.container_name, *ep.aliases)) for ep in own]
    for ep in own:
        if ep.network == store.DEFAULT_NETWORK:
            continue
        for peer in store.endpoints(ctx.db, network_id=ep.network_id):
            if peer.container_id != container_id:
                entries.append((str(peer.ip), _peer_names(peer)))
    return entries


def _refresh_hosts(ctx: NetContext, network_ids: Iterable[str], skip: str | None = None) -> None:
    """Rewrite, in place, the hosts files of every container on these networks."""
    members: set[str] = set()
    for nid in set(network_ids):
        members.update(ep.container_id for ep in store.endpoints(ctx.db, network_id=nid))
    members.discard(skip or "")
    for cid in sorted(members):
        block = hostsmod.managed_block(_hosts_entries_for(ctx, cid))
        try:
            hostsmod.rewrite_block(ctx.paths.container(cid) / HOSTS_FILE, block)
        except OSError:
            continue        # a container being removed; its file goes with it


def refresh_hosts(ctx: NetContext, network: str) -> None:
    """Rewrite the hosts files of the running containers on ``network`` now."""
    net = store.get_network(ctx.db, network)
    with ctx.lock(NETWORK_LOCK):
        _refresh_hosts(ctx, [net.id])


# -- crash recovery --------------------------------------------------------------------

def _try_lock(ctx: NetContext, name: str) -> int | None:
    """Take ``name``'s lock file without waiting; None when someone holds it."""
    path = ctx.paths.locks / f"{name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def reconcile(ctx: NetContext, *, dataplane: Dataplane | None = None) -> list[str]:
    """Remove the network leftovers of containers that no longer run.

    Covers a portside killed half-way through ``run``, a monitor that died,
    a container removed while its network was up: endpoints, published
    ports, veths, namespace files and NAT rules of every container that is
    gone or not running/paused/restarting. A container whose lock someone
    holds is left alone (it is being started or stopped right now). Also
    re-applies the NAT table if a crash left it behind the database.

    Call it after the container states themselves are reconciled.

    Returns the ids of the containers cleaned up.
    """
    stale = stale_containers(ctx)
    dirty = ctx.db.get_setting(DIRTY) == "1"
    if not stale and not dirty:
        return []
    dp = _dp(ctx, dataplane)
    cleaned = []
    with ctx.lock(NETWORK_LOCK):
        for cid in stale:
            fd = _try_lock(ctx, cid)
            if fd is None:
                continue
            try:
                # Read again under the lock: it may have been started since the first look.
                row = ctx.db.one("SELECT status FROM containers WHERE id=?", (cid,))
                if row is not None and row["status"] in ALIVE_STATUSES:
                    continue
                _teardown_locked(ctx, cid, dp)
                cleaned.append(cid)
            finally:
                _unlock(fd)
        if ctx.db.get_setting(DIRTY) == "1":
            _apply_rules(ctx, dp)
    return cleaned


# -- system reset ------------------------------------------------------------------------

def reset(ctx: NetContext, *, dataplane: Dataplane | None = None) -> list[str]:
    """Remove every network trace of this root (``system reset``), after its containers went.

    Tears down what is left of any container (veths, namespaces, ports),
    deletes every network's bridge, the nftables table, and the shared
    mount of the namespace directory. Returns the names of the networks.

    Raises:
        NetworkError: the kernel refused to delete something.
    """
    dp = _dp(ctx, dataplane)
    with ctx.lock(NETWORK_LOCK):
        for cid in sorted(traced_containers(ctx)):
            _teardown_locked(ctx, cid, dp)
        nets = store.list_networks(ctx.db)
        for net in nets:
            dp.delete_link(net.bridge)
        dp.apply_nft(delete_script(nft_table(ctx.paths)))
        d = netns_dir(ctx.paths)
        if d.exists():
            from . import netlink
            netlink.release_netns_dir(d)
        with ctx.db.tx() as c:
            c.execute("DELETE FROM port_mappings")
            c.execute("DELETE FROM network_endpoints")
            c.execute("DELETE FROM networks")
            c.execute("DELETE FROM settings WHERE key LIKE 'network.%'")
    return [n.name for n in nets]
