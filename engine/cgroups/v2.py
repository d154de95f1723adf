"""A cgroup on the unified (v2) hierarchy.

File names follow the kernel's cgroup-v2 documentation: ``cpu.stat``
(usage_usec), ``memory.current``/``memory.max``/``memory.swap.max`` (swap
only, unlike v1's memory+swap), ``memory.events`` (oom_kill), ``pids.max``,
``io.stat``, ``cgroup.freeze``/``cgroup.events``.
"""
from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from ..errors import ResourceError
from .base import Cgroup, CgroupStats
from .files import (keyed_value, parse_int, read_bytes, read_flat_keyed, read_int,
                    rmdir_retry, write)
from .keptfiles import Reader

# Controllers a container cgroup needs delegated from its parents.
WANTED_CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids")


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], the mapping runc and crun use."""
    if shares <= 0:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight: int) -> int:
    """The inverse of :func:`shares_to_weight` (rounded), for showing limits."""
    return 2 + round((weight - 1) * 262142 / 9999)


def parse_io_stat(data: bytes | None) -> tuple[int, int, bool]:
    """(read, written, any device listed) from ``io.stat``."""
    rd = wr = 0
    if not data or not data.strip():
        return 0, 0, False
    for line in data.split(b"\n"):
        for item in line.split()[1:]:
            key, _, value = item.partition(b"=")
            if key == b"rbytes":
                rd += int(value)
            elif key == b"wbytes":
                wr += int(value)
    return rd, wr, True


class V2Cgroup(Cgroup):
    """A cgroup under the unified mount.

    Args:
        mount: the cgroup2 mount point (``CgroupLayout.unified``).
        path: cgroup path relative to it.
    """

    version = 2

    def __init__(self, mount: Path, path: str) -> None:
        super().__init__(path)
        self.mount = mount
        self.dir = mount / self.path.lstrip("/")

    # -- lifetime ----------------------------------------------------------------
    def exists(self) -> bool:
        return self.dir.is_dir()

    def create(self) -> None:
        # Each ancestor must delegate the controllers to its children
        # (cgroup.subtree_control), from the root down.
        try:
            level = self.mount
            for part in self.dir.relative_to(self.mount).parts:
                available = (read_bytes(level / "cgroup.controllers") or b"").decode().split()
                enabled = (read_bytes(level / "cgroup.subtree_control") or b"").decode().split()
                missing = [c for c in WANTED_CONTROLLERS if c in available and c not in enabled]
                if missing:
                    write(level / "cgroup.subtree_control", " ".join("+" + c for c in missing),
                          what="delegated controllers")
                level = level / part
                level.mkdir(exist_ok=True)
        except OSError as err:
            raise ResourceError(f"cannot create cgroup {self.dir}: {err.strerror}",
                                hint="run portside as root") from err

    def remove(self) -> None:
        rmdir_retry(self.dir)

    def procs_file(self) -> Path:
        return self.dir / "cgroup.procs"

    # -- reading ---------------------------------------------------------------
    @cached_property
    def _sample_files(self) -> tuple[str, ...]:
        d = str(self.dir)
        return tuple(f"{d}/{n}" for n in ("cpu.stat", "memory.current", "memory.max",
                                          "memory.stat", "pids.current", "io.stat"))

    def sample(self, read: Reader = read_bytes) -> CgroupStats | None:
        cpu_f, usage_f, limit_f, stat_f, pids_f, io_f = self._sample_files
        cpu_stat = read(cpu_f)
        if cpu_stat is None:
            return None
        rd, wr, accounted = parse_io_stat(read(io_f))
        return CgroupStats(
            cpu_usage_ns=(keyed_value(cpu_stat, b"usage_usec") or 0) * 1000,
            memory_usage=parse_int(read(usage_f)) or 0,
            memory_limit=parse_int(read(limit_f)),
            memory_inactive_file=keyed_value(read(stat_f), b"inactive_file") or 0,
            pids_current=parse_int(read(pids_f)) or 0,
            io_read_bytes=rd,
            io_write_bytes=wr,
            io_accounted=accounted,
        )

    def oom_kill_count(self) -> int | None:
        data = read_bytes(self.dir / "memory.events")
        return None if data is None else keyed_value(data, b"oom_kill") or 0

    def freezer_state(self) -> str:
        wanted = read_int(self.dir / "cgroup.freeze") or 0
        frozen = read_flat_keyed(self.dir / "cgroup.events").get("frozen", 0)
        if frozen:
            return "frozen"
        return "freezing" if wanted else "thawed"

    def limits(self) -> dict[str, Any]:
        d = self.dir
        out: dict[str, Any] = {}
        memory: dict[str, Any] = {}
        limit = read_int(d / "memory.max")
        if limit is not None:
            memory["limit"] = limit
        low = read_int(d / "memory.low")
        if low:
            memory["reservation"] = low
        swap = read_int(d / "memory.swap.max")
        if swap is not None and limit is not None:
            memory["swap"] = limit + swap
        if memory:
            out["memory"] = memory
        cpu: dict[str, Any] = {}
        weight = read_int(d / "cpu.weight")
        if weight is not None and weight != 100:
            cpu["shares"] = weight_to_shares(weight)
        parts = (read_bytes(d / "cpu.max") or b"").decode().split()
        if len(parts) == 2 and parts[0] != "max":
            cpu["quota"] = int(parts[0])
            cpu["period"] = int(parts[1])
        for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            v = read_bytes(d / name)
            if v and v.strip():
                cpu[key] = v.strip().decode()
        if cpu:
            out["cpu"] = cpu
        pmax = read_int(d / "pids.max")
        if pmax is not None:
            out["pids"] = {"limit": pmax}
        return out

    # -- writing ---------------------------------------------------------------
    def apply(self, resources: Mapping[str, Any]) -> list[str]:
        warnings: list[str] = []
        d = self.dir
        memory = resources.get("memory") or {}
        limit = memory.get("limit")
        if "swap" in memory:
            swap = memory["swap"]
            mem_for_swap = limit if limit is not None else read_int(d / "memory.max")
            if swap == -1 or swap is None:
                swap_max: str | int = "max"
            elif not mem_for_swap or mem_for_swap < 0:
                raise ResourceError("cannot set a swap limit without a memory limit",
                                    hint="set --memory too")
            elif swap < mem_for_swap:
                raise ResourceError("the memory+swap limit must not be lower than the memory limit",
                                    hint="set --memory-swap to at least --memory")
            else:
                swap_max = swap - mem_for_swap
            # Lower swap first so memory+swap stays within bounds the whole time.
            write(d / "memory.swap.max", swap_max, what="swap limit")
        if limit is not None:
            write(d / "memory.max", limit if limit > 0 else "max", what="memory limit")
        if "reservation" in memory:
            r = memory["reservation"]
            write(d / "memory.low", r if r > 0 else 0, what="memory reservation")
        if memory.get("disableOOMKiller"):
            warnings.append("cgroup v2 cannot disable the OOM killer; --oom-kill-disable is ignored")
        cpu = resources.get("cpu") or {}
        if "shares" in cpu:
            write(d / "cpu.weight", shares_to_weight(cpu["shares"]) or 100, what="CPU shares")
        if "quota" in cpu or "period" in cpu:
            current = (read_bytes(d / "cpu.max") or b"max 100000").decode().split()
            quota = cpu.get("quota", None)
            period = cpu.get("period") or int(current[-1])
            q = current[0] if quota is None else ("max" if quota <= 0 else str(quota))
            write(d / "cpu.max", f"{q} {period}", what="CPU quota")
        if "cpus" in cpu:
            write(d / "cpuset.cpus", cpu["cpus"], what="cpuset CPUs")
        if "mems" in cpu:
            write(d / "cpuset.mems", cpu["mems"], what="cpuset memory nodes")
        pids = resources.get("pids") or {}
        if "limit" in pids:
            lim = pids["limit"]
            write(d / "pids.max", lim if lim > 0 else "max", what="PIDs limit")
        return warnings

    def freeze(self) -> None:
        self._set_frozen(1)

    def thaw(self) -> None:
        self._set_frozen(0)

    def _set_frozen(self, value: int) -> None:
        write(self.dir / "cgroup.freeze", value, what="freezer state")
        deadline = time.monotonic() + 5
        while read_flat_keyed(self.dir / "cgroup.events").get("frozen", value) != value:
            if time.monotonic() > deadline:
                raise ResourceError(f"cgroup {self.path} did not {'freeze' if value else 'thaw'} in 5 s")
            time.sleep(0.01)


