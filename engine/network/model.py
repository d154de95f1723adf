"""Frozen records the network library hands out (to the facade and the lifecycle).

They follow ``engine/records.py``: typed, frozen, no sqlite rows or netlink
messages. They live here rather than in ``records.py`` only so the network
library can grow without editing a file every area shares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Mapping

DEFAULT_NETWORK = "portside"
"""Name of the bridge network ``run`` uses unless ``--network`` says otherwise."""

DEFAULT_NETWORK_ALIASES = frozenset({"bridge", "default", DEFAULT_NETWORK})
"""Names a user may give for the default network (Docker calls it ``bridge``)."""


@dataclass(frozen=True)
class NetworkInfo:
    """A bridge network (``docker network ls``/``inspect``)."""

    id: str                      # 64 hex digits
    name: str
    driver: str                  # always "bridge" for now
    bridge: str                  # host interface name
    subnet: IPv4Network
    gateway: IPv4Address
    internal: bool
    created: datetime
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_NETWORK

    @property
    def gateway_interface(self) -> IPv4Interface:
        """The gateway with the subnet's prefix, as set on the bridge."""
        return IPv4Interface(f"{self.gateway}/{self.subnet.prefixlen}")


@dataclass(frozen=True)
class Attachment:
    """A container's standing wish to be on one network, kept in its config.

    ``run --network``/``--network-alias``/``--ip`` make the first one;
    ``network connect`` adds one and ``network disconnect`` drops one, for a
    running or a stopped container alike, and every start joins them all
    (the first is ``eth0`` and carries the published ports).
    """

    network: str                 # the name as given ("bridge"/"default" mean the default network)
    aliases: tuple[str, ...] = ()
    ip: str = ""                 # "" = any free address

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network, "aliases": list(self.aliases), "ip": self.ip}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Attachment":
        return cls(str(d["network"]), tuple(d.get("aliases") or ()), str(d.get("ip") or ""))


@dataclass(frozen=True)
class PortMapping:
    """One published port: host ``host_ip:host_port`` -> container ``container_port``."""

    host_ip: str                 # "" means every address of the host (0.0.0.0)
    host_port: int
    container_port: int
    protocol: str = "tcp"        # tcp | udp

    def __str__(self) -> str:
        return (f"{self.host_ip or '0.0.0.0'}:{self.host_port}"
                f"->{self.container_port}/{self.protocol}")


@dataclass(frozen=True)
class Endpoint:
    """A container's attachment to one network (one veth pair while it runs)."""

    container_id: str
    container_name: str
    network: str                 # network name
    network_id: str
    ip: IPv4Address
    prefixlen: int
    gateway: IPv4Address
    mac: str
    ifname: str                  # inside the container: eth0, eth1, ...
    host_ifname: str             # the host end of the veth pair
    aliases: tuple[str, ...] = ()
    hostname: str = ""

    @property
    def address(self) -> IPv4Interface:
        return IPv4Interface(f"{self.ip}/{self.prefixlen}")


@dataclass(frozen=True)
class NetworkSetup:
    """What :func:`engine.network.prepare` made, and what the runtime config needs.

    ``namespace`` is the exact entry for ``config.json``'s
    ``linux.namespaces``: ``{"type": "network", "path": ...}`` for bridge
    networks, ``{"type": "network"}`` for ``--network none`` (the runtime
    makes an empty namespace with only ``lo``) and ``None`` for
    ``--network host`` (leave the network namespace out: share the host's).
    """

    mode: str                              # "bridge" | "none" | "host"
    namespace: Mapping[str, str] | None
    netns_path: Path | None                # the bind-mounted namespace file (bridge only)
    endpoints: tuple[Endpoint, ...]
    ports: tuple[PortMapping, ...]
    hostname: str
    hosts: str                             # /etc/hosts content
    resolv_conf: str                       # /etc/resolv.conf content
    hosts_path: Path | None                # where prepare() wrote them (None: no container dir)
    resolv_conf_path: Path | None
    warnings: tuple[str, ...] = ()

    def config_namespaces(self) -> list[dict[str, Any]]:
        """The ``linux.namespaces`` entries to add (empty for host networking)."""
        return [dict(self.namespace)] if self.namespace is not None else []
