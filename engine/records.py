"""Frozen dataclasses that cross the engine boundary.

No dict, sqlite row or subprocess output leaves ``engine/``; front ends get
these. Times are timezone-aware UTC ``datetime`` objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping


@dataclass(frozen=True)
class HistoryEntry:
    """One step of an image's history (``docker history``)."""

    created: datetime | None
    created_by: str
    size: int
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (OCI ``config`` object)."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""


@dataclass(frozen=True)
class ImageInfo:
    """An image in the local store."""

    id: str                      # sha256:<hex> of the config blob
    repo_tags: tuple[str, ...]   # "name:tag", possibly empty (dangling)
    created: datetime | None
    size: int                    # sum of uncompressed layer sizes
    layers: tuple[str, ...]      # diff ids, base first
    config: ImageConfig
    architecture: str = ""
    os: str = ""
    digest: str = ""             # manifest digest, if known
    history: tuple[HistoryEntry, ...] = ()
    author: str = ""

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]


@dataclass(frozen=True)
class Progress:
    """A step of a long job (load, pull, import) for progress bars."""

    what: str                    # e.g. "layer 2/5 sha256:ab12..."
    done: int                    # bytes so far
    total: int | None            # bytes expected, None if unknown
    layer: int = 0               # current layer, 1-based; 0 before layers
    layers: int = 0              # number of layers


@dataclass(frozen=True)
class Mount:
    """A bind mount, named volume or tmpfs in a container."""

    type: str                    # "bind" | "volume" | "tmpfs"
    source: str                  # host path, volume name, or "" for tmpfs
    destination: str
    read_only: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerState:
    """The mutable part of a container (``docker inspect`` .State)."""

    status: str                  # created|running|paused|exited|removing
    pid: int = 0
    exit_code: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    oom_killed: bool = False
    error: str = ""
    restart_count: int = 0
    paused_at: datetime | None = None     # set while paused


@dataclass(frozen=True)
class ContainerInfo:
    """A container, its config and its current state."""

    id: str
    name: str
    image: str                   # the reference the user gave
    image_id: str
    command: tuple[str, ...]     # entrypoint + cmd as run
    created: datetime
    state: ContainerState
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    tty: bool = False
    interactive: bool = False
    mounts: tuple[Mount, ...] = ()
    network_mode: str = "none"
    ports: tuple[str, ...] = ()
    restart_policy: str = "no"
    runtime: str = ""
    # What ``create`` adjusted or wants the user to know (Docker's "Warnings"),
    # e.g. a CPU weight raised to the minimum; empty on records read back later.
    warnings: tuple[str, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def status(self) -> str:
        return self.state.status


@dataclass(frozen=True)
class VolumeInfo:
    """A named volume."""

    name: str
    driver: str
    mountpoint: str
    created: datetime
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine:
    """One line of a container's log (k8s-file format)."""

    time: datetime
    stream: str                  # "stdout" | "stderr"
    text: str


@dataclass(frozen=True)
class Event:
    """One recorded change, as ``docker events`` shows it."""

    seq: int
    time: datetime
    type: str                    # container|image|volume|network
    action: str                  # create|start|die|destroy|tag|pull|...
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerStats:
    """One sample of a container's resource use (a row of ``docker stats``).

    ``cpu_percent`` is of the host, like Docker: 100 is one full CPU, the
    maximum is ``online_cpus * 100``; it is 0.0 in the first sample of a
    container (there is no previous one to compare with).
    """

    id: str
    name: str
    time: datetime
    cpu_percent: float
    memory_usage: int            # bytes in use: cgroup usage minus inactive file cache
    memory_limit: int            # the cgroup's limit, or host memory when unlimited
    memory_percent: float
    net_rx: int                  # bytes, all interfaces of the container's netns but lo
    net_tx: int
    block_read: int              # bytes
    block_write: int
    pids: int
    cpu_usage_ns: int = 0        # cumulative CPU time of the cgroup
    online_cpus: int = 0

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class ProcessInfo:
    """A process in a container (a row of ``docker top``)."""

    pid: int                     # in the host's pid namespace
    container_pid: int | None    # in the container's (NSpid); None if unknown
    ppid: int
    user: str
    cpu_percent: float           # CPU time over its lifetime, like ps %CPU
    memory_rss: int              # bytes
    memory_percent: float        # of host memory
    started: datetime | None
    cpu_time: float              # seconds, user + system
    status: str                  # psutil's: running, sleeping, stopped (paused), zombie...
    command: str
    tty: str = "?"               # as ps shows it: pts/0, or ? for none


@dataclass(frozen=True)
class ImageUsage:
    """An image's share of disk (``system df -v``)."""

    id: str
    repo_tags: tuple[str, ...]
    created: datetime | None
    size: int                    # all its layers
    shared_size: int             # layers other images use too
    unique_size: int             # layers only it uses
    containers: int              # containers made from it


@dataclass(frozen=True)
class ContainerUsage:
    """A container's writable layer on disk (``system df -v``)."""

    id: str
    name: str
    image: str
    command: str
    created: datetime | None
    status: str
    size: int                    # bytes in its writable layer
    local_volumes: int


@dataclass(frozen=True)
class VolumeUsage:
    """A volume's size and users (``system df -v``)."""

    name: str
    links: int                   # containers using it
    size: int


@dataclass(frozen=True)
class UsageSummary:
    """One row of ``system df``: totals for one kind of object."""

    type: str                    # Images | Containers | Local Volumes | Build Cache
    total: int
    active: int
    size: int
    reclaimable: int             # bytes a prune would free


@dataclass(frozen=True)
class DiskUsage:
    """What ``system df`` shows: the summary and (``-v``) each object."""

    summary: tuple[UsageSummary, ...]
    images: tuple[ImageUsage, ...] = ()
    containers: tuple[ContainerUsage, ...] = ()
    volumes: tuple[VolumeUsage, ...] = ()


@dataclass(frozen=True)
class PruneReport:
    """What ``system prune`` removed."""

    containers: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    space_reclaimed: int = 0


@dataclass(frozen=True)
class SystemInfo:
    """Facts about this host and engine (``portside info``)."""

    root: str
    run_dir: str
    runtime: str
    runtime_version: str
    conmon_version: str
    cgroup_version: str
    storage_driver: str
    images: int
    containers: int
    running: int
    paused: int
    stopped: int
    kernel: str
    version: str


@dataclass(frozen=True)
class ContainerSpec:
    """What the user asks for in ``create``/``run`` (Docker's flags, parsed)."""

    image: str
    command: tuple[str, ...] | None = None        # overrides the image Cmd
    entrypoint: tuple[str, ...] | None = None     # overrides the image Entrypoint
    name: str | None = None
    env: tuple[str, ...] = ()                     # "KEY=VALUE" (or "KEY" from host env)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    tty: bool = False
    interactive: bool = False
    mounts: tuple[Mount, ...] = ()
    network: str = "bridge"                       # bridge (the default network) | none | host | <name>
    ip: str | None = None                         # --ip on that network
    network_aliases: tuple[str, ...] = ()         # --network-alias (user-defined networks)
    ports: tuple[str, ...] = ()                   # "-p" specs, verbatim
    publish_all: bool = False
    restart: str = "no"                           # no | on-failure[:N] | always | unless-stopped
    labels: Mapping[str, str] = field(default_factory=dict)
    auto_remove: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    log_opts: Mapping[str, str] = field(default_factory=dict)
    dns: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()
    memory: int | None = None                     # bytes
    cpus: float | None = None
    pids_limit: int | None = None
    # More of Docker's resource flags (checked by engine.cgroups.resources):
    memory_reservation: int | None = None         # bytes, soft limit
    memory_swap: int | None = None                # memory+swap bytes; -1 unlimited swap
    cpu_shares: int | None = None                 # relative weight, default 1024
    cpu_period: int | None = None                 # CFS period, us
    cpu_quota: int | None = None                  # CFS quota, us
    cpuset_cpus: str | None = None                # "0-2,4"
    cpuset_mems: str | None = None
    oom_kill_disable: bool | None = None
    # Close the container's stdin when the attached client ends its input
    # (Docker's StdinOnce: ``run -i`` in the foreground; ``-d -i`` keeps it open).
    stdin_once: bool = False
