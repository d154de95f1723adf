"""Network, endpoint and port rows in the state database.

Reads return :mod:`.model` records; writes take the caller's connection so
they join its transaction (with the IP allocation and the event).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Iterable, Mapping, Protocol

from ..errors import AmbiguousReference, InvalidArgument, NetworkError, NoSuchNetwork
from ..paths import Paths
from ..state import FileLock, Store
from . import hostwide, ipam
from .bridge import bridge_name
if TYPE_CHECKING:
    from .dataplane import Dataplane
from .model import (DEFAULT_NETWORK, DEFAULT_NETWORK_ALIASES, Endpoint, NetworkInfo,
                    PortMapping)


class NetContext(Protocol):
    """What the network library needs from its caller; ``engine.Engine`` is one."""

    paths: Paths
    db: Store

    def lock(self, name: str) -> FileLock:
        """A cross-process lock on ``name``."""


def _network(row: sqlite3.Row) -> NetworkInfo:
    return NetworkInfo(
        id=row["id"], name=row["name"], driver=row["driver"], bridge=row["bridge"],
        subnet=IPv4Network(row["subnet"]), gateway=IPv4Address(row["gateway"]),
        internal=bool(row["internal"]),
        created=datetime.fromtimestamp(row["created_ns"] / 1e9, tz=timezone.utc),
        labels=json.loads(row["labels_json"]))


def _endpoint(row: sqlite3.Row) -> Endpoint:
    subnet = IPv4Network(row["subnet"])
    return Endpoint(
        container_id=row["container_id"], container_name=row["container_name"],
        network=row["network"], network_id=row["network_id"], ip=IPv4Address(row["ip"]),
        prefixlen=subnet.prefixlen, gateway=IPv4Address(row["gateway"]), mac=row["mac"],
        ifname=row["ifname"], host_ifname=row["host_ifname"],
        aliases=tuple(json.loads(row["aliases_json"])), hostname=row["hostname"])


_ENDPOINT_SELECT = ("SELECT e.*, n.name AS network, n.subnet, n.gateway FROM network_endpoints e "
                    "JOIN networks n ON n.id = e.network_id ")


def canonical_name(name: str) -> str:
    """``bridge``/``default`` mean the default network."""
    return DEFAULT_NETWORK if name in DEFAULT_NETWORK_ALIASES else name


def ensure_default(ctx: NetContext) -> NetworkInfo:
    """The default network, created in the database on first use.

    Its subnet is the root's setting ``network.default_subnet`` if set,
    else ``$PORTSIDE_DEFAULT_SUBNET`` (then kept as that setting, so the
    variable only matters when the network is made), else the first /24 of
    10.89.0.0/16 (10.89.0.0/24 on a quiet host) that overlaps no route or
    address of this host (other roots' bridges among them), chosen under
    the host-wide lock. The bridge itself appears when a container first
    uses it; if another root's bridge took the subnet meanwhile, an
    auto-chosen subnet moves then (see ``attach``); a configured one does not.

    Raises:
        InvalidArgument: ``$PORTSIDE_DEFAULT_SUBNET`` is not a usable subnet.
        NetworkError: the configured subnet clashes, or the pool is full.
    """
    row = ctx.db.one("SELECT * FROM networks WHERE name=?", (DEFAULT_NETWORK,))
    if row is not None:
        return _network(row)
    configured = ctx.db.get_setting(ipam.SETTING_DEFAULT_SUBNET)
    source = f"setting {ipam.SETTING_DEFAULT_SUBNET}"
    from_env = not configured and bool(os.environ.get(ipam.ENV_DEFAULT_SUBNET, "").strip())
    if from_env:
        configured = os.environ[ipam.ENV_DEFAULT_SUBNET].strip()
        source = ipam.ENV_DEFAULT_SUBNET
        try:
            ipam.parse_subnet(configured)
        except InvalidArgument as err:
            raise InvalidArgument(f"{ipam.ENV_DEFAULT_SUBNET}: {err.message}", hint=err.hint) from err
    with hostwide.host_lock(hostwide.host_dir(ctx)):
        # The host's routes are read before the write transaction (a netlink
        # dump must not hold every writer of this root); the host lock keeps
        # them true until the network exists.
        host = host_taken(ctx, ctx.db.conn)
        with ctx.db.tx() as c:
            row = c.execute("SELECT * FROM networks WHERE name=?", (DEFAULT_NETWORK,)).fetchone()
            if row is not None:        # another process won the race
                return _network(row)
            taken = used_subnets(c) + host
            if configured:
                subnet = ipam.parse_subnet(configured)
                try:
                    ipam.check_overlap(subnet, taken)
                except InvalidArgument as err:
                    raise NetworkError(f"the default network's subnet ({source}): {err.message}",
                                       hint=f"set {ipam.ENV_DEFAULT_SUBNET} to a free subnet"
                                       if from_env else "change the setting to a free subnet") from err
                if from_env:
                    c.execute("INSERT INTO settings(key, value) VALUES (?, ?)",
                              (ipam.SETTING_DEFAULT_SUBNET, str(subnet)))
            else:
                subnet = ipam.pick_subnet(ipam.DEFAULT_POOL, [s for _o, s in taken])
            info = insert_network(c, ctx.paths, DEFAULT_NETWORK, subnet,
                                  ipam.parse_gateway(None, subnet), internal=False, labels={})
            ctx.db.add_event(c, "network", "create", info.id,
                             {"name": info.name, "type": info.driver})
    return info


def host_taken(ctx: NetContext, c: sqlite3.Connection) -> list[tuple[str, IPv4Network]]:
    """Subnets in use outside this root: the host's routes and addresses, bar our own bridges.

    Other roots' bridges are among them while they are up; call with the
    host-wide lock held so the answer stays true until a bridge comes up.
    """
    own_bridges = {r["bridge"] for r in c.execute("SELECT bridge FROM networks").fetchall()}
    return [(f"host interface {dev}", s) for dev, s in _dataplane(ctx).host_subnets(own_bridges)]


def _dataplane(ctx: NetContext) -> "Dataplane":
    dp = getattr(ctx, "net_dataplane", None)
    if dp is None:
        from .dataplane import LinuxDataplane
        dp = LinuxDataplane()
    return dp


def auto_subnet(db: Store | sqlite3.Connection, net: NetworkInfo) -> bool:
    """Whether portside chose the network's subnet (so it may move it while the bridge is down)."""
    ex = db.execute if isinstance(db, sqlite3.Connection) else db.conn.execute
    if net.is_default:
        return ex("SELECT 1 FROM settings WHERE key=?",
                  (ipam.SETTING_DEFAULT_SUBNET,)).fetchone() is None
    return ex("SELECT 1 FROM settings WHERE key=?", (AUTO_KEY + net.id,)).fetchone() is not None


AUTO_KEY = "network.auto_subnet."
"""Settings key prefix marking a user network whose subnet portside picked."""


def insert_network(c: sqlite3.Connection, paths: Paths, name: str, subnet: IPv4Network,
                   gateway: IPv4Address, *, internal: bool, labels: Mapping[str, str]) -> NetworkInfo:
    """Add a network row (inside the caller's transaction)."""
    import secrets
    nid = secrets.token_hex(32)
    bridge = bridge_name(nid, default=name == DEFAULT_NETWORK, paths=paths)
    now = time.time_ns()
    c.execute("INSERT INTO networks(id, name, driver, bridge, subnet, gateway, internal, "
              "labels_json, created_ns) VALUES (?,?,?,?,?,?,?,?,?)",
              (nid, name, "bridge", bridge, str(subnet), str(gateway), int(internal),
               json.dumps(dict(labels)), now))
    return NetworkInfo(nid, name, "bridge", bridge, subnet, gateway, internal,
                       datetime.fromtimestamp(now / 1e9, tz=timezone.utc), dict(labels))


def get_network(db: Store | sqlite3.Connection, ref: str) -> NetworkInfo:
    """A network by name, id or unique id prefix.

    Raises:
        NoSuchNetwork: nothing matches.
        AmbiguousReference: an id prefix matches several networks.
    """
    name = canonical_name(ref)
    ex = db.execute if isinstance(db, sqlite3.Connection) else db.conn.execute
    row = ex("SELECT * FROM networks WHERE name=? OR id=?", (name, ref)).fetchone()
    if row is not None:
        return _network(row)
    if len(ref) >= 3 and all(ch in "0123456789abcdef" for ch in ref):
        rows = ex("SELECT * FROM networks WHERE id LIKE ? ORDER BY name", (ref + "%",)).fetchall()
        if len(rows) == 1:
            return _network(rows[0])
        if len(rows) > 1:
            raise AmbiguousReference(f"network id prefix {ref!r} matches {len(rows)} networks",
                                     hint="give more of the id, or the name")
    raise NoSuchNetwork(ref)


def list_networks(db: Store) -> list[NetworkInfo]:
    """Every network, by name."""
    return [_network(r) for r in db.query("SELECT * FROM networks ORDER BY name")]


def endpoints(db: Store | sqlite3.Connection, *, container_id: str | None = None,
              network_id: str | None = None) -> list[Endpoint]:
    """Endpoint rows, optionally of one container and/or one network (by ifname order)."""
    where, args = [], []
    if container_id is not None:
        where.append("e.container_id=?")
        args.append(container_id)
    if network_id is not None:
        where.append("e.network_id=?")
        args.append(network_id)
    sql = _ENDPOINT_SELECT + (("WHERE " + " AND ".join(where)) if where else "") + \
        " ORDER BY e.container_id, e.ifname"
    ex = db.execute if isinstance(db, sqlite3.Connection) else db.conn.execute
    return [_endpoint(r) for r in ex(sql, tuple(args)).fetchall()]


def insert_endpoint(c: sqlite3.Connection, ep: Endpoint) -> None:
    c.execute("INSERT INTO network_endpoints(container_id, network_id, container_name, hostname, "
              "ip, mac, ifname, host_ifname, aliases_json, created_ns) VALUES (?,?,?,?,?,?,?,?,?,?)",
              (ep.container_id, ep.network_id, ep.container_name, ep.hostname, str(ep.ip), ep.mac,
               ep.ifname, ep.host_ifname, json.dumps(list(ep.aliases)), time.time_ns()))


def port_mappings(db: Store | sqlite3.Connection, container_id: str | None = None
                  ) -> list[tuple[str, str, PortMapping]]:
    """``(container_id, network_id, mapping)`` rows, optionally of one container."""
    sql = "SELECT * FROM port_mappings"
    args: tuple[str, ...] = ()
    if container_id is not None:
        sql += " WHERE container_id=?"
        args = (container_id,)
    sql += " ORDER BY protocol, host_port, host_ip"
    ex = db.execute if isinstance(db, sqlite3.Connection) else db.conn.execute
    return [(r["container_id"], r["network_id"],
             PortMapping(r["host_ip"], r["host_port"], r["container_port"], r["protocol"]))
            for r in ex(sql, args).fetchall()]


def insert_ports(c: sqlite3.Connection, container_id: str, network_id: str,
                 mappings: Iterable[PortMapping]) -> None:
    c.executemany("INSERT INTO port_mappings(container_id, network_id, protocol, host_ip, "
                  "host_port, container_port) VALUES (?,?,?,?,?,?)",
                  [(container_id, network_id, m.protocol, m.host_ip, m.host_port, m.container_port)
                   for m in mappings])


def used_subnets(db: Store | sqlite3.Connection, *, exclude_id: str | None = None
                 ) -> list[tuple[str, IPv4Network]]:
    """``(description, subnet)`` of every network, for overlap checks."""
    ex = db.execute if isinstance(db, sqlite3.Connection) else db.conn.execute
    return [(f"network {r['name']}", IPv4Network(r["subnet"]))
            for r in ex("SELECT name, subnet, id FROM networks").fetchall()
            if r["id"] != exclude_id]
