"""The app on a real engine (temp root, real images): images view and its actions."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import Engine, EngineError, InvalidState, NeedsRoot
from tests.imagefactory import oci_image, oci_layout
from tests.tui import fixtures
from tests.tui.fixtures import images_view, run, wait_for
from tui import app as app_module
from tui.app import PortsideApp
from tui.config import builtin_highlights
from tui.screens.dialogs import ConfirmScreen, PromptScreen
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen, help_rows
from tui.widgets.host_bar import HostBar


def make_app(engine: Engine) -> PortsideApp:
    return fixtures.make_app(engine, highlights=builtin_highlights())  # type: ignore[no-any-return]


def test_starts_at_80x24_and_lists_images(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            table = await images_view(app, pilot)
            assert table.has_focus
            tags = {table.get_cell(k, "tags").plain for k in table.records}
            assert tags == {"hello:1", "alpine:3.19", "web:latest"}
            bar = app.query_one(HostBar)
            await wait_for(pilot, lambda: "3 images" in str(bar.render()))
    run(go)


def test_tag_remove_and_prune(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            table = await images_view(app, pilot)
            table.select_key(images_engine.image("alpine:3.19").id)
            await pilot.press("t")
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*"mine:v2", "enter")
            await wait_for(pilot, lambda: "mine:v2" in images_engine.image("alpine:3.19").repo_tags)
            key = images_engine.image("hello:1").id
            await wait_for(pilot, lambda: key in table.records)
            table.select_key(key)
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: key not in table.records)
            assert all(i.id != key for i in images_engine.images())
            # prune asks first; answering no keeps everything
            await pilot.press("P")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert not isinstance(app.screen, ConfirmScreen)
    run(go)


def test_filter_then_escape(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            table = await images_view(app, pilot)
            await pilot.press("slash", *"alp")
            await wait_for(pilot, lambda: table.row_count == 1)
            await pilot.press("enter")
            assert table.has_focus and table.row_count == 1
            await pilot.press("escape")
            await wait_for(pilot, lambda: table.row_count == 3)
    run(go)


def test_load_shows_progress_and_adds_the_image(images_engine: Engine, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    oci_layout(layout, [oci_image(layout, [{"etc/motd": b"hi\n"}, {"bin/x": b"x" * 5000}])],
               "loaded:7")

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            table = await images_view(app, pilot)
            await pilot.press("L")
            assert isinstance(app.screen, PromptScreen)
            app.screen.query_one("Input").value = f"{layout}"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(pilot, lambda: table.row_count == 4)
            assert any("loaded:7" in i.repo_tags for i in images_engine.images())
    run(go)


def test_help_lists_every_binding_with_its_id(images_engine: Engine) -> None:
    ids = {row[3] for row in help_rows({})}
    assert {"app.quit", "image.tag", "container.stop", "logs.search", "view.images"} <= ids
    keys = {row[3]: row[0] for row in help_rows({"container.stop": "x"})}
    assert keys["container.stop"] == "x"

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
    run(go)


def test_keymap_from_config_rebinds(images_engine: Engine) -> None:
    async def go() -> None:
        app = fixtures.make_app(images_engine, keymap={"image.tag": "T"})
        async with app.run_test(size=(80, 24)) as pilot:
            await images_view(app, pilot)
            await pilot.press("T")
            assert isinstance(app.screen, PromptScreen)
    run(go)


def test_palette_finds_an_image_by_fuzzy_name(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await images_view(app, pilot)
            await pilot.press("1")
            await pilot.press("ctrl+p")
            await pilot.press(*"alpin")
            await pilot.pause(0.5)
            await pilot.press("enter")
            alpine = images_engine.image("alpine:3.19").id
            await wait_for(pilot, lambda: table.current_key == alpine)
            assert app.main.lists.view == "images"
    run(go)


def test_errors_become_toasts_and_bugs_a_dialog(images_engine: Engine) -> None:
    def engine_fails() -> None:
        raise InvalidState("container web is not running", hint="start it first")

    def bug() -> None:
        raise ZeroDivisionError("oops")

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            app.engine_call(engine_fails, title="Stopping web")
            await wait_for(pilot, lambda: any("not running" in str(n.message)
                                              for n in app._notifications))
            assert not isinstance(app.screen, ErrorScreen)
            app.engine_call(bug, title="Doing a thing")
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
            await pilot.press("escape")
            assert not isinstance(app.screen, ErrorScreen)
            assert app.is_running
    run(go)


def test_run_app_prints_engine_errors_without_traceback(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(*_a: Any, **_k: Any) -> None:
        raise NeedsRoot("using /var/lib/portside")

    monkeypatch.setattr(app_module, "_terminal_problem", lambda: None)
    monkeypatch.setattr(app_module, "Engine", refuse)
    assert app_module.run_app(["--root", "/nonexistent"]) == 125
    err = capsys.readouterr().err
    assert "needs root" in err and "Traceback" not in err


def test_run_app_without_a_terminal_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert app_module.run_app([]) == 1            # pytest's stdin is not a terminal
    assert "needs a terminal" in capsys.readouterr().err


def test_no_color(images_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await images_view(app, pilot)
            assert app.no_color
    run(go)


def test_engine_error_type_is_an_engine_error() -> None:
    assert issubclass(InvalidState, EngineError)


def test_import_a_rootfs_tar_with_a_name(images_engine: Engine, tmp_path: Path) -> None:
    from tests.tui.fixtures import rootfs_tar
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(rootfs_tar({"bin/tool": b"#!/bin/sh\n"}).getvalue())

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            table = await images_view(app, pilot)
            await pilot.press("I")
            assert isinstance(app.screen, PromptScreen)
            app.screen.query_one("Input").value = f"{tar} as tools:1"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(pilot, lambda: table.row_count == 4)
            assert "tools:1" in images_engine.image("tools:1").repo_tags
    run(go)


def test_image_history_and_inspect_keys(images_engine: Engine) -> None:
    from tui.widgets.detail_tabs import HistoryTab, InspectTab

    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await images_view(app, pilot)
            key = images_engine.image("web:latest").id
            table.select_key(key)
            tabs = app.main.detail.tabs()
            await pilot.press("H")
            await wait_for(pilot, lambda: tabs is not None and tabs.active == "image-history")
            history = app.query_one(HistoryTab)
            await wait_for(pilot, lambda: history.key == key and history.row_count >= 1)
            await pilot.press("escape")                   # back to the list
            await wait_for(pilot, lambda: table.has_focus)
            await pilot.press("i")
            await wait_for(pilot, lambda: tabs is not None and tabs.active == "image-inspect")
            inspect = app.query_one("#image-inspect-view", InspectTab)
            await wait_for(pilot, lambda: key[:12] in str(inspect.query_one("Static").render()))
    run(go)
