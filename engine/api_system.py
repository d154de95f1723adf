"""The system half of the Engine facade: ``portside info`` and ``system reset``."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .base import EngineBase
from .records import SystemInfo


class SystemAPI(EngineBase):
    """Facts about the host and the engine; part of :class:`engine.Engine`."""

    def system_reset(self) -> ResetReport:
        """Remove everything portside made for this root (``podman system reset``).

        Every container (killed first), image, volume and network, the
        bridges, veths, network namespaces, the nftables table and any
        mount left under the root or run dir; then the root and run
        directories themselves. This engine is closed afterwards.

        Raises:
            RuntimeFailure: something could not be removed (the message says what).
            NetworkError: the kernel refused to delete a network device or rule.
        """
        return _reset(self)

    def info(self) -> SystemInfo:
        """Runtime, versions, cgroup layout, storage driver, root dir and counts (``docker info``).

        Raises:
            RuntimeFailure: no OCI runtime is installed.
        """
        from . import __version__
        from .cgroups.detect import detect_layout
        from .containers.runtime import select

        rt = select(self.db, self.paths)
        counts = {r["status"]: r["n"] for r in self.db.query(
            "SELECT status, COUNT(*) AS n FROM containers GROUP BY status")}
        images = self.db.one("SELECT COUNT(*) AS n FROM images")
        try:
            cgroup = detect_layout(self.paths.cgroup_root, self.paths.proc).describe()
        except Exception as err:  # a host without cgroups still gets its info
            cgroup = f"unknown ({err})"
        return SystemInfo(
            root=str(self.paths.root), run_dir=str(self.paths.run),
            runtime=f"{rt.name} ({rt.path})", runtime_version=rt.version(),
            conmon_version=_conmon_version(), cgroup_version=cgroup, storage_driver="overlay",
            images=int(images["n"]) if images else 0, containers=sum(counts.values()),
            running=counts.get("running", 0), paused=counts.get("paused", 0),
            stopped=sum(n for s, n in counts.items() if s not in ("running", "paused")),
            kernel=os.uname().release, version=__version__)


@dataclass(frozen=True)
class ResetReport:
    """What ``system reset`` removed."""

    containers: tuple[str, ...]
    images: int
    volumes: int
    networks: tuple[str, ...]


def _reset(api: "SystemAPI") -> ResetReport:
    from . import network
    from .errors import EngineError, RuntimeFailure
    removed, errors = [], []
    for c in api.containers(all=True):           # type: ignore[attr-defined]
        try:
            removed.append(api.rm(c.id, force=True))  # type: ignore[attr-defined]
        except EngineError as err:
            errors.append(f"container {c.name}: {err}")
    images = api.db.one("SELECT COUNT(*) AS n FROM images")
    volumes = api.db.one("SELECT COUNT(*) AS n FROM volumes") if api.db.one(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='volumes'") else None
    nets = network.reset(api)
    # Anything still mounted under the root (a crashed run's overlay, a volume) goes too.
    proc = api.paths.proc
    for target in sorted(_mounts_under(api.paths.root, proc) + _mounts_under(api.paths.run, proc),
                         key=len, reverse=True):
        _umount_detach(target)
    api.close()
    # The killed containers' monitors run their exit hook (`container cleanup`),
    # which would make the root again if it started after the removal: wait for them.
    _wait_exit_hooks(api.paths.root, 10.0, proc)
    # Never delete through a mount that would not go: it may be a host directory.
    still = _mounts_under(api.paths.root, proc) + _mounts_under(api.paths.run, proc)
    if still:
        raise RuntimeFailure("system reset removed the containers, but could not unmount "
                             + ", ".join(still) + "; the state directories were kept",
                             hint="unmount them (umount -l PATH) and run `portside system reset` again")
    for d in (api.paths.root, api.paths.run):
        shutil.rmtree(d, ignore_errors=True)
    if errors:
        raise RuntimeFailure("system reset removed the state, but: " + "; ".join(errors),
                             hint="check `ip link`, `mount` and `nft list tables` for leftovers")
    return ResetReport(tuple(removed), int(images["n"]) if images else 0,
                       int(volumes["n"]) if volumes else 0, tuple(nets))


def _wait_exit_hooks(root: Path, timeout: float, proc: Path = Path("/proc")) -> None:
    import time
    want = os.fsencode(str(root))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for pid in os.listdir(proc):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(proc / pid / "cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if want in argv and (b"cleanup" in argv or any(a.endswith(b"conmon") for a in argv)):
                busy = True
                break
        if not busy:
            return
        time.sleep(0.05)


def _mounts_under(root: Path, proc: Path = Path("/proc")) -> list[str]:
    """Mount points at or under ``root`` (mountinfo's octal escapes decoded)."""
    prefix = str(root).rstrip("/") + "/"
    out = []
    try:
        with open(proc / "self" / "mountinfo") as f:
            for line in f:
                mp = _unescape(line.split(" ", 5)[4])
                if mp.startswith(prefix) or mp == str(root):
                    out.append(mp)
    except OSError:
        pass
    return out


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as ``\\NNN`` (octal)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _umount_detach(target: str) -> bool:
    """Detach a mount (lazily, as ``umount -l``); False if the kernel refused."""
    import ctypes
    import ctypes.util
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return libc.umount2(os.fsencode(target), 2) == 0     # MNT_DETACH


def _conmon_version() -> str:
    from .containers.runtime import find_conmon
    try:
        proc = subprocess.run([find_conmon(), "--version"], capture_output=True, timeout=10)
    except Exception:
        return "not installed"
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    return lines[0] if lines else "unknown"


__all__ = ["SystemAPI", "ResetReport"]
