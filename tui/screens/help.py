"""``?``: every binding in the app, where it applies, and its id for the keymap."""
from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from .keys import all_bindings, keys_of


def help_rows(keymap: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(keys, description, section, binding id) for every binding, keymap applied.

    Generated from the bindings themselves (see ``keys.all_bindings``), so
    nothing can be left out.
    """
    return [(keys_of(b, keymap), b.description, b.section, b.id) for b in all_bindings()]


class HelpScreen(ModalScreen[None]):
    """All bindings, filterable; ids are what ``[keys]`` in config.toml remaps."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
        Binding("slash", "filter", "Filter", show=False, id="help.filter"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="help-box"):
            yield Label("Keys: esc closes, / filters. Remap them by id under [keys] in "
                        "~/.config/portside/config.toml", classes="dialog-title", markup=False)
            yield Input(placeholder="filter keys…", id="help-filter", compact=True)
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static("ctrl+p opens the command palette: actions, containers and images "
                         "by name.", classes="dialog-help")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in (("Key", 13), ("Action", 18), ("Where", 13), ("Id", 22)):
            table.add_column(label, key=label.lower(), width=width)
        self._fill("")
        table.focus()

    def _fill(self, text: str) -> None:
        table = self.query_one(DataTable)
        table.clear()
        keymap = getattr(self.app, "config", None)
        rows = help_rows(keymap.keymap if keymap else {})
        words = text.lower().split()
        for keys, desc, section, bid in rows:
            hay = f"{keys} {desc} {section} {bid}".lower()
            if all(w in hay for w in words):
                table.add_row(Text(keys, style="bold"), Text(desc), Text(section, style="dim"),
                              Text(bid, style="dim"))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self) -> None:
        self.query_one(DataTable).focus()

    def action_filter(self) -> None:
        self.query_one(Input).focus()

    def action_close(self) -> None:
        if self.focused is self.query_one(Input) and self.query_one(Input).value:
            self.query_one(Input).value = ""
            return
        self.dismiss(None)
