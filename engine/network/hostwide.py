"""What every portside root on this host must agree on: subnets and published ports.

Each root has its own state database, so nothing in it stops two roots
(two users' ``--root``, two test workers) from giving their networks the
same subnet or publishing the same host port — and then stealing each
other's traffic. The kernel is the shared truth: a bridge that is up has
its subnet on the host's routes, and published ports are in each root's
nftables table. What is missing is atomicity, which one lock file
(``/run/lock/portside/network.lock``) gives: it is held around "check the
host's routes, then bring the bridge up with its address" and around
"choose host ports, then write the NAT rules", so two roots never both
see a subnet or a port as free.
"""
from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import NetworkError

HOST_DIR = Path("/run/lock/portside")
"""Default home of the host-wide lock; a context may set ``net_host_dir``."""


def host_dir(ctx: object) -> Path:
    """The host-wide directory for ``ctx`` (tests point ``ctx.net_host_dir`` at a temp dir)."""
    return Path(getattr(ctx, "net_host_dir", None) or HOST_DIR)


_held: dict[Path, tuple[threading.RLock, list[int]]] = {}
_held_guard = threading.Lock()


@contextmanager
def host_lock(directory: Path) -> Iterator[None]:
    """Hold the host-wide network lock (blocking); re-entrant within a process.

    Take it *inside* a root's ``network`` lock, never the other way round.
    (An flock is per open file, so a nested take on a second descriptor
    would wait for itself: threads share one descriptor, counted.)

    Raises:
        NetworkError: the lock file cannot be created.
    """
    with _held_guard:
        entry = _held.setdefault(directory, (threading.RLock(), [0, -1]))
    rlock, state = entry          # state: [depth, fd]
    with rlock:
        if state[0] == 0:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(directory / "network.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                             0o600)
            except OSError as err:
                raise NetworkError(f"cannot open the host-wide network lock in {directory}: {err}",
                                   hint="portside needs write access to /run/lock (run as root)"
                                   ) from err
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            state[1] = fd
        state[0] += 1
        try:
            yield
        finally:
            state[0] -= 1
            if state[0] == 0:
                os.close(state[1])      # closing releases the flock
                state[1] = -1
