"""Writing into a container's root before it runs: the working directory and volume copy-up.

Paths come from the image, which the user may not trust, so they are
resolved inside the root with :class:`~.copy.RootDir` (never following a
symlink out of it). Nothing runs in the container yet, so nothing can race
the copy.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument


def mkdir_in_root(root: Any, path: str) -> None:
    """Create ``path`` (and parents) inside a container root, never leaving it."""
    from .copy import CopyError      # loaded by whoever opened ``root``
    parts = [p for p in path.split("/") if p and p != "."]
    for i in range(1, len(parts) + 1):
        sub = "/" + "/".join(parts[:i])
        try:
            with root.resolve(sub, must_exist=False) as r:
                if r.exists:
                    continue
                os.mkdir(r.name, 0o755, dir_fd=r.dirfd)
        except FileExistsError:
            continue
        except (CopyError, OSError) as err:
            raise InvalidArgument(f"cannot create the working directory {path} in the container: {err}",
                                  hint="choose another -w directory") from err


def copy_up(root: Any, dest: str, data: Path) -> None:
    """Copy the image's files at ``dest`` into an empty volume (Docker's copy-up).

    ``dest`` is resolved inside the container root (never following a
    symlink out of it); symlinks are copied as links, devices and FIFOs are
    skipped, owners, modes and times are kept.
    """
    from .copy import CopyError
    try:
        if any(os.scandir(data)):
            return
    except OSError:
        return
    try:
        with root.resolve(dest, must_exist=False) as r:
            if not r.is_dir:
                return
            _copy_dir(f"/proc/self/fd/{r.fd}", str(data))
    except (CopyError, OSError):
        return


def _copy_dir(src: str, dst: str) -> None:
    for entry in os.scandir(src):
        s_path, d_path = os.path.join(src, entry.name), os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            os.symlink(os.readlink(s_path), d_path)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(d_path)
            _copy_dir(s_path, d_path)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(s_path, d_path, follow_symlinks=False)
        else:
            continue
        os.lchown(d_path, st.st_uid, st.st_gid)
        if not entry.is_symlink():
            os.chmod(d_path, st.st_mode & 0o7777)
            os.utime(d_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    root_st = os.stat(src)
    os.chown(dst, root_st.st_uid, root_st.st_gid)
    os.chmod(dst, root_st.st_mode & 0o7777)
