"""The detail pane, the cursor and an action's target are always the same row.

On the images view of a real engine (no root needed): a filter that hides
the current row, a removal by another process, a sort.
"""
from __future__ import annotations


from textual.widgets import Footer

from engine import Engine
from tests.tui.fixtures import images_view, make_app, run, wait_for
from tui.app import PortsideApp
from tui.screens.dialogs import ConfirmScreen
from tui.widgets.detail import DetailPane
from tui.widgets.images_table import ImagesTable


def agree(app: PortsideApp, table: ImagesTable) -> bool:
    """What the detail pane shows is the row under the cursor."""
    detail = app.query_one(DetailPane)
    return detail.kind == "image" and detail.key == table.current_key


def test_a_filter_that_hides_the_current_row_moves_the_detail_pane(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await images_view(app, pilot)
            web = images_engine.image("web:latest").id
            hello = images_engine.image("hello:1").id
            table.select_key(web)
            await wait_for(pilot, lambda: app.query_one(DetailPane).key == web)
            await pilot.press("slash", *"hello", "enter")
            await wait_for(pilot, lambda: table.row_count == 1)
            assert table.current_key == hello
            await wait_for(pilot, lambda: agree(app, table))
            assert "hello:1" in str(app.query_one("#detail-title").render())
            # and the action goes to the row shown: remove asks about hello:1
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            assert "hello:1" in app.screen._title  # type: ignore[attr-defined]
            footer = app.main.query_one(Footer)
            assert not footer.display                 # no main-screen keys under a dialog
            await pilot.press("n")
            assert footer.display
            # a filter that hides everything: nothing selected, nothing shown
            await pilot.press("slash", *"zzz")
            await wait_for(pilot, lambda: table.row_count == 0)
            await wait_for(pilot, lambda: app.query_one(DetailPane).key is None)
    run(go)


def test_a_row_removed_elsewhere_and_a_sort_keep_detail_and_cursor_together(
        images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await images_view(app, pilot)
            alpine = images_engine.image("alpine:3.19").id
            table.select_key(alpine)
            await wait_for(pilot, lambda: agree(app, table) and table.current_key == alpine)
            images_engine.rmi("alpine:3.19")           # as another process would
            await wait_for(pilot, lambda: alpine not in table.records)
            assert table.current_key not in (None, alpine)
            await wait_for(pilot, lambda: agree(app, table))
            for key in ("o", "o", "O"):
                before = table.current_key
                await pilot.press(key)
                await pilot.pause()
                assert table.current_key == before    # the same object, maybe another row
                await wait_for(pilot, lambda: agree(app, table))
    run(go)
