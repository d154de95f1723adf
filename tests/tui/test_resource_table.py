"""Rows keyed by id, changed in place: the list logic on plain fixture records."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual.app import App, ComposeResult

from tui.widgets.resource_table import Cell, ColumnSpec, ResourceTable

from tests.tui.fixtures import run


@dataclass(frozen=True)
class Rec:
    id: str
    name: str
    size: int


class Table(ResourceTable[Rec]):
    kind = "thing"
    MARKABLE = True
    COLUMNS = (
        ColumnSpec("name", "NAME", lambda r: Cell(r.name)),
        ColumnSpec("size", "SIZE", lambda r: Cell(str(r.size), r.size)),
    )


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.current: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield Table()

    def on_resource_table_current_changed(self, event: ResourceTable.CurrentChanged) -> None:
        self.current.append(event.key)


def recs(*items: tuple[str, str, int]) -> list[Rec]:
    return [Rec(*i) for i in items]


def order(t: Table) -> list[str]:
    return [t.coordinate_to_cell_key((r, 0)).row_key.value for r in range(t.row_count)]  # type: ignore[misc]


def test_sync_updates_in_place_and_keeps_the_cursor() -> None:
    async def go() -> None:
        app = TableApp()
        async with app.run_test() as pilot:
            t = app.query_one(Table)
            t.sync(recs(("a", "alpha", 3), ("b", "bravo", 1), ("c", "charlie", 2)))
            await pilot.pause()
            assert order(t) == ["a", "b", "c"]            # sorted by name
            t.select_key("c")
            row_b = next(row for k, row in t.rows.items() if k.value == "b")
            # b changes size, a disappears, d appears: c stays under the cursor
            t.sync(recs(("b", "bravo", 10), ("c", "charlie", 2), ("d", "delta", 0)))
            await pilot.pause()
            assert order(t) == ["b", "c", "d"]
            assert t.current_key == "c"
            assert next(row for k, row in t.rows.items() if k.value == "b") is row_b  # not rebuilt
            assert t.get_cell("b", "size").plain == "10"
            assert app.current[-1] == "c"
    run(go)


def test_filter_sort_and_marks() -> None:
    async def go() -> None:
        app = TableApp()
        async with app.run_test() as pilot:
            t = app.query_one(Table)
            t.sync(recs(("a", "alpha", 3), ("b", "bravo", 1), ("c", "charlie", 2)))
            t.set_filter("ar")                             # charlie only ("ar" in charlie)
            assert order(t) == ["c"]
            t.set_filter("")
            t.sort_by("size")
            assert order(t) == ["b", "c", "a"]
            t.sort_by("size")                              # again: reversed
            assert order(t) == ["a", "c", "b"]
            t.move_cursor(row=0)
            t.toggle_mark()                                # marks a, moves down
            t.toggle_mark()                                # marks c
            assert t.targets() == ["a", "c"]
            assert t.get_cell("a", "mark").plain == "●"
            t.sync(recs(("c", "charlie", 2)))              # a vanished: its mark goes too
            assert t.marked == {"c"}
            t.mark_all()                                   # all shown were marked -> none
            assert t.marked == set() and t.targets() == ["c"]
            t.mark_all()
            assert t.marked == {"c"}
            await pilot.pause()
    run(go)


def test_many_rows_sync_is_incremental() -> None:
    async def go() -> None:
        app = TableApp()
        async with app.run_test() as pilot:
            t = app.query_one(Table)
            many = recs(*[(f"id{i:05d}", f"n{i:05d}", i) for i in range(3000)])
            t.sync(many)
            calls: list[Any] = []
            orig = t.update_cell
            t.update_cell = lambda *a, **k: (calls.append(a), orig(*a, **k))  # type: ignore[method-assign]
            many[5] = Rec("id00005", "n00005", 99999)
            t.sync(many)
            assert len(calls) == 1 and calls[0][:2] == ("id00005", "size")
            t0 = time.monotonic()
            t.set_filter("n0000")                  # 10 of 3000 rows stay
            t.set_filter("")
            assert time.monotonic() - t0 < 1.0       # rebuilt, not 2990 single removals
            assert t.row_count == 3000
            await pilot.pause()
    run(go)


def test_the_sort_arrow_fits_its_column() -> None:
    class Narrow(Table):
        COLUMNS = (ColumnSpec("name", "N", lambda r: Cell(r.name[:1]), width=1),
                   ColumnSpec("size", "SZ", lambda r: Cell(str(r.size % 10), r.size)))

    class NarrowApp(TableApp):
        def compose(self) -> ComposeResult:
            yield Narrow()

    async def go() -> None:
        app = NarrowApp()
        async with app.run_test() as pilot:
            t = app.query_one(Narrow)
            t.sync(recs(("a", "alpha", 3), ("b", "bravo", 1)))
            for col in ("name", "size", "name"):
                t.sort_by(col)
                await pilot.pause()
                header = t.render_line(0).text
                arrow = " ▼" if t.sort_reverse else " ▲"
                assert ("N" if col == "name" else "SZ") + arrow in header, (col, header)
    run(go)


class Wide(Table):
    COLUMNS = (ColumnSpec("name", "NAME", lambda r: Cell(r.name)),
               ColumnSpec("size", "SIZE", lambda r: Cell(str(r.size), r.size), hide_below=60))


class WideApp(TableApp):
    def compose(self) -> ComposeResult:
        yield Wide()


def test_columns_hide_below_their_width_and_return_when_there_is_room() -> None:
    async def go() -> None:
        app = WideApp()
        async with app.run_test(size=(50, 10)) as pilot:
            t = app.query_one(Wide)
            t.sync(recs(("a", "alpha", 3), ("b", "bravo", 1), ("c", "charlie", 2)))
            await pilot.pause()
            assert t.shown_columns == ("name",)
            assert [c.value for c in t.columns] == ["mark", "name"]
            t.sort_by("size")                        # hidden, yet it still orders the rows
            assert order(t) == ["b", "c", "a"]
            t.select_key("c")
            t.toggle_mark()
            assert t.get_cell("c", "mark").plain == "●"
            await pilot.resize_terminal(80, 10)
            await pilot.pause()
            assert t.shown_columns == ("name", "size")
            assert order(t) == ["b", "c", "a"]       # same sort, same cursor, same marks
            assert t.get_cell("a", "size").plain == "3"
            assert t.get_cell("c", "mark").plain == "●"
            assert t.current_key == "a"              # toggle_mark moved down from c
            t.sync(recs(("a", "alpha", 30), ("b", "bravo", 1), ("c", "charlie", 2)))
            assert t.get_cell("a", "size").plain == "30"   # in-place updates hit the new columns
            await pilot.resize_terminal(50, 10)
            await pilot.pause()
            assert t.shown_columns == ("name",)
            assert t.get_cell("a", "name").plain == "alpha"
    run(go)


def test_containers_list_at_80_columns_gives_command_the_room() -> None:
    from tui.widgets.containers_table import ContainersTable, spark

    class ListApp(App[None]):
        def compose(self) -> ComposeResult:
            yield ContainersTable()

    async def go() -> None:
        app = ListApp()
        async with app.run_test(size=(80, 24)) as pilot:
            t = app.query_one(ContainersTable)
            assert t.shown_columns == ("name", "image", "status", "cpu", "command")
            assert t.spark_width == 4
            await pilot.resize_terminal(100, 30)
            await pilot.pause()
            assert "created" in t.shown_columns and "id" not in t.shown_columns
            await pilot.resize_terminal(130, 30)
            await pilot.pause()
            assert t.shown_columns[-2:] == ("id", "command") and t.spark_width == 8
    run(go)
    assert spark([0.0, 5.0, 10.0], 2) == "▄█"        # the newest samples, scaled to 10% or more
    assert spark([1.0], 4) == "   ▂"                  # 1% of a 5% floor
