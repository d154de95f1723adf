"""Host-side names and the life of a network's bridge.

A network's bridge comes up with its first container (with the gateway
address and the sysctls the NAT rules rely on) and stays up, as docker0
does, until ``network rm`` or ``system reset``; its alias names its state
root, so a bridge whose root was deleted by hand is recognised and removed
when another bridge comes up. Names are derived from the network id, so no
state is needed to find them again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..paths import DEFAULT_ROOT, Paths

DEFAULT_BRIDGE = "portside0"
"""The default network's bridge on the default root (like docker0, podman0)."""

IFNAMSIZ = 15   # usable characters in a Linux interface name


def bridge_name(network_id: str, *, default: bool, paths: Paths) -> str:
    """The bridge of a network: ``portside0`` for the default network, else ``ps-<id12>``.

    A root other than /var/lib/portside (tests, a second install) gets
    id-derived names for every network, so two roots never share a bridge.
    """
    if default and paths.root == DEFAULT_ROOT:
        return DEFAULT_BRIDGE
    return ("ps-" + network_id)[:IFNAMSIZ]


def veth_name(container_id: str, network_id: str) -> str:
    """The host end of a container's veth on a network: ``vps`` + 12 hex digits.

    Derived from both ids so connect/disconnect never collide and the name
    can be recomputed without the database.
    """
    return "vps" + hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()[:12]



def nft_table(paths: Paths) -> str:
    """The nftables table (family ``ip``) holding this root's NAT and isolation rules."""
    if paths.root == DEFAULT_ROOT:
        return "portside"
    return "portside_" + hashlib.sha256(str(paths.root).encode()).hexdigest()[:10]


def netns_dir(paths: Paths) -> Path:
    """Where the named network namespace files live: ``<run>/netns``."""
    return paths.run / "netns"


def netns_path(paths: Paths, container_id: str) -> Path:
    """The bind-mounted namespace file of one container."""
    return netns_dir(paths) / container_id


def bridge_sysctls(bridge: str, *, internal: bool) -> list[tuple[str, str]]:
    """Sysctls a bridge needs.

    ``route_localnet`` lets 127.0.0.1-addressed traffic (DNATed in the
    output hook) be routed out of the bridge and its replies back in;
    ``ip_forward`` is what lets non-internal networks reach out at all.
    """
    out = [(f"net.ipv4.conf.{bridge}.route_localnet", "1")]
    if not internal:
        out.append(("net.ipv4.ip_forward", "1"))
    return out
