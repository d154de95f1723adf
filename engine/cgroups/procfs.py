"""The few /proc files stats and top need, parsed without psutil.

Each takes the proc root (``Paths.proc``) so tests feed fake content.
"""
from __future__ import annotations

import os
from pathlib import Path

from .files import read_bytes
from .keptfiles import Reader

# /proc/stat counts CPU time in clock ticks.
CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_net_dev(data: bytes | None, *, skip: tuple[bytes, ...] = (b"lo",)) -> tuple[int, int]:
    """(received, transmitted) bytes summed over interfaces of a ``net/dev`` file.

    Loopback is skipped, as Docker counts only the container's endpoints.
    """
    rx = tx = 0
    if not data:
        return 0, 0
    for line in data.split(b"\n")[2:]:
        name, sep, counters = line.partition(b":")
        if not sep or name.strip() in skip:
            continue
        f = counters.split()
        if len(f) >= 9:
            rx += int(f[0])
            tx += int(f[8])
    return rx, tx


def net_io(proc: Path, pid: int) -> tuple[int, int]:
    """(rx, tx) bytes of the network namespace process ``pid`` is in (0, 0 if gone)."""
    return parse_net_dev(read_bytes(f"{proc}/{pid}/net/dev"))


def parse_system_cpu(data: bytes) -> tuple[int, int]:
    """(host CPU time in ns, online CPUs) from ``/proc/stat``.

    Host time sums user..steal of the ``cpu`` line, as Docker's
    ``system_cpu_usage`` does; CPUs are the ``cpuN`` lines.
    """
    lines = data.split(b"\n")
    total_ticks = sum(int(x) for x in lines[0].split()[1:9])
    cpus = sum(1 for ln in lines[1:] if ln.startswith(b"cpu"))
    return total_ticks * 1_000_000_000 // CLK_TCK, cpus


def system_cpu(proc: Path, read: Reader = read_bytes) -> tuple[int, int]:
    """Host CPU time (ns) and online CPUs, from ``<proc>/stat``."""
    data = read(f"{proc}/stat")
    if not data:
        return 0, os.cpu_count() or 1
    return parse_system_cpu(data)


def mem_total(proc: Path) -> int:
    """Host memory in bytes (``MemTotal`` of ``<proc>/meminfo``)."""
    for line in (read_bytes(f"{proc}/meminfo") or b"").split(b"\n"):
        if line.startswith(b"MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def parse_nspid(status: bytes | None) -> int | None:
    """The innermost pid (the one the process has in its container) from a ``status`` file.

    ``NSpid`` lists the pid in each nested pid namespace, host first; a
    process in the host namespace has one entry.
    """
    if not status:
        return None
    for line in status.split(b"\n"):
        if line.startswith(b"NSpid:"):
            parts = line.split()[1:]
            return int(parts[-1]) if parts else None
    return None


def container_pid(proc: Path, pid: int) -> int | None:
    """The pid that host process ``pid`` has inside its pid namespace (None if gone)."""
    return parse_nspid(read_bytes(f"{proc}/{pid}/status"))


def tty_name(tty_nr: int) -> str:
    """The terminal a ``stat`` tty_nr names, as ``ps`` prints it (``pts/0``, ``tty1``, ``?``).

    Decoded from the device number, not looked up under the host's /dev: a
    container's pty lives in its own devpts, which the host does not show.
    """
    if tty_nr == 0:
        return "?"
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:                       # UNIX98 ptys
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return f"{major},{minor}"


def process_tty(proc: Path, pid: int) -> str:
    """The controlling terminal of ``pid`` (see :func:`tty_name`); ``?`` when none or gone."""
    data = read_bytes(f"{proc}/{pid}/stat")
    if not data:
        return "?"
    fields = data[data.rfind(b")") + 2:].split()      # after "pid (comm) "
    try:
        return tty_name(int(fields[4]))                   # field 7 of stat
    except (IndexError, ValueError):
        return "?"


def parse_task_io(data: bytes | None) -> tuple[int, int]:
    """(read_bytes, write_bytes) of a ``/proc/<pid>/io`` file: storage-level I/O."""
    rd = wr = 0
    for line in (data or b"").split(b"\n"):
        if line.startswith(b"read_bytes:"):
            rd = int(line.split()[1])
        elif line.startswith(b"write_bytes:"):
            wr = int(line.split()[1])
    return rd, wr


def tasks_io(proc: Path, pids: list[int], read: Reader = read_bytes) -> tuple[int, int]:
    """Storage I/O summed over live processes (what exited processes did is lost)."""
    rd = wr = 0
    for pid in pids:
        r, w = parse_task_io(read(f"{proc}/{pid}/io"))
        rd += r
        wr += w
    return rd, wr
