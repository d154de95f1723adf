"""The logs pane: status line, the log view, an input line, and the threads behind them.

One thread scans the log's index backwards (the tail shows after the first
screenful), one follows appends, one runs a filter or a search; the view
only ever draws what is on screen. Several containers' logs can be shown
merged by time.
"""
from __future__ import annotations

import bisect
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from engine.containers.logs import LineIndex

from .log_model import (LineMatcher, LogModel, MergedModel, compile_pattern, parse_jump_time,
                        visible_text)
from .log_view import LogView

FOLLOW_POLL = 0.2
FIRST_SCREEN = 500
# The pane keeps at most this many lines indexed (8 bytes each), the newest;
# a log that grows past twice as many is re-opened at its tail. Memory stays
# bounded however big the log and however long the app follows it.
MAX_LINES = 5_000_000
# Per-container name colours: no red or yellow, which mean stderr, ERROR and
# WARN in this pane.
MERGE_COLOURS = ("cyan", "magenta", "green", "dodger_blue1", "orchid", "spring_green2",
                 "slate_blue1", "bright_cyan")


def _cancelled() -> bool:
    return get_current_worker().is_cancelled


def _cancelled_yielding() -> bool:
    time.sleep(0.0005)          # let the UI thread have the GIL between blocks
    return get_current_worker().is_cancelled


class LogInput(Input):
    """The pane's one input line: search, filter, time or file name.

    ``answer(value)`` (None: cancelled) is called, not messaged, so the
    focus is back on the lines before the next key of a burst.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False, id="logs.input_cancel"),
    ]

    def __init__(self, answer: Callable[[str | None], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._answer = answer

    def action_cancel(self) -> None:
        self._answer(None)

    async def action_submit(self) -> None:
        self._answer(self.value)


PROMPTS = {
    "search": ("search (regex; smart case): ", "error|timeout"),
    "filter": ("show only lines matching (empty: all): ", "regex"),
    "time": ("jump to time: ", "14:05 (today), 2024-05-01T12:00:00, 10m (ago), unix seconds"),
    "save": ("save the shown lines to: ", "/tmp/logs.txt"),
}


class LogPane(Vertical):
    """Status line + LogView + input line; owns the log's worker threads."""

    class Grew(Message):
        """The follow or scan thread found more lines (posted at most once per paint)."""

    class FilterProgress(Message):
        """The filter thread tested more lines."""

    class Trim(Message):
        """The index passed its bound: re-open the log at its tail."""

    class Found(Message):
        def __init__(self, line_no: int | None, forward: bool) -> None:
            super().__init__()
            self.line_no = line_no
            self.forward = forward

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.key: str | None = None
        self.path: Path | None = None
        self.merged: MergedModel | None = None
        self.merged_keys: tuple[str, ...] = ()
        self._dropped = 0
        self._scan_done = False
        self.index: LineIndex | None = None
        self.model: LogModel | None = None
        self.mode = "search"
        self._lock = threading.Lock()
        self._painted = threading.Event()      # the first screenful is on screen
        self._appended = 0
        self._grew_posted = False
        self._filter_posted = False
        self._known = 0
        self._gen = 0
        self._scan_note = ""
        self._filter_note = ""
        self._search_note = ""

    def compose(self) -> ComposeResult:
        yield Static("", classes="log-status", markup=False)
        yield LogView(id=f"{self.id}-lines" if self.id else None, ask=self.ask)
        yield LogInput(self._answered, classes="log-input", compact=True)

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def on_mount(self) -> None:
        self.view.highlights = getattr(self.app, "config").highlights \
            if hasattr(self.app, "config") else ()

    # -- which log -----------------------------------------------------------------------
    def show(self, kind: str, key: str | None, record: Any = None) -> None:
        if kind != "container" or key is None:
            self.pause()
            return
        if self.merged is not None and key in self.merged_keys:
            if not self._worker_running("log-follow"):
                self._start_merged_follow()
            if self.merged.filter is not None and not self.merged.filter_done \
                    and not self._worker_running("log-filter"):
                self._run_filter()
            return
        if key == self.key and self.index is not None:
            if not self._worker_running("log-follow"):
                self._start_follow()
            return
        self.open_log(key)

    def open_log(self, key: str) -> None:
        self.open_path(log_path_of(self.app, key), key)

    def open_path(self, path: Path, key: str) -> None:
        """Show the k8s-file log at ``path`` (``key`` names it, e.g. a container id)."""
        self._close()
        self.key = key
        self.path = path
        self._scan_done = False
        self.index = LineIndex(path)
        self.model = LogModel(self.index)
        self._known = 0
        self._appended = 0
        self._gen = self.index.generation
        self._search_note = self._filter_note = ""
        self.view.search = None
        self.view.set_model(self.model)
        self._scan_note = "indexing…"
        self._status()
        self._start_scan()
        self._start_follow()

    def _close(self) -> None:
        self.pause()
        if self.index is not None:
            self.index.close()
            self.index = None
        if self.merged is not None:
            for index in self.merged.indexes:
                index.close()
            self.merged = None
            self.merged_keys = ()
            self.view.sources = []

    # -- several logs at once -------------------------------------------------------------
    def open_merged(self, logs: list[tuple[str, str, Path]]) -> None:
        """Show several logs merged by time: ``(key, name, path)`` each, coloured per name."""
        self._close()
        indexes = [LineIndex(path) for _key, _name, path in logs]
        self.merged = MergedModel(indexes)
        self.merged_keys = tuple(key for key, _name, _path in logs)
        self.key = None
        self._dropped = 0
        self._search_note = self._filter_note = ""
        self.view.search = None
        self.view.sources = [(name, MERGE_COLOURS[i % len(MERGE_COLOURS)])
                             for i, (_key, name, _path) in enumerate(logs)]
        self.view.set_model(self.merged)
        self._scan_note = "merged: " + ", ".join(name for _k, name, _p in logs)
        self._status()
        self._start_merged_follow()

    def _start_merged_follow(self) -> None:
        merged = self.merged
        assert merged is not None

        def follow() -> None:
            # One thread both loads and follows: no line is taken twice.
            worker = get_current_worker()
            if not merged.loaded:
                merged.load(cancel=_cancelled)
                self._post_grew()
            while not worker.is_cancelled:
                if merged.poll():
                    self._post_grew()
                time.sleep(FOLLOW_POLL)

        self._call(follow, "log-follow", "Following the logs")

    def _merged_grew(self, merged: MergedModel) -> None:
        view = self.view
        gone, self._dropped = merged.dropped - self._dropped, merged.dropped
        if gone and view.current_match is not None:
            view.current_match -= gone
        view.invalidate()
        view.update_size(shift=-gone if merged.filter is None else 0)
        self._status()

    def pause(self) -> None:
        """Stop the threads (the tab is hidden or another container is shown)."""
        for w in self.app.workers:
            if w.group in (self._group("log-scan"), self._group("log-follow"),
                           self._group("log-filter"), self._group("log-find")):
                w.cancel()

    def on_unmount(self) -> None:
        self.pause()
        if self.index is not None:
            self.index.close()

    def _group(self, name: str) -> str:
        return f"{name}-{id(self)}"

    def _worker_running(self, name: str) -> bool:
        return any(w.group == self._group(name) and not w.is_finished for w in self.app.workers)

    def _call(self, fn: Any, name: str, title: str) -> None:
        self.app.engine_call(fn, group=self._group(name), exclusive=True,  # type: ignore[attr-defined]
                             title=title)

    # -- threads ---------------------------------------------------------------------------
    def _start_scan(self) -> None:
        index = self.index
        assert index is not None

        painted = self._painted
        painted.clear()

        def scan() -> None:
            # The first screenful first, so the tail shows at once; the rest
            # only once that is on screen, and giving way to the UI between
            # blocks (the scan is Python work: it holds the GIL while it runs).
            index.scan_backward(cancel=_cancelled, until_lines=FIRST_SCREEN)
            self._post_grew()
            painted.wait(1.0)
            index.scan_backward(cancel=_cancelled_yielding, until_lines=MAX_LINES,
                                progress=lambda _p: self._post_grew())
            if not get_current_worker().is_cancelled:
                self._scan_done = True      # whole file, or the newest MAX_LINES
            self._post_grew()

        self._call(scan, "log-scan", "Reading the log")

    def _start_follow(self) -> None:
        index = self.index
        assert index is not None

        def follow() -> None:
            worker = get_current_worker()
            while not worker.is_cancelled:
                with self._lock:
                    added = index.append()
                    self._appended += added
                if added:
                    if len(index) > 2 * MAX_LINES:
                        self.post_message(self.Trim())
                        return
                    model = self.model
                    if model is not None and model.filter is not None and model.filter_done:
                        model.run_filter(cancel=_cancelled)
                    self._post_grew()
                time.sleep(FOLLOW_POLL)

        self._call(follow, "log-follow", "Following the log")

    def _post_grew(self) -> None:
        if not self._grew_posted:
            self._grew_posted = True
            self.post_message(self.Grew())

    def on_log_pane_trim(self, event: Trim) -> None:
        event.stop()
        if self.key is None or self.model is None:
            return
        search = self.view.search.pattern if self.view.search else ""
        flt = self.model.filter.pattern if self.model.filter else ""
        self.open_path(self.path, self.key)
        if flt:
            self.set_filter(flt)
        if search:
            self.view.search = compile_pattern(search)

    def on_log_pane_grew(self, event: Grew) -> None:
        event.stop()
        self._grew_posted = False
        if not self._painted.is_set():
            self.call_after_refresh(self._painted.set)
        if self.merged is not None:
            self._merged_grew(self.merged)
            return
        index, view = self.index, self.view
        if index is None:
            return
        if index.generation != self._gen:       # rotated or truncated: start over
            self._gen = index.generation
            self._known = 0
            with self._lock:
                self._appended = 0
            if self.model is not None and self.model.filter is not None:
                self.model.set_filter(self.model.filter)
                self._run_filter()
            view.invalidate()
        with self._lock:
            n = len(index)
            appended, self._appended = self._appended, 0
        front = n - self._known - appended if self._known else 0
        self._known = n
        if front > 0 and view.current_match is not None:
            view.current_match += front
        filtering = self.model is not None and self.model.filter is not None
        view.update_size(shift=0 if filtering else max(0, front))
        if front > 0 and not view.following:
            view.invalidate()
        prog = index.progress()
        if prog.done:
            self._scan_note = ""
        elif self._scan_done:
            self._scan_note = f"the newest {len(index):,} (older lines not loaded)"
        else:
            self._scan_note = f"indexing {100 * prog.scanned // max(1, prog.total)}%"
        if self._scan_done and filtering and self.model is not None \
                and not self.model.filter_done and not self._worker_running("log-filter"):
            self._run_filter()
        self._status()

    # -- filter ------------------------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        model: Any = self.merged or self.model
        if model is None:
            return
        if not text:
            model.set_filter(None)
            self._filter_note = ""
        else:
            try:
                pattern = compile_pattern(text)
            except re.error as err:
                self.app.notify(f"bad regex: {err}", severity="error")
                return
            model.set_filter(pattern)
            self._filter_note = f"filter /{text}/"
            self._run_filter()
        self.view.following = True
        self.view.invalidate()
        self.view.update_size()
        self._status()

    def _run_filter(self) -> None:
        merged = self.merged
        if merged is not None:
            # Off the UI thread too: cut lines are tested whole, read from disk.
            def run_merged() -> None:
                merged.run_filter(cancel=_cancelled, progress=lambda _d, _t: self._post_filter())
                self._post_filter()

            self._call(run_merged, "log-filter", "Filtering the logs")
            return
        model, index = self.model, self.index
        if model is None or index is None:
            return
        if not self._scan_done:
            # Line numbers settle once the backward scan is over.
            self._filter_note = f"filter /{model.filter.pattern if model.filter else ''}/ " \
                                "(waiting for the index)"
            return

        def run() -> None:
            model.run_filter(cancel=_cancelled, progress=lambda _d, _t: self._post_filter())
            self._post_filter()

        self._call(run, "log-filter", "Filtering the log")

    def _post_filter(self) -> None:
        if not self._filter_posted:
            self._filter_posted = True
            self.post_message(self.FilterProgress())

    def on_log_pane_filter_progress(self, event: FilterProgress) -> None:
        event.stop()
        self._filter_posted = False
        merged = self.merged
        if merged is not None:
            if merged.filter is not None:
                more = "" if merged.filter_done else " …"
                self._filter_note = f"filter /{merged.filter.pattern}/{more}"
                self.view.invalidate()
                self.view.update_size()
                self._status()
            return
        model = self.model
        if model is None or model.filter is None:
            return
        total = len(model.index)
        pct = "" if model.filter_done else f", {100 * model.filter_scanned // max(1, total)}%"
        self._filter_note = f"filter /{model.filter.pattern}/ {len(model):,} of {total:,}{pct}"
        self.view.invalidate()
        self.view.update_size()
        self._status()

    # -- search ------------------------------------------------------------------------------
    def set_search(self, text: str) -> None:
        view = self.view
        if not text:
            view.search = None
            view.current_match = None
            self._search_note = ""
            view.invalidate()
            self._status()
            return
        try:
            view.search = compile_pattern(text)
        except re.error as err:
            self.app.notify(f"bad regex: {err}", severity="error")
            return
        view.invalidate()
        start = view.bottom_line
        self._find(start + 1 if start is not None else 0, forward=False)

    def _find(self, start: int, *, forward: bool) -> None:
        merged, pattern = self.merged, self.view.search
        if merged is not None and pattern is not None:
            def run_merged() -> None:
                row = merged.find(start, pattern, forward=forward)
                while row is not None and merged.filter is not None and \
                        not merged.filter.search(visible_text(merged.whole(row))):
                    row = merged.find(row, pattern, forward=forward)
                self.post_message(self.Found(row, forward))
            self._call(run_merged, "log-find", "Searching the logs")
            return
        index, model = self.index, self.model
        if index is None or pattern is None or model is None:
            return
        self._search_note = f"searching /{pattern.pattern}/…"
        self._status()

        def run() -> None:
            matcher = LineMatcher(index, pattern)
            try:
                line = start
                while True:
                    line = matcher.find(line, forward=forward, cancel=_cancelled)
                    # With a filter on, only lines the filter shows count.
                    if line is None or model.filter is None or \
                            model.filter.search(_plain(index, line)):
                        break
                self.post_message(self.Found(line, forward))
            finally:
                matcher.close()

        self._call(run, "log-find", "Searching the log")

    def on_log_pane_found(self, event: Found) -> None:
        event.stop()
        view = self.view
        pattern = view.search.pattern if view.search else ""
        if event.line_no is None:
            where = "below" if event.forward else "above"
            self._search_note = f"/{pattern}/ no more matches {where}"
            self.app.bell()
        else:
            view.current_match = event.line_no
            view.show_line(event.line_no)
            self._search_note = f"/{pattern}/ line {event.line_no + 1:,}"
        self._status()

    @on(LogView.NextMatch)
    def _next(self, event: LogView.NextMatch) -> None:
        event.stop()
        view = self.view
        if view.search is None:
            self.ask("search")
            return
        start = view.current_match
        if start is None:
            start = (view.top_line or 0) - 1 if event.forward else (view.bottom_line or 0) + 1
        self._find(start, forward=event.forward)

    @on(LogView.Clear)
    def _clear(self, event: LogView.Clear) -> None:
        event.stop()
        model: Any = self.merged or self.model
        if self.view.search is not None:
            self.set_search("")
        elif model is not None and model.filter is not None:
            self.set_filter("")

    # -- time and save -----------------------------------------------------------------------
    def jump_to_time(self, text: str) -> None:
        try:
            when = parse_jump_time(text)
        except Exception as err:
            self.app.notify(str(err), severity="error")
            return
        if self.merged is not None:
            rows = self.merged.rows
            i = bisect.bisect_left(rows, when, key=lambda item: item[0].time)
            if i >= len(rows):
                self.view.action_bottom()
            else:
                self.view.show_line(i)
            return
        index = self.index
        if index is None:
            return

        def run() -> int:
            return index.find_time(when)

        def done(line_no: int) -> None:
            if line_no >= len(index):
                self.app.notify("no lines at or after that time", severity="warning")
                self.view.action_bottom()
            else:
                self.view.show_line(line_no)

        if not self._scan_done:
            self.app.notify("the log is still being indexed; jumping within what is indexed",
                            timeout=3)
        self.app.engine_call(run, done=done, title="Finding the time")  # type: ignore[attr-defined]

    def save(self, path_text: str) -> None:
        model: Any = self.merged or self.model
        if model is None:
            return
        path = Path(path_text).expanduser()
        stamps = self.view.timestamps

        def run() -> int:
            n = 0
            with open(path, "w", encoding="utf-8") as f:
                for line in model.iter_rows(cancel=_cancelled):
                    if stamps:
                        f.write(line.time.isoformat() + " ")
                    f.write(line.text + "\n")
                    n += 1
            return n

        def done(n: int) -> None:
            self.app.notify(f"{n:,} lines written to {path}", title="saved")

        self.app.engine_call(run, done=done, title=f"Saving to {path}")  # type: ignore[attr-defined]

    # -- the input line ----------------------------------------------------------------------
    @on(LogView.Ask)
    def _ask(self, event: LogView.Ask) -> None:
        event.stop()
        self.ask(event.mode)

    def ask(self, mode: str) -> None:
        self.mode = mode
        inp = self.query_one(LogInput)
        prompt, placeholder = PROMPTS[mode]
        inp.placeholder = prompt + placeholder
        if mode == "save":
            inp.value = f"./{self.key[:12] if self.key else 'container'}.log"
        elif mode == "filter" and (self.merged or self.model) is not None \
                and (self.merged or self.model).filter is not None:  # type: ignore[union-attr]
            inp.value = (self.merged or self.model).filter.pattern  # type: ignore[union-attr]
        else:
            inp.value = ""
        self.add_class("-asking")
        inp.focus()

    def _answered(self, answer: str | None) -> None:
        """The input line was submitted (``answer``) or cancelled (None)."""
        self._close_input()
        value = (answer or "").strip()
        if answer is None:
            return
        if self.mode == "search":
            self.set_search(value)
        elif self.mode == "filter":
            self.set_filter(value)
        elif self.mode == "time" and value:
            self.jump_to_time(value)
        elif self.mode == "save" and value:
            self.save(value)

    def _close_input(self) -> None:
        self.remove_class("-asking")
        self.view.focus()

    # -- status line -------------------------------------------------------------------------
    @on(LogView.Moved)
    def _moved(self, event: LogView.Moved) -> None:
        event.stop()
        self._status()

    def _status(self) -> None:
        view = self.view
        n = len(self.index) if self.index is not None else \
            len(self.merged.rows) if self.merged is not None else 0
        parts = ["● following" if view.following else "‖ paused (G: end)"]
        parts.append(f"{n:,} lines")
        for note in (self._scan_note, self._filter_note, self._search_note):
            if note:
                parts.append(note)
        self.query_one(".log-status", Static).update(Text("  ".join(parts)))


def _plain(index: LineIndex, line_no: int) -> str:
    line = index.read_line(line_no)
    return line.text if line is not None else ""


def log_path_of(app: Any, key: str) -> Path:
    return Path(app.engine.container_files(key).log)


__all__ = ["LogPane", "LogView"]
