"""Log rows over a LineIndex: the byte pre-test never changes what matches."""
from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from engine.containers.logs import LineIndex
from tests.tui.fixtures import write_log
from tui.widgets.log_model import LineMatcher, LogModel, compile_pattern

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
