"""Control files kept open between stats samples and re-read with ``pread``.

Opening a cgroup file walks a six-component path in the kernel; a
``pread`` at offset 0 of a file already open regenerates its content
(seq files restart at position 0) for about a tenth of the cost. A sampler
re-reads the same ~8 files per container every second, so it keeps them
open, grouped by container, and closes a container's files when it stops
being sampled.

Only files that pin nothing are kept: cgroup files (a cgroup can still be
removed; reads then fail with ENODEV and the file is dropped) and
``/proc/<pid>/io``/``/proc/stat``. ``/proc/<pid>/net/dev`` is never kept, as
an open one holds the container's network namespace alive.

The number kept is bounded by a budget derived from RLIMIT_NOFILE, so a
process with a low file limit falls back to open/read/close instead of
running out of descriptors.
"""
from __future__ import annotations

import errno
import os
import resource
from typing import Callable

from .files import read_bytes

Reader = Callable[[str], "bytes | None"]

_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_CHUNK = 65536
# Errors that mean "this file's object is gone": drop the descriptor.
_GONE = (errno.ENODEV, errno.ESRCH, errno.ENOENT, errno.EINVAL)


def default_budget() -> int:
    """Half of the descriptors left above a reserve of 256, at most 8192."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(0, min(8192, (soft - 256) // 2))


class KeptFiles:
    """Open files by path, grouped by owner (a container id), re-read with ``pread``.

    Not thread-safe: one per sampler, as a sampler is used from one thread.

    Args:
        budget: the most descriptors kept open; None derives it from RLIMIT_NOFILE.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = default_budget() if budget is None else budget
        self._fds: dict[str, int] = {}
        self._owned: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._fds)

    def reader(self, owner: str) -> Reader:
        """A ``read(path)`` whose kept files are closed by ``drop(owner)``."""
        def read(path: str) -> bytes | None:
            return self.read(path, owner)
        return read

    def read(self, path: str, owner: str = "") -> bytes | None:
        """The current content of ``path``; None if it (or what it describes) is gone."""
        fd = self._fds.get(path)
        if fd is None:
            if len(self._fds) >= self.budget:
                return read_bytes(path)
            try:
                fd = os.open(path, _FLAGS)
            except OSError as err:
                if isinstance(err, (FileNotFoundError, NotADirectoryError)) or err.errno in _GONE:
                    return None
                raise
            self._fds[path] = fd
            self._owned.setdefault(owner, set()).add(path)
        try:
            data = os.pread(fd, _CHUNK, 0)
            if len(data) == _CHUNK:
                parts = [data]
                while chunk := os.pread(fd, _CHUNK, sum(len(p) for p in parts)):
                    parts.append(chunk)
                data = b"".join(parts)
            return data
        except OSError as err:
            if err.errno not in _GONE:
                raise
            self._close(path)
            return None

    def _close(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def drop(self, owner: str) -> None:
        """Close every file read for ``owner``."""
        for path in self._owned.pop(owner, ()):
            self._close(path)

    def owners(self) -> set[str]:
        return set(self._owned)

    def close(self) -> None:
        """Close everything."""
        for path in list(self._fds):
            self._close(path)
        self._owned.clear()
