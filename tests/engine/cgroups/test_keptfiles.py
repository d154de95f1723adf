"""Files kept open between samples: fresh content, owners, budget, closing."""
from __future__ import annotations

import os
from pathlib import Path

from engine.cgroups import layout, open_cgroup
from engine.cgroups.keptfiles import KeptFiles, default_budget
from engine.cgroups.stats import StatsSampler, StatsTarget
from tests.engine.cgroups.faketree import FakeV1


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_rereads_fresh_content_through_one_descriptor(tmp_path: Path) -> None:
    f = tmp_path / "memory.usage_in_bytes"
    f.write_text("100\n")
    kept = KeptFiles(budget=10)
    assert kept.read(str(f), "a") == b"100\n"
    f.write_text("2000000\n")                   # same inode, new content
    assert kept.read(str(f), "a") == b"2000000\n"
    assert len(kept) == 1
    assert kept.read(str(tmp_path / "missing"), "a") is None and len(kept) == 1
    big = tmp_path / "big"
    big.write_bytes(b"x" * 200_000)               # more than one pread chunk
    assert kept.read(str(big), "b") == b"x" * 200_000


def test_drop_closes_an_owners_files(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        p = tmp_path / f"f{i}"
        p.write_text(str(i))
        paths.append(str(p))
    kept = KeptFiles(budget=10)
    before = open_fds()
    for p in paths[:3]:
        kept.read(p, "a")
    kept.read(paths[3], "b")
    assert open_fds() == before + 4 and kept.owners() == {"a", "b"}
    kept.drop("a")
    assert open_fds() == before + 1 and len(kept) == 1
    kept.close()
    assert open_fds() == before and len(kept) == 0
    assert kept.read(paths[0], "a") == b"0"       # usable after close


def test_budget_falls_back_to_open_read_close(tmp_path: Path) -> None:
    kept = KeptFiles(budget=2)
    before = open_fds()
    for i in range(5):
        p = tmp_path / f"f{i}"
        p.write_text(f"v{i}")
        assert kept.read(str(p), "a") == f"v{i}".encode()
    assert len(kept) == 2 and open_fds() == before + 2
    assert KeptFiles(budget=0).read(str(tmp_path / "f0")) == b"v0"
    assert 0 <= default_budget() <= 8192


def test_sampler_keeps_files_per_container_and_releases_them(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path)
    targets = []
    for cid in ("a", "b"):
        fake.make(f"/portside/{cid}")
        fake.proc.add_pid(100 if cid == "a" else 200)
        targets.append(StatsTarget(cid, cid, open_cgroup(layout(fake.paths), f"/portside/{cid}"),
                                   pid=100 if cid == "a" else 200))
    before = open_fds()
    with StatsSampler(proc=fake.proc.root) as sampler:
        sampler.sample_targets(targets)
        both = open_fds() - before
        assert both >= 2 * 5                       # the cgroup files of two containers, /proc/stat
        fake.set("memory", "/portside/a", "memory.usage_in_bytes", "12345\n")
        assert sampler.sample_targets(targets)[0].memory_usage == 12345
        sampler.sample_targets(targets[1:])        # "a" stopped being sampled: its files close
        assert open_fds() - before == both - both // 2
    assert open_fds() == before
