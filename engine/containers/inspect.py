"""Docker-shaped ``inspect`` JSON for a container (the fields scripts read)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import rootfs
from .model import RunState, StoredConfig
from .monitor import MonitorFiles
from .spec import parse_restart

_ACTIVE = ("running", "paused")


def rfc3339(ns: int) -> str:
    if not ns:
        return "0001-01-01T00:00:00Z"
    t = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def inspect(cid: str, name: str, cfg: StoredConfig, st: RunState, *, files: MonitorFiles,
            lower_dirs: str, runtime: str) -> dict[str, Any]:
    """Docker's ``inspect`` JSON for a container.

    Args:
        cid: the container id.
        name: its name (without ``/``).
        cfg: its stored config.
        st: its reconciled state.
        files: its monitor files (the bundle dir holds hosts, log, rootfs dirs).
        lower_dirs: the image's layer dirs, ``:``-joined ("" if the image is gone).
        runtime: the runtime's name.
    """
    spec = cfg.spec
    upper, work, merged = rootfs.layout(files.bundle)
    policy, retries = parse_restart(spec.restart)
    lower = lower_dirs
    cdir = files.bundle
    mounts = []
    for m in spec.mounts:
        entry: dict[str, Any] = {"Type": m.type, "Source": m.source, "Destination": m.destination,
                                 "Mode": "ro" if m.read_only else "", "RW": not m.read_only,
                                 "Propagation": next((o for o in m.options if "private" in o or
                                                      "shared" in o or "slave" in o),
                                                     "rprivate" if m.type == "bind" else "")}
        if m.type == "volume":
            entry["Name"] = m.source
            entry["Driver"] = "local"
        mounts.append(entry)
    return {
        "Id": cid,
        "Created": rfc3339(cfg.created_ns),
        "Path": cfg.argv[0] if cfg.argv else "",
        "Args": list(cfg.argv[1:]),
        "State": {
            "Status": st.status,
            "Running": st.status in _ACTIVE,
            "Paused": st.status == "paused",
            "Restarting": st.status == "restarting",
            "OOMKilled": st.oom_killed,
            "Dead": False,
            "Pid": st.pid if st.status in _ACTIVE else 0,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": rfc3339(st.started_ns),
            "FinishedAt": rfc3339(st.finished_ns),
        },
        "Image": cfg.image_id,
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(files.log),
        "Name": "/" + name,
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": {
            "Binds": [f"{m.source}:{m.destination}" + (":ro" if m.read_only else "")
                      for m in spec.mounts if m.type in ("bind", "volume") and m.source],
            "NetworkMode": spec.network,
            "PortBindings": {},
            "RestartPolicy": {"Name": "" if policy == "no" else policy, "MaximumRetryCount": retries},
            "AutoRemove": spec.auto_remove,
            "CapAdd": list(spec.cap_add) or None,
            "CapDrop": list(spec.cap_drop) or None,
            "Dns": list(spec.dns),
            "ExtraHosts": list(spec.add_hosts) or None,
            "Privileged": spec.privileged,
            "ReadonlyRootfs": spec.read_only,
            "SecurityOpt": list(spec.security_opt) or None,
            "Tmpfs": {m.destination: ",".join(m.options) for m in spec.mounts if m.type == "tmpfs"} or None,
            "LogConfig": {"Type": "k8s-file", "Config": dict(spec.log_opts)},
            "Memory": spec.memory or 0,
            "NanoCpus": int((spec.cpus or 0) * 1e9),
            "PidsLimit": spec.pids_limit,
            "ShmSize": 64 << 20,
            "Runtime": runtime,
        },
        "GraphDriver": {"Name": "overlay",
                        "Data": {"LowerDir": lower, "UpperDir": str(upper), "WorkDir": str(work),
                                 "MergedDir": str(merged)}},
        "Mounts": mounts,
        "Config": {
            "Hostname": cfg.hostname,
            "Domainname": "",
            "User": cfg.user,
            "AttachStdin": False,
            "AttachStdout": not spec.interactive,
            "AttachStderr": not spec.interactive,
            "Tty": spec.tty,
            "OpenStdin": spec.interactive,
            "StdinOnce": False,
            "Env": list(cfg.env),
            "Cmd": list(spec.command) if spec.command else None,
            "Image": cfg.image_ref,
            "Volumes": {v: {} for v in cfg.image_volumes} or None,
            "WorkingDir": cfg.working_dir,
            "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "Labels": dict(spec.labels),
            "StopSignal": cfg.stop_signal or "SIGTERM",
        },
        "NetworkSettings": {"Ports": {}, "Networks": {}},
    }
