"""One registry of bindings behind help, the palette and the keymap check."""
from __future__ import annotations

import ast
from pathlib import Path

from engine import Engine
from tests.tui.fixtures import make_app, run, wait_for
from tui.app import PortsideApp
from tui.config import Config
from tui.screens.dialogs import ConfirmScreen
from tui.screens.help import HelpScreen, help_rows
from tui.screens.keys import binding_ids

TUI = Path(__file__).resolve().parents[2] / "tui"


def bindings_in_source() -> list[tuple[str, str | None]]:
    """(where, id) of every ``Binding(...)`` written in the app's source (not the CLI)."""
    out: list[tuple[str, str | None]] = []
    for path in TUI.rglob("*.py"):
        if "cli" in path.relative_to(TUI).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Binding" \
                    and not any(isinstance(a, ast.Starred) for a in node.args):
                ids = [k.value for k in node.keywords if k.arg == "id"]
                value = ids[0].value if ids and isinstance(ids[0], ast.Constant) else None
                out.append((f"{path.name}:{node.lineno}", value))
    return out


def test_every_binding_written_anywhere_has_an_id_and_is_in_help() -> None:
    found = bindings_in_source()
    assert len(found) > 80
    assert [where for where, bid in found if bid is None] == []     # all remappable
    ids = [bid for _where, bid in found]
    assert len(ids) == len(set(ids))                                  # and unique
    in_help = {row[3] for row in help_rows({})}
    assert set(ids) <= in_help
    assert set(ids) == binding_ids()
    # the ones an audit found missing
    assert {"network.create", "network.remove", "network.prune", "run.submit",
            "filter.clear", "rows.down", "rows.bottom", "logs.follow"} <= in_help


def test_help_shows_the_keymap_and_every_row(images_engine: Engine) -> None:
    async def go() -> None:
        app = PortsideApp(images_engine, Config(keymap={"network.prune": "ctrl+x"}),
                          watch_interval=0.1)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            table = app.screen.query_one("#help-table")
            assert table.row_count == len(help_rows({}))             # type: ignore[attr-defined]
            await pilot.press("slash", *"network.prune")
            await wait_for(pilot, lambda: table.row_count == 1)      # type: ignore[attr-defined]
            assert table.get_row_at(0)[0].plain == "ctrl+x"          # type: ignore[attr-defined]
    run(go)


def test_unknown_keymap_id_is_a_visible_warning(images_engine: Engine) -> None:
    async def go() -> None:
        app = PortsideApp(images_engine, Config(keymap={"container.stopp": "x",
                                                        "image.tag": "T"}),
                          watch_interval=0.1)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            notes = [n.message for n in app._notifications]
            assert any("container.stopp" in n and "image.tag" not in n for n in notes), notes
    run(go)


def palette_pick(query: str):  # type: ignore[no-untyped-def]
    async def pick(app: PortsideApp, pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("ctrl+p")
        await pilot.press(*query)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.2)
    return pick


def test_palette_finds_actions_the_keys_have(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.main.lists.table("images").records) == 3)  # type: ignore[union-attr]
            await palette_pick("netprune")(app, pilot)               # fuzzy: Networks: Prune
            assert isinstance(app.screen, ConfirmScreen)
            assert "network" in app.screen._title                   # type: ignore[attr-defined]
            assert app.main.lists.view == "networks"
            await pilot.press("n")
            await palette_pick("volume force rem")(app, pilot)      # Volumes: Force remove
            assert app.main.lists.view == "volumes"
            await pilot.press("2")
            await palette_pick("images history")(app, pilot)
            detail = app.main.detail
            tabs = detail.tabs()
            await wait_for(pilot, lambda: tabs is not None and tabs.active == "image-history")
    run(go)


def test_esc_and_a_digit_typed_fast_still_switch_views(images_engine: Engine) -> None:
    """Esc then 2 within the escape delay is one key (alt+2); it must not be lost."""
    from textual._xterm_parser import XTermParser

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            lists = app.main.lists
            assert lists.view == "containers"
            for digit, view in (("2", "images"), ("4", "networks"), ("3", "volumes"),
                                ("5", "events"), ("1", "containers")):
                # The bytes a terminal sends, through Textual's own parser.
                for event in XTermParser().feed("\x1b" + digit):
                    app._driver.process_message(event)  # type: ignore[union-attr]
                await wait_for(pilot, lambda: lists.view == view)
                assert lists.table(view) is None or lists.table(view).has_focus  # type: ignore[union-attr]
            await pilot.press("alt+4")                 # a terminal that reports alt itself
            assert lists.view == "networks"
    run(go)
    rows = {row[3]: row for row in help_rows({})}
    assert rows["view.images_alt"][0] == "alt+2, esc 2"


def test_esc_and_a_digit_typed_fast_in_the_filter_leave_it_and_switch_views(
        images_engine: Engine) -> None:
    """In the filter box esc 2 is no "™" to filter by: the filter goes, the view changes."""
    from textual._xterm_parser import XTermParser

    from tui.widgets.lists import FilterInput

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            lists = app.main.lists
            await pilot.press("2", "slash", "a", "l")
            box = app.query_one(FilterInput)
            await wait_for(pilot, lambda: box.value == "al")
            for event in XTermParser().feed("\x1b4"):
                app._driver.process_message(event)  # type: ignore[union-attr]
            await wait_for(pilot, lambda: lists.view == "networks")
            assert box.value == "" and not box.has_focus
            await pilot.press("2")
            images = lists.table("images")
            assert images is not None and images.has_focus
            # the images filter went with the esc: every image is listed again
            assert len(images.records) == len(images_engine.images()) > 1
    run(go)
