"""Helpers for app tests: small real images, k8s-file logs, running a Pilot."""
from __future__ import annotations

import asyncio
import io
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from engine import Engine

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def rootfs_tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o755
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def add_image(engine: Engine, ref: str) -> Any:
    """A one-layer image made by the engine's own import."""
    return engine.import_image(rootfs_tar({"bin/hello": f"#!/bin/sh\necho {ref}\n".encode()}),
                               ref, changes=["CMD [\"/bin/hello\"]"])



def k8s_record(t: datetime, stream: str, text: str, flag: str = "F") -> bytes:
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"
    return f"{stamp} {stream} {flag} {text}\n".encode()


def write_log(path: Path, lines: list[tuple[str, str]], start: datetime = T0) -> Path:
    """A conmon-style log: one record a line, one second apart."""
    with open(path, "ab") as f:
        for i, (stream, text) in enumerate(lines):
            f.write(k8s_record(start + timedelta(seconds=i), stream, text))
    return path


def make_app(engine: Engine, **config: Any) -> Any:
    """The app on ``engine``, watching every 0.1 s; ``config``: :class:`tui.config.Config` fields."""
    from tui.app import PortsideApp
    from tui.config import Config
    return PortsideApp(engine, Config(**config), watch_interval=0.1)


async def images_view(app: Any, pilot: Any) -> Any:
    """Switch to the Images view and wait until it lists every image; returns its table."""
    from tui.widgets.images_table import ImagesTable
    await pilot.press("2")
    table = app.query_one(ImagesTable)
    await wait_for(pilot, lambda: table.row_count == len(app.engine.images()))
    return table


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())


async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``cond()`` holds (workers are real threads)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            app = pilot.app
            notes = [f"{n.title}: {n.message}" for n in getattr(app, "_notifications", [])]
            raise AssertionError(f"condition not met in time; screen {app.screen!r}, "
                                 f"notifications {notes}")
        await pilot.pause(0.05)


def burst(app: Any, text: str) -> None:
    """Type ``text`` the way a paste or ``tmux send-keys`` does: in one go.

    The characters go through Textual's own terminal parser and driver, as
    from a real terminal, with no pause between keys (``pilot.press`` waits
    for the app to go idle after each key, so it cannot show what a burst
    does). ``\\r`` is enter; no escape sequences.
    """
    from textual._xterm_parser import XTermParser
    assert "\x1b" not in text
    for event in XTermParser().feed(text):
        app._driver.process_message(event)
