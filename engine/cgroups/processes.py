"""The processes of a container (``top``), from its cgroup and psutil.

Membership comes from the cgroup (every process of the container, even
ones re-parented away from its init); the details from psutil; the pid each
process has inside the container from ``NSpid`` in ``/proc/<pid>/status``.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import psutil

from ..records import ProcessInfo
from .base import Cgroup
from .procfs import container_pid


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
        status=str(status), command=command)


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
