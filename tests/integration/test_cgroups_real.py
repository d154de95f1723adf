"""cgroups on this machine's real tree (v1/hybrid here; v2 elsewhere), without containers.

Each test makes a cgroup ``/portside-test-<random>`` in every hierarchy
portside uses, starts a Python child that waits on stdin, moves it into the
cgroup, lets it run its workload and checks what the kernel enforced and
reported. Only the processes a test started are killed (by pid), and the
cgroup is removed even when the test fails.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from engine.cgroups import Cgroup, V1Cgroup, layout, open_cgroup
from engine.cgroups.processes import cgroup_processes
from engine.cgroups.resources import ResourceLimits, oci_resources
from engine.cgroups.stats import StatsSampler, StatsTarget
from engine.errors import ResourceError
from engine.paths import Paths

pytestmark = pytest.mark.integration

MB = 1 << 20


class Workload:
    """A Python child that starts its script only after it has been put in the cgroup."""

    def __init__(self, cg: Cgroup, script: str) -> None:
        prologue = "import sys\nsys.stdin.readline()\n"
        self.proc = subprocess.Popen([sys.executable, "-c", prologue + textwrap.dedent(script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        cg.add_process(self.proc.pid)
        assert self.proc.pid in cg.pids()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def readline(self, timeout: float = 20) -> str:
        assert self.proc.stdout is not None
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"workload said nothing in {timeout} s")
        return self.proc.stdout.readline().strip()

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)


@pytest.fixture
def cgroup() -> Iterator[Cgroup]:
    lay = layout(Paths())
    if lay.version == 0:
        pytest.fail("no cgroups mounted under /sys/fs/cgroup")
    cg = open_cgroup(lay, f"/portside-test-{secrets.token_hex(4)}")
    cg.create()
    started: list[subprocess.Popen[str]] = []
    cg._test_started = started  # type: ignore[attr-defined]
    try:
        yield cg
    finally:
        # Kill what is left in our cgroup: only processes this test started
        # (and their children, which can only be there because we put them there).
        for _ in range(50):
            pids = cg.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        if cg.freezer_state() != "thawed":
            cg.thaw()
        cg.remove()
        assert not cg.exists()


# Writes then reads 8 MiB with O_DIRECT (so it reaches the disk now, in this
# process's name), says "ready" and waits for a line.
DIRECT_IO = """
import mmap, os, sys
buf = mmap.mmap(-1, 1 << 20)                   # page-aligned, as O_DIRECT needs
buf.write(b"\\x03" * (1 << 20))
fd = os.open({path!r}, os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
for _ in range(8):
    os.write(fd, buf)
os.fsync(fd)
os.close(fd)
fd = os.open({path!r}, os.O_RDONLY | os.O_DIRECT)
while os.readv(fd, [buf]) > 0:
    pass
os.close(fd)
print("ready", flush=True)
sys.stdin.readline()
"""


def start(cg: Cgroup, script: str) -> Workload:
    w = Workload(cg, script)
    cg._test_started.append(w.proc)  # type: ignore[attr-defined]
    return w


def test_memory_hog_is_oom_killed_and_counted(cgroup: Cgroup) -> None:
    warnings = cgroup.apply(oci_resources(ResourceLimits(memory=32 * MB, memory_swap=32 * MB)))
    assert warnings == []
    assert cgroup.limits()["memory"]["limit"] == 32 * MB
    assert cgroup.oom_kills() == 0
    w = start(cgroup, """
        chunks = []
        for i in range(400):
            chunks.append(b"\\x01" * (1 << 20))   # touched pages, 1 MiB at a time
            print(i, flush=True)
        print("survived", flush=True)
    """)
    w.go()
    rc = w.wait()
    out = w.proc.stdout.read() if w.proc.stdout else ""
    assert rc == -signal.SIGKILL, f"hog exited with {rc}; output tail {out[-200:]!r}"
    assert "survived" not in out
    assert cgroup.oom_kills() >= 1


def test_fork_loop_stops_at_the_pids_limit(cgroup: Cgroup) -> None:
    limit = 10
    cgroup.apply(oci_resources(ResourceLimits(pids_limit=limit)))
    w = start(cgroup, """
        import os, sys, time
        kids, failed = [], 0
        for _ in range(40):
            try:
                pid = os.fork()
            except OSError:
                failed += 1
                continue
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
        print(len(kids), failed, flush=True)
        sys.stdin.readline()
        for k in kids:
            os.kill(k, 9)
            os.waitpid(k, 0)
    """)
    w.go()
    forked, failed = map(int, w.readline().split())
    # The workload itself is one of the `limit` tasks.
    assert forked == limit - 1 and failed == 40 - forked
    assert cgroup.stats().pids_current == limit
    w.say("done")
    assert w.wait() == 0
    assert cgroup.stats().pids_current == 0


# The CPU tests run beside the rest of the suite (two workers on two cores):
# the highest CPU weight makes the loop win the scheduler against the other
# tests' processes, so what the figures show is the quota (or its absence),
# not how busy the machine happened to be.
TOP_SHARES = 262144


def test_half_a_cpu_holds_a_busy_loop_near_50_percent(cgroup: Cgroup) -> None:
    cgroup.apply(oci_resources(ResourceLimits(cpus=0.5, cpu_shares=TOP_SHARES)))
    w = start(cgroup, """
        import time
        end = time.monotonic() + 8
        while time.monotonic() < end:
            pass
    """)
    w.go()
    time.sleep(0.5)
    sampler = StatsSampler()
    target = StatsTarget("t", "t", cgroup, pid=w.proc.pid)
    sampler.sample_targets([target])
    t0, u0 = time.monotonic(), cgroup.stats().cpu_usage_ns
    time.sleep(3)
    pct = sampler.sample_targets([target])[0].cpu_percent
    share = (cgroup.stats().cpu_usage_ns - u0) / 1e9 / (time.monotonic() - t0)
    assert 30 <= pct <= 70, f"docker-style CPU% {pct:.1f}"
    assert 0.3 <= share <= 0.7, f"CPU share {share:.2f}"


def test_unlimited_busy_loop_uses_a_whole_cpu(cgroup: Cgroup) -> None:
    # The control for the quota test: without a quota the same loop takes ~100%.
    cgroup.apply(oci_resources(ResourceLimits(cpu_shares=TOP_SHARES)))
    w = start(cgroup, """
        import time
        end = time.monotonic() + 6
        while time.monotonic() < end:
            pass
    """)
    w.go()
    time.sleep(0.3)
    sampler = StatsSampler()
    target = StatsTarget("t", "t", cgroup, pid=w.proc.pid)
    sampler.sample_targets([target])
    time.sleep(2)
    pct = sampler.sample_targets([target])[0].cpu_percent
    # Other work on the host can take some of the CPU; the point is that it
    # is clearly above the 50% the quota allows.
    assert pct >= 65, f"an unthrottled loop got only {pct:.1f}%"


def test_stats_of_a_known_workload(cgroup: Cgroup, tmp_path: Path) -> None:
    cgroup.apply(oci_resources(ResourceLimits(memory=128 * MB)))
    w = start(cgroup, "hold = b'\\x02' * (40 << 20)\n"       # 40 MiB resident
              + DIRECT_IO.format(path=str(tmp_path / "direct.bin")))
    w.go()
    assert w.readline() == "ready"
    s = StatsSampler().sample_targets([StatsTarget("k", "k", cgroup, pid=w.proc.pid)])[0]
    assert 40 * MB <= s.memory_usage <= 128 * MB, s.memory_usage
    assert s.memory_limit == 128 * MB
    assert 30 <= s.memory_percent <= 100
    assert s.pids == 1
    assert s.block_write >= 8 * MB, s.block_write
    assert s.block_read >= 8 * MB, s.block_read
    procs = cgroup_processes(cgroup)
    assert [p.pid for p in procs] == [w.proc.pid]
    assert procs[0].container_pid == w.proc.pid and procs[0].memory_rss >= 40 * MB
    w.say("done")
    assert w.wait() == 0


def test_kernel_blkio_counters_are_read_when_the_kernel_keeps_them(cgroup: Cgroup,
                                                                   tmp_path: Path) -> None:
    # v1 blk-throttle on this kernel counts only cgroups with a throttle rule;
    # a rule far above the disk's speed turns counting on without limiting.
    if not isinstance(cgroup, V1Cgroup):
        pytest.skip("v1 blkio only; v2 io.stat counts without rules")
    dev = os.stat(tmp_path).st_dev
    rule = f"{os.major(dev)}:{os.minor(dev)} {1 << 40}"
    try:
        (cgroup.dirs["blkio"] / "blkio.throttle.write_bps_device").write_text(rule)
        (cgroup.dirs["blkio"] / "blkio.throttle.read_bps_device").write_text(rule)
    except OSError as err:
        pytest.skip(f"no throttle rule possible on {rule.split()[0]} (a partition?): {err}")
    w = start(cgroup, DIRECT_IO.format(path=str(tmp_path / "direct.bin")))
    w.go()
    assert w.readline() == "ready"
    s = cgroup.stats()
    assert s.io_accounted
    assert s.io_write_bytes >= 8 * MB and s.io_read_bytes >= 8 * MB, s
    w.say("done")
    assert w.wait() == 0


def test_update_limits_on_a_running_workload(cgroup: Cgroup) -> None:
    w = start(cgroup, """
        import sys
        hold = b"\\x04" * (24 << 20)
        print("ready", flush=True)
        sys.stdin.readline()
    """)
    w.go()
    assert w.readline() == "ready"
    cgroup.apply(oci_resources(ResourceLimits(memory=64 * MB, pids_limit=5), creating=False))
    assert cgroup.limits()["memory"]["limit"] == 64 * MB
    assert cgroup.limits()["pids"] == {"limit": 5}
    # Below what the workload holds (no swap to push it to): the kernel refuses,
    # and the message says what to do.
    with pytest.raises(ResourceError, match="memory limit"):
        cgroup.apply({"memory": {"limit": 8 * MB}})
    assert w.proc.poll() is None
    cgroup.apply({"memory": {"limit": -1}, "pids": {"limit": -1}})
    assert "memory" not in cgroup.limits() or "limit" not in cgroup.limits()["memory"]
    w.say("done")
    assert w.wait() == 0


def test_freeze_stops_cpu_use_and_thaw_resumes(cgroup: Cgroup) -> None:
    w = start(cgroup, """
        import time
        end = time.monotonic() + 10
        while time.monotonic() < end:
            pass
    """)
    w.go()
    time.sleep(0.3)
    cgroup.freeze()
    assert cgroup.freezer_state() == "frozen"
    u0 = cgroup.stats().cpu_usage_ns
    time.sleep(0.5)
    assert cgroup.stats().cpu_usage_ns - u0 < 5_000_000       # < 5 ms in 500 ms
    cgroup.thaw()
    assert cgroup.freezer_state() == "thawed"
    u1 = cgroup.stats().cpu_usage_ns
    time.sleep(1)  # thawed: it runs again (other work on the host may share the CPU)
    assert cgroup.stats().cpu_usage_ns - u1 > 150_000_000


def test_a_kept_control_file_of_a_removed_cgroup_reads_as_gone() -> None:
    from engine.cgroups.keptfiles import KeptFiles
    cg = open_cgroup(layout(Paths()), f"/portside-test-{secrets.token_hex(4)}")
    cg.create()
    kept = KeptFiles(budget=8)
    try:
        first = cg._sample_files[0]  # type: ignore[attr-defined]
        assert kept.read(first, "x") is not None and len(kept) == 1
        assert cg.sample(kept.reader("x")) is not None
    finally:
        cg.remove()
    # The descriptor still open does not keep the cgroup: reads now fail and it is dropped.
    assert not cg.exists()
    assert cg.sample(kept.reader("x")) is None
    assert kept.read(first, "x") is None
    kept.close()


def test_v2_code_on_this_hosts_unified_hierarchy() -> None:
    # Hybrid hosts bind memory/cpu/pids to v1, but every cgroup2 cgroup has
    # core files (cgroup.procs, cpu.stat, cgroup.freeze/events): enough to
    # run the v2 code for real — create, join, CPU accounting, freezer, remove.
    from engine.cgroups import V2Cgroup
    lay = layout(Paths())
    if lay.unified is None:
        pytest.skip("no cgroup2 mount on this host")
    cg = V2Cgroup(lay.unified, f"/portside-test-{secrets.token_hex(4)}")
    cg.create()
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys, time\nsys.stdin.readline()\nend = time.monotonic() + 20\n"
                             "while time.monotonic() < end:\n    pass\n"],
                            stdin=subprocess.PIPE, text=True)
    try:
        cg.add_process(proc.pid)
        assert cg.pids() == [proc.pid]
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        # On a busy host the loop may get less than a core: wait (bounded) for
        # the CPU time to show rather than assume how much 0.5 s brings.
        deadline = time.monotonic() + 15
        s = cg.sample()
        while s is not None and s.cpu_usage_ns <= 100_000_000 and time.monotonic() < deadline:
            time.sleep(0.1)
            s = cg.sample()
        assert s is not None and s.cpu_usage_ns > 100_000_000
        cg.freeze()
        assert cg.freezer_state() == "frozen"
        u0 = cg.stats().cpu_usage_ns
        time.sleep(0.5)
        assert cg.stats().cpu_usage_ns - u0 < 5_000_000
        cg.thaw()
        assert cg.freezer_state() == "thawed"
    finally:
        proc.kill()
        proc.wait()
        cg.remove()
    assert not cg.exists() and cg.sample() is None
