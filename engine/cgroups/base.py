"""What a v1 and a v2 cgroup have in common: the interface and the raw stats."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from .files import read_bytes, write
from .keptfiles import Reader

# A memory limit at or above this is "no limit" (v1 shows 0x7FFFFFFFFFFFF000).
UNLIMITED = 1 << 62


@dataclass(frozen=True)
class CgroupStats:
    """Raw counters of one cgroup, as the kernel reports them.

    ``memory_limit``/``pids_limit`` are None when unlimited. ``memory_inactive_file``
    is what Docker subtracts from usage to show memory "in use".
    """

    cpu_usage_ns: int = 0
    memory_usage: int = 0
    memory_limit: int | None = None
    memory_inactive_file: int = 0
    pids_current: int = 0
    io_read_bytes: int = 0
    io_write_bytes: int = 0
    # False when the kernel keeps no per-device I/O counters for the cgroup:
    # v1 blk-throttle on recent kernels counts only cgroups with a throttle
    # rule, and v2 io.stat lists nothing until the first I/O.
    io_accounted: bool = True

    @property
    def memory_working_set(self) -> int:
        """Usage minus inactive file cache (Docker's ``docker stats`` MEM USAGE)."""
        if 0 < self.memory_inactive_file < self.memory_usage:
            return self.memory_usage - self.memory_inactive_file
        return self.memory_usage


class Cgroup(ABC):
    """One cgroup (a container's), at the same path in every hierarchy used.

    Args:
        path: the cgroup path relative to the hierarchy root, e.g.
            ``/portside/<id>`` (what runc gets as ``linux.cgroupsPath``).
    """

    version: int = 0

    def __init__(self, path: str) -> None:
        self.path = "/" + path.strip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # -- lifetime -----------------------------------------------------------
    @abstractmethod
    def exists(self) -> bool:
        """Whether the cgroup directory exists (the container's cgroup is alive)."""

    @abstractmethod
    def create(self) -> None:
        """Create the cgroup (and its parents) in every hierarchy used.

        Raises:
            ResourceError: the kernel refused.
        """

    @abstractmethod
    def remove(self) -> None:
        """Remove the (empty) cgroup; a cgroup already gone is success.

        Raises:
            ResourceError: processes are still in it.
        """

    @abstractmethod
    def procs_file(self) -> Path:
        """The ``cgroup.procs`` file that lists (and takes) member processes."""

    def add_process(self, pid: int) -> None:
        """Move process ``pid`` into this cgroup (in every hierarchy).

        Raises:
            ResourceError: the kernel refused.
        """
        write(self.procs_file(), pid, what=f"cgroup of process {pid}")

    @cached_property
    def _procs_path(self) -> str:
        return str(self.procs_file())

    def pids(self, read: Reader = read_bytes) -> list[int]:
        """Process ids in the cgroup (host pid namespace), in kernel order."""
        data = read(self._procs_path)
        return [int(x) for x in data.split()] if data else []

    # -- reading ---------------------------------------------------------------
    @abstractmethod
    def sample(self, read: Reader = read_bytes) -> CgroupStats | None:
        """CPU, memory, pids and block I/O counters in one pass, None if the cgroup is gone.

        This is the stats sampler's hot path: about six small reads, no
        directory check.

        Args:
            read: reads one control file by path (the sampler passes one
                that keeps files open between samples).
        """

    def stats(self) -> CgroupStats:
        """Like :meth:`sample`, with zeros for a cgroup that is gone."""
        return self.sample() or CgroupStats()

    def oom_kills(self) -> int:
        """How many processes the kernel OOM killer killed in this cgroup (0 if it is gone)."""
        return self.oom_kill_count() or 0

    @abstractmethod
    def oom_kill_count(self) -> int | None:
        """The kernel's OOM-kill count of this cgroup, None when the cgroup is gone.

        One small file read (``memory.oom_control`` on v1, ``memory.events``
        on v2), cheap enough for every sync of a running container.
        """

    @abstractmethod
    def freezer_state(self) -> str:
        """``thawed``, ``freezing`` or ``frozen``."""

    @abstractmethod
    def limits(self) -> dict[str, Any]:
        """The limits now in force, as an OCI ``linux.resources`` dict (unset keys omitted)."""

    # -- writing ---------------------------------------------------------------
    @abstractmethod
    def apply(self, resources: Mapping[str, Any]) -> list[str]:
        """Write limits given as an OCI ``linux.resources`` dict.

        Only the keys present are written, so ``update`` can change one limit.

        Returns:
            Warnings for settings this cgroup version cannot honour.

        Raises:
            ResourceError: a value was refused (e.g. a memory limit below usage).
        """

    @abstractmethod
    def freeze(self) -> None:
        """Freeze every process in the cgroup (what ``runc pause`` does)."""

    @abstractmethod
    def thaw(self) -> None:
        """Thaw the cgroup (what ``runc resume`` does)."""
