"""The logs pane on real k8s-file logs: tail at once, follow, search, filter, save."""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from textual.app import ComposeResult
from textual.screen import Screen

from engine import Engine
from tests.tui.fixtures import k8s_record, run, T0, wait_for, write_log
from tui.app import PortsideApp
from tui.config import Config, builtin_highlights
from tui.widgets.log_pane import LogPane
from tui.widgets.log_view import LogView


class LogApp(PortsideApp):
    """Only the logs pane, on the real app plumbing (workers, error routing)."""

    def get_default_screen(self) -> Screen[Any]:
        return Screen()

    def compose(self) -> ComposeResult:
        yield LogPane(id="logs")


def make(engine: Engine) -> LogApp:
    return LogApp(engine, Config(highlights=builtin_highlights()))


def text_at(view: LogView, y: int) -> str:
    return view.render_line(y).text


def screen_text(view: LogView) -> str:
    return "\n".join(text_at(view, y) for y in range(view.size.height))


def big_log(path: Path, n: int) -> None:
    with open(path, "wb") as f:
        for i in range(n):
            stream = "stderr" if i % 7 == 0 else "stdout"
            f.write(k8s_record(T0, stream, f"line {i} " + ("ERROR boom" if i % 1000 == 0 else "ok")))


def test_opens_at_the_tail_and_follows(engine: Engine, log_file: Path) -> None:
    big_log(log_file, 200_000)

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            view = pane.view
            t0 = time.monotonic()
            pane.open_path(log_file, "c1")
            await wait_for(pilot, lambda: "line 199999 ok" in screen_text(view))
            assert time.monotonic() - t0 < 2.0
            assert view.following
            await wait_for(pilot, lambda: pane.index is not None and pane.index.complete)
            assert view.rows == 200_000 and "line 199999 ok" in screen_text(view)
            write_log(log_file, [("stdout", "fresh line")])
            await wait_for(pilot, lambda: "fresh line" in screen_text(view))
            # scrolling up pauses following; new lines do not move the view
            view.focus()
            await pilot.press("g")
            assert not view.following and "line 0 " in text_at(view, 0)
            write_log(log_file, [("stdout", "while paused")])
            await wait_for(pilot, lambda: view.rows == 200_002)
            assert "line 0 " in text_at(view, 0)
            await pilot.press("G")
            assert view.following
            await wait_for(pilot, lambda: "while paused" in screen_text(view))
            # End resumes following too, also while lines keep arriving
            for up, end in (("g", "end"), ("k", "end"), ("home", "G")):
                await pilot.press(up)
                assert not view.following
                write_log(log_file, [("stdout", f"after {up}")])
                await pilot.press(end)
                assert view.following, (up, end)
                await wait_for(pilot, lambda: f"after {up}" in screen_text(view))
                assert view.following
    run(go)


def test_scroll_position_holds_while_the_index_grows(engine: Engine, log_file: Path) -> None:
    big_log(log_file, 300_000)

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            view = pane.view
            pane.open_path(log_file, "c1")
            await wait_for(pilot, lambda: "line 299999 ok" in screen_text(view))
            view.focus()
            await pilot.press("k", "k", "k")
            first = text_at(view, 0)
            await wait_for(pilot, lambda: pane.index is not None and pane.index.complete)
            await pilot.pause(0.1)
            assert text_at(view, 0) == first        # the scan added lines above, not here
    run(go)


def test_search_next_previous_and_filter(engine: Engine, log_file: Path) -> None:
    big_log(log_file, 5000)

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            view = pane.view
            pane.open_path(log_file, "c1")
            await wait_for(pilot, lambda: pane.index is not None and pane.index.complete)
            view.focus()
            await pilot.press("slash", *"error", "enter")
            await wait_for(pilot, lambda: view.current_match == 4000)
            await pilot.press("N")
            await wait_for(pilot, lambda: view.current_match == 3000)
            await pilot.press("n")
            await wait_for(pilot, lambda: view.current_match == 4000)
            assert "line 4000 ERROR boom" in screen_text(view)
            await pilot.press("escape")                      # drops the search
            assert view.search is None
            await pilot.press("ampersand", *"boom", "enter")
            await wait_for(pilot, lambda: pane.model is not None and pane.model.filter_done)
            await pilot.pause(0.1)
            assert view.rows == 5
            assert text_at(view, 0).strip().endswith("line 0 ERROR boom")
            assert text_at(view, 4).strip().endswith("line 4000 ERROR boom")
            write_log(log_file, [("stderr", "late ERROR boom"), ("stdout", "quiet")])
            await wait_for(pilot, lambda: view.rows == 6)
            await pilot.press("escape")                      # drops the filter
            await wait_for(pilot, lambda: view.rows == 5002)
    run(go)


def test_toggles_long_lines_and_save(engine: Engine, log_file: Path, tmp_path: Path) -> None:
    write_log(log_file, [("stdout", "short"), ("stderr", "x" * 100_000), ("stdout", "\x1b[31mred\x1b[0m")])

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            view = pane.view
            pane.open_path(log_file, "c1")
            await wait_for(pilot, lambda: "red" in screen_text(view))
            view.focus()
            t0 = time.monotonic()
            await pilot.press("w")                    # wrap: the long line fills the view
            await pilot.pause(0.1)
            assert "red" in screen_text(view)
            await pilot.press("w", "t")              # timestamps on
            await pilot.pause(0.1)
            assert "05-01 " in screen_text(view)
            assert time.monotonic() - t0 < 2.0
            out = tmp_path / "saved.txt"
            await pilot.press("ctrl+s")
            pane.query_one("LogInput").value = str(out)  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(pilot, lambda: out.exists() and out.read_text().count("\n") == 3)
            assert "2024-05-01T12:00:00" in out.read_text()
            assert "x" * 100_000 + "\n" in out.read_text()     # the whole line, not the view's
    run(go)


def test_index_stays_bounded(engine: Engine, log_file: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.widgets.log_pane as log_pane
    monkeypatch.setattr(log_pane, "MAX_LINES", 1000)
    pad = "x" * 2000                # 2 kB lines: the file spans several scan blocks
    write_log(log_file, [("stdout", f"old {i} {pad}") for i in range(1500)])

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            pane.open_path(log_file, "c1")
            await wait_for(pilot, lambda: pane._scan_done)
            first = pane.index
            assert first is not None and 1000 <= len(first) < 1500
            assert "newest" in str(pane.query_one(".log-status").render())
            write_log(log_file, [("stdout", f"new {i} {pad}") for i in range(1200)])
            await wait_for(pilot, lambda: pane.index is not first and pane._scan_done)
            assert len(pane.index) < 2000                           # type: ignore[arg-type]
            await wait_for(pilot, lambda: "new 1199" in screen_text(pane.view))
    run(go)


def test_merged_logs_in_time_order_with_names(engine: Engine, tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.log", [("stdout", f"a{i}") for i in range(0, 10, 2)])
    # b's lines fall between a's: one second later each
    b = write_log(tmp_path / "b.log", [("stderr", f"b{i}") for i in range(1, 10, 2)],
                  start=T0 + timedelta(seconds=0.5))

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            pane.open_merged([("ka", "web", a), ("kb", "db", b)])
            view = pane.view
            await wait_for(pilot, lambda: view.rows == 10)
            texts = [text_at(view, y).split()[-1] for y in range(10)]
            assert texts == ["a0", "b1", "a2", "b3", "a4", "b5", "a6", "b7", "a8", "b9"]
            assert text_at(view, 1).startswith("▌db b1")
            write_log(a, [("stdout", "a-late")], start=T0 + timedelta(seconds=60))
            await wait_for(pilot, lambda: view.rows == 11)
            assert "a-late" in screen_text(view)
            pane.set_filter("b")
            await wait_for(pilot, lambda: view.rows == 5)
            pane.show("container", "kb")                 # one of the merged: stays merged
            assert pane.merged is not None
            pane.show("container", "other")              # any other: back to one log
            assert pane.merged is None
    run(go)


def test_merged_filter_reads_cut_lines_off_the_ui_thread(engine: Engine, tmp_path: Path) -> None:
    import threading
    long_text = "x" * 100_000 + " needle"
    a = tmp_path / "a.log"
    a.write_bytes(k8s_record(T0, "stdout", long_text) + k8s_record(T0, "stdout", "short"))
    b = write_log(tmp_path / "b.log", [("stdout", "needle b")], start=T0 + timedelta(seconds=1))

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            pane.open_merged([("ka", "web", a), ("kb", "db", b)])
            await wait_for(pilot, lambda: pane.view.rows == 3)
            assert pane.merged is not None
            on_ui: list[str] = []
            for index in pane.merged.indexes:
                def counted(start: int, end: int, _read: Any = index.read_span) -> Any:
                    if threading.current_thread() is threading.main_thread():
                        on_ui.append("read")
                    return _read(start, end)
                index.read_span = counted       # type: ignore[method-assign]
            pane.set_filter("needle")
            await wait_for(pilot, lambda: pane.view.rows == 2 and pane.merged.filter_done)
            assert on_ui == []
            assert "filter /needle/" in str(pane.query_one(".log-status").render())
    run(go)


def test_jump_to_time(engine: Engine, log_file: Path) -> None:
    write_log(log_file, [("stdout", f"second {i}") for i in range(600)])   # T0 + i seconds

    async def go() -> None:
        app = make(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(LogPane)
            pane.open_path(log_file, "c1")
            await wait_for(pilot, lambda: pane._scan_done)
            pane.view.focus()
            await pilot.press("at")
            pane.query_one("LogInput").value = "2024-05-01T12:05:00Z"   # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(pilot, lambda: "second 300" in screen_text(pane.view))
            assert not pane.view.following
    run(go)
