"""The list pane: view tabs, one table per kind of object, and the ``/`` filter."""
from __future__ import annotations

from typing import Any, Callable, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Input, Static, Tab, Tabs

from .containers_table import ContainersTable
from .events_table import EventsTable
from .images_table import ImagesTable
from .networks_table import NetworksTable
from .resource_table import ResourceTable
from .volumes_table import VolumesTable

VIEWS: tuple[tuple[str, str], ...] = (
    ("containers", "Containers"),
    ("images", "Images"),
    ("volumes", "Volumes"),
    ("networks", "Networks"),
    ("events", "Events"),
)


class ViewTabs(Tabs):
    """The view names; switched with number keys and tab, so never focused."""

    can_focus = False


# Esc then a digit typed within Textual's escape delay arrives as one key,
# named after the character a Mac's option+digit types; MainScreen binds the
# same names (written out there: its bindings are checked as literals).
ESC_DIGIT_KEY: dict[str, str] = {
    "1": "inverted_exclamation_mark", "2": "trade_mark_sign", "3": "pound_sign",
    "4": "cent_sign", "5": "infinity",
}
ESC_DIGIT: dict[str, str] = {k: d for d, name in ESC_DIGIT_KEY.items() for k in (name, f"alt+{d}")}
"""Key name -> the digit it stands for (``alt+2`` from terminals that report alt, too)."""


class FilterInput(Input):
    """``/``: filter the current list as you type; esc clears, enter keeps.

    Leaving moves the focus back to the list at once (``leave``), not by a
    message: the keys after ``enter`` in one burst are list keys.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear filter", id="filter.clear"),
        Binding("down", "done", "To list", show=False, id="filter.done"),
    ]

    def __init__(self, leave: Callable[[bool], None], **kwargs: Any) -> None:
        """``leave(cleared)`` goes back to the list (dropping the filter if ``cleared``)."""
        super().__init__(**kwargs)
        self._leave = leave

    def action_clear(self) -> None:
        self.value = ""
        self._leave(True)

    async def _on_key(self, event: events.Key) -> None:
        digit = ESC_DIGIT.get(event.key)
        if digit is None:
            await super()._on_key(event)
            return
        # Not a character to filter by ("™" is esc 2): the esc leaves the
        # filter, as esc does, and the digit switches the view from the list.
        event.stop()
        event.prevent_default()
        self.action_clear()
        self.app.post_message(events.Key(digit, digit))

    def action_done(self) -> None:
        self._leave(False)

    async def action_submit(self) -> None:
        self._leave(not self.value)


class ListPane(Vertical):
    """Containers, Images, Volumes, Networks: one visible at a time."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="list.filter"),
    ]

    def __init__(self, available: set[str], *, id: str | None = None) -> None:
        """``available``: the views the engine can list (others say so instead)."""
        super().__init__(id=id)
        self._available = available
        self._filters: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield ViewTabs(*[Tab(f"{i} {label}", id=f"tab-{key}")
                         for i, (key, label) in enumerate(VIEWS, 1)], id="view-tabs")
        tables = {"containers": ContainersTable, "images": ImagesTable,
                  "volumes": VolumesTable, "networks": NetworksTable, "events": EventsTable}
        with ContentSwitcher(initial="containers", id="views"):
            for view, label in VIEWS:
                if view in self._available:
                    yield tables[view](id=view)
                else:
                    yield Static(f"{label} are not available: this engine has no "
                                 f"{view}() API yet.", id=view, classes="placeholder")
        yield FilterInput(self._back_to_table, id="filter", compact=True,
                          placeholder="filter: words match name, image, status, labels…")

    # -- views -----------------------------------------------------------------------
    @property
    def view(self) -> str:
        return self.query_one("#views", ContentSwitcher).current or "containers"

    def table(self, view: str | None = None) -> ResourceTable[Any] | None:
        widget = self.query_one("#views", ContentSwitcher).get_child_by_id(view or self.view)
        return widget if isinstance(widget, ResourceTable) else None

    def tables(self) -> list[ResourceTable[Any]]:
        return list(self.query(ResourceTable))

    def show_view(self, view: str, focus: bool = True) -> None:
        switcher = self.query_one("#views", ContentSwitcher)
        if switcher.current != view:
            self._filters[switcher.current or ""] = self.query_one(FilterInput).value
            switcher.current = view
            self.query_one(ViewTabs).active = f"tab-{view}"
            filt = self.query_one(FilterInput)
            filt.value = self._filters.get(view, "")
            self.set_class(bool(filt.value), "-filtering")
        table = self.table(view)
        if focus:
            (table or switcher.get_child_by_id(view)).focus()
        if table is not None:
            table.post_message(table.CurrentChanged(table, table.current_key))

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab is not None and event.tab.id:
            self.show_view(event.tab.id.removeprefix("tab-"), focus=False)

    # -- filter ----------------------------------------------------------------------
    def action_filter(self) -> None:
        if self.table() is None:
            return
        self.add_class("-filtering")
        self.query_one(FilterInput).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FilterInput):
            event.stop()
            table = self.table()
            if table is not None:
                table.set_filter(event.value.strip())

    def _back_to_table(self, cleared: bool) -> None:
        if cleared:
            self.query_one(FilterInput).value = ""
            self.remove_class("-filtering")
        table = self.table()
        if table is not None:
            table.focus()

    def clear_filter(self) -> bool:
        """Drop the current view's filter; False if there was none."""
        filt = self.query_one(FilterInput)
        if not filt.value:
            return False
        filt.value = ""
        self.remove_class("-filtering")
        return True
