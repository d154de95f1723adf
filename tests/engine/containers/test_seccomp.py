"""The default seccomp profile's structure (runc loads it in tests/integration)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.containers import seccomp
from engine.containers.caps import CAPABILITY_NAMES, DEFAULT_CAPS
from engine.containers.seccomp import ALLOWED, BY_CAPABILITY, NEVER, default_profile, x32_abi

ALL_CAPS = set(CAPABILITY_NAMES)


def _matches(cond: dict[str, Any], args: tuple[int, ...]) -> bool:
    v = args[cond["index"]]
    op, value = cond["op"], cond["value"]
    return {
        "SCMP_CMP_EQ": v == value, "SCMP_CMP_NE": v != value, "SCMP_CMP_LT": v < value,
        "SCMP_CMP_LE": v <= value, "SCMP_CMP_GT": v > value, "SCMP_CMP_GE": v >= value,
        "SCMP_CMP_MASKED_EQ": (v & value) == cond.get("valueTwo", 0),
    }[op]


def action(profile: dict[str, Any], name: str, *args: int) -> tuple[str, int | None]:
    """What the filter does with ``name(args...)``, as libseccomp would decide it."""
    full = args + (0,) * (6 - len(args))
    for rule in profile["syscalls"]:
        if name in rule["names"] and all(_matches(c, full) for c in rule.get("args", ())):
            return rule["action"], rule.get("errnoRet")
    return profile["defaultAction"], profile.get("defaultErrnoRet")


def allowed(profile: dict[str, Any], name: str, *args: int) -> bool:
    return action(profile, name, *args)[0] == "SCMP_ACT_ALLOW"


def test_defaults_are_eperm_and_json_ready() -> None:
    p = default_profile(set(DEFAULT_CAPS), arch="x86_64")
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert json.loads(json.dumps(p)) == p
    assert action(p, "no_such_call") == ("SCMP_ACT_ERRNO", 1)


@pytest.mark.parametrize("machine, arches, extra", [
    ("x86_64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "arch_prctl"),
    ("aarch64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"], "set_tls"),
])
def test_architectures_follow_the_host(machine: str, arches: list[str], extra: str) -> None:
    p = default_profile(set(DEFAULT_CAPS), arch=machine)
    assert p["architectures"] == arches
    assert allowed(p, extra)
    other = "set_tls" if extra == "arch_prctl" else "arch_prctl"
    assert not allowed(p, other)


def test_unknown_machine_means_native_abi_only() -> None:
    assert "architectures" not in default_profile(set(), arch="riscv64")


def test_allowlist_is_the_usual_size_without_duplicates() -> None:
    assert len(ALLOWED) == len(set(ALLOWED))
    assert 330 <= len(ALLOWED) <= 380
    p = default_profile(set(DEFAULT_CAPS), arch="x86_64")
    for name in ("read", "write", "openat", "execve", "mmap", "futex", "epoll_wait", "statx",
                 "rt_sigaction", "wait4", "getrandom", "ptrace", "chroot"):
        assert allowed(p, name), name
    # Every name is allowed by at most one unconditional rule.
    unconditional = [n for r in p["syscalls"] if "args" not in r and r["action"] == "SCMP_ACT_ALLOW"
                     for n in r["names"]]
    assert len(unconditional) == len(set(unconditional))


def test_lists_do_not_overlap() -> None:
    gated = {n for calls in BY_CAPABILITY.values() for n in calls}
    assert not set(ALLOWED) & gated
    assert not set(ALLOWED) & set(NEVER)
    assert not gated & set(NEVER)


@pytest.mark.parametrize("cap", sorted(BY_CAPABILITY))
def test_capability_gated_calls_appear_only_with_the_capability(cap: str) -> None:
    for name in BY_CAPABILITY[cap]:
        # Caps that also grant this call (syslog: SYS_ADMIN or SYSLOG) must go too.
        granting = {f"CAP_{c}" for c, calls in BY_CAPABILITY.items() if name in calls}
        without = default_profile(ALL_CAPS - granting, arch="x86_64")
        with_cap = default_profile(set(DEFAULT_CAPS) | {f"CAP_{cap}"}, arch="x86_64")
        assert allowed(with_cap, name, 0), f"{name} should be allowed with {cap}"
        if name == "clone":
            assert not allowed(without, name, 0x10000000)   # CLONE_NEWUSER
        else:
            assert not allowed(without, name, 0), f"{name} allowed without {cap}"


def test_capability_names_are_accepted_in_either_form() -> None:
    for caps in ({"CAP_SYS_TIME"}, {"SYS_TIME"}, {"sys_time"}, {"cap_sys_time"}):
        assert allowed(default_profile(caps, arch="x86_64"), "settimeofday")
    assert not allowed(default_profile(set(DEFAULT_CAPS), arch="x86_64"), "settimeofday")


def test_never_allowed_calls_stay_denied_with_every_capability() -> None:
    p = default_profile(ALL_CAPS, arch="x86_64")
    for name in NEVER:
        assert action(p, name) == ("SCMP_ACT_ERRNO", 1), name
    assert {"keyctl", "add_key", "request_key", "userfaultfd", "kexec_load", "swapon",
            "pivot_root", "io_uring_setup", "_sysctl", "uselib"} <= set(NEVER)


def test_clone_without_sys_admin_cannot_make_namespaces() -> None:
    p = default_profile(set(DEFAULT_CAPS), arch="x86_64")
    sigchld = 17
    assert allowed(p, "clone", sigchld)
    assert allowed(p, "clone", 0x003D0F00)            # pthread_create's flags
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000):                         # each CLONE_NEW*
        assert not allowed(p, "clone", sigchld | flag), hex(flag)
    assert action(p, "clone3") == ("SCMP_ACT_ERRNO", 38)   # ENOSYS: libc falls back to clone
    rule = next(r for r in p["syscalls"] if r["names"] == ["clone"])
    assert rule["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                             "op": "SCMP_CMP_MASKED_EQ"}]


def test_clone_with_sys_admin_is_unrestricted() -> None:
    p = default_profile(set(DEFAULT_CAPS) | {"CAP_SYS_ADMIN"}, arch="x86_64")
    assert allowed(p, "clone", 0x10000000 | 17)
    assert allowed(p, "clone3")
    assert all(r["names"] != ["clone3"] for r in p["syscalls"])


def test_socket_families() -> None:
    p = default_profile(set(DEFAULT_CAPS), arch="x86_64")
    for family in (1, 2, 10, 16, 17, 39, 41, 44):      # unix, inet, inet6, netlink, packet, ...
        assert allowed(p, "socket", family), family
    for family in (seccomp.AF_ALG, seccomp.AF_VSOCK):
        assert not allowed(p, "socket", family), family
    # One condition per entry: several on one argument would be OR-ed by runc.
    for rule in p["syscalls"]:
        idx = [c["index"] for c in rule.get("args", ())]
        assert len(idx) == len(set(idx))


def test_personality_is_limited() -> None:
    p = default_profile(set(DEFAULT_CAPS), arch="x86_64")
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert allowed(p, "personality", persona)
    for persona in (0x0040000, 0x0400000, 0x1):       # ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...
        assert not allowed(p, "personality", persona)


# -- which ABIs the filter covers -----------------------------------------------------------

def _trees(tmp_path: Path, *, config_gz: str | None = None, boot_config: str | None = None,
           cmdline: str = "quiet") -> tuple[Path, Path]:
    import gzip
    proc, boot = tmp_path / "proc", tmp_path / "boot"
    proc.mkdir()
    boot.mkdir()
    (proc / "cmdline").write_text(cmdline + "\n")
    if config_gz is not None:
        (proc / "config.gz").write_bytes(gzip.compress(config_gz.encode()))
    if boot_config is not None:
        (boot / "config-6.1.0-test").write_text(boot_config)
    return proc, boot


@pytest.mark.parametrize("config_gz, boot_config, cmdline, expected", [
    ("# CONFIG_X86_X32_ABI is not set\nCONFIG_IA32_EMULATION=y\n", None, "quiet", False),
    ("CONFIG_X86_X32_ABI=y\n", None, "quiet", True),
    (None, "CONFIG_X86_X32=y\nCONFIG_X86_X32_DISABLED=y\n", "quiet", False),     # Debian's way
    (None, "CONFIG_X86_X32=y\nCONFIG_X86_X32_DISABLED=y\n", "quiet syscall.x32=y", True),
    (None, None, "quiet", True),                  # no config to read: cover x32, as Docker does
    (None, "CONFIG_X86_X32=y\nCONFIG_X86_X32_DISABLED=y\n", "syscall.x32=y syscall.x32=off", False),
    (None, "CONFIG_X86_X32=y\nCONFIG_X86_X32_DISABLED=y\n", "quiet syscall.x32", True),
    ("CONFIG_X86_X32_ABI=y\n", None, "syscall.x32=N", False),
])
def test_x32_is_read_from_the_kernel_config(tmp_path: Path, config_gz: str | None,
                                            boot_config: str | None, cmdline: str,
                                            expected: bool) -> None:
    proc, boot = _trees(tmp_path, config_gz=config_gz, boot_config=boot_config, cmdline=cmdline)
    assert x32_abi(proc, boot, release="6.1.0-test", sys_root=tmp_path / "sys") is expected


@pytest.mark.parametrize("switch, expected", [("Y", True), ("N", False)])
def test_x32_is_read_from_its_switch_first(tmp_path: Path, switch: str, expected: bool) -> None:
    proc, boot = _trees(tmp_path, config_gz="# CONFIG_X86_X32_ABI is not set\n")
    param = tmp_path / "sys" / "module" / "syscall" / "parameters"
    param.mkdir(parents=True)
    (param / "x32").write_text(switch + "\n")
    assert x32_abi(proc, boot, release="6.1.0-test", sys_root=tmp_path / "sys") is expected


def test_a_kernel_without_x32_gets_a_filter_without_it() -> None:
    assert default_profile([], arch="x86_64", x32=False)["architectures"] == [
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert "SCMP_ARCH_X32" in default_profile([], arch="x86_64")["architectures"]
    assert default_profile([], arch="aarch64", x32=False)["architectures"] == [
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]


def test_the_engine_probes_x32_once_a_boot(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(seccomp, "x32_abi", lambda *a, **k: calls.append(1) or False)
    assert engine._x32_abi is False
    other = type(engine)(engine.paths.root, engine.paths.run)
    try:
        assert other._x32_abi is False and calls == [1]          # the second read the setting
        boot, _, value = other.db.get_setting("host.x32_abi").rpartition(" ")
        other.db.set_setting("host.x32_abi", f"another-boot {value}")
        third = type(engine)(engine.paths.root, engine.paths.run)
        assert third._x32_abi is False and calls == [1, 1]       # a new boot probes again
        third.close()
    finally:
        other.close()
