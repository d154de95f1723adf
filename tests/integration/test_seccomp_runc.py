"""The default seccomp profile, loaded by the real runc into a real container.

Each test builds a throwaway OCI bundle (a rootfs holding the host's static
busybox, and a config.json written here) and runs it with ``runc run``.
To show that the *filter* refuses a call, and not the kernel's own
capability check, several runs give the process CAP_SYS_ADMIN while the
profile is built without it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest

from engine.containers.caps import DEFAULT_CAPS
from engine.containers.seccomp import default_profile
from tests.conftest import need_tool

pytestmark = pytest.mark.integration

APPLETS = ("sh", "grep", "cat", "echo", "ls", "true", "unshare", "hostname", "swapon",
           "linux32", "uname", "nsenter")

# A probe for the calls busybox cannot make: prints "name=<errno>" (0 = success).
PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long rc) { printf("%s=%d\n", name, rc < 0 ? errno : 0); }

int main(void) {
    long fd;
    fd = socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0); report("af_alg", fd); if (fd >= 0) close(fd);
    fd = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0); report("af_vsock", fd); if (fd >= 0) close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0); report("af_inet", fd); if (fd >= 0) close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM, 0); report("af_unix", fd); if (fd >= 0) close(fd);
    report("clone3", syscall(SYS_clone3, (void *)0, 0));
    report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("personality_query", personality(0xffffffff));
    report("personality_norandom", personality(0x0040000 /* ADDR_NO_RANDOMIZE */));
    long pid = syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, 0, 0);
    report("clone_newuts", pid);
    pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, 0, 0);
    report("clone_plain", pid);
    fflush(stdout);
    return 0;
}
"""


def _caps(names: Iterable[str]) -> list[str]:
    return sorted({n if n.startswith("CAP_") else f"CAP_{n}" for n in names})


class Bundle:
    """One OCI bundle and a runc state root, both in a temp dir."""

    def __init__(self, base: Path, runc: str) -> None:
        self.base = base
        self.runc = runc
        self.rootfs = base / "rootfs"
        self.state = base / "runc-state"
        self.state.mkdir(parents=True)
        (self.rootfs / "bin").mkdir(parents=True)
        for d in ("proc", "dev", "sys", "tmp"):
            (self.rootfs / d).mkdir()
        shutil.copy2(_static_busybox(), self.rootfs / "bin" / "busybox")
        for applet in APPLETS:
            os.symlink("busybox", self.rootfs / "bin" / applet)

    def run(self, args: list[str], *, caps: Iterable[str],
            seccomp: dict[str, Any] | None) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in a fresh container; always deleted afterwards."""
        cid = f"portside-seccomp-{uuid.uuid4().hex[:12]}"
        cap_list = _caps(caps)
        linux: dict[str, Any] = {
            "namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")],
            "cgroupsPath": f"/{cid}",   # top level: runc delete removes it whole
        }
        if seccomp is not None:
            linux["seccomp"] = seccomp
        config = {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                "env": ["PATH=/bin"], "cwd": "/",
                "capabilities": {"bounding": cap_list, "effective": cap_list,
                                 "permitted": cap_list},
                "noNewPrivileges": False,
            },
            "root": {"path": "rootfs", "readonly": True},
            "hostname": "seccomp-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev"]},
            ],
            "linux": linux,
        }
        (self.base / "config.json").write_text(json.dumps(config))
        try:
            return subprocess.run([self.runc, "--root", str(self.state), "run", "--bundle",
                                   str(self.base), cid],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=60)
        finally:
            subprocess.run([self.runc, "--root", str(self.state), "delete", "--force", cid],
                           capture_output=True, timeout=60)


def _is_static_elf(path: Path) -> bool:
    """A 64-bit little-endian ELF with no program interpreter (PT_INTERP)."""
    data = path.read_bytes()[:65536]
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    types = [int.from_bytes(data[phoff + i * phentsize: phoff + i * phentsize + 4], "little")
             for i in range(phnum)]
    return 3 not in types


def _static_busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        p = Path(candidate)
        if p.exists() and _is_static_elf(p.resolve()):
            return p
    pytest.fail("no static busybox on the host: run `make setup` (installs busybox-static)")


@pytest.fixture
def bundle(tmp_path: Path) -> Iterator[Bundle]:
    runc = need_tool("runc")
    b = Bundle(tmp_path / "bundle", runc)
    yield b
    shutil.rmtree(tmp_path / "bundle", ignore_errors=True)


def test_seccomp_mode_2_and_ordinary_commands_work(bundle: Bundle) -> None:
    profile = default_profile(set(DEFAULT_CAPS))
    r = bundle.run(["sh", "-c", "grep Seccomp: /proc/self/status; echo piped | cat; "
                                "ls / > /dev/null && echo listed; linux32 uname -m"],
                   caps=DEFAULT_CAPS, seccomp=profile)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].split() == ["Seccomp:", "2"]
    assert lines[1:4] == ["piped", "listed", "i686"]     # fork, pipe, exec, personality(PER_LINUX32)


def test_control_run_without_a_profile(bundle: Bundle) -> None:
    # Proves the checks below can fail: with no filter and CAP_SYS_ADMIN the
    # same commands succeed (or fail for a reason other than EPERM).
    r = bundle.run(["sh", "-c", "grep Seccomp: /proc/self/status; unshare -n true && echo unshared; "
                                "swapon /bin/busybox; true"],
                   caps=set(DEFAULT_CAPS) | {"CAP_SYS_ADMIN"}, seccomp=None)
    assert r.returncode == 0, r.stderr
    assert "Seccomp:\t0" in r.stdout and "unshared" in r.stdout
    # The kernel itself gets to look at the file (ETXTBSY: it is running).
    assert _swapon_error(r.stderr) != "Operation not permitted"


def test_sys_admin_calls_need_the_capability_in_the_profile(bundle: Bundle) -> None:
    caps = set(DEFAULT_CAPS) | {"CAP_SYS_ADMIN"}
    script = ("unshare -n true && echo unshare-ok; hostname renamed && echo hostname-ok; "
              "swapon /bin/busybox; true")
    denied = bundle.run(["sh", "-c", script], caps=caps, seccomp=default_profile(set(DEFAULT_CAPS)))
    assert denied.returncode == 0, denied.stderr
    assert "unshare-ok" not in denied.stdout and "hostname-ok" not in denied.stdout
    assert "Operation not permitted" in denied.stderr

    allowed = bundle.run(["sh", "-c", script], caps=caps, seccomp=default_profile(caps))
    assert allowed.returncode == 0, allowed.stderr
    assert "unshare-ok" in allowed.stdout and "hostname-ok" in allowed.stdout
    # swapon is never allowed, whatever the capabilities.
    assert _swapon_error(allowed.stderr) == "Operation not permitted"


def _swapon_error(stderr: str) -> str:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("swapon:"))
    return line.rsplit(": ", 1)[1]


def _build_probe(bundle: Bundle, tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the syscall probe cannot be built")
    src = tmp_path / "probe.c"
    src.write_text(PROBE_C)
    out = subprocess.run([gcc, "-static", "-O1", "-o", str(bundle.rootfs / "bin" / "probe"), str(src)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot build a static probe (libc6-dev missing?): {out.stderr[-300:]}")


def _probe(bundle: Bundle, caps: set[str], profile: dict[str, Any] | None) -> dict[str, int]:
    r = bundle.run(["probe"], caps=caps, seccomp=profile)
    assert r.returncode == 0, r.stderr
    return {k: int(v) for k, v in (line.split("=") for line in r.stdout.split())}


def test_argument_filters_and_never_allowed_calls(bundle: Bundle, tmp_path: Path) -> None:
    _build_probe(bundle, tmp_path)
    caps = set(DEFAULT_CAPS) | {"CAP_SYS_ADMIN"}     # the filter, not the kernel, must refuse
    EPERM, ENOSYS = 1, 38

    free = _probe(bundle, caps, None)                # control: no filter
    assert free["keyctl"] == 0 and free["personality_norandom"] == 0
    assert free["clone_newuts"] == 0 and free["clone3"] not in (EPERM, ENOSYS)

    got = _probe(bundle, caps, default_profile(set(DEFAULT_CAPS)))
    assert got["af_alg"] == EPERM and got["af_vsock"] == EPERM
    assert got["af_inet"] == 0 and got["af_unix"] == 0
    assert got["clone3"] == ENOSYS                   # so libc falls back to clone
    assert got["keyctl"] == EPERM and got["userfaultfd"] == EPERM
    assert got["personality_query"] == 0 and got["personality_norandom"] == EPERM
    assert got["clone_newuts"] == EPERM and got["clone_plain"] == 0

    admin = _probe(bundle, caps, default_profile(caps))
    assert admin["clone_newuts"] == 0                # with SYS_ADMIN namespaces are allowed
    assert admin["keyctl"] == EPERM                  # never allowed
