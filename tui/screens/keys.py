"""Every binding of the app, found on the classes that define them.

Help (``?``), the command palette (ctrl+p) and the config file's keymap
check all read this one registry, which is built from the ``BINDINGS`` of
every screen and widget class in the ``tui`` package: a binding added
anywhere shows up everywhere without being listed twice.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Iterator

from textual.binding import Binding, BindingType
from textual.dom import DOMNode

# Where each class's bindings apply, in the order help lists them. A class
# not named here still shows (under its name, after these).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("PortsideApp", "Everywhere"),
    ("MainScreen", "Main screen"),
    ("ResourceTable", "Any list"),
    ("ListPane", "Lists pane"),
    ("FilterInput", "List filter"),
    ("ContainersTable", "Containers"),
    ("ImagesTable", "Images"),
    ("VolumesTable", "Volumes"),
    ("NetworksTable", "Networks"),
    ("DetailPane", "Detail pane"),
    ("LogView", "Logs"),
    ("LogInput", "Logs input line"),
    ("TextView", "Inspect and text tabs"),
    ("RowsTab", "Detail tables"),
    ("RunDialog", "Run dialog"),
    ("ConfirmScreen", "Confirm dialog"),
    ("PromptScreen", "Prompt dialog"),
    ("ErrorScreen", "Error dialog"),
    ("HelpScreen", "Help"),
)
_ORDER = {name: i for i, (name, _title) in enumerate(SECTIONS)}
_TITLES = dict(SECTIONS)

# Actions that move around rather than do something: help lists them, the
# palette (which finds things to do) leaves them out.
MOVES = frozenset({
    "cursor_down", "cursor_up", "scroll_top", "scroll_bottom", "scroll_left", "scroll_right",
    "scroll_down", "scroll_up", "scroll_home", "scroll_end", "page_down", "page_up",
    "top", "bottom", "done", "cancel", "close", "clear", "dismiss", "answer", "back",
    "command_palette", "mark", "next_match",
})


@dataclass(frozen=True)
class BoundAction:
    """One binding and the class it is defined on."""

    owner: type[Any]
    section: str
    binding: Binding

    @property
    def id(self) -> str:
        return self.binding.id or ""

    @property
    def action_name(self) -> str:
        return self.binding.action.split("(", 1)[0]

    @property
    def description(self) -> str:
        return self.binding.description or self.action_name.replace("_", " ")


def _as_binding(b: BindingType) -> Binding:
    return b if isinstance(b, Binding) else Binding(*b)


def _load_all() -> None:
    """Import every module that may define screens or widgets."""
    for package in ("tui.widgets", "tui.screens"):
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{package}.{info.name}")
    importlib.import_module("tui.app")


def _subclasses(cls: type[Any]) -> Iterator[type[Any]]:
    seen: set[type[Any]] = set()
    todo = [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
                yield sub


@lru_cache(maxsize=1)
def all_bindings() -> tuple[BoundAction, ...]:
    """Every binding defined on a class of the ``tui`` package, in help's order."""
    _load_all()
    owners = [c for c in _subclasses(DOMNode)
              if c.__module__.startswith("tui.") and c.__dict__.get("BINDINGS")]
    owners.sort(key=lambda c: (_ORDER.get(c.__name__, len(_ORDER)), c.__name__))
    out: list[BoundAction] = []
    for cls in owners:
        section = _TITLES.get(cls.__name__, cls.__name__)
        for b in cls.__dict__["BINDINGS"]:
            out.append(BoundAction(cls, section, _as_binding(b)))
    return tuple(out)


def binding_ids() -> set[str]:
    """The ids a config file's ``[keys]`` may remap."""
    return {b.id for b in all_bindings() if b.id}


_NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "space": "space",
          "left_square_bracket": "[", "right_square_bracket": "]", "ampersand": "&",
          "asterisk": "*", "at": "@", "colon": ":",
          # esc and a digit typed fast arrive as these (see MainScreen)
          "inverted_exclamation_mark": "esc 1", "trade_mark_sign": "esc 2",
          "pound_sign": "esc 3", "cent_sign": "esc 4", "infinity": "esc 5"}


def key_display(keys: str) -> str:
    """``"escape,q"`` as users read it: ``"esc, q"``."""
    return ", ".join(_NAMES.get(k, k) for k in keys.split(","))


def keys_of(b: BoundAction, keymap: dict[str, str]) -> str:
    """The keys bound now (the keymap applied), as users read them."""
    return key_display(keymap.get(b.id, b.binding.key) if b.id else b.binding.key)


def sections(bindings: Iterable[BoundAction]) -> list[str]:
    out: list[str] = []
    for b in bindings:
        if b.section not in out:
            out.append(b.section)
    return out
