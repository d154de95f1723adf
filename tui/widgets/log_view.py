"""The logs pane: a virtual view over a container's log, however big.

``LogView`` is a Line-API ``ScrollView``: its height is the number of rows
and ``render_line`` draws only the rows on screen, reading each line's text
on demand through the engine's ``LineIndex`` (offsets in 8 bytes a line,
a bounded decoded-line cache). ``LogPane`` around it owns the worker
threads: one scans the index backwards (the tail shows after the first
screenful), one follows appends, one runs a filter or a search.
"""
from __future__ import annotations

import bisect
import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from engine.containers.logs import LineIndex, parse_since


from ..config import HighlightRule
from .log_model import LineMatcher, LogModel, MergedModel, compile_pattern

FOLLOW_POLL = 0.2
FIRST_SCREEN = 500
STRIP_CACHE = 200
# The pane keeps at most this many lines indexed (8 bytes each), the newest;
# a log that grows past twice as many is re-opened at its tail. Memory stays
# bounded however big the log and however long the app follows it.
MAX_LINES = 5_000_000
MERGE_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan",
                 "bright_magenta")
MAX_WIDTH = 20_000


def _cancelled() -> bool:
    return get_current_worker().is_cancelled


def _cancelled_yielding() -> bool:
    time.sleep(0.0005)          # let the UI thread have the GIL between blocks
    return get_current_worker().is_cancelled


class LogView(ScrollView, can_focus=True):
    """Rows of a LogModel, drawn on demand."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False, id="logs.down"),
        Binding("k", "scroll_up", "Up", show=False, id="logs.up"),
        Binding("h", "scroll_left", "Left", show=False, id="logs.left"),
        Binding("l", "scroll_right", "Right", show=False, id="logs.right"),
        Binding("g", "top", "Top", show=False, id="logs.top"),
        Binding("G", "bottom", "End", show=False, id="logs.bottom"),
        Binding("ctrl+d", "page_down", "Page down", show=False, id="logs.page_down"),
        Binding("ctrl+u", "page_up", "Page up", show=False, id="logs.page_up"),
        Binding("slash", "ask('search')", "Search", id="logs.search"),
        Binding("n", "next_match(True)", "Next", show=False, id="logs.next"),
        Binding("N", "next_match(False)", "Prev", show=False, id="logs.prev"),
        Binding("ampersand", "ask('filter')", "Filter", id="logs.filter"),
        Binding("F", "toggle_follow", "Follow", id="logs.follow"),
        Binding("t", "toggle_timestamps", "Times", id="logs.timestamps"),
        Binding("w", "toggle_wrap", "Wrap", id="logs.wrap"),
        Binding("at", "ask('time')", "Jump to time", show=False, id="logs.jump_time"),
        Binding("ctrl+s", "ask('save')", "Save", show=False, id="logs.save"),
        Binding("escape", "clear", "Clear search", show=False, id="logs.clear"),
    ]

    class Ask(Message):
        """Open the pane's input line for a search, filter, time or file name."""

        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    class Moved(Message):
        """Follow state or position changed (for the status line)."""

    class Clear(Message):
        """esc: drop the search, then the filter."""

    class NextMatch(Message):
        def __init__(self, forward: bool) -> None:
            super().__init__()
            self.forward = forward

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model: LogModel | MergedModel | None = None
        self.following = True
        self.timestamps = False
        self.wrap = False
        self.search: re.Pattern[str] | None = None
        self.current_match: int | None = None        # index line number
        self.highlights: tuple[HighlightRule, ...] = ()
        self.sources: list[tuple[str, str]] = []     # merged logs: (name, colour) each
        # Small on purpose: a few screens. Every Strip carries its own caches
        # (a dozen GC-tracked objects), and long-lived ones end up in the
        # oldest GC generation, whose collections stall the UI.
        self._strips: LRUCache[int, Strip] = LRUCache(STRIP_CACHE)
        self._wrapped: tuple[Any, list[Strip]] | None = None
        self._widest = 0
        self._follow_guard = False

    # -- model -------------------------------------------------------------------------
    def set_model(self, model: LogModel | MergedModel | None) -> None:
        self.model = model
        self.current_match = None
        self.following = True
        self.invalidate()
        self.update_size()

    def invalidate(self) -> None:
        self._strips.clear()
        self._wrapped = None
        self.refresh()

    @property
    def rows(self) -> int:
        return len(self.model) if self.model is not None else 0

    def update_size(self, shift: int = 0) -> None:
        """The row count changed: ``shift`` rows appeared above the view."""
        rows = self.rows
        room = self.scrollable_content_region.width
        width = room if self.wrap or self._widest <= room else self._widest + 1
        self._guarded(lambda: setattr(self, "virtual_size", Size(width, rows)))
        if shift:
            # Rows renumbered: lines appeared above (the backward scan).
            self._strips.clear()
            if not self.following:
                self._guarded(lambda: self.scroll_to(y=self.scroll_y + shift, animate=False,
                                                     immediate=True))
        if self.following:
            self._guarded(self._to_end)
        self._wrapped = None
        self.refresh()

    def _guarded(self, fn: Any) -> None:
        # Scrolls we make ourselves must not count as "the user scrolled up".
        self._follow_guard = True
        try:
            fn()
        finally:
            self._follow_guard = False

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._wrapped = None
        if not self._follow_guard:
            at_end = new >= self.max_scroll_y
            if at_end != self.following:
                self.following = at_end
                self.post_message(self.Moved())

    def on_resize(self) -> None:
        self._strips.clear()
        self.update_size()

    # -- drawing -----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.rich_style
        if self.wrap:
            rows = self._wrapped_rows(width)
            return rows[y] if y < len(rows) else Strip.blank(width, style)
        row = int(self.scroll_y) + y
        strip = self._line_strip(row, None)
        if strip is None:
            return Strip.blank(width, style)
        x = int(self.scroll_x)
        return strip.crop_extend(x, x + width, style)

    def _line_text(self, row: int) -> Text | None:
        model = self.model
        if model is None:
            return None
        entry = model.entry(row)
        if entry is None:
            return None
        line = entry.line
        if line is None:        # not a k8s-file record: show the raw bytes
            return Text(entry.raw, style="dim italic", no_wrap=True)
        source = self.sources[entry.source] if 0 <= entry.source < len(self.sources) else None
        return self._decorate(line.text, line.stream, line.time, entry.line_no, source)

    def _decorate(self, text: str, stream: str, t: datetime, line_no: int,
                  source: tuple[str, str] | None = None) -> Text:
        body = Text.from_ansi(text, no_wrap=True) if "\x1b" in text else Text(text, no_wrap=True)
        if "\t" in text:
            body.expand_tabs(8)
        plain = body.plain
        for rule in reversed(self.highlights):      # user rules last: they win
            for m in rule.pattern.finditer(plain):
                if m.end() > m.start():
                    body.stylize(rule.style, m.start(), m.end())
        if self.search is not None:
            for m in self.search.finditer(plain):
                if m.end() > m.start():
                    body.stylize("reverse", m.start(), m.end())
        out = Text(no_wrap=True, end="")
        if stream == "stderr":
            out.append("▌", style="red")
        else:
            out.append("▏", style="dim")
        if source is not None:          # merged logs: whose line this is
            name, colour = source
            out.append(f"{name} ", style=f"bold {colour}")
        if self.timestamps:
            local = t.astimezone()
            out.append(local.strftime("%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d} ",
                       style="dim")
        out.append_text(body)
        if line_no == self.current_match:
            out.stylize("on #444444" if self.app.current_theme.dark else "on #d0d0ff")
        return out

    def _line_strip(self, row: int, width: int | None) -> Strip | None:
        cached = self._strips.get(row)
        if cached is not None:
            return cached
        text = self._line_text(row)
        if text is None:
            return None
        text.style = self.rich_style       # under the spans: colours and highlights win
        length = min(text.cell_len, MAX_WIDTH)
        if length > self._widest:
            self._widest = length
            self.call_after_refresh(self.update_size)
        strip = Strip(list(text.render(self.app.console)), length)
        self._strips[row] = strip
        return strip

    def _wrapped_rows(self, width: int) -> list[Strip]:
        """Screen rows in wrap mode; the last line is at the bottom when at the end."""
        key = (int(self.scroll_y), width, self.size.height, self.rows)
        if self._wrapped is not None and self._wrapped[0] == key:
            return self._wrapped[1]
        height = self.size.height
        console = self.app.console
        style = self.rich_style

        def wrapped(row: int) -> list[Strip]:
            text = self._line_text(row)
            if text is None:
                return []
            text.style = style
            text.no_wrap = False
            lines = text.wrap(console, max(1, width))
            return [Strip(list(ln.render(console)), cell_len(ln.plain)).crop_extend(0, width, style)
                    for ln in lines] or [Strip.blank(width, style)]

        out: list[Strip] = []
        if self.following or self.scroll_y >= self.max_scroll_y:
            row = self.rows - 1
            while row >= 0 and len(out) < height:
                out[:0] = wrapped(row)
                row -= 1
            out = out[-height:]
        else:
            row = int(self.scroll_y)
            while row < self.rows and len(out) < height:
                out.extend(wrapped(row))
                row += 1
            out = out[:height]
        self._wrapped = (key, out)
        return out

    # -- keys --------------------------------------------------------------------------
    def action_top(self) -> None:
        self.following = False
        self.scroll_home(animate=False)
        self.post_message(self.Moved())

    def action_bottom(self) -> None:
        self.following = True
        self._guarded(self._to_end)
        self.post_message(self.Moved())

    def _to_end(self) -> None:
        # Now, not after the next refresh as scroll_end does: the tail must be
        # on the very next frame. The target moves too, so relative scrolls
        # (k, page up) start from here.
        self.scroll_target_y = self.scroll_y = self.max_scroll_y

    def action_page_down(self) -> None:  # type: ignore[override]
        self.scroll_page_down(animate=False)

    def action_page_up(self) -> None:  # type: ignore[override]
        self.scroll_page_up(animate=False)

    def action_toggle_follow(self) -> None:
        if self.following:
            self.following = False
        else:
            self.action_bottom()
        self.post_message(self.Moved())

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps
        self._widest = 0
        self.invalidate()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.scroll_to(x=0, animate=False)
        self.invalidate()
        self.update_size()

    def action_ask(self, mode: str) -> None:
        self.post_message(self.Ask(mode))

    def action_next_match(self, forward: bool) -> None:
        self.post_message(self.NextMatch(forward))

    def action_clear(self) -> None:
        if self.search is None and (self.model is None or self.model.filter is None):
            raise SkipAction()
        self.post_message(self.Clear())

    # -- positions ---------------------------------------------------------------------
    def show_line(self, line_no: int) -> None:
        """Scroll so index line ``line_no`` is in view (a third from the top)."""
        if self.model is None:
            return
        row = self.model.row_of(line_no)
        self.following = False
        self.scroll_to(y=max(0, row - self.size.height // 3), animate=False, immediate=True)
        self.invalidate()
        self.post_message(self.Moved())

    @property
    def bottom_line(self) -> int | None:
        """Index line number of the last row on screen."""
        if self.model is None or self.rows == 0:
            return None
        row = min(self.rows - 1, int(self.scroll_y) + self.size.height - 1)
        return self.model.line_no(row)

    @property
    def top_line(self) -> int | None:
        if self.model is None or self.rows == 0:
            return None
        return self.model.line_no(int(self.scroll_y))


class LogInput(Input):
    """The pane's one input line: search, filter, time or file name."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    class Cancelled(Message):
        pass

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


PROMPTS = {
    "search": ("search (regex; smart case): ", "error|timeout"),
    "filter": ("show only lines matching (empty: all): ", "regex"),
    "time": ("jump to time: ", "2024-05-01T12:00:00, 10m (ago), or unix seconds"),
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
        yield LogView(id=f"{self.id}-lines" if self.id else None)
        yield LogInput(classes="log-input", compact=True)

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
            if self.merged is None:
                self._run_filter()
        self.view.following = True
        self.view.invalidate()
        self.view.update_size()
        self._status()

    def _run_filter(self) -> None:
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
                        not merged.filter.search(merged.rows[row][0].text):
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
            when = parse_since(text)
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

    @on(Input.Submitted, "LogInput")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        self._close_input()
        if self.mode == "search":
            self.set_search(value)
        elif self.mode == "filter":
            self.set_filter(value)
        elif self.mode == "time" and value:
            self.jump_to_time(value)
        elif self.mode == "save" and value:
            self.save(value)

    @on(LogInput.Cancelled)
    def _cancelled_input(self, event: LogInput.Cancelled) -> None:
        event.stop()
        self._close_input()

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
