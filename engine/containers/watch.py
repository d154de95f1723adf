"""Watching a directory without polling hard (inotify, via ctypes).

The engine's one inotify binding and its pool of instances. Used to wait
for conmon's exit file (one watch on the exit dir, so ``wait`` and a
foreground ``run`` learn of the exit within microseconds) and by the log
follower to see conmon's rotations as they happen (:meth:`DirWatch.events`
gives the names and masks). Falls back to short sleeps where inotify is
unavailable.
"""
from __future__ import annotations

import ctypes
import os
import select
import struct
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Callable, NamedTuple

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
    _libc.inotify_init1.argtypes = [ctypes.c_int]
    _libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    _libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
except (OSError, AttributeError):
    _libc = None


# Closing an inotify instance waits for an SRCU grace period in the kernel
# (1 to 20 ms, longer on a busy host), which every ``wait`` and foreground
# ``run`` paid: instances are kept and reused instead, with only their
# watch removed (cheap). At most this many stay open per process.
_POOL_MAX = 8
_pool: list[int] = []
_pool_lock = threading.Lock()


DEFAULT_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
# struct inotify_event: wd, mask, cookie, len, then ``len`` bytes of name.
_EVENT = struct.Struct("iIII")


class Event(NamedTuple):
    """One inotify event: its mask and the name in the directory (b"" for none)."""

    mask: int
    name: bytes


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass


def _release(fd: int) -> None:
    """Give a clean instance (no watch) back to the pool, or close it if full."""
    with _pool_lock:
        if len(_pool) < _POOL_MAX:
            _pool.append(fd)
            return
    os.close(fd)


class DirWatch:
    """Wakes up when files are created, written or renamed into a directory.

    ``fd`` is -1 where inotify is unavailable (or the directory cannot be
    watched); :meth:`wait` then sleeps briefly instead.
    """

    def __init__(self, directory: Path, mask: int = DEFAULT_MASK) -> None:
        """
        Args:
            directory: the directory to watch.
            mask: which ``IN_*`` events wake it (default: create, close-write, moved-to).
        """
        self.fd = -1
        self.wd = -1
        if _libc is None:
            return
        with _pool_lock:
            fd = _pool.pop() if _pool else -1
        if fd < 0:
            fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                return
        wd = _libc.inotify_add_watch(fd, os.fsencode(directory), mask)
        if wd < 0:
            _release(fd)                # no watch was added: still clean
            return
        self.fd, self.wd = fd, wd

    @property
    def active(self) -> bool:
        """True if inotify watches the directory (False: the sleeping fallback)."""
        return self.fd >= 0

    def events(self) -> list[Event]:
        """The events queued now, oldest first, without blocking.

        Events of an instance's earlier watch (it may come from the pool)
        are left out; a queue overflow is kept (mask ``IN_Q_OVERFLOW``,
        no name): events were lost, the directory should be looked at.
        """
        if self.fd < 0:
            return []
        out: list[Event] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            if not data:
                return out
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, pos)
                start = pos + _EVENT.size
                pos = start + length
                if wd == self.wd or mask & IN_Q_OVERFLOW:
                    out.append(Event(mask, data[start:pos].rstrip(b"\0")))

    def wait(self, timeout: float) -> None:
        """Block until something happens in the directory, or ``timeout`` seconds pass.

        The events are discarded; to read them, select on ``fd`` and call :meth:`events`.
        """
        if self.fd < 0:
            time.sleep(min(timeout, 0.05))
            return
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if ready:
            _drain(self.fd)

    def close(self) -> None:
        """Stop watching; the inotify instance goes back to the pool (or is closed)."""
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        assert _libc is not None
        _libc.inotify_rm_watch(fd, self.wd)
        _drain(fd)                      # the IN_IGNORED of the removal, and anything left
        _release(fd)

    def __enter__(self) -> "DirWatch":
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def wait_until(directory: Path, done: Callable[[], bool], timeout: float | None = None,
               recheck: float = 0.5) -> bool:
    """Wait until ``done()`` is true, re-checking on every change in ``directory``.

    Args:
        directory: where the awaited file appears.
        done: the condition (checked first, after each event, and every ``recheck`` seconds).
        timeout: give up after this many seconds (None: never).
        recheck: longest sleep between checks, for conditions not tied to the directory.

    Returns:
        True if ``done()`` became true, False on timeout.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with DirWatch(directory) as w:
        while True:
            if done():
                return True
            left = recheck if deadline is None else min(recheck, deadline - time.monotonic())
            if left <= 0:
                return done()
            w.wait(left)
