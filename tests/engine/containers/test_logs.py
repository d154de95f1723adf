"""The k8s-file log reader: parsing, tail without reading the file, time windows, follow."""
from __future__ import annotations

import os
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from engine.containers import watch
from engine.containers.logs import LogReader, format_time, parse_line, parse_since
from engine.errors import InvalidArgument
from engine.records import LogLine

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))


def rec(t: datetime, stream: str, flag: str, text: bytes | str) -> bytes:
    """One record as conmon writes it (RFC3339Nano, local offset)."""
    if isinstance(text, str):
        text = text.encode()
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}123" + t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:]
    return f"{stamp} {stream} {flag} ".encode() + text + b"\n"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rchar() -> int:
    """Bytes this process has read through read syscalls (any file, any API)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


# -- parse_line ---------------------------------------------------------------

def test_parse_line_full_and_partial() -> None:
    t, stream, partial, text = parse_line(rec(at(0), "stdout", "F", "hello world"))  # type: ignore[misc]
    assert (stream, partial, text) == ("stdout", False, b"hello world")
    assert t == T0 and t.tzinfo is not None
    assert parse_line(b"2024-05-01T10:00:00.000000001Z stderr P abc")[1:] == ("stderr", True, b"abc")


def test_parse_line_keeps_ansi_and_spaces_strips_crlf() -> None:
    raw = b"2024-05-01T10:00:00Z stdout F \x1b[31m red  \x1b[0m \r\n"
    assert parse_line(raw)[3] == b"\x1b[31m red  \x1b[0m "  # type: ignore[index]


def test_parse_line_empty_text() -> None:
    assert parse_line(b"2024-05-01T10:00:00Z stdout F \n")[3] == b""  # type: ignore[index]
    assert parse_line(b"2024-05-01T10:00:00Z stdout F")[3] == b""  # type: ignore[index]


@pytest.mark.parametrize("raw", [
    b"", b"garbage", b"2024-05-01T10:00:00Z stdin F x", b"2024-05-01T10:00:00Z stdout X x",
    b"not-a-time stdout F x", b"2024-05-01T10:00:00Z stdout",
])
def test_parse_line_rejects(raw: bytes) -> None:
    assert parse_line(raw) is None


def test_format_time_is_utc_nanos() -> None:
    assert format_time(T0) == "2024-05-01T10:00:00.000000000Z"


# -- parse_since ----------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ("2024-05-01T10:00:00.5+02:00", datetime(2024, 5, 1, 8, 0, 0, 500000, tzinfo=timezone.utc)),
    ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)),
    ("2024-05-01Z", datetime(2024, 5, 1, tzinfo=timezone.utc)),
    ("1714557600", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ("1714557600.25", datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=timezone.utc)),
    ("0", datetime(1970, 1, 1, tzinfo=timezone.utc)),
    ("10m", NOW - timedelta(minutes=10)),
    ("1h30m", NOW - timedelta(hours=1, minutes=30)),
    ("2s", NOW - timedelta(seconds=2)),
    ("1.5h", NOW - timedelta(minutes=90)),
    ("300ms", NOW - timedelta(milliseconds=300)),
])
def test_parse_since_forms(value: str, expected: datetime) -> None:
    got = parse_since(value, now=NOW)
    assert got == expected and got.tzinfo is not None


def test_parse_since_without_zone_is_local_time() -> None:
    got = parse_since("2024-05-01T10:00:00")
    assert got == datetime(2024, 5, 1, 10).astimezone()
    assert parse_since("2024-05-01") == datetime(2024, 5, 1).astimezone()


@pytest.mark.parametrize("value", ["", "yesterday", "10x", "2024-13-01", "1h-", "2024-05-01T25:00:00Z",
                                   "12:00"])
def test_parse_since_rejects_with_hint(value: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_since(value, now=NOW)
    assert "duration" in str(e.value)


# -- lines, joining, streams -------------------------------------------------------

def write(path: Path, *records: bytes) -> None:
    path.write_bytes(b"".join(records))


def test_partial_records_are_joined_per_stream(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p,
          rec(at(0), "stdout", "P", "hel"),
          rec(at(1), "stderr", "F", "oops"),          # another stream in between
          rec(at(2), "stdout", "P", "lo "),
          rec(at(3), "stdout", "F", "world"),
          rec(at(4), "stdout", "F", ""))
    got = list(LogReader(p).lines())
    assert [(ln.stream, ln.text) for ln in got] == [
        ("stderr", "oops"), ("stdout", "hello world"), ("stdout", "")]
    assert got[1].time == at(3)        # a joined line has its last record's time


def test_streams_are_kept_apart(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, *(rec(at(i), "stdout" if i % 2 else "stderr", "F", f"l{i}") for i in range(10)))
    r = LogReader(p)
    assert [ln.text for ln in r.lines(streams=["stdout"])] == ["l1", "l3", "l5", "l7", "l9"]
    assert [ln.text for ln in r.tail(2, streams=("stderr",))] == ["l6", "l8"]
    with pytest.raises(InvalidArgument):
        r.tail(1, streams=["stdin"])


def test_invalid_utf8_is_replaced_and_garbage_skipped(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, rec(at(0), "stdout", "F", b"caf\xc3\xa9 \xff"), b"not a record\n", rec(at(1), "stdout", "F", "x"))
    assert [ln.text for ln in LogReader(p).lines()] == ["café \ufffd", "x"]


def test_missing_log_reads_as_empty(tmp_path: Path) -> None:
    r = LogReader(tmp_path / "nope.log")
    assert r.tail(10) == [] and list(r.lines()) == []


def test_last_record_without_newline_and_dangling_partial(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, rec(at(0), "stdout", "F", "a"), rec(at(1), "stdout", "P", "half"))
    assert [ln.text for ln in LogReader(p).lines()] == ["a", "half"]
    assert [ln.text for ln in LogReader(p).tail(1)] == ["half"]
    write(p, rec(at(0), "stdout", "F", "a"), rec(at(1), "stdout", "F", "b")[:-1])
    assert [ln.text for ln in LogReader(p).lines()] == ["a", "b"]
    assert [ln.text for ln in LogReader(p).tail(5)] == ["a", "b"]


def test_max_line_bounds_a_line_without_end(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, *(rec(at(0), "stdout", "P", "x" * 100) for _ in range(10)), rec(at(1), "stdout", "F", "y"))
    got = [ln.text for ln in LogReader(p, max_line=250).lines()]
    assert "".join(got) == "x" * 1000 + "y"
    assert max(len(t) for t in got) <= 300


def random_log(rng: random.Random, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        stream = rng.choice(["stdout", "stdout", "stderr"])
        flag = "P" if rng.random() < 0.3 else "F"
        length = rng.randrange(0, 40) if rng.random() < 0.9 else rng.randrange(100, 400)
        text = "".join(rng.choice("ab \x1b[m") for _ in range(length))
        out.append(rec(at(i), stream, flag, f"{i}:{text}"))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_tail_equals_end_of_lines(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Backward reading with joins across block boundaries must agree with
    # forward reading, for every n and stream selection.
    import engine.containers.logs as logs
    rng = random.Random(seed)
    p = tmp_path / "ctr.log"
    write(p, *random_log(rng, 400))
    r = LogReader(p)
    for streams in (("stdout", "stderr"), ("stdout",), ("stderr",)):
        every = list(r.lines(streams=streams))
        for n in (0, 1, 2, 7, 50, 399, 1000):
            expected = every[-n:] if n else []
            assert r.tail(n, streams=streams) == expected
            # Tiny blocks make records straddle block boundaries everywhere.
            monkeypatch.setattr(logs, "TAIL_BLOCK", 97)
            assert r.tail(n, streams=streams) == expected
            monkeypatch.undo()


def test_tail_rejects_negative(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        LogReader(tmp_path / "x").tail(-1)


def test_tail_of_200mb_log_reads_only_the_end(tmp_path: Path) -> None:
    p = tmp_path / "big.log"
    chunk = b"".join(rec(at(i), "stdout", "F", f"line {i:08d} " + "." * 60) for i in range(8000))
    with open(p, "wb") as f:
        for _ in range(200_000_000 // len(chunk) + 1):
            f.write(chunk)
        f.write(rec(at(9000), "stderr", "P", "the "))
        f.write(rec(at(9001), "stderr", "F", "end"))
    size = p.stat().st_size
    assert size > 200_000_000
    r = LogReader(p)
    before, t0 = rchar(), time.perf_counter()
    got = r.tail(100)
    elapsed, read = time.perf_counter() - t0, rchar() - before
    assert [ln.text for ln in got[-2:]] == ["line 00007999 " + "." * 60, "the end"]
    assert len(got) == 100
    # 100 lines of ~110 bytes, plus the look-back for the start of the
    # stderr line: well under 1% of the file.
    assert read < 2_000_000, f"tail read {read} bytes of a {size}-byte log"
    assert elapsed < 0.5


# -- since / until --------------------------------------------------------------

def test_since_until_window(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, *(rec(at(i), "stdout", "F", str(i)) for i in range(10)))
    r = LogReader(p)
    assert [ln.text for ln in r.lines(since=at(3), until=at(5))] == ["3", "4", "5"]
    assert [ln.text for ln in r.lines(since=at(8.5))] == ["9"]
    assert [ln.text for ln in r.lines(until=at(0))] == ["0"]
    # Docker's order: the last lines first, then the window.
    assert [ln.text for ln in r.lines(tail=3, since=at(8))] == ["8", "9"]
    assert list(r.lines(since=at(100))) == []


def test_since_bisects_a_big_log(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    n = 60_000
    with open(p, "wb") as f:
        for i in range(n):
            if i % 1000 == 500:
                f.write(rec(at(i), "stdout", "P", "part-"))
            f.write(rec(at(i), "stdout", "F", f"{i} " + "-" * 80))
    size = p.stat().st_size
    r = LogReader(p)
    before = rchar()
    got = list(r.lines(since=at(n - 10)))
    read = rchar() - before
    assert [ln.text.split()[0] for ln in got] == [str(i) for i in range(n - 10, n)]
    assert read < size / 2, "since should not read the log from the start"
    got = list(r.lines(since=at(1500), until=at(1502)))
    assert [ln.text[:9] for ln in got] == ["part-1500", "1501 ----", "1502 ----"]


# -- follow ------------------------------------------------------------------------

class Follower:
    """Runs ``follow`` in a thread and collects what it yields."""

    def __init__(self, gen_factory) -> None:  # type: ignore[no-untyped-def]
        self.lines: list[LogLine] = []
        self.stopped = threading.Event()
        self.gen: Iterator[LogLine] = gen_factory(self.stopped.is_set)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for line in self.gen:
            self.lines.append(line)

    def texts(self) -> list[str]:
        return [ln.text for ln in self.lines]

    def wait_for(self, n: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.texts()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "follow did not stop"


def append(path: Path, *records: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(records))


def test_follow_yields_existing_then_appended(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, rec(at(0), "stdout", "F", "a"), rec(at(1), "stdout", "F", "b"))
    f = Follower(lambda stop: LogReader(p).follow(stop=stop, poll=0.01))
    assert f.wait_for(2) == ["a", "b"]
    append(p, rec(at(2), "stdout", "P", "c1"))
    append(p, rec(at(3), "stdout", "F", "c2")[:20])      # a record half written
    time.sleep(0.05)
    assert f.texts() == ["a", "b"]
    append(p, rec(at(3), "stdout", "F", "c2")[20:])
    assert f.wait_for(3) == ["a", "b", "c1c2"]
    f.stop()


def test_follow_with_tail_and_since(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, *(rec(at(i), "stdout", "F", str(i)) for i in range(5)))
    f = Follower(lambda stop: LogReader(p).follow(tail=2, stop=stop, poll=0.01))
    assert f.wait_for(2) == ["3", "4"]
    append(p, rec(at(5), "stdout", "F", "5"))
    assert f.wait_for(3) == ["3", "4", "5"]
    f.stop()
    g = Follower(lambda stop: LogReader(p).follow(since=at(4), stop=stop, poll=0.01))
    assert g.wait_for(2) == ["4", "5"]
    g.stop()
    h = Follower(lambda stop: LogReader(p).follow(tail=0, stop=stop, poll=0.01))
    time.sleep(0.1)          # let it reach the end before appending
    append(p, rec(at(6), "stdout", "F", "6"))
    assert h.wait_for(1) == ["6"]
    h.stop()


def test_follow_survives_truncation(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, *(rec(at(i), "stdout", "F", f"old {i}") for i in range(20)))
    f = Follower(lambda stop: LogReader(p).follow(stop=stop, poll=0.01))
    assert len(f.wait_for(20)) == 20
    with open(p, "r+b") as fh:
        fh.truncate(0)
    append(p, rec(at(30), "stdout", "F", "new 1"))
    assert f.wait_for(21)[20:] == ["new 1"]
    append(p, rec(at(31), "stdout", "F", "new 2"))
    assert f.wait_for(22)[20:] == ["new 1", "new 2"]
    f.stop()


def test_follow_survives_rotation_by_rename(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, rec(at(0), "stdout", "F", "first"))
    f = Follower(lambda stop: LogReader(p).follow(stop=stop, poll=0.01))
    assert f.wait_for(1) == ["first"]
    # Written to the old file just before it is moved away: must not be lost.
    append(p, rec(at(1), "stdout", "F", "last of old"))
    os.rename(p, tmp_path / "ctr.log.1")
    time.sleep(0.03)                                  # the path is briefly missing
    write(p, rec(at(2), "stdout", "F", "first of new"))
    assert f.wait_for(3) == ["first", "last of old", "first of new"]
    # conmon's way: a fresh file renamed over the path.
    tmp = tmp_path / "ctr.log.tmp"
    write(tmp, rec(at(3), "stderr", "F", "replaced"))
    os.replace(tmp, p)
    assert f.wait_for(4)[3:] == ["replaced"]
    append(p, rec(at(4), "stderr", "F", "more"))
    assert f.wait_for(5)[3:] == ["replaced", "more"]
    f.stop()


def test_follow_keeps_every_file_of_rotations_faster_than_its_poll(tmp_path: Path) -> None:
    # conmon's rotation unlinks the old file: ten rotations within one poll
    # interval, each file gone before the follower would look again.
    p = tmp_path / "ctr.log"
    write(p, rec(at(0), "stdout", "F", "0"))
    watch.DirWatch(tmp_path).close()          # the pool holds an instance for the follower
    fds_before = len(os.listdir("/proc/self/fd"))
    f = Follower(lambda stop: LogReader(p).follow(stop=stop, poll=2.0))
    assert f.wait_for(1) == ["0"]
    n = 0
    for _ in range(10):
        tmp = tmp_path / "ctr.log.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o640)
        os.replace(tmp, p)
        for _ in range(5):
            n += 1
            os.write(fd, rec(at(n), "stdout", "F", str(n)))
        os.close(fd)
        time.sleep(0.1)
    assert f.wait_for(n + 1, timeout=10) == [str(i) for i in range(n + 1)]
    f.stop()
    assert len(os.listdir("/proc/self/fd")) == fds_before      # the watch closed all it opened


def inotify_fds() -> set[int]:
    """This process's open inotify instances."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                fds.add(int(name))
        except FileNotFoundError:
            pass                                  # the fd listdir itself used
    return fds


def test_following_and_stopping_returns_the_inotify_instance_to_the_pool(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, rec(at(0), "stdout", "F", "0"))
    watch.DirWatch(tmp_path).close()
    before, pooled = inotify_fds(), list(watch._pool)
    assert pooled
    f = Follower(lambda stop: LogReader(p).follow(stop=stop, poll=2.0))
    assert f.wait_for(1) == ["0"]
    # The follower took the pooled instance (no new one) for its rotation watch.
    assert watch._pool == pooled[:-1]
    assert inotify_fds() == before
    tmp = tmp_path / "ctr.log.tmp"                 # a rotation, conmon's way
    write(tmp, rec(at(1), "stdout", "F", "1"))
    os.replace(tmp, p)
    assert f.wait_for(2) == ["0", "1"]
    f.stop()
    assert inotify_fds() == before                 # neither leaked nor closed
    assert sorted(watch._pool) == sorted(pooled)   # but back in the pool


def test_follow_waits_for_a_log_to_appear_and_stops_on_request(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    f = Follower(lambda stop: LogReader(p).follow(stop=stop, poll=0.01))
    time.sleep(0.03)
    write(p, rec(at(0), "stdout", "F", "hi"))
    assert f.wait_for(1) == ["hi"]
    t0 = time.monotonic()
    f.stop()
    assert time.monotonic() - t0 < 1


def test_follow_ends_when_stopped_even_while_data_keeps_coming(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    write(p, rec(at(0), "stdout", "F", "start"))
    writing = threading.Event()
    writing.set()

    def writer() -> None:
        with open(p, "ab") as f:
            i = 0
            while writing.is_set():
                f.write(b"".join(rec(at(1), "stdout", "F", f"{i} " + "x" * 100) for i in range(i, i + 500)))
                f.flush()
                i += 500

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    seen = [0]

    def stop() -> bool:
        return seen[0] >= 1000

    t0 = time.monotonic()
    try:
        for _ in LogReader(p).follow(stop=stop, poll=0.01):
            seen[0] += 1
            assert time.monotonic() - t0 < 10, "follow kept going after stop()"
    finally:
        writing.clear()
        t.join(5)
    assert seen[0] >= 1000


def test_follow_yields_everything_written_before_stop(tmp_path: Path) -> None:
    # What the container wrote last (even a line without its end) is not lost
    # when the follower is told to stop, e.g. because the container exited.
    p = tmp_path / "ctr.log"
    write(p, *(rec(at(i), "stdout", "F", str(i)) for i in range(3)),
          rec(at(3), "stderr", "P", "no newline at exit"))
    gen = LogReader(p).follow(stop=lambda: True, poll=0.01)
    assert [ln.text for ln in gen] == ["0", "1", "2", "no newline at exit"]
