"""Log rows over a LineIndex: the byte pre-test never changes what matches."""
from __future__ import annotations

import random
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest

from engine.containers.logs import LineIndex
from engine.records import LogLine
from tests.tui.fixtures import T0, k8s_record, write_log
from tui.widgets.log_model import LineMatcher, LogModel, MergedModel, compile_pattern

WORDS = ["alpha", "beta", "gamma", "ERROR", "warn", "café", "naïve", "x" * 50, "\x1b[31mred\x1b[0m"]


def make_log(path: Path, n: int, seed: int = 1, words: list[str] = WORDS) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    lines = [(rnd.choice(["stdout", "stderr"]),
              " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 6)))) for _ in range(n)]
    write_log(path, lines)
    return lines


def indexed(path: Path) -> LineIndex:
    index = LineIndex(path, block_size=4096)
    index.scan_backward()
    assert index.complete
    return index


def brute(lines: list[tuple[str, str]], pattern: re.Pattern[str]) -> list[int]:
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", t) for _, t in lines]
    return [i for i, t in enumerate(plain) if pattern.search(t)]


@pytest.mark.parametrize("colour", [True, False])
def test_filter_matches_brute_force(log_file: Path, colour: bool) -> None:
    lines = make_log(log_file, 8000, words=WORDS if colour else WORDS[:-1])
    index = indexed(log_file)
    for text in ("error", "ERROR", "caf", r"\w+ïve", "gam+a beta", "red", "zzz", "^$"):
        pattern = compile_pattern(text)
        model = LogModel(index)
        model.set_filter(pattern)
        assert model.run_filter()
        assert list(model.matches) == brute(lines, pattern), text
        assert len(model) == len(model.matches)
        if model.matches:
            assert model.line_no(0) == model.matches[0]
            assert model.row_of(model.matches[-1]) == len(model) - 1


def test_smart_case() -> None:
    assert compile_pattern("error").search("ERROR")
    assert not compile_pattern("Error").search("ERROR")


def test_find_next_and_previous(log_file: Path) -> None:
    lines = make_log(log_file, 5000, seed=7)
    index = indexed(log_file)
    pattern = compile_pattern("gamma")
    want = brute(lines, pattern)
    m = LineMatcher(index, pattern)
    try:
        assert m.find(-1, forward=True) == want[0]
        assert m.find(want[0], forward=True) == want[1]
        assert m.find(len(lines), forward=False) == want[-1]
        assert m.find(want[-1], forward=False) == want[-2]
        assert m.find(want[-1], forward=True) is None
    finally:
        m.close()


def test_filter_extends_with_appended_lines(log_file: Path) -> None:
    write_log(log_file, [("stdout", "one"), ("stdout", "two ERROR")])
    index = indexed(log_file)
    model = LogModel(index)
    model.set_filter(compile_pattern("error"))
    assert model.run_filter() and list(model.matches) == [1]
    write_log(log_file, [("stderr", "three error"), ("stdout", "four")])
    assert index.append() == 2
    assert model.run_filter() and list(model.matches) == [1, 2]
    assert [ln.text for ln in model.iter_rows()] == ["two ERROR", "three error"]


def test_unfiltered_rows_are_index_lines(log_file: Path) -> None:
    write_log(log_file, [("stdout", "a"), ("stderr", "b")])
    model = LogModel(indexed(log_file))
    assert len(model) == 2 and model.line(1).stream == "stderr"  # type: ignore[union-attr]
    assert model.line_no(2) is None


def test_selective_filter_reads_bytes_not_lines(log_file: Path) -> None:
    # 200k plain lines, 20 hits: the byte pre-test keeps this well under a second.
    with open(log_file, "wb") as f:
        for i in range(200_000):
            word = "NEEDLE" if i % 10_000 == 0 else "hay"
            f.write(f"2024-05-01T12:00:00.{i % 1000000:06d}000Z stdout F line {i} {word}\n".encode())
    index = indexed(log_file)
    model = LogModel(index)
    model.set_filter(compile_pattern("needle"))
    t0 = time.monotonic()
    assert model.run_filter()
    assert len(model) == 20
    assert time.monotonic() - t0 < 1.5


def long_lines_log(path: Path) -> str:
    """A log with a 100k-character line, written both as one record and conmon-split."""
    tail = "y" * 60_000 + " NEEDLE at the end"
    long_text = "x" * 40_000 + tail
    with open(path, "wb") as f:
        f.write(k8s_record(T0, "stdout", "short"))
        f.write(k8s_record(T0, "stdout", long_text))             # one physical record
        for i in range(0, len(long_text) - 8192, 8192):             # conmon-style: P records
            f.write(k8s_record(T0, "stderr", long_text[i:i + 8192], "P"))
        rest = len(long_text) - (len(long_text) - 1) % 8192 - 1
        f.write(k8s_record(T0, "stderr", long_text[rest:]))
        f.write(k8s_record(T0, "stdout", "after"))
    return long_text


def test_filter_search_and_save_see_the_whole_of_a_100k_line(log_file: Path) -> None:
    long_text = long_lines_log(log_file)
    index = indexed(log_file)
    assert len(index) == 4
    shown = index.read_line(1)
    assert shown is not None and "NEEDLE" not in shown.text     # the view's copy is cut
    pattern = compile_pattern("needle at the end")
    model = LogModel(index)
    model.set_filter(pattern)
    assert model.run_filter() and list(model.matches) == [1, 2]
    assert [ln.text for ln in model.iter_rows()] == [long_text, long_text]   # save: whole
    m = LineMatcher(index, pattern)
    try:
        assert m.find(-1, forward=True) == 1 and m.find(1, forward=True) == 2
        assert m.find(4, forward=False) == 2
    finally:
        m.close()


def test_merged_logs_filter_search_and_save_whole_lines(log_file: Path, tmp_path: Path) -> None:
    long_text = long_lines_log(log_file)
    other = write_log(tmp_path / "other.log", [("stdout", "needle at the end, short")])
    model = MergedModel([indexed(log_file), indexed(other)])
    model.load()
    assert len(model) == 5
    pattern = compile_pattern("needle at the end")
    model.set_filter(pattern)
    assert model.run_filter() and len(model) == 3
    texts = [ln.text for ln in model.iter_rows()]
    assert texts.count(long_text) == 2 and "needle at the end, short" in texts
    model.set_filter(None)
    first = model.find(-1, pattern, forward=True)
    assert first is not None and model.whole(first).text in (long_text, "needle at the end, short")


def counting_reads(index: LineIndex) -> list[int]:
    """Count the whole-line reads of ``index`` (cut lines read back from disk)."""
    calls: list[int] = []
    read_span = index.read_span

    def counted(start: int, end: int) -> LogLine | None:
        calls.append(start)
        return read_span(start, end)

    index.read_span = counted        # type: ignore[method-assign]
    return calls


def test_merged_filter_reads_each_cut_line_once_and_not_in_set_filter(
        log_file: Path, tmp_path: Path) -> None:
    long_text = long_lines_log(log_file)
    index = indexed(log_file)
    model = MergedModel([index, indexed(write_log(tmp_path / "o.log", [("stdout", "o")]))])
    model.load()
    reads = counting_reads(index)
    pattern = compile_pattern("needle at the end")
    model.set_filter(pattern)              # on the UI thread: must not touch the disk
    assert reads == [] and len(model) == 0 and not model.filter_done
    assert model.run_filter() and model.filter_done and len(model) == 2
    assert len(reads) == 2                 # the two cut lines, once each
    reads.clear()
    with open(log_file, "ab") as f:        # one more cut line arrives
        f.write(k8s_record(T0 + timedelta(seconds=5), "stdout", long_text))
    assert model.poll() == 1
    assert len(reads) == 1 and len(model) == 3     # only the new row was tested
    assert [ln.text for ln in model.iter_rows()][-1] == long_text


def test_merged_filter_kept_right_as_rows_arrive_late_and_drop_off(tmp_path: Path) -> None:
    rnd = random.Random(7)
    paths = [tmp_path / f"{n}.log" for n in range(3)]
    for p in paths:
        p.touch()
    model = MergedModel([indexed(p) for p in paths], keep=300)
    model.load()
    pattern = compile_pattern("ERROR|warn")
    model.set_filter(pattern)
    assert model.run_filter()
    clock = [0.0, 0.0, 0.0]
    for _round in range(40):
        for n, p in enumerate(paths):
            if rnd.random() < 0.5:
                continue
            lines = [(rnd.choice(["stdout", "stderr"]), rnd.choice(WORDS))
                     for _ in range(rnd.randint(1, 30))]
            write_log(p, lines, start=T0 + timedelta(seconds=clock[n]))
            clock[n] += len(lines) * rnd.choice([0.3, 1.0, 2.5])   # logs run at their own pace
        model.poll()
        times = [item[0].time for item in model.rows]
        assert times == sorted(times) and len(model.rows) <= 300
        want = [i for i, item in enumerate(model.rows)
                if pattern.search(re.sub(r"\x1b\[[0-9;]*m", "", item[0].text))]
        assert model.matches == want
    assert model.dropped > 0


def test_merged_rows_arriving_while_the_filter_runs_are_tested(log_file: Path) -> None:
    write_log(log_file, [("stdout", f"{'ERROR' if i % 3 == 0 else 'ok'} {i}") for i in range(30)])
    model = MergedModel([indexed(log_file)])
    model.load()
    model.set_filter(compile_pattern("ERROR"))
    arrived = []

    def cancel() -> bool:              # the follow thread polls while the filter runs
        if not arrived:
            write_log(log_file, [("stdout", "ERROR late"), ("stdout", "ok late")],
                      start=T0 + timedelta(seconds=60))
            arrived.append(model.poll())
        return False

    assert model.run_filter(cancel=cancel) and arrived == [2]
    assert [model.rows[i][0].text for i in model.matches][-1] == "ERROR late"
    assert len(model) == 11


def test_jump_time_takes_a_time_of_day(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timedelta, timezone

    from engine import InvalidArgument
    from tui.widgets.log_model import parse_jump_time
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        now = datetime(2024, 5, 1, 20, 0, 0, tzinfo=timezone.utc)        # 22:00 in Berlin
        t = parse_jump_time("14:05", now)
        assert t == datetime(2024, 5, 1, 12, 5, 0, tzinfo=timezone.utc)   # 14:05 local, today
        assert parse_jump_time(" 9:30:15 ", now).astimezone(timezone.utc).hour == 7
        assert parse_jump_time("10m", now) == now - timedelta(minutes=10)
        assert parse_jump_time("2024-05-01T12:00:00Z", now) == datetime(2024, 5, 1, 12,
                                                                        tzinfo=timezone.utc)
        for bad in ("25:00", "12:61", "noon"):
            with pytest.raises(InvalidArgument):
                parse_jump_time(bad, now)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
