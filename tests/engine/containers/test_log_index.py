"""LineIndex: compact offsets, backward scan in batches, appends, on-demand reads."""
from __future__ import annotations

import os
import random
import threading
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.containers.log_index import LineIndex, ScanProgress
from engine.containers.logs import parse_line

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rec(t: datetime, stream: str, flag: str, text: bytes | str, end: bytes = b"\n") -> bytes:
    if isinstance(text, str):
        text = text.encode()
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f").encode() + f"123+00:00 {stream} {flag} ".encode() + text + end


def reference_spans(data: bytes) -> list[tuple[int, int]]:
    """Logical line spans computed the slow, obvious way."""
    records: list[tuple[int, int]] = []       # (start, end without "\n")
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        records.append((pos, end))
        pos = end + 1
    heads = []
    for s, e in records:
        p = parse_line(data[s:e])
        heads.append((p[1], p[2]) if p else (None, False))
    spans: list[tuple[int, int]] = []
    for k, (s, e) in enumerate(records):
        prev = heads[k - 1] if k else (None, False)
        if k and prev[1] and prev[0] is not None and prev[0] == heads[k][0]:
            spans[-1] = (spans[-1][0], e)      # continues the line before
        else:
            spans.append((s, e))
    return spans


def spans_of(ix: LineIndex) -> list[tuple[int, int]]:
    return [ix.line_span(i) for i in range(len(ix))]


def random_log(rng: random.Random, n: int, *, long_lines: bool = True) -> bytes:
    out = []
    for i in range(n):
        r = rng.random()
        stream = "stdout" if rng.random() < 0.7 else "stderr"
        flag = "P" if rng.random() < 0.25 else "F"
        if r < 0.03:
            out.append(b"garbage line, not a record\n")
            continue
        if r < 0.05:
            out.append(b"\n")
            continue
        length = rng.randrange(0, 60)
        if long_lines and r > 0.99:
            length = rng.randrange(5_000, 120_000)
        text = "".join(rng.choice("abc \x1b[m") for _ in range(length))
        out.append(rec(at(i), stream, flag, text, b"\r\n" if r > 0.95 else b"\n"))
    data = b"".join(out)
    if rng.random() < 0.3:
        data = data[:-1]                       # no trailing newline
    return data


# -- offsets --------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("block", [4096, 1 << 20])
def test_offsets_match_reference(tmp_path: Path, seed: int, block: int) -> None:
    rng = random.Random(seed)
    data = random_log(rng, 600)
    p = tmp_path / "ctr.log"
    p.write_bytes(data)
    with LineIndex(p, block_size=block) as ix:
        assert ix.scan_backward() is True and ix.complete
        assert spans_of(ix) == reference_spans(data)


def test_crlf_and_no_trailing_newline(tmp_path: Path) -> None:
    data = (rec(at(0), "stdout", "F", "one", b"\r\n") + rec(at(1), "stdout", "F", "two", b"\r\n")
            + rec(at(2), "stderr", "F", "three", b""))
    p = tmp_path / "ctr.log"
    p.write_bytes(data)
    with LineIndex(p) as ix:
        ix.scan_backward()
        assert len(ix) == 3
        s0, e0 = ix.line_span(0)
        assert data[e0] == ord("\n") and data[e0 - 1] == ord("\r")
        assert ix.line_span(2)[1] == len(data)
        assert [ix.read_line(i).text for i in range(3)] == ["one", "two", "three"]  # type: ignore[union-attr]
        assert ix.read_line(2).stream == "stderr"  # type: ignore[union-attr]


def test_very_long_lines_keep_offsets_and_do_not_stall(tmp_path: Path) -> None:
    long_text = "x" * 150_000
    parts = [long_text[i:i + 8192] for i in range(0, len(long_text), 8192)]
    data = (rec(at(0), "stdout", "F", "before")
            + rec(at(1), "stdout", "F", long_text)                       # one physical record
            + b"".join(rec(at(2 + i / 100), "stdout", "P", part) for i, part in enumerate(parts[:-1]))
            + rec(at(3), "stdout", "F", parts[-1])                        # conmon-style split
            + rec(at(4), "stdout", "F", "after"))
    p = tmp_path / "ctr.log"
    p.write_bytes(data)
    with LineIndex(p, block_size=4096, max_chars=10_000) as ix:
        ix.scan_backward()
        assert spans_of(ix) == reference_spans(data)
        assert len(ix) == 4
        t0 = time.perf_counter()
        one, split = ix.read_line(1), ix.read_line(2)
        assert time.perf_counter() - t0 < 0.1
        for line in (one, split):
            assert line is not None
            assert line.text.startswith("x" * 10_000)
            assert len(line.text) < 10_100 and "truncated" in line.text[10_000:]
        assert one.time == at(1)                 # type: ignore[union-attr]
        assert split.time == at(3)               # the F record's time, found past the cap
        assert ix.read_line(3).text == "after"   # type: ignore[union-attr]
        # the whole text, for search, filter and save: both kinds of long line
        for i, t in ((1, at(1)), (2, at(3))):
            assert ix.is_cut(i)
            whole = ix.read_line(i, full=True)
            assert whole is not None and whole.text == long_text and whole.time == t
            assert ix.read_span(*ix.line_span(i)) == whole
        assert not ix.is_cut(0) and ix.read_line(0, full=True) == ix.read_line(0)
        assert ix.read_line(9, full=True) is None


def test_partial_records_fold_into_one_line(tmp_path: Path) -> None:
    data = (rec(at(0), "stdout", "P", "hel") + rec(at(1), "stdout", "P", "lo ")
            + rec(at(2), "stdout", "F", "world") + rec(at(3), "stderr", "F", "e"))
    p = tmp_path / "ctr.log"
    p.write_bytes(data)
    with LineIndex(p) as ix:
        ix.scan_backward()
        assert [(ln.stream, ln.text, ln.time) for ln in map(ix.read_line, range(len(ix)))] == [  # type: ignore[union-attr]
            ("stdout", "hello world", at(2)), ("stderr", "e", at(3))]


def test_garbage_out_of_range_and_raw(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    p.write_bytes(b"plain text\n" + rec(at(0), "stdout", "F", "ok"))
    with LineIndex(p) as ix:
        ix.scan_backward()
        assert ix.read_line(0) is None and ix.read_raw(0) == b"plain text"
        assert ix.read_line(-1).text == "ok"     # type: ignore[union-attr]
        assert ix.read_line(2) is None
        with pytest.raises(IndexError):
            ix.line_span(2)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with LineIndex(tmp_path / "nope.log") as ix:
        assert ix.scan_backward() and len(ix) == 0
        (tmp_path / "nope.log").write_bytes(rec(at(0), "stdout", "F", "born"))
        assert ix.append() == 1 and ix.read_line(0).text == "born"  # type: ignore[union-attr]
    (tmp_path / "empty.log").write_bytes(b"")
    with LineIndex(tmp_path / "empty.log") as ix:
        assert ix.complete and len(ix) == 0


# -- memory ---------------------------------------------------------------------

def test_offsets_cost_8_bytes_a_line(tmp_path: Path) -> None:
    n = 300_000
    p = tmp_path / "ctr.log"
    line = rec(at(0), "stdout", "F", "some text")
    p.write_bytes(line * n)
    with LineIndex(p) as ix:
        tracemalloc.start()
        try:
            ix.scan_backward()
            retained, _peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(ix) == n
        assert ix._rev.typecode == "Q" and ix._rev.itemsize == 8       # not a list of ints
        assert ix._fwd.typecode == "Q"
        assert ix.memory_bytes == 8 * n
        # What stays allocated after the scan: the offsets (with array's
        # over-allocation) and little else. A list of ints would be ~36 B/line.
        assert retained < 8 * n * 1.25 + 200_000, retained


# -- scanning in batches ------------------------------------------------------------

def test_scan_in_batches_with_cancel_progress_and_resume(tmp_path: Path) -> None:
    rng = random.Random(7)
    data = random_log(rng, 5000, long_lines=False)
    p = tmp_path / "ctr.log"
    p.write_bytes(data)
    expected = reference_spans(data)
    with LineIndex(p, block_size=4096) as ix:
        reports: list[ScanProgress] = []
        cancel = threading.Event()

        def progress(pr: ScanProgress) -> None:
            reports.append(pr)
            cancel.set()

        assert ix.scan_backward(cancel=cancel, progress=progress, progress_every=0) is False
        assert not ix.complete and 0 < len(ix) < len(expected)
        # The tail is right already: the last lines are final while the scan goes on.
        k = len(ix)
        assert [ix.line_span(-i) for i in range(1, k + 1)] == expected[::-1][:k]
        assert reports and reports[0].total == len(data) and not reports[-1].done
        assert ix.scan_backward(until_lines=k + 100) is False and len(ix) >= k + 100
        reports.clear()
        assert ix.scan_backward(cancel=lambda: False, progress=reports.append) is True
        assert reports[-1] == ScanProgress(len(expected), len(data), len(data), True)
        assert spans_of(ix) == expected


# -- appending (follow) ---------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_append_in_random_chunks_matches_reference(tmp_path: Path, seed: int) -> None:
    rng = random.Random(100 + seed)
    data = random_log(rng, 800)
    p = tmp_path / "ctr.log"
    cut = rng.randrange(0, len(data))
    p.write_bytes(data[:cut])                  # may end in the middle of a record
    with LineIndex(p, block_size=4096) as ix:
        if rng.random() < 0.5:
            ix.scan_backward(until_lines=rng.randrange(1, 50))
        pos = cut
        while pos < len(data):
            step = rng.choice([1, 7, 50, 300, 5000, 100_000])
            with open(p, "ab") as f:
                f.write(data[pos:pos + step])
            pos += step
            ix.append()
            if rng.random() < 0.2:
                ix.scan_backward(until_lines=len(ix) + 10)
        ix.scan_backward()
        assert spans_of(ix) == reference_spans(data)
        assert ix.generation == 0


def test_append_while_scanning_in_another_thread(tmp_path: Path) -> None:
    rng = random.Random(3)
    data = random_log(rng, 20_000, long_lines=False)
    p = tmp_path / "ctr.log"
    half = len(data) // 2
    p.write_bytes(data[:half])
    with LineIndex(p, block_size=4096) as ix:
        t = threading.Thread(target=ix.scan_backward)
        t.start()
        pos = half
        while pos < len(data):
            with open(p, "ab") as f:
                f.write(data[pos:pos + 997])
            pos += 997
            ix.append()
        t.join(10)
        ix.scan_backward()
        assert spans_of(ix) == reference_spans(data)


def test_open_record_completed_later(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    full = rec(at(0), "stdout", "P", "first half ") + rec(at(1), "stdout", "F", "second half")
    p.write_bytes(full[:30])
    with LineIndex(p) as ix:
        ix.scan_backward()
        assert len(ix) == 1
        with open(p, "ab") as f:
            f.write(full[30:])
        assert ix.append() == 0                  # the P record's line just grew
        assert ix.read_line(0).text == "first half second half"  # type: ignore[union-attr]


def test_truncation_restarts_the_index(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    p.write_bytes(b"".join(rec(at(i), "stdout", "F", f"old {i}") for i in range(100)))
    with LineIndex(p) as ix:
        ix.scan_backward()
        assert ix.read_line(-1).text == "old 99"   # type: ignore[union-attr]
        with open(p, "r+b") as f:
            f.truncate(0)
        p.write_bytes(rec(at(200), "stdout", "F", "new 0"))
        assert ix.append() == 1 and ix.generation == 1
        assert len(ix) == 1 and ix.read_line(0).text == "new 0"  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["rename", "replace"])
def test_rotation_restarts_on_the_new_file(tmp_path: Path, how: str) -> None:
    p = tmp_path / "ctr.log"
    p.write_bytes(b"".join(rec(at(i), "stdout", "F", f"old {i}") for i in range(10)))
    with LineIndex(p) as ix:
        ix.scan_backward()
        new = b"".join(rec(at(100 + i), "stderr", "F", f"new {i}") for i in range(3))
        if how == "rename":
            os.rename(p, tmp_path / "ctr.log.1")
            assert ix.append() == 0 and ix.generation == 0     # no new file yet: keep the old
            p.write_bytes(new)
        else:
            (tmp_path / "tmp").write_bytes(new)
            os.replace(tmp_path / "tmp", p)
        assert ix.append() == 3 and ix.generation == 1
        assert [ix.read_line(i).text for i in range(len(ix))] == ["new 0", "new 1", "new 2"]  # type: ignore[union-attr]
        assert ix.complete


# -- times ------------------------------------------------------------------------------

def test_find_time(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    p.write_bytes(b"".join(rec(at(i * 2), "stdout", "F", str(i)) for i in range(1000)))
    with LineIndex(p) as ix:
        ix.scan_backward()
        assert ix.find_time(at(0)) == 0
        assert ix.find_time(at(501)) == 251
        assert ix.find_time(at(10_000)) == 1000


def test_cache_is_bounded(tmp_path: Path) -> None:
    p = tmp_path / "ctr.log"
    p.write_bytes(b"".join(rec(at(i), "stdout", "F", str(i)) for i in range(500)))
    with LineIndex(p, cache_size=50) as ix:
        ix.scan_backward()
        for i in range(500):
            assert ix.read_line(i).text == str(i)  # type: ignore[union-attr]
        assert len(ix._cache) == 50
