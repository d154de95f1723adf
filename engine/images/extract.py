"""Unpack one uncompressed OCI layer tar into an overlayfs layer directory.

We write our own extractor instead of ``tarfile.extractall``: its ``data``
filter had bypasses (CVE-2025-4517 and friends) and it drops what a root
filesystem needs (device nodes, setuid bits, owners, xattrs). ``tarfile`` is
used only to parse headers, in stream mode, because the caller hashes the
bytes as we read them.

Safety rests on one rule: every path is resolved component by component from
a directory fd of ``dest`` with ``O_NOFOLLOW``, so no entry can reach outside
``dest`` through ``..``, an absolute name, or a symlink planted by an earlier
entry. Symlinks themselves may point anywhere: they are only ever resolved
inside the container at run time.

OCI whiteouts are converted to their overlayfs form while extracting (the
mapping moby's ``archive_linux.go`` uses): ``.wh.<name>`` becomes a 0:0
character device, ``.wh..wh..opq`` becomes ``trusted.overlay.opaque=y`` on
its directory.
"""
from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, BinaryIO, Callable

from ..errors import ImageFormatError, NeedsRoot, NoSpace

__all__ = ["extract_layer"]

CHUNK = 1 << 20

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

PAX_XATTR_PREFIX = "SCHILY.xattr."
# overlayfs keeps its own bookkeeping in these namespaces (opaque, redirect,
# origin, metacopy). A layer that carries them could steer lookups across the
# lower dirs, so they are never taken from the tar; opaque markers come only
# from .wh..wh..opq entries.
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

_HINT = "the image is corrupt or hostile; do not use it"


def extract_layer(fileobj: BinaryIO, dest: Path, *, layer_name: str = "layer",
                  disk_root: Path | None = None) -> int:
    """Extract an uncompressed layer tar into ``dest`` as an overlayfs layer dir.

    The stream is read strictly sequentially (it need not be seekable) and
    only up to the tar's end-of-archive marker; the caller drains the rest.

    Args:
        fileobj: the uncompressed tar stream.
        dest: an existing, empty directory. Nothing is ever written outside
            it. On error its content is undefined; the caller removes it.
        layer_name: how the layer is named in error messages.
        disk_root: the directory a full or read-only disk is reported at
            (the engine's root); default ``dest``.

    Returns:
        The number of bytes of regular file content written.

    Raises:
        ImageFormatError: the tar is malformed or hostile (``..`` components,
            writes through symlinks, bad hardlinks or whiteouts, unknown
            entry types, truncated data). The message names the entry.
        NeedsRoot: the layer holds device nodes, whiteouts or ``trusted.*``
            xattrs and we are not root.
        NoSpace: the disk is full, over quota or read-only (ENOSPC, EDQUOT, EROFS).
    """
    stream = _LenientEnd(fileobj)
    extractor = _Extractor(dest, layer_name, stream, disk_root)
    try:
        try:
            with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                              errors="surrogateescape") as tar:
                for member in tar:
                    extractor.add(member, tar)
        except (tarfile.TarError, EOFError) as err:
            where = f" near {extractor.current!r}" if extractor.current else ""
            raise ImageFormatError(f"{layer_name}: malformed tar{where}: {err}",
                                   hint="the layer is truncated or not a tar archive") from err
        try:
            extractor.finish()
        except OSError as err:
            if err.errno in DISK_ERRNOS:
                raise disk_error(err, extractor.disk_root, f"{layer_name}: extracting") from err
            raise
    finally:
        extractor.close()
    return extractor.written


# Failures of the disk, not of the image: they get their own message.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def disk_error(err: OSError, root: Path, doing: str) -> NoSpace:
    """The ``NoSpace`` for ENOSPC, EDQUOT or EROFS met while ``doing`` something under ``root``."""
    if err.errno == errno.EROFS:
        return NoSpace(f"{doing}: {root} is on a read-only file system",
                       hint="remount it read-write, or use --root on a writable disk")
    if err.errno == errno.EDQUOT:
        return NoSpace(f"{doing}: disk quota exceeded on {root}",
                       hint="free space within your quota, or use --root on another disk")
    return NoSpace(f"{doing}: the disk holding {root} is full",
                   hint="free space there, e.g. with portside image prune, or use --root "
                        "on a disk with room")


class _LenientEnd(io.RawIOBase):
    """Accept a tar that stops right after a member's content.

    umoci 0.4.7 (Debian 12) writes layers without the last member's padding
    and the end-of-archive blocks; Go's reader accepts them. Zeros stand in
    for the missing blocks, but only *between* members: inside a member's
    content (``in_content``) the end of data stays an error, so a truly
    truncated file is still refused.
    """

    _MAX_PAD = 511 + 1024           # padding plus the two end-of-archive blocks

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.in_content = False
        self._padded = 0
        self._seen = False          # an empty stream is no tar at all

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.inner.read(len(b))
        if data:
            self._seen = True
            b[:len(data)] = data
            return len(data)
        if self.in_content or not self._seen or self._padded >= self._MAX_PAD:
            return 0
        n = min(len(b), self._MAX_PAD - self._padded)
        b[:n] = bytes(n)
        self._padded += n
        return n


@dataclass
class _DirMeta:
    """Metadata of a directory entry, applied once all entries exist."""

    parts: tuple[str, ...]
    member: tarfile.TarInfo


class _Extractor:
    """The state of one extraction: the dest dir fd, deferred dirs, byte count."""

    def __init__(self, dest: Path, layer_name: str, stream: _LenientEnd,
                 disk_root: Path | None = None) -> None:
        self.layer_name = layer_name
        self.disk_root = disk_root or dest
        self.stream = stream
        self.written = 0
        self.current = ""
        self.is_root = os.geteuid() == 0
        # Directory metadata waits until the end: creating children would
        # bump the mtime again, and a read-only mode would stop us (as
        # non-root) from creating them. Keyed by path so a repeated entry wins.
        self.dirs: dict[tuple[str, ...], _DirMeta] = {}
        self.root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        """Release the dest dir fd."""
        os.close(self.root_fd)

    # -- errors ----------------------------------------------------------------
    def bad(self, entry: str, why: str) -> ImageFormatError:
        """An ImageFormatError naming the layer and the offending entry."""
        return ImageFormatError(f"{self.layer_name}: entry {entry!r}: {why}", hint=_HINT)

    def needs_root(self, entry: str, what: str) -> NeedsRoot:
        """A NeedsRoot for an entry only root can create."""
        return NeedsRoot(f"{self.layer_name}: {what} {entry!r}")

    # -- one entry -------------------------------------------------------------
    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        """Extract one tar member."""
        entry = member.name
        self.current = entry
        try:
            self._add(member, tar, entry)
        except OSError as err:
            if err.errno in DISK_ERRNOS:     # the disk's fault, not the image's
                raise disk_error(err, self.disk_root, f"{self.layer_name}: extracting {entry!r}") from err
            # Anything the checks above did not foresee (ENAMETOOLONG, EEXIST
            # on a duplicate, ...) still names the entry.
            raise ImageFormatError(f"{self.layer_name}: cannot extract {entry!r}: {err}",
                                   hint=_HINT) from err
        except (OverflowError, ValueError) as err:
            # Absurd uid/gid/mtime values, or NUL bytes the checks missed.
            raise self.bad(entry, f"invalid header field: {err}") from err

    def _add(self, member: tarfile.TarInfo, tar: tarfile.TarFile, entry: str) -> None:
        parts = self.split(entry, entry)
        if any(part.startswith(WHITEOUT_META_PREFIX) and part != WHITEOUT_OPAQUE
               for part in parts):
            # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs) from old images:
            # meaningless on overlayfs, and Docker skips it too.
            return
        if any(part.startswith(WHITEOUT_PREFIX) for part in parts[:-1]):
            raise self.bad(entry, "a whiteout name is used as a directory")
        if parts and parts[-1].startswith(WHITEOUT_PREFIX):
            self.whiteout(parts, entry)
            return
        if not parts:
            # "./" or "/": the layer root itself. Only a directory makes sense.
            if not member.isdir():
                raise self.bad(entry, "only a directory may name the layer root")
            self.dirs[parts] = _DirMeta(parts, member)
            return

        if member.isdir():
            self.directory(parts, member, entry)
        elif member.isreg():
            self.regular(parts, member, tar, entry)
        elif member.islnk():
            self.hardlink(parts, member, entry)
        elif member.issym() or member.ischr() or member.isblk() or member.isfifo():
            self.special(parts, member, entry)
        else:
            raise self.bad(entry, f"unsupported tar entry type {member.type!r}")

    # -- paths -----------------------------------------------------------------
    def split(self, name: str, entry: str) -> tuple[str, ...]:
        """Normalise a tar path into components relative to dest.

        Leading "/" and "." components go (Docker strips them too, so an
        absolute name lands inside the layer); ".." is refused outright,
        since no legitimate layer needs it.
        """
        if "\x00" in name:
            raise self.bad(entry, "path contains a NUL byte")
        parts: list[str] = []
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                raise self.bad(entry, f"path {name!r} has a '..' component")
            parts.append(part)
        return tuple(parts)

    def open_dir(self, parts: tuple[str, ...], entry: str, *, create: bool,
                 role: str = "parent") -> int:
        """Open ``dest/parts`` as a directory fd without following any symlink.

        Args:
            parts: normalised components below dest.
            entry: the tar entry, for error messages.
            create: make missing directories (0755, as Docker does for
                parents a tar leaves out) instead of failing.
            role: what the directory is to the entry, for error messages.

        Returns:
            A new fd the caller must close.

        Raises:
            ImageFormatError: a component is a symlink or not a directory,
                or is missing and ``create`` is false.
        """
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise self.bad(entry, f"{role} {'/'.join(parts[:i + 1])!r} does not "
                                       "exist in this layer") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    os.chmod(child, 0o755)    # the umask must not decide a lower dir's mode
                except OSError as err:
                    if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    kind = _describe(part, fd)
                    raise self.bad(entry, f"{role} {'/'.join(parts[:i + 1])!r} is {kind}, "
                                   "not a directory") from None
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def clear(self, parent_fd: int, name: str, entry: str, *, allow_dir: bool) -> None:
        """Remove an entry an earlier member (or this layer's whiteout) left at ``name``.

        Tar semantics are "the last entry wins". A non-directory never
        silently replaces a directory, though: that would drop the
        directory's whole subtree and no well-formed layer does it.
        """
        try:
            st = os.lstat(name, dir_fd=parent_fd)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent_fd)
        elif allow_dir:
            # fd-based rmtree: never follows a symlink inside the tree.
            shutil.rmtree(name, dir_fd=parent_fd)
        else:
            raise self.bad(entry, "would replace a directory of the same layer")

    # -- entry kinds -----------------------------------------------------------
    def whiteout(self, parts: tuple[str, ...], entry: str) -> None:
        """Turn an OCI whiteout into its overlayfs form inside its parent."""
        base = parts[-1]
        parent_fd = self.open_dir(parts[:-1], entry, create=True)
        try:
            if base == WHITEOUT_OPAQUE:
                # The marker hides lower layers only, so it does not matter
                # that siblings in this layer may come before it in the tar.
                self.set_xattr(parent_fd, OPAQUE_XATTR, b"y", entry, follow=True)
                return
            target = base[len(WHITEOUT_PREFIX):]
            # ".wh." would delete the parent itself, ".wh.." and ".wh..."
            # point at "." and ".." (image-spec #1314, stereoscope#647).
            if target in ("", ".", ".."):
                raise self.bad(entry, "invalid whiteout name")
            self.clear(parent_fd, target, entry, allow_dir=True)
            self._forget_dirs(parts[:-1] + (target,))
            try:
                os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent_fd)
            except PermissionError as err:
                raise self.needs_root(entry, "creating the overlay whiteout for") from err
        finally:
            os.close(parent_fd)

    def _forget_dirs(self, prefix: tuple[str, ...]) -> None:
        """Drop deferred metadata for a subtree a whiteout just removed."""
        n = len(prefix)
        for key in [k for k in self.dirs if k[:n] == prefix]:
            del self.dirs[key]

    def directory(self, parts: tuple[str, ...], member: tarfile.TarInfo, entry: str) -> None:
        """Create a directory (or keep an existing one); metadata comes later."""
        parent_fd = self.open_dir(parts[:-1], entry, create=True)
        try:
            name = parts[-1]
            try:
                st: os.stat_result | None = os.lstat(name, dir_fd=parent_fd)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=parent_fd)
                st = None
            if st is None:
                # Owner-only until finish() sets the real mode.
                os.mkdir(name, 0o700, dir_fd=parent_fd)
        finally:
            os.close(parent_fd)
        self.dirs[parts] = _DirMeta(parts, member)

    def regular(self, parts: tuple[str, ...], member: tarfile.TarInfo,
                tar: tarfile.TarFile, entry: str) -> None:
        """Write a regular file's content and metadata."""
        parent_fd = self.open_dir(parts[:-1], entry, create=True)
        try:
            name = parts[-1]
            self.clear(parent_fd, name, entry, allow_dir=False)
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent_fd)
            try:
                src = tar.extractfile(member)
                if src is None:       # cannot happen for a regular member
                    raise self.bad(entry, "no content")
                self.stream.in_content = True
                try:
                    copied = _copy(src, fd)
                finally:
                    self.stream.in_content = False
                if copied != member.size:
                    raise self.bad(entry, f"content is {copied} bytes, header says {member.size}")
                self.written += copied
                # chown clears setuid/setgid and security.capability, so it
                # goes first, then the mode, then xattrs.
                self.chown(lambda: os.fchown(fd, member.uid, member.gid))
                os.fchmod(fd, _mode(member))
                self.set_xattrs(fd, member, entry, follow=True)
                os.utime(fd, ns=_times(member))
            finally:
                os.close(fd)
        finally:
            os.close(parent_fd)

    def hardlink(self, parts: tuple[str, ...], member: tarfile.TarInfo, entry: str) -> None:
        """Link to a regular file this layer already extracted.

        The target is resolved with the same no-follow walk, so it can only
        ever be an inode inside dest. The link shares the target's inode and
        thus its metadata; the link entry's own header fields are ignored.
        """
        target = self.split(member.linkname, entry)
        if not target:
            raise self.bad(entry, "hardlink has an empty target")
        if target == parts:
            raise self.bad(entry, "hardlink points at itself")
        src_fd = self.open_dir(target[:-1], entry, create=False,
                               role=f"hardlink target {member.linkname!r}: directory")
        try:
            try:
                st = os.lstat(target[-1], dir_fd=src_fd)
            except FileNotFoundError:
                raise self.bad(entry, f"hardlink target {member.linkname!r} is not in this "
                               "layer (yet)") from None
            if not stat.S_ISREG(st.st_mode):
                raise self.bad(entry, f"hardlink target {member.linkname!r} is "
                               f"{_kind(st.st_mode)}, not a regular file")
            dst_fd = self.open_dir(parts[:-1], entry, create=True)
            try:
                self.clear(dst_fd, parts[-1], entry, allow_dir=False)
                os.link(target[-1], parts[-1], src_dir_fd=src_fd, dst_dir_fd=dst_fd,
                        follow_symlinks=False)
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)

    def special(self, parts: tuple[str, ...], member: tarfile.TarInfo, entry: str) -> None:
        """Create a symlink, device node or fifo, with its metadata."""
        parent_fd = self.open_dir(parts[:-1], entry, create=True)
        try:
            name = parts[-1]
            self.clear(parent_fd, name, entry, allow_dir=False)
            if member.issym():
                if not member.linkname or "\x00" in member.linkname:
                    raise self.bad(entry, "symlink target is empty or has a NUL byte")
                # Any target is fine: nothing here ever follows it.
                os.symlink(member.linkname, name, dir_fd=parent_fd)
            elif member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=parent_fd)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                try:
                    os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor),
                             dir_fd=parent_fd)
                except PermissionError as err:
                    raise self.needs_root(entry, "creating the device node") from err
            self.chown(lambda: os.chown(name, member.uid, member.gid, dir_fd=parent_fd,
                                        follow_symlinks=False))
            if not member.issym():
                # Linux has no lchmod; the name is the node made just above,
                # in a directory only this extraction writes to.
                os.chmod(name, _mode(member), dir_fd=parent_fd)
            # No fd can be opened on a symlink or device without side effects,
            # and setxattr takes no dir_fd: go through the parent's fd link.
            self.set_xattrs(f"/proc/self/fd/{parent_fd}/{name}", member, entry, follow=False)
            os.utime(name, ns=_times(member), dir_fd=parent_fd, follow_symlinks=False)
        finally:
            os.close(parent_fd)

    # -- metadata --------------------------------------------------------------
    def chown(self, call: Callable[[], None]) -> None:
        """Run a chown; as non-root, a refusal just leaves our own uid."""
        try:
            call()
        except PermissionError:
            if self.is_root:
                raise

    def set_xattrs(self, target: int | str, member: tarfile.TarInfo, entry: str,
                   *, follow: bool) -> None:
        """Apply the ``SCHILY.xattr.*`` pax records of an entry."""
        for key, value in member.pax_headers.items():
            if not key.startswith(PAX_XATTR_PREFIX):
                continue
            name = key[len(PAX_XATTR_PREFIX):]
            if not name or name.startswith(OVERLAY_XATTR_PREFIXES):
                continue
            # tarfile decodes pax values as UTF-8 with surrogateescape;
            # this gives back the exact bytes (capabilities are binary).
            self.set_xattr(target, name, value.encode("utf-8", "surrogateescape"), entry,
                           follow=follow)

    def set_xattr(self, target: int | str, name: str, value: bytes, entry: str,
                  *, follow: bool) -> None:
        """Set one xattr; security.* is best effort, anything else must stick."""
        try:
            if isinstance(target, int):
                os.setxattr(target, name, value)
            else:
                os.setxattr(target, name, value, follow_symlinks=follow)
        except OSError as err:
            if name.startswith("security."):
                # SELinux labels and the like are host policy; the host
                # relabels. Docker only warns here too.
                return
            if isinstance(err, PermissionError) and not self.is_root:
                raise self.needs_root(entry, f"setting xattr {name} on") from err
            raise self.bad(entry, f"cannot set xattr {name}: {err.strerror}") from err

    def finish(self) -> None:
        """Apply directory metadata, deepest first, after every entry exists.

        Deepest first so that, as non-root, a parent made read-only cannot
        stop us from reaching its children.
        """
        for meta in sorted(self.dirs.values(), key=lambda m: len(m.parts), reverse=True):
            entry = meta.member.name
            self.current = entry
            member = meta.member
            fd = self.open_dir(meta.parts, entry, create=False)
            try:
                self.chown(lambda: os.fchown(fd, member.uid, member.gid))
                os.fchmod(fd, _mode(member))
                self.set_xattrs(fd, member, entry, follow=True)
                os.utime(fd, ns=_times(member))
            except OSError as err:
                raise ImageFormatError(f"{self.layer_name}: cannot set metadata of "
                                       f"{entry!r}: {err}", hint=_HINT) from err
            except (OverflowError, ValueError) as err:
                raise self.bad(entry, f"invalid header field: {err}") from err
            finally:
                os.close(fd)


def _copy(src: IO[bytes], fd: int) -> int:
    """Copy ``src`` to ``fd`` in CHUNK pieces; returns the byte count."""
    total = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return total
        view = memoryview(chunk)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        total += len(chunk)


def _mode(member: tarfile.TarInfo) -> int:
    """Permission bits including setuid, setgid and sticky."""
    return member.mode & 0o7777


def _times(member: tarfile.TarInfo) -> tuple[int, int]:
    """(atime, mtime) in ns; pax records keep sub-second precision exactly."""
    mtime = _pax_ns(member, "mtime")
    if mtime is None:
        mtime = int(member.mtime) * 1_000_000_000
    atime = _pax_ns(member, "atime")
    return (mtime if atime is None else atime), mtime


def _pax_ns(member: tarfile.TarInfo, key: str) -> int | None:
    """A pax time record in ns, parsed as decimal (a float loses the ns)."""
    raw = member.pax_headers.get(key)
    if raw is None:
        return None
    try:
        return int(Decimal(raw) * 1_000_000_000)
    except (ArithmeticError, ValueError):
        return None


def _kind(mode: int) -> str:
    """A file type in words, for error messages."""
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node or whiteout"
    return "a special file"


def _describe(name: str, dir_fd: int) -> str:
    """What ``name`` in ``dir_fd`` is, without following it."""
    try:
        return _kind(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return "unreadable"
