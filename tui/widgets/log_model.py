"""What the logs pane shows, apart from how: rows over a LineIndex, filter, search.

No Textual here, so it is tested directly. The heavy parts (filtering a
whole log, searching for the next match) are meant for worker threads: they
take a ``cancel`` callable and look at bytes first. A block of a few
thousand lines is read with one ``pread`` and tested with one regex search
at C speed; only blocks with a hit are decoded line by line. Most blocks in
a big log hold no match, so a filter over a gigabyte reads it once at disk
speed instead of decoding millions of lines in Python.
"""
from __future__ import annotations

import bisect
import os
import re
import threading
from array import array
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator

from engine import InvalidArgument
from engine.containers.log_format import PARTIAL_MARKERS, parse_since
from engine.containers.logs import LineIndex
from engine.records import LogLine

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# The pre-test runs a pattern over raw records (headers, colour codes
# and all). It may find more than the real test, never less, unless the
# pattern depends on its context: escapes whose bytes meaning differs on
# non-ASCII text, anchors, lookarounds. Those patterns skip the pre-test.
_UNICODE_CLASSES = re.compile(r"\\[wWbBdDsSAZ]")
_ESCAPES_AND_SETS = re.compile(r"\\.|\[(?:\\.|[^\]])*\]")
_CONTEXT = re.compile(r"[\^$]|\(\?<?[=!]")
BATCH_LINES = 4096
BATCH_BYTES = 8 << 20

Cancel = Callable[[], bool]


def compile_pattern(text: str) -> re.Pattern[str]:
    """A user's search text as a regex; smart case (any capital: case-sensitive).

    Raises:
        re.error: not a valid regex.
    """
    flags = 0 if any(c.isupper() for c in text) else re.IGNORECASE
    return re.compile(text, flags)


def _bytes_pretest(pattern: re.Pattern[str]) -> re.Pattern[bytes] | None:
    src = pattern.pattern
    if not src.isascii() or _UNICODE_CLASSES.search(src) or \
            _CONTEXT.search(_ESCAPES_AND_SETS.sub("", src)):
        return None
    try:
        return re.compile(src.encode(), pattern.flags & re.IGNORECASE)
    except re.error:
        return None


_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?")


def parse_jump_time(text: str, now: datetime | None = None) -> datetime:
    """Where ``@`` jumps: a time of day (``14:05``, ``14:05:30``: today, local
    time), or anything ``--since`` takes (RFC 3339, unix seconds, ``10m`` ago).

    Raises:
        InvalidArgument: none of those.
    """
    m = _TIME_OF_DAY.fullmatch(text.strip())
    if m is None:
        return parse_since(text, now)
    hh, mm, ss, frac = m.groups()
    if int(hh) > 23 or int(mm) > 59 or int(ss or 0) > 59:
        raise InvalidArgument(f"invalid time of day {text.strip()!r}",
                              hint="use HH:MM or HH:MM:SS, 24-hour clock")
    today = (now or datetime.now(timezone.utc)).astimezone()
    return today.replace(hour=int(hh), minute=int(mm), second=int(ss or 0),
                         microsecond=int((frac or "0").ljust(6, "0")))


def visible_text(line: LogLine) -> str:
    return ANSI.sub("", line.text) if "\x1b" in line.text else line.text


class LineMatcher:
    """Finds lines of an index whose text matches a regex, reading bytes first."""

    def __init__(self, index: LineIndex, pattern: re.Pattern[str]) -> None:
        self.index = index
        self.pattern = pattern
        self.pretest = _bytes_pretest(pattern)
        try:
            self._fd: int | None = os.open(index.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def line_matches(self, i: int) -> bool:
        line = self.index.read_line(i, full=True)     # the whole line, however long
        return line is not None and self.pattern.search(visible_text(line)) is not None

    def _batches(self, lo: int, hi: int, reverse: bool) -> Iterator[tuple[int, int]]:
        step = BATCH_LINES
        if not reverse:
            a = lo
            while a < hi:
                b = min(hi, a + step)
                yield a, b
                a = b
        else:
            b = hi
            while b > lo:
                a = max(lo, b - step)
                yield a, b
                b = a

    def _candidates(self, a: int, b: int) -> list[int]:
        """Lines in [a, b) that may match (all of them when bytes cannot tell)."""
        if self.pretest is None or self._fd is None:
            return list(range(a, b))
        try:
            start = self.index.line_span(a)[0]
            end = self.index.line_span(b - 1)[1]
        except IndexError:
            return []
        if end - start > BATCH_BYTES:
            if b - a == 1:          # one huge line: the real test reads all of it
                return [a]
            mid = (a + b) // 2
            return self._candidates(a, mid) + self._candidates(mid, b)
        data = os.pread(self._fd, min(end - start, BATCH_BYTES), start)
        if b"\x1b" in data or any(m in data for m in PARTIAL_MARKERS):
            # Colour codes inside the text, or a line split into partial
            # records (a header inside it), could split a match the real
            # test finds: test every line of this block.
            return list(range(a, b))
        out: list[int] = []
        pos = 0
        while True:
            m = self.pretest.search(data, pos)
            if m is None:
                break
            i = self._line_at(start + m.start(), a, b)
            out.append(i)
            try:
                pos = self.index.line_span(i)[1] - start + 1
            except IndexError:
                break
            if i >= b - 1:
                break
        return out

    def _line_at(self, offset: int, a: int, b: int) -> int:
        """The line in [a, b) whose bytes hold ``offset``."""
        lo, hi = a, b - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.index.line_span(mid)[0] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def scan(self, lo: int, hi: int, *, reverse: bool = False,
             cancel: Cancel | None = None) -> Iterator[tuple[int, list[int]]]:
        """Matching lines in [lo, hi), batch by batch: ``(lines done, matches)``."""
        done = 0
        for a, b in self._batches(lo, hi, reverse):
            if cancel is not None and cancel():
                return
            cands = self._candidates(a, b)
            hits = [i for i in (reversed(cands) if reverse else cands) if self.line_matches(i)]
            done += b - a
            yield done, hits

    def find(self, start: int, *, forward: bool, cancel: Cancel | None = None) -> int | None:
        """The nearest matching line after (forward) or before ``start``, not ``start`` itself."""
        n = len(self.index)
        if forward:
            batches = self.scan(start + 1, n, cancel=cancel)
        else:
            batches = self.scan(0, min(start, n), reverse=True, cancel=cancel)
        for _done, hits in batches:
            if hits:
                return hits[0]
        return None


@dataclass(frozen=True)
class Entry:
    """One row of the logs pane."""

    line_no: int                 # the row's identity for search marks
    line: LogLine | None         # None: not a log record, see ``raw``
    raw: str = ""
    source: int = -1             # merged logs: which container (index into the sources)


class LogModel:
    """Rows of the logs pane: every line of the index, or only those a filter keeps.

    A filter is built over a completely indexed log (line numbers do not
    move then); lines appended later are tested as they arrive.
    """

    def __init__(self, index: LineIndex) -> None:
        self.index = index
        self.filter: re.Pattern[str] | None = None
        self.matches = array("Q")
        self.filter_scanned = 0          # lines of the index the filter has looked at
        self.filter_done = False
        self._lock = threading.Lock()

    def __len__(self) -> int:
        if self.filter is None:
            return len(self.index)
        with self._lock:
            return len(self.matches)

    def line_no(self, row: int) -> int | None:
        """Index line shown at ``row`` (None past the end)."""
        if self.filter is None:
            return row if 0 <= row < len(self.index) else None
        with self._lock:
            return self.matches[row] if 0 <= row < len(self.matches) else None

    def row_of(self, line_no: int) -> int:
        """The row showing ``line_no``, or the nearest row after it."""
        if self.filter is None:
            return line_no
        with self._lock:
            return bisect.bisect_left(self.matches, line_no)

    def line(self, row: int, *, full: bool = False) -> LogLine | None:
        """The line at ``row``; ``full``: not cut short however long (see LineIndex)."""
        i = self.line_no(row)
        return self.index.read_line(i, full=full) if i is not None else None

    def entry(self, row: int) -> Entry | None:
        """What row ``row`` shows; None past the end."""
        i = self.line_no(row)
        if i is None:
            return None
        line = self.index.read_line(i)
        if line is None:        # not a k8s-file record: its raw bytes
            return Entry(i, None, self.index.read_raw(i, 4096).decode("utf-8", "replace"))
        return Entry(i, line)

    # -- filter ----------------------------------------------------------------------
    def set_filter(self, pattern: re.Pattern[str] | None) -> None:
        with self._lock:
            self.filter = pattern
            self.matches = array("Q")
            self.filter_scanned = 0
            self.filter_done = pattern is None

    def run_filter(self, *, cancel: Cancel | None = None,
                   progress: Callable[[int, int], None] | None = None) -> bool:
        """Test every indexed line not tested yet; True when it got to the end."""
        pattern = self.filter
        if pattern is None:
            return True
        matcher = LineMatcher(self.index, pattern)
        try:
            lo, hi = self.filter_scanned, len(self.index)
            for done, hits in matcher.scan(lo, hi, cancel=cancel):
                with self._lock:
                    if self.filter is not pattern:
                        return False
                    self.matches.extend(hits)
                    self.filter_scanned = lo + done
                if progress is not None:
                    progress(lo + done, hi)
            finished = self.filter_scanned >= hi
            with self._lock:
                if self.filter is pattern and finished:
                    self.filter_done = True
            return finished
        finally:
            matcher.close()

    # -- saving ----------------------------------------------------------------------
    def iter_rows(self, cancel: Cancel | None = None) -> Iterator[LogLine]:
        """Every shown line in order, each whole (what "save view" writes)."""
        for row in range(len(self)):
            if cancel is not None and row % 4096 == 0 and cancel():
                return
            line = self.line(row, full=True)
            if line is not None:
                yield line


Span = tuple[int, int, int]       # start, end, the index's generation
Row = tuple[LogLine, int, "Span | None"]


def _row(index: LineIndex, i: int, src: int) -> Row | None:
    """A merged row for line ``i``: the shown copy, and where the rest is if cut."""
    line = index.read_line(i)
    if line is None:
        return None
    span: Span | None = None
    if index.is_cut(i):
        start, end = index.line_span(i)
        span = (start, end, index.generation)
    return line, src, span


class MergedModel:
    """The newest lines of several logs, merged by time, in memory (bounded).

    For a handful of containers watched together: each log's last
    ``tail`` lines to start with, then what is appended, at most ``keep``
    lines in all. Filter and search run over this buffer.
    """

    def __init__(self, indexes: list[LineIndex], *, tail: int = 2000, keep: int = 50_000) -> None:
        self.indexes = indexes
        self.keep = keep
        self.tail = tail
        # (line as shown, source, where the whole line is if it was cut short)
        self.rows: list[tuple[LogLine, int, Span | None]] = []
        self.filter: re.Pattern[str] | None = None
        self.matches: list[int] = []
        self.filter_done = True
        # While a filter is run: id(row) -> (row, whether it matches)
        self._tested: dict[int, tuple[Row, bool]] = {}
        self.dropped = 0                 # rows dropped off the front so far
        self._seen = [0] * len(indexes)  # lines of each index already taken
        self._lock = threading.Lock()
        self.loaded = False

    def load(self, cancel: Cancel | None = None) -> None:
        """The last ``tail`` lines of each log (a worker thread calls this once)."""
        batch: list[Row] = []
        for src, index in enumerate(self.indexes):
            index.scan_backward(cancel=cancel, until_lines=self.tail)
            n = len(index)
            for i in range(max(0, n - self.tail), n):
                row = _row(index, i, src)
                if row is not None:
                    batch.append(row)
            self._seen[src] = n
        self._add(batch)
        self.loaded = True

    def poll(self) -> int:
        """Take lines appended since the last call; returns how many rows were added."""
        batch: list[Row] = []
        for src, index in enumerate(self.indexes):
            index.append()
            n = len(index)
            start = max(self._seen[src], n - self.keep)
            for i in range(start, n):
                row = _row(index, i, src)
                if row is not None:
                    batch.append(row)
            self._seen[src] = n
        return self._add(batch)

    def _add(self, batch: list[Row]) -> int:
        """Insert ``batch`` in time order; the filter tests only these new rows.

        Cut rows are read whole from disk to be tested, so that happens
        before the lock is taken (the UI waits on it to draw).
        """
        if not batch:
            return 0
        batch.sort(key=lambda item: item[0].time)
        pattern = self.filter
        while True:
            hits = self._test(batch, pattern)
            with self._lock:
                if self.filter is pattern:
                    self._insert(batch, hits)
                    return len(batch)
            pattern = self.filter       # it changed while the rows were tested

    def _test(self, items: list[Row], pattern: re.Pattern[str] | None,
              cancel: Cancel | None = None) -> list[bool] | None:
        if pattern is None:
            return None
        hits: list[bool] = []
        for n, item in enumerate(items):
            if cancel is not None and n % 1024 == 0 and cancel():
                return None
            hits.append(pattern.search(visible_text(self._whole(item))) is not None)
        return hits

    def _insert(self, batch: list[Row], hits: list[bool] | None) -> None:
        # Holding the lock. ``matches`` follows the rows only once the
        # filter has been run over them all; until then ``run_filter`` is
        # given what was tested here.
        rows = self.rows
        tracking = hits is not None and self.filter_done
        if hits is not None and not self.filter_done:
            for item, hit in zip(batch, hits):
                self._tested[id(item)] = (item, hit)
        first = batch[0][0].time
        if rows and first < rows[-1][0].time:
            # A log lagged behind the others: merge its rows in, in time
            # order, ties after the rows already there.
            p = bisect.bisect_right(rows, first, key=lambda item: item[0].time)
            m = bisect.bisect_left(self.matches, p)
            hit_before = set(self.matches[m:])
            pairs = [(item, p + j in hit_before) for j, item in enumerate(rows[p:])]
            pairs += zip(batch, hits if tracking and hits is not None else [False] * len(batch))
            pairs.sort(key=lambda pair: pair[0][0].time)
            del rows[p:]
            rows.extend(item for item, _hit in pairs)
            if tracking:
                del self.matches[m:]
                self.matches.extend(p + j for j, (_item, hit) in enumerate(pairs) if hit)
        else:
            start = len(rows)
            rows.extend(batch)
            if tracking and hits is not None:
                self.matches.extend(start + j for j, hit in enumerate(hits) if hit)
        extra = len(rows) - self.keep
        if extra > 0:
            del rows[:extra]
            self.dropped += extra
            if tracking:
                m = bisect.bisect_left(self.matches, extra)
                self.matches = [i - extra for i in self.matches[m:]]

    def __len__(self) -> int:
        return len(self.matches) if self.filter is not None else len(self.rows)

    def line_no(self, row: int) -> int | None:
        with self._lock:
            if self.filter is not None:
                return self.matches[row] if 0 <= row < len(self.matches) else None
            return row if 0 <= row < len(self.rows) else None

    def row_of(self, line_no: int) -> int:
        if self.filter is None:
            return line_no
        return bisect.bisect_left(self.matches, line_no)

    def line(self, row: int) -> LogLine | None:
        i = self.line_no(row)
        return self.rows[i][0] if i is not None else None

    def entry(self, row: int) -> Entry | None:
        with self._lock:
            i = self.matches[row] if self.filter is not None and 0 <= row < len(self.matches) \
                else row if self.filter is None and 0 <= row < len(self.rows) else None
            if i is None:
                return None
            line, src, _span = self.rows[i]
        return Entry(i, line, source=src)

    def set_filter(self, pattern: re.Pattern[str] | None) -> None:
        """Show only rows ``pattern`` matches; ``run_filter`` (a worker) finds them."""
        with self._lock:
            self.filter = pattern
            self.matches = []
            self._tested = {}
            self.filter_done = pattern is None

    def run_filter(self, *, cancel: Cancel | None = None,
                   progress: Callable[[int, int], None] | None = None) -> bool:
        """Test every row against the filter (cut rows whole); True when it is done.

        For a worker thread: cut rows are read from disk, and none of that
        is done holding the lock. Rows that arrive meanwhile are tested
        too, before the matches are put in place.
        """
        pattern = self.filter
        if pattern is None:
            return True
        with self._lock:
            if self.filter is not pattern:
                return False
            tested = self._tested
        while True:
            with self._lock:
                if self.filter is not pattern:
                    return False
                todo = [item for item in self.rows if id(item) not in tested]
                if not todo:
                    self.matches = [i for i, item in enumerate(self.rows) if tested[id(item)][1]]
                    self._tested = {}
                    self.filter_done = True
                    return True
                total = len(self.rows)
            hits = self._test(todo, pattern, cancel)
            if hits is None:
                return False
            for item, hit in zip(todo, hits):
                # The row is kept with its result, so its id is not reused.
                tested[id(item)] = (item, hit)
            if progress is not None:
                progress(len(tested), total)

    def find(self, start: int, pattern: re.Pattern[str], *, forward: bool) -> int | None:
        """The nearest row index (in ``rows``) after/before ``start`` whose text matches."""
        with self._lock:
            rng = range(start + 1, len(self.rows)) if forward else range(min(start, len(self.rows)) - 1, -1, -1)
            for i in rng:
                if pattern.search(visible_text(self._whole(self.rows[i]))):
                    return i
        return None

    def whole(self, i: int) -> LogLine:
        """``rows[i]`` with its full text, though it is kept cut short (the log has it)."""
        return self._whole(self.rows[i])

    def _whole(self, item: Row) -> LogLine:
        line, src, span = item
        if span is None:
            return line
        index = self.indexes[src]
        if index.generation != span[2]:     # the log was replaced: the copy is all there is
            return line
        return index.read_span(span[0], span[1]) or line

    def iter_rows(self, cancel: Cancel | None = None) -> Iterator[LogLine]:
        """Every shown line in order, each whole (what "save view" writes)."""
        with self._lock:
            items = [self.rows[i] for i in self.matches] if self.filter is not None \
                else list(self.rows)
        for n, item in enumerate(items):
            if cancel is not None and n % 4096 == 0 and cancel():
                return
            yield self._whole(item)
