"""System verbs: ``info``, ``system info`` and ``system reset``."""
from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING

from .common import confirm, group_help
from .output import print_json

if TYPE_CHECKING:
    from engine import Engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_info(sub.add_parser("info", help="Show system-wide information"))
    system = sub.add_parser("system", help="Manage portside")
    ssub = system.add_subparsers(dest="system_verb", metavar="COMMAND", parser_class=type(system))
    _add_info(ssub.add_parser("info", help="Show system-wide information"))
    p = ssub.add_parser("reset", help="Remove every container, image, volume and network of this root")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_reset)
    system.set_defaults(func=group_help(system))


def cmd_reset(engine: Engine, a: argparse.Namespace) -> int:
    if not a.force and not confirm(
            f"WARNING! This will remove everything portside made under {engine.paths.root}:\n"
            " - all containers (running ones are killed)\n - all images\n - all volumes\n"
            " - all networks (bridges, NAT rules, namespaces)\n"
            "Are you sure you want to continue? [y/N] "):
        return 0                 # an explicit no, as the prunes answer it
    report = engine.system_reset()
    print(f"Removed {len(report.containers)} containers, {report.images} images, "
          f"{report.volumes} volumes, {len(report.networks)} networks")
    return 0


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", help="'json' for the whole record as JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(engine: Engine, a: argparse.Namespace) -> int:
    info = engine.info()
    if a.format == "json":
        print_json(asdict(info))
        return 0
    print(f"Containers: {info.containers}")
    print(f" Running: {info.running}")
    print(f" Paused: {info.paused}")
    print(f" Stopped: {info.stopped}")
    print(f"Images: {info.images}")
    print(f"Server Version: portside {info.version}")
    print(f"Storage Driver: {info.storage_driver}")
    print("Logging Driver: k8s-file")
    print(f"Cgroup Version: {info.cgroup_version}")
    print("Cgroup Driver: cgroupfs")
    print(f"Default Runtime: {info.runtime}")
    print(f" Runtime Version: {info.runtime_version}")
    print(f"Monitor: {info.conmon_version}")
    print(f"Kernel Version: {info.kernel}")
    print(f"Root Dir: {info.root}")
    print(f"Run Dir: {info.run_dir}")
    return 0
