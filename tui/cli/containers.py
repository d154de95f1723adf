"""Container verbs: run, create, start, stop, kill, restart, rm, ps, inspect, logs, wait, rename.

Each is registered at the top level (``portside ps``) and under the
``container`` group (``portside container ls``), with Docker's flags,
columns and exit codes: ``run`` in the foreground returns the container's
own exit code; 125 means portside failed, 126 the command could not be
executed, 127 it was not found.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from engine import (ContainerInfo, ContainerSpec, EngineError, InvalidArgument, NoSuchContainer,
                    NoSuchImage)

from .common import confirm, group_help
from .output import human_size, print_json, table
from .output import print_inspect, render_template as _template
from .stats import add_resource_flags, resource_spec_fields

if TYPE_CHECKING:
    from engine import Engine

PS_HEADERS = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_run(sub.add_parser("run", help="Create and run a new container from an image", add_help=False))
    _add_create(sub.add_parser("create", help="Create a new container", add_help=False))
    _add_start(sub.add_parser("start", help="Start one or more stopped containers"))
    _add_stop(sub.add_parser("stop", help="Stop one or more running containers"))
    _add_kill(sub.add_parser("kill", help="Kill one or more running containers"))
    _add_restart(sub.add_parser("restart", help="Restart one or more containers"))
    _add_rm(sub.add_parser("rm", help="Remove one or more containers"))
    _add_ps(sub.add_parser("ps", help="List containers"))
    _add_inspect(sub.add_parser("inspect", help="Show low-level information on containers or images"),
                 any_type=True)
    _add_logs(sub.add_parser("logs", help="Fetch the logs of a container"))
    _add_wait(sub.add_parser("wait", help="Block until containers stop, then print their exit codes"))
    _add_rename(sub.add_parser("rename", help="Rename a container"))

    group = sub.add_parser("container", help="Manage containers")
    g = group.add_subparsers(dest="container_verb", metavar="COMMAND", parser_class=type(group))
    _add_run(g.add_parser("run", help="Create and run a new container from an image", add_help=False))
    _add_create(g.add_parser("create", help="Create a new container", add_help=False))
    _add_start(g.add_parser("start", help="Start one or more stopped containers"))
    _add_stop(g.add_parser("stop", help="Stop one or more running containers"))
    _add_kill(g.add_parser("kill", help="Kill one or more running containers"))
    _add_restart(g.add_parser("restart", help="Restart one or more containers"))
    _add_rm(g.add_parser("rm", aliases=["remove"], help="Remove one or more containers"))
    _add_ps(g.add_parser("ls", aliases=["list", "ps"], help="List containers"))
    _add_inspect(g.add_parser("inspect", help="Show low-level information on containers"), any_type=False)
    _add_logs(g.add_parser("logs", help="Fetch the logs of a container"))
    _add_wait(g.add_parser("wait", help="Block until containers stop, then print their exit codes"))
    _add_rename(g.add_parser("rename", help="Rename a container"))
    p = g.add_parser("prune", help="Remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_prune)
    for verb, helptext in (("pause", "Pause all processes of containers"),
                           ("unpause", "Unpause all processes of containers")):
        p = g.add_parser(verb, help=helptext)
        p.add_argument("containers", nargs="+")
        p.set_defaults(func=_each(verb, lambda e, ref, a, v=verb: getattr(e, v)(ref)))
    # What conmon's exit command runs after a container exits (not for users).
    p = g.add_parser("cleanup")
    p.add_argument("container")
    p.set_defaults(func=cmd_cleanup)
    group.set_defaults(func=group_help(group))


# -- flags ----------------------------------------------------------------------------

def _add_create_flags(p: argparse.ArgumentParser) -> None:
    # -h is --hostname, as in Docker; help is --help only.
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], help="set an environment variable (KEY=VALUE or KEY)")
    p.add_argument("--env-file", action="append", default=[], help="read environment variables from a file")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="user[:group] or uid[:gid]")
    p.add_argument("--entrypoint", help="override the image's ENTRYPOINT")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-v", "--volume", action="append", default=[],
                   help="bind mount or volume: [SOURCE:]DEST[:ro]")
    p.add_argument("--mount", action="append", default=[],
                   help="type=bind|volume|tmpfs,source=...,target=...[,readonly]")
    p.add_argument("--tmpfs", action="append", default=[], help="mount a tmpfs: DEST[:size=64m,mode=1777]")
    p.add_argument("--restart", default="no", help="no | on-failure[:N] | always | unless-stopped")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-l", "--label", action="append", default=[], help="set a label (key=value)")
    p.add_argument("--network", "--net", action="append", default=None,
                   help="bridge (the default network, default) | none | host | a network name; "
                        "repeat to join several networks")
    p.add_argument("--ip", default=None, help="IPv4 address on the network (e.g. 10.89.1.10)")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[],
                   help="another name the container is known by on a user-defined network")
    p.add_argument("-p", "--publish", action="append", default=[], help="publish a port: [ip:]host:container[/proto]")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish every exposed port")
    p.add_argument("--cap-add", action="append", default=[], help="add a capability (or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], help="drop a capability (or ALL)")
    p.add_argument("--privileged", action="store_true", help="give the container every capability and device")
    p.add_argument("--security-opt", action="append", default=[],
                   help="no-new-privileges, seccomp=unconfined, seccomp=<profile.json>")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--log-opt", action="append", default=[], help="log option: max-size=10m")
    p.add_argument("--dns", action="append", default=[], help="a DNS server")
    p.add_argument("--add-host", action="append", default=[], help="add a hosts entry: name:ip")
    add_resource_flags(p)
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _add_run(p: argparse.ArgumentParser) -> None:
    _add_create_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print the id")
    p.set_defaults(func=cmd_run)


def _add_create(p: argparse.ArgumentParser) -> None:
    _add_create_flags(p)
    p.set_defaults(func=cmd_create)


def _add_start(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true", help="attach to the output and wait for the exit")
    p.add_argument("-i", "--interactive", action="store_true", help="attach stdin")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_start)


def _add_stop(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int, default=None,
                   help="seconds to wait before killing (default 10)")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=_each("stop", lambda e, ref, a: e.stop(ref, timeout=a.time)))


def _add_restart(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int, default=None,
                   help="seconds to wait before killing (default 10)")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=_each("restart", lambda e, ref, a: e.restart(ref, timeout=a.time)))


def _add_kill(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=_each("kill", lambda e, ref, a: e.kill(ref, a.signal)))


def _add_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="kill running containers first")
    p.add_argument("-v", "--volumes", action="store_true", help="remove volumes only these containers use")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=_each("rm", lambda e, ref, a: e.rm(ref, force=a.force, volumes=a.volumes)))


def _add_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only show ids")
    p.add_argument("-s", "--size", action="store_true", help="show the size of each container's changes")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="status=, name=, id=, label=, ancestor=, exited=")
    p.add_argument("-n", "--last", type=int, default=-1, help="show the n last created containers")
    p.add_argument("-l", "--latest", action="store_true", help="show the latest created container")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("--format", help="'json', or a template such as '{{.ID}} {{.Names}}'")
    p.set_defaults(func=cmd_ps)


def _add_inspect(p: argparse.ArgumentParser, *, any_type: bool) -> None:
    p.add_argument("objects", nargs="+", metavar="NAME")
    if any_type:
        p.add_argument("--type", choices=["container", "image"], help="only look for this type")
    p.add_argument("-s", "--size", action="store_true", help="add SizeRw to containers")
    p.add_argument("-f", "--format", help="a Go template, e.g. '{{.State.Status}}'")
    p.set_defaults(func=cmd_inspect, any_type=any_type)


def _add_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="follow the output")
    p.add_argument("-n", "--tail", default="all", help="number of lines from the end (default all)")
    p.add_argument("--since", help="since a time: RFC 3339, unix time or a duration like 10m")
    p.add_argument("--until", help="until a time: RFC 3339, unix time or a duration like 10m")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("container")
    p.set_defaults(func=cmd_logs)


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_wait)


def _add_rename(p: argparse.ArgumentParser) -> None:
    p.add_argument("container")
    p.add_argument("new_name")
    p.set_defaults(func=cmd_rename)


# -- building the spec --------------------------------------------------------------

def spec_from_args(a: argparse.Namespace) -> ContainerSpec:
    """The :class:`ContainerSpec` for ``run``/``create`` flags.

    Raises:
        InvalidArgument: a malformed flag value.
    """
    from engine.containers.mounts import parse_mount, parse_tmpfs, parse_volume
    from engine.containers.spec import parse_env_file

    env: list[str] = []
    for path in a.env_file:
        try:
            with open(path, encoding="utf-8") as f:
                env += parse_env_file(f.read())
        except OSError as err:
            raise InvalidArgument(f"cannot read env file {path}: {err.strerror}") from err
    env += a.env
    mounts = [parse_volume(v) for v in a.volume] + [parse_mount(m) for m in a.mount] + \
        [parse_tmpfs(t) for t in a.tmpfs]
    labels: dict[str, str] = {}
    for item in a.label:
        k, _, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid label {item!r}", hint="use key=value")
        labels[k] = v
    log_opts: dict[str, str] = {}
    for item in a.log_opt:
        k, sep, v = item.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid --log-opt {item!r}", hint="use key=value, e.g. max-size=10m")
        log_opts[k] = v
    command = list(a.command)
    if command and command[0] == "--":
        command = command[1:]
    extra: dict[str, Any] = {}
    if a.network:
        if len(a.network) > 1 and any(n in ("none", "host") or n.startswith("container:")
                                      for n in a.network):
            raise InvalidArgument("--network none or host cannot be combined with other networks",
                                  hint="give one --network, or only bridge networks")
        extra["network"] = a.network[0]
    return ContainerSpec(
        image=a.image, command=tuple(command) or None,
        entrypoint=(a.entrypoint,) if a.entrypoint else (() if a.entrypoint == "" else None),
        name=a.name, env=tuple(env), working_dir=a.workdir, user=a.user, hostname=a.hostname,
        tty=a.tty, interactive=a.interactive, mounts=tuple(mounts), ports=tuple(a.publish),
        publish_all=a.publish_all, restart=a.restart, labels=labels, auto_remove=a.rm,
        read_only=a.read_only, privileged=a.privileged, cap_add=tuple(a.cap_add),
        cap_drop=tuple(a.cap_drop), security_opt=tuple(a.security_opt), log_opts=log_opts,
        dns=tuple(a.dns), add_hosts=tuple(a.add_host), ip=a.ip,
        network_aliases=tuple(a.network_alias),
        stdin_once=a.interactive and not getattr(a, "detach", True),
        **resource_spec_fields(a), **extra)


def _create(engine: Engine, spec: ContainerSpec, also: list[str] | None = None) -> ContainerInfo:
    """Create, pulling the image first if it is not here (as Docker does).

    ``also``: more networks (``--network`` given again) the container joins
    as well; they are checked before anything is created.
    """
    more = list(also or [])
    for net in more:
        engine.network(net)                     # NoSuchNetwork before anything exists
    try:
        info = engine.create(spec)
    except NoSuchImage:
        sys.stderr.write(f"Unable to find image '{spec.image}' locally\n")
        try:
            engine.pull(spec.image)
        except EngineError as err:
            raise NoSuchImage(spec.image) from err
        info = engine.create(spec)
    try:
        for net in more:
            engine.network_connect(net, info.id)
    except EngineError:
        engine.rm(info.id, force=True, volumes=True)   # bad input leaves nothing behind
        raise
    for warning in info.warnings:
        sys.stderr.write(f"WARNING: {warning}\n")
    return info


# -- handlers ---------------------------------------------------------------------------

def cmd_create(engine: Engine, a: argparse.Namespace) -> int:
    info = _create(engine, spec_from_args(a), (a.network or [])[1:])
    print(info.id)
    return 0


def cmd_run(engine: Engine, a: argparse.Namespace) -> int:
    spec = spec_from_args(a)
    info = _create(engine, spec, (a.network or [])[1:])
    if a.detach:
        try:
            engine.start(info.id)
        except EngineError:
            _remove_quietly(engine, info.id, spec.auto_remove)
            raise
        print(info.id)
        return 0
    try:
        if spec.tty:
            code = engine.attach_terminal(info.id, stdin=spec.interactive, tty=True, start=True)
        else:
            code = _run_foreground(engine, info.id, stdin=spec.interactive)
    except EngineError:
        _remove_quietly(engine, info.id, spec.auto_remove)
        raise
    _remove_quietly(engine, info.id, spec.auto_remove)
    return code


def _remove_quietly(engine: Engine, cid: str, wanted: bool) -> None:
    if not wanted:
        return
    try:
        engine.rm(cid, force=True, volumes=True)      # --rm takes anonymous volumes too
    except NoSuchContainer:
        pass                      # the exit hook was first


def _run_foreground(engine: Engine, cid: str, *, stdin: bool = False) -> int:
    """Start the container and stream its output until it exits; returns its exit code.

    The attach socket is connected after the runtime created the container
    and before its process runs, so no output is missed; stdout and stderr
    stay apart, and with ``stdin`` our input goes to the container (EOF
    closes its stdin). Without an attach socket the log file is followed.
    SIGINT/SIGTERM/SIGHUP are passed on to the container, as Docker's
    ``--sig-proxy`` does; a third Ctrl-C stops waiting (the container keeps
    running).
    """
    from engine.containers.attach import AttachIO, AttachSession, connect

    files = engine.container_files(cid)
    socks: list[Any] = []
    interrupts = [0]

    def connect_early(_info: ContainerInfo) -> None:
        try:
            socks.append(connect(files.attach_socket))
        except EngineError:
            pass                      # fall back to following the log

    def forward(signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT:
            interrupts[0] += 1
            if interrupts[0] >= 3:
                raise KeyboardInterrupt
        try:
            engine.kill(cid, signal.Signals(signum).name)
        except EngineError:
            pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        start_time = datetime.now(timezone.utc)
        sys.stdout.flush()
        engine.start(cid, on_created=connect_early)
        if socks:
            with socks[0] as sock:
                AttachSession(sock, AttachIO(0 if stdin else None, 1, 2), tty=False).run()
        else:
            _follow_log(engine, cid, start_time)
        return engine.wait(cid)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _follow_log(engine: Engine, cid: str, start_time: datetime) -> None:
    from engine.containers.logs import LogReader

    files = engine.container_files(cid)

    def done() -> bool:
        return files.exit_file.exists() or files.persist_exit_file.exists()

    reader = LogReader(files.log)
    last_time = None
    same_time_seen = 0
    for line in reader.follow(since=start_time, stop=done, poll=0.02):
        _emit(line)
        if line.time == last_time:
            same_time_seen += 1
        else:
            last_time, same_time_seen = line.time, 1
    # follow() may stop right after a batch: print what the container wrote after it
    # (lines at the last printed time were printed already, up to that count).
    skip = same_time_seen
    for line in reader.lines(since=last_time or start_time):
        if line.time == last_time and skip > 0:
            skip -= 1
            continue
        _emit(line)
    sys.stdout.flush()


def _emit(line: Any) -> None:
    out = sys.stdout if line.stream == "stdout" else sys.stderr
    out.write(line.text + "\n")
    if out is sys.stderr:
        sys.stdout.flush()


def cmd_start(engine: Engine, a: argparse.Namespace) -> int:
    if a.attach or a.interactive:
        if len(a.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        info = engine.container(a.containers[0])
        if info.tty:
            return engine.attach_terminal(info.id, stdin=a.interactive, tty=True, start=True)
        return _run_foreground(engine, info.id, stdin=a.interactive and info.interactive)
    return _each("start", lambda e, ref, _a: e.start(ref))(engine, a)


def _each(verb: str, fn: Callable[[Engine, str, argparse.Namespace], Any]) -> Callable[[Engine, argparse.Namespace], int]:
    """A handler applying ``fn`` to every container named; prints each, like Docker."""

    def handler(engine: Engine, a: argparse.Namespace) -> int:
        failed = False
        for ref in a.containers:
            try:
                fn(engine, ref, a)
                print(ref)
            except EngineError as err:
                sys.stderr.write(f"Error: {err}\n")
                failed = True
        return 1 if failed else 0

    handler.__name__ = f"cmd_{verb}"
    return handler


def cmd_cleanup(engine: Engine, a: argparse.Namespace) -> int:
    engine.cleanup(a.container)
    return 0


def cmd_rename(engine: Engine, a: argparse.Namespace) -> int:
    engine.rename(a.container, a.new_name)
    return 0


def cmd_wait(engine: Engine, a: argparse.Namespace) -> int:
    failed = False
    for ref in a.containers:
        try:
            print(engine.wait(ref), flush=True)
        except EngineError as err:
            sys.stderr.write(f"Error: {err}\n")
            failed = True
    return 1 if failed else 0


def cmd_prune(engine: Engine, a: argparse.Namespace) -> int:
    if not a.force and not confirm("WARNING! This will remove all stopped containers.\n"
                                   "Are you sure you want to continue? [y/N] "):
        return 0                      # an explicit no is not a failure (Docker exits 0)
    sizes = {c.id: engine.container_size(c.id) for c in engine.containers(all=True)
             if c.status in ("exited", "created")}
    removed = engine.container_prune()
    if removed:
        print("Deleted Containers:")
        for cid in removed:
            print(cid)
        print()
    print(f"Total reclaimed space: {human_size(sum(sizes.get(c, 0) for c in removed))}")
    return 0


def cmd_logs(engine: Engine, a: argparse.Namespace) -> int:
    from engine.containers.log_format import format_time
    tail = None if a.tail in ("all", "-1") else _int(a.tail, "--tail")
    for line in engine.logs(a.container, tail=tail, since=a.since, until=a.until, follow=a.follow):
        out = sys.stdout if line.stream == "stdout" else sys.stderr
        prefix = format_time(line.time) + " " if a.timestamps else ""
        out.write(prefix + line.text + "\n")
        if a.follow:
            out.flush()
    return 0


def _int(value: str, flag: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidArgument(f"invalid {flag} value {value!r}", hint="use a number") from None
    if n < 0:
        raise InvalidArgument(f"invalid {flag} value {value!r}", hint="use 0 or more")
    return n


def cmd_inspect(engine: Engine, a: argparse.Namespace) -> int:
    out: list[dict[str, Any]] = []
    failed = False
    kind = getattr(a, "type", None) if a.any_type else "container"
    for ref in a.objects:
        try:
            if kind in (None, "container"):
                try:
                    data = engine.container_inspect(ref)
                    if a.size:
                        data["SizeRw"] = engine.container_size(ref)
                    out.append(data)
                    continue
                except NoSuchContainer:
                    if kind == "container":
                        raise
            out.append(engine.image_inspect(ref))
        except NoSuchImage:
            sys.stderr.write(f"Error: no such object: {ref}\n")
            failed = True
        except EngineError as err:
            sys.stderr.write(f"Error: {err}\n")
            failed = True
    print_inspect(out, a.format)
    return 1 if failed else 0


# -- ps -------------------------------------------------------------------------------

def cmd_ps(engine: Engine, a: argparse.Namespace) -> int:
    items = engine.containers(all=a.all or a.last >= 0 or a.latest, filters=a.filter)
    if a.latest:
        items = items[:1]
    elif a.last >= 0:
        items = items[:a.last]
    if a.quiet:
        for c in items:
            print(c.id if a.no_trunc else c.short_id)
        return 0
    now = datetime.now(timezone.utc)
    rows = [_ps_fields(engine, c, now, size=a.size, no_trunc=a.no_trunc) for c in items]
    if a.format:
        fmt = a.format
        if fmt == "json":
            for r in rows:
                print(json.dumps(r, sort_keys=True))
            return 0
        header = fmt.startswith("table")
        fmt = fmt[5:].lstrip() if header else fmt
        fmt = fmt.replace("\\t", "\t")
        if header and rows:
            print(_template(fmt, {k: k.upper() for k in rows[0]}))
        for r in rows:
            print(_template(fmt, r))
        return 0
    headers = PS_HEADERS + (("SIZE",) if a.size else ())
    table(headers, [[r["ID"], r["Image"], r["Command"], r["RunningFor"], r["Status"], r["Ports"],
                     r["Names"]] + ([r["Size"]] if a.size else []) for r in rows])
    return 0


def _ps_fields(engine: Engine, c: ContainerInfo, now: datetime, *, size: bool,
               no_trunc: bool) -> dict[str, Any]:
    cmd = " ".join(c.command)
    if not no_trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    ports = ""
    if c.ports and c.status == "running":
        try:
            ports = ", ".join(str(p) for p in engine.container_ports(c.id))
        except (EngineError, AttributeError):
            ports = ""
    fields: dict[str, Any] = {
        "ID": c.id if no_trunc else c.short_id,
        "Image": c.image,
        "Command": f"\"{cmd}\"",
        "CreatedAt": c.created.astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z"),
        "RunningFor": human_duration(now - c.created) + " ago",
        "Status": status_text(c, now),
        "State": c.status,
        "Ports": ports,
        "Names": c.name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())),
        "Mounts": ",".join(m.source or m.destination for m in c.mounts),
        "Networks": c.network_mode,
    }
    if size:
        rw = engine.container_size(c.id)
        try:
            virtual = engine.image(c.image_id).size + rw
        except EngineError:
            virtual = rw
        fields["Size"] = f"{human_size(rw)} (virtual {human_size(virtual)})"
    return fields


def human_duration(d: Any) -> str:
    """Docker's wording for a duration: ``Less than a second``, ``3 seconds``, ``About a minute``..."""
    seconds = int(d.total_seconds())
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(d.total_seconds() / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(d.total_seconds() / 3600) // 24 // 365} years"


def status_text(c: ContainerInfo, now: datetime | None = None) -> str:
    """The STATUS column: ``Up 3 seconds``, ``Exited (0) 5 seconds ago``, ``Created``..."""
    now = now or datetime.now(timezone.utc)
    st = c.state
    if c.status in ("running", "paused"):
        up = "Up " + human_duration(now - st.started_at) if st.started_at else "Up"
        return up + (" (Paused)" if c.status == "paused" else "")
    if c.status == "restarting":
        ago = human_duration(now - st.finished_at) + " ago" if st.finished_at else ""
        return f"Restarting ({st.exit_code}) {ago}".rstrip()
    if c.status == "exited":
        if st.finished_at is None:
            return f"Exited ({st.exit_code})"
        return f"Exited ({st.exit_code}) {human_duration(now - st.finished_at)} ago"
    if c.status == "removing":
        return "Removal In Progress"
    return "Created"


__all__ = ["register", "spec_from_args", "status_text", "human_duration"]
