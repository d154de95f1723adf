"""The stats sampler on fake trees and a fake /proc: Docker's CPU %, memory, net, block I/O, PIDs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cgroups import layout, open_cgroup
from engine.cgroups.procfs import (CLK_TCK, container_pid, mem_total, net_io, parse_net_dev,
                                   parse_nspid, parse_system_cpu)
from engine.cgroups.processes import cgroup_processes, process_info
from engine.cgroups.stats import StatsSampler, StatsTarget, sample
from tests.engine.cgroups.faketree import FakeV1, FakeV2

MB = 1 << 20


def ticks(seconds: float) -> int:
    return int(seconds * CLK_TCK)


def test_parse_system_cpu_and_meminfo(tmp_path: Path) -> None:
    fake = FakeV2(tmp_path)
    fake.proc.set_cpu(user=ticks(10), system=ticks(5), idle=ticks(85))
    ns, cpus = parse_system_cpu((fake.proc.root / "stat").read_bytes())
    assert cpus == 2
    assert ns == ticks(100) * 1_000_000_000 // CLK_TCK
    assert mem_total(fake.proc.root) == 2_000_000 * 1024


def test_net_dev_sums_interfaces_but_loopback(tmp_path: Path) -> None:
    fake = FakeV2(tmp_path)
    fake.proc.add_pid(100, rx=1500, tx=700, lo=99999)
    assert net_io(fake.proc.root, 100) == (1500, 700)
    assert net_io(fake.proc.root, 101) == (0, 0)        # gone process
    two = (b"h1\nh2\n  eth0: 10 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0\n"
           b"  eth1:5 0 0 0 0 0 0 0 6 0 0 0 0 0 0 0\n    lo: 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n")
    assert parse_net_dev(two) == (15, 26)


def test_nspid(tmp_path: Path) -> None:
    fake = FakeV2(tmp_path)
    fake.proc.add_pid(4321, nspids=(1,))
    fake.proc.add_pid(4400, nspids=(12, 3))             # nested pid namespaces: innermost wins
    fake.proc.add_pid(555)                               # host namespace only
    assert container_pid(fake.proc.root, 4321) == 1
    assert container_pid(fake.proc.root, 4400) == 3
    assert container_pid(fake.proc.root, 555) == 555
    assert container_pid(fake.proc.root, 9) is None
    assert parse_nspid(b"Name:\tx\n") is None


def _v1_target(fake: FakeV1, cid: str, pid: int, **kw: object) -> StatsTarget:
    fake.make(f"/portside/{cid}")
    return StatsTarget(id=cid, name=f"n-{cid}", cgroup=open_cgroup(layout(fake.paths), f"/portside/{cid}"),
                       pid=pid, **kw)  # type: ignore[arg-type]


def test_cpu_percent_like_docker(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    t = _v1_target(fake, "a", 100)
    fake.proc.add_pid(100, nspids=(1,))
    sampler = StatsSampler(proc=fake.proc.root)
    fake.proc.set_cpu(user=ticks(100), system=0, idle=ticks(100))
    first = sampler.sample_targets([t])
    assert first[0].cpu_percent == 0.0                  # nothing to compare with yet
    # The host advances 2 s of CPU time (1 s wall on 2 CPUs); the container used 0.5 s.
    fake.proc.set_cpu(user=ticks(101), system=0, idle=ticks(101))
    fake.set("cpuacct", "/portside/a", "cpuacct.usage", str(500_000_000))
    s = sampler.sample_targets([t])[0]
    assert s.cpu_percent == pytest.approx(50.0)          # half of one CPU
    assert s.online_cpus == 2 and s.cpu_usage_ns == 500_000_000
    # Both CPUs busy for the next second: 200%.
    fake.proc.set_cpu(user=ticks(102), system=0, idle=ticks(102))
    fake.set("cpuacct", "/portside/a", "cpuacct.usage", str(2_500_000_000))
    assert sampler.sample_targets([t])[0].cpu_percent == pytest.approx(200.0)
    sampler.reset()
    assert sampler.sample_targets([t])[0].cpu_percent == 0.0


def test_memory_net_block_pids(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    t = _v1_target(fake, "b", 200)
    fake.proc.add_pid(200, rx=1000, tx=2000, lo=5)
    p = "/portside/b"
    fake.set("memory", p, "memory.usage_in_bytes", str(40 * MB))
    fake.set("memory", p, "memory.limit_in_bytes", str(64 * MB))
    fake.set("memory", p, "memory.stat", f"total_inactive_file {8 * MB}\n")
    fake.set("pids", p, "pids.current", "3\n")
    fake.set("blkio", p, "blkio.io_service_bytes_recursive", "8:0 Read 11\n8:0 Write 22\n")
    s = StatsSampler(proc=fake.proc.root).sample_targets([t])[0]
    assert (s.id, s.name) == ("b", "n-b")
    assert s.memory_usage == 32 * MB and s.memory_limit == 64 * MB
    assert s.memory_percent == pytest.approx(50.0)
    assert (s.net_rx, s.net_tx) == (1000, 2000)
    assert (s.block_read, s.block_write) == (11, 22)
    assert s.pids == 3
    assert s.time.tzinfo is not None


def test_block_io_from_the_processes_when_the_kernel_keeps_no_cgroup_counters(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    t = _v1_target(fake, "io", 400)
    fake.set("memory", "/portside/io", "cgroup.procs", "400\n401\n")
    for pid, (r, w) in ((400, (4096, 100)), (401, (1, 2))):
        fake.proc.add_pid(pid)
        (fake.proc.root / str(pid) / "io").write_text(
            f"rchar: 9\nwchar: 9\nsyscr: 1\nsyscw: 1\nread_bytes: {r}\nwrite_bytes: {w}\n"
            "cancelled_write_bytes: 0\n")
    s = StatsSampler(proc=fake.proc.root).sample_targets([t])[0]
    assert (s.block_read, s.block_write) == (4097, 102)
    # Once the cgroup has per-device counters, they win.
    fake.set("blkio", "/portside/io", "blkio.throttle.io_service_bytes_recursive",
             "254:0 Read 7\n254:0 Write 8\nTotal 15\n")
    s = StatsSampler(proc=fake.proc.root).sample_targets([t])[0]
    assert (s.block_read, s.block_write) == (7, 8)


def test_unlimited_memory_is_shown_against_host_memory(tmp_path: Path) -> None:
    fake = FakeV2(tmp_path)
    fake.make("/portside/c")
    fake.set("/portside/c", "memory.current", str(1000 * 1024))
    t = StatsTarget("c", "c", open_cgroup(layout(fake.paths), "/portside/c"), pid=0)
    s = StatsSampler(proc=fake.proc.root).sample_targets([t])[0]
    assert s.memory_limit == 2_000_000 * 1024
    assert s.memory_percent == pytest.approx(0.05)
    assert (s.net_rx, s.net_tx) == (0, 0)               # no pid known: no network numbers


def test_host_network_shows_no_network_io(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    t = _v1_target(fake, "h", 300, own_netns=False)
    fake.proc.add_pid(300, rx=10**9, tx=10**9)
    s = StatsSampler(proc=fake.proc.root).sample_targets([t])[0]
    assert (s.net_rx, s.net_tx) == (0, 0)


def test_gone_cgroups_are_skipped_and_forgotten(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    a = _v1_target(fake, "a", 1)
    gone = StatsTarget("z", "z", open_cgroup(layout(fake.paths), "/portside/z"))
    sampler = StatsSampler(proc=fake.proc.root)
    assert [s.id for s in sampler.sample_targets([gone, a])] == ["a"]
    sampler.sample_targets([])
    fake.proc.set_cpu(user=ticks(10), system=0, idle=0)
    fake.set("cpuacct", "/portside/a", "cpuacct.usage", "999999")
    assert sampler.sample_targets([a])[0].cpu_percent == 0.0   # a dropped out: fresh start


class Source:
    def __init__(self, targets: list[StatsTarget]) -> None:
        self.targets = targets
        self.calls: list[object] = []

    def stats_targets(self, refs: object = None) -> list[StatsTarget]:
        self.calls.append(refs)
        return self.targets


def test_sampler_with_a_source_and_one_off_sample(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    src = Source([_v1_target(fake, "a", 1), _v1_target(fake, "b", 2)])
    sampler = StatsSampler(src, proc=fake.proc.root)
    assert [s.id for s in sampler.sample(["a", "b"])] == ["a", "b"]
    assert src.calls == [["a", "b"]]
    assert len(sample(src, None, proc=fake.proc.root, interval=0.01)) == 2
    with pytest.raises(RuntimeError, match="no target source"):
        StatsSampler(proc=fake.proc.root).sample()


def test_sample_of_200_fake_containers_is_cheap(tmp_path: Path) -> None:
    import time
    fake = FakeV1(tmp_path)
    targets = []
    for i in range(200):
        targets.append(_v1_target(fake, f"c{i}", 1000 + i))
        fake.proc.add_pid(1000 + i, rx=i, tx=i)
    sampler = StatsSampler(proc=fake.proc.root)
    sampler.sample_targets(targets)
    t0 = time.perf_counter()
    out = sampler.sample_targets(targets)
    elapsed = time.perf_counter() - t0
    assert len(out) == 200 and out[199].net_rx == 199
    assert elapsed < 0.25, f"200 containers took {elapsed * 1000:.0f} ms"


# -- top ---------------------------------------------------------------------------
def test_top_lists_the_cgroup_members_with_details(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    fake.make("/portside/t")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker-arg"])
    try:
        fake.set("memory", "/portside/t", "cgroup.procs", f"{child.pid}\n")
        cg = open_cgroup(layout(fake.paths), "/portside/t")
        procs = cgroup_processes(cg)
        assert [p.pid for p in procs] == [child.pid]
        p = procs[0]
        assert p.container_pid == child.pid               # same pid namespace as the test
        assert p.ppid == os.getpid()
        assert "marker-arg" in p.command
        assert p.memory_rss > 0 and 0 < p.memory_percent < 100
        assert p.user == "root" or p.user.isidentifier() or p.user.isdigit()
        assert p.started is not None and p.status in ("sleeping", "running", "disk-sleep")
        # An empty cgroup falls back to the init pid and its children.
        fake.set("memory", "/portside/t", "cgroup.procs", "")
        assert [q.pid for q in cgroup_processes(cg, init_pid=child.pid)] == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert process_info(child.pid) is None                # gone (reaped): skipped, not an error


def test_top_reads_container_pids_from_the_injected_proc(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    fake.proc.add_pid(os.getpid(), nspids=(7,))
    info = process_info(os.getpid(), proc=fake.proc.root)
    assert info is not None and info.container_pid == 7 and info.pid == os.getpid()


def test_tty_names_are_decoded_from_the_device_number(tmp_path: Path) -> None:
    from engine.cgroups.procfs import process_tty, tty_name
    assert tty_name(0) == "?"
    assert tty_name((136 << 8) | 0) == "pts/0"
    assert tty_name((137 << 8) | 5) == "pts/261"
    assert tty_name((136 << 8) | (0x1000 << 12) | 3) == "pts/4099"  # minor above 255
    assert tty_name((4 << 8) | 1) == "tty1" and tty_name((4 << 8) | 65) == "ttyS1"
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text("42 (sh (x) y) S 1 42 42 34818 42 4194560 0 0\n")
    assert process_tty(tmp_path, 42) == "pts/2"                    # a comm with spaces and parens
    assert process_tty(tmp_path, 43) == "?"


def test_block_io_never_goes_back_while_sampled(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    t = _v1_target(fake, "io", 400)
    fake.set("memory", "/portside/io", "cgroup.procs", "400\n")
    fake.proc.add_pid(400)
    (fake.proc.root / "400" / "io").write_text("read_bytes: 0\nwrite_bytes: 16384\n")
    sampler = StatsSampler(proc=fake.proc.root)
    assert (sampler.sample_targets([t])[0].block_write) == 16384
    # The kernel starts counting for the cgroup, from less than the tasks showed.
    fake.set("blkio", "/portside/io", "blkio.throttle.io_service_bytes_recursive",
             "254:0 Read 4096\n254:0 Write 0\nTotal 4096\n")
    s = sampler.sample_targets([t])[0]
    assert (s.block_read, s.block_write) == (4096, 16384)
