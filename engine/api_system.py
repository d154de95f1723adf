"""The system half of the Engine facade: ``portside info``."""
from __future__ import annotations

import os
import subprocess

from .base import EngineBase
from .records import SystemInfo


class SystemAPI(EngineBase):
    """Facts about the host and the engine; part of :class:`engine.Engine`."""

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


def _conmon_version() -> str:
    from .containers.runtime import find_conmon
    try:
        proc = subprocess.run([find_conmon(), "--version"], capture_output=True, timeout=10)
    except Exception:
        return "not installed"
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    return lines[0] if lines else "unknown"


__all__ = ["SystemAPI"]
