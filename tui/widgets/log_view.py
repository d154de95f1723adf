"""A virtual view over the lines of a log, however big.

``LogView`` is a Line-API ``ScrollView``: its height is the number of rows
and ``render_line`` draws only the rows on screen, reading each line on
demand from its model (a ``LogModel`` over the engine's ``LineIndex``, or a
``MergedModel``) and caching a few screens of rendered strips. The pane
around it (``log_pane.LogPane``) owns the worker threads.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.actions import SkipAction
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..config import HighlightRule
from .log_model import LogModel, MergedModel

# Rendered lines kept: a few screens (see LogView.__init__ for why so few).
STRIP_CACHE = 200
MAX_WIDTH = 20_000


class LogView(ScrollView, can_focus=True):
    """Rows of a LogModel, drawn on demand."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False, id="logs.down"),
        Binding("k", "scroll_up", "Up", show=False, id="logs.up"),
        Binding("h", "scroll_left", "Left", show=False, id="logs.left"),
        Binding("l", "scroll_right", "Right", show=False, id="logs.right"),
        Binding("g,home", "top", "Top", show=False, id="logs.top"),
        Binding("G,end", "bottom", "End (follow)", show=False, id="logs.bottom"),
        Binding("ctrl+d", "page_down", "Page down", show=False, id="logs.page_down"),
        Binding("ctrl+u", "page_up", "Page up", show=False, id="logs.page_up"),
        Binding("slash", "ask('search')", "Search logs", id="logs.search"),
        Binding("n", "next_match(True)", "Next", show=False, id="logs.next"),
        Binding("N", "next_match(False)", "Prev", show=False, id="logs.prev"),
        Binding("ampersand", "ask('filter')", "Filter lines", id="logs.filter"),
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

    def __init__(self, *, id: str | None = None,
                 ask: Callable[[str], None] | None = None) -> None:
        """``ask(mode)`` opens the pane's input line for search, filter, time or save.

        A call, not a message: the input must have the focus before the
        next key of a burst is handled (see ``PortsideApp.on_event``).
        """
        super().__init__(id=id)
        self._ask = ask
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
        if self._ask is not None:
            self._ask(mode)
        else:
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
