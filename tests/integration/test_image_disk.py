"""A full disk under the root: its own message, and nothing left behind."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from engine import Engine
from engine.errors import NoSpace
from tests.engine.images.test_archive import docker_layout, make_image, store_snapshot, to_tar

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test only."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "portside-test", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_load_onto_a_full_disk_says_so_and_cleans_up(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "root"
    engine = Engine(root)
    try:
        small = make_image([{"etc/motd": b"hi\n"}])
        ok = tmp_path / "small.tar"
        ok.write_bytes(to_tar(docker_layout([(small, ["small:1"])])))
        engine.load(ok)
        before = store_snapshot(root)
        # 6 MB of incompressible content: the gzip blob fits, unpacked it does not.
        img = make_image([{"big.bin": os.urandom(1 << 20) * 6}], ["gzip"])
        path = tmp_path / "big.tar"
        path.write_bytes(to_tar(docker_layout([(img, ["big:1"])])))
        with pytest.raises(NoSpace) as info:
            engine.load(path)
        msg = str(info.value)
        assert "is full" in msg and str(root) in msg and "--root" in msg
        assert "corrupt" not in msg and "hostile" not in msg
        assert store_snapshot(root) == before          # no half layer, blob or temp file
        assert [i.repo_tags for i in engine.images()] == [("small:1",)]
    finally:
        engine.close()


def test_cli_reports_a_full_disk_in_one_line(small_disk: Path, tmp_path: Path) -> None:
    img = make_image([{"big.bin": os.urandom(1 << 20) * 6}], ["gzip"])
    path = tmp_path / "big.tar"
    path.write_bytes(to_tar(docker_layout([(img, ["big:1"])])))
    r = subprocess.run([sys.executable,
                        "-m", "tui", "--root", str(small_disk / "root"), "load", "-i", str(path)],
                       capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parents[2],
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))
    assert r.returncode == 125, r.stderr
    assert r.stderr.count("\n") == 1 and "is full" in r.stderr and "Traceback" not in r.stderr
