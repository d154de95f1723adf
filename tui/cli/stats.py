"""Resource verbs: stats, events, pause, unpause, update, and system df|prune|events.

``system`` may belong to another verb module (``info``); these verbs then
join its subcommands instead of redefining it (see :func:`add_system_verbs`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from engine import EngineError, InvalidArgument
from engine.records import ContainerStats, DiskUsage, Event, UsageSummary

from .common import confirm, group_help
from .output import human_size, format_records, human_ago, table

if TYPE_CHECKING:
    from engine import Engine

STATS_HEADERS = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                 "BLOCK I/O", "PIDS")
# Docker's --format fields of stats and their column titles (cli/command/formatter/stats.go).
STATS_FIELDS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
                "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
DF_FIELDS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
             "Reclaimable": "RECLAIMABLE"}
FORMAT_HELP = ("'json', a Go template ('{{.Name}} {{.CPUPerc}}', '{{json .}}'), or "
               "'table TEMPLATE' for columns with a header")
REFRESH_SECONDS = 1.0
PRIMING_SECONDS = 0.5       # streaming: the first frame's CPU % is over this much time


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_stats(sub.add_parser("stats", help="Show a live stream of containers' resource use"))
    _add_events(sub.add_parser("events", help="Show events as they happen"))
    p = sub.add_parser("pause", help="Pause all processes of containers")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_pause)
    p = sub.add_parser("unpause", help="Unpause all processes of containers")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_unpause)
    _add_update(sub.add_parser("update", help="Change the resource limits of containers"))
    # ``portside container stats|update`` too, when the container verbs made that group.
    container = sub.choices.get("container")
    group = _subcommands(container) if container is not None else None
    if group is not None:
        if "stats" not in group.choices:
            _add_stats(group.add_parser("stats", help="Show a live stream of containers' resource use"))
        if "update" not in group.choices:
            _add_update(group.add_parser("update", help="Change the resource limits of containers"))

    system = sub.choices.get("system")
    if system is None:
        system = sub.add_parser("system", help="Manage portside (disk usage, prune, events)")
        ssub = system.add_subparsers(dest="system_verb", metavar="COMMAND",
                                     parser_class=type(system))
        system.set_defaults(func=group_help(system))
    else:
        ssub = _subcommands(system)
    if ssub is not None:
        add_system_verbs(ssub)


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    # argparse has no public accessor for a parser's subcommand action.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def add_system_verbs(ssub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``df``, ``prune`` and ``events`` under ``system`` (those not already there)."""
    if "df" not in ssub.choices:
        p = ssub.add_parser("df", help="Show disk usage")
        p.add_argument("-v", "--verbose", action="store_true", help="show each image, container, volume")
        p.add_argument("--format", help=FORMAT_HELP + "; fields Type, TotalCount, Active, Size, "
                       "Reclaimable (with -v: 'json' only)")
        p.set_defaults(func=cmd_df)
    if "prune" not in ssub.choices:
        p = ssub.add_parser("prune", help="Remove unused data")
        p.add_argument("-a", "--all", action="store_true",
                       help="remove every unused image, not just dangling ones")
        p.add_argument("--volumes", action="store_true",
                       help="prune anonymous volumes too (with -a: every unused volume)")
        p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
        p.set_defaults(func=cmd_prune)
    if "events" not in ssub.choices:
        _add_events(ssub.add_parser("events", help="Show events as they happen"))


# -- stats ---------------------------------------------------------------------------
def _add_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="*", help="containers (default: all running)")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("--format", help=FORMAT_HELP + "; fields " + ", ".join(STATS_FIELDS))
    p.set_defaults(func=cmd_stats)


def binary_size(n: float) -> str:
    """Docker's memory style: ``1.944GiB``, ``4.5MiB``, ``512B``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.4g}{unit}"
        n /= 1024
    return f"{n:.4g}TiB"


def stats_row(s: ContainerStats, *, no_trunc: bool = False) -> dict[str, str]:
    """One container's stats as the strings Docker prints (its JSON keys, but ``Container``)."""
    return {
        "ID": s.id if no_trunc else s.id[:12],
        "Name": s.name,
        "CPUPerc": f"{s.cpu_percent:.2f}%",
        "MemUsage": f"{binary_size(s.memory_usage)} / {binary_size(s.memory_limit)}",
        "MemPerc": f"{s.memory_percent:.2f}%",
        "NetIO": f"{human_size(s.net_rx)} / {human_size(s.net_tx)}",
        "BlockIO": f"{human_size(s.block_read)} / {human_size(s.block_write)}",
        "PIDs": str(s.pids),
    }


def _idle_row(cid: str, name: str, no_trunc: bool) -> dict[str, str]:
    return {"ID": cid if no_trunc else cid[:12], "Name": name, "CPUPerc": "0.00%",
            "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
            "BlockIO": "0B / 0B", "PIDs": "0"}


def _stats_rows(engine: Engine, a: argparse.Namespace, sample: list[ContainerStats]) -> list[dict[str, str]]:
    by_id = {s.id: stats_row(s, no_trunc=a.no_trunc) for s in sample}
    order = list(by_id)
    given: dict[str, str] = {}
    if a.all or a.containers:
        # Containers that are not running get a row of zeros, as in Docker.
        everyone = (engine.containers(all=True) if not a.containers
                    else [engine.container(r) for r in a.containers])
        for ref, c in zip(a.containers or (), everyone):
            given.setdefault(c.id, ref)
        for c in everyone:
            by_id.setdefault(c.id, _idle_row(c.id, c.name, a.no_trunc))
        order = list(dict.fromkeys([c.id for c in everyone] + order))
    # Docker's Container is the reference as given (a name stays a name), else the short id.
    return [by_id[cid] | {"Container": given.get(cid, by_id[cid]["ID"])} for cid in order]


def _print_stats(rows: Sequence[dict[str, str]], fmt: str | None, out: Any = None) -> None:
    out = out or sys.stdout
    if fmt is None or fmt.strip() == "table":
        table(STATS_HEADERS, ([r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"],
                               r["NetIO"], r["BlockIO"], r["PIDs"]] for r in rows), out)
        return
    format_records(fmt, [{k: r[k] for k in sorted(STATS_FIELDS)} for r in rows], STATS_FIELDS, out)


def cmd_stats(engine: Engine, a: argparse.Namespace) -> int:
    if a.format is not None and a.format.strip() not in ("json", "table"):
        _check_template(a.format, STATS_FIELDS)     # a bad template fails before sampling
    sampler = engine.stats_sampler()
    refs = a.containers or None
    sample = sampler.sample(refs)
    if sample:
        # CPU % needs two readings; Docker waits for them too, so even the
        # first frame (and --no-stream's only one) has real CPU figures.
        time.sleep(PRIMING_SECONDS if not a.no_stream else REFRESH_SECONDS)
        sample = sampler.sample(refs)
    if a.no_stream:
        _print_stats(_stats_rows(engine, a, sample), a.format)
        return 0
    interactive = sys.stdout.isatty() and (a.format or "").strip() != "json"
    while True:
        rows = _stats_rows(engine, a, sample)
        if interactive:
            sys.stdout.write("\x1b[H\x1b[2J")           # home, clear: redraw in place
        _print_stats(rows, a.format)
        sys.stdout.flush()
        time.sleep(REFRESH_SECONDS)
        sample = sampler.sample(refs)


class _Discard:
    def write(self, text: str) -> int:
        return len(text)


def _check_template(fmt: str, fields: dict[str, str]) -> None:
    """Raise InvalidArgument now for a template that would fail on the first record."""
    format_records(fmt, [{k: "" for k in sorted(fields)}], fields, _Discard())


# -- events --------------------------------------------------------------------------
def _add_events(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="show events since a time (RFC 3339, unix seconds, or 10m ago)")
    p.add_argument("--until", help="stop at this time")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="type=, container=, event=, image=, volume=, network=, label=")
    p.add_argument("--format", help="'json', or a Go template ('{{json .}}', "
                   "'{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'); fields Type, Action, "
                   "Actor.ID, Actor.Attributes, Status, ID, From, Scope, Time, TimeNano")
    p.set_defaults(func=cmd_events)


def format_event(ev: Event) -> str:
    """Docker's line: ``<time> <type> <action> <actor> (k=v, ...)``, time in local zone."""
    t = ev.time.astimezone()
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000" + _zone(t)
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(ev.attributes.items()))
    return f"{stamp} {ev.type} {ev.action} {ev.actor_id}" + (f" ({attrs})" if attrs else "")


def _zone(t: datetime) -> str:
    z = t.strftime("%z")
    return "Z" if z in ("+0000", "") else f"{z[:3]}:{z[3:]}"


def event_json(ev: Event) -> dict[str, Any]:
    """The Docker Engine API shape of an event.

    Container and image events carry Docker's deprecated ``status``/``id``
    (and ``from``: the image) too, as Docker still sends them.
    """
    ns = int(ev.time.timestamp()) * 1_000_000_000 + ev.time.microsecond * 1000
    out: dict[str, Any] = {}
    if ev.type in ("container", "image"):
        out = {"status": ev.action, "id": ev.actor_id}
        if ev.type == "container" and ev.attributes.get("image"):
            out["from"] = ev.attributes["image"]
    return out | {"Type": ev.type, "Action": ev.action,
                  "Actor": {"ID": ev.actor_id, "Attributes": dict(ev.attributes)},
                  "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns}


class _GoStruct(dict):  # type: ignore[type-arg]
    """A decoded Go struct: JSON tags as keys (``{{json .}}``), Go field names for ``{{.Field}}``."""

    _GO_NAMES = {"Status": "status", "ID": "id", "From": "from", "Scope": "scope",
                 "Time": "time", "TimeNano": "timeNano"}

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._GO_NAMES.get(key, key))  # type: ignore[call-overload]

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self, self._GO_NAMES.get(key, key))


def _print_event(ev: Event, fmt: str | None, out: Any = None) -> None:
    out = out or sys.stdout
    if fmt is None:
        out.write(format_event(ev) + "\n")
    elif fmt.strip() == "json":
        out.write(json.dumps(event_json(ev), ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        # Go would print "<no value>" for an attribute an event lacks, so not strict.
        format_records(fmt, [_GoStruct(event_json(ev))], out=out, strict=False)


def cmd_events(engine: Engine, a: argparse.Namespace) -> int:
    from engine.events import EventFilter, parse_time
    if a.format is not None and a.format.strip().startswith("table"):
        raise InvalidArgument("events cannot print a table", hint="use json or a template")
    if a.format is not None and a.format.strip() != "json":
        _print_event(Event(seq=0, time=datetime.now(timezone.utc), type="container",
                           action="check", actor_id="", attributes={}), a.format, _Discard())
    flt = EventFilter.parse(a.filter)
    until = parse_time(a.until) if a.until else None
    if a.since:
        parse_time(a.since)                       # a bad --since fails before following

    def done() -> bool:
        return until is not None and datetime.now(timezone.utc) > until

    for ev in engine.follow_events(since=a.since, stop=done, filters=flt):
        if until is not None and ev.time > until:
            break
        _print_event(ev, a.format)
        sys.stdout.flush()
    return 0


# -- pause / unpause / update ----------------------------------------------------------
def _each(refs: Iterable[str], step: Any) -> int:
    """Run ``step`` per container; print the name given, or the error and go on (Docker's way)."""
    rc = 0
    for ref in refs:
        try:
            for w in step(ref) or ():
                sys.stderr.write(f"WARNING: {w}\n")
            print(ref)
        except EngineError as err:
            sys.stderr.write(f"Error: {err}\n")
            rc = 1
    return rc


def cmd_pause(engine: Engine, a: argparse.Namespace) -> int:
    def step(ref: str) -> None:
        engine.pause(ref)
    return _each(a.containers, step)


def cmd_unpause(engine: Engine, a: argparse.Namespace) -> int:
    def step(ref: str) -> None:
        engine.unpause(ref)
    return _each(a.containers, step)


UPDATE_FLAGS = (
    # (flag, short, dest, help)
    ("--memory", "-m", "memory", "memory limit (e.g. 512m)"),
    ("--memory-reservation", None, "memory_reservation", "memory soft limit"),
    ("--memory-swap", None, "memory_swap", "memory plus swap limit; -1 for unlimited swap"),
    ("--cpus", None, "cpus", "number of CPUs (e.g. 0.5)"),
    ("--cpu-shares", "-c", "cpu_shares", "relative CPU weight (default 1024)"),
    ("--cpu-period", None, "cpu_period", "CFS period in microseconds"),
    ("--cpu-quota", None, "cpu_quota", "CFS quota in microseconds"),
    ("--cpuset-cpus", None, "cpuset_cpus", "CPUs allowed (e.g. 0-1,3)"),
    ("--cpuset-mems", None, "cpuset_mems", "memory nodes allowed"),
    ("--pids-limit", None, "pids_limit", "process limit; -1 for unlimited"),
)


def add_resource_flags(p: argparse.ArgumentParser) -> None:
    """Docker's resource flags for ``run``/``create``, skipping options ``p`` already has.

    Pair with :func:`resource_spec_fields` to fill the ``ContainerSpec``.
    """
    have = set(p._option_string_actions)      # argparse keeps no public list of options
    for flag, short, dest, text in UPDATE_FLAGS:
        names = [n for n in (flag, short) if n and n not in have]
        if flag in names:
            p.add_argument(*names, dest=dest, help=text)
    if "--oom-kill-disable" not in have:
        p.add_argument("--oom-kill-disable", action="store_true", default=None,
                       help="do not let the kernel OOM killer kill the container (cgroup v1)")


def resource_spec_fields(a: argparse.Namespace) -> dict[str, Any]:
    """``ContainerSpec`` keyword arguments from the flags of :func:`add_resource_flags`.

    Raises:
        InvalidArgument: a malformed size or number.
    """
    from engine.cgroups.resources import ResourceLimits
    given = {dest: getattr(a, dest) for _, _, dest, _ in UPDATE_FLAGS
             if getattr(a, dest, None) is not None}
    if getattr(a, "oom_kill_disable", None):
        given["oom_kill_disable"] = True
    return ResourceLimits.from_options(**given).to_json()


def _add_update(p: argparse.ArgumentParser) -> None:
    for flag, short, dest, text in UPDATE_FLAGS:
        names = [flag] + ([short] if short else [])
        p.add_argument(*names, dest=dest, help=text)
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_update)


def cmd_update(engine: Engine, a: argparse.Namespace) -> int:
    limits = {dest: getattr(a, dest) for _, _, dest, _ in UPDATE_FLAGS if getattr(a, dest) is not None}
    if not limits:
        raise InvalidArgument("nothing to update", hint="give at least one limit, e.g. --memory 256m")
    return _each(a.containers, lambda r: engine.update(r, **limits))


# -- system df / prune -----------------------------------------------------------------
def _reclaim(s: UsageSummary) -> str:
    if s.type == "Build Cache":
        return human_size(s.reclaimable)
    pct = round(s.reclaimable / s.size * 100) if s.size else 0
    return f"{human_size(s.reclaimable)} ({pct}%)"


def print_df(du: DiskUsage, *, verbose: bool = False, out: Any = None) -> None:
    """``system df`` output (and the ``-v`` sections)."""
    out = out or sys.stdout
    if not verbose:
        table(("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"),
              ([s.type, str(s.total), str(s.active), human_size(s.size), _reclaim(s)]
               for s in du.summary), out)
        return
    out.write("Images space usage:\n\n")
    rows = []
    for i in du.images:
        tags = list(i.repo_tags) or ["<none>:<none>"]
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            rows.append([repo, t, i.id.split(":", 1)[-1][:12], human_ago(i.created),
                         human_size(i.size), human_size(i.shared_size), human_size(i.unique_size),
                         str(i.containers)])
    table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE",
           "CONTAINERS"), rows, out)
    out.write("\nContainers space usage:\n\n")
    table(("CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"),
          ([c.id[:12], c.image, json.dumps(c.command[:20] + ("…" if len(c.command) > 20 else ""),
                                           ensure_ascii=False),
            str(c.local_volumes), human_size(c.size), human_ago(c.created), c.status, c.name]
           for c in du.containers), out)
    out.write("\nLocal Volumes space usage:\n\n")
    table(("VOLUME NAME", "LINKS", "SIZE"),
          ([v.name, str(v.links), human_size(v.size)] for v in du.volumes), out)
    out.write("\nBuild cache usage: 0B\n")


def df_rows(du: DiskUsage) -> list[dict[str, str]]:
    """``system df``'s summary as Docker's ``--format`` fields."""
    # Sorted keys, as Docker's formatter marshals {{json .}}.
    return [{"Active": str(s.active), "Reclaimable": _reclaim(s), "Size": human_size(s.size),
             "TotalCount": str(s.total), "Type": s.type} for s in du.summary]


def df_verbose_json(du: DiskUsage) -> dict[str, Any]:
    """``system df -v --format json``: every image, container and volume, Docker's field names."""
    images = []
    for i in du.images:
        for tag in list(i.repo_tags) or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            images.append({"Containers": str(i.containers), "CreatedSince": human_ago(i.created),
                           "ID": i.id.split(":", 1)[-1][:12], "Repository": repo,
                           "SharedSize": human_size(i.shared_size), "Size": human_size(i.size),
                           "Tag": t, "UniqueSize": human_size(i.unique_size)})
    containers = [{"Command": c.command, "ID": c.id[:12], "Image": c.image,
                   "LocalVolumes": str(c.local_volumes), "Names": c.name,
                   "RunningFor": human_ago(c.created), "Size": human_size(c.size),
                   "Status": c.status} for c in du.containers]
    volumes = [{"Links": str(v.links), "Name": v.name, "Size": human_size(v.size)}
               for v in du.volumes]
    return {"BuildCache": [], "Containers": containers, "Images": images, "Volumes": volumes}


def cmd_df(engine: Engine, a: argparse.Namespace) -> int:
    fmt = a.format.strip() if a.format is not None else None
    if a.verbose and fmt not in (None, "table", "json"):
        raise InvalidArgument("system df -v takes only --format json",
                              hint="drop -v to format the summary with a template")
    if fmt not in (None, "table", "json"):
        _check_template(a.format, DF_FIELDS)                   # a bad template fails first
    du = engine.system_df()
    if a.verbose and fmt == "json":
        print(json.dumps(df_verbose_json(du), ensure_ascii=False, separators=(",", ":")))
        return 0
    if fmt in (None, "table"):
        print_df(du, verbose=a.verbose)
        return 0
    format_records(a.format, df_rows(du), DF_FIELDS)
    return 0


def prune_warning(all_images: bool, volumes: bool) -> str:
    """The list Docker shows before ``system prune``."""
    lines = ["WARNING! This will remove:", "  - all stopped containers",
             "  - all networks not used by at least one container"]
    if volumes:
        lines.append("  - all volumes not used by at least one container" if all_images
                     else "  - all anonymous volumes not used by at least one container")
    lines.append("  - all images without at least one container associated to them" if all_images
                 else "  - all dangling images")
    return "\n".join(lines) + "\n\nAre you sure you want to continue? [y/N] "


def cmd_prune(engine: Engine, a: argparse.Namespace) -> int:
    if not a.force and not confirm(prune_warning(a.all, a.volumes)):
        return 0
    report = engine.system_prune(all=a.all, volumes=a.volumes)
    for title, items in (("Deleted Containers", report.containers),
                         ("Deleted Networks", report.networks),
                         ("Deleted Volumes", report.volumes),
                         ("Deleted Images", tuple(f"deleted: {i}" for i in report.images))):
        if items:
            print(f"{title}:")
            for item in items:
                print(item)
            print()
    print(f"Total reclaimed space: {human_size(report.space_reclaimed)}")
    return 0


__all__ = ["register", "add_system_verbs", "add_resource_flags", "resource_spec_fields", "binary_size", "human_size", "format_event",
           "stats_row", "print_df", "prune_warning"]
