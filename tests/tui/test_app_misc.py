"""Volumes view, events view, theme and mouse toggles, on a real engine."""
from __future__ import annotations


from engine import Engine
from tests.tui.fixtures import make_app, run, wait_for
from tui.screens.dialogs import ConfirmScreen, PromptScreen
from tui.widgets.events_table import EventsTable
from tui.widgets.volumes_table import VolumesTable


def test_volume_create_and_remove(engine: Engine) -> None:
    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            table = app.query_one(VolumesTable)
            assert table.has_focus
            await pilot.press("c")
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*"pgdata", "enter")
            await wait_for(pilot, lambda: "pgdata" in table.records)
            assert [v.name for v in engine.volumes()] == ["pgdata"]
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: "pgdata" not in table.records)
            assert engine.volumes() == []
    run(go)


def test_events_view_is_live(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("5")
            table = app.query_one(EventsTable)
            await wait_for(pilot, lambda: table.row_count >= 3)
            images_engine.tag("hello:1", "fresh:tag")
            await wait_for(pilot, lambda: any(e.attributes.get("name") == "fresh:tag"
                                              for e in table.records.values()))
            await pilot.press("slash", *"fresh")
            await wait_for(pilot, lambda: table.row_count == 1)
    run(go)


def test_theme_and_mouse_toggles(engine: Engine) -> None:
    async def go() -> None:
        app = make_app(engine, theme="textual-light", mouse=False)
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.theme == "textual-light" and not app.mouse_capture
            await pilot.press("f3")
            assert app.current_theme.dark
            await pilot.press("f2")
            assert app.mouse_capture
    run(go)


def test_bad_theme_in_config_falls_back(engine: Engine) -> None:
    async def go() -> None:
        app = make_app(engine, theme="no-such-theme")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.theme == "textual-dark"
            assert any("unknown theme" in str(n.message) for n in app._notifications)
    run(go)


def test_volume_prune_asks_then_removes_unused(engine: Engine) -> None:
    engine.volume_create("scratch")

    async def go() -> None:
        app = make_app(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            table = app.query_one(VolumesTable)
            await wait_for(pilot, lambda: "scratch" in table.records)
            await pilot.press("P")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert [v.name for v in engine.volumes()] == ["scratch"]
            await pilot.press("P", "y")
            await wait_for(pilot, lambda: "scratch" not in table.records)
            assert engine.volumes() == []
    run(go)


def test_an_empty_list_says_how_to_fill_it(engine: Engine) -> None:
    async def go() -> None:
        app = make_app(engine, keymap={"volume.create": "ctrl+n"})
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            table = app.query_one(VolumesTable)
            await wait_for(pilot, lambda: table.loaded)
            await pilot.pause()
            line = table.render_line(1).text
            assert "No volumes. ctrl+n creates one; or: portside volume create NAME" in line
            engine.volume_create("cache")
            await wait_for(pilot, lambda: table.row_count == 1)
            assert "No volumes" not in table.render_line(1).text
            assert "cache" in table.render_line(1).text
            await pilot.press("slash", *"zzz")
            await wait_for(pilot, lambda: table.row_count == 0)
            assert "No volumes match “zzz”; esc clears the filter" in table.render_line(1).text
            await pilot.press("escape")
            await wait_for(pilot, lambda: table.row_count == 1)
            await pilot.press("2")                # every list has its own line
            images = app.main.lists.table("images")
            assert images is not None
            await wait_for(pilot, lambda: images.loaded)
            await pilot.pause()
            assert "No images. L loads an archive, p pulls" in images.render_line(1).text
    run(go)
    engine.volume_rm("cache")
