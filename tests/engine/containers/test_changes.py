"""docker diff: A/C/D from an upper dir and the image's lower dirs.

Whiteouts (0:0 char devices) and opaque dirs (a trusted.* xattr) need root
to create, so most tests mark them through a fake ``OverlayMarks`` keyed by
inode; one test uses the kernel's real markers and runs only as root.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.containers.changes import FileChange, KernelMarks, LowerView, diff, walk_upper


class FakeMarks:
    """Whiteouts and opaque dirs chosen by inode, so no root is needed."""

    def __init__(self) -> None:
        self.whiteouts: set[tuple[int, int]] = set()
        self.opaque: set[tuple[int, int]] = set()

    def whiteout(self, p: Path) -> None:
        p.write_bytes(b"")
        st = os.lstat(p)
        self.whiteouts.add((st.st_dev, st.st_ino))

    def make_opaque(self, p: Path) -> None:
        st = os.lstat(p)
        self.opaque.add((st.st_dev, st.st_ino))

    def is_whiteout(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) in self.whiteouts

    def is_opaque(self, dirfd: int) -> bool:
        st = os.fstat(dirfd)
        return (st.st_dev, st.st_ino) in self.opaque


def tree(base: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        p = base / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
    return base


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path]:
    """Two image layers: base, and a top layer that deleted /etc/motd."""
    base = tree(tmp_path / "l0", {"bin/sh": "sh", "etc/passwd": "root", "etc/motd": "hi",
                                  "var/cache/a": "a", "var/cache/b": "b", "tmp/": ""})
    top = tree(tmp_path / "l1", {"etc/": ""})
    return top, base


def kinds(changes: list[FileChange]) -> list[tuple[str, str]]:
    return [(c.kind, c.path) for c in changes]


def test_added_changed_and_parent_dirs(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    marks = FakeMarks()
    upper = tree(tmp_path / "upper", {"tmp/new.txt": "x", "etc/passwd": "root\nme", "opt/app/run": "r"})
    got = diff(upper, LowerView(layers, marks), marks=marks)
    assert kinds(got) == [("C", "/etc"), ("C", "/etc/passwd"), ("A", "/opt"), ("A", "/opt/app"),
                          ("A", "/opt/app/run"), ("C", "/tmp"), ("A", "/tmp/new.txt")]


def test_whiteout_is_deleted(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    marks = FakeMarks()
    upper = tree(tmp_path / "upper", {"bin/": ""})
    marks.whiteout(upper / "bin" / "sh")
    got = diff(upper, LowerView(layers, marks), marks=marks)
    assert kinds(got) == [("C", "/bin"), ("D", "/bin/sh")]


def test_lower_whiteout_hides_older_layers(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    marks = FakeMarks()
    top, base = layers
    marks.whiteout(top / "etc" / "motd")               # the image itself deleted /etc/motd
    view = LowerView(layers, marks)
    assert not view.exists("/etc/motd") and view.exists("/etc/passwd")
    upper = tree(tmp_path / "upper", {"etc/motd": "again"})
    assert ("A", "/etc/motd") in kinds(diff(upper, view, marks=marks))


def test_opaque_dir_lists_hidden_entries_as_deleted(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    marks = FakeMarks()
    upper = tree(tmp_path / "upper", {"var/cache/b": "new b"})
    marks.make_opaque(upper / "var" / "cache")
    got = diff(upper, LowerView(layers, marks), marks=marks)
    assert kinds(got) == [("C", "/var"), ("C", "/var/cache"), ("D", "/var/cache/a"),
                          ("C", "/var/cache/b")]


def test_lower_opaque_stops_older_layers(tmp_path: Path) -> None:
    marks = FakeMarks()
    base = tree(tmp_path / "l0", {"d/old": "o"})
    top = tree(tmp_path / "l1", {"d/new": "n"})
    marks.make_opaque(top / "d")
    view = LowerView([top, base], marks)
    assert view.exists("/d/new") and not view.exists("/d/old")
    assert view.children("/d") == {"new"}


def test_file_in_upper_layer_masks_lower_directory(tmp_path: Path) -> None:
    base = tree(tmp_path / "l0", {"x/inner": "i"})
    top = tree(tmp_path / "l1", {"x": "now a file"})
    view = LowerView([top, base], FakeMarks())
    assert view.exists("/x") and not view.exists("/x/inner")


def test_symlinks_are_not_followed(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    outside = tree(tmp_path / "outside", {"secret": "s"})
    upper = tmp_path / "upper"
    upper.mkdir()
    os.symlink(str(outside), upper / "link")
    got = diff(upper, LowerView(layers, FakeMarks()), marks=FakeMarks())
    assert kinds(got) == [("A", "/link")]
    # A symlink in a lower layer is not followed by lookups either.
    os.symlink(str(outside), layers[0] / "lnk")
    assert not LowerView(layers, FakeMarks()).exists("/lnk/secret")


def test_mount_points_left_by_the_runtime_are_ignored(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    upper = tree(tmp_path / "upper", {"proc/": "", "etc/hosts": "", "data/": "", "data/f": "x"})
    got = diff(upper, LowerView(layers, FakeMarks()), marks=FakeMarks(),
               ignore={"/proc", "/etc/hosts", "/data"})
    # /etc was only copied up for the hosts mount point: not a change. /data
    # is not empty, so it is a real change.
    assert kinds(got) == [("A", "/data"), ("A", "/data/f")]


def test_copied_up_dir_with_new_mode_is_a_change(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    upper = tree(tmp_path / "upper", {"tmp/": ""})
    os.chmod(upper / "tmp", 0o1777)
    assert kinds(diff(upper, LowerView(layers, FakeMarks()), marks=FakeMarks())) == [("C", "/tmp")]


def test_walk_upper_reports_marks(tmp_path: Path) -> None:
    marks = FakeMarks()
    upper = tree(tmp_path / "upper", {"d/": ""})
    marks.whiteout(upper / "d" / "gone")
    marks.make_opaque(upper / "d")
    entries = {e.path: e for e in walk_upper(upper, marks)}
    assert entries["/d"].opaque and not entries["/d"].whiteout
    assert entries["/d/gone"].whiteout


@pytest.mark.integration
def test_kernel_marks_on_real_whiteouts(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    os.mknod(upper / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    os.setxattr(upper / "d", "trusted.overlay.opaque", b"y")
    entries = {e.path: e for e in walk_upper(upper, KernelMarks())}
    assert entries["/gone"].whiteout and entries["/d"].opaque
    assert not entries["/d"].whiteout


# -- the same changes as an OCI layer (commit) ----------------------------------------

def layer_members(upper: Path, marks: FakeMarks, **kw: object) -> dict[str, "tarfile.TarInfo"]:
    import io
    import tarfile

    from engine.containers.commit import write_layer
    buf = io.BytesIO()
    write_layer(upper, buf, marks=marks, **kw)  # type: ignore[arg-type]
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def test_layer_turns_overlay_marks_into_oci_whiteouts(tmp_path: Path) -> None:
    marks = FakeMarks()
    upper = tree(tmp_path / "upper", {"etc/new.conf": "x", "var/cache/keep": "k"})
    marks.whiteout(upper / "etc" / "motd")
    marks.make_opaque(upper / "var" / "cache")
    os.symlink("/etc/new.conf", upper / "etc" / "link")
    m = layer_members(upper, marks)
    assert set(m) == {"etc", "etc/.wh.motd", "etc/link", "etc/new.conf", "var", "var/cache",
                      "var/cache/.wh..wh..opq", "var/cache/keep"}
    assert m["etc/.wh.motd"].isreg() and m["etc/.wh.motd"].size == 0
    assert m["etc/link"].issym() and m["etc/link"].linkname == "/etc/new.conf"
    assert m["etc/new.conf"].size == 1
    names = list(m)
    assert names.index("var/cache/.wh..wh..opq") < names.index("var/cache/keep")


def test_layer_leaves_out_empty_mount_point_stubs(tmp_path: Path, layers: tuple[Path, Path]) -> None:
    upper = tree(tmp_path / "upper", {"etc/hosts": "", "proc/": "", "etc/passwd": "root\nme"})
    m = layer_members(upper, FakeMarks(), lower=LowerView(layers, FakeMarks()),
                      skip={"/etc/hosts", "/proc"})
    assert set(m) == {"etc", "etc/passwd"}


def test_layer_keeps_hardlinks(tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"a": "data"})
    os.link(upper / "a", upper / "b")
    m = layer_members(upper, FakeMarks())
    assert m["b"].islnk() and m["b"].linkname == "a"
