"""What the state database keeps for a container, and its JSON forms.

Following Podman's split: an immutable config (``config_json``, written at
create) and a mutable run state (``state_json``, rewritten on every change).
These types stay inside the engine; front ends get
:class:`~engine.records.ContainerInfo`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any

from ..network.model import Attachment
from ..records import ContainerInfo, ContainerSpec, ContainerState, Mount


@dataclass(frozen=True)
class StoredConfig:
    """A container's config as resolved at create time (never changes)."""

    spec: ContainerSpec
    image_ref: str                 # what the user typed, e.g. "busybox"
    image_id: str                  # sha256:...
    argv: tuple[str, ...]          # entrypoint + cmd, Docker's override rules applied
    env: tuple[str, ...]           # image env merged with -e
    working_dir: str
    user: str
    hostname: str
    stop_signal: str               # "" = SIGTERM
    image_volumes: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    created_ns: int = 0
    # The networks it joins on start, once ``network connect``/``disconnect``
    # changed them (None: the ``--network`` of create; see :meth:`attachments`).
    networks: tuple[Attachment, ...] | None = None

    def attachments(self) -> tuple[Attachment, ...]:
        """The networks the container joins when it starts, ``eth0`` first.

        Until a ``network connect``/``disconnect`` stored a list, the one
        ``--network`` (with ``--network-alias``/``--ip``) it was created
        with; none for ``--network none|host``.
        """
        if self.networks is not None:
            return self.networks
        mode = self.spec.network or "bridge"
        if mode in ("none", "host") or mode.startswith("container:"):
            return ()
        return (Attachment(mode, tuple(self.spec.network_aliases or ()), self.spec.ip or ""),)

    def to_json(self) -> str:
        d = asdict(self)
        if self.networks is not None:
            d["networks"] = [a.to_dict() for a in self.networks]
        d["spec"]["labels"] = dict(self.spec.labels)
        d["spec"]["log_opts"] = dict(self.spec.log_opts)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StoredConfig":
        d = json.loads(text)
        s = d.pop("spec")
        known = {f.name for f in fields(ContainerSpec)}
        s = {k: v for k, v in s.items() if k in known}
        s["mounts"] = tuple(Mount(m["type"], m["source"], m["destination"], m.get("read_only", False),
                                  tuple(m.get("options", ()))) for m in s.get("mounts", ()))
        for k in ("command", "entrypoint"):
            if s.get(k) is not None:
                s[k] = tuple(s[k])
        for k in ("env", "ports", "cap_add", "cap_drop", "security_opt", "dns", "add_hosts",
                  "network_aliases"):
            if k in s:
                s[k] = tuple(s[k])
        spec = ContainerSpec(**s)
        mine = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in mine}
        for k in ("argv", "env", "image_volumes", "exposed_ports"):
            d[k] = tuple(d.get(k, ()))
        if d.get("networks") is not None:
            d["networks"] = tuple(Attachment.from_dict(a) for a in d["networks"])
        return cls(spec=spec, **d)


@dataclass(frozen=True)
class RunState:
    """A container's mutable state, as stored in ``state_json``."""

    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    started_ns: int = 0
    finished_ns: int = 0
    oom_killed: bool = False
    error: str = ""
    restart_count: int = 0
    # The monitor of the current run: its pid and start time (in clock ticks
    # since boot, from /proc/<pid>/stat) so a reused pid is never mistaken
    # for it, and the boot it ran in.
    conmon_pid: int = 0
    conmon_start: int = 0
    boot_id: str = ""
    # True once the rootfs is mounted / the runtime knows the container,
    # until the post-exit cleanup has undone both.
    mounted: bool = False
    runtime_created: bool = False
    manually_stopped: bool = False
    # Restart policy bookkeeping: the back-off delay in ms (0 = none yet)
    # and a counter bumped by every start, so a delayed restart can tell
    # whether someone else started or stopped the container meanwhile.
    backoff_ms: int = 0
    generation: int = 0
    # The process sleeping through the back-off before a policy restart
    # (conmon's exit command); if it dies, the restart is off.
    waiter_pid: int = 0
    waiter_start: int = 0
    # The runtime binary this run was created with (a later PORTSIDE_RUNTIME
    # must not send its stop or delete to another runtime's state).
    runtime: str = ""
    # When the freezer last froze it (0 unless paused), for "Paused 5 minutes".
    paused_ns: int = 0
    # The kernel's OOM-kill count of this run's cgroup when last synced: an
    # ``oom`` event is written for each rise (while running, or at exit),
    # so one kill is never reported twice. 0 for rows written before it.
    oom_kills: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunState":
        d = json.loads(text)
        mine = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in mine})

    def but(self, **changes: Any) -> "RunState":
        return replace(self, **changes)


def _time(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc) if ns else None


def to_info(cid: str, name: str, cfg: StoredConfig, st: RunState, runtime: str = "") -> ContainerInfo:
    """The public record for a container."""
    spec = cfg.spec
    return ContainerInfo(
        id=cid, name=name, image=cfg.image_ref, image_id=cfg.image_id, command=cfg.argv,
        created=_time(cfg.created_ns) or datetime.fromtimestamp(0, timezone.utc),
        state=ContainerState(status=st.status, pid=st.pid, exit_code=st.exit_code,
                             started_at=_time(st.started_ns), finished_at=_time(st.finished_ns),
                             oom_killed=st.oom_killed, error=st.error,
                             restart_count=st.restart_count,
                             paused_at=_time(st.paused_ns) if st.status == "paused" else None),
        labels=dict(spec.labels), env=cfg.env, working_dir=cfg.working_dir, user=cfg.user,
        hostname=cfg.hostname, tty=spec.tty, interactive=spec.interactive, mounts=spec.mounts,
        network_mode=spec.network, ports=spec.ports, restart_policy=spec.restart,
        runtime=runtime)


__all__ = ["StoredConfig", "RunState", "to_info"]
