"""A terminal for a process the runtime runs in the foreground, proxied to ours.

``runc exec --tty`` (without ``--detach``) makes the process's pty inside the
container and copies it to and from its own stdin/stdout, which must be a
terminal (runc refuses ``--console-socket`` unless it detaches). So we give
the runtime one end of a pty pair of our own and :func:`proxy` the other end
to the caller's descriptors: in raw mode when they are a terminal, with
window size changes passed on (the runtime resizes the container's pty from
its stdin's size when it gets SIGWINCH).
"""
from __future__ import annotations

import errno
import fcntl
import os
import pty
import selectors
import struct
import termios
import time
from typing import Callable

from .attach import AttachIO, RawTerminal, WinchWatcher, terminal_size


def open_pty(size: tuple[int, int] | None = None) -> tuple[int, int]:
    """A new pty pair ``(master, slave)``, both close-on-exec, sized ``(rows, cols)``."""
    master, slave = pty.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    if size:
        set_size(master, *size)
    return master, slave


def set_size(master: int, rows: int, cols: int) -> None:
    """Set the window size of the pty behind ``master``."""
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    except OSError:
        pass


def proxy(master: int, io: AttachIO, *, done_fd: int | None = None,
          on_resize: Callable[[], None] | None = None) -> None:
    """Copy between a pty master and local fds until the process is gone.

    Our stdin (if any) is put in raw mode when it is a terminal, so ctrl-c
    and friends reach the process; the window size follows ours. The loop
    ends when the pty reports hang-up (every holder of the slave closed it)
    or, if given, when ``done_fd`` (a pidfd of the runtime) becomes readable
    and the master is drained.

    Args:
        master: the pty master fd.
        io: local descriptors (``stdin`` None: no input is sent).
        done_fd: becomes readable when the process has exited.
        on_resize: called after the pty got a new size (to tell the runtime).
    """
    size_from = io.stdin if io.stdin is not None and os.isatty(io.stdin) else io.stdout

    def resize() -> None:
        size = terminal_size(size_from)
        if size:
            set_size(master, *size)
            if on_resize is not None:
                on_resize()

    resize()
    os.set_blocking(master, False)
    raw_fd = io.stdin if io.stdin is not None else -1
    with RawTerminal(raw_fd) if raw_fd >= 0 else _Nothing(), WinchWatcher(resize) as winch:
        sel = selectors.DefaultSelector()
        sel.register(master, selectors.EVENT_READ, "master")
        if io.stdin is not None:
            sel.register(io.stdin, selectors.EVENT_READ, "stdin")
        if done_fd is not None:
            sel.register(done_fd, selectors.EVENT_READ, "done")
        if winch.rfd >= 0:
            sel.register(winch.rfd, selectors.EVENT_READ, "winch")
        try:
            while True:
                for key, _ev in sel.select():
                    if key.data == "master":
                        if not _pump_out(master, io.stdout):
                            return
                    elif key.data == "stdin":
                        if not _pump_in(io.stdin, master):   # type: ignore[arg-type]
                            sel.unregister(key.fileobj)
                    elif key.data == "done":
                        # The process is gone; whatever it wrote is in the master.
                        while _pump_out(master, io.stdout, drain=True):
                            pass
                        return
                    else:
                        winch.drain()
        finally:
            sel.close()


def _pump_out(master: int, out: int, *, drain: bool = False) -> bool:
    try:
        data = os.read(master, 65536)
    except BlockingIOError:
        return not drain
    except OSError as err:
        if err.errno == errno.EIO:     # every slave fd closed: the process is gone
            return False
        raise
    if not data:
        return False
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(out, view):]
        except BlockingIOError:
            time.sleep(0.005)
    return True


def _pump_in(stdin: int, master: int) -> bool:
    try:
        data = os.read(stdin, 4096)
    except (BlockingIOError, InterruptedError):
        return True
    except OSError as err:
        if err.errno != errno.EIO:
            raise
        data = b""
    if not data:
        # Our input ended (a pipe, not a terminal): the process reads EOF
        # from its terminal when it gets ^D at the start of a line.
        try:
            os.write(master, b"\x04")
        except OSError:
            pass
        return False
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(master, view):]
        except BlockingIOError:
            time.sleep(0.005)
        except OSError:
            return False
    return True


class _Nothing:
    def __enter__(self) -> "_Nothing":
        return self

    def __exit__(self, *exc: object) -> None:
        return None
