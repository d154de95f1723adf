"""The Events view: the engine's event log, newest first, live, filterable with ``/``."""
from __future__ import annotations

from typing import Any, ClassVar, Iterable

from rich.text import Text
from textual.binding import BindingType

from engine import Event

from .resource_table import Cell, ColumnSpec, ResourceTable

KEEP = 5000          # rows kept; older events drop off the bottom

_ACTION_STYLE = {"die": "red", "kill": "red", "oom": "bold red", "destroy": "magenta",
                 "start": "green", "create": "cyan", "stop": "yellow", "pause": "cyan",
                 "unpause": "cyan", "delete": "magenta", "untag": "magenta"}


def _attrs(e: Event) -> Cell:
    name = e.attributes.get("name", "")
    rest = " ".join(f"{k}={v}" for k, v in sorted(e.attributes.items()) if k != "name")
    return Cell(f"{name} {rest}".strip() if name else rest, style="dim" if not name else "")


COLUMNS: tuple[ColumnSpec[Event], ...] = (
    ColumnSpec("time", "TIME", lambda e: Cell(e.time.astimezone().strftime("%m-%d %H:%M:%S"),
                                              e.seq)),
    ColumnSpec("type", "TYPE", lambda e: Cell(e.type)),
    ColumnSpec("action", "ACTION", lambda e: Cell(
        e.action, style=_ACTION_STYLE.get(e.action.split(":", 1)[0], ""))),
    # Narrow: the name in NAME / ATTRIBUTES says who; the id is in the detail pane.
    ColumnSpec("actor", "ACTOR", lambda e: Cell(e.actor_id.removeprefix("sha256:")[:12],
                                                style="dim"), hide_below=100),
    ColumnSpec("attributes", "NAME / ATTRIBUTES", _attrs),
)


class EventsTable(ResourceTable[Event]):
    """What happened, from any process using this engine."""

    kind = "event"
    EMPTY = "No events yet: changes to containers, images, volumes and networks show here"
    COLUMNS = COLUMNS
    DEFAULT_SORT = "time"
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sort_reverse = True

    def key_of(self, record: Event) -> str:
        return str(record.seq)

    def label_of(self, key: str) -> str:
        e = self.records.get(key)
        return f"{e.type} {e.action}" if e is not None else key

    def haystack(self, e: Event) -> str:
        attrs = " ".join(f"{k}={v}" for k, v in e.attributes.items())
        return f"{e.type} {e.action} {e.actor_id} {attrs}".lower()

    def extend(self, events: Iterable[Event]) -> None:
        """Add new events (and drop the oldest past ``KEEP``)."""
        records = dict(self.records)
        for e in events:
            records[str(e.seq)] = e
        if len(records) > KEEP:
            for key in sorted(records, key=int)[:len(records) - KEEP]:
                del records[key]
        self.sync(records.values())


def event_text(e: Event) -> Any:
    """The detail pane's view of one event."""
    t = Text()
    t.append(f"{e.time.isoformat()}  #{e.seq}\n", style="dim")
    t.append(f"{e.type} {e.action}\n", style="bold")
    t.append(f"actor {e.actor_id}\n")
    for k, v in sorted(e.attributes.items()):
        t.append(f"  {k}", style="bold")
        t.append(f" = {v}\n")
    return t
