"""The OCI config, built on fakes: no root, no runtime."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.containers import spec as specmod
from engine.containers.caps import DEFAULT_CAPS
from engine.containers.spec import (EtcFiles, HostFacts, build_config, merge_env, parse_env_file,
                                    parse_restart, parse_security_opts, resolve_command, rlimits)
from engine.containers.users import ExecUser
from engine.errors import InvalidArgument
from engine.records import ContainerSpec, ImageConfig, Mount

HARD = {"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 96343}


def fake_host(tmp_path: Path) -> HostFacts:
    cpu = tmp_path / "sys/devices/system/cpu"
    for n in ("cpu0", "cpu1"):
        (cpu / n / "thermal_throttle").mkdir(parents=True, exist_ok=True)
    (cpu / "cpufreq").mkdir(exist_ok=True)
    return HostFacts(hard_limit=lambda name: HARD[name], sys_root=tmp_path / "sys",
                     dev_root=tmp_path / "dev")


def seccomp_stub(caps: set[str]) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ERRNO", "caps_seen": sorted(caps)}


def config(tmp_path: Path, spec: ContainerSpec | None = None, **kw: Any) -> dict[str, Any]:
    spec = spec or ContainerSpec(image="busybox")
    if spec.network == "bridge" and "netns_path" not in kw:
        spec = replace(spec, network="none")       # the default network needs a netns made first
    args: dict[str, Any] = dict(
        cid="c" * 64, spec=spec, argv=("sh",), env=("A=1",), working_dir="", hostname="box",
        rootfs=tmp_path / "merged", user=ExecUser(0, 0, (), "/root"),
        etc_files=EtcFiles(tmp_path / "hosts", tmp_path / "hostname", tmp_path / "resolv.conf"),
        mount_sources={}, seccomp_profile=seccomp_stub, host=fake_host(tmp_path))
    args.update(kw)
    return build_config(**args)


def mount(cfg: dict[str, Any], dest: str) -> dict[str, Any]:
    found = [m for m in cfg["mounts"] if m["destination"] == dest]
    assert len(found) == 1, dest
    return found[0]


# -- command and env ----------------------------------------------------------------------

IMG = ImageConfig(entrypoint=("/entry",), cmd=("--serve",), env=("PATH=/bin", "A=img"))


@pytest.mark.parametrize("spec_kw,expected", [
    ({}, ("/entry", "--serve")),                                    # image defaults
    ({"command": ("--debug",)}, ("/entry", "--debug")),             # CMD replaced, entrypoint kept
    ({"entrypoint": ("/other",)}, ("/other",)),                     # --entrypoint drops image CMD
    ({"entrypoint": ("/other",), "command": ("x",)}, ("/other", "x")),
    ({"entrypoint": (), "command": ("ls", "-l")}, ("ls", "-l")),    # --entrypoint ""
])
def test_command_rules(spec_kw: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert resolve_command(ContainerSpec(image="i", **spec_kw), IMG) == expected


def test_no_command_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="no command"):
        resolve_command(ContainerSpec(image="i"), ImageConfig())
    with pytest.raises(InvalidArgument):
        resolve_command(ContainerSpec(image="i", entrypoint=()), IMG)


def test_env_merge_order_override_and_host_passthrough() -> None:
    env = merge_env(["PATH=/bin", "A=img", "B=img"], ["A=user", "C", "D", "E="], {"C": "host"})
    assert env == ("PATH=/bin", "A=user", "B=img", "C=host", "E=")


def test_env_file_parsing() -> None:
    assert parse_env_file("# c\n\nA=1\n  B = x\nC\nD=a=b\n") == ["A=1", "B= x", "C", "D=a=b"]
    with pytest.raises(InvalidArgument):
        parse_env_file("=nokey\n")


def test_process_env_adds_path_hostname_home_term(tmp_path: Path) -> None:
    cfg = config(tmp_path, ContainerSpec(image="i", tty=True), env=("A=1",))
    env = cfg["process"]["env"]
    assert env[0].startswith("PATH=/usr/local/sbin") and "HOSTNAME=box" in env
    assert "HOME=/root" in env and "TERM=xterm" in env
    cfg = config(tmp_path, env=("PATH=/x", "HOME=/h"))
    assert "PATH=/x" in cfg["process"]["env"] and "HOME=/h" in cfg["process"]["env"]
    assert not any(e.startswith("TERM=") for e in cfg["process"]["env"])


# -- security defaults ----------------------------------------------------------------------

def test_default_caps_in_three_sets_inheritable_empty(tmp_path: Path) -> None:
    caps = config(tmp_path)["process"]["capabilities"]
    for s in ("bounding", "effective", "permitted"):
        assert sorted(caps[s]) == sorted(DEFAULT_CAPS)
    assert "inheritable" not in caps and "ambient" not in caps


def test_seccomp_gets_the_effective_caps(tmp_path: Path) -> None:
    cfg = config(tmp_path, ContainerSpec(image="i", cap_add=("SYS_ADMIN",)))
    assert "CAP_SYS_ADMIN" in cfg["linux"]["seccomp"]["caps_seen"]
    assert "seccomp" not in config(tmp_path, ContainerSpec(image="i", security_opt=("seccomp=unconfined",)))["linux"]
    assert "seccomp" not in config(tmp_path, ContainerSpec(image="i", privileged=True))["linux"]


def test_masked_and_readonly_paths(tmp_path: Path) -> None:
    linux = config(tmp_path)["linux"]
    for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts", "/sys/firmware",
              "/sys/devices/virtual/powercap", "/sys/devices/system/cpu/cpu0/thermal_throttle",
              "/sys/devices/system/cpu/cpu1/thermal_throttle"):
        assert p in linux["maskedPaths"]
    assert not any("cpufreq" in p for p in linux["maskedPaths"])
    assert linux["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def test_standard_mounts(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert mount(cfg, "/proc")["type"] == "proc"
    assert "size=65536k" in mount(cfg, "/dev")["options"]
    assert "newinstance" in mount(cfg, "/dev/pts")["options"]
    assert f"size={64 << 20}" in mount(cfg, "/dev/shm")["options"]
    assert mount(cfg, "/dev/mqueue")["type"] == "mqueue"
    assert "ro" in mount(cfg, "/sys")["options"]
    assert "ro" in mount(cfg, "/sys/fs/cgroup")["options"]
    for f in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
        assert mount(cfg, f)["type"] == "bind"
    assert mount(cfg, "/etc/hostname")["source"] == str(tmp_path / "hostname")


def test_namespaces_by_network_mode(tmp_path: Path) -> None:
    def types(**kw: Any) -> list[Any]:
        return config(tmp_path, ContainerSpec(image="i", **{"network": "none", **kw.pop("spec", {})}),
                      **kw)["linux"]["namespaces"]
    assert {"type": "network"} in types()
    assert {n["type"] for n in types()} == {"pid", "ipc", "uts", "mount", "network"}
    assert "network" not in {n["type"] for n in types(spec={"network": "host"})}
    assert {"type": "network", "path": "/run/ns/x"} in types(spec={"network": "br"}, netns_path="/run/ns/x")
    with pytest.raises(InvalidArgument, match="not available"):
        types(spec={"network": "nonexistent"})


def test_device_cgroup_rules(tmp_path: Path) -> None:
    rules = config(tmp_path)["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    allowed = {(r.get("type"), r.get("major"), r.get("minor")) for r in rules if r["allow"] and r["access"] == "rwm"}
    for dev in ((1, 3), (1, 5), (1, 8), (1, 9), (5, 0), (5, 1)):
        assert ("c", *dev) in allowed
    fuse = [i for i, r in enumerate(rules) if r.get("major") == 10 and r.get("minor") == 229]
    wildcard = [i for i, r in enumerate(rules) if r["allow"] and "major" not in r and "type" in r]
    # Denied, and before any wildcard rule (cgroup v1 cannot punch holes into wildcards).
    assert fuse and not rules[fuse[0]]["allow"] and fuse[0] < min(wildcard)


def test_rlimits_capped_to_host_hard_limits(tmp_path: Path) -> None:
    lim = {r["type"]: r for r in config(tmp_path)["process"]["rlimits"]}
    assert lim["RLIMIT_NOFILE"] == {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}
    assert lim["RLIMIT_NPROC"]["hard"] == 96343
    assert rlimits({"RLIMIT_NOFILE": 1024}, lambda n: 20000) == \
        [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]


def test_real_host_limits_never_exceeded() -> None:
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    got = rlimits({"RLIMIT_NOFILE": 1 << 40}, specmod.HostFacts().hard_limit)[0]["hard"]
    assert got == (hard if hard != resource.RLIM_INFINITY else got) and got <= (1 << 40)


# -- flags ------------------------------------------------------------------------------------

def test_read_only_rootfs(tmp_path: Path) -> None:
    cfg = config(tmp_path, ContainerSpec(image="i", read_only=True,
                                         mounts=(Mount("tmpfs", "", "/tmp"),)))
    assert cfg["root"]["readonly"] is True
    assert "ro" in mount(cfg, "/etc/hosts")["options"]
    assert "ro" not in mount(cfg, "/dev/shm")["options"] and "ro" not in mount(cfg, "/proc")["options"]
    assert "rw" in mount(cfg, "/tmp")["options"]            # the user's own mount stays writable


def test_privileged(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    cfg = config(tmp_path, ContainerSpec(image="i", privileged=True))
    assert "maskedPaths" not in cfg["linux"] and "readonlyPaths" not in cfg["linux"]
    assert cfg["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "CAP_SYS_ADMIN" in cfg["process"]["capabilities"]["effective"]
    assert "ro" not in mount(cfg, "/sys")["options"]


def test_no_new_privileges(tmp_path: Path) -> None:
    assert config(tmp_path)["process"]["noNewPrivileges"] is False
    cfg = config(tmp_path, ContainerSpec(image="i", security_opt=("no-new-privileges",)))
    assert cfg["process"]["noNewPrivileges"] is True
    assert parse_security_opts(["no-new-privileges:true"]).no_new_privileges
    assert not parse_security_opts(["no-new-privileges=false"]).no_new_privileges
    with pytest.raises(InvalidArgument):
        parse_security_opts(["bogus"])


def test_user_and_cwd(tmp_path: Path) -> None:
    cfg = config(tmp_path, user=ExecUser(1000, 100, (10, 29), "/home/app"), working_dir="/srv")
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 100, "additionalGids": [10, 29]}
    assert cfg["process"]["cwd"] == "/srv"
    assert config(tmp_path)["process"]["cwd"] == "/"
    with pytest.raises(InvalidArgument):
        config(tmp_path, working_dir="relative")


def test_user_mounts(tmp_path: Path) -> None:
    spec = ContainerSpec(image="i", mounts=(
        Mount("bind", "/host/a", "/a", True), Mount("volume", "data", "/data"),
        Mount("tmpfs", "", "/t", False, ("size=1024", "exec"))))
    cfg = config(tmp_path, spec, mount_sources={"/a": "/host/a", "/data": "/vol/data/_data"})
    assert mount(cfg, "/a") == {"destination": "/a", "type": "bind", "source": "/host/a",
                                "options": ["rbind", "rprivate", "ro"]}
    assert mount(cfg, "/data")["source"] == "/vol/data/_data"
    t = mount(cfg, "/t")
    assert t["type"] == "tmpfs" and "size=1024" in t["options"] and "noexec" not in t["options"]
    assert "mode=1777" in t["options"]


def test_user_mount_replaces_default(tmp_path: Path) -> None:
    cfg = config(tmp_path, ContainerSpec(image="i", mounts=(Mount("tmpfs", "", "/dev/shm", False, ("size=1024",)),)))
    assert "size=1024" in mount(cfg, "/dev/shm")["options"]


def test_limits(tmp_path: Path) -> None:
    res = config(tmp_path, ContainerSpec(image="i", memory=1 << 28, cpus=1.5, pids_limit=64))["linux"]["resources"]
    assert res["memory"] == {"limit": 1 << 28, "swap": 1 << 29}   # Docker: swap = 2 x memory
    assert res["devices"][0] == {"allow": False, "access": "rwm"}  # device rules kept
    assert res["cpu"] == {"quota": 150000, "period": 100000}
    assert res["pids"] == {"limit": 64}


def test_cgroup_path_and_hostname(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert cfg["linux"]["cgroupsPath"] == "/portside/" + "c" * 64
    assert cfg["hostname"] == "box"


def test_restart_policies() -> None:
    assert parse_restart("no") == ("no", 0)
    assert parse_restart("on-failure:3") == ("on-failure", 3)
    assert parse_restart("always") == ("always", 0)
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(InvalidArgument):
            parse_restart(bad)


def test_seccomp_profile_file(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}')
    cfg = config(tmp_path, ContainerSpec(image="i", security_opt=(f"seccomp={good}",)))
    assert cfg["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    docker = tmp_path / "d.json"
    docker.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "archMap": []}')
    with pytest.raises(InvalidArgument, match="Docker's format"):
        config(tmp_path, ContainerSpec(image="i", security_opt=(f"seccomp={docker}",)))


def test_real_seccomp_module_is_used_with_caps(tmp_path: Path) -> None:
    from engine.containers.seccomp import default_profile
    cfg = config(tmp_path, replace(ContainerSpec(image="i"), cap_add=("SYS_TIME",)),
                 seccomp_profile=default_profile)
    names = {n for s in cfg["linux"]["seccomp"]["syscalls"] if s["action"] == "SCMP_ACT_ALLOW"
             for n in s["names"]}
    assert "settimeofday" in names and "mount" not in names
