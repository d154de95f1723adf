"""End to end: ``portside`` in a real terminal (tmux), keys in, screen text out."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine import ContainerSpec, Engine
from tests.conftest import REPO, busybox_engine, need_tool, remove_containers


class Tmux:
    """One tmux server of our own (its own socket), one session, 80x24."""

    def __init__(self, tmux: str) -> None:
        self.tmux = tmux
        self.socket = f"portside-test-{uuid.uuid4().hex[:8]}"

    def _run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def start(self, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self._run("new-session", "-d", "-x", "80", "-y", "24", "-s", "t",
                  f"cd {shlex.quote(str(REPO))} && env {exports} {command}; echo EXIT=$?; sleep 60")

    def keys(self, *keys: str) -> None:
        for k in keys:
            self._run("send-keys", "-t", "t", k)
            time.sleep(0.15)

    def burst(self, *keys: str) -> None:
        """All of ``keys`` in one send-keys: one write, as a paste over ssh arrives."""
        self._run("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "t")

    def wait(self, cond: Callable[[str], bool], timeout: float = 15) -> str:
        end = time.monotonic() + timeout
        while True:
            text = self.screen()
            if cond(text):
                return text
            if time.monotonic() > end:
                raise AssertionError(f"screen never matched; last screen:\n{text}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(need_tool("tmux"))
    yield t
    t.kill()


def test_portside_in_a_terminal(images_engine: Engine, tmux: Tmux, tmp_path: Path) -> None:
    root = images_engine.paths.root
    env = {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    tmux.start(f"{shlex.quote(sys.executable)} -m tui --root {shlex.quote(str(root))}", env)
    tmux.wait(lambda s: "1 Containers" in s and "portside" in s)
    tmux.keys("2")
    screen = tmux.wait(lambda s: "alpine:3.19" in s and "hello:1" in s)
    assert "REPOSITORY:TAG" in screen
    # One burst: / and the filter text (p is the list's pull key), enter,
    # then t, the list's tag key, for the one row left.
    tmux.burst("/", "a", "l", "p", "i", "n", "e", "Enter", "t")
    tmux.wait(lambda s: "Tag alpine:3.19 as" in s)
    tmux.keys("Escape")
    tmux.wait(lambda s: "Tag alpine" not in s and "hello:1" not in s.split("────")[0])
    tmux.keys("Escape")
    tmux.wait(lambda s: "hello:1" in s.split("────")[0])
    tmux.keys("?")
    tmux.wait(lambda s: "app.quit" in s)
    tmux.keys("Escape")
    tmux.wait(lambda s: "app.quit" not in s)
    tmux.keys("q")
    assert "EXIT=0" in tmux.wait(lambda s: "EXIT=" in s)


def test_unknown_term_falls_back(images_engine: Engine, tmux: Tmux, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO), "TERM": "no-such-terminal-9000", "HOME": str(tmp_path)}
    tmux.start(f"{shlex.quote(sys.executable)} -m tui --root "
               f"{shlex.quote(str(images_engine.paths.root))}", env)
    tmux.wait(lambda s: "1 Containers" in s)
    tmux.keys("q")
    assert "EXIT=0" in tmux.wait(lambda s: "EXIT=" in s)


def test_no_terminal_is_a_clear_error(images_engine: Engine) -> None:
    p = subprocess.run([sys.executable, "-m", "tui", "--root", str(images_engine.paths.root)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=30)
    assert p.returncode == 1 and "needs a terminal" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.integration
def test_attach_and_exec_hand_the_terminal_over_and_back(tmux: Tmux, tmp_path: Path) -> None:
    """a and e suspend the app and give a real container the terminal; detaching
    (ctrl+p ctrl+q) or leaving the shell brings the app back, the container still running."""
    engine = busybox_engine(tmp_path / "root")
    try:
        info = engine.run(ContainerSpec(image="busybox", name="shell", command=("sh",),
                                        interactive=True, tty=True, network="none"))
        env = {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "HOME": str(tmp_path),
               "XDG_CONFIG_HOME": str(tmp_path / "config")}
        tmux.start(f"{shlex.quote(sys.executable)} -m tui --root "
                   f"{shlex.quote(str(engine.paths.root))} --run-dir "
                   f"{shlex.quote(str(engine.paths.run))}", env)
        tmux.wait(lambda s: "shell" in s and "running" in s)
        tmux.keys("a")
        tmux.wait(lambda s: "$ portside attach shell" in s and "ctrl+p ctrl+q detaches" in s)
        tmux.keys("echo attached-$((6*7))", "Enter")
        tmux.wait(lambda s: "attached-42" in s)           # the shell's answer, not the echo of the keys
        tmux.keys("C-p", "C-q")
        # back in the app, whose logs pane has the session in the container's log
        tmux.wait(lambda s: "1 Containers" in s and "$ portside attach" not in s
                  and "attached-42" in s)
        assert engine.container(info.id).status == "running"
        tmux.keys("e")
        tmux.wait(lambda s: "$ portside exec -it shell sh" in s)
        tmux.keys("echo exec-$((6*7))", "Enter")
        tmux.wait(lambda s: "exec-42" in s)
        tmux.keys("exit", "Enter")
        tmux.wait(lambda s: "1 Containers" in s and "$ portside exec" not in s)
        assert engine.container(info.id).status == "running"
        tmux.keys("q")
        assert "EXIT=0" in tmux.wait(lambda s: "EXIT=" in s)
    finally:
        remove_containers(engine)
        engine.close()
