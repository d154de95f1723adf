"""``commit``: a new image from a container's changes.

The container's overlay upper dir becomes one more layer on top of its
image's layers. Overlayfs markers are turned back into OCI whiteouts (a 0:0
character device becomes an empty ``.wh.<name>`` file, an opaque directory
gets a ``.wh..wh..opq`` entry), everything else is archived as it is, never
following a symlink. The new config is the image's, with the container's
runtime settings (Cmd, Entrypoint, Env, WorkingDir, User, Labels) and any
``--change`` lines on top, and one more history entry.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Mapping, Protocol

from .changes import KernelMarks, LowerView, OverlayMarks

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Writable(Protocol):
    """Anything tar can be written to."""

    def write(self, data: bytes) -> int:
        """Write ``data``; returns how much was written."""
        ...


class HashingWriter:
    """A write-only stream that hashes and counts what goes through to ``inner``."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        self.inner.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def write_layer(upper: str | os.PathLike[str], out: Writable, *,
                marks: OverlayMarks | None = None, lower: LowerView | None = None,
                skip: Iterable[str] = ()) -> int:
    """Write the upper dir as an OCI layer tar (uncompressed, PAX).

    Args:
        upper: the container's overlay upper dir.
        out: where the tar goes.
        marks: whiteout/opaque recognition (default: the kernel's).
        lower: the image's layers; with ``skip``, empty mount points the
            runtime created (absent from the image) are left out.
        skip: in-root paths that are mount points (``/etc/hosts``, ``/proc``...).

    Returns:
        The number of entries written.

    Raises:
        OSError: the upper dir cannot be read.
    """
    w = _LayerWriter(marks or KernelMarks(), lower, set(skip))
    fd = os.open(upper, _O_DIR)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        w.walk(tf, fd, "")
    return w.count


@dataclass
class _LayerWriter:
    marks: OverlayMarks
    lower: LowerView | None
    skip: set[str]
    count: int = 0
    links: dict[tuple[int, int], str] = field(default_factory=dict)

    def walk(self, tf: tarfile.TarFile, dfd: int, prefix: str) -> None:
        try:
            for name in sorted(os.listdir(dfd)):
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                arc = f"{prefix}{name}"
                if self._is_stub(dfd, name, st, arc):
                    continue
                self.entry(tf, dfd, name, st, arc)
        finally:
            os.close(dfd)

    def _is_stub(self, dfd: int, name: str, st: os.stat_result, arc: str) -> bool:
        if self.lower is None or "/" + arc not in self.skip or self.lower.exists("/" + arc):
            return False
        if stat.S_ISREG(st.st_mode):
            return st.st_size == 0
        if stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(name, _O_DIR, dir_fd=dfd)
            except OSError:
                return False
            try:
                return not os.listdir(sub)
            finally:
                os.close(sub)
        return False

    def _info(self, arc: str, st: os.stat_result) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(arc)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.mtime = int(st.st_mtime)
        return ti

    def entry(self, tf: tarfile.TarFile, dfd: int, name: str, st: os.stat_result, arc: str) -> None:
        mode = st.st_mode
        if self.marks.is_whiteout(st):
            parent, _, base = arc.rpartition("/")
            ti = self._info(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base, st)
            ti.type, ti.mode = tarfile.REGTYPE, 0o600
            tf.addfile(ti)
            self.count += 1
            return
        if stat.S_ISDIR(mode):
            try:
                child = os.open(name, _O_DIR, dir_fd=dfd)
            except OSError:
                return
            ti = self._info(arc + "/", st)
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
            self.count += 1
            if self.marks.is_opaque(child):
                # OCI: the marker comes with the directory; readers apply it first.
                op = self._info(f"{arc}/{OPAQUE_MARKER}", st)
                op.type, op.mode = tarfile.REGTYPE, 0o600
                tf.addfile(op)
                self.count += 1
            self.walk(tf, child, arc + "/")
            return
        if stat.S_ISSOCK(mode):
            return
        ti = self._info(arc, st)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1:
            first = self.links.get(key)
            if first is not None:
                ti.type, ti.linkname = tarfile.LNKTYPE, first
                tf.addfile(ti)
                self.count += 1
                return
            self.links[key] = arc
        if stat.S_ISLNK(mode):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dfd)
            tf.addfile(ti)
        elif stat.S_ISREG(mode):
            try:
                fd = os.open(name, _O_READ, dir_fd=dfd)
            except FileNotFoundError:
                return
            try:
                fst = os.fstat(fd)
                if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != key:
                    return                     # swapped while we looked: skip it
                os.set_blocking(fd, True)
                ti.size = fst.st_size
                tf.addfile(ti, _Exact(fd, fst.st_size))  # type: ignore[arg-type]
            finally:
                os.close(fd)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            tf.addfile(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tf.addfile(ti)
        else:
            return
        self.count += 1


class _Exact:
    """Exactly ``size`` bytes of a file, padded with zeros if it shrank meanwhile."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = os.read(self.fd, n) or b"\0" * n
        self.left -= len(data)
        return data


def container_runtime_config(image_config: Mapping[str, Any], *, entrypoint: Iterable[str] | None,
                             command: Iterable[str] | None, env: Iterable[str], working_dir: str,
                             user: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The ``config`` object of a committed image: the image's, with the container's settings.

    Docker's rules for the command: ``--entrypoint`` replaces the image's
    Entrypoint and drops its Cmd; a command replaces Cmd.

    Args:
        image_config: the image's ``config`` object.
        entrypoint: the container's ``--entrypoint`` (None: not given).
        command: the container's command (None or empty: not given).
        env: the container's merged environment.
        working_dir: the container's working dir ("" keeps the image's).
        user: the container's user ("" keeps the image's).
        labels: the container's labels (added to the image's).
    """
    cfg = {k: v for k, v in dict(image_config).items() if v is not None}
    if entrypoint is not None:
        ep = list(entrypoint)
        cfg["Entrypoint"] = ep or None
        cfg["Cmd"] = list(command) if command else None
    elif command:
        cfg["Cmd"] = list(command)
    cfg["Env"] = list(env)
    if working_dir:
        cfg["WorkingDir"] = working_dir
    if user:
        cfg["User"] = user
    merged_labels = dict(cfg.get("Labels") or {})
    merged_labels.update(labels)
    cfg["Labels"] = merged_labels or None
    return {k: v for k, v in cfg.items() if v is not None}


def committed_config(image: Mapping[str, Any], runtime: Mapping[str, Any], diff_id: str, *,
                     created: str, created_by: str, author: str = "", comment: str = "") -> dict[str, Any]:
    """The whole OCI image config of the committed image.

    Args:
        image: the base image's config.
        runtime: the new ``config`` object.
        diff_id: the new layer's uncompressed digest.
        created: RFC 3339 time of the commit.
        created_by: the history entry's command (the container's command).
        author: ``-a``.
        comment: ``-m``.
    """
    out = {k: v for k, v in dict(image).items() if k not in ("container", "container_config")}
    out["created"] = created
    if author:
        out["author"] = author
    else:
        out.pop("author", None)
    out["config"] = dict(runtime)
    rootfs = dict(image.get("rootfs") or {})
    out["rootfs"] = {"type": "layers", "diff_ids": list(rootfs.get("diff_ids") or []) + [diff_id]}
    entry: dict[str, Any] = {"created": created, "created_by": created_by}
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    out["history"] = list(image.get("history") or []) + [entry]
    out.setdefault("os", "linux")
    return out


__all__ = ["write_layer", "HashingWriter", "container_runtime_config", "committed_config",
           "WHITEOUT_PREFIX", "OPAQUE_MARKER"]
