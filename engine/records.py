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
    network: str = "none"                         # none | host | <network name>
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
