"""Keys typed in one burst (a paste over ssh, tmux send-keys) all land where they were meant.

Textual hands a key to the widget focused when the app dequeues it; before
the fix, ``/`` and the text after it were all handed to the list, so the
filter got nothing (and, earlier, ``e`` ran exec).
"""
from __future__ import annotations

from typing import Any

from engine import Engine
from tests.tui.fixtures import burst, images_view, make_app, run, wait_for
from tui.screens.dialogs import PromptScreen
from tui.widgets.lists import FilterInput

from tests.tui.test_log_view import big_log, make as make_log_app


def test_a_burst_fills_the_filter_then_acts_on_the_list(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await images_view(app, pilot)
            alpine = images_engine.image("alpine:3.19").id
            # "alpine" holds p, the list's pull key (it opens a dialog).
            # After enter, t is the list's tag key, on the one row left.
            burst(app, "/alpine\rt")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
            assert app.query_one(FilterInput).value == "alpine"
            assert table.row_count == 1 and table.current_key == alpine
            assert "alpine:3.19" in app.screen._title  # type: ignore[attr-defined]
            assert len(app.screen_stack) == 2           # no pull dialog (p) under it
            # The dialog's own keys, in the same kind of burst, wait for it.
            burst(app, "mine:v2\r")
            await wait_for(pilot, lambda: "mine:v2" in images_engine.image(alpine).repo_tags)
            assert app.screen is app.main and table.has_focus
    run(go)


def test_a_burst_into_the_dialog_that_its_first_key_opens(images_engine: Engine) -> None:
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            table = await images_view(app, pilot)
            hello = images_engine.image("hello:1").id
            table.select_key(hello)
            burst(app, "thello:2\r")
            await wait_for(pilot, lambda: "hello:2" in images_engine.image(hello).repo_tags)
    run(go)


def test_a_burst_in_the_logs_pane(engine: Engine, log_file: Any) -> None:
    big_log(log_file, 5000)

    async def go() -> None:
        app = make_log_app(engine)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one("LogPane")
            view = pane.view  # type: ignore[attr-defined]
            pane.open_path(log_file, "c1")  # type: ignore[attr-defined]
            await wait_for(pilot, lambda: pane.index is not None and pane.index.complete)  # type: ignore[attr-defined]
            view.focus()
            await pilot.pause()
            # t and w would toggle timestamps and wrap if they reached the lines;
            # the w after enter is meant for them.
            burst(app, "&boom|twig\rw")
            await wait_for(pilot, lambda: pane.model is not None and pane.model.filter_done)  # type: ignore[attr-defined]
            assert pane.model.filter.pattern == "boom|twig"  # type: ignore[attr-defined]
            await wait_for(pilot, lambda: view.wrap)
            assert not view.timestamps and view.has_focus
            burst(app, "/ERROR\rN")
            await wait_for(pilot, lambda: view.current_match is not None)
            assert view.search.pattern == "ERROR"
    run(go)


def test_a_lost_hop_does_not_leave_the_app_deaf(images_engine: Engine,
                                                monkeypatch: Any) -> None:
    """Were a key's hop ever dropped, the keys after it still arrive, in order."""
    async def go() -> None:
        app = make_app(images_engine)
        async with app.run_test(size=(100, 30)) as pilot:
            await images_view(app, pilot)
            hop = app._key_hop
            dropped: list[Any] = []

            def lossy(node: Any, *rest: Any) -> None:
                if not dropped:             # the first hop of "/" goes nowhere
                    dropped.append(node)
                    return
                hop(node, *rest)

            monkeypatch.setattr(app, "_key_hop", lossy)
            burst(app, "/alpine")
            await wait_for(pilot, lambda: app.query_one(FilterInput).value == "alpine")
            assert dropped and app.query_one(FilterInput).has_focus
            # The last key's own "done" may still be queued (a busy machine): let it run.
            await wait_for(pilot, lambda: not app._key_busy)
            # A hop that turns up late, once the watchdog has moved on, is ignored.
            busy_seq = app._key_seq
            app.call_later(app._key_done, busy_seq - 1)
            await pilot.pause()
            assert app._key_seq == busy_seq
            burst(app, "x")
            await wait_for(pilot, lambda: app.query_one(FilterInput).value == "alpinex")
            assert not app._key_busy
    run(go)
