"""The layer extractor: faithful round trips, overlay whiteouts, hostile tars.

Tars are built in memory with tarfile and fed through a read-only,
non-seekable stream, as the image store does. Tests that check owners and
device nodes need root and are skipped (reported) otherwise.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from engine.errors import ImageFormatError, NeedsRoot
from engine.images.extract import extract_layer
from tests.imagefactory import layer_tar

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="owners and device nodes need root")

Entry = tuple[tarfile.TarInfo, bytes | None]


class Sequential(io.RawIOBase):
    """A stream that can only be read forward, like the store's hashing reader."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        return self._buf.readinto(b)


def stream(data: bytes) -> BinaryIO:
    return cast(BinaryIO, Sequential(data))


def reg(name: str, data: bytes = b"", *, mode: int = 0o644, uid: int = 0, gid: int = 0,
        mtime: int = 1_600_000_000, xattrs: dict[str, str] | None = None,
        pax: dict[str, str] | None = None) -> Entry:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, mtime
    info.pax_headers = {**(pax or {}),
                        **{f"SCHILY.xattr.{k}": v for k, v in (xattrs or {}).items()}}
    return info, data


def node(name: str, kind: bytes, *, linkname: str = "", mode: int = 0o755, uid: int = 0,
         gid: int = 0, mtime: int = 1_600_000_000, major: int = 0, minor: int = 0,
         xattrs: dict[str, str] | None = None) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid, info.mtime = (
        kind, linkname, mode, uid, gid, mtime)
    info.devmajor, info.devminor = major, minor
    info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in (xattrs or {}).items()}
    return info, None


def dir_(name: str, **kw: Any) -> Entry:
    return node(name, tarfile.DIRTYPE, **kw)


def sym(name: str, target: str, **kw: Any) -> Entry:
    return node(name, tarfile.SYMTYPE, linkname=target, **kw)


def hard(name: str, target: str) -> Entry:
    return node(name, tarfile.LNKTYPE, linkname=target)


def build(*entries: Entry, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def extract(dest: Path, *entries: Entry) -> int:
    return extract_layer(stream(build(*entries)), dest, layer_name="test-layer")


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    # store/dest, so that "../.." from inside dest is tmp_path, where the
    # sentinel lives.
    d = tmp_path / "store" / "dest"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    o = tmp_path / "outside"
    o.mkdir()
    (o / "sentinel").write_text("keep me")
    return o


def snapshot(tmp_path: Path, dest: Path) -> dict[str, tuple[int, int, int, str]]:
    """Everything under tmp_path except dest: type/mode, size, mtime, content hash."""
    seen: dict[str, tuple[int, int, int, str]] = {}
    for top, dirs, files in os.walk(tmp_path):
        if Path(top) == dest.parent:
            dirs[:] = [d for d in dirs if d != dest.name]
        for name in dirs + files:
            p = Path(top) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
            seen[str(p.relative_to(tmp_path))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return seen


# -- round trips ------------------------------------------------------------------

def test_files_dirs_symlinks_hardlinks_modes_mtimes_xattrs(dest: Path) -> None:
    written = extract(
        dest,
        dir_("d", mode=0o750, mtime=1_000_000),
        reg("d/data", b"hello", mode=0o640, pax={"mtime": "1700000000.123456789"},
            xattrs={"user.note": "a note", "user.bin": b"\xff\x00\x01".decode("utf-8", "surrogateescape")}),
        reg("d/exec", b"#!/bin/sh\n", mode=0o4755),
        sym("d/link", "/etc/hostname", mtime=5000),
        hard("d/hard", "d/data"),
        dir_("ro", mode=0o555, mtime=2_000_000),
        reg("ro/inside", b"x", mode=0o444),
        dir_("tmp", mode=0o1777),
        node("run/fifo", tarfile.FIFOTYPE, mode=0o620),
    )
    assert written == len(b"hello") + len(b"#!/bin/sh\n") + 1
    d = dest / "d"
    assert stat.S_IMODE(d.stat().st_mode) == 0o750
    # The dir mtime survives the children created after its entry.
    assert d.stat().st_mtime_ns == 1_000_000 * 10**9
    data = (d / "data").stat()
    assert (d / "data").read_bytes() == b"hello"
    assert stat.S_IMODE(data.st_mode) == 0o640
    assert data.st_mtime_ns == 1_700_000_000_123_456_789
    assert os.getxattr(d / "data", "user.note") == b"a note"
    assert os.getxattr(d / "data", "user.bin") == b"\xff\x00\x01"
    assert stat.S_IMODE((d / "exec").stat().st_mode) == 0o4755
    assert os.readlink(d / "link") == "/etc/hostname"
    assert os.lstat(d / "link").st_mtime_ns == 5000 * 10**9
    hard_st = (d / "hard").lstat()
    assert hard_st.st_ino == data.st_ino and hard_st.st_nlink == 2
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o555
    assert (dest / "ro" / "inside").read_bytes() == b"x"
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777
    fifo = (dest / "run" / "fifo").lstat()
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    # A parent the tar left out is made 0755, whatever the umask.
    assert stat.S_IMODE((dest / "run").stat().st_mode) == 0o755


@needs_root
def test_owners_setid_bits_and_devices_as_root(dest: Path) -> None:
    extract(
        dest,
        dir_("home", mode=0o700, uid=1000, gid=1001),
        reg("home/suid", b"x", mode=0o4755, uid=0, gid=0),
        reg("home/sgid", b"y", mode=0o2755, uid=1000, gid=50),
        reg("home/cap", b"z", mode=0o755,
            xattrs={"trusted.portside": "t", "security.selinux": "bogus_label_t"}),
        sym("home/link", "../nowhere", uid=1000, gid=1000),
        node("dev/null", tarfile.CHRTYPE, mode=0o666, major=1, minor=3),
        node("dev/loop0", tarfile.BLKTYPE, mode=0o660, gid=6, major=7, minor=0),
    )
    home = (dest / "home").stat()
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 1001, 0o700)
    suid = (dest / "home/suid").stat()
    assert (suid.st_uid, stat.S_IMODE(suid.st_mode)) == (0, 0o4755)
    sgid = (dest / "home/sgid").stat()
    # chmod after chown, or the kernel would have cleared setgid.
    assert (sgid.st_uid, sgid.st_gid, stat.S_IMODE(sgid.st_mode)) == (1000, 50, 0o2755)
    assert os.getxattr(dest / "home/cap", "trusted.portside") == b"t"
    link = os.lstat(dest / "home/link")
    assert (link.st_uid, link.st_gid) == (1000, 1000)
    null = (dest / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = (dest / "dev/loop0").lstat()
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0)
    assert loop.st_gid == 6


def test_absolute_and_dot_names_are_normalised_into_dest(dest: Path, tmp_path: Path,
                                                         outside: Path) -> None:
    before = snapshot(tmp_path, dest)
    extract(dest, reg("/etc/x", b"in"), reg("./a/./b", b"b"), dir_("./", mode=0o755))
    assert (dest / "etc" / "x").read_bytes() == b"in"
    assert (dest / "a" / "b").read_bytes() == b"b"
    assert snapshot(tmp_path, dest) == before


def test_later_entries_win(dest: Path, outside: Path) -> None:
    extract(
        dest,
        reg("f", b"1"), reg("f", b"22"),
        reg("g", b"file"), dir_("g"),              # a dir replaces a file
        sym("s", str(outside)), dir_("s"), reg("s/x", b"x"),  # and a symlink
    )
    assert (dest / "f").read_bytes() == b"22"
    assert (dest / "g").is_dir()
    assert (dest / "s").is_dir() and not (dest / "s").is_symlink()
    assert (dest / "s" / "x").exists() and not (outside / "x").exists()


def test_aufs_metadata_is_skipped(dest: Path) -> None:
    extract(dest, dir_(".wh..wh.plnk"), reg(".wh..wh.plnk/123.456", b"x"), reg("kept", b"k"))
    assert sorted(os.listdir(dest)) == ["kept"]


def test_thousand_files(dest: Path) -> None:
    entries = [dir_(f"d{i}") for i in range(10)]
    entries += [reg(f"d{i % 10}/f{i}", b"%d" % i) for i in range(1000)]
    written = extract(dest, *entries)
    assert written == sum(len(b"%d" % i) for i in range(1000))
    assert sum(len(os.listdir(dest / f"d{i}")) for i in range(10)) == 1000
    assert (dest / "d7" / "f997").read_bytes() == b"997"


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to make sparse files")
@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_files_are_written_out(tmp_path: Path, dest: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(3 << 20)
        f.write(b"middle")
        f.seek(8 << 20)
        f.write(b"end")
    tar = subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", str(src), "-cf", "-",
                          "sparse"], check=True, capture_output=True).stdout
    written = extract_layer(stream(tar), dest)
    assert (dest / "sparse").read_bytes() == (src / "sparse").read_bytes()
    assert written == (src / "sparse").stat().st_size


# -- whiteouts --------------------------------------------------------------------

def _is_whiteout(path: Path) -> bool:
    st = path.lstat()
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


@needs_root
def test_whiteouts_become_0_0_char_devices(dest: Path) -> None:
    extract(
        dest,
        reg("gone-file", b"x"), reg(".wh.gone-file"),        # replaces this layer's file
        dir_("gone-dir"), reg("gone-dir/x", b"x"), reg(".wh.gone-dir"),
        reg("etc/.wh.passwd"),                               # parent not in the tar
    )
    assert _is_whiteout(dest / "gone-file")
    assert _is_whiteout(dest / "gone-dir")
    assert _is_whiteout(dest / "etc" / "passwd")
    assert not (dest / ".wh.gone-file").exists() and not (dest / "etc" / ".wh.passwd").exists()


@needs_root
def test_opaque_marker_sets_overlay_xattr(dest: Path) -> None:
    extract(
        dest,
        dir_("o"), reg("o/keep", b"k"), reg("o/.wh..wh..opq"),   # after a sibling: fine
        reg("deep/er/.wh..wh..opq"),
        reg(".wh..wh..opq"),
        # A layer may not plant overlay bookkeeping xattrs itself.
        dir_("sneaky", xattrs={"trusted.overlay.redirect": "/etc"}),
    )
    assert os.getxattr(dest / "o", "trusted.overlay.opaque") == b"y"
    assert (dest / "o" / "keep").read_bytes() == b"k"
    assert not (dest / "o" / ".wh..wh..opq").exists()
    assert os.getxattr(dest / "deep" / "er", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(dest, "trusted.overlay.opaque") == b"y"
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "sneaky")


# -- hostile and malformed layers ---------------------------------------------------

def hostile_cases(outside: Path) -> dict[str, list[Entry]]:
    return {
        "dotdot": [reg("../x", b"x")],
        "dotdot-inside": [reg("a/../../x", b"x")],
        "dotdot-dir": [dir_("a/../..")],
        "write-through-abs-symlink": [sym("evil", str(outside)), reg("evil/file", b"x")],
        "write-through-rel-symlink": [sym("evil", "../.."), reg("evil/x", b"x")],
        "dir-through-symlink": [sym("evil", str(outside)), dir_("evil/newdir")],
        "symlink-through-symlink": [sym("evil", str(outside)), sym("evil/l", "/")],
        "deep-through-root-symlink": [sym("evil", "/"), reg(f"evil{outside}/x", b"x")],
        "hardlink-dotdot": [hard("h", "../../etc/passwd")],
        "hardlink-absolute": [hard("h", "/etc/passwd")],
        "hardlink-via-symlinked-parent": [sym("lnk", str(outside)), hard("h", "lnk/sentinel")],
        "hardlink-to-symlink": [sym("s", str(outside / "sentinel")), hard("h", "s")],
        "hardlink-to-dir": [dir_("d"), hard("h", "d")],
        "hardlink-not-yet-extracted": [hard("h", "later"), reg("later", b"x")],
        "hardlink-to-itself": [reg("f", b"x"), hard("f", "f")],
        "whiteout-bare": [reg(".wh.")],
        "whiteout-dot": [reg(".wh..")],
        "whiteout-dotdot": [reg(".wh...")],
        "whiteout-bare-in-dir": [dir_("d"), reg("d/.wh.")],
        "whiteout-via-symlink": [sym("evil", str(outside)), reg("evil/.wh.sentinel")],
        "opaque-via-symlink": [sym("evil", str(outside)), reg("evil/.wh..wh..opq")],
        "whiteout-as-dir": [reg(".wh.d/x", b"x")],
        "parent-is-file": [reg("f", b"x"), reg("f/x", b"x")],
        "file-replaces-dir": [dir_("d"), reg("d/keep", b"k"), reg("d", b"x")],
        "unknown-type": [node("weird", b"Z")],
        "nul-in-pax-path": [reg("ok", b"x", pax={"path": "a\x00b"})],
        "empty-symlink-target": [sym("s", "")],
        "root-as-file": [reg("./", b"x")],
    }


CASES = sorted(hostile_cases(Path("/x")))


@pytest.mark.parametrize("case", CASES)
def test_hostile_entries_are_refused(case: str, tmp_path: Path, dest: Path,
                                     outside: Path) -> None:
    entries = hostile_cases(outside)[case]
    before = snapshot(tmp_path, dest)
    passwd_links = os.stat("/etc/passwd").st_nlink
    with pytest.raises(ImageFormatError) as err:
        extract(dest, *entries)
    assert "test-layer" in str(err.value)
    assert snapshot(tmp_path, dest) == before
    assert (outside / "sentinel").read_text() == "keep me"
    assert os.stat("/etc/passwd").st_nlink == passwd_links


def test_error_names_the_entry(dest: Path, outside: Path) -> None:
    with pytest.raises(ImageFormatError, match=r"evil/file.*symlink"):
        extract(dest, sym("evil", str(outside)), reg("evil/file", b"x"))


@pytest.mark.parametrize("data", [b"", b"not a tar at all" * 100], ids=["empty", "garbage"])
def test_garbage_stream(dest: Path, data: bytes) -> None:
    with pytest.raises(ImageFormatError):
        extract_layer(stream(data), dest)


def test_truncated_stream(dest: Path) -> None:
    tar = build(reg("big", b"x" * 100_000))
    with pytest.raises(ImageFormatError, match="big"):
        extract_layer(stream(tar[:30_000]), dest)


# -- as non-root (simulated) ------------------------------------------------------

def test_non_root_skips_chown(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "fchown", refuse)
    monkeypatch.setattr(os, "chown", refuse)
    extract(dest, dir_("d", uid=5, mode=0o555), reg("d/f", b"x", uid=5, mode=0o600),
            sym("d/s", "f", uid=5))
    assert (dest / "d" / "f").read_bytes() == b"x"
    assert stat.S_IMODE((dest / "d").stat().st_mode) == 0o555


@pytest.mark.parametrize("entry", [
    node("dev/sda", tarfile.BLKTYPE, major=8, minor=0),
    reg(".wh.gone"),
], ids=["device", "whiteout"])
def test_non_root_devices_need_root(dest: Path, monkeypatch: pytest.MonkeyPatch,
                                    entry: Entry) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "mknod", refuse)
    with pytest.raises(NeedsRoot):
        extract(dest, entry)


def _unpadded_tar(content: bytes) -> bytes:
    """A one-file tar cut right after the file's content (no padding, no footer)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("data.bin")
        ti.size = len(content)
        tf.addfile(ti, io.BytesIO(content))
    raw = buf.getvalue()
    header_end = raw.index(content)
    return raw[:header_end + len(content)]


def test_tar_without_final_padding_is_accepted(dest: Path) -> None:
    # What umoci 0.4.7 writes; Go's reader accepts it, so must we.
    content = os.urandom(70000)           # not a multiple of 512
    extract_layer(io.BytesIO(_unpadded_tar(content)), dest)
    assert (dest / "data.bin").read_bytes() == content


def test_tar_cut_inside_content_is_still_refused(dest: Path) -> None:
    content = os.urandom(70000)
    cut = _unpadded_tar(content)[:-100]
    with pytest.raises(ImageFormatError):
        extract_layer(io.BytesIO(cut), dest)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "is full"), (errno.EDQUOT, "quota"),
                                         (errno.EROFS, "read-only file system")])
def test_a_full_disk_is_not_blamed_on_the_image(dest: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                code: int, words: str) -> None:
    from engine.errors import NoSpace
    from engine.images import extract

    def full(_src: Any, _fd: int) -> int:
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(extract, "_copy", full)
    data = layer_tar({"big.bin": b"x" * 10000})
    with pytest.raises(NoSpace) as info:
        extract_layer(io.BytesIO(data), dest, layer_name="layer 1/1", disk_root=tmp_path)
    msg = str(info.value)
    assert "corrupt" not in msg and "hostile" not in msg
    assert words in msg and str(tmp_path) in msg and "'big.bin'" in msg
    assert "--root" in msg
