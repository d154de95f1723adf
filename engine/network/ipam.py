"""IP address management: subnets, gateways, and addresses handed out once.

Addresses live in the state database (``network_endpoints``); allocation
runs inside the caller's ``BEGIN IMMEDIATE`` transaction, so two processes
starting containers at the same moment are serialised by SQLite and the
``UNIQUE(network, ip)`` constraint is the last line of defence.
"""
from __future__ import annotations

import sqlite3
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError, ip_network
from typing import Iterable

from ..errors import InvalidArgument, NetworkError
from .model import NetworkInfo

DEFAULT_SUBNET = IPv4Network("10.89.0.0/24")
"""The default network's subnet: clear of docker0 (172.17.0.0/16) and podman (10.88.0.0/16)."""

DEFAULT_POOL = IPv4Network("10.89.0.0/16")
"""Where ``network create`` without ``--subnet`` takes a free /24 from."""

AUTO_PREFIX = 24

# Subnets other engines use by default: never picked automatically, so a
# host that also runs Docker or Podman keeps working. (An explicit --subnet
# may still use them if the host has no route there.)
_OTHER_ENGINES = (IPv4Network("172.17.0.0/16"), IPv4Network("10.88.0.0/16"))

SETTING_DEFAULT_SUBNET = "network.default_subnet"
ENV_DEFAULT_SUBNET = "PORTSIDE_DEFAULT_SUBNET"
"""Read when a root's default network is first made (like podman's ``default_subnet``)."""
SETTING_POOL = "network.pool"


def parse_subnet(text: str) -> IPv4Network:
    """Parse ``10.89.3.0/24``; refuse host bits, IPv6 and networks too small to use.

    Raises:
        InvalidArgument: the text is not a usable IPv4 subnet.
    """
    try:
        net = ip_network(text.strip(), strict=False)
    except ValueError as err:
        raise InvalidArgument(f"invalid subnet {text!r}",
                              hint="write it as ADDRESS/PREFIX, e.g. 10.89.5.0/24") from err
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(f"IPv6 subnet {text!r} is not supported yet",
                              hint="use an IPv4 subnet, e.g. 10.89.5.0/24")
    if str(net.network_address) != text.strip().split("/")[0] or "/" not in text:
        raise InvalidArgument(f"invalid subnet {text!r}: host bits are set or no prefix",
                              hint=f"did you mean {net}?")
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {net} is too small",
                              hint="use a prefix of /30 or shorter (at least 2 addresses)")
    if net.is_loopback or net.is_multicast or net.is_link_local or net.is_unspecified:
        raise InvalidArgument(f"subnet {net} is reserved (loopback, multicast or link-local)",
                              hint="use a private range such as 10.89.5.0/24")
    return net


def parse_gateway(text: str | None, subnet: IPv4Network) -> IPv4Address:
    """The gateway for ``subnet``: ``text`` if given, else the first host address.

    Raises:
        InvalidArgument: the gateway is malformed or not a host address of the subnet.
    """
    if text is None or text == "":
        return next(subnet.hosts())
    try:
        gw = IPv4Address(text.strip())
    except (AddressValueError, NetmaskValueError) as err:
        raise InvalidArgument(f"invalid gateway {text!r}",
                              hint="give an IPv4 address inside the subnet") from err
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"gateway {gw} is not a host address of subnet {subnet}",
                              hint=f"pick one between {subnet[1]} and {subnet[-2]}")
    return gw


def check_overlap(subnet: IPv4Network, taken: Iterable[tuple[str, IPv4Network]]) -> None:
    """Refuse ``subnet`` if it overlaps any ``(owner, subnet)`` in ``taken``.

    Raises:
        InvalidArgument: naming the network or host route it clashes with.
    """
    for owner, other in taken:
        if subnet.overlaps(other):
            raise InvalidArgument(f"subnet {subnet} overlaps {other} used by {owner}",
                                  hint="pick another --subnet")


def pick_subnet(pool: IPv4Network, taken: Iterable[IPv4Network],
                prefixlen: int = AUTO_PREFIX) -> IPv4Network:
    """The first ``/prefixlen`` of ``pool`` overlapping nothing in ``taken``.

    Raises:
        NetworkError: the pool is exhausted.
    """
    busy = list(taken) + list(_OTHER_ENGINES)
    for candidate in pool.subnets(new_prefix=max(prefixlen, pool.prefixlen)):
        if not any(candidate.overlaps(t) for t in busy):
            return candidate
    raise NetworkError(f"no free /{prefixlen} subnet left in {pool}",
                       hint="remove unused networks (portside network prune) or pass --subnet")


def parse_ip(text: str, network: NetworkInfo) -> IPv4Address:
    """Validate a requested ``--ip`` for a network.

    Raises:
        InvalidArgument: malformed, outside the subnet, or a reserved address.
    """
    subnet, gateway = network.subnet, network.gateway
    try:
        ip = IPv4Address(text.strip())
    except (AddressValueError, NetmaskValueError) as err:
        raise InvalidArgument(f"invalid IP address {text!r}", hint="give an IPv4 address") from err
    if ip not in subnet:
        raise InvalidArgument(f"{ip} is not in network {network.name}'s subnet {subnet}",
                              hint=f"pick one between {subnet[2]} and {subnet[-2]}")
    if ip in (subnet.network_address, subnet.broadcast_address, gateway):
        raise InvalidArgument(f"{ip} is reserved on network {network.name} "
                              "(network, broadcast or gateway address)",
                              hint="pick another --ip")
    return ip


def allocate(conn: sqlite3.Connection, network: NetworkInfo,
             requested: IPv4Address | None = None) -> IPv4Address:
    """Pick a free address of ``network``; call inside the transaction that records it.

    The lowest free host address is taken. Reusing a freed address is safe
    because the MAC is derived from the address (:func:`mac_for`), so no
    neighbour cache holds a stale entry for it; and the veth of its last
    holder, if the kernel has not destroyed it yet, is down, so the bridge
    no longer sends that MAC's frames there.

    Raises:
        InvalidArgument: ``requested`` is already in use (the message names the holder).
        NetworkError: the subnet is full.
    """
    rows = conn.execute("SELECT ip, container_name FROM network_endpoints WHERE network_id=?",
                        (network.id,)).fetchall()
    used = {IPv4Address(r[0]): r[1] for r in rows}
    if requested is not None:
        if requested in used:
            raise InvalidArgument(f"{requested} is already in use on network {network.name} "
                                  f"by container {used[requested]}", hint="pick another --ip")
        return requested
    for ip in network.subnet.hosts():
        if ip != network.gateway and ip not in used:
            return ip
    raise NetworkError(f"network {network.name} has no free address left in {network.subnet}",
                       hint="stop containers on it, or create a network with a larger --subnet")


def mac_for(ip: IPv4Address) -> str:
    """A locally administered MAC derived from the address (like Docker's 02:42:...)."""
    return "02:70:" + ":".join(f"{b:02x}" for b in ip.packed)
