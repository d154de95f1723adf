"""cp: in-root path resolution against hostile symlinks, tar out, safe extraction, Docker's rules.

Everything runs on a fake container root in a temp dir; "the host" is a
sibling directory whose files must never be read or written through the
container's symlinks.
"""
from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from engine.containers.copy import (CopyError, ExtractOptions, RootDir, archive_out, copy_in,
                                    copy_out, extract_in, extract_tar, plan_copy, write_tar)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A stand-in for host files an escape would reach."""
    h = tmp_path / "host"
    (h / "etc").mkdir(parents=True)
    (h / "etc" / "shadow").write_text("HOST SECRET\n")
    return h


@pytest.fixture
def rootfs(tmp_path: Path, host: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "shadow").write_text("container shadow\n")
    (r / "data" / "sub").mkdir(parents=True)
    (r / "data" / "sub" / "f.txt").write_text("hello\n")
    (r / "data" / "top.txt").write_text("top\n")
    # Hostile links: each would reach the host dir if followed by the host kernel.
    os.symlink(str(host / "etc"), r / "abs-host")             # absolute, to the host path
    os.symlink("/etc", r / "abs-etc")                          # absolute, means the container's /etc
    os.symlink("../../../../../../../../../etc", r / "dotdot")  # climbs "above" the root
    os.symlink(os.path.relpath(host, r / "data"), r / "data" / "rel-host")  # relative escape
    os.symlink("loop-b", r / "loop-a")
    os.symlink("loop-a", r / "loop-b")
    os.symlink("/data/sub", r / "data" / "link-sub")
    return r


@pytest.fixture
def root(rootfs: Path) -> RootDir:
    with RootDir.open(rootfs) as r:
        yield r


# -- resolution ------------------------------------------------------------------

def test_absolute_symlink_is_rooted_in_the_container(root: RootDir) -> None:
    assert root.read_file("/abs-etc/shadow") == b"container shadow\n"


def test_dotdot_never_climbs_above_the_root(root: RootDir) -> None:
    assert root.read_file("/dotdot/shadow") == b"container shadow\n"
    assert root.read_file("/../../../../etc/shadow") == b"container shadow\n"
    with root.resolve("/data/../../..") as r:
        assert r.path == "/"


def test_symlink_to_a_host_path_resolves_inside(root: RootDir, host: Path) -> None:
    # host/etc does not exist inside the root, so it must not resolve at all.
    with pytest.raises(CopyError, match="no such file"):
        root.resolve("/abs-host/shadow")
    with pytest.raises(CopyError):
        root.resolve("/data/rel-host/etc/shadow")


def test_symlink_loop_is_an_error(root: RootDir) -> None:
    with pytest.raises(CopyError, match="symbolic links"):
        root.resolve("/loop-a")


def test_last_component_not_followed_unless_asked(root: RootDir) -> None:
    with root.resolve("/abs-etc", follow=False) as r:
        assert r.st is not None and stat.S_ISLNK(r.st.st_mode)
        assert r.path == "/abs-etc"
    with root.resolve("/abs-etc") as r:
        assert r.is_dir and r.path == "/etc"
    with root.resolve("/abs-etc/") as r:          # a trailing slash always follows
        assert r.is_dir


def test_file_used_as_directory_is_refused(root: RootDir) -> None:
    with pytest.raises(CopyError, match="not a directory"):
        root.resolve("/data/top.txt/x")
    with pytest.raises(CopyError, match="not a directory"):
        root.resolve("/data/top.txt/..")


def test_missing_last_component(root: RootDir) -> None:
    with root.resolve("/data/new.txt", must_exist=False) as r:
        assert not r.exists and r.name == "new.txt" and r.path == "/data/new.txt"
    with pytest.raises(CopyError):
        root.resolve("/nope/new.txt", must_exist=False)


def test_read_file_refuses_non_regular(root: RootDir) -> None:
    assert root.read_file("/data") is None
    assert root.read_file("/missing") is None
    assert root.is_executable("/data") is False
    assert root.is_executable("/missing") is None


# -- tar out ---------------------------------------------------------------------

def tar_names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def test_write_tar_keeps_symlinks_as_links(root: RootDir) -> None:
    buf = io.BytesIO()
    write_tar(root, "/data", buf)
    members = tar_names(buf.getvalue())
    assert set(members) == {"data", "data/sub", "data/sub/f.txt", "data/top.txt",
                            "data/rel-host", "data/link-sub"}
    assert members["data/link-sub"].issym() and members["data/link-sub"].linkname == "/data/sub"
    assert members["data/top.txt"].size == 4


def test_write_tar_records_hardlinks_once(rootfs: Path, root: RootDir) -> None:
    os.link(rootfs / "data" / "top.txt", rootfs / "data" / "z-hard")
    buf = io.BytesIO()
    write_tar(root, "/data", buf)
    m = tar_names(buf.getvalue())["data/z-hard"]
    assert m.islnk() and m.linkname == "data/top.txt"


def test_archive_out_follow_top_link(root: RootDir) -> None:
    buf = io.BytesIO()
    archive_out(root, "/data/link-sub", buf, follow=True)
    assert set(tar_names(buf.getvalue())) == {"link-sub", "link-sub/f.txt"}
    buf = io.BytesIO()
    archive_out(root, "/data/link-sub", buf)
    assert tar_names(buf.getvalue())["link-sub"].issym()


def test_archive_out_contents_only(root: RootDir) -> None:
    buf = io.BytesIO()
    archive_out(root, "/data/sub/.", buf)
    assert set(tar_names(buf.getvalue())) == {".", "./f.txt"}


# -- extraction ------------------------------------------------------------------

def make_tar(*entries: tuple[str, str, bytes | str]) -> io.BytesIO:
    """Entries: (name, kind, payload) with kind file|dir|sym|hard."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                ti.size = len(data)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(data))
                continue
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(payload)
            tf.addfile(ti)
    buf.seek(0)
    return buf


def test_extract_refuses_dotdot_and_absolute(root: RootDir, host: Path) -> None:
    for bad in ("../escape", "a/../../escape", "/etc/escape"):
        with pytest.raises(CopyError, match="outside"):
            extract_tar(make_tar((bad, "file", "x")), root, "/data")
    assert sorted(p.name for p in (host / "etc").iterdir()) == ["shadow"]


def test_extract_through_planted_symlink_stays_inside(rootfs: Path, root: RootDir, host: Path) -> None:
    # The archive plants a link to the host path, then writes "through" it.
    tar = make_tar(("evil", "sym", str(host / "etc")), ("evil/shadow", "file", "pwned"))
    with pytest.raises(CopyError):
        extract_tar(tar, root, "/data")
    assert (host / "etc" / "shadow").read_text() == "HOST SECRET\n"
    # A link to the container's /etc is followed inside the container only.
    tar = make_tar(("to-etc", "sym", "/etc"), ("to-etc/new", "file", "ok"))
    extract_tar(tar, root, "/data")
    assert (rootfs / "etc" / "new").read_text() == "ok"
    assert not (host / "etc" / "new").exists()


def test_extract_replaces_a_symlink_instead_of_writing_through_it(rootfs: Path, root: RootDir,
                                                                  host: Path) -> None:
    tar = make_tar(("abs-host", "file", "replaced"))
    extract_tar(tar, root, "/")
    assert (rootfs / "abs-host").read_text() == "replaced" and not (rootfs / "abs-host").is_symlink()
    assert (host / "etc" / "shadow").read_text() == "HOST SECRET\n"


def test_extract_hardlink_only_to_own_entries(rootfs: Path, root: RootDir) -> None:
    with pytest.raises(CopyError, match="hard link"):
        extract_tar(make_tar(("h", "hard", "etc/shadow")), root, "/data")
    extract_tar(make_tar(("a", "file", "A"), ("b", "hard", "a")), root, "/data")
    assert os.stat(rootfs / "data" / "a").st_ino == os.stat(rootfs / "data" / "b").st_ino


def test_extract_strips_setid_and_devices_when_asked(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("suid")
        ti.mode, ti.size = 0o4755, 1
        tf.addfile(ti, io.BytesIO(b"x"))
        ti = tarfile.TarInfo("disk")
        ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.BLKTYPE, 8, 0, 0o666
        tf.addfile(ti)
    buf.seek(0)
    skipped: list[str] = []
    with RootDir.open(dest) as r:
        n = extract_tar(buf, r, ".", options=ExtractOptions(default_owner=None, allow_devices=False,
                                                            strip_setid=True), warn=skipped.append)
    assert n == 1 and skipped == ["skipped device node disk"]
    assert stat.S_IMODE(os.stat(dest / "suid").st_mode) == 0o755
    assert not (dest / "disk").exists()


def test_extract_into_a_file_is_refused(root: RootDir) -> None:
    with pytest.raises(CopyError, match="not a directory"):
        extract_in(root, make_tar(("x", "file", "1")), "/data/top.txt")


def test_extract_not_a_tar(root: RootDir) -> None:
    with pytest.raises(CopyError):
        extract_in(root, io.BytesIO(b"this is not a tar archive" * 40), "/data")


# -- Docker's destination rules -----------------------------------------------------

@pytest.mark.parametrize("src_dir,contents,dest,exists,is_dir,want", [
    (False, False, "/d/new", False, False, ("/d", ("f", "new"))),
    (False, False, "/d/file", True, False, ("/d", ("f", "file"))),
    (False, False, "/d", True, True, ("/d", ("f", "f"))),
    (True, False, "/d/new", False, False, ("/d", ("f", "new"))),
    (True, False, "/d", True, True, ("/d", ("f", "f"))),
    (True, True, "/d", True, True, ("/d", ("f", "."))),
    (True, True, "/d/new", False, False, ("/d", ("f", "new"))),
    (False, False, "rel", False, False, (".", ("f", "rel"))),
])
def test_plan_copy(src_dir: bool, contents: bool, dest: str, exists: bool, is_dir: bool,
                   want: tuple[str, tuple[str, str]]) -> None:
    plan = plan_copy("f", src_dir, contents, dest, dest_exists=exists, dest_is_dir=is_dir)
    assert (plan.dest_dir, plan.rename_top) == want


@pytest.mark.parametrize("src_dir,dest,exists,is_dir,msg", [
    (True, "/d/file", True, False, "directory to a file"),
    (False, "/d/missing/", False, False, "does not exist"),
    (False, "/d/file/", True, False, "not a directory"),
])
def test_plan_copy_refusals(src_dir: bool, dest: str, exists: bool, is_dir: bool, msg: str) -> None:
    with pytest.raises(CopyError, match=msg):
        plan_copy("f", src_dir, False, dest, dest_exists=exists, dest_is_dir=is_dir)


# -- end to end on the fake root --------------------------------------------------------

def test_copy_out_dir_and_file(root: RootDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    copy_out(root, "/data", str(out))                      # into an existing dir
    assert (out / "data" / "sub" / "f.txt").read_text() == "hello\n"
    assert os.readlink(out / "data" / "link-sub") == "/data/sub"
    copy_out(root, "/data/top.txt", str(out / "renamed.txt"))
    assert (out / "renamed.txt").read_text() == "top\n"
    copy_out(root, "/data/sub/.", str(out / "data"))       # contents merge
    assert (out / "data" / "f.txt").read_text() == "hello\n"


def test_copy_out_follows_nothing_to_the_host(root: RootDir, host: Path, tmp_path: Path) -> None:
    out = tmp_path / "out2"
    copy_out(root, "/abs-host", str(out))                  # the link itself, not its target
    assert out.is_symlink()
    with pytest.raises(CopyError):
        copy_out(root, "/abs-host/shadow", str(tmp_path / "stolen"))
    assert not (tmp_path / "stolen").exists()
    copy_out(root, "/dotdot/shadow", str(tmp_path / "got"))
    assert (tmp_path / "got").read_text() == "container shadow\n"


def test_copy_in_file_dir_and_through_links(rootfs: Path, root: RootDir, host: Path,
                                            tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "a.txt").write_text("A")
    (src / "one.txt").write_text("1")
    with pytest.raises(CopyError, match="no such file"):   # /abs-host -> a host path: not inside
        copy_in(root, str(src / "one.txt"), "/abs-host/")
    assert sorted(p.name for p in (host / "etc").iterdir()) == ["shadow"]
    assert (rootfs / "abs-host").is_symlink()
    copy_in(root, str(src / "one.txt"), "/dotdot")          # /dotdot -> the container's /etc
    assert (rootfs / "etc" / "one.txt").read_text() == "1"
    copy_in(root, str(src), "/data/newdir")
    assert (rootfs / "data" / "newdir" / "inner" / "a.txt").read_text() == "A"
    if os.geteuid() == 0:                                   # files copied in belong to root
        assert os.stat(rootfs / "data" / "newdir" / "one.txt").st_uid == 0
    with pytest.raises(CopyError, match="directory to a file"):
        copy_in(root, str(src), "/data/top.txt")


def test_copy_in_stream(rootfs: Path, root: RootDir) -> None:
    extract_in(root, make_tar(("s", "dir", ""), ("s/x", "file", "xx")), "/abs-etc")
    assert (rootfs / "etc" / "s" / "x").read_text() == "xx"
