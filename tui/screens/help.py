"""``?``: every binding in the app, where it applies, and its id for the keymap."""
from __future__ import annotations

from typing import Any, ClassVar, Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static


def binding_sections() -> list[tuple[str, type[Any]]]:
    """Where bindings live, in the order help lists them (imported late: no cycles)."""
    from ..widgets.containers_table import ContainersTable
    from ..widgets.detail import DetailPane
    from ..widgets.images_table import ImagesTable
    from ..widgets.lists import ListPane
    from ..widgets.log_view import LogView
    from ..widgets.resource_table import ResourceTable
    from ..widgets.text_view import TextView
    from ..widgets.volumes_table import VolumesTable
    from ..app import PortsideApp
    from .main import MainScreen
    return [
        ("Everywhere", PortsideApp),
        ("Main screen", MainScreen),
        ("Any list", ResourceTable),
        ("Lists pane", ListPane),
        ("Containers", ContainersTable),
        ("Images", ImagesTable),
        ("Volumes", VolumesTable),
        ("Detail pane", DetailPane),
        ("Logs", LogView),
        ("Inspect and text tabs", TextView),
    ]


def _own_bindings(cls: type[Any]) -> list[Binding]:
    raw: Iterable[BindingType] = cls.__dict__.get("BINDINGS", [])
    out: list[Binding] = []
    for b in raw:
        if isinstance(b, Binding):
            out.append(b)
        else:
            out.append(Binding(*b))
    return out


def help_rows(keymap: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(keys, description, section, binding id) for every binding, keymap applied."""
    rows = []
    for section, cls in binding_sections():
        for b in _own_bindings(cls):
            keys = keymap.get(b.id, b.key) if b.id else b.key
            shown = ", ".join(_key_display(k) for k in keys.split(","))
            desc = b.description or b.action.replace("_", " ")
            rows.append((shown, desc, section, b.id or ""))
    return rows


_NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "space": "space",
          "left_square_bracket": "[", "right_square_bracket": "]", "ampersand": "&",
          "asterisk": "*", "at": "@", "colon": ":"}


def _key_display(key: str) -> str:
    return _NAMES.get(key, key)


class HelpScreen(ModalScreen[None]):
    """All bindings, filterable; ids are what ``[keys]`` in config.toml remaps."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
        Binding("slash", "filter", "Filter", show=False),
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
        for label, width in (("Key", 11), ("Action", 20), ("Where", 13), ("Id", 22)):
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
