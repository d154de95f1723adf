"""The dialog for failures that are not engine errors (bugs): show, don't crash."""
from __future__ import annotations

import traceback
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class ErrorScreen(ModalScreen[None]):
    """An unexpected exception with its traceback; the app keeps running."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "dismiss", "Close", id="error.close"),
    ]

    def __init__(self, error: BaseException, title: str = "") -> None:
        super().__init__(classes="dialog")
        self.error = error
        self._title = title

    def compose(self) -> ComposeResult:
        what = f" while {self._title.lower()}" if self._title else ""
        tb = "".join(traceback.format_exception(self.error))
        with Vertical(classes="dialog-box error-box"):
            yield Label(f"Unexpected error{what}", classes="dialog-title")
            yield Static(f"{type(self.error).__name__}: {self.error}", markup=False,
                         classes="dialog-body")
            with VerticalScroll(classes="traceback"):
                yield Static(tb, markup=False)
            yield Static("This is a bug in portside; please report it with the text above. "
                         "esc closes this.", classes="dialog-help")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
