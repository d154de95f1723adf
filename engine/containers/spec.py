"""Building the OCI ``config.json`` for a container, with Docker's defaults.

Everything here is a pure function of its inputs (the stored container
config, facts about the host passed in as :class:`HostFacts`, and the
resolved user and mount sources), so unit tests check the generated config
without root. The defaults are moby's (``daemon/pkg/oci/defaults.go``):
14 capabilities in the bounding/permitted/effective sets with an empty
inheritable set, masked and read-only /proc and /sys paths, a private /dev,
a deny-all device cgroup with the standard nodes allowed, and the default
seccomp profile.
"""
from __future__ import annotations

import os
import resource
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..errors import InvalidArgument
from ..records import ContainerSpec, ImageConfig, Mount
from . import caps as capmod
from .users import ExecUser

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHM_SIZE = 64 << 20

MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

# Device cgroup: deny everything, then allow what a container needs. mknod
# of any node is allowed (using one is what the rules below restrict).
DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    # fuse stays denied even for mknod; before the wildcard "m" rules, since
    # cgroup v1 cannot punch a hole into a wildcard rule afterwards.
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},    # null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},    # zero
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},    # full
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},    # random
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},    # urandom
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},    # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},    # console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},    # ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},              # pts/*
)

# Asked-for limits, capped to what the host allows (Podman's defaults; Docker
# inherits dockerd's, which systemd usually sets to these).
DEFAULT_RLIMITS: Mapping[str, int] = {"RLIMIT_NOFILE": 1048576, "RLIMIT_NPROC": 4194304}


def _host_hard_limit(name: str) -> int:
    _soft, hard = resource.getrlimit(getattr(resource, name))
    return hard if hard != resource.RLIM_INFINITY else (1 << 63) - 1


@dataclass(frozen=True)
class HostFacts:
    """What the config depends on from the host; tests pass fakes."""

    capabilities: tuple[str, ...] = capmod.CAPABILITY_NAMES
    hard_limit: Callable[[str], int] = _host_hard_limit
    sys_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")

    @classmethod
    def probe(cls, proc: Path = Path("/proc")) -> "HostFacts":
        return cls(capabilities=capmod.host_capabilities(proc))


@dataclass(frozen=True)
class EtcFiles:
    """The per-container files bind-mounted over the image's."""

    hosts: Path
    hostname: Path
    resolv_conf: Path


@dataclass(frozen=True)
class Security:
    """``--security-opt`` values, parsed."""

    no_new_privileges: bool = False
    seccomp: str = "default"          # "default" | "unconfined" | a profile path
    extra: tuple[str, ...] = field(default=())


# -- image config + flags -> process ------------------------------------------

def resolve_command(spec: ContainerSpec, image: ImageConfig) -> tuple[str, ...]:
    """Entrypoint + cmd by Docker's rules.

    ``--entrypoint`` (even an empty one) replaces the image entrypoint and
    drops the image's Cmd; a command given after the image replaces the
    image's Cmd and keeps its entrypoint.

    Raises:
        InvalidArgument: nothing to run.
    """
    if spec.entrypoint is not None:
        entry = tuple(spec.entrypoint)
        cmd = tuple(spec.command or ())
    else:
        entry = tuple(image.entrypoint or ())
        cmd = tuple(spec.command) if spec.command else tuple(image.cmd or ())
    argv = entry + cmd
    if not argv or not argv[0]:
        raise InvalidArgument("no command specified",
                              hint="give a command after the image, or use an image with CMD or ENTRYPOINT")
    return argv


def merge_env(image_env: Iterable[str], user_env: Iterable[str],
              host_env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Image Env, then ``-e`` values, the later winning per key.

    ``-e KEY`` (no ``=``) takes the value from ``host_env``, and is dropped
    when the host has no such variable, as Docker does. Order is kept: a
    variable stays where it first appeared.

    Raises:
        InvalidArgument: an empty variable name.
    """
    host = os.environ if host_env is None else host_env
    merged: dict[str, str] = {}
    for item in image_env:
        k, _, v = item.partition("=")
        if k:
            merged[k] = v
    for item in user_env:
        k, sep, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid environment variable {item!r}", hint="use KEY=VALUE")
        if not sep:
            if k not in host:
                continue
            v = host[k]
        merged[k] = v
    return tuple(f"{k}={v}" for k, v in merged.items())


def parse_env_file(text: str) -> list[str]:
    """Lines of an ``--env-file``: ``KEY=VALUE`` or ``KEY``; ``#`` comments and blanks skipped."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        k, sep, v = line.lstrip().partition("=")
        if not k.strip():
            raise InvalidArgument(f"invalid line in env file: {line!r}", hint="use KEY=VALUE")
        out.append(f"{k.strip()}{sep}{v}" if sep else k.strip())
    return out


def parse_security_opts(opts: Iterable[str]) -> Security:
    """Parse ``--security-opt`` values.

    Raises:
        InvalidArgument: an option portside does not support.
    """
    nnp = False
    seccomp = "default"
    extra: list[str] = []
    for o in opts:
        key, sep, value = o.partition("=" if "=" in o else ":")
        if key == "no-new-privileges":
            nnp = (value or "true").lower() in ("true", "1", "yes") if sep else True
        elif key == "seccomp" and sep:
            seccomp = value
        elif key in ("apparmor", "label") and sep:
            extra.append(o)          # no AppArmor/SELinux here; accepted like Docker without them
        else:
            raise InvalidArgument(f"unsupported --security-opt {o!r}",
                                  hint="use no-new-privileges, seccomp=unconfined or seccomp=<profile.json>")
    return Security(nnp, seccomp, tuple(extra))


def parse_restart(policy: str) -> tuple[str, int]:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:N]`` -> (name, max retries).

    Raises:
        InvalidArgument: an unknown policy or bad count.
    """
    name, sep, count = (policy or "no").partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy {policy!r}",
                              hint="use no, always, unless-stopped or on-failure[:N]")
    if sep:
        if name != "on-failure":
            raise InvalidArgument(f"invalid restart policy {policy!r}: "
                                  "only on-failure takes a retry count")
        if not count.isdigit():
            raise InvalidArgument(f"invalid restart count {count!r}", hint="use on-failure:N, N >= 0")
        return name, int(count)
    return name, 0


# -- the config ---------------------------------------------------------------

def cgroup_path(cid: str) -> str:
    """The container's cgroup, relative to each hierarchy's root (cgroupfs layout).

    One definition for the runtime config, stats, ``top`` and ``update``:
    :func:`engine.cgroups.cgroup_path`.
    """
    from ..cgroups import cgroup_path as path
    return path(cid)


def rlimits(requested: Mapping[str, int], hard_limit: Callable[[str], int]) -> list[dict[str, Any]]:
    """OCI rlimits, each capped to the host's hard limit.

    Without CAP_SYS_RESOURCE a process cannot raise a hard limit, and the
    runtime would fail to start the container; asking for at most what the
    host has always works.
    """
    out = []
    for name, want in requested.items():
        limit = min(want, hard_limit(name))
        out.append({"type": name, "hard": limit, "soft": limit})
    return out


def masked_paths(sys_root: Path) -> list[str]:
    """Docker's masked paths plus every per-CPU ``thermal_throttle`` the host has."""
    paths = list(MASKED_PATHS)
    cpu_dir = sys_root / "devices/system/cpu"
    try:
        cpus = sorted(os.listdir(cpu_dir))
    except OSError:
        cpus = []
    for name in cpus:
        if name.startswith("cpu") and name[3:].isdigit() and (cpu_dir / name / "thermal_throttle").exists():
            paths.append(f"/sys/devices/system/cpu/{name}/thermal_throttle")
    return paths


def default_mounts(*, read_only: bool, privileged: bool, shm_size: int = SHM_SIZE) -> list[dict[str, Any]]:
    """/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup."""
    sys_ro = [] if privileged else ["ro"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev"] + sys_ro},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime"] + (["rw"] if privileged else ["ro"])},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]
    return mounts


def user_mount(m: Mount, source: str) -> dict[str, Any]:
    """One ``-v``/``--mount``/``--tmpfs`` mount as an OCI mount.

    Args:
        m: the parsed mount.
        source: the host path (for volumes: the volume's data dir).
    """
    ro = ["ro"] if m.read_only else ["rw"]
    if m.type == "tmpfs":
        opts = ["nosuid", "nodev", "noexec"]
        extra = [o for o in m.options]
        if not any(o.startswith("mode=") for o in extra):
            extra.append("mode=1777")
        for o in ("exec", "suid", "dev"):
            if o in extra:
                opts.remove("no" + o)
        return {"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                "options": opts + [o for o in extra if o not in ("exec", "suid", "dev")] + ro}
    propagation = [o for o in m.options if o in ("private", "rprivate", "shared", "rshared",
                                                 "slave", "rslave")] or ["rprivate"]
    return {"destination": m.destination, "type": "bind", "source": source,
            "options": ["rbind"] + propagation + ro}


def etc_mounts(files: EtcFiles, *, read_only: bool, user_destinations: Iterable[str]) -> list[dict[str, Any]]:
    """Bind mounts of the engine-written /etc/hosts, /etc/hostname, /etc/resolv.conf."""
    skip = set(user_destinations)
    out = []
    for dest, src in (("/etc/resolv.conf", files.resolv_conf), ("/etc/hostname", files.hostname),
                      ("/etc/hosts", files.hosts)):
        if dest in skip:
            continue
        out.append({"destination": dest, "type": "bind", "source": str(src),
                    "options": ["rbind", "rprivate", "ro" if read_only else "rw"]})
    return out


def host_devices(dev_root: Path) -> list[dict[str, Any]]:
    """Every char/block device of the host, for ``--privileged``."""
    out = []
    skip_dirs = {"pts", "shm", "mqueue", "fd"}
    for dirpath, dirnames, filenames in os.walk(dev_root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == dev_root and d in skip_dirs)]
        for fn in filenames:
            p = Path(dirpath) / fn
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            rel = "/dev/" + str(p.relative_to(dev_root))
            if rel in ("/dev/console", "/dev/ptmx", "/dev/tty"):
                continue        # the runtime sets these up itself
            out.append({"path": rel, "type": kind, "major": os.major(st.st_rdev),
                        "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
                        "uid": st.st_uid, "gid": st.st_gid})
    return out


def process_env(env: Iterable[str], *, hostname: str, home: str, tty: bool) -> list[str]:
    """The env the process gets: PATH if missing, HOSTNAME, HOME, TERM with a tty."""
    out = list(env)
    keys = {e.partition("=")[0] for e in out}
    if "PATH" not in keys:
        out.insert(0, DEFAULT_PATH)
    if "HOSTNAME" not in keys:
        out.append(f"HOSTNAME={hostname}")
    if "HOME" not in keys:
        out.append(f"HOME={home}")
    if tty and "TERM" not in keys:
        out.append("TERM=xterm")
    return out


def build_config(*, cid: str, spec: ContainerSpec, argv: Iterable[str], env: Iterable[str],
                 working_dir: str, hostname: str, rootfs: Path, user: ExecUser,
                 etc_files: EtcFiles | None, mount_sources: Mapping[str, str],
                 seccomp_profile: Callable[[set[str]], dict[str, Any]] | None,
                 host: HostFacts = HostFacts(), netns_path: str | None = None) -> dict[str, Any]:
    """The OCI runtime config for one start of a container.

    Args:
        cid: the container id (names the cgroup).
        spec: what the user asked for.
        argv: the command (already resolved from image + flags).
        env: the merged environment (image + ``-e``).
        working_dir: absolute directory to start in ("" means /).
        hostname: the container's hostname.
        rootfs: the mounted root filesystem (overlay ``merged`` dir).
        user: the resolved user.
        etc_files: per-container hosts/hostname/resolv.conf (None: keep the image's).
        mount_sources: destination -> host path for each bind/volume mount in ``spec.mounts``.
        seccomp_profile: builds the default profile for a capability set.
        host: facts about the host (capabilities, hard rlimits, /sys).
        netns_path: join this network namespace instead of creating one
            (ignored for ``--network host``).

    Returns:
        The config as a JSON-ready dict.

    Raises:
        InvalidArgument: an unknown capability, security option, or network mode.
    """
    security = parse_security_opts(spec.security_opt)
    cap_set = capmod.effective_set(spec.cap_add, spec.cap_drop, privileged=spec.privileged,
                                   all_caps=host.capabilities)
    cwd = working_dir or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory {cwd!r} is not an absolute path",
                              hint="use -w /some/dir")

    namespaces: list[dict[str, str]] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                                        {"type": "mount"}]
    if spec.network == "host":
        pass                                   # share the host's network namespace
    elif netns_path is not None:
        namespaces.append({"type": "network", "path": netns_path})
    elif spec.network == "none":
        namespaces.append({"type": "network"})  # a new one with only loopback
    else:
        raise InvalidArgument(f"network {spec.network!r} is not available",
                              hint="use --network none or --network host")

    mounts = default_mounts(read_only=spec.read_only, privileged=spec.privileged)
    user_dests = [m.destination for m in spec.mounts]
    # A user mount on one of the default paths replaces it (e.g. --tmpfs /dev/shm).
    mounts = [m for m in mounts if m["destination"] not in user_dests]
    if spec.read_only:
        for m in mounts:
            if m["destination"] not in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue") \
                    and "ro" not in m["options"]:
                m["options"] = [o for o in m["options"] if o != "rw"] + ["ro"]
    if etc_files is not None:
        mounts += etc_mounts(etc_files, read_only=spec.read_only, user_destinations=user_dests)
    for m in sorted(spec.mounts, key=lambda m: m.destination.count("/")):
        mounts.append(user_mount(m, mount_sources.get(m.destination, m.source)))

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroup_path(cid),
        "resources": {"devices": [{"allow": True, "access": "rwm"}] if spec.privileged
                      else [dict(r) for r in DEVICE_RULES]},
    }
    if not spec.privileged:
        linux["maskedPaths"] = masked_paths(host.sys_root)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    else:
        linux["devices"] = host_devices(host.dev_root)
    from ..cgroups.resources import ResourceLimits, oci_resources
    linux["resources"].update(oci_resources(ResourceLimits.from_spec(spec)))
    if not spec.privileged and security.seccomp != "unconfined":
        if security.seccomp == "default":
            if seccomp_profile is not None:
                linux["seccomp"] = seccomp_profile(set(cap_set))
        else:
            linux["seccomp"] = _load_profile(security.seccomp)

    process: dict[str, Any] = {
        "terminal": bool(spec.tty),
        "user": {"uid": user.uid, "gid": user.gid,
                 **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {})},
        "args": list(argv),
        "env": process_env(env, hostname=hostname, home=user.home, tty=spec.tty),
        "cwd": cwd,
        "capabilities": {"bounding": list(cap_set), "effective": list(cap_set),
                         "permitted": list(cap_set)},
        "rlimits": rlimits(DEFAULT_RLIMITS, host.hard_limit),
        "noNewPrivileges": security.no_new_privileges,
    }
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": bool(spec.read_only)},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }


def _load_profile(path: str) -> dict[str, Any]:
    import json
    try:
        with open(path, encoding="utf-8") as f:
            profile = json.load(f)
    except (OSError, ValueError) as err:
        raise InvalidArgument(f"cannot read seccomp profile {path}: {err}") from err
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument(f"seccomp profile {path} has no defaultAction",
                              hint="give an OCI seccomp profile (linux.seccomp of config.json)")
    if "archMap" in profile or any(isinstance(s, dict) and ("includes" in s or "excludes" in s)
                                   for s in profile.get("syscalls") or []):
        raise InvalidArgument(f"seccomp profile {path} is in Docker's format",
                              hint="portside takes OCI-format profiles (no archMap/includes/excludes)")
    return profile
