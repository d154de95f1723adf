"""System verbs: ``info`` and ``system info``."""
from __future__ import annotations

import argparse
from dataclasses import asdict

from engine import Engine

from .common import group_help
from .output import print_json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_info(sub.add_parser("info", help="Show system-wide information"))
    system = sub.add_parser("system", help="Manage portside")
    ssub = system.add_subparsers(dest="system_verb", metavar="COMMAND", parser_class=type(system))
    _add_info(ssub.add_parser("info", help="Show system-wide information"))
    system.set_defaults(func=group_help(system))


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
