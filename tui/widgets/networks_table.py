"""The Networks list (shown only when the engine has a network API)."""
from __future__ import annotations

import re
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from .format import short_ago, timestamp
from .resource_table import Cell, ColumnSpec, ResourceTable


def _attr(name: str, style: str = "") -> Any:
    return lambda n: Cell(str(getattr(n, name, "") or ""), style=style)


COLUMNS: tuple[ColumnSpec[Any], ...] = (
    ColumnSpec("name", "NETWORK", _attr("name", "bold")),
    ColumnSpec("driver", "DRIVER", _attr("driver")),
    ColumnSpec("subnet", "SUBNET", _attr("subnet")),
    ColumnSpec("gateway", "GATEWAY", _attr("gateway")),
    ColumnSpec("created", "CREATED",
               lambda n: Cell(short_ago(getattr(n, "created", None)),
                              -timestamp(getattr(n, "created", None)))),
    ColumnSpec("id", "ID", lambda n: Cell(str(getattr(n, "id", ""))[:12], style="dim"), width=12),
)

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


class NetworksTable(ResourceTable[Any]):
    """Bridge networks."""

    kind = "network"
    EMPTY = "No networks. {network.create} creates one; or: portside network create NAME"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "name"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "create", "Create", id="network.create"),
        Binding("d", "remove", "Remove", id="network.remove"),
        Binding("P", "prune", "Prune", show=False, id="network.prune"),
    ]

    def label_of(self, key: str) -> str:
        n = self.records.get(key)
        return str(getattr(n, "name", key[:12]))

    @property
    def engine(self) -> Any:
        return self.app.engine  # type: ignore[attr-defined]

    def _call(self, method: str, *args: Any, doing: str, message: str, **kw: Any) -> None:
        """Run ``method``; ``message`` on success, ``doing`` titles a failure."""
        fn = getattr(self.engine, method, None)
        if fn is None:
            self.app.notify(f"this engine has no {method}() yet", severity="warning")
            return
        self.app.engine_call(fn, *args, title=doing, **kw,  # type: ignore[attr-defined]
                             done=lambda _r: self._done(message))

    def _done(self, message: str) -> None:
        self.app.notify(message, title="network")
        self.post_message(self.Changed())

    def action_create(self) -> None:
        from ..screens.dialogs import PromptScreen

        def answered(name: str | None) -> None:
            if name:
                self._call("network_create", name, doing=f"Creating network {name}",
                           message=f"created {name}")

        self.app.push_screen(PromptScreen(
            "Create network", placeholder="name",
            validate=lambda v: None if _NAME.fullmatch(v) else "letters, digits, _ . -"),
            answered)

    def action_remove(self) -> None:
        from ..screens.dialogs import ConfirmScreen
        key = self.current_key
        if key is None:
            return
        name = self.label_of(key)

        def answered(yes: bool | None) -> None:
            if yes:
                self._call("network_rm", name, doing=f"Removing network {name}",
                           message=f"removed {name}")

        self.app.push_screen(ConfirmScreen(f"Remove network {name}?"), answered)

    def action_prune(self) -> None:
        from ..screens.dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._call("network_prune", doing="Pruning networks", message="pruned networks")

        self.app.push_screen(ConfirmScreen("Remove every network no container uses?",
                                           yes="Prune"), answered)
