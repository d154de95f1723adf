"""The attach client against a fake conmon on a SOCK_SEQPACKET socketpair.

The fake speaks conmon's protocol: every packet it sends starts with the
stream byte (2 stdout, 3 stderr); what it receives is the container's stdin,
unframed; a shut-down write side means stdin EOF.
"""
from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from engine.containers.attach import (STREAM_STDERR, STREAM_STDOUT, AttachIO, AttachSession,
                                      DetachMatcher, connect, decode_packet, parse_detach_keys,
                                      send_resize)
from engine.errors import InvalidArgument, RuntimeFailure


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 65536):
        out += chunk
    return out


class Pipes:
    """stdin/stdout/stderr pipes for a session; the test holds the other ends."""

    def __init__(self) -> None:
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()

    def io(self, stdin: bool = True) -> AttachIO:
        return AttachIO(self.in_r if stdin else None, self.out_w, self.err_w)

    def close_writers(self) -> None:
        os.close(self.out_w)
        os.close(self.err_w)


# -- framing -----------------------------------------------------------------------

def test_decode_packet() -> None:
    assert decode_packet(b"\x02hello") == (STREAM_STDOUT, b"hello")
    assert decode_packet(b"\x03") == (STREAM_STDERR, b"")
    with pytest.raises(RuntimeFailure):
        decode_packet(b"")


def test_output_streams_stay_apart_without_tty() -> None:
    ours, conmon = pair()
    p = Pipes()
    conmon.send(b"\x02out-1 ")
    conmon.send(b"\x03err-1")
    conmon.send(b"\x02out-2")
    conmon.close()                                   # the container exited
    detached = AttachSession(ours, p.io(stdin=False), tty=False).run()
    p.close_writers()
    assert not detached
    assert read_all(p.out_r) == b"out-1 out-2"
    assert read_all(p.err_r) == b"err-1"


def test_tty_output_is_one_stream() -> None:
    ours, conmon = pair()
    p = Pipes()
    conmon.send(b"\x02a")
    conmon.send(b"\x03b")
    conmon.close()
    AttachSession(ours, p.io(stdin=False), tty=True).run()
    p.close_writers()
    assert read_all(p.out_r) == b"ab" and read_all(p.err_r) == b""


def test_stdin_is_sent_unframed_and_eof_shuts_down_writing() -> None:
    ours, conmon = pair()
    p = Pipes()
    got: list[bytes] = []

    def fake_conmon() -> None:
        while True:
            data = conmon.recv(65536)
            if not data:                      # our SHUT_WR: stdin EOF
                break
            got.append(data)
        conmon.send(b"\x02" + b"".join(got).upper())
        conmon.close()

    t = threading.Thread(target=fake_conmon)
    t.start()
    os.write(p.in_w, b"hello ")
    os.write(p.in_w, b"world")
    os.close(p.in_w)
    detached = AttachSession(ours, p.io(), tty=False).run()
    t.join(5)
    p.close_writers()
    assert not detached
    assert b"".join(got) == b"hello world"
    assert read_all(p.out_r) == b"HELLO WORLD"


def test_detach_keys_end_the_session_and_are_not_sent() -> None:
    ours, conmon = pair()
    p = Pipes()
    os.write(p.in_w, b"ls\r\x10\x11")                # ls, enter, ctrl-p ctrl-q
    detached = AttachSession(ours, p.io(), tty=True, detach_keys=b"\x10\x11").run()
    assert detached
    conmon.setblocking(False)
    assert conmon.recv(100) == b"ls\r"
    with pytest.raises(BlockingIOError):
        conmon.recv(100)                              # nothing else, and not closed: still attached-able


def test_detach_keys_ignored_without_tty() -> None:
    ours, conmon = pair()
    p = Pipes()
    os.write(p.in_w, b"\x10\x11")
    os.close(p.in_w)

    def fake_conmon() -> None:
        data = conmon.recv(100)
        conmon.recv(100)                  # EOF
        conmon.send(b"\x02" + data)
        conmon.close()

    t = threading.Thread(target=fake_conmon)
    t.start()
    assert AttachSession(ours, p.io(), tty=False, detach_keys=b"\x10\x11").run() is False
    t.join(5)
    p.close_writers()
    assert read_all(p.out_r) == b"\x10\x11"


# -- detach keys ----------------------------------------------------------------------

def test_parse_detach_keys() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,d") == b"\x01d"
    assert parse_detach_keys("ctrl-[,ctrl-@") == b"\x1b\x00"
    assert parse_detach_keys("") == b""
    for bad in ("ctrl-1", "alt-x", "ab", "ctrl-"):
        with pytest.raises(InvalidArgument):
            parse_detach_keys(bad)


def test_matcher_holds_back_a_prefix_and_releases_it_on_mismatch() -> None:
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"a\x10") == (b"a", False)      # ctrl-p held
    assert m.feed(b"x") == (b"\x10x", False)      # not followed by ctrl-q: both pass
    assert m.feed(b"\x10\x10") == (b"\x10", False)  # the second ctrl-p may start it again
    assert m.feed(b"\x11rest") == (b"", True)


def test_matcher_without_keys_passes_everything() -> None:
    assert DetachMatcher(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


# -- socket and ctl paths -----------------------------------------------------------------

def test_connect_with_a_path_longer_than_sun_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dfd = os.open(deep, os.O_PATH)
    server.bind(f"/proc/self/fd/{dfd}/attach")
    os.close(dfd)
    server.listen(1)
    assert len(str(deep / "attach")) > 108
    client = connect(deep / "attach")
    conn, _ = server.accept()
    conn.send(b"\x02hi")
    assert client.recv(10) == b"\x02hi"
    for s in (client, conn, server):
        s.close()


def test_connect_to_nothing_says_the_container_is_not_running(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="not running"):
        connect(tmp_path / "attach")


def test_send_resize_writes_conmon_ctl_line(tmp_path: Path) -> None:
    ctl = tmp_path / "ctl"
    assert send_resize(ctl, 24, 80) is False              # no fifo: nobody to tell
    os.mkfifo(ctl)
    assert send_resize(ctl, 24, 80) is False              # no reader yet: not blocking
    r = os.open(ctl, os.O_RDONLY | os.O_NONBLOCK)
    assert send_resize(ctl, 40, 120) is True
    assert os.read(r, 100) == b"1 40 120\n"
    os.close(r)
    assert stat.S_ISFIFO(os.stat(ctl).st_mode)
