"""Which cgroup layout the host has: v1, hybrid (v1 + a controller-less v2), or v2.

Read from ``<proc>/self/mountinfo``, keeping only cgroup mounts at or under
the cgroup root. Both roots come from :class:`engine.paths.Paths`, so tests
hand in a fake mountinfo and a fake tree. Mount points in mountinfo are host
paths (``/sys/fs/cgroup/memory``); when the cgroup root has been moved (a
fake tree), a mount point under the default root is re-rooted onto it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import ResourceError

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")

# The v1 controllers portside reads or writes; others (devices, net_cls...)
# are runc's business.
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer")


@dataclass(frozen=True)
class CgroupLayout:
    """Where the cgroup hierarchies of this host are mounted.

    Attributes:
        mode: ``v1`` (only v1 hierarchies), ``hybrid`` (v1 hierarchies plus a
            cgroup2 mount that portside does not use for limits), ``v2``
            (unified only), or ``none``.
        v1: controller name -> mount point of its v1 hierarchy.
        unified: the cgroup2 mount point, if any.
    """

    mode: str
    v1: Mapping[str, Path] = field(default_factory=dict)
    unified: Path | None = None

    @property
    def version(self) -> int:
        """The hierarchy limits and stats go through: 1 or 2 (0 if there are no cgroups)."""
        return {"v1": 1, "hybrid": 1, "v2": 2}.get(self.mode, 0)

    def describe(self) -> str:
        """Short text for ``info``: ``v1 (hybrid)``, ``v2``..."""
        return {"v1": "v1", "hybrid": "v1 (hybrid)", "v2": "v2"}.get(self.mode, "none")


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return (s.replace("\\040", " ").replace("\\011", "\t")
             .replace("\\012", "\n").replace("\\134", "\\"))


def _reroot(mount_point: Path, cgroup_root: Path) -> Path | None:
    if mount_point == cgroup_root or cgroup_root in mount_point.parents:
        return mount_point
    if cgroup_root != DEFAULT_CGROUP_ROOT and (
            mount_point == DEFAULT_CGROUP_ROOT or DEFAULT_CGROUP_ROOT in mount_point.parents):
        return cgroup_root / mount_point.relative_to(DEFAULT_CGROUP_ROOT)
    return None


def parse_mountinfo(text: str, cgroup_root: Path = DEFAULT_CGROUP_ROOT) -> CgroupLayout:
    """Build the layout from mountinfo text.

    Args:
        text: the content of ``/proc/self/mountinfo``.
        cgroup_root: where cgroups are expected (``Paths.cgroup_root``).

    Returns:
        The layout; ``mode`` is ``none`` when no cgroup is mounted there.
    """
    v1: dict[str, Path] = {}
    unified: Path | None = None
    for line in text.splitlines():
        # <id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> <source> <super opts>
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split(" ")
        rfields = right.split(" ")
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype = rfields[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mp = _reroot(Path(_unescape(fields[4])), cgroup_root)
        if mp is None:
            continue
        if fstype == "cgroup2":
            unified = mp
            continue
        for opt in rfields[2].split(","):
            if opt in V1_CONTROLLERS:
                v1.setdefault(opt, mp)
    if v1:
        mode = "hybrid" if unified is not None else "v1"
    elif unified is not None:
        mode = "v2"
    else:
        mode = "none"
    return CgroupLayout(mode=mode, v1=v1, unified=unified)


def detect_layout(cgroup_root: Path = DEFAULT_CGROUP_ROOT,
                  proc: Path = Path("/proc")) -> CgroupLayout:
    """Detect the layout from ``<proc>/self/mountinfo``.

    When mountinfo is missing or names no cgroup under the root (a fake tree
    without a fake mountinfo), the tree itself is probed: a
    ``cgroup.controllers`` file at the root means v2, one in ``unified/`` next
    to v1 controller directories means hybrid, controller directories alone v1.

    Raises:
        ResourceError: the mountinfo file exists but cannot be read.
    """
    mountinfo = proc / "self" / "mountinfo"
    try:
        text = mountinfo.read_text()
    except FileNotFoundError:
        text = ""
    except OSError as err:
        raise ResourceError(f"cannot read {mountinfo}: {err}") from err
    layout = parse_mountinfo(text, cgroup_root)
    if layout.mode != "none":
        return layout
    return probe_tree(cgroup_root)


def probe_tree(cgroup_root: Path) -> CgroupLayout:
    """Guess the layout from the files in the tree (no mountinfo needed)."""
    if (cgroup_root / "cgroup.controllers").exists():
        return CgroupLayout(mode="v2", unified=cgroup_root)
    v1 = {c: cgroup_root / c for c in V1_CONTROLLERS if (cgroup_root / c / "cgroup.procs").exists()}
    unified = cgroup_root / "unified"
    has_unified = (unified / "cgroup.controllers").exists()
    if v1:
        return CgroupLayout(mode="hybrid" if has_unified else "v1", v1=v1,
                            unified=unified if has_unified else None)
    if has_unified:
        return CgroupLayout(mode="v2", unified=unified)
    return CgroupLayout(mode="none")
