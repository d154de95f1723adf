#!/usr/bin/env python3
"""Benchmark the app: first frame, idle CPU, a 1 GB log's tail, following a flood.

Everything runs on a private engine root in a temp dir, with real busybox
containers (root needed), and the app in a real terminal (a tmux server of
our own). It prints, in one run:

- ``first-frame``: seconds from launching ``portside`` until the Containers
  list shows its rows, with N containers (default 200);
- ``idle``: the app's CPU use over 30 s with 100 running containers on screen
  (percent of one core);
- ``bigtail``: seconds until the last line of a 1 GB log is on screen and the
  app's RSS then and once the whole log is indexed; beside Toolong (``tl``)
  opening the same file, if it is installed. Toolong pins an old Textual,
  so give it a venv of its own rather than the project's (``python3 -m venv
  /opt/toolong/venv && /opt/toolong/venv/bin/pip install toolong``); the
  bench finds ``tl`` on PATH, at ``$TOOLONG`` or in /opt/toolong/venv/bin,
  or ``--toolong PATH``;
- ``follow``: a container printing about 50,000 lines/s; lines/s the logs
  pane indexes while following, and the worst and median time a key press
  takes to be handled meanwhile (in process, Textual's Pilot).

Targets (issue 6): first frame < 1 s; idle < 3 % of a core; 1 GB tail < 1 s
and < 150 MB RSS; key latency < 100 ms while following.

Usage: ``python bench/tui_bench.py [--only first-frame,idle,bigtail,follow]
[--containers 200] [--running 100] [--idle-seconds 30] [--log-mb 1024]
[--follow-seconds 10] [--toolong tl]``
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import ContainerSpec, Engine, EngineError  # noqa: E402

SECTIONS = ("first-frame", "idle", "bigtail", "follow")


# -- a terminal of our own -----------------------------------------------------------------

class Terminal:
    """A tmux server on its own socket with one window running one command."""

    def __init__(self, width: int = 160, height: int = 50) -> None:
        self.tmux = shutil.which("tmux") or sys.exit("tui_bench: tmux is needed (make setup)")
        self.socket = f"portside-bench-{uuid.uuid4().hex[:8]}"
        self.size = (width, height)

    def _run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def start(self, argv: list[str]) -> float:
        env = f"PYTHONPATH={shlex.quote(str(REPO))} TERM=xterm-256color"
        t0 = time.monotonic()
        self._run("new-session", "-d", "-x", str(self.size[0]), "-y", str(self.size[1]),
                  "-s", "b", f"cd {shlex.quote(str(REPO))} && env {env} {shlex.join(argv)}")
        return t0

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "b")

    def wait(self, cond: Callable[[str], bool], timeout: float = 60) -> float:
        end = time.monotonic() + timeout
        while True:
            if cond(self.screen()):
                return time.monotonic()
            if time.monotonic() > end:
                raise SystemExit(f"tui_bench: the screen never showed what was expected:\n"
                                 f"{self.screen()}")
            time.sleep(0.02)

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", "b", *keys)

    def process(self) -> psutil.Process:
        """The program in the window (the pane's own process)."""
        pid = int(self._run("list-panes", "-t", "b", "-F", "#{pane_pid}").split()[0])
        proc = psutil.Process(pid)
        kids = proc.children(recursive=True)
        return kids[-1] if kids else proc

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True)


def portside(engine: Engine) -> list[str]:
    return [sys.executable, "-m", "tui", "--root", str(engine.paths.root),
            "--run-dir", str(engine.paths.run)]


# -- containers --------------------------------------------------------------------------------

def make_containers(engine: Engine, n: int, *, running: bool, prefix: str) -> list[str]:
    ids = []
    for i in range(n):
        spec = ContainerSpec(image="busybox", name=f"{prefix}{i:03d}",
                             command=("sleep", "100000"))
        ids.append((engine.run(spec) if running else engine.create(spec)).id)
    return ids


def remove_all(engine: Engine) -> None:
    for c in engine.containers(all=True):
        try:
            engine.rm(c.id, force=True)
        except EngineError:
            pass


def wait_for_exit_hooks(root: Path, timeout: float = 15.0) -> None:
    """Let the monitors' exit commands (``container cleanup``) finish before the
    root goes; one that runs after would create the root again."""
    import psutil
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = False
        for proc in psutil.process_iter(["cmdline"]):
            if str(root) in " ".join(proc.info["cmdline"] or ()):
                busy = True
                break
        if not busy:
            return
        time.sleep(0.2)


# -- sections ---------------------------------------------------------------------------------

def first_frame(engine: Engine, n: int) -> dict[str, Any]:
    made = make_containers(engine, n, running=False, prefix="ff")
    term = Terminal()
    try:
        t0 = term.start(portside(engine))
        # The list is sorted by status then age: the newest created one is on top.
        t1 = term.wait(lambda s: f"ff{n - 1:03d}" in s and s.count(" ff") >= 20)
        term.close()
        return {"containers": len(made), "first_frame_s": round(t1 - t0, 3),
                "in_process_s": in_process_first_frame(engine, n)}
    finally:
        term.close()
        remove_all(engine)


def in_process_first_frame(engine: Engine, n: int) -> float:
    """From App start (modules already imported) to all rows in the table."""
    from tui.app import PortsideApp
    from tui.widgets.containers_table import ContainersTable
    took: list[float] = []

    async def go() -> None:
        t0 = time.monotonic()
        app = PortsideApp(engine)
        async with app.run_test(size=(160, 50)) as pilot:
            table = app.query_one(ContainersTable)
            while table.row_count < n:
                await pilot.pause(0.01)
            took.append(time.monotonic() - t0)

    asyncio.run(go())
    return round(took[0], 3)


def idle_cpu(engine: Engine, n: int, seconds: float) -> dict[str, Any]:
    make_containers(engine, n, running=True, prefix="idle")
    term = Terminal()
    try:
        term.start(portside(engine))
        term.wait(lambda s: "idle" in s and "running" in s)
        time.sleep(5)                     # settle: first lists
        proc = term.process()

        def window() -> float:
            c0, t0 = proc.cpu_times(), time.monotonic()
            time.sleep(seconds)
            c1 = proc.cpu_times()
            busy = (c1.user - c0.user) + (c1.system - c0.system)
            return round(100 * busy / (time.monotonic() - t0), 2)

        # The first window includes the rows' CPU sparklines filling up (one
        # redraw per sample); the second is the steady state.
        first, steady = window(), window()
        return {"running": n, "seconds": seconds, "idle_cpu_percent_first": first,
                "idle_cpu_percent_steady": steady,
                "rss_mb": round(proc.memory_info().rss / 1e6, 1)}
    finally:
        term.close()
        remove_all(engine)


def write_big_log(path: Path, megabytes: int) -> str:
    """A k8s-file log of about ``megabytes`` MB; returns its last line's text."""
    t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    block = []
    for i in range(10_000):
        stamp = (t + timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
        stream = "stderr" if i % 13 == 0 else "stdout"
        block.append(f"{stamp} {stream} F GET /api/items/{i} 200 {i % 97}ms user=alice "
                     f"trace=0123456789abcdef\n")
    chunk = "".join(block).encode()
    target = megabytes * 1_000_000
    last = "the very last line of the log"
    with open(path, "wb") as f:
        written = 0
        while written < target:
            f.write(chunk)
            written += len(chunk)
        f.write(f"2024-05-02T00:00:00.000000000Z stdout F {last}\n".encode())
    return last


def find_toolong() -> str | None:
    """Toolong's ``tl``: on PATH, at $TOOLONG, or in its own venv under /opt."""
    for candidate in (shutil.which("tl"), os.environ.get("TOOLONG"),
                      "/opt/toolong/venv/bin/tl"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def big_tail(engine: Engine, megabytes: int, toolong: str | None) -> dict[str, Any]:
    info = engine.create(ContainerSpec(image="busybox", name="biglog", command=("true",)))
    log = Path(engine.container_files(info.id).log)
    last = write_big_log(log, megabytes)
    subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)   # warm cache
    out: dict[str, Any] = {"log_mb": round(log.stat().st_size / 1e6)}
    term = Terminal()
    try:
        t0 = term.start(portside(engine))
        t1 = term.wait(lambda s: last in s)
        proc = term.process()
        out["portside_tail_s"] = round(t1 - t0, 3)
        out["portside_rss_mb_at_tail"] = round(proc.memory_info().rss / 1e6, 1)
        end = time.monotonic() + 120
        while "indexing" in term.screen() and time.monotonic() < end:
            time.sleep(0.2)
        out["portside_index_s"] = round(time.monotonic() - t0, 2)
        out["portside_rss_mb_indexed"] = round(proc.memory_info().rss / 1e6, 1)
    finally:
        term.close()
    out["in_process_tail_s"] = in_process_tail(engine, log, last)
    if toolong:
        term = Terminal()
        try:
            t0 = term.start([toolong, str(log)])
            t1 = term.wait(lambda s: last in s, timeout=300)
            proc = term.process()
            out["toolong_tail_s"] = round(t1 - t0, 3)
            out["toolong_rss_mb_at_tail"] = round(proc.memory_info().rss / 1e6, 1)
            time.sleep(3)
            out["toolong_rss_mb_after_3s"] = round(proc.memory_info().rss / 1e6, 1)
        finally:
            term.close()
    else:
        out["toolong"] = "not installed (see the docstring: its own venv, or --toolong PATH)"
    remove_all(engine)
    return out


def in_process_tail(engine: Engine, log: Path, last: str) -> float:
    """From opening the log in the logs pane (app already up) to its last line on screen."""
    from textual.app import ComposeResult
    from textual.screen import Screen

    from tui.app import PortsideApp
    from tui.widgets.log_pane import LogPane

    class LogApp(PortsideApp):
        def get_default_screen(self) -> Screen[Any]:
            return Screen()

        def compose(self) -> ComposeResult:
            yield LogPane(id="logs")

    took: list[float] = []

    async def go() -> None:
        app = LogApp(engine)
        async with app.run_test(size=(160, 50)) as pilot:
            pane = app.query_one(LogPane)
            t0 = time.monotonic()
            pane.open_path(log, "biglog")
            view = pane.view
            while not any(last in view.render_line(y).text for y in range(view.size.height)):
                await pilot.pause(0.005)
            took.append(time.monotonic() - t0)

    asyncio.run(go())
    return round(took[0], 3)


FLOOD = ("sh", "-c", "while true; do yes 'GET /api/items 200 12ms user=alice "
         "trace=0123456789abcdef' | head -n 5000; sleep 0.09; done")


def follow(engine: Engine, seconds: float) -> dict[str, Any]:
    from textual import events

    from tui.app import PortsideApp
    from tui.config import Config, builtin_highlights
    from tui.widgets.containers_table import ContainersTable
    from tui.widgets.log_pane import LogPane

    info = engine.run(ContainerSpec(image="busybox", name="flood", command=FLOOD))
    log = Path(engine.container_files(info.id).log)
    result: dict[str, Any] = {}

    async def go() -> None:
        app = PortsideApp(engine, Config(highlights=builtin_highlights()))
        async with app.run_test(size=(160, 50)) as pilot:
            table = app.query_one(ContainersTable)
            while info.id not in table.records:
                await pilot.pause(0.05)
            table.focus()
            table.select_key(info.id)
            pane = app.query_one(LogPane)
            while pane.index is None or len(pane.index) == 0:
                await pilot.pause(0.05)
            await pilot.pause(1.0)
            index = pane.index
            view = pane.view
            view.focus()
            # Latency = from the key arriving (as the terminal driver hands it
            # over) to its action running on the UI thread.
            handled: list[float] = []
            for name in ("action_scroll_up", "action_scroll_down", "action_bottom"):
                original = getattr(view, name)

                def timed(*a: Any, _original: Any = original, **k: Any) -> Any:
                    handled.append(time.monotonic())
                    return _original(*a, **k)
                setattr(view, name, timed)
            size0, n0, t0 = log.stat().st_size, len(index), time.monotonic()
            lat: list[float] = []
            keys = ["k", "j", "G"]
            driver = app._driver
            while time.monotonic() - t0 < seconds:
                key = keys[len(lat) % 3]
                event = events.Key(key, key)
                event.set_sender(app)
                before = len(handled)
                k0 = time.monotonic()
                driver.send_message(event)
                while len(handled) == before and time.monotonic() - k0 < 5:
                    await asyncio.sleep(0.001)
                lat.append(handled[-1] - k0 if len(handled) > before else 5.0)
                await asyncio.sleep(0.1)
            dt = time.monotonic() - t0
            shown = len(index)
            from engine.containers.logs import LineIndex
            with LineIndex(log) as fresh:          # the truth: every line in the file now
                fresh.scan_backward()
                total = len(fresh)
            result.update({
                "seconds": round(dt, 1),
                "written_MB_per_s": round((log.stat().st_size - size0) / dt / 1e6, 1),
                "followed_lines_per_s": int((shown - n0) / dt),
                "behind_at_end_lines": total - shown,
                "key_latency_ms_median": round(1000 * statistics.median(lat), 1),
                "key_latency_ms_worst": round(1000 * max(lat), 1),
                "key_latency_ms_worst5": [round(1000 * x) for x in sorted(lat)[-5:]],
                "keys": len(lat),
                "rss_mb": round(psutil.Process().memory_info().rss / 1e6, 1),
            })

    try:
        asyncio.run(go())
    finally:
        remove_all(engine)
    return result


# -- main ---------------------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(SECTIONS))
    p.add_argument("--containers", type=int, default=200)
    p.add_argument("--running", type=int, default=100)
    p.add_argument("--idle-seconds", type=float, default=30)
    p.add_argument("--log-mb", type=int, default=1024)
    p.add_argument("--follow-seconds", type=float, default=10)
    p.add_argument("--toolong", default=find_toolong())
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("tui_bench: run as root (it runs real containers)\n")
        return 1
    want = [s for s in a.only.split(",") if s]
    bad = set(want) - set(SECTIONS)
    if bad:
        p.error(f"unknown section {sorted(bad)[0]}; choose from {', '.join(SECTIONS)}")
    tmp = Path(tempfile.mkdtemp(prefix="portside-tui-bench-"))
    engine = Engine(tmp / "root")
    try:
        engine.bootstrap_busybox()
        results: dict[str, dict[str, Any]] = {}
        for section in want:
            print(f"== {section}", flush=True)
            if section == "first-frame":
                results[section] = first_frame(engine, a.containers)
            elif section == "idle":
                results[section] = idle_cpu(engine, a.running, a.idle_seconds)
            elif section == "bigtail":
                results[section] = big_tail(engine, a.log_mb, a.toolong)
            else:
                results[section] = follow(engine, a.follow_seconds)
            for k, v in results[section].items():
                print(f"   {k:28} {v}", flush=True)
        return 0
    finally:
        remove_all(engine)
        wait_for_exit_hooks(tmp)
        try:
            engine.system_reset()      # the bench root's bridge stays up until then (as docker0)
        except Exception as err:       # noqa: BLE001 - say so, the temp dir goes anyway
            print(f"system reset of the bench root failed: {err}", file=sys.stderr)
            engine.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
