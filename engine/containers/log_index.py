"""A compact, background-buildable index of the lines of a (huge) container log.

The app's log pane needs to open a multi-gigabyte log at its end at once and
then scroll anywhere. Like Toolong, this keeps only where each line starts
and reads a line's text on demand with ``os.pread``; unlike Toolong, the
offsets live in ``array('Q')`` (8 bytes a line, not a Python int object), so
ten million lines cost 80 MB, not several hundred.

A "line" here is a logical container line: conmon's partial (``P``) records
are folded into the line they continue (the next record of the same stream,
contiguous in the file), so a 100k-character line is one entry however
conmon split it. A line that is not a k8s-file record (another writer, a
corrupt byte) is still a line; :meth:`LineIndex.read_line` returns None for
it and :meth:`LineIndex.read_raw` gives its bytes.

Threading: one thread may run :meth:`scan_backward` while others call
:meth:`append`, :meth:`read_line` and ``len()``; a lock guards the state and is
never held across a large read.
"""
from __future__ import annotations

import bisect
import os
import threading
import time
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate, count
from operator import add
from pathlib import Path
from typing import Callable, Protocol

from ..records import LogLine
from .log_format import (HEADER_BYTES, PARTIAL_MARKERS, find_newline, parse_header, parse_line,
                         rfind_newline)

# Bytes read to show one line; past this a line is shown truncated. 64 KiB
# holds more than 10k characters of text even at 4 bytes a character and
# with conmon's record headers every 8 KiB.
READ_LIMIT = 64 * 1024
DEFAULT_MAX_CHARS = 10_000
DEFAULT_BLOCK = 1 << 20
DEFAULT_CACHE = 2048


class _Flag(Protocol):
    def is_set(self) -> bool: ...


Cancel = Callable[[], bool] | _Flag


@dataclass(frozen=True)
class ScanProgress:
    """How far a backward scan has got (for a progress bar)."""

    lines: int          # lines indexed so far
    scanned: int        # bytes scanned, counted from the end of the file
    total: int          # bytes the backward scan has to cover
    done: bool          # the scan reached the start of the file


@dataclass
class _Block:
    """The records found in one read: starts ascending, and their first bytes."""

    starts: list[int]
    pieces: list[bytes]      # each record's bytes (at least its header)
    body: bytes              # the bytes searched for partial markers
    open_last: bool = False  # the last record has no line end yet


def _has_partial(body: bytes) -> bool:
    return any(m in body for m in PARTIAL_MARKERS)


def _continues(prev: tuple[bytes | None, bool], stream: bytes | None) -> bool:
    """Does a record of ``stream`` continue the line of the record ``prev``?"""
    return prev[1] and prev[0] is not None and prev[0] == stream


def _undecidable(before: tuple[bytes | None, bool], piece: bytes) -> bool:
    """Is an unfinished last record too short to say whether it continues ``before``?

    Only a record after a partial one needs its stream to decide; while its
    header is still being written that cannot be known yet.
    """
    return (before[1] and before[0] is not None and len(piece) < HEADER_BYTES
            and parse_header(piece)[0] is None)


def _starts_of(base: int, pieces: list[bytes]) -> list[int]:
    """Offsets of records laid out from ``base``, each followed by a ``\\n``."""
    if not pieces:
        return []
    # start[k] = base + len(p0..pk-1) + k, computed without a Python-level loop.
    return list(map(add, accumulate(map(len, pieces[:-1]), initial=base), count()))


class LineIndex:
    """Line start offsets of one log file, built from the end backwards, extended by appends.

    Line numbers count from the earliest line found so far: while a scan is
    in progress, lines found later are *earlier* in the file and shift the
    numbers up, so a view should anchor on the distance from the end
    (``len(index) - i``), which never changes during a scan. Negative indices
    count from the end as for lists.

    Limits: partial records are folded only into the record right after
    them (same stream); :class:`~engine.containers.logs.LogReader` also joins
    across records of the other stream. A file truncated and rewritten past
    the indexed size between two :meth:`append` calls is not noticed (a
    replaced file, conmon's way, always is).
    """

    def __init__(self, path: Path, *, max_chars: int = DEFAULT_MAX_CHARS,
                 cache_size: int = DEFAULT_CACHE, block_size: int = DEFAULT_BLOCK) -> None:
        """Open the log (which may not exist yet); nothing is scanned until asked.

        Args:
            path: the k8s-file log.
            max_chars: longest text :meth:`read_line` returns; longer lines end
                with a ``… [N bytes, truncated]`` marker.
            cache_size: decoded lines kept (least recently used dropped first).
            block_size: bytes read per scan step.
        """
        self.path = Path(path)
        self.max_chars = max_chars
        self._block = max(4096, block_size)
        self._cache: OrderedDict[tuple[int, int], LogLine | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.RLock()
        self.generation = 0
        """Bumped when the file was replaced or truncated and the index started over."""
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._open()
        self._clear(self._size())

    # -- state ---------------------------------------------------------------------
    def _open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._fd, self._ident = None, None
            return
        st = os.fstat(fd)
        self._fd, self._ident = fd, (st.st_ino, st.st_dev)

    def _size(self) -> int:
        return os.fstat(self._fd).st_size if self._fd is not None else 0

    def _clear(self, size: int) -> None:
        self._rev = array("Q")       # starts found scanning backwards, descending
        self._fwd = array("Q")       # starts found by appends, ascending
        self._end = size             # bytes [0, _end) are this index's domain
        self._scan_lo = size         # the backward scan has covered [_scan_lo, size)
        self._scan_total = size
        # The lowest record the scan has seen: whether it starts a line
        # depends on the record before it, not read yet.
        self._pending: tuple[int, bytes | None] | None = None
        self._open_start: int | None = None     # a last record with no "\n" yet
        self._last: tuple[bytes | None, bool] = (None, False)   # stream, partial of the last record
        self._started = size == 0
        self._cache.clear()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "LineIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def complete(self) -> bool:
        """True once every line of the file is indexed (the backward scan is done)."""
        with self._lock:
            return self._started and self._scan_lo == 0 and self._pending is None

    @property
    def size(self) -> int:
        """Bytes of the file the index covers."""
        return self._end

    def __len__(self) -> int:
        with self._lock:
            return len(self._rev) + len(self._fwd)

    @property
    def memory_bytes(self) -> int:
        """Bytes used by the offsets (excluding the bounded line cache)."""
        with self._lock:
            return (len(self._rev) + len(self._fwd)) * self._rev.itemsize

    # -- scanning backwards ----------------------------------------------------------
    def scan_backward(self, *, cancel: Cancel | None = None,
                      progress: Callable[[ScanProgress], None] | None = None,
                      until_lines: int | None = None, progress_every: float = 0.25) -> bool:
        """Index lines from the end of the file towards its start, one block at a time.

        Meant for a worker thread. Resumable: call again after a cancel (or
        with a larger ``until_lines``) to continue where it stopped.

        Args:
            cancel: a callable returning True, or an object with ``is_set()``
                (``threading.Event``, a Textual worker's flag), checked between blocks.
            progress: called with a :class:`ScanProgress` at most every
                ``progress_every`` seconds, and once at the end.
            until_lines: stop once at least this many lines are indexed (the
                view's first screen), leaving the rest for a later call.
            progress_every: seconds between progress calls.

        Returns:
            True when the whole file is indexed.

        Raises:
            OSError: reading the file failed.
        """
        last_report = time.monotonic()
        while not _is_cancelled(cancel):
            if until_lines is not None and len(self) >= until_lines:
                break
            if not self._scan_step():
                break
            now = time.monotonic()
            if progress is not None and now - last_report >= progress_every:
                progress(self.progress())
                last_report = now
        if progress is not None:
            progress(self.progress())
        return self.complete

    def progress(self) -> ScanProgress:
        """Where the backward scan stands."""
        with self._lock:
            return ScanProgress(len(self._rev) + len(self._fwd), self._scan_total - self._scan_lo,
                                self._scan_total, self._started and self._scan_lo == 0
                                and self._pending is None)

    def _scan_step(self) -> bool:
        """Index one block below what is indexed; False when there is nothing left."""
        with self._lock:
            if self._started and self._scan_lo == 0:
                self._flush_pending()
                return False
            fd, gen, hi, first = self._fd, self.generation, self._scan_lo, not self._started
        if fd is None:
            with self._lock:
                self._started = True
            return False
        try:
            block = self._read_backward(fd, hi, first)
        except OSError:
            with self._lock:
                if gen != self.generation:     # the file was replaced under us
                    return False
            raise
        with self._lock:
            if gen != self.generation:
                return False
            if hi != self._scan_lo or (first and self._started):
                return True                    # another thread indexed this block meanwhile
            self._commit_backward(block, first)
            if self._scan_lo == 0:
                self._flush_pending()
                return False
        return True

    def _read_backward(self, fd: int, hi: int, first: bool) -> _Block:
        lo = max(0, hi - self._block)
        data = os.pread(fd, hi - lo, lo)
        if lo > 0:
            nl = data.find(b"\n")
            if nl < 0 or nl == len(data) - 1:
                # No record starts inside this block: it lies within one long
                # record. Find that record's start without reading it all.
                start = rfind_newline(fd, lo) + 1
                head = os.pread(fd, HEADER_BYTES, start)
                return _Block([start], [head], head, open_last=first and not data.endswith(b"\n"))
            base, body = lo + nl + 1, data[nl + 1:]
        else:
            base, body = 0, data
        pieces = body.split(b"\n")
        last = pieces.pop()
        open_last = bool(last)       # only possible at the end of the file
        if open_last:
            pieces.append(last)
        return _Block(_starts_of(base, pieces), pieces, body, open_last)

    def _commit_backward(self, b: _Block, first: bool) -> None:
        starts, pieces = b.starts, b.pieces
        if not starts:              # an empty file
            self._scan_lo, self._started = 0, True
            return
        if first:
            self._started = True
            if (b.open_last and len(starts) > 1
                    and _undecidable(parse_header(pieces[-2][:HEADER_BYTES]), pieces[-1])):
                # Leave a half-written record for append() to look at again.
                self._end = starts[-1]
                starts, pieces = starts[:-1], pieces[:-1]
            elif b.open_last:
                self._open_start = starts[-1]
            self._last = parse_header(pieces[-1][:HEADER_BYTES])
        rev = self._rev
        if not _has_partial(b.body):
            # Fast path, the common case: no record here is partial, so every
            # record but the lowest starts a line, and so does the pending one.
            if self._pending is not None:
                rev.append(self._pending[0])
            rev.extend(reversed(starts[1:]))
            self._pending = (starts[0], parse_header(pieces[0][:HEADER_BYTES])[0])
        else:
            heads = [parse_header(p[:HEADER_BYTES]) for p in pieces]
            if self._pending is not None and not _continues(heads[-1], self._pending[1]):
                rev.append(self._pending[0])
            for k in range(len(starts) - 1, 0, -1):
                if not _continues(heads[k - 1], heads[k][0]):
                    rev.append(starts[k])
            self._pending = (starts[0], heads[0][0])
        self._scan_lo = starts[0]

    def _flush_pending(self) -> None:
        if self._pending is not None:
            self._rev.append(self._pending[0])
            self._pending = None

    # -- following -------------------------------------------------------------------
    def append(self) -> int:
        """Index what was written since the last call (for follow mode).

        If the file at ``path`` was replaced (conmon's ``--log-size-max``) or
        truncated, the index starts over on the new content and
        :attr:`generation` goes up: a view should then reload.

        Returns:
            How many lines were added (after a restart: how many the new file has).

        Raises:
            OSError: reading the file failed.
        """
        with self._lock:
            self._restart_if_replaced()
            if self._fd is None:
                return 0
            if not self._started:
                # The join rule for the first new record needs the last old one.
                self._scan_step()
            fd, size = self._fd, self._size()
            if size <= self._end:
                return 0
            pos = self._open_start if self._open_start is not None else self._end
            before = len(self._fwd)
            end = size
            while pos < size:
                data = os.pread(fd, min(self._block, size - pos), pos)
                if not data:
                    end = pos
                    break
                nl = data.rfind(b"\n")
                if nl >= 0:
                    body = data[:nl]
                    pieces = body.split(b"\n")
                    self._commit_forward(_Block(_starts_of(pos, pieces), pieces, body))
                    pos += nl + 1
                    continue
                head = data[:HEADER_BYTES]
                end_nl = find_newline(fd, pos + len(data), size)
                if end_nl < 0:              # a record still being written
                    deferred = self._commit_forward(_Block([pos], [head], head, open_last=True))
                    if deferred is not None:
                        end = deferred
                    break
                self._commit_forward(_Block([pos], [head], head))   # longer than a block
                pos = end_nl + 1
            self._end = end
            return len(self._fwd) - before

    def _commit_forward(self, b: _Block) -> int | None:
        """Add the line starts among ``b``'s records.

        Returns:
            The offset of a half-written last record that was left out (its
            join rule is not known yet), else None.
        """
        starts, pieces = b.starts, b.pieces
        k0 = 0
        prev = self._last
        if starts[0] == self._open_start:
            # The record that had no line end at the last look: its line is
            # indexed already; now its header (and so its join rule) is whole.
            k0 = 1
            self._open_start = None
            prev = parse_header(pieces[0][:HEADER_BYTES])
        if b.open_last and len(starts) > k0:
            # Only a single-record block is ever open (see append).
            if _undecidable(prev, pieces[-1]):
                return starts[-1]
            self._open_start = starts[-1]
        elif b.open_last:
            self._open_start = starts[-1]       # the re-read record is still open
        fwd = self._fwd
        if not _has_partial(b.body):
            if k0 < len(starts):
                first = k0
                if _continues(prev, parse_header(pieces[k0][:HEADER_BYTES])[0]):
                    first += 1
                fwd.extend(starts[first:])
            self._last = parse_header(pieces[-1][:HEADER_BYTES]) if len(pieces) > k0 else prev
        else:
            heads = [parse_header(p[:HEADER_BYTES]) for p in pieces]
            for k in range(k0, len(starts)):
                if not _continues(heads[k - 1] if k > 0 else prev, heads[k][0]):
                    fwd.append(starts[k])
            self._last = heads[-1]
        return None

    def _restart_if_replaced(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            # conmon is between renaming the old file and creating the new
            # one; keep showing the old one.
            return
        if self._fd is None or (st.st_ino, st.st_dev) != self._ident:
            if self._fd is not None:
                os.close(self._fd)
            self._open()
            if self._fd is None:
                return
        elif self._size() >= self._end:
            return                   # the same file, only grown
        self.generation += 1
        self._clear(0)              # an empty domain: append indexes the new file forward

    # -- reading ------------------------------------------------------------------------
    def _start_of(self, i: int) -> int:
        nr = len(self._rev)
        return self._rev[nr - 1 - i] if i < nr else self._fwd[i - nr]

    def line_span(self, i: int) -> tuple[int, int]:
        """Byte range of line ``i``: ``start`` to ``end``, without the final ``\\n``.

        A CRLF line's ``\\r`` is inside the span (it is stripped when decoded).

        Raises:
            IndexError: no such line.
        """
        with self._lock:
            n = len(self._rev) + len(self._fwd)
            if i < 0:
                i += n
            if not 0 <= i < n:
                raise IndexError(f"line {i} out of range (the index has {n} lines)")
            start = self._start_of(i)
            if i + 1 < n:
                return start, self._start_of(i + 1) - 1
            return start, self._end if self._open_start is not None else self._end - 1

    def read_raw(self, i: int, limit: int = READ_LIMIT) -> bytes:
        """The bytes of line ``i`` (headers included), at most ``limit`` of them.

        Raises:
            IndexError: no such line.
        """
        with self._lock:
            start, end = self.line_span(i)
            if self._fd is None:
                return b""
            return os.pread(self._fd, min(end - start, limit), start)

    def read_line(self, i: int, *, full: bool = False) -> LogLine | None:
        """Line ``i`` decoded: partial records joined, text capped at ``max_chars``.

        Args:
            i: the line number.
            full: the whole text however long (what search, filter and save
                need); read from the file each time, not cached, so a very
                long line costs its length in time and memory only while used.

        Returns:
            The line; None when ``i`` is out of range (the index may have
            restarted, see :attr:`generation`) or the line is not a k8s-file record.
        """
        with self._lock:
            try:
                start, end = self.line_span(i)
            except IndexError:
                return None
            if full and end - start > self.max_chars:     # it may have been cut
                return self._decode_full(start, end)
            key = (start, end)
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            if self._fd is None:
                return None
            line = self._decode(self._fd, start, end)
            self._cache[key] = line
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return line

    def is_cut(self, i: int) -> bool:
        """Could :meth:`read_line` (not ``full``) have cut line ``i`` short?

        True when its bytes outnumber ``max_chars``; the cheap test (no read)
        that says whether the full text is worth fetching.
        """
        try:
            start, end = self.line_span(i)
        except IndexError:
            return False
        return end - start > self.max_chars

    def read_span(self, start: int, end: int) -> LogLine | None:
        """The whole line stored at bytes ``start``..``end`` (see :meth:`line_span`).

        For a caller that kept a span (merged logs keep short copies of
        lines): the span stays valid while :attr:`generation` is unchanged.

        Returns:
            The line, or None if the bytes there are not a k8s-file record.
        """
        with self._lock:
            return self._decode_full(start, end)

    def _decode_full(self, start: int, end: int) -> LogLine | None:
        if self._fd is None:
            return None
        data = os.pread(self._fd, end - start, start)
        records = [parse_line(r) for r in data.split(b"\n")]
        if not records or records[0] is None:
            return None
        parsed = [r for r in records if r is not None]
        text = b"".join(r[3] for r in parsed).decode("utf-8", errors="replace")
        return LogLine(parsed[-1][0], parsed[0][1], text)

    def _decode(self, fd: int, start: int, end: int) -> LogLine | None:
        length = end - start
        truncated = length > READ_LIMIT
        data = os.pread(fd, min(length, READ_LIMIT), start)
        records = [parse_line(r) for r in data.split(b"\n")]
        if records[0] is None:
            return None
        parsed = [r for r in records if r is not None]
        t = parsed[-1][0]
        if truncated:
            # The line's time is its last record's: find that record's header.
            nl = rfind_newline(fd, end, max(start, end - READ_LIMIT))
            if nl >= 0:
                last = parse_line(os.pread(fd, HEADER_BYTES, nl + 1).split(b"\n", 1)[0])
                if last is not None:
                    t = last[0]
        text = b"".join(r[3] for r in parsed).decode("utf-8", errors="replace")
        if truncated or len(text) > self.max_chars:
            text = f"{text[:self.max_chars]}… [{length} bytes, truncated]"
        return LogLine(t, parsed[0][1], text)

    def find_time(self, t: datetime) -> int:
        """Index of the first line at or after ``t`` (``len(self)`` if none).

        Bisects on line times (conmon writes them in order); lines that are
        not records count as earlier.
        """
        def key(i: int) -> bool:
            line = self.read_line(i)
            return line is not None and line.time >= t

        return bisect.bisect_left(range(len(self)), True, key=key)


def _is_cancelled(cancel: Cancel | None) -> bool:
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    if is_set is not None:
        return bool(is_set())
    return bool(cancel())  # type: ignore[operator]
