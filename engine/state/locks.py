"""Per-object file locks shared between processes.

One ``flock`` file per container (or per name, or per store operation): the
kernel drops the lock when a process dies, so a crash never leaves a stale
lock behind (the same robustness Podman gets from robust shm mutexes).
"""
from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType


class FileLock:
    """An exclusive, re-entrant-per-thread lock on ``<dir>/<name>.lock``."""

    _held: dict[str, tuple[int, int]] = {}   # path -> (fd, depth), per process
    _guard = threading.RLock()

    def __init__(self, directory: Path, name: str) -> None:
        self.path = str(directory / f"{name}.lock")
        self._mutex = _thread_mutex(self.path)

    def acquire(self) -> None:
        self._mutex.acquire()
        with FileLock._guard:
            fd, depth = FileLock._held.get(self.path, (-1, 0))
            if depth:
                FileLock._held[self.path] = (fd, depth + 1)
                return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with FileLock._guard:
            FileLock._held[self.path] = (fd, 1)

    def release(self) -> None:
        with FileLock._guard:
            fd, depth = FileLock._held[self.path]
            if depth > 1:
                FileLock._held[self.path] = (fd, depth - 1)
            else:
                del FileLock._held[self.path]
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self._mutex.release()

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


_mutexes: dict[str, threading.RLock] = {}
_mutexes_guard = threading.Lock()


def _thread_mutex(path: str) -> threading.RLock:
    # flock is per open file description, so threads of one process must
    # also exclude each other; an RLock per path does that.
    with _mutexes_guard:
        m = _mutexes.get(path)
        if m is None:
            m = _mutexes[path] = threading.RLock()
        return m
