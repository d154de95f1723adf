"""A list of engine objects, keyed by id and updated in place.

``sync()`` takes the engine's latest list and turns it into the smallest set
of table changes: cells whose text changed are updated, vanished rows are
removed, new rows are added, and the cursor stays on the same object. Rows
are never rebuilt wholesale, so a list of thousands of stopped containers
costs nothing when one of them changes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Generic, Iterable, TypeVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

R = TypeVar("R")


class Cell(Text):
    """Table cell text that also carries the value its column sorts by."""

    def __init__(self, text: str, order: Any = None, style: str = "") -> None:
        if "\n" in text or "\t" in text:          # one line per row, always
            text = " ".join(text.split())
        super().__init__(text, style=style, no_wrap=True, overflow="ellipsis", end="")
        self.order = text.lower() if order is None else order

    def same(self, other: "Cell") -> bool:
        return self.plain == other.plain and str(self.style) == str(other.style)


@dataclass(frozen=True)
class ColumnSpec(Generic[R]):
    """One column: its key, heading, how a record becomes a cell.

    ``hide_below``: the column shows only when the table is at least this
    many cells wide (0: always), so a narrow terminal spends its width on
    the columns that say the most.
    """

    key: str
    label: str
    cell: Callable[[R], Cell]
    width: int | None = None
    hide_below: int = 0


MARK = "mark"
_KEY_REF = re.compile(r"\{([a-z_]+\.[a-z_]+)\}")


class ResourceTable(DataTable, Generic[R]):
    """Rows of engine records: filter, sort by column, mark for bulk actions."""

    kind: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[ColumnSpec[Any], ...]] = ()
    DEFAULT_SORT: ClassVar[str] = ""
    MARKABLE: ClassVar[bool] = False
    # What an empty list says, under its header: how to make the first one.
    # ``{binding.id}`` is replaced by the key bound to it now (keymap applied).
    EMPTY: ClassVar[str] = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g", "scroll_top", "Top", show=False, id="list.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="list.bottom"),
        Binding("o", "sort_next", "Sort", show=False, id="list.sort"),
        Binding("O", "sort_reverse", "Reverse sort", show=False, id="list.sort_reverse"),
    ]

    class CurrentChanged(Message):
        """The object under the cursor changed (None: the list is empty)."""

        def __init__(self, table: "ResourceTable[Any]", key: str | None) -> None:
            super().__init__()
            # Textual stops a bubbling message at the widget that was handling
            # a message when this one was made (its "sender"). A filter typed
            # into the list pane re-announces from inside the pane's handler,
            # so the screen (which points the detail pane at the row) would
            # never hear of it: the table itself is the sender, always.
            self._sender = table
            self.table = table
            self.key = key

        @property
        def control(self) -> "ResourceTable[Any]":
            return self.table

    class Changed(Message):
        """An action changed engine state: refresh the lists now, not at the next tick."""

    class Opened(Message):
        """Enter was pressed on a row."""

        def __init__(self, table: "ResourceTable[Any]", key: str) -> None:
            super().__init__()
            self._sender = table          # see CurrentChanged
            self.table = table
            self.key = key

        @property
        def control(self) -> "ResourceTable[Any]":
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.records: dict[str, R] = {}
        self.marked: set[str] = set()
        self.filter_text = ""
        self.sort_column = self.DEFAULT_SORT or self.COLUMNS[0].key
        self.sort_reverse = False
        self.loaded = False
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._current: str | None = None
        self._shown: tuple[ColumnSpec[Any], ...] = self.COLUMNS
        self._layout: Any = None

    # -- what subclasses say about their records ---------------------------
    def key_of(self, record: R) -> str:
        return record.id  # type: ignore[attr-defined, no-any-return]

    def haystack(self, record: R) -> str:
        """The text ``/`` matches against (lower case)."""
        return " ".join(c.plain for c in self._row_cells(record)).lower()

    def label_of(self, key: str) -> str:
        """A short human name for messages ("web", "busybox:latest")."""
        return key[:12]

    # -- empty ---------------------------------------------------------------
    def empty_hint(self) -> str:
        """The line an empty list shows ("" while loading or if it has rows)."""
        if self.row_count or not self.loaded:
            return ""
        if self.filter_text and self.records:
            return f"No {self.kind}s match “{self.filter_text}”; esc clears the filter"
        return _KEY_REF.sub(lambda m: self.key_for(m.group(1)), self.EMPTY)

    def key_for(self, binding_id: str) -> str:
        """The key that runs ``binding_id`` on this table now, as users read it."""
        from ..screens.keys import key_display
        keymap = getattr(getattr(self.app, "config", None), "keymap", None) or {}
        for cls in type(self).__mro__:
            for b in cls.__dict__.get("BINDINGS", ()):
                if isinstance(b, Binding) and b.id == binding_id:
                    return key_display(keymap.get(binding_id, b.key)).split(",")[0]
        return binding_id

    def render_line(self, y: int) -> Strip:
        top = self.header_height if self.show_header else 0
        hint = self.empty_hint() if y == top and not self.row_count else ""
        if not hint:
            return super().render_line(y)
        width = self.size.width
        text = Text(" " + hint, style="italic", no_wrap=True, overflow="ellipsis")
        lines = self.app.console.render_lines(text, self.app.console.options.update(
            width=width, height=1), style=self.rich_style, pad=True)
        return Strip(lines[0], width)

    # -- building ----------------------------------------------------------
    def layout_for(self, width: int) -> Any:
        """What the table looks like at ``width`` cells; a change redraws every row.

        Here: which columns show. Subclasses add what else depends on the
        width (the CPU sparkline's length).
        """
        return tuple(c.key for c in self.COLUMNS if width >= c.hide_below)

    def on_mount(self) -> None:
        # Before the first layout the table has no size: guess from the
        # terminal (the list pane is full width below MainScreen's WIDE).
        self._add_columns(self.size.width or self.app.size.width)

    def _add_columns(self, width: int) -> None:
        self._layout = self.layout_for(width)
        self._shown = tuple(c for c in self.COLUMNS if width >= c.hide_below)
        if self.MARKABLE:
            self.add_column(" ", key=MARK, width=1)
        for col in self._shown:
            self.add_column(col.label, key=col.key, width=col.width)
        self._show_sort_indicator()

    def on_resize(self) -> None:
        width = self.size.width
        if width and self.layout_for(width) != self._layout:
            self._relayout(width)

    def _relayout(self, width: int) -> None:
        """New columns for a new width: the rows are drawn again, the cursor kept."""
        keep = self.current_key
        self.clear(columns=True)
        self._add_columns(width)
        self._rebuild({k for k, r in self.records.items() if self.matches(r)}, keep)

    @property
    def shown_columns(self) -> tuple[str, ...]:
        """The keys of the columns on screen, left to right (without the mark)."""
        return tuple(c.key for c in self._shown)

    def _row_cells(self, record: R) -> tuple[Cell, ...]:
        key = self.key_of(record)
        cells = tuple(col.cell(record) for col in self._shown)
        for cell in cells:              # ties sort by id: the same order every time
            cell.order = (cell.order, key)
        if self.MARKABLE:
            mark = Cell("●" if self.key_of(record) in self.marked else " ", 0, "bold")
            cells = (mark,) + cells
        return cells

    def _column_keys(self) -> list[str]:
        keys = [c.key for c in self._shown]
        return [MARK] + keys if self.MARKABLE else keys

    def matches(self, record: R) -> bool:
        if not self.filter_text:
            return True
        return all(word in self.haystack(record) for word in self.filter_text.lower().split())

    # -- the one way rows change -------------------------------------------
    def sync(self, records: Iterable[R]) -> None:
        """Make the table show ``records``: update, add and remove in place."""
        self.loaded = True
        new = {self.key_of(r): r for r in records}
        old = self.records
        changed = {k for k, r in new.items() if old.get(k) != r}
        self.records = new
        self.marked &= new.keys()
        self._apply(changed)
        if not self.row_count:
            self.refresh()          # the empty hint (or its new wording)

    def refresh_rows(self) -> None:
        """Re-render every cell (e.g. relative times) without touching order."""
        self._apply()

    # Removing a DataTable row costs a pass over all rows; past this many
    # removals at once (a filter typed, a prune) rebuilding is cheaper.
    BULK = 64

    def _apply(self, changed: set[str] | None = None) -> None:
        """Bring rows up to date; only ``changed`` keys are re-rendered (None: all)."""
        keep_key = self.current_key
        col_keys = self._column_keys()
        sort_col = col_keys.index(self.sort_column) if self.sort_column in col_keys else None
        wanted = {k for k, r in self.records.items() if self.matches(r)}
        gone = [k for k in self._cells if k not in wanted]
        if len(gone) > max(self.BULK, len(self._cells) // 4):
            self._rebuild(wanted, keep_key)
            return
        resort = False
        for key in gone:
            self.remove_row(key)
            del self._cells[key]
        for key in wanted:
            old = self._cells.get(key)
            if old is not None and changed is not None and key not in changed:
                continue
            cells = self._row_cells(self.records[key])
            if old is None:
                self.add_row(*cells, key=key)
                resort = True
            else:
                for i, (a, b) in enumerate(zip(old, cells)):
                    if not a.same(b):
                        self.update_cell(key, col_keys[i], b,
                                         update_width=b.cell_len > a.cell_len)
                        if i == sort_col and a.order != b.order:
                            resort = True
            self._cells[key] = cells
        if resort:
            self._sort()
        self._restore_cursor(keep_key)

    def _rebuild(self, wanted: set[str], keep_key: str | None) -> None:
        self.clear()
        self._cells = {}
        for key in wanted:
            cells = self._row_cells(self.records[key])
            self.add_row(*cells, key=key)
            self._cells[key] = cells
        self._sort()
        self._restore_cursor(keep_key)

    def _sort(self) -> None:
        if self.sort_column in self.shown_columns:
            self.sort(self.sort_column, key=lambda cell: (cell.order[0] is None, cell.order),
                      reverse=self.sort_reverse)
            return
        # Sorted by a column the width hides: its cells are made for the sort.
        spec = next((c for c in self.COLUMNS if c.key == self.sort_column), None)
        if spec is None:
            return

        def order(row: tuple[Cell, ...]) -> Any:
            key = row[-1].order[1]          # every column's order is (value, key)
            value = spec.cell(self.records[key]).order
            return (value is None, (value, key))
        self.sort(key=order, reverse=self.sort_reverse)

    def _restore_cursor(self, key: str | None) -> None:
        if key is not None and key in self._cells:
            try:
                row = self.get_row_index(key)
            except RowDoesNotExist:
                row = None
            if row is not None and row != self.cursor_row:
                self.move_cursor(row=row, animate=False)
        self._announce_current()

    def _announce_current(self) -> None:
        key = self.current_key
        if key != self._current:
            self._current = key
            self.post_message(self.CurrentChanged(self, key))

    # -- cursor ------------------------------------------------------------
    @property
    def current_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return row_key.value

    @property
    def current(self) -> R | None:
        key = self.current_key
        return self.records.get(key) if key is not None else None

    def select_key(self, key: str) -> bool:
        """Put the cursor on ``key`` (clearing a filter that hides it)."""
        if key not in self.records:
            return False
        if key not in self._cells:
            self.set_filter("")
        self.move_cursor(row=self.get_row_index(key), animate=False)
        self._announce_current()
        return True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce_current()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Opened(self, event.row_key.value))

    # -- filter ------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self._apply(set())        # rows come and go; none changed
            if not self.row_count:
                self.refresh()

    # -- sort --------------------------------------------------------------
    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        keep = self.current_key
        self._sort()
        self._show_sort_indicator()
        self._restore_cursor(keep)

    def action_sort_next(self) -> None:
        keys = list(self.shown_columns)
        i = keys.index(self.sort_column) if self.sort_column in keys else -1
        self.sort_by(keys[(i + 1) % len(keys)], reverse=False)

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column, reverse=not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value and event.column_key.value != MARK:
            self.sort_by(event.column_key.value)

    def _show_sort_indicator(self) -> None:
        arrow = " ▼" if self.sort_reverse else " ▲"
        for col in self.COLUMNS:
            column = self.columns.get(col.key)  # type: ignore[call-overload]
            if column is not None:
                label = Text(col.label + (arrow if col.key == self.sort_column else ""))
                column.label = label
                # Room for the arrow: the width was measured on the bare label.
                if column.auto_width:
                    column.content_width = max(column.content_width, label.cell_len)
                else:
                    column.width = max(column.width, label.cell_len)
        self._require_update_dimensions = True
        self.refresh()

    # -- marks (bulk actions) ----------------------------------------------
    def toggle_mark(self) -> None:
        key = self.current_key
        if key is None or not self.MARKABLE:
            return
        self.marked ^= {key}
        self._apply({key})
        self.action_cursor_down()

    def mark_all(self) -> None:
        visible = set(self._cells)
        self.marked = set() if visible <= self.marked else self.marked | visible
        self._apply(visible)

    def clear_marks(self) -> bool:
        """Unmark everything; False if nothing was marked."""
        if not self.marked:
            return False
        was, self.marked = self.marked, set()
        self._apply(was)
        return True

    def targets(self) -> list[str]:
        """What a bulk-capable action acts on: the marked rows, else the current one."""
        if self.marked:
            shown = [row.key.value for row in self.ordered_rows]
            return [k for k in shown if k in self.marked] or sorted(self.marked)
        key = self.current_key
        return [key] if key is not None else []
