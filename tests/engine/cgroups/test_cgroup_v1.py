"""v1 cgroups on a fake tree: reading stats, writing limits, freezer, OOM counts."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.cgroups import V1Cgroup, layout, oci_resources, open_cgroup
from engine.cgroups.resources import ResourceLimits
from engine.cgroups.v1 import parse_blkio
from engine.errors import ResourceError
from tests.engine.cgroups.faketree import FakeV1

P = "/portside/c1"
UNL = "9223372036854771712"


@pytest.fixture
def fake(tmp_path: Path) -> FakeV1:
    f = FakeV1(tmp_path)
    f.make(P)
    return f


@pytest.fixture
def cg(fake: FakeV1) -> V1Cgroup:
    c = open_cgroup(layout(fake.paths), P)
    assert isinstance(c, V1Cgroup)
    return c


def test_fresh_cgroup_reads_as_unlimited_and_idle(cg: V1Cgroup) -> None:
    s = cg.stats()
    assert s.cpu_usage_ns == 0 and s.memory_usage == 0 and s.pids_current == 0
    assert s.memory_limit is None
    assert cg.oom_kills() == 0
    assert cg.freezer_state() == "thawed"
    assert cg.limits() == {"cpu": {"cpus": "0-1", "mems": "0"}}


def test_stats_read_the_kernel_counters(fake: FakeV1, cg: V1Cgroup) -> None:
    fake.set("cpuacct", P, "cpuacct.usage", "123456789\n")
    fake.set("memory", P, "memory.usage_in_bytes", "50000000\n")
    fake.set("memory", P, "memory.limit_in_bytes", "67108864\n")
    fake.set("memory", P, "memory.stat", "cache 30000000\ninactive_file 5\n"
             "total_cache 30000000\ntotal_inactive_file 20000000\n")
    fake.set("pids", P, "pids.current", "7\n")
    fake.set("blkio", P, "blkio.io_service_bytes_recursive",
             "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Async 2\n8:0 Total 12288\n"
             "8:16 Read 1000\n8:16 Write 0\nTotal 13288\n")
    fake.set("memory", P, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    s = cg.stats()
    assert s.cpu_usage_ns == 123456789
    assert s.memory_usage == 50000000 and s.memory_limit == 64 * 1024 * 1024
    assert s.memory_inactive_file == 20000000          # total_, not the local counter
    assert s.memory_working_set == 30000000
    assert s.pids_current == 7
    assert (s.io_read_bytes, s.io_write_bytes) == (5096, 8192)
    assert cg.oom_kills() == 3


def test_blkio_falls_back_to_the_throttle_counters(fake: FakeV1, cg: V1Cgroup) -> None:
    fake.set("blkio", P, "blkio.io_service_bytes_recursive", "Total 0\n")
    fake.set("blkio", P, "blkio.throttle.io_service_bytes_recursive",
             "253:0 Read 10\n253:0 Write 20\n253:0 Total 30\nTotal 30\n")
    s = cg.stats()
    assert (s.io_read_bytes, s.io_write_bytes) == (10, 20) and s.io_accounted
    fake.set("blkio", P, "blkio.throttle.io_service_bytes_recursive", "Total 0\n")
    assert not cg.stats().io_accounted


def test_kernels_without_cfq_counters_read_the_throttle_layer(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path, cfq=False)
    fake.make(P)
    fake.set("blkio", P, "blkio.throttle.io_service_bytes_recursive",
             "254:0 Read 4096\n254:0 Write 512\n254:0 Total 4608\nTotal 4608\n")
    s = open_cgroup(layout(fake.paths), P).stats()
    assert (s.io_read_bytes, s.io_write_bytes, s.io_accounted) == (4096, 512, True)


def test_parse_blkio_ignores_totals_and_blank() -> None:
    assert parse_blkio(b"") == (0, 0, False)
    assert parse_blkio(None) == (0, 0, False)
    assert parse_blkio(b"Total 0\n") == (0, 0, False)       # no device counted
    assert parse_blkio(b"8:0 Read 1\n8:0 Write 2\n8:0 Discard 9\nTotal 3\n\n") == (1, 2, True)


def test_gone_cgroup_reads_as_zero_not_an_error(fake: FakeV1) -> None:
    cg = open_cgroup(layout(fake.paths), "/portside/never")
    assert not cg.exists()
    assert cg.sample() is None
    assert cg.stats().memory_usage == 0 and cg.pids() == []


def test_apply_writes_every_limit(fake: FakeV1, cg: V1Cgroup) -> None:
    res = oci_resources(ResourceLimits(memory=64 << 20, memory_reservation=32 << 20,
                                       cpus=0.5, cpu_shares=512, cpuset_cpus="1",
                                       cpuset_mems="0", pids_limit=50, oom_kill_disable=True))
    assert cg.apply(res) == []
    assert fake.read("memory", P, "memory.limit_in_bytes") == str(64 << 20)
    assert fake.read("memory", P, "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert fake.read("memory", P, "memory.soft_limit_in_bytes") == str(32 << 20)
    assert fake.read("memory", P, "memory.oom_control") == "1"
    assert fake.read("cpu", P, "cpu.cfs_period_us") == "100000"
    assert fake.read("cpu", P, "cpu.cfs_quota_us") == "50000"
    assert fake.read("cpu", P, "cpu.shares") == "512"
    assert fake.read("cpuset", P, "cpuset.cpus") == "1"
    assert fake.read("pids", P, "pids.max") == "50"


def test_limits_read_back_as_oci_resources(fake: FakeV1, cg: V1Cgroup) -> None:
    cg.apply(oci_resources(ResourceLimits(memory=64 << 20, cpus=1.5, pids_limit=9)))
    fake.set("memory", P, "memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n")
    got = cg.limits()
    assert got["memory"] == {"limit": 64 << 20, "swap": 128 << 20, "disableOOMKiller": True}
    assert got["cpu"]["quota"] == 150000 and got["cpu"]["period"] == 100000
    assert got["pids"] == {"limit": 9}


def test_unlimited_values(fake: FakeV1, cg: V1Cgroup) -> None:
    cg.apply({"memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 5},
              "cpu": {"quota": 20000}})
    cg.apply({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert fake.read("memory", P, "memory.limit_in_bytes") == "-1"
    assert fake.read("memory", P, "memory.memsw.limit_in_bytes") == "-1"
    assert fake.read("pids", P, "pids.max") == "max"
    assert fake.read("cpu", P, "cpu.cfs_quota_us") == "-1"


def _record_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    from engine.cgroups import files, v1
    log: list[tuple[str, str]] = []
    real = files.write

    def spy(path: Path, value: object, *, what: str) -> None:
        log.append((path.name, str(value)))
        real(path, value, what=what)  # type: ignore[arg-type]

    monkeypatch.setattr(v1, "write", spy)
    return log


def test_raising_memory_raises_memsw_first(fake: FakeV1, cg: V1Cgroup,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cg.apply({"memory": {"limit": 64 << 20, "swap": 128 << 20}})
    log = _record_writes(monkeypatch)
    cg.apply({"memory": {"limit": 256 << 20, "swap": 512 << 20}})
    assert [n for n, _ in log] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    log.clear()
    cg.apply({"memory": {"limit": 32 << 20, "swap": 64 << 20}})
    assert [n for n, _ in log] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_memory_above_the_set_swap_limit_is_refused(fake: FakeV1, cg: V1Cgroup) -> None:
    cg.apply({"memory": {"limit": 64 << 20, "swap": 128 << 20}})
    with pytest.raises(ResourceError, match="memory\\+swap limit already set"):
        cg.apply({"memory": {"limit": 256 << 20}})
    cg.apply({"memory": {"limit": 100 << 20}})          # within memsw: fine
    assert fake.read("memory", P, "memory.limit_in_bytes") == str(100 << 20)


def test_no_swap_accounting_warns_and_sets_memory(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path, swap_accounting=False)
    fake.make(P)
    cg = open_cgroup(layout(fake.paths), P)
    warnings = cg.apply({"memory": {"limit": 64 << 20, "swap": 128 << 20}})
    assert warnings and "swap" in warnings[0]
    assert fake.read("memory", P, "memory.limit_in_bytes") == str(64 << 20)


def test_missing_controller_file_is_a_resource_error(fake: FakeV1, cg: V1Cgroup) -> None:
    os.unlink(fake.dir("pids", P) / "pids.max")
    with pytest.raises(ResourceError, match="PIDs limit.*does not exist"):
        cg.apply({"pids": {"limit": 3}})


def test_create_copies_cpuset_down_and_remove_cleans_every_hierarchy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeV1(tmp_path)
    real_mkdir = Path.mkdir

    def kernel_mkdir(self: Path, *a: object, **k: object) -> None:
        # cgroupfs fills a new directory with control files; a new v1 cpuset's are empty.
        real_mkdir(self, *a, **k)  # type: ignore[arg-type]
        if fake.root / "cpuset" in self.parents:
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (self / f).exists():
                    (self / f).write_text("\n")

    monkeypatch.setattr(Path, "mkdir", kernel_mkdir)
    cg = open_cgroup(layout(fake.paths), "/portside/new")
    assert not cg.exists()
    cg.create()
    assert cg.exists()
    for level in ("portside", "portside/new"):
        assert fake.read("cpuset", level, "cpuset.cpus") == "0-1"
        assert fake.read("cpuset", level, "cpuset.mems") == "0"
    for d in cg.dirs.values():
        assert d.is_dir()
    cg.create()                                          # idempotent
    # Control files are plain files here; drop them so rmdir works as on cgroupfs.
    for f in ("cpuset.cpus", "cpuset.mems"):
        os.unlink(fake.dir("cpuset", "/portside/new") / f)
    cg.remove()
    assert not cg.exists()
    assert (fake.root / "memory" / "portside").is_dir()  # only the leaf goes
    cg.remove()                                          # already gone: success


def test_remove_with_processes_left_is_an_error(fake: FakeV1, cg: V1Cgroup) -> None:
    from engine.cgroups import files
    with pytest.raises(ResourceError, match="cannot remove cgroup"):
        files.rmdir_retry(fake.dir("memory", P), timeout=0.05)


def test_freeze_and_thaw(fake: FakeV1, cg: V1Cgroup) -> None:
    cg.freeze()
    assert fake.read("freezer", P, "freezer.state") == "FROZEN"
    assert cg.freezer_state() == "frozen"
    cg.thaw()
    assert cg.freezer_state() == "thawed"


def test_add_process_joins_every_hierarchy_and_pids_lists_them(fake: FakeV1, cg: V1Cgroup) -> None:
    cg.add_process(4242)
    for c in ("cpu", "memory", "pids", "blkio", "cpuset", "freezer"):
        assert fake.read(c, P, "cgroup.procs") == "4242"
    fake.set("memory", P, "cgroup.procs", "1\n17\n4242\n")
    assert cg.pids() == [1, 17, 4242]
