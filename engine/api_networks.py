"""The network part of the Engine facade: create, list, inspect, remove, connect."""
from __future__ import annotations

import fnmatch
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from .base import EngineBase
from .errors import (AmbiguousReference, InUse, InvalidArgument, InvalidState, NameConflict,
                     NoSuchContainer)
from .network import hostwide, ipam, store
from .network.dataplane import Dataplane, LinuxDataplane
from .containers.model import StoredConfig
from .network.model import (DEFAULT_NETWORK, DEFAULT_NETWORK_ALIASES, Attachment, Endpoint,
                            NetworkInfo, PortMapping)

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_RESERVED = {"host", "none", "container"} | DEFAULT_NETWORK_ALIASES
_ACTIVE = ("running", "paused")


class NetworksAPI(EngineBase):
    """Network operations; part of :class:`engine.Engine`."""

    #: The kernel side; tests replace it with a recording fake.
    net_dataplane: Dataplane | None = None
    #: Where the host-wide network lock and subnet claims live (None: /run/lock/portside).
    net_host_dir: Path | None = None

    def _net_dp(self) -> Dataplane:
        return self.net_dataplane or LinuxDataplane()

    # -- reading ---------------------------------------------------------------------
    def networks(self, *, filters: Iterable[str] = ()) -> list[NetworkInfo]:
        """Networks, by name (``docker network ls``); the default one always exists.

        Args:
            filters: ``name=<glob or substring>``, ``id=<prefix>``, ``label=<key>[=<value>]``,
                ``driver=bridge``, ``dangling=true|false`` (no container uses it, running or not).

        Raises:
            InvalidArgument: an unknown or malformed filter.
        """
        store.ensure_default(self)
        result = store.list_networks(self.db)
        for f in filters:
            key, sep, value = f.partition("=")
            if not sep:
                raise InvalidArgument(f"bad filter {f!r}", hint="filters look like key=value")
            result = self._filter_networks(result, key, value)
        return result

    def network(self, ref: str) -> NetworkInfo:
        """One network by name, id or id prefix (``bridge`` means the default network).

        Raises:
            NoSuchNetwork: nothing matches.
            AmbiguousReference: an id prefix matches several networks.
        """
        if store.canonical_name(ref) == DEFAULT_NETWORK:
            return store.ensure_default(self)
        return store.get_network(self.db, ref)

    def network_endpoints(self, ref: str) -> list[Endpoint]:
        """The running containers attached to a network.

        Raises:
            NoSuchNetwork: nothing matches.
        """
        return store.endpoints(self.db, network_id=self.network(ref).id)

    def network_inspect(self, ref: str) -> dict[str, Any]:
        """Docker-shaped ``network inspect`` JSON for one network.

        Raises:
            NoSuchNetwork: nothing matches.
        """
        net = self.network(ref)
        containers = {
            ep.container_id: {
                "Name": ep.container_name,
                "EndpointID": _endpoint_id(ep),
                "MacAddress": ep.mac,
                "IPv4Address": str(ep.address),
                "IPv6Address": "",
                "Aliases": list(ep.aliases),
            } for ep in store.endpoints(self.db, network_id=net.id)}
        return {
            "Name": net.name,
            "Id": net.id,
            "Created": net.created.isoformat(),
            "Scope": "local",
            "Driver": net.driver,
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": str(net.subnet), "Gateway": str(net.gateway)}]},
            "Internal": net.internal,
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers,
            "Options": {"com.docker.network.bridge.name": net.bridge},
            "Labels": dict(net.labels),
        }

    def container_ports(self, ref: str) -> list[PortMapping]:
        """The published ports of a running container (``docker port``).

        Raises:
            NoSuchContainer: nothing matches.
        """
        cid, _name, _status = self._net_container(ref)
        return [m for _c, _n, m in store.port_mappings(self.db, cid)]

    # -- changing -----------------------------------------------------------------------
    def network_create(self, name: str, *, subnet: str | None = None, gateway: str | None = None,
                       internal: bool = False, labels: Mapping[str, str] | None = None) -> NetworkInfo:
        """Create a bridge network (``docker network create``).

        Nothing is made in the kernel yet: the bridge appears when the first
        container joins. Without ``subnet`` a free /24 of the pool (setting
        ``network.pool``, default 10.89.0.0/16) is taken: free of this root's
        networks and of the host's routes and addresses (other roots' bridges),
        chosen under the host-wide lock.

        Raises:
            InvalidArgument: bad name, subnet or gateway, or the subnet overlaps
                another network or a route of this host.
            NameConflict: a network has that name.
        """
        if not _NAME_RE.match(name) or len(name) > 64:
            raise InvalidArgument(f"invalid network name {name!r}",
                                  hint="use letters, digits, '_', '.', '-', starting with a letter or digit")
        if name in _RESERVED:
            raise InvalidArgument(f"{name!r} is a predefined network name",
                                  hint="choose another name")
        if gateway and not subnet:
            raise InvalidArgument("--gateway needs --subnet")
        net = ipam.parse_subnet(subnet) if subnet else None
        gw = ipam.parse_gateway(gateway, net) if net is not None else None
        store.ensure_default(self)
        with self.lock("network"), hostwide.host_lock(hostwide.host_dir(self)):
            with self.db.tx() as c:
                if c.execute("SELECT 1 FROM networks WHERE name=?", (name,)).fetchone():
                    raise NameConflict(f"network {name} already exists",
                                       hint="choose another name, or: portside network rm " + name)
                taken = store.used_subnets(c) + store.host_taken(self, c)
                if net is None:
                    pool = ipam.parse_subnet(self.db.get_setting(ipam.SETTING_POOL)
                                             or str(ipam.DEFAULT_POOL))
                    net = ipam.pick_subnet(pool, [s for _o, s in taken])
                    gw = ipam.parse_gateway(None, net)
                else:
                    ipam.check_overlap(net, taken)
                assert gw is not None
                info = store.insert_network(c, self.paths, name, net, gw, internal=internal,
                                            labels=dict(labels or {}))
                self.db.add_event(c, "network", "create", info.id,
                                  {"name": info.name, "type": info.driver})
                if subnet is None:
                    c.execute("INSERT INTO settings(key, value) VALUES (?, '1')",
                              (store.AUTO_KEY + info.id,))
        return info

    def network_rm(self, ref: str) -> str:
        """Remove a network; returns its name.

        Raises:
            NoSuchNetwork: nothing matches.
            InvalidArgument: it is the default network.
            InUse: containers are attached to it (the message names them).
        """
        net = self.network(ref)
        if net.is_default:
            raise InvalidArgument(f"{net.name} is the default network and cannot be removed")
        with self.lock("network"):
            self._remove_network(net)
        return net.name

    def network_prune(self) -> list[str]:
        """Remove every user-defined network no container uses, running or stopped.

        Returns the names removed.
        """
        removed = []
        with self.lock("network"):
            for net in store.list_networks(self.db):
                if net.is_default or self._network_users(net):
                    continue
                self._remove_network(net)
                removed.append(net.name)
        return removed

    def _network_users(self, net: NetworkInfo) -> list[str]:
        """Names of the containers on ``net``: attached now, or joining it at their next start."""
        users = {e.container_name for e in store.endpoints(self.db, network_id=net.id)}
        for row in self.db.query("SELECT name, config_json FROM containers"):
            try:
                atts = StoredConfig.from_json(row["config_json"]).attachments()
            except (ValueError, KeyError, TypeError):
                continue            # not a config this version can read; it cannot start either
            if any(store.canonical_name(a.network) == net.name for a in atts):
                users.add(row["name"])
        return sorted(users)

    def _remove_network(self, net: NetworkInfo) -> None:
        users = self._network_users(net)
        if users:
            raise InUse(f"network {net.name} is used by container{'s' if len(users) > 1 else ''} "
                        f"{', '.join(users)}",
                        hint=f"remove them, or: portside network disconnect {net.name} CONTAINER")
        self._net_dp().delete_link(net.bridge)
        try:
            with self.db.tx() as c:
                c.execute("DELETE FROM networks WHERE id=?", (net.id,))
                c.execute("DELETE FROM settings WHERE key=?", (store.AUTO_KEY + net.id,))
                self.db.add_event(c, "network", "destroy", net.id,
                                  {"name": net.name, "type": net.driver})
        except sqlite3.IntegrityError as err:      # a container joined meanwhile
            raise InUse(f"network {net.name} is in use", hint="retry once it is free") from err

    def network_connect(self, network: str, container: str, *, ip: str | None = None,
                        aliases: Iterable[str] = ()) -> Endpoint | None:
        """Connect a container to one more network (``docker network connect``).

        The attachment is kept in the container's config, so every later
        start joins the network again. A running (or paused) container joins
        now; a created or exited one at its next start.

        Returns:
            The new endpoint, or None when the container is not running.

        Raises:
            NoSuchNetwork / NoSuchContainer: nothing matches.
            InvalidState: the container uses ``--network none|host``, or is on
                the network already.
            InvalidArgument: bad ``ip`` or alias.
        """
        cid, name, _status = self._net_container(container)
        # The network lock too (after the container's, the order start uses):
        # a `network rm` must not remove the network between the check and
        # the stored attachment.
        with self.lock(cid), self.lock("network"):
            net = self.network(network)
            cfg, status = self._net_config(cid)
            mode = cfg.spec.network or "bridge"
            if mode in ("none", "host") or mode.startswith("container:"):
                raise InvalidState(f"container {name} uses --network {mode}",
                                   hint="only containers on bridge networks can be connected")
            atts = cfg.attachments()
            if any(store.canonical_name(a.network) == net.name for a in atts) or \
                    any(e.network_id == net.id for e in store.endpoints(self.db, container_id=cid)):
                raise InvalidState(f"container {name} is already connected to network {net.name}")
            from .network import attach
            wanted = attach.check_attachment(self, Attachment(net.name, tuple(aliases), ip or ""))
            ep = None
            if status in _ACTIVE:
                ep = attach.connect(self, cid, name, net.name, ip=ip, aliases=wanted.aliases,
                                    dataplane=self.net_dataplane)
            self._net_store_attachments(cid, atts + (wanted,))
            return ep

    def network_disconnect(self, network: str, container: str) -> None:
        """Disconnect a container from a network (``docker network disconnect``).

        It leaves the network now if it runs, and no later start joins it again.

        Raises:
            NoSuchNetwork / NoSuchContainer: nothing matches.
            InvalidState: the container is not connected to it.
        """
        net = self.network(network)
        cid, name, _status = self._net_container(container)
        with self.lock(cid):
            cfg, _status = self._net_config(cid)
            atts = cfg.attachments()
            kept = tuple(a for a in atts if store.canonical_name(a.network) != net.name)
            attached = any(e.network_id == net.id for e in store.endpoints(self.db, container_id=cid))
            if len(kept) == len(atts) and not attached:
                raise InvalidState(f"container {name} is not connected to network {net.name}")
            if attached:
                from .network import attach
                attach.disconnect(self, cid, name, net.name, dataplane=self.net_dataplane)
            if len(kept) != len(atts):
                self._net_store_attachments(cid, kept)

    # -- helpers ------------------------------------------------------------------------
    def _net_container(self, ref: str) -> tuple[str, str, str]:
        """``(id, name, status)`` of a container by id, name or unique id prefix."""
        n = ref[1:] if ref.startswith("/") else ref
        row = self.db.one("SELECT id, name, status FROM containers WHERE id=? OR name=?", (n, n))
        if row is None and n and all(ch in "0123456789abcdef" for ch in n):
            rows = self.db.query("SELECT id, name, status FROM containers WHERE id LIKE ?",
                                 (n + "%",))
            if len(rows) > 1:
                raise AmbiguousReference(f"container id prefix {ref!r} matches {len(rows)} containers",
                                         hint="give more of the id, or the name")
            row = rows[0] if rows else None
        if row is None:
            raise NoSuchContainer(ref)
        return row["id"], row["name"], row["status"]

    def _net_config(self, cid: str) -> tuple[StoredConfig, str]:
        """A container's stored config and status (call with its lock held)."""
        row = self.db.one("SELECT status, config_json FROM containers WHERE id=?", (cid,))
        if row is None:
            raise NoSuchContainer(cid)
        return StoredConfig.from_json(row["config_json"]), row["status"]

    def _net_store_attachments(self, cid: str, atts: tuple[Attachment, ...]) -> None:
        """Keep the networks the container joins on start (call with its lock held)."""
        with self.db.tx() as c:
            row = c.execute("SELECT config_json FROM containers WHERE id=?", (cid,)).fetchone()
            if row is None:
                raise NoSuchContainer(cid)
            cfg = replace(StoredConfig.from_json(row["config_json"]), networks=atts)
            c.execute("UPDATE containers SET config_json=? WHERE id=?", (cfg.to_json(), cid))

    def _filter_networks(self, nets: list[NetworkInfo], key: str, value: str) -> list[NetworkInfo]:
        if key == "name":
            return [n for n in nets if fnmatch.fnmatchcase(n.name, value) or value in n.name]
        if key == "id":
            return [n for n in nets if n.id.startswith(value)]
        if key == "driver":
            return [n for n in nets if n.driver == value]
        if key == "label":
            k, sep, v = value.partition("=")
            return [n for n in nets if k in n.labels and (not sep or n.labels[k] == v)]
        if key == "dangling":
            if value not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"bad dangling filter {value!r}", hint="use dangling=true or false")
            want = value in ("true", "1")
            # Like Docker, the predefined network never counts as dangling.
            return [n for n in nets if (not n.is_default and not self._network_users(n)) == want]
        raise InvalidArgument(f"unknown network filter {key!r}",
                              hint="use name=, id=, label=, driver= or dangling=")


def _endpoint_id(ep: Endpoint) -> str:
    import hashlib
    return hashlib.sha256(f"{ep.container_id}/{ep.network_id}".encode()).hexdigest()
