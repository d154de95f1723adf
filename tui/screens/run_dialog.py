"""The run dialog: a form for ``portside run`` that shows the command line it means.

Every field is checked as it is typed; the equivalent ``portside run -d ...``
line under the form updates live, so users learn the CLI. Submitting
returns a ``ContainerSpec`` for ``engine.run``.
"""
from __future__ import annotations

import re
import shlex
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from engine import ContainerSpec, EngineError
from engine.containers.mounts import parse_size, parse_volume
from engine.network import DEFAULT_NETWORK
from engine.network.ports import parse_port_spec

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(=.*)?", re.S)
RESTART = ("no", "on-failure", "always", "unless-stopped")


class FieldError(ValueError):
    """A field's value is not valid (the message is shown under it)."""


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as err:
        raise FieldError(f"unbalanced quotes: {err}") from err


def _engine_parse(fn: Any, value: str) -> Any:
    """The engine's own parser for a flag value (the CLI uses the same ones)."""
    try:
        return fn(value)
    except EngineError as err:
        raise FieldError(err.message) from err


FIELDS: tuple[tuple[str, str, str], ...] = (
    # id, label, placeholder
    ("image", "Image", "busybox:latest"),
    ("name", "Name", "(random)"),
    ("command", "Command", "(the image's) e.g. sh -c 'echo hi; sleep 1d'"),
    ("env", "Env", "KEY=value OTHER=\"with spaces\""),
    ("volumes", "Volumes", "data:/var/lib/data /srv/www:/www:ro"),
    ("ports", "Ports", "8080:80 127.0.0.1:5353:53/udp"),
    ("memory", "Memory", "e.g. 256m"),
    ("cpus", "CPUs", "e.g. 0.5"),
    ("pids", "PIDs limit", "e.g. 100"),
)


class RunDialog(ModalScreen[tuple[ContainerSpec, bool] | None]):
    """Fill in, watch the command line, ctrl+r (or the button) runs it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="run.cancel"),
        Binding("ctrl+r", "submit", "Run", id="run.submit"),
    ]

    def __init__(self, *, image: str = "", images: list[str] | None = None,
                 networks: list[str] | None = None) -> None:
        super().__init__(classes="dialog")
        self._image = image
        self._images = images or []
        self._networks = networks or ["none", "host"]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box run-box"):
            yield Label("Run a container", classes="dialog-title")
            with VerticalScroll(classes="run-form"):
                with Grid(classes="run-grid"):
                    for fid, label, placeholder in FIELDS:
                        yield Label(label, classes="run-label")
                        with Vertical(classes="run-field"):
                            value = self._image if fid == "image" else ""
                            suggester = (SuggestFromList(self._images, case_sensitive=False)
                                         if fid == "image" and self._images else None)
                            yield Input(value, placeholder=placeholder, id=f"f-{fid}",
                                        suggester=suggester, compact=True)
                            yield Static("", id=f"e-{fid}", classes="field-problem",
                                         markup=False)
                    yield Label("Network", classes="run-label")
                    yield Select([(n, n) for n in self._networks], value=self._default_net(),
                                 allow_blank=False, id="f-network", compact=True)
                    yield Label("Restart", classes="run-label")
                    yield Select([(r, r) for r in RESTART], value="no", allow_blank=False,
                                 id="f-restart", compact=True)
                    yield Label("Options", classes="run-label")
                    with Horizontal(classes="run-checks"):
                        yield Checkbox("-it (tty)", id="f-tty")
                        yield Checkbox("--rm", id="f-rm")
            yield Static("", id="run-cli", classes="run-cli", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Run (ctrl+r)", id="run", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _default_net(self) -> str:
        if DEFAULT_NETWORK in self._networks:    # what `portside run` uses
            return DEFAULT_NETWORK
        for n in self._networks:
            if n not in ("none", "host"):
                return n
        return "none"

    def on_mount(self) -> None:
        self.query_one("#f-image" if not self._image else "#f-name", Input).focus()
        self._update()

    # -- reading the form ------------------------------------------------------------------
    def _value(self, fid: str) -> str:
        return self.query_one(f"#f-{fid}", Input).value.strip()

    def build(self) -> tuple[ContainerSpec, list[str], dict[str, str]]:
        """The spec, the CLI words, and a problem per field (empty when all is well)."""
        problems: dict[str, str] = {}
        argv = ["portside", "run", "-d"]
        kw: dict[str, Any] = {}

        def check(fid: str, fn: Any) -> Any:
            try:
                return fn()
            except FieldError as err:
                problems[fid] = str(err)
                return None

        image = self._value("image")
        if not image:
            problems["image"] = "required"
        elif " " in image:
            problems["image"] = "an image reference has no spaces"
        name = self._value("name")
        if name:
            if not _NAME.fullmatch(name):
                problems["name"] = "letters, digits, _ . - (start with a letter or digit)"
            kw["name"] = name
            argv += ["--name", name]
        if self.query_one("#f-tty", Checkbox).value:
            kw["tty"] = kw["interactive"] = True
            argv.append("-it")
        if self.query_one("#f-rm", Checkbox).value:
            kw["auto_remove"] = True
            argv.append("--rm")
        env = check("env", lambda: _words(self._value("env"))) or []
        for e in env:
            if not _ENV.fullmatch(e):
                problems["env"] = f"{e}: use KEY=value"
            argv += ["-e", e]
        kw["env"] = tuple(env)
        mounts = []
        for v in check("volumes", lambda: _words(self._value("volumes"))) or []:
            m = check("volumes", lambda v=v: _engine_parse(parse_volume, v))
            if m is not None:
                mounts.append(m)
            argv += ["-v", v]
        kw["mounts"] = tuple(mounts)
        ports = check("ports", lambda: _words(self._value("ports"))) or []
        for p in ports:
            check("ports", lambda p=p: _engine_parse(parse_port_spec, p))
            argv += ["-p", p]
        kw["ports"] = tuple(ports)
        network = str(self.query_one("#f-network", Select).value)
        kw["network"] = network
        if network != DEFAULT_NETWORK:          # the default bridge goes unsaid
            argv += ["--network", network]
        if ports and network in ("none", "host"):
            problems["ports"] = f"ports need a bridge network, not {network}"
        restart = str(self.query_one("#f-restart", Select).value)
        kw["restart"] = restart
        if restart != "no":
            argv += ["--restart", restart]
            if kw.get("auto_remove"):
                problems["name"] = problems.get("name", "--rm and a restart policy conflict")
        mem = self._value("memory")
        if mem:
            kw["memory"] = check("memory", lambda: _engine_parse(parse_size, mem))
            argv += ["--memory", mem]
        cpus = self._value("cpus")
        if cpus:
            try:
                kw["cpus"] = float(cpus)
                if kw["cpus"] <= 0:
                    raise ValueError
            except ValueError:
                problems["cpus"] = "a positive number like 0.5 or 2"
            argv += ["--cpus", cpus]
        pids = self._value("pids")
        if pids:
            if pids.isdigit() and int(pids) > 0:
                kw["pids_limit"] = int(pids)
            else:
                problems["pids"] = "a whole number above 0"
            argv += ["--pids-limit", pids]
        argv.append(image or "IMAGE")
        command = check("command", lambda: _words(self._value("command"))) or []
        if command:
            kw["command"] = tuple(command)
            argv += command
        spec = ContainerSpec(image=image, **kw)
        return spec, argv, problems

    # -- live feedback ---------------------------------------------------------------------
    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _update(self) -> None:
        _spec, argv, problems = self.build()
        for fid, _label, _ph in FIELDS:
            problem = self.query_one(f"#e-{fid}", Static)
            problem.update(problems.get(fid, ""))
            problem.display = fid in problems and bool(self._value(fid) or fid != "image")
            self.query_one(f"#f-{fid}", Input).set_class(fid in problems, "-invalid")
        self.query_one("#run-cli", Static).update("$ " + shlex.join(argv))
        self.query_one("#run", Button).disabled = bool(problems)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        spec, _argv, problems = self.build()
        if problems:
            self._update()
            fid = next(iter(problems))
            self.query_one(f"#f-{fid}", Input).focus()
            return
        self.dismiss((spec, True))

    def action_cancel(self) -> None:
        self.dismiss(None)
