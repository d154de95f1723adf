"""The Volumes list: create, remove, prune."""
from __future__ import annotations

import re
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from engine import VolumeInfo

from .format import short_ago, timestamp
from .resource_table import Cell, ColumnSpec, ResourceTable

COLUMNS: tuple[ColumnSpec[VolumeInfo], ...] = (
    ColumnSpec("name", "VOLUME NAME", lambda v: Cell(v.name, style="bold")),
    ColumnSpec("driver", "DRIVER", lambda v: Cell(v.driver)),
    ColumnSpec("created", "CREATED", lambda v: Cell(short_ago(v.created), -timestamp(v.created))),
    ColumnSpec("mountpoint", "MOUNTPOINT", lambda v: Cell(v.mountpoint, style="dim")),
)

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def _valid(value: str) -> str | None:
    return None if _NAME.fullmatch(value) else "letters, digits, _ . - (start with a letter or digit)"


class VolumesTable(ResourceTable[VolumeInfo]):
    """Named volumes."""

    kind = "volume"
    EMPTY = "No volumes. {volume.create} creates one; or: portside volume create NAME"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "name"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "create", "Create", id="volume.create"),
        Binding("d", "remove(False)", "Remove", id="volume.remove"),
        Binding("D", "remove(True)", "Force remove", show=False, id="volume.force_remove"),
        Binding("P", "prune", "Prune", show=False, id="volume.prune"),
    ]

    def key_of(self, record: VolumeInfo) -> str:
        return record.name

    def label_of(self, key: str) -> str:
        return key

    @property
    def engine(self) -> Any:
        return self.app.engine  # type: ignore[attr-defined]

    def action_create(self) -> None:
        from ..screens.dialogs import PromptScreen

        def answered(name: str | None) -> None:
            if name:
                self.app.engine_call(self.engine.volume_create, name,  # type: ignore[attr-defined]
                                     done=lambda _v: self._done(f"created {name}"),
                                     title=f"Creating volume {name}")

        self.app.push_screen(PromptScreen("Create volume", placeholder="name",
                                          validate=_valid), answered)

    def action_remove(self, force: bool = False) -> None:
        from ..screens.dialogs import ConfirmScreen
        key = self.current_key
        if key is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.engine_call(self.engine.volume_rm, key, force=force,  # type: ignore[attr-defined]
                                     done=lambda _r: self._done(f"removed {key}"),
                                     title=f"Removing volume {key}")

        body = "Its data is deleted." + ("\nForce: even if a container uses it." if force else "")
        self.app.push_screen(ConfirmScreen(f"Remove volume {key}?", body), answered)

    def action_prune(self) -> None:
        from ..screens.dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.engine_call(self.engine.volume_prune, all=True,  # type: ignore[attr-defined]
                                     done=self._pruned, title="Pruning volumes")

        self.app.push_screen(ConfirmScreen(
            "Remove every volume no container uses?",
            "Named volumes too (volume prune -a): their data is deleted.", yes="Prune"),
            answered)

    def _pruned(self, result: Any) -> None:
        removed = result[0] if isinstance(result, tuple) else result
        self.app.notify(f"{len(removed)} volume(s) removed", title="pruned")
        self.post_message(self.Changed())

    def _done(self, message: str) -> None:
        self.app.notify(message, title="volume")
        self.post_message(self.Changed())
