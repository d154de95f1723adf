"""A cgroup on v1 hierarchies (one mount per controller; also the hybrid layout).

File names and semantics follow the kernel's cgroup-v1 documentation:
``cpuacct.usage`` (ns), ``memory.limit_in_bytes``/``memory.memsw.limit_in_bytes``
(memory+swap), ``memory.oom_control``, ``pids.max``, ``blkio.*io_service_bytes*``,
``freezer.state``.
"""
from __future__ import annotations

import os
import time
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Mapping

from ..errors import ResourceError
from .base import UNLIMITED, Cgroup, CgroupStats
from .files import (keyed_value, parse_int, read_bytes, read_flat_keyed, read_int,
                    rmdir_retry, write)
from .keptfiles import Reader


def parse_blkio(data: bytes | None) -> tuple[int, int, bool]:
    """(read, written, any device listed) from a blkio ``io_service_bytes`` file."""
    rd = wr = 0
    devices = False
    if not data:
        return 0, 0, False
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) != 3:
            continue        # "Total N" and blank lines
        devices = True
        if parts[1] == b"Read":
            rd += int(parts[2])
        elif parts[1] == b"Write":
            wr += int(parts[2])
    return rd, wr, devices


@lru_cache(maxsize=16)
def _has_file(hierarchy_root: str, name: str) -> bool:
    # Which control files exist is a property of the kernel, the same in every cgroup.
    return os.path.exists(f"{hierarchy_root}/{name}")


class V1Cgroup(Cgroup):
    """A cgroup at the same path in each v1 controller hierarchy.

    Args:
        mounts: controller -> hierarchy mount point (``CgroupLayout.v1``).
        path: cgroup path relative to the hierarchy roots.
    """

    version = 1

    def __init__(self, mounts: Mapping[str, Path], path: str) -> None:
        super().__init__(path)
        self.mounts = dict(mounts)
        rel = self.path.lstrip("/")
        self.dirs = {c: m / rel for c, m in self.mounts.items()}

    def _dir(self, controller: str) -> Path:
        try:
            return self.dirs[controller]
        except KeyError:
            raise ResourceError(f"the {controller} cgroup controller is not mounted",
                                hint="mount it under /sys/fs/cgroup or use cgroup v2") from None

    def _file(self, controller: str, name: str) -> Path:
        return self._dir(controller) / name

    # -- lifetime ----------------------------------------------------------------
    def exists(self) -> bool:
        d = self.dirs.get("memory") or self.dirs.get("pids") or next(iter(self.dirs.values()), None)
        return d is not None and d.is_dir()

    def create(self) -> None:
        for controller, d in self.dirs.items():
            try:
                if controller == "cpuset":
                    self._create_cpuset(d)
                else:
                    d.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ResourceError(f"cannot create cgroup {d}: {err.strerror}",
                                    hint="run portside as root") from err

    def _create_cpuset(self, d: Path) -> None:
        # A new v1 cpuset starts with empty cpus/mems and refuses tasks until
        # they are filled; copy them down from the nearest parent, level by level.
        root = self.mounts["cpuset"]
        missing = []
        p = d
        while p != root and not p.is_dir():
            missing.append(p)
            p = p.parent
        for level in reversed(missing):
            level.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (read_bytes(level / name) or b"").strip():
                    parent = (read_bytes(level.parent / name) or b"").strip()
                    if parent:
                        write(level / name, parent.decode(), what=name)

    def remove(self) -> None:
        for d in self.dirs.values():
            rmdir_retry(d)

    def procs_file(self) -> Path:
        return self._file("memory" if "memory" in self.dirs else next(iter(self.dirs)), "cgroup.procs")

    def add_process(self, pid: int) -> None:
        for d in self.dirs.values():
            write(d / "cgroup.procs", pid, what=f"cgroup of process {pid}")

    # -- reading ---------------------------------------------------------------
    @cached_property
    def _sample_files(self) -> tuple[str | None, ...]:
        def f(controller: str, name: str) -> str | None:
            d = self.dirs.get(controller)
            return f"{d}/{name}" if d is not None else None
        blkio = None
        if "blkio" in self.dirs:
            # CFQ-era kernels count in io_service_bytes_recursive; others only
            # in the throttle layer's files (Docker falls back the same way).
            blkio = f("blkio", "blkio.io_service_bytes_recursive"
                      if _has_file(str(self.mounts["blkio"]), "blkio.io_service_bytes_recursive")
                      else "blkio.throttle.io_service_bytes_recursive")
        return (f("cpuacct", "cpuacct.usage"), f("memory", "memory.usage_in_bytes"),
                f("memory", "memory.limit_in_bytes"), f("memory", "memory.stat"),
                f("pids", "pids.current"), blkio, f("blkio", "blkio.throttle.io_service_bytes_recursive"))

    def sample(self, read: Reader = read_bytes) -> CgroupStats | None:
        cpu_f, usage_f, limit_f, stat_f, pids_f, blk_f, throttle_f = self._sample_files
        # The first file read doubles as the "still there?" check.
        first = cpu_f or usage_f
        first_data = read(first) if first else b"0"
        if first_data is None:
            return None
        cpu = parse_int(first_data) if cpu_f else None
        usage = parse_int(first_data if first == usage_f else read(usage_f)) if usage_f else None
        limit = parse_int(read(limit_f)) if limit_f else None
        inactive = keyed_value(read(stat_f), b"total_inactive_file") if stat_f else None
        pids = parse_int(read(pids_f)) if pids_f else None
        rd = wr = 0
        accounted = False
        if blk_f:
            rd, wr, accounted = parse_blkio(read(blk_f))
            if not accounted and throttle_f and blk_f != throttle_f:
                rd, wr, accounted = parse_blkio(read(throttle_f))
        return CgroupStats(
            cpu_usage_ns=cpu or 0,
            memory_usage=usage or 0,
            memory_limit=limit if limit is not None and limit < UNLIMITED else None,
            memory_inactive_file=inactive or 0,
            pids_current=pids or 0,
            io_read_bytes=rd,
            io_write_bytes=wr,
            io_accounted=accounted,
        )

    def oom_kill_count(self) -> int | None:
        data = read_bytes(self._file("memory", "memory.oom_control"))
        return None if data is None else keyed_value(data, b"oom_kill") or 0

    def freezer_state(self) -> str:
        data = read_bytes(self._file("freezer", "freezer.state"))
        return data.strip().decode().lower() if data else "thawed"

    def limits(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        memory: dict[str, Any] = {}
        if "memory" in self.dirs:
            m = self.dirs["memory"]
            for key, name in (("limit", "memory.limit_in_bytes"),
                              ("reservation", "memory.soft_limit_in_bytes"),
                              ("swap", "memory.memsw.limit_in_bytes")):
                v = read_int(m / name)
                if v is not None and v < UNLIMITED:
                    memory[key] = v
            if read_flat_keyed(m / "memory.oom_control").get("oom_kill_disable"):
                memory["disableOOMKiller"] = True
        if memory:
            out["memory"] = memory
        cpu: dict[str, Any] = {}
        if "cpu" in self.dirs:
            c = self.dirs["cpu"]
            shares = read_int(c / "cpu.shares")
            quota = read_int(c / "cpu.cfs_quota_us")
            period = read_int(c / "cpu.cfs_period_us")
            if shares is not None and shares != 1024:
                cpu["shares"] = shares
            if quota is not None and quota > 0:
                cpu["quota"] = quota
                cpu["period"] = period
        if "cpuset" in self.dirs:
            for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
                raw = read_bytes(self.dirs["cpuset"] / name)
                if raw and raw.strip():
                    cpu[key] = raw.strip().decode()
        if cpu:
            out["cpu"] = cpu
        if "pids" in self.dirs:
            pmax = read_int(self.dirs["pids"] / "pids.max")
            if pmax is not None:
                out["pids"] = {"limit": pmax}
        return out

    # -- writing ---------------------------------------------------------------
    def apply(self, resources: Mapping[str, Any]) -> list[str]:
        warnings: list[str] = []
        memory = resources.get("memory") or {}
        if memory:
            warnings += self._apply_memory(memory)
        cpu = resources.get("cpu") or {}
        if "shares" in cpu:
            write(self._file("cpu", "cpu.shares"), cpu["shares"], what="CPU shares")
        if "period" in cpu or "quota" in cpu:
            # The period goes first: a quota is checked against the period in force.
            if "period" in cpu:
                write(self._file("cpu", "cpu.cfs_period_us"), cpu["period"], what="CPU period")
            if "quota" in cpu:
                quota = cpu["quota"] if cpu["quota"] > 0 else -1
                write(self._file("cpu", "cpu.cfs_quota_us"), quota, what="CPU quota")
        if "cpus" in cpu:
            write(self._file("cpuset", "cpuset.cpus"), cpu["cpus"], what="cpuset CPUs")
        if "mems" in cpu:
            write(self._file("cpuset", "cpuset.mems"), cpu["mems"], what="cpuset memory nodes")
        pids = resources.get("pids") or {}
        if "limit" in pids:
            limit = pids["limit"]
            write(self._file("pids", "pids.max"), limit if limit > 0 else "max", what="PIDs limit")
        return warnings

    def _apply_memory(self, memory: Mapping[str, Any]) -> list[str]:
        warnings: list[str] = []
        m = self._dir("memory")
        limit = memory.get("limit")
        swap = memory.get("swap")
        memsw = m / "memory.memsw.limit_in_bytes"
        if swap is not None and not memsw.exists():
            warnings.append("the kernel has no swap accounting: the memory+swap limit is not set")
            swap = None
        if limit is not None:
            # The kernel keeps memory <= memory+swap at every step, so raise
            # memsw before a higher memory limit and lower it after a lower one.
            current_memsw = read_int(memsw) if memsw.exists() else None
            new_limit = limit if limit > 0 else -1
            if swap is not None and current_memsw is not None and \
                    (new_limit == -1 or new_limit > current_memsw):
                write(memsw, swap if swap > 0 else -1, what="memory+swap limit")
                swap = None
            elif swap is None and current_memsw is not None and current_memsw < UNLIMITED and \
                    (new_limit == -1 or new_limit > current_memsw):
                raise ResourceError(
                    "the memory limit must not exceed the memory+swap limit already set "
                    f"({current_memsw} bytes)",
                    hint="set --memory-swap at the same time (-1 for unlimited swap)")
            write(m / "memory.limit_in_bytes", new_limit, what="memory limit")
        if swap is not None:
            write(memsw, swap if swap > 0 else -1, what="memory+swap limit")
        if "reservation" in memory:
            r = memory["reservation"]
            write(m / "memory.soft_limit_in_bytes", r if r > 0 else -1, what="memory reservation")
        if "disableOOMKiller" in memory:
            write(m / "memory.oom_control", 1 if memory["disableOOMKiller"] else 0,
                  what="OOM killer switch")
        if "swappiness" in memory:
            write(m / "memory.swappiness", memory["swappiness"], what="swappiness")
        return warnings

    def freeze(self) -> None:
        self._set_freezer("FROZEN")

    def thaw(self) -> None:
        self._set_freezer("THAWED")

    def _set_freezer(self, state: str) -> None:
        f = self._file("freezer", "freezer.state")
        write(f, state, what="freezer state")
        # FREEZING is transient: wait (bounded) until every task has stopped.
        deadline = time.monotonic() + 5
        while (read_bytes(f) or b"").strip().decode() != state:
            if time.monotonic() > deadline:
                raise ResourceError(f"cgroup {self.path} did not reach {state.lower()} in 5 s")
            write(f, state, what="freezer state")
            time.sleep(0.01)

