"""Resource limits: Docker's flags -> checked values -> OCI ``linux.resources``.

The checks and their messages follow Docker's daemon (a memory limit below
6 MB is refused, ``--cpus`` is bounded by the host's CPUs, a swap limit needs
a memory limit, ...) so scripts written for Docker fail the same way.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..errors import InvalidArgument

MIN_MEMORY = 6 * 1024 * 1024          # Docker's linuxMinMemory
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
MIN_CFS_PERIOD, MAX_CFS_PERIOD = 1000, 1_000_000
MIN_CFS_QUOTA = 1000
DEFAULT_CFS_PERIOD = 100_000          # what --cpus uses, like Docker

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(value: str | int) -> int:
    """Bytes from Docker's size syntax: ``512m``, ``1.5g``, ``100kb``, ``4096`` (binary units).

    ``-1`` is passed through (it means "unlimited" for ``--memory-swap``).

    Raises:
        InvalidArgument: not a size.
    """
    if isinstance(value, int):
        return value
    text = value.strip()
    if text == "-1":
        return -1
    m = _SIZE_RE.match(text)
    if not m:
        raise InvalidArgument(f"invalid size: {value!r}",
                              hint="use a number with an optional unit b, k, m, g, t (e.g. 512m)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def parse_cpuset(value: str) -> set[int]:
    """The CPUs (or memory nodes) of a cpuset list such as ``0-2,4``.

    Raises:
        InvalidArgument: malformed list.
    """
    out: set[int] = set()
    text = value.strip()
    if not text:
        return out
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise InvalidArgument(f"invalid cpuset {value!r}",
                                  hint="use a list like 0-2,4") from None
        if a < 0 or b < a:
            raise InvalidArgument(f"invalid cpuset {value!r}", hint="use a list like 0-2,4")
        out.update(range(a, b + 1))
    return out


@dataclass(frozen=True)
class Host:
    """What the host offers, for checking limits against it."""

    cpus: int                    # CPUs this process may use (Docker's NCPU)
    cpuset_cpus: frozenset[int]  # CPUs a cpuset may name
    cpuset_mems: frozenset[int]  # memory nodes a cpuset may name
    swap_accounting: bool = True

    @classmethod
    def probe(cls, sys_root: Path = Path("/sys")) -> "Host":
        """Read the host's CPUs and memory nodes."""
        cpus = frozenset(os.sched_getaffinity(0))
        try:
            mems = frozenset(parse_cpuset((sys_root / "devices/system/node/online").read_text()))
        except (OSError, InvalidArgument):
            mems = frozenset({0})
        return cls(cpus=len(cpus), cpuset_cpus=cpus, cpuset_mems=mems or frozenset({0}))


@dataclass(frozen=True)
class ResourceLimits:
    """Limits of one container, as the user gave them. None = not set.

    ``memory_swap`` is memory plus swap, like Docker's ``--memory-swap``
    (-1 = unlimited swap). ``pids_limit`` <= 0 and ``memory`` 0 mean unlimited.
    """

    memory: int | None = None
    memory_reservation: int | None = None
    memory_swap: int | None = None
    cpus: float | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    oom_kill_disable: bool | None = None

    @classmethod
    def from_spec(cls, spec: Any) -> "ResourceLimits":
        """The limits of a ``ContainerSpec`` (fields it lacks count as unset)."""
        return cls(**{f.name: getattr(spec, f.name, None) for f in fields(cls)})

    @classmethod
    def from_options(cls, **options: Any) -> "ResourceLimits":
        """Limits from keyword options as ``update``/the CLI give them.

        Sizes may be strings (``512m``); ``cpus`` may be a string.

        Raises:
            InvalidArgument: an unknown option or a malformed value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidArgument(f"unknown resource option(s): {', '.join(unknown)}",
                                  hint="use " + ", ".join(sorted(known)))
        values: dict[str, Any] = {}
        for key, v in options.items():
            if v is None:
                continue
            if key in ("memory", "memory_reservation", "memory_swap"):
                v = parse_size(v)
            elif key == "cpus":
                try:
                    v = float(v)
                except ValueError:
                    raise InvalidArgument(f"invalid --cpus {v!r}", hint="use a number like 0.5") from None
            elif key in ("cpu_period", "cpu_quota", "cpu_shares", "pids_limit"):
                v = int(v)
            elif key == "oom_kill_disable":
                v = bool(v)
            values[key] = v
        return cls(**values)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "ResourceLimits":
        """Inverse of :meth:`to_json` (unknown keys ignored, for forward compatibility)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def to_json(self) -> dict[str, Any]:
        """The set limits as a JSON-able dict (for the container's stored config)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def is_empty(self) -> bool:
        return not self.to_json()

    def clamped(self) -> "ResourceLimits":
        """These limits with the values :func:`validate` warns about adjusted as the kernel
        will take them (Docker stores the adjusted ``CPUShares`` too).

        Storing these keeps a warning from being repeated on every later ``update``.
        """
        shares = self.cpu_shares
        if shares is None or shares <= 0:
            return self
        return replace(self, cpu_shares=min(max(shares, MIN_CPU_SHARES), MAX_CPU_SHARES))

    def merged(self, update: "ResourceLimits") -> "ResourceLimits":
        """These limits with every limit set in ``update`` replaced.

        Raises:
            InvalidArgument: the result would be inconsistent in the way
                Docker's ``update`` refuses (a memory limit above the
                memory+swap limit already set, ``--cpus`` next to a period).
        """
        changes = update.to_json()
        if update.memory and update.memory_swap is None and self.memory_swap and \
                self.memory_swap > 0 and update.memory > self.memory_swap:
            raise InvalidArgument(
                "Memory limit should be smaller than already set memoryswap limit, "
                "update the memoryswap at the same time")
        # --cpus and --cpu-period/--cpu-quota replace each other.
        if update.cpus is not None:
            changes.setdefault("cpu_period", None)
            changes.setdefault("cpu_quota", None)
        elif update.cpu_period is not None or update.cpu_quota is not None:
            changes["cpus"] = None
        return replace(self, **changes)


def validate(limits: ResourceLimits, host: Host) -> list[str]:
    """Check limits against Docker's rules and the host.

    Returns:
        Warnings (settings accepted but adjusted or risky), Docker's wording.

    Raises:
        InvalidArgument: a limit Docker would refuse, with Docker's message.
    """
    warnings: list[str] = []
    mem = limits.memory
    if mem is not None and mem < 0:
        raise InvalidArgument(f"invalid memory limit {mem}", hint="use a positive size such as 512m")
    if mem and mem < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = limits.memory_swap
    if swap is not None and swap not in (-1, 0):
        if not mem:
            raise InvalidArgument("You should always set the Memory limit when using "
                                  "Memoryswap limit, see usage")
        if swap < mem:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory "
                                  "limit, see usage")
    if swap is not None and swap < -1:
        raise InvalidArgument(f"invalid memory-swap {swap}", hint="use -1 for unlimited swap")
    if swap and not host.swap_accounting:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup "
                        "is not mounted. Memory limited without swap.")
    res = limits.memory_reservation
    if res is not None:
        if res < 0:
            raise InvalidArgument(f"invalid memory reservation {res}")
        if res and res < MIN_MEMORY:
            raise InvalidArgument("Minimum memory reservation allowed is 6MB")
        if mem and res and mem < res:
            raise InvalidArgument("Minimum memory limit can not be less than memory "
                                  "reservation limit, see usage")
    if limits.oom_kill_disable and not mem:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, "
                        "this can result in the system running out of resources.")

    if limits.cpus is not None:
        if limits.cpu_period or limits.cpu_quota:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot "
                                  "both be set")
        if limits.cpus < 0 or (limits.cpus and (limits.cpus < 0.01 or limits.cpus > host.cpus)):
            raise InvalidArgument(f"Range of CPUs is from 0.01 to {host.cpus:.2f}, as there are "
                                  f"only {host.cpus} CPUs available")
    if limits.cpu_period is not None and limits.cpu_period != 0 and \
            not MIN_CFS_PERIOD <= limits.cpu_period <= MAX_CFS_PERIOD:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if limits.cpu_quota is not None and 0 < limits.cpu_quota < MIN_CFS_QUOTA:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if limits.cpu_shares is not None:
        if limits.cpu_shares < 0:
            raise InvalidArgument(f"invalid CPU shares {limits.cpu_shares}",
                                  hint="use a relative weight such as 512 (default 1024)")
        if 0 < limits.cpu_shares < MIN_CPU_SHARES:
            warnings.append(f"Changing requested CPUShares of {limits.cpu_shares} to minimum "
                            f"allowed of {MIN_CPU_SHARES}")
        elif limits.cpu_shares > MAX_CPU_SHARES:
            warnings.append(f"Changing requested CPUShares of {limits.cpu_shares} to maximum "
                            f"allowed of {MAX_CPU_SHARES}")
    for what, value, available in (("CPUs", limits.cpuset_cpus, host.cpuset_cpus),
                                   ("memory nodes", limits.cpuset_mems, host.cpuset_mems)):
        if value:
            wanted = parse_cpuset(value)
            if not wanted <= available:
                raise InvalidArgument(f"Requested {what} are not available - requested {value}, "
                                      f"available: {format_cpuset(available)}")
    return warnings


def format_cpuset(values: set[int] | frozenset[int]) -> str:
    """``{0,1,2,4}`` -> ``0-2,4``."""
    out: list[str] = []
    run: list[int] = []
    for v in sorted(values):
        if run and v == run[-1] + 1:
            run.append(v)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [v]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def oci_resources(limits: ResourceLimits, *, creating: bool = True) -> dict[str, Any]:
    """The OCI runtime-spec ``linux.resources`` object for these limits.

    Args:
        limits: validated limits (see :func:`validate`).
        creating: for a new container, an unset ``--memory-swap`` with a set
            ``--memory`` allows as much swap as memory (Docker's default:
            memory+swap = 2 x memory). For ``update``, only what was given.

    Returns:
        A dict with ``memory``, ``cpu`` and ``pids`` keys, only those set.
        "Unlimited" is -1, as runc reads it (0 would mean "leave unchanged").
    """
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if limits.memory is not None:
        memory["limit"] = limits.memory if limits.memory > 0 else -1
    if limits.memory_reservation is not None:
        memory["reservation"] = limits.memory_reservation if limits.memory_reservation > 0 else -1
    swap = limits.memory_swap
    if swap is None and creating and limits.memory and limits.memory > 0:
        swap = 2 * limits.memory
    if swap is not None and swap != 0:
        memory["swap"] = swap
    if limits.oom_kill_disable is not None:
        memory["disableOOMKiller"] = bool(limits.oom_kill_disable)
    if memory:
        out["memory"] = memory

    cpu: dict[str, Any] = {}
    if limits.cpu_shares is not None and limits.cpu_shares > 0:
        cpu["shares"] = min(max(limits.cpu_shares, MIN_CPU_SHARES), MAX_CPU_SHARES)
    if limits.cpus is not None:
        if limits.cpus > 0:
            cpu["period"] = DEFAULT_CFS_PERIOD
            cpu["quota"] = round(limits.cpus * DEFAULT_CFS_PERIOD)
        else:
            cpu["quota"] = -1
    else:
        if limits.cpu_period:
            cpu["period"] = limits.cpu_period
        if limits.cpu_quota is not None:
            cpu["quota"] = limits.cpu_quota if limits.cpu_quota > 0 else -1
    if limits.cpuset_cpus:
        cpu["cpus"] = limits.cpuset_cpus
    if limits.cpuset_mems:
        cpu["mems"] = limits.cpuset_mems
    if cpu:
        out["cpu"] = cpu

    if limits.pids_limit is not None:
        out["pids"] = {"limit": limits.pids_limit if limits.pids_limit > 0 else -1}
    return out
