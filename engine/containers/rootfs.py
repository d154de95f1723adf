"""The container root filesystem: an overlay of the image layers and a private upper dir.

Layout under ``containers/<id>/``: ``upper`` (the container's changes, kept
until ``rm``, so files survive stop/start), ``work`` (overlayfs scratch),
``merged`` (the mount point the runtime uses as root), and ``l/`` (short
symlinks to the layers, used only when the lower dir list is too long for
one mount option page).

The mount is made before the runtime creates the container and undone after
it exits; a mount left behind by a crash is found and undone by
:func:`unmount`, which is safe to call at any time.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from ..errors import RuntimeFailure

# mount(2) copies at most one page of option data (including the NUL).
MAX_MOUNT_DATA = 4095
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def layout(cdir: Path) -> tuple[Path, Path, Path]:
    """``(upper, work, merged)`` of a container directory."""
    return cdir / "upper", cdir / "work", cdir / "merged"


def prepare(cdir: Path) -> None:
    """Create the empty upper, work and merged directories (at create time)."""
    for d in layout(cdir):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(cdir / "merged", 0o755)


def mount_options(lower: Sequence[str], upper: str, work: str) -> str:
    return f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"


def mount(cdir: Path, lower_dirs: Sequence[Path]) -> Path:
    """Mount the overlay at ``cdir/merged``; returns the mount point.

    Lower dirs are top layer first (overlayfs order). When the absolute
    paths do not fit in one mount option page, short per-container symlinks
    (``l/0``, ``l/1``...) and paths relative to the container directory are
    used instead, which fit several hundred layers.

    Raises:
        RuntimeFailure: the kernel refused the mount.
    """
    upper, work, merged = layout(cdir)
    if is_mounted(merged):
        return merged                  # left by an earlier start that failed half-way
    if not lower_dirs:
        # overlayfs needs a lower dir; an image without layers gets an empty one.
        empty = cdir / "empty-lower"
        empty.mkdir(exist_ok=True)
        lower_dirs = [empty]
    for d in lower_dirs:
        if ":" in str(d) or "," in str(d):
            raise RuntimeFailure(f"layer path {d} contains ':' or ',' and cannot be used by overlayfs",
                                 hint="move the portside root to a path without those characters")
    data = mount_options([str(d) for d in lower_dirs], str(upper), str(work))
    if len(data) <= MAX_MOUNT_DATA:
        _mount("overlay", merged, "overlay", data)
        return merged
    links = cdir / "l"
    shutil.rmtree(links, ignore_errors=True)
    links.mkdir()
    for i, d in enumerate(lower_dirs):
        os.symlink(d, links / str(i))
    data = mount_options([f"l/{i}" for i in range(len(lower_dirs))], "upper", "work")
    if len(data) > MAX_MOUNT_DATA:
        raise RuntimeFailure(f"the image has too many layers ({len(lower_dirs)}) for overlayfs",
                             hint="flatten the image (export and import it)")
    # Relative paths resolve against the mounting process's cwd; mount(8) in
    # a child with its own cwd keeps this thread-safe (chdir is per process).
    proc = subprocess.run(["mount", "-n", "-t", "overlay", "overlay", "-o", data, "merged"],
                          cwd=cdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeFailure(f"cannot mount the container's root filesystem: {proc.stderr.strip()}",
                             hint="check that overlayfs is available (modprobe overlay)")
    return merged


def _mount(source: str, target: Path, fstype: str, data: str) -> None:
    if _libc.mount(source.encode(), os.fsencode(target), fstype.encode(), 0, data.encode()) != 0:
        e = ctypes.get_errno()
        if e == errno.EPERM:
            from ..errors import NeedsRoot
            raise NeedsRoot("mounting a container's root filesystem")
        raise RuntimeFailure(f"cannot mount the container's root filesystem at {target}: "
                             f"{os.strerror(e)}",
                             hint="check that overlayfs is available (modprobe overlay)")


def unmount(cdir: Path) -> bool:
    """Unmount ``cdir/merged`` if it is mounted (lazily if busy). Returns True if it was."""
    merged = layout(cdir)[2]
    if not is_mounted(merged):
        return False
    target = os.fsencode(merged)
    if _libc.umount2(target, 0) != 0:
        e = ctypes.get_errno()
        if e == errno.EINVAL:
            return False
        if e == errno.EBUSY and _libc.umount2(target, MNT_DETACH) == 0:
            return True
        raise RuntimeFailure(f"cannot unmount {merged}: {os.strerror(e)}",
                             hint="a process may still use the container's files")
    return True


def is_mounted(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    """Whether ``path`` is a mount point (per this process's mountinfo)."""
    want = os.fsencode(os.path.abspath(path))
    try:
        data = mountinfo.read_bytes()
    except OSError:
        return False
    for line in data.splitlines():
        parts = line.split(b" ", 5)
        if len(parts) > 4 and _unescape(parts[4]) == want:
            return True
    return False


def _unescape(b: bytes) -> bytes:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if b"\\" not in b:
        return b
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i:i + 1] == b"\\" and i + 4 <= len(b) and b[i + 1:i + 4].isdigit():
            out.append(int(b[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def disk_usage(path: Path) -> int:
    """Bytes in the files under ``path`` (the container's upper dir, for ``ps -s``).

    Apparent sizes, each hard-linked inode counted once, like Docker's SizeRw.
    """
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirnames, filenames in os.walk(path):
        for fn in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, fn))
            except OSError:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_size
    return total
