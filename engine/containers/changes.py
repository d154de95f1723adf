"""What a container changed in its root file system (``docker diff``).

Everything a container writes lands in its overlay upper dir: new and
modified files, copied-up parent directories, and overlayfs's markers for
removals. A removed file is a *whiteout* (a 0:0 character device with the
file's name); a directory whose lower contents were replaced as a whole is
*opaque* (``trusted.overlay.opaque=y``). Comparing the upper dir with the
image's layers gives Docker's A (added), C (changed) and D (deleted).

The upper dir is written by the container, so it is walked with directory
fds and never through a symlink. How whiteouts and opaque dirs are
recognised is a parameter, so tests can build fake trees without root.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

OPAQUE_XATTR = "trusted.overlay.opaque"

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class FileChange:
    """One line of ``docker diff``: ``kind`` is ``A``, ``C`` or ``D``."""

    kind: str
    path: str


class OverlayMarks(Protocol):
    """How overlayfs marks removals in a layer directory."""

    def is_whiteout(self, st: os.stat_result) -> bool:
        """Whether the entry with this ``lstat`` result is a whiteout."""
        ...

    def is_opaque(self, dirfd: int) -> bool:
        """Whether the directory open (read-only) on ``dirfd`` is opaque."""
        ...


class KernelMarks:
    """The markers rootful overlayfs uses: 0:0 char devices and the trusted opaque xattr."""

    def is_whiteout(self, st: os.stat_result) -> bool:
        """A character device with device number 0:0."""
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0

    def is_opaque(self, dirfd: int) -> bool:
        """``trusted.overlay.opaque`` is ``y`` on the directory."""
        try:
            return os.getxattr(dirfd, OPAQUE_XATTR) == b"y"
        except OSError:
            return False


@dataclass(frozen=True)
class UpperEntry:
    """An entry of an upper dir, walked without following symlinks."""

    path: str                  # in-root path, "/etc/passwd"
    st: os.stat_result
    whiteout: bool = False
    opaque: bool = False       # a directory hiding everything below it in lower layers


def walk_upper(upper: str | os.PathLike[str], marks: OverlayMarks | None = None) -> Iterator[UpperEntry]:
    """Every entry below ``upper`` (not itself), parents before children, sorted by name.

    Args:
        upper: the overlay upper directory.
        marks: whiteout/opaque recognition (default: the kernel's).

    Raises:
        OSError: ``upper`` cannot be opened.
    """
    marks = marks or KernelMarks()
    fd = os.open(upper, _O_DIR)
    yield from _walk(fd, "", marks)


def _walk(dfd: int, prefix: str, marks: OverlayMarks) -> Iterator[UpperEntry]:
    try:
        for name in sorted(os.listdir(dfd)):
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue                   # removed by a running container while we walk
            path = f"{prefix}/{name}"
            if stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(name, _O_DIR, dir_fd=dfd)
                except OSError:
                    continue
                yield UpperEntry(path, st, opaque=marks.is_opaque(child))
                yield from _walk(child, path, marks)
            else:
                yield UpperEntry(path, st, whiteout=marks.is_whiteout(st))
    finally:
        os.close(dfd)


class LowerView:
    """Answers "does this path exist in the image?" over overlay lower dirs.

    Lookups walk each layer one component at a time without following
    symlinks, honouring whiteouts and opaque directories the way overlayfs
    merges them.
    """

    def __init__(self, lowers: Iterable[str | os.PathLike[str]], marks: OverlayMarks | None = None) -> None:
        """Args:
            lowers: the lower dirs, top layer first (overlayfs order).
            marks: whiteout/opaque recognition (default: the kernel's).
        """
        self.lowers = [Path(p) for p in lowers]
        self.marks = marks or KernelMarks()

    def exists(self, path: str) -> bool:
        """Whether ``path`` (in-root, absolute) exists in the merged lower layers."""
        return self._find(path) is not None

    def stat(self, path: str) -> os.stat_result | None:
        """``lstat`` of ``path`` in the merged lower layers, None if it is not there."""
        return self._find(path)

    def children(self, path: str) -> set[str]:
        """Names in directory ``path`` of the merged lower layers (empty if none)."""
        parts = [p for p in path.split("/") if p]
        names: set[str] = set()
        hidden: set[str] = set()
        for layer in self.lowers:
            found = self._lookup(layer, parts)
            if found is _GONE:
                break
            if found is None:
                continue
            st, opaque, fd = found
            try:
                if not stat.S_ISDIR(st.st_mode):
                    break
                dfd = os.open(".", _O_DIR, dir_fd=fd)
                try:
                    for name in os.listdir(dfd):
                        try:
                            cst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        if name in hidden or name in names:
                            continue
                        if self.marks.is_whiteout(cst):
                            hidden.add(name)
                        else:
                            names.add(name)
                finally:
                    os.close(dfd)
            finally:
                os.close(fd)
            if opaque:
                break
        return names

    def _find(self, path: str) -> os.stat_result | None:
        parts = [p for p in path.split("/") if p]
        for layer in self.lowers:
            found = self._lookup(layer, parts)
            if found is _GONE:
                return None
            if found is not None:
                st, _opaque, fd = found
                os.close(fd)
                return st
        return None

    def _lookup(self, layer: Path, parts: list[str]):  # type: ignore[no-untyped-def]
        """(lstat, opaque, O_PATH fd) of ``parts`` in one layer; None: not here; _GONE: hidden below."""
        try:
            fd = os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        opaque_above = False
        try:
            for i, comp in enumerate(parts):
                last = i == len(parts) - 1
                try:
                    nfd = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    return _GONE if opaque_above else None
                os.close(fd)
                fd = nfd
                st = os.fstat(fd)
                if self.marks.is_whiteout(st):
                    return _GONE
                if not last and not stat.S_ISDIR(st.st_mode):
                    return _GONE           # a file or symlink here masks lower directories
                opaque = False
                if stat.S_ISDIR(st.st_mode):
                    rfd = os.open(".", _O_DIR, dir_fd=fd)
                    try:
                        opaque = self.marks.is_opaque(rfd)
                    finally:
                        os.close(rfd)
                if last:
                    # "opaque" here means: lower layers add nothing at this path.
                    result = (st, opaque or opaque_above, fd)
                    fd = -1
                    return result
                opaque_above = opaque_above or opaque
            st = os.fstat(fd)                 # the root of the layer itself
            result = (st, False, fd)
            fd = -1
            return result
        finally:
            if fd >= 0:
                os.close(fd)


_GONE = object()


def diff(upper: str | os.PathLike[str], lower: LowerView, *, marks: OverlayMarks | None = None,
         ignore: Iterable[str] = ()) -> list[FileChange]:
    """The container's changes, as ``docker diff`` lists them (sorted by path).

    A path in the upper dir that also exists in the image is ``C``,
    otherwise ``A``; a whiteout is ``D``; an opaque directory that replaced
    one from the image is ``C`` and each entry it hides is ``D``.

    Args:
        upper: the container's overlay upper dir.
        lower: the image's layers.
        marks: whiteout/opaque recognition (default: the kernel's).
        ignore: in-root paths to leave out when they were only created as
            empty mount points (``/proc``, ``/etc/hosts``, ...).

    Raises:
        OSError: the upper dir cannot be read.
    """
    marks = marks or KernelMarks()
    skip = set(ignore)
    out: list[FileChange] = []
    copied_up: set[str] = set()       # image dirs only present because of a change below
    for e in walk_upper(upper, marks):
        if e.whiteout:
            out.append(FileChange("D", e.path))
            continue
        image_st = lower.stat(e.path)
        if image_st is None and e.path in skip and _empty(upper, e):
            continue
        out.append(FileChange("A" if image_st is None else "C", e.path))
        if image_st is not None and stat.S_ISDIR(e.st.st_mode) and stat.S_ISDIR(image_st.st_mode) \
                and not e.opaque and _same_meta(e.st, image_st):
            copied_up.add(e.path)
        if e.opaque and image_st is not None:
            present = set(_names_in(upper, e.path))
            for name in sorted(lower.children(e.path) - present):
                out.append(FileChange("D", f"{e.path}/{name}"))
    out.sort(key=lambda c: c.path)
    # A directory that was only copied up (overlayfs does that to change
    # something inside) is a change only if something inside is reported;
    # this hides the copy-up of /etc for a runtime-made /etc/hosts mount point.
    reported = [c.path for c in out]
    return [c for c in out if c.path not in copied_up
            or any(p.startswith(c.path + "/") for p in reported)]


def _same_meta(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid) == (b.st_mode, b.st_uid, b.st_gid)


def _empty(upper: str | os.PathLike[str], e: UpperEntry) -> bool:
    # A mount point the runtime created is an empty directory or an empty file.
    if stat.S_ISDIR(e.st.st_mode):
        try:
            return not _names_in(upper, e.path)
        except OSError:
            return False
    return stat.S_ISREG(e.st.st_mode) and e.st.st_size == 0


def _names_in(upper: str | os.PathLike[str], path: str) -> list[str]:
    fd = os.open(upper, _O_DIR)
    try:
        for comp in [p for p in path.split("/") if p]:
            nfd = os.open(comp, _O_DIR, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return os.listdir(fd)
    finally:
        os.close(fd)
