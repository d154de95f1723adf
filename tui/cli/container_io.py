"""Verbs that reach into containers: exec, attach, cp, diff, commit, top.

Registered at the top level (``portside exec``) and, when the container
verbs made a ``container`` group, under it too (``portside container exec``).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from engine import InvalidArgument, ProcessInfo

from .output import table

if TYPE_CHECKING:
    from engine import Engine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    groups = [sub]
    group = _container_group(sub)
    if group is not None:
        groups.append(group)
    for g in groups:
        _add_exec(g.add_parser("exec", help="Run a command in a running container"))
        _add_attach(g.add_parser("attach", help="Attach to a running container's input and output"))
        _add_cp(g.add_parser("cp", help="Copy files between a container and the host",
                             description="Copy files between a container and the host. "
                             "Use CONTAINER:PATH for the container side; - for a tar stream on "
                             "stdin or stdout. Host paths containing ':' must start with / or ./"))
        _add_diff(g.add_parser("diff", help="Show the files a container changed"))
        _add_commit(g.add_parser("commit", help="Make an image from a container's changes"))
        _add_top(g.add_parser("top", help="Show the processes of a container"))


def _container_group(sub: argparse._SubParsersAction) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    """The subcommands of ``portside container``, if the container verbs registered it."""
    parser = sub.choices.get("container")
    if parser is None:
        return None
    for action in parser._actions:   # argparse keeps a group's subparsers here
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


# -- parsers ------------------------------------------------------------------------

def _add_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="run the command in the background")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("-e", "--env", action="append", default=[], help="set KEY=VALUE (KEY: from here)")
    p.add_argument("--env-file", action="append", default=[], help="read variables from a file")
    p.add_argument("-w", "--workdir", default="", help="working directory inside the container")
    p.add_argument("-u", "--user", default="", help="user[:group], names or ids")
    p.add_argument("--detach-keys", help="accepted for Docker compatibility")
    p.add_argument("container")
    p.add_argument("command")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)


def _add_attach(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stdin", action="store_true", help="do not send input")
    p.add_argument("--detach-keys", help="keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("--sig-proxy", default="true", choices=["true", "false"],
                   help="accepted for Docker compatibility")
    p.add_argument("container")
    p.set_defaults(func=cmd_attach)


def _add_cp(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--archive", action="store_true",
                   help="keep owners (and, out of a container, set-id bits and devices)")
    p.add_argument("-L", "--follow-link", action="store_true", help="follow a symlink source")
    p.add_argument("-q", "--quiet", action="store_true", help="no warnings about skipped entries")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.set_defaults(func=cmd_cp)


def _add_diff(p: argparse.ArgumentParser) -> None:
    p.add_argument("container")
    p.set_defaults(func=cmd_diff)


def _add_commit(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--author", default="", help='e.g. "Jane Doe <jane@example.com>"')
    p.add_argument("-c", "--change", action="append", default=[],
                   help="Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, "
                        "VOLUME, STOPSIGNAL")
    p.add_argument("-m", "--message", default="", help="commit message")
    p.add_argument("-p", "--pause", nargs="?", const="true", default="true",
                   choices=["true", "false"], help="pause the container while committing (default true)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(func=cmd_commit)


def _add_top(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Show the processes of a container. Without options: Docker's columns (ps -ef) with CPID, "
        "the pid inside the container. With podman's descriptors (e.g. 'pid hpid user args'): "
        "those columns; known: " + " ".join(sorted(_DESCRIPTORS)) + ". Anything else is passed "
        "to the host's ps, as docker top does (e.g. -o pid,comm or aux), and cut to the "
        "container's processes.")
    p.add_argument("container")
    p.add_argument("ps_options", nargs=argparse.REMAINDER, metavar="[ps OPTIONS | DESCRIPTORS]",
                   help="ps options (docker top) or podman top descriptors")
    p.set_defaults(func=cmd_top)


# -- handlers ------------------------------------------------------------------------

def cmd_exec(engine: Engine, a: argparse.Namespace) -> int:
    from engine.containers.spec import parse_env_file
    env = []
    for path in a.env_file:
        try:
            with open(path, encoding="utf-8") as f:
                env += parse_env_file(f.read())
        except OSError as err:
            raise InvalidArgument(f"cannot read env file {path}: {err.strerror}") from err
    env += a.env
    if a.tty and not a.detach and not sys.stdin.isatty() and a.interactive:
        sys.stderr.write("the input device is not a TTY\n")
        return 1
    return engine.exec(a.container, [a.command, *a.args], env=env, workdir=a.workdir, user=a.user,
                       tty=a.tty, interactive=a.interactive, detach=a.detach)


def cmd_attach(engine: Engine, a: argparse.Namespace) -> int:
    code = engine.attach(a.container, stdin=not a.no_stdin, detach_keys=a.detach_keys)
    return 0 if code is None else code


def split_cp_arg(arg: str) -> tuple[str | None, str]:
    """``CONTAINER:PATH`` -> (container, path); a local path -> (None, path).

    Docker's rule: a local path containing ':' must be absolute or start
    with ``.`` so it is not read as a container name.
    """
    if arg.startswith("/") or arg.startswith("."):
        return None, arg
    name, sep, path = arg.partition(":")
    if not sep or not name:
        return None, arg
    return name, path or "/"


def cmd_cp(engine: Engine, a: argparse.Namespace) -> int:
    src_ctr, src = split_cp_arg(a.src)
    dst_ctr, dest = split_cp_arg(a.dest)
    warn = None if a.quiet else (lambda msg: sys.stderr.write(f"warning: {msg}\n"))
    if src_ctr and dst_ctr:
        raise InvalidArgument("copying between containers is not supported",
                              hint="copy to the host first, then into the other container")
    if not src_ctr and not dst_ctr:
        raise InvalidArgument("one of SRC and DEST must be CONTAINER:PATH",
                              hint="e.g. portside cp web:/etc/hosts ./hosts")
    if src_ctr:
        if a.dest == "-":
            engine.get_archive(src_ctr, src, sys.stdout.buffer, follow=a.follow_link)
            sys.stdout.buffer.flush()
        else:
            engine.copy_from(src_ctr, src, dest, follow=a.follow_link, archive=a.archive, warn=warn)
        return 0
    assert dst_ctr is not None
    if a.src == "-":
        if sys.stdin.isatty():
            raise InvalidArgument("cp - needs a tar stream on stdin", hint="pipe one in, e.g. tar c . |")
        engine.put_archive(dst_ctr, dest, sys.stdin.buffer, warn=warn)
    else:
        engine.copy_to(dst_ctr, src, dest, follow=a.follow_link, archive=a.archive, warn=warn)
    return 0


def cmd_diff(engine: Engine, a: argparse.Namespace) -> int:
    for change in engine.diff(a.container):
        print(f"{change.kind} {change.path}")
    return 0


def cmd_commit(engine: Engine, a: argparse.Namespace) -> int:
    image = engine.commit(a.container, a.repository, message=a.message, author=a.author,
                          changes=a.change, pause=a.pause == "true")
    print(image.id)
    return 0


def cmd_top(engine: Engine, a: argparse.Namespace) -> int:
    words = [w for arg in a.ps_options for w in arg.replace(",", " ").split()]
    if a.ps_options and all(w in _DESCRIPTORS for w in words):
        return _top_descriptors(engine, a.container, words)
    if a.ps_options:
        titles, cells = engine.top_ps(a.container, a.ps_options)
        table(titles, cells)
        return 0
    now = datetime.now(timezone.utc).astimezone()
    rows = []
    for p in engine.top(a.container):
        rows.append([p.user, str(p.pid), _cpid(p.container_pid), str(p.ppid),
                     f"{p.cpu_percent:.0f}", _stime(p.started, now), p.tty,
                     _cputime(p.cpu_time), p.command])
    table(["UID", "PID", "CPID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], rows)
    return 0


# podman top's descriptors: title, and the cell of one process (given all of them, for ppid).
_DESCRIPTORS: dict[str, str] = {
    "args": "COMMAND", "comm": "COMMAND", "etime": "ELAPSED", "hpid": "HPID", "huser": "HUSER",
    "pcpu": "%CPU", "pid": "PID", "ppid": "PPID", "rss": "RSS", "state": "STATE",
    "stime": "STIME", "time": "TIME", "tty": "TTY", "user": "USER",
}


def _top_descriptors(engine: Engine, ref: str, words: list[str]) -> int:
    """``podman top CONTAINER pid hpid user args``: pid and ppid as the container sees them."""
    procs = engine.top(ref)
    inner = {p.pid: p.container_pid for p in procs}
    now = datetime.now(timezone.utc).astimezone()

    def cell(p: ProcessInfo, what: str) -> str:
        if what == "args":
            return p.command
        if what == "comm":
            return _comm(p.command)
        if what == "etime":
            return _elapsed(p.started, now)
        if what == "hpid":
            return str(p.pid)
        if what in ("user", "huser"):
            return p.user
        if what == "pcpu":
            return f"{p.cpu_percent:.3f}"
        if what == "pid":
            return _cpid(p.container_pid)
        if what == "ppid":                  # the parent's pid inside; 0 for the container's init
            return _cpid(inner.get(p.ppid, 0))
        if what == "rss":
            return str(p.memory_rss // 1024)
        if what == "state":
            return p.status
        if what == "stime":
            return _stime(p.started, now)
        if what == "time":
            return _cputime(p.cpu_time)
        return p.tty

    table([_DESCRIPTORS[w] for w in words], [[cell(p, w) for w in words] for p in procs])
    return 0


def _cpid(pid: int | None) -> str:
    return "?" if pid is None else str(pid)


def _comm(command: str) -> str:
    """The process name: a kernel thread's [name], else the program's file name."""
    if command.startswith("[") and command.endswith("]"):
        return command[1:-1]
    return command.split(" ", 1)[0].rsplit("/", 1)[-1][:15]


def _elapsed(t: datetime | None, now: datetime) -> str:
    """ps's ELAPSED: [[DD-]HH:]MM:SS since the process started."""
    if t is None:
        return "?"
    s = max(int((now - t).total_seconds()), 0)
    days, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if days:
        return f"{days}-{h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _stime(t: datetime | None, now: datetime) -> str:
    """ps's STIME: the time today, else the month and day."""
    if t is None:
        return "?"
    local = t.astimezone()
    return local.strftime("%H:%M") if local.date() == now.date() else local.strftime("%b%d")


def _cputime(seconds: float) -> str:
    """ps's TIME: [DD-]HH:MM:SS of CPU time."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{days}-" if days else "") + f"{h:02d}:{m:02d}:{s:02d}"
