"""Reading a container's log: the last N lines, time windows, and following.

conmon writes the log in the k8s-file format (see :mod:`.log_format`). This
module turns its records into :class:`~engine.records.LogLine` objects:

* partial (``P``) records are joined with the following records of the same
  stream up to the ``F`` one, as Podman's reader does; a joined line carries
  the time of its last record and sits in the file order of that record;
* ``tail`` reads the file backwards in blocks, so the last lines of a
  multi-gigabyte log cost a few small reads;
* ``lines(since=...)`` bisects the file by time instead of reading from the start;
* ``follow`` keeps reading appended records and survives conmon replacing
  the file (``--log-size-max`` renames a fresh file over the old one) or a
  truncation in place. conmon unlinks the old file at each rotation, so a
  file that lives shorter than a poll would be lost: an inotify watch on the
  log's directory (:class:`_RotationWatch`) opens every new file the moment
  it appears, and the follower reads each to its end before the next.

The app's log pane uses :class:`LineIndex` (re-exported here) for random
access into huge logs.
"""
from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..errors import InvalidArgument
from ..records import LogLine
from .log_format import (HEADER_BYTES, STREAMS, find_newline, format_time, parse_line,
                         parse_since, rfind_newline)
from .log_index import LineIndex, ScanProgress
from .watch import IN_CREATE, IN_MOVED_TO, IN_Q_OVERFLOW, DirWatch

__all__ = ["LogReader", "LineIndex", "ScanProgress", "parse_line", "parse_since", "format_time"]

# Backward reads for tail: small enough that "last 10 lines" reads little,
# big enough that "last 10000 lines" takes few syscalls.
TAIL_BLOCK = 64 * 1024
FORWARD_BLOCK = 1 << 20
# When bisecting by time, start this far before the found offset so a line
# whose partial records began earlier is read whole.
SINCE_SLACK = 1 << 20
# tail: a line of one stream whose earlier records are not found within this
# many bytes is taken as complete. Without a bound, a last stderr line in a
# log of stdout lines would make tail read the whole file looking for an
# earlier stderr P record; conmon writes a line's parts close together.
JOIN_LOOKBACK = 256 * 1024
# A joined line is never held beyond this; past it the part so far is
# emitted as a line of its own (a container printing without newlines
# must not exhaust memory).
DEFAULT_MAX_LINE = 1 << 20
# Files a follower keeps open ahead of its reading (a consumer far slower
# than the rotations); past this the oldest unread are dropped.
MAX_PENDING_FILES = 64


def _decode(parts: Iterable[bytes]) -> str:
    return b"".join(parts).decode("utf-8", errors="replace")


@dataclass
class _Pending:
    """Partial records of one stream waiting for their final record."""

    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    time: datetime | None = None
    seq: int = 0                 # order of the last record, for flushing in file order


class _Joiner:
    """Joins P records per stream, in file order."""

    def __init__(self, max_line: int | None) -> None:
        self.max_line = max_line
        self.pending: dict[str, _Pending] = {}
        self.seq = 0

    def feed(self, t: datetime, stream: str, partial: bool, text: bytes) -> LogLine | None:
        self.seq += 1
        p = self.pending.get(stream)
        if partial:
            if p is None:
                p = self.pending[stream] = _Pending()
            p.parts.append(text)
            p.size += len(text)
            p.time, p.seq = t, self.seq
            if self.max_line is not None and p.size >= self.max_line:
                del self.pending[stream]
                return LogLine(t, stream, _decode(p.parts))
            return None
        if p is None:
            return LogLine(t, stream, text.decode("utf-8", errors="replace"))
        del self.pending[stream]
        p.parts.append(text)
        return LogLine(t, stream, _decode(p.parts))

    def flush(self) -> list[LogLine]:
        """Lines still waiting for an F record (the log ended mid-line), in file order."""
        waiting = sorted(self.pending.items(), key=lambda kv: kv[1].seq)
        self.pending.clear()
        return [LogLine(p.time, s, _decode(p.parts)) for s, p in waiting if p.time is not None]


class _ForwardRecords:
    """Complete records from an fd, read forward in blocks, resumable at EOF."""

    def __init__(self, fd: int, pos: int) -> None:
        self.fd = fd
        self.pos = pos            # offset of the first byte not yet in ``buf``
        self.buf = b""            # an incomplete trailing record

    def read(self, block: int = FORWARD_BLOCK) -> list[bytes] | None:
        """The next batch of complete records; None at end of file."""
        data = os.pread(self.fd, block, self.pos)
        if not data:
            return None
        self.pos += len(data)
        data = self.buf + data if self.buf else data
        cut = data.rfind(b"\n") + 1
        self.buf = data[cut:]
        return data[:cut].split(b"\n")[:-1] if cut else []

    def take_rest(self) -> bytes:
        rest, self.buf = self.buf, b""
        return rest

    @property
    def offset(self) -> int:
        """Offset of the first byte of the next unread record."""
        return self.pos - len(self.buf)


class _RotationWatch:
    """Opens each log file conmon rotates in as soon as it appears, in order.

    conmon 2.1 rotates by creating ``ctr.log.tmp`` (truncated) and renaming
    it over ``ctr.log``; the old file is then only reachable through an
    open fd. A thread blocked on inotify (the log's directory: create and
    moved-to of either name) opens the new file within moments and queues
    the fd, however long the follower takes with its batch.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self._names = {path.name.encode(), self.tmp.name.encode()}
        self._lock = threading.Lock()
        self._pending: deque[tuple[int, tuple[int, int]]] = deque()
        # Dedup against open files only: a closed, unlinked file's inode
        # number is soon reused by a new log file.
        self._current: tuple[int, int] | None = None
        self._watch = DirWatch(path.parent, IN_CREATE | IN_MOVED_TO)
        if not self._watch.active:
            raise OSError("inotify is unavailable")
        try:
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        except OSError:
            self._watch.close()
            raise
        self._thread = threading.Thread(target=self._run, name="log-rotation-watch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, path: Path) -> "_RotationWatch | None":
        """A watch on ``path``'s directory, or None where inotify is unavailable."""
        try:
            return cls(path)
        except OSError:
            return None

    def known(self, fd: int) -> None:
        """The file behind ``fd`` is open already: drop it, and any older, from the queue."""
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with self._lock:
            self._current = key
            if any(k == key for _, k in self._pending):
                while self._pending:
                    old_fd, k = self._pending.popleft()
                    os.close(old_fd)
                    if k == key:
                        break

    def next_file(self) -> int | None:
        """The fd of the oldest file opened since, or None (caller owns the fd)."""
        with self._lock:
            if not self._pending:
                return None
            fd, self._current = self._pending.popleft()
            return fd

    def wait_newer(self, fd: int, timeout: float = 2.0) -> int | None:
        """After the writer is done: the next file if ``fd`` is not the one at the path.

        The watch thread may still be opening the last rotations; wait for
        it (up to ``timeout``) rather than finish on an unlinked old file.
        """
        deadline = time.monotonic() + timeout
        cur = os.fstat(fd)
        while True:
            new = self.next_file()
            if new is not None:
                return new
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                st = cur
            if (st.st_dev, st.st_ino) == (cur.st_dev, cur.st_ino) or time.monotonic() > deadline:
                return None
            time.sleep(0.005)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._watch.fd, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            if any(e.name in self._names or e.mask & IN_Q_OVERFLOW for e in self._watch.events()):
                self._grab()

    def _grab(self) -> None:
        # The new file is briefly ctr.log.tmp, then ctr.log: try both.
        for candidate in (self.tmp, self.path):
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            with self._lock:
                if key == self._current or any(k == key for _, k in self._pending):
                    os.close(fd)
                    continue
                self._pending.append((fd, key))
                while len(self._pending) > MAX_PENDING_FILES:
                    os.close(self._pending.popleft()[0])

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join()
        self._watch.close()             # the inotify instance goes back to the pool
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        with self._lock:
            while self._pending:
                os.close(self._pending.popleft()[0])


class LogReader:
    """Reads one container's k8s-file log. Cheap to create; opens the file per call.

    A log that does not exist yet (a container that never started) reads as empty.
    """

    def __init__(self, path: Path, *, max_line: int | None = DEFAULT_MAX_LINE) -> None:
        """
        Args:
            path: the log file conmon writes (``ctr.log``).
            max_line: longest joined line held in memory, in bytes; a longer
                one is emitted in pieces of about this size. None: no limit.
        """
        self.path = Path(path)
        self.max_line = max_line

    # -- opening ---------------------------------------------------------------
    def _open(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None

    # -- tail --------------------------------------------------------------------
    def tail(self, n: int, *, streams: Iterable[str] = STREAMS) -> list[LogLine]:
        """The last ``n`` complete lines, oldest first, reading only the end of the file.

        Args:
            n: how many lines (0 gives none).
            streams: which of ``stdout``/``stderr`` to include.

        Returns:
            Up to ``n`` lines in file order.

        Raises:
            InvalidArgument: ``n`` is negative or a stream name is unknown.
        """
        want = _check_streams(streams)
        if n < 0:
            raise InvalidArgument(f"invalid tail count {n}", hint="use 0 or more lines")
        fd = self._open()
        if fd is None or n == 0:
            if fd is not None:
                os.close(fd)
            return []
        try:
            return self._tail(fd, os.fstat(fd).st_size, n, want, include_open=True)
        finally:
            os.close(fd)

    def _tail(self, fd: int, end: int, n: int, want: frozenset[str], *,
              include_open: bool) -> list[LogLine]:
        # Walk records from the end. A line of stream s is known to be whole
        # once the previous F record of s (or the file start) is seen. Lines
        # are ordered by the position of their last record ("key"), except
        # that lines the log ends in the middle of (P records with no F yet)
        # come last, where a forward reader emits them.
        done: list[tuple[int, LogLine]] = []
        # stream -> (key, time of last record, parts in reverse order, lowest offset)
        open_: dict[str, list[Any]] = {}
        threshold: int | None = None
        seen: set[str] = set()

        def finish(stream: str) -> None:
            key, t, parts, _ = open_.pop(stream)
            if threshold is None or key >= threshold:
                done.append((key, LogLine(t, stream, _decode(reversed(parts)))))

        for off, raw in _records_backward(fd, end, include_open=include_open):
            rec = parse_line(raw)
            if rec is None or rec[1] not in want:
                continue
            t, stream, partial, text = rec
            if not partial and stream in open_:
                finish(stream)
            cur = open_.get(stream)
            if cur is None:
                # The last record of a stream being P makes a dangling line
                # (sorted last); past the look-back, a stream's first record
                # is taken as ending an ordinary line.
                dangling = partial and stream not in seen and end - off <= JOIN_LOOKBACK
                key = off + end if dangling else off
                seen.add(stream)
                # Below the threshold a line is only followed to know where
                # the next one starts; its text is not kept.
                keep = threshold is None or key >= threshold
                open_[stream] = [key, t, [text] if keep else [], off]
            else:
                if cur[0] >= (threshold or 0):
                    cur[2].append(text)
                cur[3] = off
            if (threshold is None and len(done) + len(open_) >= n
                    and (seen >= want or end - off > JOIN_LOOKBACK)):
                # The n newest lines are now fixed: every unread record lies
                # below all keys seen so far, and no dangling line can turn
                # up. Keep reading only to complete the open ones among them.
                keys = sorted([k for k, _ in done] + [v[0] for v in open_.values()], reverse=True)
                threshold = keys[n - 1]
            if threshold is not None:
                for name, v in list(open_.items()):
                    if v[0] >= threshold and v[3] - off > JOIN_LOOKBACK:
                        finish(name)
                if all(v[0] < threshold for v in open_.values()):
                    break
        for stream in list(open_):
            finish(stream)
        done.sort(key=lambda kv: kv[0])
        return [line for _, line in done[-n:]]

    # -- lines ---------------------------------------------------------------------
    def lines(self, *, since: datetime | None = None, until: datetime | None = None,
              tail: int | None = None, streams: Iterable[str] = STREAMS) -> Iterator[LogLine]:
        """Lines in file order, optionally limited to a time window or the last ``tail``.

        As in Docker, ``tail`` picks the last lines first and ``since``/``until``
        then filter them. Without ``tail``, ``since`` bisects the file by time
        (records are in time order) and reading stops at the first line after
        ``until``; both bounds are inclusive.

        Args:
            since: only lines at or after this time.
            until: only lines at or before this time.
            tail: only the last this many lines (None: all).
            streams: which of ``stdout``/``stderr`` to include.

        Raises:
            InvalidArgument: a negative ``tail`` or unknown stream.
        """
        want = _check_streams(streams)
        if tail is not None:
            for line in self.tail(tail, streams=want):
                if (since is None or line.time >= since) and (until is None or line.time <= until):
                    yield line
            return
        fd = self._open()
        if fd is None:
            return
        try:
            size = os.fstat(fd).st_size
            start = _offset_for_time(fd, size, since) if since is not None else 0
            joiner = _Joiner(self.max_line)
            reader = _ForwardRecords(fd, start)
            while True:
                batch = reader.read()
                if batch is None:
                    rest = reader.take_rest()       # a last record without "\n"
                    batch = [rest] if rest else []
                    if not batch:
                        break
                for raw in batch:
                    rec = parse_line(raw)
                    if rec is None or rec[1] not in want:
                        continue
                    line = joiner.feed(*rec)
                    if line is None:
                        continue
                    if until is not None and line.time > until:
                        return
                    if since is None or line.time >= since:
                        yield line
            for line in joiner.flush():
                if (since is None or line.time >= since) and (until is None or line.time <= until):
                    yield line
        finally:
            os.close(fd)

    # -- follow --------------------------------------------------------------------
    def follow(self, *, since: datetime | None = None, tail: int | None = None,
               stop: Callable[[], bool] | None = None, poll: float = 0.1,
               streams: Iterable[str] = STREAMS) -> Iterator[LogLine]:
        """Existing lines (per ``since``/``tail``, default all), then lines as they are appended.

        Survives conmon replacing the file (a new inode at the path: the rest
        of the old file is read, then the new one from its start) and
        truncation in place (reading restarts at offset 0). A log that does
        not exist yet is waited for.

        Args:
            since: skip lines before this time.
            tail: start with only the last this many existing lines.
            stop: called after every batch and every ``poll`` seconds while
                idle. When it returns True, what the file holds at that moment
                is yielded (with a line the output ended in the middle of)
                and following ends.
            poll: seconds to sleep when there is nothing new.
            streams: which of ``stdout``/``stderr`` to include.

        Raises:
            InvalidArgument: a negative ``tail`` or unknown stream.
        """
        want = _check_streams(streams)
        if tail is not None and tail < 0:
            raise InvalidArgument(f"invalid tail count {tail}", hint="use 0 or more lines")
        should_stop = stop or (lambda: False)
        # Watching starts before the first open, so no rotation falls between.
        watch = _RotationWatch.start(self.path)
        fd = self._open()
        while fd is None:
            if should_stop():
                if watch is not None:
                    watch.close()
                return
            time.sleep(poll)
            fd = self._open()
        if watch is not None:
            watch.known(fd)
        try:
            size = os.fstat(fd).st_size
            # Only whole records are read up front; a record being written
            # is picked up by the follow loop when its "\n" arrives.
            boundary = rfind_newline(fd, size) + 1
            if tail is not None:
                existing = self._tail(fd, boundary, tail, want, include_open=False) if tail else []
                for line in existing:
                    if since is None or line.time >= since:
                        yield line
                start = boundary
            elif since is not None:
                start = _offset_for_time(fd, boundary, since)
            else:
                start = 0
            joiner = _Joiner(self.max_line)

            def emit(batch: list[bytes]) -> Iterator[LogLine]:
                for raw in batch:
                    rec = parse_line(raw)
                    if rec is None or rec[1] not in want:
                        continue
                    line = joiner.feed(*rec)
                    if line is not None and (since is None or line.time >= since):
                        yield line

            def drain(r: _ForwardRecords) -> Iterator[LogLine]:
                # Up to the size seen now: a writer faster than us must not
                # keep a stopping follow alive.
                limit = os.fstat(r.fd).st_size
                while r.pos < limit and (batch := r.read()) is not None:
                    yield from emit(batch)

            def finish(r: _ForwardRecords) -> Iterator[LogLine]:
                # Stopping (the container has exited): everything written so
                # far, including a last record without "\n" and a line the
                # output ended in the middle of.
                yield from drain(r)
                rest = r.take_rest()
                yield from emit([rest] if rest else [])
                for line in joiner.flush():
                    if since is None or line.time >= since:
                        yield line

            reader = _ForwardRecords(fd, start)
            stopping = False
            while True:
                batch = None if stopping else reader.read()
                if batch is not None:
                    yield from emit(batch)
                    stopping = should_stop()
                    continue
                # At the end of the file: has conmon moved on to another one?
                if watch is not None and watch.alive:
                    # Rotations come from the watch, in order; none is skipped.
                    new = watch.next_file()
                    if new is None and stopping:
                        new = watch.wait_newer(fd)
                    replaced = new is not None
                    shrunk = not replaced and os.fstat(fd).st_size < reader.offset
                else:
                    replaced, shrunk = _changed(self.path, fd, reader.offset)
                    new = self._open() if replaced else None
                if replaced:
                    if new is not None:
                        # What reached the old file between our last read and
                        # the switch comes first. Partial lines carry over, as
                        # conmon continues them in the new file.
                        yield from drain(reader)
                        os.close(fd)
                        fd = new
                        reader = _ForwardRecords(fd, 0)
                        continue
                elif shrunk:
                    reader = _ForwardRecords(fd, 0)
                    continue
                if stopping or should_stop():
                    if not stopping:
                        stopping = True       # look once more for a rotation, then finish
                        continue
                    yield from finish(reader)
                    return
                time.sleep(poll)
        finally:
            os.close(fd)
            if watch is not None:
                watch.close()


def _check_streams(streams: Iterable[str]) -> frozenset[str]:
    want = frozenset(streams)
    bad = want - set(STREAMS)
    if bad:
        raise InvalidArgument(f"unknown log stream {sorted(bad)[0]!r}", hint="use stdout or stderr")
    return want


def _changed(path: Path, fd: int, offset: int) -> tuple[bool, bool]:
    """(the path now names another file, our file shrank below ``offset``)."""
    cur = os.fstat(fd)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        # Between conmon's rename of the old file and the creation of the
        # new one; keep the old one until the new one appears.
        return False, cur.st_size < offset
    replaced = (st.st_ino, st.st_dev) != (cur.st_ino, cur.st_dev)
    return replaced, (not replaced and cur.st_size < offset)


def _records_backward(fd: int, end: int, *, include_open: bool,
                      block: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Records ending at or before ``end``, newest first, as ``(offset, raw)``.

    Args:
        include_open: yield the bytes after the last ``\\n`` (a record with no
            line end yet) as a record too.
    """
    block = block or TAIL_BLOCK
    hi = end
    first = True
    while hi > 0:
        lo = max(0, hi - block)
        data = os.pread(fd, hi - lo, lo)
        if len(data) < hi - lo:           # truncated under us: stop cleanly
            return
        if lo > 0:
            nl = data.find(b"\n")
            if nl < 0 or nl == len(data) - 1:
                # No record starts inside the block (it lies within one long
                # record): find where that record starts.
                nl_abs = rfind_newline(fd, lo)
                start = nl_abs + 1
                data = os.pread(fd, hi - start, start)
                lo, nl = start, -1
            base = lo + nl + 1
            body = data[nl + 1:]
        else:
            base, body = 0, data
        pieces = body.split(b"\n")
        last = pieces.pop()               # bytes after the last "\n"
        starts = list(accumulate((len(p) + 1 for p in pieces), initial=base))
        if first and last and include_open:
            yield starts[-1], last
        first = False
        for i in range(len(pieces) - 1, -1, -1):
            yield starts[i], pieces[i]
        hi = base


def _offset_for_time(fd: int, size: int, since: datetime) -> int:
    """A record start at or before the first record with time >= ``since``.

    Bisects on record times (conmon writes them in order), then backs off
    ``SINCE_SLACK`` bytes so partial records belonging to the first wanted
    line are included; callers still filter by time.
    """
    lo, hi = 0, size
    while hi - lo > FORWARD_BLOCK:
        mid = (lo + hi) // 2
        nl = find_newline(fd, mid, hi)
        if nl < 0:
            hi = mid
            continue
        rec = parse_line(os.pread(fd, HEADER_BYTES, nl + 1).split(b"\n", 1)[0])
        if rec is None or rec[0] >= since:
            hi = mid
        else:
            lo = nl + 1
    start = max(0, lo - SINCE_SLACK)
    if start == 0:
        return 0
    nl = find_newline(fd, start - 1, size)
    return size if nl < 0 else nl + 1

