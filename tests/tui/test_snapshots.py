"""How screens look, as text, at 80x24 and 160x50 (pinned clock and time zone).

A changed look fails with a diff; after checking it is intended, rewrite
the files with ``PORTSIDE_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py``.
"""
from __future__ import annotations

import difflib
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from textual.app import ComposeResult
from textual.screen import Screen

from engine import Engine
from tests.imagefactory import oci_image, oci_layout
from tests.tui.fixtures import run, wait_for, write_log
from tui.app import PortsideApp
from tui.config import Config, builtin_highlights
from tui.screens.run_dialog import RunDialog
from tui.widgets import format as fmt
from tui.widgets.images_table import ImagesTable
from tui.widgets.log_pane import LogPane

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZES = [(80, 24), (160, 50)]
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "current_time", lambda: NOW)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def oci_engine(engine: Engine, tmp_path: Path) -> Engine:
    """Images whose ids and times are the same on every run."""
    for name, files in (("shop/web:1.4", {"srv/index.html": b"<h1>hi</h1>"}),
                        ("shop/db:16", {"var/lib/db/init.sql": b"create table t();" * 50})):
        layout = tmp_path / name.replace("/", "_")
        oci_layout(layout, [oci_image(layout, [files])], name)
        engine.load(layout)
    return engine


def screen_text(app: Any) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join(s.text.rstrip() for s in strips) + "\n"


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("PORTSIDE_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not os.environ.get("PORTSIDE_UPDATE_SNAPSHOTS"):
            pytest.fail(f"new snapshot {path.name} written; check it and run again")
        return
    want = path.read_text(encoding="utf-8")
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            "expected", "now"))
        pytest.fail(f"{name} looks different:\n{diff}")


def body(text: str) -> str:
    """The screen without the header line (host facts and paths differ per machine)."""
    return text.split("\n", 1)[1]


def shoot(engine: Engine, size: tuple[int, int],
          steps: Callable[[Any, Any], Awaitable[None]]) -> str:
    out: list[str] = []

    async def go() -> None:
        app = PortsideApp(engine, Config(highlights=builtin_highlights()), watch_interval=0.1)
        async with app.run_test(size=size) as pilot:
            await steps(app, pilot)
            await pilot.pause(0.2)
            out.append(screen_text(app))
    run(go)
    return out[0]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_images_view(oci_engine: Engine, size: tuple[int, int]) -> None:
    async def steps(app: Any, pilot: Any) -> None:
        await pilot.press("2")
        table = app.query_one(ImagesTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        table.select_key(oci_engine.image("shop/web:1.4").id)
        await pilot.press("H")
    check(f"images-{size[0]}x{size[1]}", body(shoot(oci_engine, size, steps)))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_dialog(oci_engine: Engine, size: tuple[int, int]) -> None:
    async def steps(app: Any, pilot: Any) -> None:
        await app.push_screen(RunDialog(image="shop/web:1.4", networks=["none", "host"]))
        await pilot.pause()
        app.screen.query_one("#f-name").value = "web"
        app.screen.query_one("#f-ports").value = "8080:80"        # invalid on "none"
    check(f"run-dialog-{size[0]}x{size[1]}", body(shoot(oci_engine, size, steps)))


def test_help(oci_engine: Engine) -> None:
    async def steps(app: Any, pilot: Any) -> None:
        await pilot.press("question_mark")
    check("help-80x24", body(shoot(oci_engine, (80, 24), steps)))


class LogApp(PortsideApp):
    def get_default_screen(self) -> Screen[Any]:
        return Screen()

    def compose(self) -> ComposeResult:
        yield LogPane(id="logs")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_logs_with_search_and_timestamps(engine: Engine, log_file: Path,
                                         size: tuple[int, int]) -> None:
    lines = []
    for i in range(200):
        lines.append(("stdout", f"GET /items/{i} 200"))
        if i % 10 == 3:
            lines.append(("stderr", f"ERROR timeout talking to db (attempt {i})"))
        if i % 25 == 7:
            lines.append(("stdout", "WARN slow " + "x" * 150))
    write_log(log_file, lines)
    out: list[str] = []

    async def go() -> None:
        app = LogApp(engine, Config(highlights=builtin_highlights()))
        async with app.run_test(size=size) as pilot:
            pane = app.query_one(LogPane)
            pane.open_path(log_file, "c1")
            await wait_for(pilot, lambda: pane.index is not None and pane.index.complete
                           and pane.view.rows == len(lines))
            pane.view.focus()
            await pilot.press("t", "slash", *"timeout", "enter")
            await wait_for(pilot, lambda: pane.view.current_match is not None)
            await pilot.pause(0.2)
            out.append(screen_text(app))
    run(go)
    check(f"logs-{size[0]}x{size[1]}", out[0])


def test_help_160x50(oci_engine: Engine) -> None:
    async def steps(app: Any, pilot: Any) -> None:
        await pilot.press("question_mark")
    check("help-160x50", body(shoot(oci_engine, (160, 50), steps)))


@pytest.mark.integration
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_containers_view(oci_engine: Engine, size: tuple[int, int]) -> None:
    from engine import ContainerSpec
    from tests.conftest import need_tool
    from tui.widgets.containers_table import ContainersTable
    for tool in ("runc", "conmon"):
        need_tool(tool)
    made = [oci_engine.create(ContainerSpec(image=image, name=name, command=command,
                                            labels={"tier": tier})).id
            for image, name, command, tier in (
                ("shop/web:1.4", "web", ("httpd", "-f", "-p", "8080"), "front"),
                ("shop/db:16", "db", ("postgres",), "data"),
                ("shop/web:1.4", "worker", ("sh", "-c", "work"), "back"))]
    try:
        async def steps(app: Any, pilot: Any) -> None:
            table = app.query_one(ContainersTable)
            await wait_for(pilot, lambda: all(k in table.records for k in made))
            table.select_key(made[0])
            await pilot.press("space")                  # one marked
        text = body(shoot(oci_engine, size, steps))
    finally:
        for cid in made:
            oci_engine.rm(cid, force=True)
    for n, cid in enumerate(made):                      # ids differ per run
        text = text.replace(cid[:12], f"<id {n}>".ljust(12))
    check(f"containers-{size[0]}x{size[1]}", text)


class StatsApp(PortsideApp):
    """The stats pane alone, fed fixed samples (its drawing, not the engine's numbers)."""

    def get_default_screen(self) -> Screen[Any]:
        return Screen()

    def compose(self) -> ComposeResult:
        from tui.widgets.stats_view import StatsView
        yield StatsView(id="stats")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_stats_pane(engine: Engine, size: tuple[int, int]) -> None:
    from datetime import timedelta

    from engine.records import ContainerStats
    from tui.widgets.stats_view import StatsView
    out: list[str] = []

    async def go() -> None:
        app = StatsApp(engine, Config())
        async with app.run_test(size=size) as pilot:
            view = app.query_one(StatsView)
            view.key = "c1"
            view._hist = {k: __import__("collections").deque(maxlen=120)
                          for k in ("cpu", "mem", "net", "blk", "pids")}
            view._cap_key, view._cap = "c1", (50.0, "limit")
            for i in range(40):
                view._got(ContainerStats(
                    id="c1", name="web", time=NOW + timedelta(seconds=2 * i),
                    cpu_percent=float((i * 7) % 50), memory_usage=(40 + i % 9) << 20,
                    memory_limit=256 << 20, memory_percent=(40 + i % 9) / 2.56,
                    net_rx=i * 150_000, net_tx=i * 20_000, block_read=i * 4096,
                    block_write=i * 65536, pids=3 + i % 4, online_cpus=2))
            await pilot.pause(0.2)
            out.append(screen_text(app))
    run(go)
    check(f"stats-{size[0]}x{size[1]}", out[0])
