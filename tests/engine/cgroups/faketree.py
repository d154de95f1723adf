"""Fake cgroup v1/v2 trees and a fake /proc in a temp dir (the roots are parameters).

Files hold what the kernel shows for a fresh cgroup; tests then overwrite
counters to simulate use and read back what the code wrote.
"""
from __future__ import annotations

from pathlib import Path

from engine.paths import Paths

V1_MOUNTINFO = """\
24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 24 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
"""
HYBRID_EXTRA = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
V2_MOUNTINFO = """\
24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 24 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""

PROC_STAT = """\
cpu  {user} 0 {system} {idle} 0 0 0 0 0 0
cpu0 0 0 0 0 0 0 0 0 0 0
cpu1 0 0 0 0 0 0 0 0 0 0
intr 1 2 3
ctxt 100
btime 1700000000
"""

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: {lo} 10 0 0 0 0 0 0 {lo} 10 0 0 0 0 0 0
  eth0: {rx} 20 0 0 0 0 0 0 {tx} 30 0 0 0 0 0 0
"""


def put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def add_live(proc_root: Path, pid: int, name: str = "conmon") -> None:
    """A running process's ``stat`` (what liveness checks read), start time 0."""
    fields = " ".join(["S", "1"] + ["0"] * 20)
    put(proc_root / str(pid) / "stat", f"{pid} ({name}) {fields}\n")


class FakeProc:
    """A /proc with stat, meminfo, mountinfo and per-pid status and net/dev."""

    def __init__(self, root: Path, mountinfo: str, mem_total_kb: int = 2_000_000) -> None:
        self.root = root
        put(root / "self" / "mountinfo", mountinfo)
        put(root / "meminfo", f"MemTotal:       {mem_total_kb} kB\nMemFree:  1000 kB\n")
        self.set_cpu(0, 0, 0)

    def set_cpu(self, user: int, system: int, idle: int) -> None:
        """Host CPU time in clock ticks (two CPUs)."""
        put(self.root / "stat", PROC_STAT.format(user=user, system=system, idle=idle))

    def add_pid(self, pid: int, nspids: tuple[int, ...] = (), rx: int = 0, tx: int = 0,
                lo: int = 0) -> None:
        ns = "\t".join(str(p) for p in ((pid,) + nspids))
        put(self.root / str(pid) / "status",
            f"Name:\tsh\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\n"
            f"PPid:\t1\nNSpid:\t{ns}\nNSpgid:\t{ns}\n")
        put(self.root / str(pid) / "net" / "dev", NET_DEV.format(rx=rx, tx=tx, lo=lo))


    def add_live(self, pid: int, name: str = "conmon") -> None:
        add_live(self.root, pid, name)


class FakeV1:
    """A v1 tree: cpu,cpuacct co-mounted (with symlinks), memory, pids, blkio, cpuset, freezer."""

    def __init__(self, tmp: Path, *, hybrid: bool = False, swap_accounting: bool = True,
                 cfq: bool = True) -> None:
        """``cfq``: the kernel has blkio.io_service_bytes_recursive (CFQ/BFQ era)."""
        self.root = tmp / "cgroup"
        self.swap_accounting = swap_accounting
        self.cfq = cfq
        self.proc = FakeProc(tmp / "proc", V1_MOUNTINFO + (HYBRID_EXTRA if hybrid else ""))
        for d in ("cpu,cpuacct", "cpuset", "memory", "freezer", "blkio", "pids", "systemd"):
            (self.root / d).mkdir(parents=True)
            put(self.root / d / "cgroup.procs", "")
        (self.root / "cpu").symlink_to("cpu,cpuacct")
        (self.root / "cpuacct").symlink_to("cpu,cpuacct")
        put(self.root / "cpuset" / "cpuset.cpus", "0-1\n")
        put(self.root / "cpuset" / "cpuset.mems", "0\n")
        put(self.root / "blkio" / "blkio.throttle.io_service_bytes_recursive", "Total 0\n")
        if cfq:
            put(self.root / "blkio" / "blkio.io_service_bytes_recursive", "Total 0\n")
        if hybrid:
            put(self.root / "unified" / "cgroup.controllers", "")
        self.paths = Paths(root=tmp / "state", run=tmp / "run", cgroup_root=self.root,
                           proc=self.proc.root)

    def dir(self, controller: str, path: str) -> Path:
        d = {"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct"}.get(controller, controller)
        return self.root / d / path.strip("/")

    def make(self, path: str) -> None:
        """Create the cgroup as the kernel would (files with fresh values)."""
        cpu = self.dir("cpu", path)
        put(cpu / "cgroup.procs", "")
        put(cpu / "cpuacct.usage", "0\n")
        put(cpu / "cpu.shares", "1024\n")
        put(cpu / "cpu.cfs_quota_us", "-1\n")
        put(cpu / "cpu.cfs_period_us", "100000\n")
        mem = self.dir("memory", path)
        put(mem / "cgroup.procs", "")
        put(mem / "memory.usage_in_bytes", "0\n")
        put(mem / "memory.limit_in_bytes", "9223372036854771712\n")
        put(mem / "memory.soft_limit_in_bytes", "9223372036854771712\n")
        if self.swap_accounting:
            put(mem / "memory.memsw.limit_in_bytes", "9223372036854771712\n")
        put(mem / "memory.stat", "cache 0\nrss 0\ninactive_file 0\ntotal_cache 0\ntotal_inactive_file 0\n")
        put(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
        pids = self.dir("pids", path)
        put(pids / "cgroup.procs", "")
        put(pids / "pids.current", "0\n")
        put(pids / "pids.max", "max\n")
        blk = self.dir("blkio", path)
        put(blk / "cgroup.procs", "")
        if self.cfq:
            put(blk / "blkio.io_service_bytes_recursive", "Total 0\n")
        put(blk / "blkio.throttle.io_service_bytes_recursive", "Total 0\n")
        cs = self.dir("cpuset", path)
        put(cs / "cgroup.procs", "")
        put(cs / "cpuset.cpus", "0-1\n")
        put(cs / "cpuset.mems", "0\n")
        fr = self.dir("freezer", path)
        put(fr / "cgroup.procs", "")
        put(fr / "freezer.state", "THAWED\n")

    def read(self, controller: str, path: str, name: str) -> str:
        return (self.dir(controller, path) / name).read_text().strip()

    def set(self, controller: str, path: str, name: str, text: str) -> None:
        put(self.dir(controller, path) / name, text)


class FakeV2:
    """A pure v2 tree with memory, cpu, io, pids, cpuset delegated from the root."""

    CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"

    def __init__(self, tmp: Path, *, mountinfo: bool = True) -> None:
        self.root = tmp / "cgroup"
        self.proc = FakeProc(tmp / "proc", V2_MOUNTINFO if mountinfo else "")
        put(self.root / "cgroup.controllers", self.CONTROLLERS + "\n")
        put(self.root / "cgroup.subtree_control", "")
        put(self.root / "cgroup.procs", "")
        self.paths = Paths(root=tmp / "state", run=tmp / "run", cgroup_root=self.root,
                           proc=self.proc.root)

    def dir(self, path: str) -> Path:
        return self.root / path.strip("/")

    def make(self, path: str) -> None:
        d = self.dir(path)
        parent = d.parent
        while parent != self.root and not (parent / "cgroup.controllers").exists():
            put(parent / "cgroup.controllers", "cpuset cpu io memory pids\n")
            put(parent / "cgroup.subtree_control", "")
            parent = parent.parent
        for name, text in {
            "cgroup.procs": "", "cgroup.controllers": "cpuset cpu io memory pids\n",
            "cgroup.subtree_control": "", "cgroup.freeze": "0\n",
            "cgroup.events": "populated 1\nfrozen 0\n",
            "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
            "cpu.max": "max 100000\n", "cpu.weight": "100\n",
            "memory.current": "0\n", "memory.max": "max\n", "memory.low": "0\n",
            "memory.swap.max": "max\n",
            "memory.stat": "anon 0\nfile 0\ninactive_anon 0\nactive_anon 0\ninactive_file 0\nactive_file 0\n",
            "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
            "pids.current": "0\n", "pids.max": "max\n", "io.stat": "",
            "cpuset.cpus": "", "cpuset.mems": "",
        }.items():
            put(d / name, text)

    def read(self, path: str, name: str) -> str:
        return (self.dir(path) / name).read_text().strip()

    def set(self, path: str, name: str, text: str) -> None:
        put(self.dir(path) / name, text)
