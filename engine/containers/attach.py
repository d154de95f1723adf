"""A client for conmon's attach socket and control FIFO.

conmon keeps a container's stdio and offers it on a ``SOCK_SEQPACKET``
socket, ``attach`` in the bundle dir (we start it with ``--full-attach``).
Every packet conmon sends starts with one byte naming the stream (2 stdout,
3 stderr) followed by the data; what a client sends is written to the
container's stdin as is, and shutting down the write side closes that stdin
(conmon's ``terminate_remote_sock``). Window size changes go to the ``ctl``
FIFO next to it as ``"1 <rows> <cols>\\n"`` (conmon ``ctrl.c``).

Detaching works like Docker's: with a terminal, a key sequence
(default ctrl-p ctrl-q) typed on stdin ends the session and leaves the
container running.
"""
from __future__ import annotations

import errno
import fcntl
import os
import select
import selectors
import signal
import socket
import struct
import termios
import threading
import tty
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Callable

from ..errors import InvalidArgument, RuntimeFailure

STREAM_STDIN = 1
STREAM_STDOUT = 2
STREAM_STDERR = 3

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
CTL_RESIZE = 1
# conmon reads at most CONN_SOCK_BUF_SIZE - 1 (32 KiB) per packet; staying
# well under keeps every send one packet.
STDIN_CHUNK = 4096
RECV_SIZE = 65536 + 1


def parse_detach_keys(spec: str) -> bytes:
    """Parse Docker's ``--detach-keys`` format into the byte sequence.

    ``ctrl-<c>`` (c in a-z, @, [, \\\\, ], ^, _) or a single character,
    separated by commas; e.g. ``ctrl-p,ctrl-q`` or ``ctrl-a,d``. An empty
    string disables detaching.

    Raises:
        InvalidArgument: an element is neither a character nor ``ctrl-<c>``.
    """
    out = bytearray()
    for key in filter(None, (k.strip() for k in spec.split(","))):
        low = key.lower()
        if low.startswith("ctrl-") and len(key) == 6:
            c = low[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            special = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if c in special:
                out.append(special[c])
                continue
        elif len(key) == 1 and ord(key) < 128:
            out.append(ord(key))
            continue
        raise InvalidArgument(f"invalid detach key {key!r}",
                              hint="use ctrl-<a-z|@|[|\\|]|^|_> or single characters, "
                                   "comma separated, e.g. ctrl-p,ctrl-q")
    return bytes(out)


class DetachMatcher:
    """Watches typed input for the detach sequence.

    Bytes that might start the sequence are held back; if the sequence is
    then broken they are passed on, so nothing typed is lost.
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Process input; returns (bytes to forward, whether to detach now)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            self._held += bytes([b])
            if self.keys.startswith(self._held):
                if self._held == self.keys:
                    self._held = b""
                    return bytes(out), True
                continue
            # Mismatch: the held bytes are ordinary input, except that the
            # last byte may itself start the sequence again.
            if self.keys.startswith(bytes([b])):
                out += self._held[:-1]
                self._held = bytes([b])
            else:
                out += self._held
                self._held = b""
        return bytes(out), False


def decode_packet(packet: bytes) -> tuple[int, bytes]:
    """Split a packet from conmon into (stream, data).

    Raises:
        RuntimeFailure: an empty packet (conmon never sends one).
    """
    if not packet:
        raise RuntimeFailure("empty packet on the attach socket")
    return packet[0], packet[1:]


def connect(sock_path: str | os.PathLike[str]) -> socket.socket:
    """Connect to an attach socket, whatever the length of its path.

    ``sun_path`` holds 108 bytes; like conmon and Podman we go through
    ``/proc/self/fd/<dir fd>/attach`` so a deep root still works.

    Raises:
        RuntimeFailure: nobody is listening (the container's monitor is gone).
    """
    path = Path(sock_path)
    dfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        s.connect(f"/proc/self/fd/{dfd}/{path.name}")
    except OSError as err:
        s.close()
        raise RuntimeFailure(f"cannot attach: nothing listens on {path} ({err.strerror})",
                             hint="the container is not running, or its monitor died") from err
    finally:
        os.close(dfd)
    return s


def send_resize(ctl_path: str | os.PathLike[str], rows: int, cols: int) -> bool:
    """Ask conmon to resize the container's terminal; False if nobody listens."""
    try:
        fd = os.open(ctl_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, f"{CTL_RESIZE} {rows} {cols}\n".encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on ``fd``, or None if it is not one."""
    try:
        rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


class RawTerminal:
    """Puts a terminal in raw mode for a session and always restores it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list | None = None  # type: ignore[type-arg]

    def __enter__(self) -> "RawTerminal":
        if os.isatty(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


class WinchWatcher:
    """Calls ``on_resize`` whenever the terminal is resized (SIGWINCH).

    Signal handlers can only be installed from the main thread; elsewhere
    (a TUI worker) this is a no-op and the size is only set once.
    """

    def __init__(self, on_resize: Callable[[], None]) -> None:
        self.on_resize = on_resize
        self.rfd = -1
        self._wfd = -1
        self._old: object = None

    def __enter__(self) -> "WinchWatcher":
        if threading.current_thread() is not threading.main_thread():
            return self
        self.rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

        def handler(_sig: int, _frame: object) -> None:
            try:
                os.write(self._wfd, b"w")
            except OSError:
                pass

        self._old = signal.signal(signal.SIGWINCH, handler)
        return self

    def drain(self) -> None:
        """Consume pending notifications and resize once."""
        try:
            while os.read(self.rfd, 64):
                pass
        except BlockingIOError:
            pass
        self.on_resize()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.rfd >= 0:
            signal.signal(signal.SIGWINCH, self._old)  # type: ignore[arg-type]
            os.close(self.rfd)
            os.close(self._wfd)
            self.rfd = self._wfd = -1


@dataclass(frozen=True)
class AttachIO:
    """Where a session reads input and writes output (file descriptors)."""

    stdin: int | None = 0          # None: do not send input
    stdout: int = 1
    stderr: int = 2


class AttachSession:
    """Pumps data between an attach socket and local file descriptors."""

    def __init__(self, sock: socket.socket, io: AttachIO, *, tty: bool,
                 detach_keys: bytes = b"", winch: WinchWatcher | None = None) -> None:
        """Args:
            sock: a connected attach socket (SOCK_SEQPACKET).
            io: local descriptors.
            tty: the container has a terminal (its output is one stream and
                the detach keys apply).
            detach_keys: the detach sequence (empty: none).
            winch: resize notifications to service while pumping.
        """
        self.sock = sock
        self.io = io
        self.tty = tty
        self.matcher = DetachMatcher(detach_keys if tty else b"")
        self.winch = winch

    def run(self) -> bool:
        """Pump until the container's output ends or the user detaches.

        Returns:
            True if the user detached (the container keeps running).

        Raises:
            RuntimeFailure: the socket failed.
        """
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ, "sock")
        if self.io.stdin is not None:
            sel.register(self.io.stdin, selectors.EVENT_READ, "stdin")
        if self.winch is not None and self.winch.rfd >= 0:
            sel.register(self.winch.rfd, selectors.EVENT_READ, "winch")
        try:
            while True:
                for key, _ev in sel.select():
                    if key.data == "sock":
                        if not self._from_container():
                            return False
                    elif key.data == "stdin":
                        state = self._from_user()
                        if state == "detach":
                            return True
                        if state == "eof":
                            sel.unregister(key.fileobj)
                    else:
                        assert self.winch is not None
                        self.winch.drain()
        finally:
            sel.close()

    def _from_container(self) -> bool:
        try:
            packet = self.sock.recv(RECV_SIZE)
        except InterruptedError:
            return True
        except ConnectionResetError:
            return False
        except OSError as err:
            raise RuntimeFailure(f"attach socket failed: {err.strerror}") from err
        if not packet:
            return False
        stream, data = decode_packet(packet)
        if stream == STREAM_STDERR and not self.tty:
            _write_all(self.io.stderr, data)
        elif stream in (STREAM_STDOUT, STREAM_STDERR):
            _write_all(self.io.stdout, data)
        return True

    def _from_user(self) -> str:
        assert self.io.stdin is not None
        try:
            data = os.read(self.io.stdin, STDIN_CHUNK)
        except (BlockingIOError, InterruptedError):
            return "ok"
        except OSError as err:
            if err.errno != errno.EIO:
                raise
            data = b""                 # a hung-up terminal reads as EOF
        if not data:
            try:
                self.sock.shutdown(socket.SHUT_WR)   # conmon closes the container's stdin
            except OSError:
                pass
            return "eof"
        data, detach = self.matcher.feed(data)
        if data:
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                return "eof"
        return "detach" if detach else "ok"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])   # someone made our output non-blocking: wait
            continue
        view = view[n:]
