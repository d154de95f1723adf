from __future__ import annotations

from pathlib import Path

from engine.containers import rootfs


def test_layout_and_prepare(tmp_path: Path) -> None:
    rootfs.prepare(tmp_path / "c")
    upper, work, merged = rootfs.layout(tmp_path / "c")
    assert upper.is_dir() and work.is_dir() and merged.is_dir()


def test_mount_options_order() -> None:
    assert rootfs.mount_options(["/top", "/base"], "/u", "/w") == "lowerdir=/top:/base,upperdir=/u,workdir=/w"


def test_is_mounted_reads_mountinfo_with_escapes(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "99 22 0:50 / /var/lib/with\\040space/merged rw - overlay overlay rw,lowerdir=/a\n")
    assert rootfs.is_mounted(Path("/var/lib/with space/merged"), info)
    assert rootfs.is_mounted(Path("/"), info)
    assert not rootfs.is_mounted(Path("/var/lib/with space"), info)
    assert not rootfs.is_mounted(Path("/x"), tmp_path / "missing")


def test_disk_usage_counts_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 10000)
    (tmp_path / "g").write_bytes(b"y" * 100)
    assert rootfs.disk_usage(tmp_path) == 10100
