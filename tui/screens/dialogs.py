"""Small modal dialogs: confirm a destructive action, ask for one value."""
from __future__ import annotations

from typing import Callable, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no before anything destructive; ``y``/``enter`` yes, ``n``/``esc`` no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", show=False, id="confirm.cancel"),
    ]

    def __init__(self, title: str, body: str = "", *, yes: str = "Remove",
                 danger: bool = True) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._body = body
        self._yes = yes
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self._title, classes="dialog-title")
            if self._body:
                yield Static(self._body, classes="dialog-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._yes} (y)", id="yes", compact=True,
                             variant="error" if self._danger else "primary")
                yield Button("Cancel (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


Validator = Callable[[str], str | None]


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line (a tag, a name, a path); validated as the user types."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    def __init__(self, title: str, *, value: str = "", placeholder: str = "",
                 validate: Validator | None = None, help: str = "") -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._value = value
        self._placeholder = placeholder
        self._validate = validate
        self._help = help

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self._title, classes="dialog-title")
            if self._help:
                yield Static(self._help, classes="dialog-help", markup=False)
            yield Input(self._value, placeholder=self._placeholder, id="value", compact=True)
            yield Static("", id="problem", classes="field-problem", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _problem(self, value: str) -> str | None:
        if not value.strip():
            return "required"
        return self._validate(value.strip()) if self._validate else None

    def on_input_changed(self, event: Input.Changed) -> None:
        problem = self._problem(event.value) if event.value else None
        self.query_one("#problem", Static).update(problem or "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        problem = self._problem(event.value)
        if problem:
            self.query_one("#problem", Static).update(problem)
            return
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
