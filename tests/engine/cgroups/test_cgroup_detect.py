"""Layout detection from mountinfo (and from the tree when mountinfo says nothing)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.cgroups import V1Cgroup, V2Cgroup, layout, open_cgroup
from engine.cgroups.detect import DEFAULT_CGROUP_ROOT, detect_layout, parse_mountinfo, probe_tree
from engine.errors import ResourceError
from tests.engine.cgroups.faketree import (HYBRID_EXTRA, V1_MOUNTINFO, V2_MOUNTINFO, FakeV1,
                                           FakeV2)

ROOT = DEFAULT_CGROUP_ROOT


def test_v1_with_comounted_cpu_cpuacct() -> None:
    lay = parse_mountinfo(V1_MOUNTINFO)
    assert lay.mode == "v1" and lay.version == 1 and lay.unified is None
    assert lay.v1["cpu"] == lay.v1["cpuacct"] == ROOT / "cpu,cpuacct"
    assert lay.v1["memory"] == ROOT / "memory"
    assert set(lay.v1) == {"cpu", "cpuacct", "cpuset", "memory", "freezer", "blkio", "pids"}
    assert "systemd" not in lay.v1 and "name=systemd" not in lay.v1


def test_hybrid_uses_v1_for_limits() -> None:
    lay = parse_mountinfo(V1_MOUNTINFO + HYBRID_EXTRA)
    assert lay.mode == "hybrid" and lay.version == 1
    assert lay.unified == ROOT / "unified"
    assert lay.describe() == "v1 (hybrid)"


def test_pure_v2() -> None:
    lay = parse_mountinfo(V2_MOUNTINFO)
    assert lay.mode == "v2" and lay.version == 2 and lay.unified == ROOT and not lay.v1


def test_this_hosts_separate_cpu_and_cpuacct_mounts() -> None:
    text = ("32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
            "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n")
    lay = parse_mountinfo(text)
    assert lay.v1 == {"cpu": ROOT / "cpu", "cpuacct": ROOT / "cpuacct"}


def test_cgroup_mounts_elsewhere_and_other_fstypes_are_ignored() -> None:
    text = ("50 1 0:40 / /mnt/other\\040cg rw - cgroup2 cgroup2 rw\n"
            "51 1 0:41 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
            "garbage line without separator\n")
    assert parse_mountinfo(text).mode == "none"


def test_escaped_mount_point_under_a_moved_root(tmp_path: Path) -> None:
    root = tmp_path / "my cg"
    text = f"50 1 0:40 / {str(root).replace(' ', chr(92) + '040')} rw - cgroup2 cgroup2 rw\n"
    lay = parse_mountinfo(text, root)
    assert lay.mode == "v2" and lay.unified == root


def test_detect_reroots_host_mount_points_onto_a_fake_tree(tmp_path: Path) -> None:
    fake = FakeV1(tmp_path, hybrid=True)
    lay = layout(fake.paths)
    assert lay.mode == "hybrid"
    assert lay.v1["memory"] == fake.root / "memory"
    assert lay.unified == fake.root / "unified"
    cg = open_cgroup(lay, "/portside/abc")
    assert isinstance(cg, V1Cgroup)
    assert cg.dirs["cpuacct"] == fake.root / "cpu,cpuacct" / "portside" / "abc"


def test_detect_v2_fake(tmp_path: Path) -> None:
    fake = FakeV2(tmp_path)
    lay = detect_layout(fake.paths.cgroup_root, fake.paths.proc)
    assert lay.mode == "v2"
    cg = open_cgroup(lay, "portside/x")
    assert isinstance(cg, V2Cgroup) and cg.dir == fake.root / "portside" / "x"


def test_probe_tree_without_mountinfo(tmp_path: Path) -> None:
    v2 = FakeV2(tmp_path / "a", mountinfo=False)
    assert detect_layout(v2.paths.cgroup_root, v2.paths.proc).mode == "v2"
    v1 = FakeV1(tmp_path / "b", hybrid=True)
    lay = probe_tree(v1.root)
    assert lay.mode == "hybrid" and lay.v1["pids"] == v1.root / "pids"
    assert probe_tree(tmp_path / "empty").mode == "none"


def test_no_cgroups_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "mountinfo").write_text("")
    lay = detect_layout(tmp_path / "cg", tmp_path / "proc")
    assert lay.mode == "none" and lay.version == 0
    with pytest.raises(ResourceError, match="no cgroup hierarchy"):
        open_cgroup(lay, "/portside/x")
