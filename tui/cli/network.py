"""Network verbs: network create|ls|inspect|rm|prune|connect|disconnect, and port."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from engine import EngineError, InvalidArgument

from .common import confirm, group_help
from .output import print_json, table

if TYPE_CHECKING:
    from engine import Engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    network = sub.add_parser(
        "network", help="Manage networks",
        epilog="Containers join the default bridge network (portside; 'bridge' names it too) "
               "unless run with --network. Its subnet is a free /24 of 10.89.0.0/16, or "
               "$PORTSIDE_DEFAULT_SUBNET (e.g. 10.200.0.0/24) if set when the root's default "
               "network is first made; later changes of the variable do not move it.")
    nsub = network.add_subparsers(dest="network_verb", metavar="COMMAND", parser_class=type(network))

    p = nsub.add_parser("create", help="Create a bridge network")
    p.add_argument("name")
    p.add_argument("--subnet", help="IPv4 subnet in CIDR form, e.g. 10.89.5.0/24 (default: a free /24)")
    p.add_argument("--gateway", help="gateway address inside the subnet (default: its first address)")
    p.add_argument("--internal", action="store_true", help="no traffic in or out of the network")
    p.add_argument("-d", "--driver", default="bridge", choices=["bridge"], help="only bridge for now")
    p.add_argument("-l", "--label", action="append", default=[], help="KEY=VALUE metadata")
    p.set_defaults(func=cmd_create)

    p = nsub.add_parser("ls", aliases=["list"], help="List networks")
    p.add_argument("-q", "--quiet", action="store_true", help="only show network ids")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="name=, id=, label=, driver=, dangling=")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("--format", help="'json' for one JSON object per line")
    p.set_defaults(func=cmd_ls)

    p = nsub.add_parser("inspect", help="Show details of networks as JSON")
    p.add_argument("networks", nargs="+")
    p.set_defaults(func=cmd_inspect)

    p = nsub.add_parser("rm", aliases=["remove"], help="Remove one or more networks")
    p.add_argument("networks", nargs="+")
    p.set_defaults(func=cmd_rm)

    p = nsub.add_parser("prune", help="Remove networks no container uses")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_prune)

    p = nsub.add_parser("connect",
                        help="Connect a container to a network (a stopped one joins at its next start)")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("--ip", help="IPv4 address on that network")
    p.add_argument("--alias", action="append", default=[], help="another name for the container there")
    p.set_defaults(func=cmd_connect)

    p = nsub.add_parser("disconnect", help="Disconnect a container from a network (for good)")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("-f", "--force", action="store_true", help="accepted for Docker compatibility")
    p.set_defaults(func=cmd_disconnect)
    network.set_defaults(func=group_help(network))

    if "port" not in sub.choices:     # the container verbs may own it
        p = sub.add_parser("port", help="List a container's published ports")
        p.add_argument("container")
        p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
        p.set_defaults(func=cmd_port)


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid label {item!r}", hint="use KEY=VALUE")
        out[k] = v
    return out


# -- handlers -----------------------------------------------------------------------

def cmd_create(engine: Engine, a: argparse.Namespace) -> int:
    info = engine.network_create(a.name, subnet=a.subnet, gateway=a.gateway,
                                 internal=a.internal, labels=_labels(a.label))
    print(info.id)
    return 0


def cmd_ls(engine: Engine, a: argparse.Namespace) -> int:
    nets = engine.networks(filters=a.filter)
    if a.quiet:
        for n in nets:
            print(n.id if a.no_trunc else n.short_id)
        return 0
    if a.format == "json":
        for n in nets:
            print(json.dumps({"ID": n.id if a.no_trunc else n.short_id, "Name": n.name,
                              "Driver": n.driver, "Scope": "local", "Subnet": str(n.subnet),
                              "Gateway": str(n.gateway), "Internal": n.internal,
                              "Labels": dict(n.labels)}))
        return 0
    table(["NETWORK ID", "NAME", "DRIVER", "SUBNET", "INTERNAL"],
          [[n.id if a.no_trunc else n.short_id, n.name, n.driver, str(n.subnet),
            "yes" if n.internal else ""] for n in nets])
    return 0


def cmd_inspect(engine: Engine, a: argparse.Namespace) -> int:
    print_json([engine.network_inspect(n) for n in a.networks])
    return 0


def cmd_rm(engine: Engine, a: argparse.Namespace) -> int:
    import sys
    code = 0
    for ref in a.networks:
        try:
            print(engine.network_rm(ref))
        except EngineError as err:      # go on with the rest, like Docker
            sys.stderr.write(f"Error: {err}\n")
            code = err.exit_code
    return code


def cmd_prune(engine: Engine, a: argparse.Namespace) -> int:
    if not a.force and not confirm("WARNING! This will remove all networks not used by at least "
                                   "one container.\nAre you sure you want to continue? [y/N] "):
        return 0
    removed = engine.network_prune()
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0


def cmd_connect(engine: Engine, a: argparse.Namespace) -> int:
    engine.network_connect(a.network, a.container, ip=a.ip, aliases=a.alias)
    return 0


def cmd_disconnect(engine: Engine, a: argparse.Namespace) -> int:
    engine.network_disconnect(a.network, a.container)
    return 0


def cmd_port(engine: Engine, a: argparse.Namespace) -> int:
    mappings = engine.container_ports(a.container)
    if a.private_port:
        port, _, proto = a.private_port.partition("/")
        proto = proto or "tcp"
        if not port.isdigit():
            raise InvalidArgument(f"invalid port {a.private_port!r}", hint="e.g. 80 or 53/udp")
        hits = [m for m in mappings if m.container_port == int(port) and m.protocol == proto]
        if not hits:
            raise InvalidArgument(f"no public port '{port}/{proto}' published for {a.container}")
        for m in hits:
            print(f"{m.host_ip or '0.0.0.0'}:{m.host_port}")
        return 0
    for m in sorted(mappings, key=lambda m: (m.container_port, m.protocol, m.host_port)):
        print(f"{m.container_port}/{m.protocol} -> {m.host_ip or '0.0.0.0'}:{m.host_port}")
    return 0
