"""The seam between network bookkeeping and the kernel.

:class:`Dataplane` is every side effect the network code has; the real one
(:class:`LinuxDataplane`) calls :mod:`.netlink` and ``nft``, and unit tests
pass a recording fake, so allocation, validation and cleanup logic is
tested without root (youki's syscall trait, runc's fake cgroup trees).
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Protocol, Sequence

from .model import PortMapping


class Dataplane(Protocol):
    """What the network library does to the host."""

    def ensure_bridge(self, name: str, address: IPv4Interface,
                      sysctls: Sequence[tuple[str, str]], owner: str = "") -> None:
        """Create (or keep) bridge ``name`` with ``address``, up, with ``sysctls`` set;
        a new one is labelled with ``owner``, its state root."""

    def bridge_addresses(self, name: str) -> list[IPv4Interface] | None:
        """IPv4 addresses of host interface ``name`` (None: no such interface)."""

    def owned_bridges(self) -> list[tuple[str, str, int]]:
        """``(bridge, state root, number of ports)`` of every portside bridge on the host."""

    def delete_link(self, name: str) -> None:
        """Delete a host interface; gone already is fine."""

    def bridge_ports(self, bridge: str) -> list[str]:
        """Interfaces attached to ``bridge`` (empty if it does not exist)."""

    def create_netns(self, path: Path) -> None:
        """Create a network namespace held by a bind mount at ``path`` (``lo`` up)."""

    def remove_netns(self, path: Path) -> None:
        """Unmount and remove a namespace file (and the directory's mount once empty); gone is fine."""

    def add_veth(self, host_if: str, netns: Path, ifname: str, mac: str,
                 address: IPv4Interface, gateway: IPv4Address | None, bridge: str) -> None:
        """Create a veth pair from ``bridge`` into ``netns``, address it, route it."""

    def remove_veth(self, host_if: str, netns: Path | None, ifname: str) -> None:
        """Delete a veth pair; gone already is fine."""

    def veth_down(self, host_if: str) -> None:
        """Take the host end of a veth pair down (out of its bridge's use); gone is fine."""

    def has_default_route(self, netns: Path) -> bool:
        """Whether the namespace already routes 0.0.0.0/0."""

    def set_default_route(self, netns: Path, gateway: IPv4Address) -> None:
        """Route 0.0.0.0/0 in the namespace through ``gateway`` (replacing any)."""

    def host_subnets(self, exclude: set[str]) -> list[tuple[str, IPv4Network]]:
        """The host's routed subnets, as ``(interface, subnet)``, skipping ``exclude``."""

    def apply_nft(self, script: str) -> None:
        """Run an ``nft -f`` script (one atomic transaction)."""

    def foreign_ports(self, own_table: str) -> list[tuple[str, PortMapping]]:
        """``(owner, mapping)`` published by other portside roots' nftables tables."""


class LinuxDataplane:
    """The real thing: pyroute2 (via :mod:`.netlink`) and the ``nft`` command."""

    def ensure_bridge(self, name: str, address: IPv4Interface,
                      sysctls: Sequence[tuple[str, str]], owner: str = "") -> None:
        from . import netlink
        netlink.ensure_bridge(name, address, owner=owner)
        for key, value in sysctls:
            netlink.set_sysctl(key, value)

    def bridge_addresses(self, name: str) -> list[IPv4Interface] | None:
        from . import netlink
        return netlink.bridge_addresses(name)

    def owned_bridges(self) -> list[tuple[str, str, int]]:
        from . import netlink
        return netlink.owned_bridges()

    def delete_link(self, name: str) -> None:
        from . import netlink
        netlink.delete_link(name)

    def bridge_ports(self, bridge: str) -> list[str]:
        from . import netlink
        return netlink.bridge_ports(bridge)

    def create_netns(self, path: Path) -> None:
        from . import netlink
        netlink.create_netns(path)

    def remove_netns(self, path: Path) -> None:
        from . import netlink
        netlink.remove_netns(path)
        try:
            empty = not any(path.parent.iterdir())
        except FileNotFoundError:
            return
        if empty:
            # Callers hold the network lock, so no namespace is being created
            # meanwhile; the shared mount comes back with the next one.
            netlink.release_netns_dir(path.parent)

    def add_veth(self, host_if: str, netns: Path, ifname: str, mac: str,
                 address: IPv4Interface, gateway: IPv4Address | None, bridge: str) -> None:
        from . import netlink
        netlink.add_veth(host_if, netns, ifname, mac, address, gateway, bridge)

    def remove_veth(self, host_if: str, netns: Path | None, ifname: str) -> None:
        from . import netlink
        netlink.remove_veth(host_if, netns, ifname)

    def veth_down(self, host_if: str) -> None:
        from . import netlink
        netlink.link_down(host_if)

    def has_default_route(self, netns: Path) -> bool:
        from . import netlink
        return netlink.has_default_route(netns)

    def set_default_route(self, netns: Path, gateway: IPv4Address) -> None:
        from . import netlink
        netlink.set_default_route(netns, gateway)

    def host_subnets(self, exclude: set[str]) -> list[tuple[str, IPv4Network]]:
        from . import netlink
        return netlink.host_subnets(exclude)

    def apply_nft(self, script: str) -> None:
        from .ports import run_nft
        run_nft(script)

    def foreign_ports(self, own_table: str) -> list[tuple[str, PortMapping]]:
        from .ports import foreign_published
        return foreign_published(own_table)
