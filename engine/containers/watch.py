"""Waiting for a file to appear without polling hard (inotify, via ctypes).

Used to wait for conmon's exit file: one inotify watch on the exit dir, so
``wait`` and a foreground ``run`` learn of the exit within microseconds.
Falls back to short sleeps where inotify is unavailable.
"""
from __future__ import annotations

import ctypes
import os
import select
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Callable

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
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


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass


class DirWatch:
    """Wakes up when files are created, written or renamed into a directory."""

    def __init__(self, directory: Path) -> None:
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
        wd = _libc.inotify_add_watch(fd, os.fsencode(directory),
                                     IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)
        if wd < 0:
            os.close(fd)
            return
        self.fd, self.wd = fd, wd

    def wait(self, timeout: float) -> None:
        """Block until something happens in the directory, or ``timeout`` seconds pass."""
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
        with _pool_lock:
            if len(_pool) < _POOL_MAX:
                _pool.append(fd)
                return
        os.close(fd)

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
