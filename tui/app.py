"""The full-screen app: ``portside`` with no arguments.

The App gets its engine injected (tests and scripts pass one on a temp
root). Every engine call goes through :meth:`PortsideApp.engine_call`, which
runs it in a thread worker; the one ``Worker.StateChanged`` handler below
turns an ``EngineError`` into a notification carrying the engine's message,
anything unexpected into an error dialog, and hands results back on the UI
thread.
"""
from __future__ import annotations

import argparse
import gc
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from engine import Engine, EngineError

from .config import DEFAULT_THEME_DARK, DEFAULT_THEME_LIGHT, Config, load_config
from .screens.error import ErrorScreen
from .screens.help import HelpScreen
from .screens.keys import binding_ids
from .screens.main import MainScreen
from .screens.palette import PortsideCommands

Done = Callable[[Any], None]
HOLD_REFRESHES = 5   # refreshes a key waits for a new screen to focus a widget
# A key whose hops have not come back to the app after this long is taken
# as done: a lost hop must not leave every later key held for ever.
KEY_WATCHDOG = 0.5
STYLES = Path(__file__).parent / "styles"


class PortsideApp(App[int]):
    """Browse and drive one engine from the keyboard."""

    TITLE = "portside"
    # Absolute, so subclasses in other modules (tests, scripts) find them too.
    CSS_PATH = [STYLES / name for name in ("app.tcss", "lists.tcss", "detail.tcss",
                                           "dialogs.tcss", "logs.tcss")]
    COMMANDS = App.COMMANDS | {PortsideCommands}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("f2", "toggle_mouse", "Mouse", show=False, id="app.mouse"),
        Binding("f3", "toggle_theme", "Theme", show=False, id="app.theme"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, id="app.palette"),
    ]

    def __init__(self, engine: Engine, config: Config | None = None, *,
                 watch_interval: float = 0.5) -> None:
        super().__init__()
        self.engine = engine
        self.config = config or Config()
        self.watch_interval = watch_interval
        self.mouse_capture = self.config.mouse
        self._done: dict[Worker[Any], Done | None] = {}
        self._held_keys: list[events.Key] = []    # see on_event
        self._key_busy = False
        self._key_seq = 0                         # which key is out; stale hops are ignored
        self._key_watchdog: Timer | None = None
        self._hold_tries = 0
        self.set_keymap(self.config.keymap)

    # -- lifecycle -------------------------------------------------------------
    def on_mount(self) -> None:
        self.theme = self.config.theme if self.config.theme in self.available_themes \
            else DEFAULT_THEME_DARK
        for problem in self.config.problems:
            self.notify(problem, title="config", severity="warning", timeout=10)
        unknown = sorted(set(self.config.keymap) - binding_ids())
        if unknown:
            where = self.config.path or "config"
            self.notify(f"{where}: no binding has the id {', '.join(unknown)} (see ? for "
                        "the ids); those keys are ignored", title="config",
                        severity="warning", timeout=10)
        if self.config.theme not in self.available_themes:
            self.notify(f"unknown theme {self.config.theme!r}; using {DEFAULT_THEME_DARK}",
                        title="config", severity="warning")
        if not self.mouse_capture:
            self.call_after_refresh(self._apply_mouse)
        self.set_timer(1.0, _calm_the_collector)

    # -- keys typed in a burst ----------------------------------------------------
    # Textual hands each key to the widget focused when the app dequeues it,
    # and runs its binding only once it has bubbled back up, so a burst (a
    # paste over ssh, ``tmux send-keys``) was handed to the list before ``/``
    # had moved the focus to the filter, and lost. Here a key is handed out
    # only when the one before it is done: it has gone up through every
    # ancestor of its widget to the app, and what its action queued on the
    # app (a deferred focus) has run. Keys meant for a screen that is still
    # mounting wait (a few refreshes) for it to focus something. Should a
    # hop ever be lost, a watchdog hands out the next key anyway.
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._held_keys.append(event)
            if not self._key_busy:
                await self._next_key()
            return
        await super().on_event(event)

    async def _next_key(self) -> None:
        self._key_seq += 1
        seq = self._key_seq
        if self._key_watchdog is not None:
            self._key_watchdog.stop()
            self._key_watchdog = None
        if not self._held_keys:
            self._key_busy = False
            return
        self._key_busy = True
        # Through the app's queue, so it never runs in the middle of a key.
        self._key_watchdog = self.set_timer(
            KEY_WATCHDOG, lambda: self.call_later(self._key_done, seq), name="key-watchdog")
        if self.focused is None and self._hold_tries < HOLD_REFRESHES \
                and len(self.screen_stack) > 1:
            self._hold_tries += 1
            self.call_after_refresh(self._key_done, seq)
            return
        self._hold_tries = 0
        key = self._held_keys.pop(0)
        target = self.focused or self.screen
        await super().on_event(key)
        if not (key.is_forwarded and target.call_later(self._key_hop, target, seq)):
            self.call_later(self._key_done, seq)       # a priority binding took it

    def _key_hop(self, node: Any, seq: int) -> None:
        """Runs on ``node`` after it handled key ``seq``; next, its parent."""
        parent = None if node is self else node._parent
        if parent is None or not parent.call_later(self._key_hop, parent, seq):
            self.call_later(self._key_done, seq)

    async def _key_done(self, seq: int) -> None:
        """Key ``seq`` is done (or its watchdog fired): hand out the next one."""
        if seq == self._key_seq:
            await self._next_key()

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("the main screen is not up")

    # -- engine calls ------------------------------------------------------------
    def engine_call(self, fn: Callable[..., Any], *args: Any, done: Done | None = None,
                    title: str = "", group: str = "engine", exclusive: bool = False,
                    **kwargs: Any) -> Worker[Any]:
        """Run ``fn(*args, **kwargs)`` in a thread; ``done(result)`` on the UI thread.

        Engine errors become a notification titled ``title``; nothing here can
        freeze or crash the app.
        """
        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                # Thread workers die after one call; close the per-thread
                # database connection rather than leaving it to the GC.
                close = getattr(self.engine, "close", None)
                if close is not None:
                    close()

        worker = self.run_worker(call, name=getattr(fn, "__name__", "engine"), group=group,
                                 description=title, exit_on_error=False, exclusive=exclusive,
                                 thread=True)
        self._done[worker] = done
        return worker

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.SUCCESS:
            done = self._done.pop(worker, None)
            if done is not None and _still_there(done):
                done(worker.result)
        elif event.state == WorkerState.ERROR:
            self._done.pop(worker, None)
            self.report_error(worker.error, worker.description)
        elif event.state == WorkerState.CANCELLED:
            self._done.pop(worker, None)

    def report_error(self, error: BaseException | None, title: str = "") -> None:
        """The single place errors are shown: engine errors as toasts, bugs as a dialog."""
        if isinstance(error, EngineError):
            self.notify(str(error), title=title or "error", severity="error", timeout=8)
        elif error is not None:
            self.push_screen(ErrorScreen(error, title))

    # -- app-wide actions ---------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = DEFAULT_THEME_LIGHT if self.current_theme.dark else DEFAULT_THEME_DARK

    def action_toggle_mouse(self) -> None:
        self.mouse_capture = not self.mouse_capture
        self._apply_mouse()
        self.notify("mouse capture on" if self.mouse_capture else
                    "mouse capture off: select text with the mouse; F2 turns it back on",
                    timeout=4)

    def _apply_mouse(self) -> None:
        driver = self._driver
        if driver is None:
            return
        # Textual has no public switch for mouse reporting; the terminal
        # drivers have these two methods (the headless test driver has not).
        method = "_enable_mouse_support" if self.mouse_capture else "_disable_mouse_support"
        toggle = getattr(driver, method, None)
        if toggle is not None:
            toggle()

    def get_system_commands(self, screen: Screen[Any]) -> Any:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Toggle mouse capture", "Let the terminal select text (F2)",
                            self.action_toggle_mouse)
        yield SystemCommand("Toggle light/dark theme", "F3", self.action_toggle_theme)

    # -- handing the terminal to a process ---------------------------------------
    def run_in_terminal(self, argv: list[str], note: str = "",
                        shown: list[str] | None = None) -> int | None:
        """Suspend the app, run ``argv`` on the real terminal, come back.

        ``shown`` is the command line printed first, the one users would
        type (default: ``argv``); ``note`` is printed under it (e.g. how to
        detach). Returns the exit code, or None when the command could not start.
        """
        try:
            with self.suspend():
                # A clean screen, and the command shown so users learn the CLI.
                sys.stdout.write(f"\x1b[H\x1b[2J\x1b[2m$ {shlex.join(shown or argv)}\x1b[0m\n")
                if note:
                    sys.stdout.write(f"\x1b[2m{note}\x1b[0m\n")
                sys.stdout.flush()
                # ctrl+c now reaches the whole foreground group: let it stop
                # the child, not the app. A handler (unlike SIG_IGN) is not
                # inherited by the child, which gets the default.
                previous = signal.signal(signal.SIGINT, lambda *_: None)
                try:
                    code = subprocess.call(argv)
                except OSError as err:
                    self.call_later(self.notify, f"cannot run {argv[0]}: {err}", severity="error")
                    return None
                finally:
                    signal.signal(signal.SIGINT, previous)
        except Exception as err:  # SuspendNotSupported (textual-web, tests)
            self.notify(f"cannot hand over the terminal here: {err}", severity="error")
            return None
        self.call_after_refresh(self._apply_mouse)
        self.refresh()
        return code

    def portside_argv(self, *verb: str) -> list[str]:
        """The command line of this portside, on this root, running ``verb``."""
        paths = self.engine.paths
        return [sys.executable, "-m", "tui", "--root", str(paths.root),
                "--run-dir", str(paths.run), *verb]


def _calm_the_collector() -> None:
    """Keep the cyclic GC from stalling key presses while a log floods in.

    Measured with bench/tui_bench.py (following 50k lines/s): full (gen 2)
    collections over the ~100k objects of Textual and the app took 50-280
    ms each, several a second, and were the worst key latencies. Freezing
    what exists once the app is up takes those objects out of every later
    collection, and a larger first threshold makes collections rarer; the
    worst key latency went from ~180 ms to ~35 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 50)


def _still_there(done: Done) -> bool:
    owner = getattr(done, "__self__", None)
    return owner is None or getattr(owner, "is_attached", True) or isinstance(owner, App)


def _parse(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="portside")
    p.add_argument("--root")
    p.add_argument("--run-dir")
    p.add_argument("--runtime")
    return p.parse_args(args)


def _terminal_problem() -> str | None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return ("portside: the app needs a terminal (stdin and stdout are not one).\n"
                "Over ssh use `ssh -t host portside`, or run a verb: portside --help")
    return None


def _fix_term() -> None:
    # Textual drives the terminal with xterm sequences whatever TERM says;
    # only a missing or "dumb" TERM makes Rich turn colour off, so give it a
    # safe common value instead of failing.
    term = os.environ.get("TERM", "")
    if term in ("", "dumb", "unknown"):
        os.environ["TERM"] = "xterm-256color"


def run_app(args: list[str]) -> int:
    """Open the app on the engine ``args`` (--root/--run-dir/--runtime) select."""
    opts = _parse(args)
    problem = _terminal_problem()
    if problem:
        sys.stderr.write(problem + "\n")
        return 1
    if opts.runtime:
        os.environ["PORTSIDE_RUNTIME"] = opts.runtime
    try:
        engine = Engine(opts.root, opts.run_dir)
    except EngineError as err:
        sys.stderr.write(f"Error: {err}\n")
        return err.exit_code
    _fix_term()
    app = PortsideApp(engine, load_config())
    try:
        app.run()
    finally:
        engine.close()
    return app.return_code or 0
