"""Test doubles for the network library: a recording dataplane, container rows."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Sequence

from engine import Engine
from engine.containers.model import RunState, StoredConfig
from engine.network.model import PortMapping
from engine.records import ContainerSpec


class FakeDataplane:
    """Does to a dict what the real one does to the kernel; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.bridges: dict[str, IPv4Interface] = {}
        self.owners: dict[str, str] = {}                      # bridge -> its state root
        self.veths: dict[str, tuple[str, Path, str]] = {}     # host_if -> (bridge, netns, ifname)
        self.default_routes: set[Path] = set()
        self.route_via: dict[Path, IPv4Address] = {}         # netns -> its default gateway
        self._route_dev: dict[Path, str] = {}                # netns -> host end of the route's veth
        self.sysctls: dict[str, str] = {}
        self.nft: list[str] = []
        self.routes: list[tuple[str, IPv4Network]] = []
        self.fail_on: str | None = None
        self.foreign: list[tuple[str, PortMapping]] = []     # other roots' published ports

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.fail_on == name:
            raise OSError(f"injected failure in {name}")

    def ensure_bridge(self, name: str, address: IPv4Interface,
                      sysctls: Sequence[tuple[str, str]], owner: str = "") -> None:
        self._call("ensure_bridge", name, address)
        if name not in self.bridges:
            self.owners[name] = owner
        self.bridges[name] = address
        self.sysctls.update(sysctls)

    def bridge_addresses(self, name: str) -> list[IPv4Interface] | None:
        return [self.bridges[name]] if name in self.bridges else None

    def owned_bridges(self) -> list[tuple[str, str, int]]:
        return [(b, self.owners[b], len(self.bridge_ports(b))) for b in self.bridges
                if self.owners.get(b)]

    def delete_link(self, name: str) -> None:
        self._call("delete_link", name)
        self.bridges.pop(name, None)
        self.owners.pop(name, None)
        self.veths.pop(name, None)

    def bridge_ports(self, bridge: str) -> list[str]:
        return [h for h, (b, _n, _i) in self.veths.items() if b == bridge]

    def create_netns(self, path: Path) -> None:
        self._call("create_netns", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=False)

    def remove_netns(self, path: Path) -> None:
        self._call("remove_netns", path)
        path.unlink(missing_ok=True)
        self.default_routes.discard(path)
        self.route_via.pop(path, None)
        # Its last reference gone, the kernel destroys the namespace and
        # every veth pair with an end inside it (later; here at once).
        for host_if in [h for h, (_b, ns, _i) in self.veths.items() if ns == path]:
            del self.veths[host_if]

    def add_veth(self, host_if: str, netns: Path, ifname: str, mac: str,
                 address: IPv4Interface, gateway: IPv4Address | None, bridge: str) -> None:
        self._call("add_veth", host_if, netns, ifname, mac, address, gateway, bridge)
        assert bridge in self.bridges, "veth added before its bridge"
        assert netns.exists(), "veth added before its namespace"
        self.veths[host_if] = (bridge, netns, ifname)
        if gateway is not None:
            assert netns not in self.default_routes, "a second default route (the kernel says EEXIST)"
            self.default_routes.add(netns)
            self.route_via[netns] = gateway
            self._route_dev[netns] = host_if

    def veth_down(self, host_if: str) -> None:
        self._call("veth_down", host_if)

    def remove_veth(self, host_if: str, netns: Path | None, ifname: str) -> None:
        self._call("remove_veth", host_if)
        gone = self.veths.pop(host_if, None)
        if gone is not None and self._route_dev.get(gone[1]) == host_if:
            # The kernel drops the routes of a deleted interface.
            self.default_routes.discard(gone[1])
            self.route_via.pop(gone[1], None)
            self._route_dev.pop(gone[1], None)

    def has_default_route(self, netns: Path) -> bool:
        return netns in self.default_routes

    def set_default_route(self, netns: Path, gateway: IPv4Address) -> None:
        self._call("set_default_route", netns, gateway)
        dev = next((h for h, (b, n, _i) in self.veths.items() if n == netns
                    and gateway in self.bridges[b].network), None)
        assert dev is not None, "no interface of the namespace reaches the gateway (ENETUNREACH)"
        self.default_routes.add(netns)
        self.route_via[netns] = gateway
        self._route_dev[netns] = dev

    def host_subnets(self, exclude: set[str]) -> list[tuple[str, IPv4Network]]:
        # Bridges that are up have their subnet routed, as in the kernel.
        up = [(name, addr.network) for name, addr in self.bridges.items()]
        return [r for r in self.routes + up if r[0] not in exclude]

    def apply_nft(self, script: str) -> None:
        self._call("apply_nft", script)
        self.nft.append(script)

    def foreign_ports(self, own_table: str) -> list[tuple[str, PortMapping]]:
        return list(self.foreign)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def add_container(engine: Engine, cid: str, name: str, status: str = "running",
                  network: str = "bridge") -> Path:
    """A containers row (as the lifecycle would write it) and its directory."""
    cfg = StoredConfig(ContainerSpec(image="busybox", network=network), "busybox",
                       "sha256:" + "0" * 64, ("sleep", "300"), (), "/", "", cid[:12], "")
    with engine.db.tx() as c:
        c.execute("INSERT INTO containers(id, name, image_id, status, config_json, state_json, "
                  "created_ns) VALUES (?,?,?,?,?,?,?)",
                  (cid, name, "sha256:" + "0" * 64, status, cfg.to_json(),
                   RunState(status=status).to_json(), 0))
    d = engine.paths.container(cid)
    d.mkdir(parents=True, exist_ok=True)
    return d
