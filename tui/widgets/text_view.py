"""Scrollable read-only text (inspect JSON and messages), with vim keys."""
from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static


class TextView(VerticalScroll, can_focus=True):
    """One renderable in a scrolling box."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False, id="text.down"),
        Binding("k", "scroll_up", "Up", show=False, id="text.up"),
        Binding("g", "scroll_home", "Top", show=False, id="text.top"),
        Binding("G", "scroll_end", "Bottom", show=False, id="text.bottom"),
        Binding("ctrl+d", "page_down", "Page down", show=False, id="text.page_down"),
        Binding("ctrl+u", "page_up", "Page up", show=False, id="text.page_up"),
    ]

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("", classes="text-body", markup=False)

    def set_content(self, renderable: RenderableType, *, keep_scroll: bool = False) -> None:
        y = self.scroll_y
        self.query_one(".text-body", Static).update(renderable)
        if keep_scroll:
            self.call_after_refresh(self.scroll_to, y=y, animate=False)
        else:
            self.scroll_home(animate=False)
