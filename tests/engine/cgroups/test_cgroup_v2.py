"""v2 cgroups on a fake tree: stats, limits (swap and weight conversions), delegation, freezer."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.cgroups import V2Cgroup, layout, oci_resources, open_cgroup
from engine.cgroups.resources import ResourceLimits
from engine.cgroups.v2 import parse_io_stat, shares_to_weight, weight_to_shares
from engine.errors import ResourceError
from tests.engine.cgroups.faketree import FakeV2

P = "/portside/c2"


@pytest.fixture
def fake(tmp_path: Path) -> FakeV2:
    f = FakeV2(tmp_path)
    f.make(P)
    return f


@pytest.fixture
def cg(fake: FakeV2) -> V2Cgroup:
    c = open_cgroup(layout(fake.paths), P)
    assert isinstance(c, V2Cgroup)
    return c


def test_stats(fake: FakeV2, cg: V2Cgroup) -> None:
    fake.set(P, "cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
    fake.set(P, "memory.current", "40000000\n")
    fake.set(P, "memory.max", "67108864\n")
    fake.set(P, "memory.stat", "anon 1\nfile 2\ninactive_anon 3\nactive_anon 4\n"
             "inactive_file 15000000\nactive_file 6\n")
    fake.set(P, "pids.current", "4\n")
    fake.set(P, "io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
             "8:16 rbytes=5 wbytes=7 rios=1 wios=1 dbytes=0 dios=0\n")
    fake.set(P, "memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n")
    s = cg.stats()
    assert s.cpu_usage_ns == 2_500_000
    assert s.memory_usage == 40000000 and s.memory_limit == 64 << 20
    assert s.memory_working_set == 25000000
    assert s.pids_current == 4
    assert (s.io_read_bytes, s.io_write_bytes) == (105, 207)
    assert cg.oom_kills() == 2


def test_unlimited_memory_reads_as_none(cg: V2Cgroup) -> None:
    assert cg.stats().memory_limit is None


def test_gone_cgroup_samples_as_none(fake: FakeV2) -> None:
    cg = open_cgroup(layout(fake.paths), "/portside/gone")
    assert cg.sample() is None and cg.stats().cpu_usage_ns == 0


def test_parse_io_stat_edge_cases() -> None:
    assert parse_io_stat(b"") == (0, 0, False)
    assert parse_io_stat(b"8:0 rios=1\n") == (0, 0, True)


def test_apply_converts_oci_to_v2_files(fake: FakeV2, cg: V2Cgroup) -> None:
    res = oci_resources(ResourceLimits(memory=64 << 20, memory_swap=96 << 20,
                                       memory_reservation=16 << 20, cpus=1.25, cpu_shares=512,
                                       cpuset_cpus="0", pids_limit=20))
    assert cg.apply(res) == []
    assert fake.read(P, "memory.max") == str(64 << 20)
    assert fake.read(P, "memory.swap.max") == str(32 << 20)      # swap only, not memory+swap
    assert fake.read(P, "memory.low") == str(16 << 20)
    assert fake.read(P, "cpu.max") == "125000 100000"
    assert fake.read(P, "cpu.weight") == str(shares_to_weight(512))
    assert fake.read(P, "cpuset.cpus") == "0"
    assert fake.read(P, "pids.max") == "20"
    got = cg.limits()
    assert got["memory"] == {"limit": 64 << 20, "reservation": 16 << 20, "swap": 96 << 20}
    assert got["cpu"]["quota"] == 125000 and got["cpu"]["period"] == 100000
    assert abs(got["cpu"]["shares"] - 512) < 30
    assert got["pids"] == {"limit": 20}


def test_default_swap_and_unlimited(fake: FakeV2, cg: V2Cgroup) -> None:
    cg.apply(oci_resources(ResourceLimits(memory=64 << 20)))      # Docker: swap = memory
    assert fake.read(P, "memory.swap.max") == str(64 << 20)
    cg.apply({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert fake.read(P, "memory.max") == "max"
    assert fake.read(P, "memory.swap.max") == "max"
    assert fake.read(P, "pids.max") == "max"
    assert fake.read(P, "cpu.max") == "max 100000"


def test_quota_alone_keeps_the_period(fake: FakeV2, cg: V2Cgroup) -> None:
    fake.set(P, "cpu.max", "max 50000\n")
    cg.apply({"cpu": {"quota": 25000}})
    assert fake.read(P, "cpu.max") == "25000 50000"


def test_swap_without_memory_and_below_memory_are_refused(fake: FakeV2, cg: V2Cgroup) -> None:
    with pytest.raises(ResourceError, match="without a memory limit"):
        cg.apply({"memory": {"swap": 100 << 20}})
    with pytest.raises(ResourceError, match="not be lower"):
        cg.apply({"memory": {"limit": 100 << 20, "swap": 50 << 20}})
    # With a memory limit already in force, a swap-only update works.
    cg.apply({"memory": {"limit": 100 << 20}})
    cg.apply({"memory": {"swap": 150 << 20}})
    assert fake.read(P, "memory.swap.max") == str(50 << 20)


def test_oom_kill_disable_is_a_warning_on_v2(cg: V2Cgroup) -> None:
    warnings = cg.apply({"memory": {"limit": 64 << 20, "disableOOMKiller": True}})
    assert warnings and "cannot disable the OOM killer" in warnings[0]


def test_shares_weight_mapping() -> None:
    assert shares_to_weight(2) == 1
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(0) == 0
    for s in (2, 512, 1024, 4096, 262144):
        assert abs(weight_to_shares(shares_to_weight(s)) - s) <= 27


def test_create_delegates_controllers_down_the_path(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeV2(tmp_path)
    real_mkdir = Path.mkdir

    def kernel_mkdir(self: Path, *a: object, **k: object) -> None:
        real_mkdir(self, *a, **k)  # type: ignore[arg-type]
        for name in ("cgroup.controllers", "cgroup.subtree_control"):
            if not (self / name).exists():
                # A child offers what its parent delegates.
                parent = (self.parent / "cgroup.subtree_control").read_text().split()
                text = " ".join(c.lstrip("+") for c in parent) if name == "cgroup.controllers" else ""
                (self / name).write_text(text + "\n")

    monkeypatch.setattr(Path, "mkdir", kernel_mkdir)
    cg = open_cgroup(layout(fake.paths), "/portside/deep/new")
    cg.create()
    monkeypatch.undo()
    assert cg.exists()
    wanted = {"+cpu", "+cpuset", "+io", "+memory", "+pids"}     # not hugetlb/rdma/misc
    assert set(fake.read("", "cgroup.subtree_control").split()) == wanted
    assert set(fake.read("portside", "cgroup.controllers").split()) == {c[1:] for c in wanted}
    assert set(fake.read("portside/deep", "cgroup.subtree_control").split()) == wanted
    assert fake.read("portside/deep/new", "cgroup.subtree_control") == ""   # the leaf delegates nothing


def test_freeze_waits_for_the_kernel(fake: FakeV2, cg: V2Cgroup) -> None:
    # The "kernel" reports frozen a little after cgroup.freeze is written.
    def kernel() -> None:
        import time
        time.sleep(0.05)
        fake.set(P, "cgroup.events", "populated 1\nfrozen 1\n")

    t = threading.Thread(target=kernel)
    t.start()
    cg.freeze()
    t.join()
    assert fake.read(P, "cgroup.freeze") == "1"
    assert cg.freezer_state() == "frozen"
    fake.set(P, "cgroup.events", "populated 1\nfrozen 0\n")
    cg.thaw()
    assert cg.freezer_state() == "thawed"
    fake.set(P, "cgroup.freeze", "1\n")
    assert cg.freezer_state() == "freezing"
