"""Safe file access inside a container's root, and ``cp`` in and out of it.

Every path the container controls is resolved one component at a time with
``openat(O_PATH|O_NOFOLLOW)`` from a directory fd of the container root. A
symlink is read with ``readlinkat`` and its target resolved again from the
root (absolute targets) or from its own directory (relative ones), and
``..`` never climbs above the root: the semantics of the kernel's
``openat2(RESOLVE_IN_ROOT)``, which is how runc and moby closed the
``docker cp`` symlink race (CVE-2018-15664). Because every step is relative
to an fd already held, swapping a directory for a symlink mid-copy can only
ever lead somewhere else *inside* the root.

Nothing from the container is executed or loaded (CVE-2019-14271): the tar
stream is written and read in this process with the standard library, and
no user or group name is looked up through the host's NSS modules.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

from ..errors import EngineError, InvalidArgument

if TYPE_CHECKING:
    import tarfile        # imported by the tar functions: resolving a path needs no tar code

MAX_SYMLINKS = 40          # the kernel's limit (MAXSYMLINKS) for one resolution
CHUNK = 1 << 20

_O_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: if a regular file is swapped for a FIFO between the lstat and
# the open, the open must not hang; the inode check afterwards catches it.
_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class CopyError(EngineError):
    """A ``cp`` could not be done; the message names the path and the reason."""


@dataclass
class Resolved:
    """The result of resolving a path inside a :class:`RootDir`.

    ``dirfd`` is an ``O_PATH`` fd of the parent directory and ``name`` the
    final component in it (``"."`` for the root itself). ``fd``/``st`` are
    the object (an ``O_PATH`` fd that is never followed) or ``-1``/``None``
    when it does not exist. ``path`` is the canonical path inside the root.
    The caller owns the fds: use it as a context manager.
    """

    dirfd: int
    name: str
    fd: int
    st: os.stat_result | None
    path: str

    @property
    def exists(self) -> bool:
        return self.st is not None

    @property
    def is_dir(self) -> bool:
        return self.st is not None and stat.S_ISDIR(self.st.st_mode)

    def close(self) -> None:
        for fd in {self.fd, self.dirfd}:
            if fd >= 0:
                os.close(fd)
        self.fd = self.dirfd = -1

    def __enter__(self) -> "Resolved":
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class RootDir:
    """A directory treated as ``/`` for every path resolved through it."""

    def __init__(self, fd: int, *, label: str = "container") -> None:
        """Wrap an open directory fd (taken over: closed with this object).

        Args:
            fd: a directory fd (``O_PATH`` is enough).
            label: what to call the root in error messages.
        """
        self.fd = fd
        self.label = label

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, label: str = "container") -> "RootDir":
        """Open ``path`` (a trusted host path, followed normally) as a root.

        Raises:
            CopyError: the directory cannot be opened.
        """
        try:
            fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise CopyError(f"cannot open {label} root {os.fspath(path)}: {err.strerror}") from err
        return cls(fd, label=label)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "RootDir":
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- resolution -----------------------------------------------------------
    def resolve(self, path: str, *, follow: bool = True, must_exist: bool = True) -> Resolved:
        """Resolve ``path`` inside the root, never leaving it.

        Absolute symlinks are taken relative to the root, ``..`` stops at the
        root, and every intermediate component must be a directory (or a
        symlink that resolves, in the root, to one).

        Args:
            path: the path inside the root (absolute or relative to it).
            follow: follow a symlink in the last component too.
            must_exist: raise if the last component does not exist; when
                false a missing last component gives ``fd == -1`` (its parent
                must exist).

        Returns:
            A :class:`Resolved` the caller must close.

        Raises:
            CopyError: a component is missing or not a directory, or there
                are too many symlinks (a loop).
        """
        stack = [os.dup(self.fd)]      # fds of the directories walked so far
        names = [""]
        todo = _components(path)
        hops = 0
        try:
            while True:
                # Skip "." and handle ".." before deciding what the last component is.
                while todo and todo[0] in ("", "."):
                    todo.pop(0)
                if todo and todo[0] == "..":
                    todo.pop(0)
                    if len(stack) > 1:
                        os.close(stack.pop())
                        names.pop()
                    continue
                if not todo:
                    # The path named a directory already walked (the root, or "a/..").
                    fd = os.dup(stack[-1])
                    st = os.fstat(fd)
                    parent = os.dup(stack[-2]) if len(stack) > 1 else os.dup(stack[-1])
                    name = names[-1] if len(stack) > 1 else "."
                    return Resolved(parent, name, fd, st, _join(names))
                comp = todo.pop(0)
                last = all(c in ("", ".") for c in todo)
                trailing = bool(todo)          # "name/" or "name/.": must be a directory
                try:
                    fd = os.open(comp, _O_PATH, dir_fd=stack[-1])
                except FileNotFoundError:
                    if last and not must_exist:
                        return Resolved(os.dup(stack[-1]), comp, -1, None, _join(names + [comp]))
                    raise CopyError(f"no such file or directory in the {self.label}: "
                                    f"{_join(names + [comp])}") from None
                except OSError as err:
                    raise CopyError(f"cannot open {_join(names + [comp])} in the "
                                    f"{self.label}: {err.strerror}") from err
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode) and (follow or not last or trailing):
                    hops += 1
                    if hops > MAX_SYMLINKS:
                        os.close(fd)
                        raise CopyError(f"too many levels of symbolic links resolving {path} "
                                        f"in the {self.label}", hint="the path contains a symlink loop")
                    target = os.readlink("", dir_fd=fd)
                    os.close(fd)
                    if target.startswith("/"):
                        # Rooted at the container root, never at the host's.
                        while len(stack) > 1:
                            os.close(stack.pop())
                            names.pop()
                    todo = _components(target) + todo
                    continue
                if last:
                    if trailing and not stat.S_ISDIR(st.st_mode):
                        os.close(fd)
                        raise CopyError(f"not a directory in the {self.label}: {_join(names + [comp])}")
                    return Resolved(os.dup(stack[-1]), comp, fd, st, _join(names + [comp]))
                if not stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise CopyError(f"not a directory in the {self.label}: {_join(names + [comp])}")
                stack.append(fd)
                names.append(comp)
        finally:
            for fd in stack:
                os.close(fd)

    def read_file(self, path: str, *, limit: int = 1 << 20) -> bytes | None:
        """The content of a regular file in the root, or ``None`` if there is none.

        Used for ``/etc/passwd`` and ``/etc/group``: at most ``limit`` bytes
        are read, and anything but a regular file counts as absent.
        """
        try:
            with self.resolve(path) as r:
                if r.st is None or not stat.S_ISREG(r.st.st_mode):
                    return None
                fd = _reopen_regular(r)
        except CopyError:
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                return f.read(limit)
        except OSError:
            return None

    def is_executable(self, path: str) -> bool | None:
        """Whether ``path`` is a regular file with an execute bit (``None``: missing)."""
        try:
            with self.resolve(path) as r:
                if r.st is None:
                    return None
                return stat.S_ISREG(r.st.st_mode) and bool(r.st.st_mode & 0o111)
        except CopyError:
            return None


def _components(path: str) -> list[str]:
    return [c for c in path.split("/")]


def _join(names: list[str]) -> str:
    return "/" + "/".join(n for n in names if n)


def _reopen_regular(r: Resolved) -> int:
    """Open the regular file ``r`` for reading; fail if it changed since it was resolved."""
    fd = os.open(r.name, _O_READ, dir_fd=r.dirfd)
    st = os.fstat(fd)
    assert r.st is not None
    if (st.st_dev, st.st_ino) != (r.st.st_dev, r.st.st_ino) or not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CopyError(f"{r.path} changed while it was being copied", hint="try again")
    os.set_blocking(fd, True)
    return fd


# -- writing a tar stream of a tree --------------------------------------------
class _Exact:
    """Reads exactly ``size`` bytes from a file that may shrink or grow meanwhile."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = os.read(self.fd, n)
        if not data:
            data = b"\0" * n           # shrank under us: pad, the header is already out
        self.left -= len(data)
        return data


@dataclass(frozen=True)
class TarOptions:
    """How a tree is turned into tar entries."""

    follow_top: bool = False      # -L: archive what a top-level symlink points at
    keep_owner: bool = True       # uid/gid in headers (else 0:0)


def write_tar(root: RootDir, path: str, out: BinaryIO, *, name: str | None = None,
              options: TarOptions = TarOptions()) -> None:
    """Write ``path`` (resolved inside ``root``) as a tar stream to ``out``.

    The top entry is called ``name`` (default: the path's base name); a
    directory is walked without ever following a symlink. Sockets are
    skipped (tar has no type for them).

    Args:
        root: the tree the path lives in.
        path: what to archive.
        out: a binary stream to write the (uncompressed, PAX) tar to.
        name: the archive name of the top entry.
        options: symlink and ownership handling.

    Raises:
        CopyError: the path does not exist or cannot be read.
    """
    with root.resolve(path, follow=options.follow_top) as top:
        assert top.st is not None
        top_name = name or (posixpath.basename(top.path.rstrip("/")) or ".")
        import tarfile
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            links: dict[tuple[int, int], str] = {}
            _add_entry(tf, top.dirfd, top.name, top.st, top_name, links, options, root.label)


def _add_entry(tf: tarfile.TarFile, dirfd: int, name: str, st: os.stat_result, arcname: str,
               links: dict[tuple[int, int], str], options: TarOptions, label: str) -> None:
    import tarfile
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return
    ti = tarfile.TarInfo(arcname)
    ti.mode = stat.S_IMODE(mode)
    ti.mtime = int(st.st_mtime)
    if options.keep_owner:
        ti.uid, ti.gid = st.st_uid, st.st_gid
    if stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
        try:
            dfd = os.open(name, _O_DIR, dir_fd=dirfd)
        except OSError as err:
            raise CopyError(f"cannot read directory {arcname} in the {label}: {err.strerror}") from err
        try:
            tf.addfile(ti)
            for child in sorted(os.listdir(dfd)):
                try:
                    cst = os.stat(child, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue                     # removed while we walk: like tar, skip it
                _add_entry(tf, dfd, child, cst, f"{arcname}/{child}", links, options, label)
        finally:
            os.close(dfd)
        return
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and not stat.S_ISDIR(mode):
        first = links.get(key)
        if first is not None:
            ti.type = tarfile.LNKTYPE
            ti.linkname = first
            tf.addfile(ti)
            return
        links[key] = arcname
    if stat.S_ISLNK(mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(name, dir_fd=dirfd)
        tf.addfile(ti)
    elif stat.S_ISREG(mode):
        try:
            fd = os.open(name, _O_READ, dir_fd=dirfd)
        except OSError as err:
            raise CopyError(f"cannot read {arcname} in the {label}: {err.strerror}") from err
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != key or not stat.S_ISREG(fst.st_mode):
                raise CopyError(f"{arcname} changed while it was being copied", hint="try again")
            os.set_blocking(fd, True)
            ti.type = tarfile.REGTYPE
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


# -- extracting a tar stream into a tree ---------------------------------------
@dataclass(frozen=True)
class ExtractOptions:
    """What an extraction may create and keep."""

    keep_owner: bool = False                          # the archive's uid/gid (cp -a; root only)
    default_owner: tuple[int, int] | None = None      # when not keeping; None: as created
    allow_devices: bool = True                        # create char/block device nodes
    strip_setid: bool = False                         # clear setuid/setgid (copies onto the host)


def extract_tar(src: BinaryIO, root: RootDir, dest_dir: str, *,
                rename_top: tuple[str, str] | None = None,
                options: ExtractOptions = ExtractOptions(),
                warn: Callable[[str], None] | None = None) -> int:
    """Unpack a tar stream into ``dest_dir`` inside ``root``, never leaving the root.

    ``dest_dir`` and each entry's parent are resolved in the root, the way
    the container sees its own paths. The entry itself is created with
    ``*at`` calls on that parent's fd and never through a symlink; owner,
    mode and times are set on an fd of what was created (so a file swapped
    for a symlink in between cannot redirect a ``chmod`` to the host).
    Names that are absolute or contain ``..`` are refused. A hard link may
    only point at a file this archive created.

    Args:
        src: the tar stream (plain, or gzip/bz2/xz compressed).
        root: the tree to write into.
        dest_dir: an existing directory inside the root.
        rename_top: ``(old, new)``: entries ``old`` and ``old/...`` are
            written as ``new`` and ``new/...``; with ``new == "."`` the
            contents go straight into ``dest_dir``. Other entries are skipped.
        options: ownership, devices and setuid handling.
        warn: called with a message for each entry that is skipped.

    Returns:
        The number of entries written.

    Raises:
        CopyError: the destination is not a directory, an entry is hostile,
            the input is not a tar, or the file system refuses a write.
    """
    return _Extractor(root, dest_dir, rename_top, options, warn).run(src)


def _safe_member_name(name: str) -> str | None:
    """The member name as a clean relative path, or ``None`` if it escapes."""
    if name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts) or "."


def _rename(rel: str, old: str, new: str) -> str | None:
    if old == ".":
        return rel if new == "." else (new if rel == "." else f"{new}/{rel}")
    if rel == old:
        return new
    if rel.startswith(old + "/"):
        rest = rel[len(old) + 1:]
        return rest if new == "." else f"{new}/{rest}"
    return None


class _Extractor:
    def __init__(self, root: RootDir, dest_dir: str, rename_top: tuple[str, str] | None,
                 options: ExtractOptions, warn: Callable[[str], None] | None) -> None:
        self.root = root
        self.rename_top = rename_top
        self.options = options
        self.warn = warn or (lambda _msg: None)
        with root.resolve(dest_dir) as d:
            if not d.is_dir:
                raise CopyError(f"destination {d.path} in the {root.label} is not a directory")
            self.prefix = d.path.rstrip("/")
        self.created: set[str] = set()
        self.dir_times: list[tuple[str, int]] = []

    def run(self, src: BinaryIO) -> int:
        import tarfile
        count = 0
        try:
            with tarfile.open(fileobj=src, mode="r|*") as tf:
                for m in tf:
                    rel = _safe_member_name(m.name)
                    if rel is None:
                        raise CopyError(f"refusing archive entry {m.name!r}: "
                                        "it points outside the destination")
                    if self.rename_top is not None:
                        rel = _rename(rel, *self.rename_top)
                        if rel is None:
                            continue
                    if rel == ".":
                        continue          # the top directory itself, when merging into dest
                    if self._member(tf, m, rel):
                        count += 1
                        self.created.add(rel)
        except tarfile.TarError as err:
            raise CopyError(f"cannot read the tar stream: {err}",
                            hint="the input must be a tar archive") from err
        # Directory times last: writing their children changed them.
        for rel, mtime in reversed(self.dir_times):
            try:
                with self.root.resolve(self._full(rel), follow=False) as r:
                    fd = os.open(r.name, _O_DIR, dir_fd=r.dirfd)
                    try:
                        os.utime(fd, (mtime, mtime))
                    finally:
                        os.close(fd)
            except (CopyError, OSError):
                pass
        return count

    def _full(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def _member(self, tf: tarfile.TarFile, m: tarfile.TarInfo, rel: str) -> bool:
        full = self._full(rel)
        try:
            parent = self.root.resolve(posixpath.dirname(full) or "/")
        except CopyError as err:
            raise CopyError(f"cannot write {rel}: {err.message}") from err
        with parent:
            if not parent.is_dir:
                raise CopyError(f"cannot write {rel}: {parent.path} is not a directory")
            pfd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent.fd)
        try:
            return self._create(tf, m, pfd, posixpath.basename(full), rel)
        except OSError as err:
            hint = ("the container's root or that volume is read-only"
                    if err.errno == errno.EROFS else None)
            raise CopyError(f"cannot write {rel}: {err.strerror}", hint=hint) from err
        finally:
            os.close(pfd)

    def _mode(self, m: tarfile.TarInfo) -> int:
        mode = m.mode & 0o7777
        if self.options.strip_setid:
            mode &= ~(stat.S_ISUID | stat.S_ISGID)
        return mode

    def _owner(self, m: tarfile.TarInfo) -> tuple[int, int] | None:
        if self.options.keep_owner:
            # Like tar: only root can give files away; others keep their own.
            return (m.uid, m.gid) if os.geteuid() == 0 else None
        return self.options.default_owner

    def _create(self, tf: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, name: str, rel: str) -> bool:
        try:
            old = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if m.isdir():
            if old is not None and not stat.S_ISDIR(old.st_mode):
                os.unlink(name, dir_fd=pfd)
                old = None
            if old is None:
                os.mkdir(name, 0o700, dir_fd=pfd)
            fd = os.open(name, _O_DIR, dir_fd=pfd)
            try:
                self._set_meta_fd(fd, m)
            finally:
                os.close(fd)
            self.dir_times.append((rel, int(m.mtime)))
            return True
        if m.islnk():
            return self._hardlink(m, pfd, name, rel, old)
        if not (m.isreg() or m.issym() or m.isfifo() or m.ischr() or m.isblk()):
            self.warn(f"skipped {rel}: unsupported tar entry type {m.type!r}")
            return False
        if (m.ischr() or m.isblk()) and not self.options.allow_devices:
            self.warn(f"skipped device node {rel}")
            return False
        if old is not None:
            if stat.S_ISDIR(old.st_mode):
                raise CopyError(f"cannot overwrite directory {rel} with a non-directory")
            os.unlink(name, dir_fd=pfd)
        if m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                f = tf.extractfile(m)
                assert f is not None
                while chunk := f.read(CHUNK):
                    _write_all(fd, chunk)
                self._set_meta_fd(fd, m)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=pfd)
            owner = self._owner(m)
            if owner is not None:
                os.chown(name, *owner, dir_fd=pfd, follow_symlinks=False)
            os.utime(name, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
        else:
            kind = stat.S_IFIFO if m.isfifo() else stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            dev = 0 if m.isfifo() else os.makedev(m.devmajor, m.devminor)
            os.mknod(name, kind | 0o600, dev, dir_fd=pfd)
            # Special files cannot be opened safely for fchmod; go through an
            # O_PATH fd (the exact inode just made) and its /proc/self/fd link.
            fd = os.open(name, _O_PATH, dir_fd=pfd)
            try:
                if stat.S_IFMT(os.fstat(fd).st_mode) != kind:
                    raise CopyError(f"{rel} changed while it was being written", hint="try again")
                owner = self._owner(m)
                via = f"/proc/self/fd/{fd}"
                if owner is not None:
                    os.chown(via, *owner)
                os.chmod(via, self._mode(m))
                os.utime(via, (m.mtime, m.mtime))
            finally:
                os.close(fd)
        return True

    def _hardlink(self, m: tarfile.TarInfo, pfd: int, name: str, rel: str,
                  old: os.stat_result | None) -> bool:
        target = _safe_member_name(m.linkname)
        if self.rename_top is not None and target is not None:
            target = _rename(target, *self.rename_top)
        if target is None or target not in self.created:
            raise CopyError(f"refusing hard link {rel} -> {m.linkname}: the target is not a "
                            "file from the same archive")
        with self.root.resolve(self._full(target), follow=False) as t:
            if t.st is None or stat.S_ISDIR(t.st.st_mode):
                raise CopyError(f"refusing hard link {rel} -> {m.linkname}: the target is a directory")
            if old is not None:
                if stat.S_ISDIR(old.st_mode):
                    raise CopyError(f"cannot overwrite directory {rel} with a non-directory")
                os.unlink(name, dir_fd=pfd)
            os.link(t.name, name, src_dir_fd=t.dirfd, dst_dir_fd=pfd, follow_symlinks=False)
        return True

    def _set_meta_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        owner = self._owner(m)
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, self._mode(m))      # after chown, which clears setuid bits
        os.utime(fd, (m.mtime, m.mtime))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# -- docker cp: where things go --------------------------------------------------
@dataclass(frozen=True)
class CopyPlan:
    """Where a copied tree lands: into ``dest_dir``, its top entry renamed."""

    dest_dir: str
    rename_top: tuple[str, str]


def plan_copy(src_name: str, src_is_dir: bool, contents_only: bool, dest: str, *,
              dest_exists: bool, dest_is_dir: bool) -> CopyPlan:
    """Apply ``docker cp``'s destination rules.

    - a file onto a missing path is saved under that name (a trailing ``/``
      on the destination then is an error); onto a file it replaces it; onto
      a directory it goes inside it;
    - a directory onto a missing path becomes that path; onto a directory it
      goes inside it, or with a source ending in ``/.`` its contents merge
      into it; onto a file it is an error.

    Args:
        src_name: the base name of the source (its top tar entry).
        src_is_dir: the source is a directory.
        contents_only: the source path ended with ``/.``.
        dest: the destination path as given (a trailing ``/`` matters).
        dest_exists: the destination exists (after following symlinks).
        dest_is_dir: it is a directory.

    Raises:
        CopyError: the combination is impossible.
    """
    trailing = dest.endswith("/") or dest.endswith("/.")
    clean = posixpath.normpath(dest) if dest else "."
    parent, base = posixpath.split(clean)
    parent = parent or "."
    if dest_exists and dest_is_dir:
        if src_is_dir and contents_only:
            return CopyPlan(clean, (src_name, "."))
        return CopyPlan(clean, (src_name, src_name))
    if dest_exists:
        if src_is_dir:
            raise CopyError(f"cannot copy a directory to a file: {dest}",
                            hint="give a directory, or a path that does not exist yet")
        if trailing:
            raise CopyError(f"destination {dest} is not a directory")
        return CopyPlan(parent, (src_name, base))
    if trailing and not src_is_dir:
        raise CopyError(f"destination directory {dest} does not exist",
                        hint="create it first, or drop the trailing /")
    if base in ("", ".", "/"):
        raise CopyError(f"invalid destination {dest}")
    return CopyPlan(parent, (src_name, base))


def _src_parts(src: str) -> tuple[str, bool]:
    """(path, contents_only) for a source path; ``dir/.`` copies the contents."""
    contents_only = src.endswith("/.") or src == "."
    return src, contents_only


def _src_name(src: str, resolved: str) -> str:
    """The top entry's name: the base name as the user wrote it (``-L`` keeps the link's name)."""
    base = posixpath.basename(posixpath.normpath(src.rstrip("/.") or "/"))
    if base in ("", ".", ".."):
        base = posixpath.basename(resolved)
    return base or "."


def copy_out(root: RootDir, src: str, dest: str, *, follow: bool = False, archive: bool = False,
             warn: Callable[[str], None] | None = None) -> None:
    """``docker cp CONTAINER:SRC DEST``: copy from the container onto the host.

    The source is resolved inside the container root; nothing it contains
    can make the copy write outside the destination's parent directory.
    Without ``archive``, files get the caller's ownership, setuid/setgid
    bits are dropped and device nodes are skipped.

    Args:
        root: the container's root.
        src: path inside the container (``dir/.`` copies its contents).
        dest: host path.
        follow: ``-L``: copy what a symlink source points to.
        archive: ``-a``: keep owners, set-id bits and device nodes.
        warn: told about skipped entries.

    Raises:
        CopyError: the source is missing, or the destination rules refuse.
    """
    path, contents_only = _src_parts(src)
    with root.resolve(path, follow=follow or src.endswith("/")) as r:
        assert r.st is not None
        src_is_dir = stat.S_ISDIR(r.st.st_mode)
        src_name = _src_name(path, r.path)
    try:
        dst = os.stat(dest)
        exists, is_dir = True, stat.S_ISDIR(dst.st_mode)
    except FileNotFoundError:
        exists, is_dir = False, False
    except OSError as err:
        raise CopyError(f"cannot use destination {dest}: {err.strerror}") from err
    plan = plan_copy(src_name, src_is_dir, contents_only, dest, dest_exists=exists, dest_is_dir=is_dir)
    options = ExtractOptions(keep_owner=archive,
                             default_owner=None if archive else (os.getuid(), os.getgid()),
                             allow_devices=archive, strip_setid=not archive)
    try:
        host = RootDir.open(plan.dest_dir, label="destination")
    except CopyError as err:
        raise CopyError(f"destination directory {plan.dest_dir} does not exist",
                        hint="create it first") from err
    with host:
        _pipe_tar(lambda out: write_tar(root, path, out, name=src_name,
                                        options=TarOptions(follow_top=follow)),
                  lambda inp: extract_tar(inp, host, ".", rename_top=plan.rename_top,
                                          options=options, warn=warn))


def copy_in(root: RootDir, src: str, dest: str, *, follow: bool = False, archive: bool = False,
            warn: Callable[[str], None] | None = None) -> None:
    """``docker cp SRC CONTAINER:DEST``: copy a host path into the container.

    The destination is resolved inside the container root (symlinks in it
    are followed the way the container would, never out of the root).

    Args:
        root: the container's root.
        src: host path (``dir/.`` copies its contents).
        dest: path inside the container.
        follow: ``-L``: copy what a symlink source points to.
        archive: ``-a``: keep the source's uid/gid (else files belong to 0:0).
        warn: told about skipped entries.

    Raises:
        CopyError: the source is missing, or the destination rules refuse,
            or the container's file system refuses the write.
    """
    path, contents_only = _src_parts(src)
    abs_src = os.path.abspath(path)
    parent, name = os.path.split(abs_src)
    if contents_only or src.endswith("/"):
        follow = True
    try:
        st = os.stat(abs_src) if follow else os.lstat(abs_src)
    except OSError as err:
        raise CopyError(f"cannot read {src}: {err.strerror}") from err
    src_is_dir = stat.S_ISDIR(st.st_mode)
    src_name = name or "."
    with root.resolve(dest, must_exist=False) as d:
        exists, is_dir = d.exists, d.is_dir
        dest_path = d.path if d.exists else dest
    plan = plan_copy(src_name, src_is_dir, contents_only,
                     dest_path + ("/" if dest.endswith("/") and not dest_path.endswith("/") else ""),
                     dest_exists=exists, dest_is_dir=is_dir)
    options = ExtractOptions(keep_owner=archive, default_owner=None if archive else _root_owner())
    with RootDir.open(parent or "/", label="host") as host:
        _pipe_tar(lambda out: write_tar(host, name, out, name=src_name,
                                        options=TarOptions(follow_top=follow)),
                  lambda inp: extract_tar(inp, root, plan.dest_dir, rename_top=plan.rename_top,
                                          options=options, warn=warn))


def archive_out(root: RootDir, src: str, out: BinaryIO, *, follow: bool = False) -> None:
    """``docker cp CONTAINER:SRC -``: write ``src`` as a tar stream.

    Raises:
        CopyError: the source is missing or unreadable.
    """
    path, contents_only = _src_parts(src)
    with root.resolve(path, follow=follow or src.endswith("/")) as r:
        name = "." if contents_only else _src_name(path, r.path)
    write_tar(root, path, out, name=name, options=TarOptions(follow_top=follow))


def extract_in(root: RootDir, stream: BinaryIO, dest: str, *, archive: bool = True,
               warn: Callable[[str], None] | None = None) -> int:
    """``docker cp - CONTAINER:DEST``: unpack a tar stream into directory ``dest``.

    Returns:
        The number of entries written.

    Raises:
        CopyError: ``dest`` is not a directory, the stream is not a tar, or
            an entry is hostile.
    """
    options = ExtractOptions(keep_owner=archive, default_owner=None if archive else _root_owner())
    return extract_tar(stream, root, dest, options=options, warn=warn)


def _root_owner() -> tuple[int, int] | None:
    # Files copied in belong to root, as with Docker; a caller that is not
    # root cannot give files away, so they stay the caller's.
    return (0, 0) if os.geteuid() == 0 else None


def _pipe_tar(produce: Callable[[BinaryIO], None], consume: Callable[[BinaryIO], object]) -> None:
    """Run ``produce`` (writing a tar) in a thread and ``consume`` on its output."""
    import threading

    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    failure: list[BaseException] = []

    def writer() -> None:
        try:
            with os.fdopen(wfd, "wb") as out:
                produce(out)
        except BrokenPipeError:
            pass                      # the reader gave up; its error is reported
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            failure.append(err)

    t = threading.Thread(target=writer, name="cp-tar", daemon=True)
    t.start()
    inp = os.fdopen(rfd, "rb")
    try:
        consume(inp)
        while inp.read(CHUNK):        # let the writer finish a trailing block
            pass
    except BaseException as err:
        inp.close()                   # unblocks a writer stuck on a full pipe
        t.join()
        if failure and isinstance(err, CopyError):
            # The reader only saw the effect (a cut-off stream); report the cause.
            raise failure[0] from None
        raise
    inp.close()
    t.join()
    if failure:
        raise failure[0]


def iter_tree(root: RootDir, path: str = "/") -> Iterator[tuple[str, os.stat_result]]:
    """Walk ``path`` inside ``root`` without following symlinks: (in-root path, lstat).

    Raises:
        CopyError: ``path`` does not exist.
    """
    with root.resolve(path) as r:
        assert r.st is not None
        yield r.path, r.st
        if not r.is_dir:
            return
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=r.fd)
    yield from _walk(fd, r.path.rstrip("/"))


def _walk(dfd: int, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
    try:
        for name in sorted(os.listdir(dfd)):
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield f"{prefix}/{name}", st
            if stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(name, _O_DIR, dir_fd=dfd)
                except OSError:
                    continue
                yield from _walk(child, f"{prefix}/{name}")
    finally:
        os.close(dfd)
