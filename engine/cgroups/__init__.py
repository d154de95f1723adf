"""cgroups: limits, live stats, freezer state and OOM counts, on v1 (and hybrid) and v2.

The layout is detected at run time from ``<proc>/self/mountinfo``
(:mod:`.detect`); :func:`open_cgroup` gives a :class:`.v1.V1Cgroup` or
:class:`.v2.V2Cgroup` with one interface (:class:`.base.Cgroup`). Every root
comes from :class:`engine.paths.Paths`, so tests run on fake trees.

Hook API for the container lifecycle (``engine/containers``)
-------------------------------------------------------------

1. **Cgroup path.** ``cgroup_path(cid)`` -> ``"/portside/<cid>"`` is the
   container's cgroup relative to each hierarchy root. It goes into
   ``config.json`` as ``linux.cgroupsPath`` (runc's cgroupfs driver creates
   ``/sys/fs/cgroup/<controller>/portside/<cid>`` on v1,
   ``/sys/fs/cgroup/portside/<cid>`` on v2). Stats, ``update``, pause checks
   and OOM reporting look there. ``containers.spec.cgroup_path`` must stay
   equal (a unit test checks it); better, it imports this one.

2. **Limits at create.** ::

       limits = ResourceLimits.from_spec(spec)          # Docker's flags on ContainerSpec
       warnings = validate(limits, Host.probe())        # raises InvalidArgument like Docker
       config["linux"]["resources"].update(oci_resources(limits))   # keeps "devices"

   ``validate`` belongs in ``create`` (before anything is made), so
   ``run --memory 4m`` fails with Docker's "Minimum memory limit allowed is
   6MB". ``oci_resources`` covers every resource field of ``ContainerSpec``
   (memory, reservation, swap with Docker's 2x default, cpus or
   period/quota, shares, cpusets, pids, oom-kill-disable). ``update``
   stores its changes in those same ``ContainerSpec`` fields of the stored
   config, so the next start's ``config.json`` carries them. For the CLI,
   ``tui.cli.stats.add_resource_flags(parser)`` adds the flags ``run`` lacks
   and ``resource_spec_fields(args)`` turns them into ``ContainerSpec`` fields.

3. **OOM.** conmon's ``persist/oom`` file is the primary signal. As a
   fallback, call ``oom_killed(paths, cid)`` after the container's process
   exited and *before* ``runc delete`` removes the cgroup (the kernel's own
   ``oom_kill`` count: ``memory.oom_control`` on v1, ``memory.events`` on
   v2). Docker records an ``oom`` event before ``die``; ``die`` carries
   ``exitCode`` (137) — ``docker events --filter event=oom`` relies on it.

4. **Paused.** ``container_cgroup(paths, cid).freezer_state()`` is
   ``frozen`` while ``runc pause`` holds the container; reconciliation can
   use it to repair a stale ``paused``/``running`` status.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ResourceError
from ..paths import Paths
from .base import Cgroup, CgroupStats
from .detect import CgroupLayout, detect_layout

if TYPE_CHECKING:
    from .v1 import V1Cgroup
    from .v2 import V2Cgroup
    from .resources import Host, ResourceLimits, oci_resources, parse_size, validate

_RESOURCES = ("Host", "ResourceLimits", "oci_resources", "parse_size", "validate")
CGROUP_PARENT = "/portside"


def cgroup_path(container_id: str) -> str:
    """The cgroup of a container relative to each hierarchy root: ``/portside/<id>``."""
    return f"{CGROUP_PARENT}/{container_id}"


@lru_cache(maxsize=8)
def _layout(cgroup_root: Path, proc: Path) -> CgroupLayout:
    return detect_layout(cgroup_root, proc)


def layout(paths: Paths) -> CgroupLayout:
    """The host's cgroup layout under ``paths`` (detected once per process and roots)."""
    return _layout(paths.cgroup_root, paths.proc)


def open_cgroup(lay: CgroupLayout, path: str) -> Cgroup:
    """The cgroup at ``path`` in the hierarchy that carries limits on this host.

    Raises:
        ResourceError: no cgroup hierarchy is mounted.
    """
    if lay.version == 1:
        from .v1 import V1Cgroup     # only the host's own version is loaded
        return V1Cgroup(lay.v1, path)
    if lay.version == 2 and lay.unified is not None:
        from .v2 import V2Cgroup
        return V2Cgroup(lay.unified, path)
    raise ResourceError("no cgroup hierarchy is mounted under /sys/fs/cgroup",
                        hint="mount cgroup2 (or the v1 controllers) there")


def container_cgroup(paths: Paths, container_id: str) -> Cgroup:
    """The cgroup of container ``container_id``."""
    return open_cgroup(layout(paths), cgroup_path(container_id))


def oom_killed(paths: Paths, container_id: str) -> bool:
    """Whether the kernel OOM killer has killed a process of the container.

    Call it before ``runc delete`` removes the cgroup; a cgroup already
    gone reads as False.
    """
    cg = container_cgroup(paths, container_id)
    return cg.exists() and cg.oom_kills() > 0


def oom_kill_count(paths: Paths, container_id: str) -> int | None:
    """The kernel's OOM-kill count of the container's cgroup; None if the cgroup is gone.

    One small file read (no directory check), so the engine can compare it
    on every sync of a running container and write an ``oom`` event for
    each rise, as Docker does while the container keeps running.
    """
    try:
        return container_cgroup(paths, container_id).oom_kill_count()
    except ResourceError:
        return None          # no memory controller: the kernel counts nothing


def __getattr__(name: str) -> Any:
    """``V1Cgroup``, ``V2Cgroup`` and the limits API, imported when first asked for (PEP 562)."""
    if name == "V1Cgroup":
        from .v1 import V1Cgroup
        return V1Cgroup
    if name == "V2Cgroup":
        from .v2 import V2Cgroup
        return V2Cgroup
    if name in _RESOURCES:
        # Limits are only needed by create and update; an ``oom`` check of
        # ``ps`` imports the package without them.
        from . import resources
        return getattr(resources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CGROUP_PARENT", "Cgroup", "CgroupLayout", "CgroupStats", "Host", "ResourceLimits",
    "V1Cgroup", "V2Cgroup", "cgroup_path", "container_cgroup", "detect_layout", "layout",
    "oci_resources", "oom_kill_count", "oom_killed", "open_cgroup", "parse_size", "validate",
]
