"""Volume verbs: volume create|ls|inspect|rm|prune, with Docker's flags and output."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from engine import EngineError, InvalidArgument, NoSuchVolume

from .images import confirm
from .output import human_size, print_json, table

if TYPE_CHECKING:
    from engine import Engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    volume = sub.add_parser("volume", help="Manage volumes")
    vsub = volume.add_subparsers(dest="volume_verb", metavar="COMMAND", parser_class=type(volume))

    p = vsub.add_parser("create", help="Create a volume")
    p.add_argument("volume", nargs="?", help="name (default: a random one)")
    p.add_argument("--name", dest="name_flag", help="name, as an option")
    p.add_argument("-d", "--driver", default="local", help="volume driver (only local)")
    p.add_argument("--label", "-l", action="append", default=[], help="set metadata: KEY[=VALUE]")
    p.add_argument("-o", "--opt", action="append", default=[], help="driver option KEY=VALUE")
    p.set_defaults(func=cmd_create)

    p = vsub.add_parser("ls", aliases=["list"], help="List volumes")
    p.add_argument("-q", "--quiet", action="store_true", help="only show volume names")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="dangling=true|false, name=, label=KEY[=VALUE], driver=")
    p.add_argument("--format", help="'json' for one JSON object per line")
    p.set_defaults(func=cmd_ls)

    p = vsub.add_parser("inspect", help="Show details of volumes as JSON")
    p.add_argument("volumes", nargs="+")
    p.add_argument("-f", "--format", help="only 'json' (the default)")
    p.set_defaults(func=cmd_inspect)

    p = vsub.add_parser("rm", aliases=["remove"], help="Remove one or more volumes")
    p.add_argument("volumes", nargs="+")
    p.add_argument("-f", "--force", action="store_true",
                   help="do not fail on volumes that do not exist")
    p.set_defaults(func=cmd_rm)

    p = vsub.add_parser("prune", help="Remove unused volumes")
    p.add_argument("-a", "--all", action="store_true",
                   help="remove all unused volumes, not just anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--filter", action="append", default=[], help="label=KEY[=VALUE], label!=...")
    p.set_defaults(func=cmd_prune)

    volume.set_defaults(func=lambda _e, _a: (volume.print_help(), 0)[1], no_engine=True)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"bad {what} {item!r}", hint=f"use --{what} KEY=VALUE")
        out[key] = value
    return out


def cmd_create(engine: Engine, a: argparse.Namespace) -> int:
    if a.volume and a.name_flag and a.volume != a.name_flag:
        raise InvalidArgument(f"conflicting names: {a.volume} and --name {a.name_flag}",
                              hint="give the name once")
    info = engine.volume_create(a.volume or a.name_flag, labels=_pairs(a.label, "label"),
                                driver=a.driver, options=_pairs(a.opt, "opt"))
    print(info.name)
    return 0


def cmd_ls(engine: Engine, a: argparse.Namespace) -> int:
    vols = engine.volumes(filters=a.filter)
    if a.quiet:
        for v in vols:
            print(v.name)
        return 0
    if a.format == "json":
        for v in vols:
            print(json.dumps({"Driver": v.driver, "Labels": ",".join(
                f"{k}={val}" for k, val in sorted(v.labels.items())), "Mountpoint": v.mountpoint,
                "Name": v.name, "Scope": "local"}))
        return 0
    if a.format:
        raise InvalidArgument(f"unsupported format {a.format!r}", hint="use --format json")
    table(["DRIVER", "VOLUME NAME"], [[v.driver, v.name] for v in vols])
    return 0


def cmd_inspect(engine: Engine, a: argparse.Namespace) -> int:
    if a.format not in (None, "json"):
        raise InvalidArgument(f"unsupported format {a.format!r}", hint="use --format json")
    found, code = [], 0
    for name in a.volumes:
        try:
            found.append(engine.volume_inspect(name))
        except NoSuchVolume as err:      # show the others, like Docker
            sys.stderr.write(f"Error: {err}\n")
            code = 1
    print_json(found)
    return code


def cmd_rm(engine: Engine, a: argparse.Namespace) -> int:
    code = 0
    for name in a.volumes:
        try:
            if engine.volume_rm(name, force=a.force) or a.force:
                print(name)
        except EngineError as err:       # go on with the rest, like Docker
            sys.stderr.write(f"Error: {err}\n")
            code = 1
    return code


def cmd_prune(engine: Engine, a: argparse.Namespace) -> int:
    if not a.force:
        what = "all local volumes" if a.all else "anonymous local volumes"
        if not confirm(f"WARNING! This will remove {what} not used by at least one container.\n"
                       "Are you sure you want to continue? [y/N] "):
            return 0
    removed, freed = engine.volume_prune(all=a.all, filters=a.filter)
    if removed:
        print("Deleted Volumes:")
        for name in removed:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0
