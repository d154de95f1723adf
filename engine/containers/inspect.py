"""Docker-shaped ``inspect`` JSON for a container (the fields scripts read)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

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


def port_bindings(specs: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """``HostConfig.PortBindings`` from the ``-p`` specs as asked (host port "" if left to us)."""
    from ..errors import EngineError
    from ..network.ports import parse_port_spec
    out: dict[str, list[dict[str, str]]] = {}
    for text in specs:
        try:
            p = parse_port_spec(text)
        except EngineError:
            continue                # refused at create; nothing to show
        for i in range(p.container_count):
            key = f"{p.container_ports[0] + i}/{p.protocol}"
            if p.host_ports is None:
                host = ""
            elif p.container_count > 1:
                host = str(p.host_ports[0] + i)
            else:
                lo, hi = p.host_ports
                host = str(lo) if lo == hi else f"{lo}-{hi}"
            out.setdefault(key, []).append({"HostIp": p.host_ip, "HostPort": host})
    return out


def network_settings(endpoints: Sequence[Any], ports: Sequence[Any],
                     exposed: Sequence[str], *, attachments: Sequence[Any] = (),
                     cid: str = "", name: str = "", mode: str = "",
                     network_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``NetworkSettings``: one entry per network, and the published ports.

    ``endpoints`` are :class:`engine.network.Endpoint`, ``ports``
    :class:`engine.network.PortMapping` (both empty while the container is
    not running). ``attachments`` (:class:`engine.network.model.Attachment`)
    are the networks it joins on start: those without an endpoint are
    listed as Docker lists a stopped container's, with no address.
    ``network_ids`` maps network names to ids for them. A container on
    ``--network none`` or ``host`` (``mode``) is listed, as Docker lists it,
    under that name with no addresses.
    """
    from hashlib import sha256

    from ..network.store import canonical_name
    wanted = {canonical_name(a.network): a for a in attachments}
    nets = {}
    for ep in endpoints:
        att = wanted.get(ep.network)
        nets[ep.network] = {
            "IPAMConfig": {"IPv4Address": att.ip} if att is not None and att.ip else None,
            "Links": None,
            "Aliases": [ep.container_name, *ep.aliases, ep.container_id[:12]],
            "NetworkID": ep.network_id,
            "EndpointID": sha256(f"{ep.container_id}/{ep.network_id}".encode()).hexdigest(),
            "Gateway": str(ep.gateway), "IPAddress": str(ep.ip), "IPPrefixLen": ep.prefixlen,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": ep.mac, "DriverOpts": None,
        }
    for net, att in wanted.items():
        if net in nets:
            continue
        nets[net] = {
            "IPAMConfig": {"IPv4Address": att.ip} if att.ip else None, "Links": None,
            "Aliases": [name, *att.aliases, cid[:12]] if name else list(att.aliases),
            "NetworkID": (network_ids or {}).get(net, ""), "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": "", "DriverOpts": None,
        }
    if mode in ("none", "host") and mode not in nets:
        nets[mode] = {
            "IPAMConfig": None, "Links": None, "Aliases": None,
            "NetworkID": (network_ids or {}).get(mode, ""), "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": "", "DriverOpts": None,
        }
    published: dict[str, list[dict[str, str]] | None] = {
        (p if "/" in p else p + "/tcp"): None for p in exposed}
    for m in ports:
        key = f"{m.container_port}/{m.protocol}"
        entry = published.get(key) or []
        entry.append({"HostIp": m.host_ip or "0.0.0.0", "HostPort": str(m.host_port)})
        published[key] = entry
    first = endpoints[0] if endpoints else None
    return {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "SandboxKey": "",
        "Ports": published,
        "Gateway": str(first.gateway) if first else "",
        "IPAddress": str(first.ip) if first else "",
        "IPPrefixLen": first.prefixlen if first else 0,
        "MacAddress": first.mac if first else "",
        "Networks": nets,
    }


def inspect(cid: str, name: str, cfg: StoredConfig, st: RunState, *, files: MonitorFiles,
            lower_dirs: str, runtime: str, endpoints: Sequence[Any] = (),
            ports: Sequence[Any] = (), netns_path: str = "",
            network_ids: Mapping[str, str] | None = None,
            volumes_dir: Path | None = None) -> dict[str, Any]:
    """Docker's ``inspect`` JSON for a container.

    Args:
        cid: the container id.
        name: its name (without ``/``).
        cfg: its stored config.
        st: its reconciled state.
        files: its monitor files (the bundle dir holds hosts, log, rootfs dirs).
        lower_dirs: the image's layer dirs, ``:``-joined ("" if the image is gone).
        runtime: the runtime's name.
        endpoints: its network attachments while it runs (``engine.network.Endpoint``).
        ports: its published ports while it runs (``engine.network.PortMapping``).
        netns_path: its network namespace file, if portside made one.
        network_ids: network name -> id (for the networks it is not on right now).
        volumes_dir: where named volumes live (``<root>/volumes``), for their
            ``_data`` paths; without it a volume's Source is its name.
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
            # Docker: Name is the volume, Source the directory the container sees.
            entry["Name"] = m.source
            entry["Driver"] = "local"
            if volumes_dir is not None:
                entry["Source"] = str(volumes_dir / m.source / "_data")
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
            "PortBindings": port_bindings(spec.ports),
            "PublishAllPorts": spec.publish_all,
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
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
            "MemorySwap": spec.memory_swap or 0,
            "MemoryReservation": spec.memory_reservation or 0,
            "NanoCpus": int(round((spec.cpus or 0) * 1e9)),
            "CpuShares": spec.cpu_shares or 0,
            "CpuPeriod": spec.cpu_period or 0,
            "CpuQuota": spec.cpu_quota or 0,
            "CpusetCpus": spec.cpuset_cpus or "",
            "CpusetMems": spec.cpuset_mems or "",
            "PidsLimit": spec.pids_limit,
            "OomKillDisable": bool(spec.oom_kill_disable),
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
        "NetworkSettings": {**network_settings(endpoints, ports, cfg.exposed_ports,
                                               attachments=cfg.attachments(), cid=cid, name=name,
                                               mode=spec.network, network_ids=network_ids),
                            "SandboxKey": netns_path},
    }
