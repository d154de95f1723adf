"""The processes of a container (``top``), from its cgroup and psutil.

Membership comes from the cgroup (every process of the container, even
ones re-parented away from its init); the details from psutil; the pid each
process has inside the container from ``NSpid`` in ``/proc/<pid>/status``.
"""
from __future__ import annotations

import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import psutil

from ..errors import InvalidArgument
from ..records import ProcessInfo
from .base import Cgroup
from .procfs import container_pid, process_tty


def process_info(pid: int, *, proc: Path = Path("/proc"), host_memory: int | None = None,
                 now: float | None = None) -> ProcessInfo | None:
    """Details of host process ``pid``, or None if it has gone.

    CPU % is CPU time over the process's lifetime, as ``ps`` (and so
    ``docker top``) shows it.
    """
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            times = p.cpu_times()
            created = p.create_time()
            mem = p.memory_info()
            try:
                user = p.username()
            except KeyError:                  # a uid with no passwd entry
                user = str(p.uids().real)
            cmdline = p.cmdline()
            command = " ".join(cmdline) if cmdline else f"[{p.name()}]"
            ppid = p.ppid()
            status = p.status()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return None
    cpu_time = times.user + times.system
    elapsed = max((now or time.time()) - created, 1e-6)
    total = host_memory or psutil.virtual_memory().total
    return ProcessInfo(
        pid=pid, container_pid=container_pid(proc, pid), ppid=ppid, user=user,
        cpu_percent=cpu_time / elapsed * 100.0, memory_rss=mem.rss,
        memory_percent=mem.rss / total * 100.0 if total else 0.0,
        started=datetime.fromtimestamp(created, timezone.utc), cpu_time=cpu_time,
        status=str(status), command=command,
        tty=process_tty(proc, pid))


def list_processes(pids: Iterable[int], *, proc: Path = Path("/proc")) -> list[ProcessInfo]:
    """Details of each pid still alive, sorted by host pid."""
    total = psutil.virtual_memory().total
    now = time.time()
    out = [info for pid in sorted(set(pids))
           if (info := process_info(pid, proc=proc, host_memory=total, now=now)) is not None]
    return out


def cgroup_processes(cgroup: Cgroup, *, proc: Path = Path("/proc"),
                     init_pid: int = 0) -> list[ProcessInfo]:
    """Every process of a container: the members of its cgroup.

    Falls back to ``init_pid`` and its descendants when the cgroup cannot be
    read (e.g. a layout portside does not know).
    """
    pids = cgroup.pids()
    if not pids and init_pid > 0:
        try:
            root = psutil.Process(init_pid)
            pids = [init_pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pids = []
    return list_processes(pids, proc=proc)


def ps_table(pids: Iterable[int], ps_args: list[str], *,
             run: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None,
             ) -> tuple[list[str], list[list[str]]]:
    """``docker top CONTAINER [ps OPTIONS]``: the host's ``ps`` with those options, cut to ``pids``.

    Docker's way: run ``ps OPTIONS -q PIDS`` (again without ``-q`` if ps
    refuses it next to an option such as ``f``), find the ``PID`` column in
    the header, keep the rows whose pid is one of ``pids`` (and the thread
    rows under them, whose pid is ``-``); the last column keeps its spaces.

    Returns:
        (titles, rows), each row as many cells as titles.

    Raises:
        InvalidArgument: ps refused the options, or its output has no PID column.
    """
    wanted = set(pids)
    args = " ".join(ps_args).split()
    runner = run or _run_ps
    quick = ["-q", ",".join(str(p) for p in sorted(wanted))] if wanted else []
    done = runner(["ps", *args, *quick]) if quick else None
    if done is None or done.returncode != 0:
        done = runner(["ps", *args])
    if done.returncode != 0:
        msg = (done.stderr or "").strip().splitlines()
        raise InvalidArgument(f"ps refused the options {' '.join(args)!r}: "
                              f"{msg[0] if msg else 'exit status ' + str(done.returncode)}",
                              hint="give ps options as for docker top, e.g. -o pid,comm or aux")
    lines = done.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output",
                              hint="include the pid column, e.g. -o pid,comm")
    at = titles.index("PID")
    rows: list[list[str]] = []
    in_container = False
    for line in lines[1:]:
        cells = line.split()
        if len(cells) <= at:
            continue
        if cells[at] == "-":                      # a thread row (ps -T, m) under its process
            if in_container:
                rows.append(_fit(cells, len(titles)))
            continue
        try:
            pid = int(cells[at])
        except ValueError:
            raise InvalidArgument(f"Unexpected pid {cells[at]!r} in ps output",
                                  hint="include the pid column once, e.g. -o pid,comm") from None
        in_container = pid in wanted
        if in_container:
            rows.append(_fit(cells, len(titles)))
    return titles, rows


def _fit(cells: list[str], n: int) -> list[str]:
    """Cells cut to ``n`` columns; the last one keeps the rest (a command with spaces)."""
    if len(cells) <= n:
        return cells + [""] * (n - len(cells))
    return cells[:n - 1] + [" ".join(cells[n - 1:])]


def _run_ps(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as err:
        raise InvalidArgument("ps is not installed, so ps options cannot be used",
                              hint="install procps, or run top without options") from err
